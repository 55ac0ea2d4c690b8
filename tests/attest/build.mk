# tests/attest/: attestation tests (issue 6). synthlog.py writes synthetic TCG boot and IMA logs
# and extends a swtpm's PCRs with them; check-attest runs tests/integration/attest.sh, the
# verifier against real sealvaultd processes on swtpms with EK certificates from private CAs.
CHECK_STEPS += check-attest
.PHONY: check-attest
check-attest: $(B)/sealvault $(B)/sealvaultd $(B)/sealvault-enclave $(B)/sealvault-broker \
		$(B)/sealvault-admin
	$(Q)B=$(B) tests/integration/attest.sh
