# tests/integration/: real processes, real swtpm, real files. Each engineer appends their own
# section; every scenario is a phony target listed in CHECK_STEPS (or BENCH_STEPS).

# --- durable state and TPM (state engineer) ---
STATE_DRIVER := $(B)/tests/integration/state-driver
EXTRA_CFLAGS_tests_integration_state-driver := $(call pc_cflags,libsodium)
$(STATE_DRIVER): $(B)/tests/integration/state-driver.o $(B)/libsvstate.a $(B)/libsvpolicy.a \
		 $(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ -pthread \
		$(call pc_libs,libsodium openssl tss2-esys tss2-mu tss2-rc)
STATE_ENV = STATE_DRIVER=$(STATE_DRIVER) SEALVAULT_ADMIN=$(B)/sealvault-admin
# hybrid-driver: the store under guesses for check-state-hybrid (issue 12)
HYBRID_DRIVER := $(B)/tests/integration/hybrid-driver
EXTRA_CFLAGS_tests_integration_hybrid-driver := $(call pc_cflags,libsodium openssl)
$(HYBRID_DRIVER): $(B)/tests/integration/hybrid-driver.o $(B)/libsvstate.a $(B)/libsvpolicy.a \
		 $(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,libsodium openssl tss2-esys tss2-mu tss2-rc)
.PHONY: check-state-hybrid
check-state-hybrid: $(HYBRID_DRIVER) $(STATE_DRIVER) $(B)/sealvault-admin
	$(Q)HYBRID_DRIVER=$(HYBRID_DRIVER) $(STATE_ENV) \
		tests/integration/state-hybrid.sh
CHECK_STEPS += check-state-hybrid
.PHONY: check-state-crash check-state-powercut check-state-rollback check-state-bitflip \
	check-state-othertpm check-state-admin bench-state
check-state-crash: $(STATE_DRIVER) $(B)/sealvault-admin
	$(Q)$(STATE_ENV) SCHEME=plain tests/integration/state-crash.sh kill 50
	$(Q)$(STATE_ENV) SCHEME=hybrid tests/integration/state-crash.sh kill 16
	$(Q)$(STATE_ENV) SCHEME=plain SNAPSHOT_CHUNK=64 tests/integration/state-crash.sh kill 16
check-state-powercut: $(STATE_DRIVER) $(B)/sealvault-admin
	$(Q)$(STATE_ENV) SCHEME=plain tests/integration/state-crash.sh powercut 15
	$(Q)$(STATE_ENV) SCHEME=hybrid tests/integration/state-crash.sh powercut 12
	$(Q)$(STATE_ENV) SCHEME=hybrid SNAPSHOT_CHUNK=64 tests/integration/state-crash.sh powercut 8
check-state-rollback: $(STATE_DRIVER) $(B)/sealvault-admin
	$(Q)$(STATE_ENV) tests/integration/state-rollback.sh
	$(Q)$(STATE_ENV) SNAPSHOT_CHUNK=512 tests/integration/state-rollback.sh
check-state-bitflip: $(STATE_DRIVER) $(B)/sealvault-admin
	$(Q)$(STATE_ENV) tests/integration/state-bitflip.sh
	$(Q)$(STATE_ENV) SNAPSHOT_CHUNK=1536 tests/integration/state-bitflip.sh 3
check-state-othertpm: $(STATE_DRIVER) $(B)/sealvault-admin
	$(Q)$(STATE_ENV) tests/integration/state-othertpm.sh
check-state-admin: $(STATE_DRIVER) $(B)/sealvault-admin
	$(Q)$(STATE_ENV) tests/integration/state-admin.sh
bench-state: $(STATE_DRIVER) $(B)/sealvault-admin
	$(Q)$(STATE_ENV) tests/integration/state-bench.sh
CHECK_STEPS += check-state-admin check-state-crash check-state-powercut check-state-rollback \
	       check-state-bitflip check-state-othertpm
BENCH_STEPS += bench-state
BINS += $(STATE_DRIVER) $(HYBRID_DRIVER)

# --- vault semantics on the real store and swtpm (vault engineer) ---
VAULT_STORE_DRIVER := $(B)/tests/integration/vault-store
$(VAULT_STORE_DRIVER): $(B)/tests/integration/vault-store.o $(B)/libsvvault.a $(B)/libsvtoken.a \
		       $(B)/libsvstate.a $(B)/libsvcrypto.a $(B)/libsvpolicy.a $(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ \
		$(call pc_libs,libsodium openssl tss2-esys tss2-mu tss2-rc json-c)
.PHONY: check-vault-store
check-vault-store: $(VAULT_STORE_DRIVER) $(B)/sealvault-admin
	$(Q)VAULT_STORE_DRIVER=$(VAULT_STORE_DRIVER) SEALVAULT_ADMIN=$(B)/sealvault-admin \
		tests/integration/vault-store.sh
.PHONY: bench-vault
bench-vault: $(VAULT_STORE_DRIVER) $(B)/sealvault-admin
	$(Q)VAULT_STORE_DRIVER=$(VAULT_STORE_DRIVER) SEALVAULT_ADMIN=$(B)/sealvault-admin \
		tests/integration/vault-bench.sh
CHECK_STEPS += check-vault-store
BENCH_STEPS += bench-vault
BINS += $(VAULT_STORE_DRIVER)

# --- attestation producer: init/attest/authorize-pcrs and the endpoint (attestation engineer A) ---
.PHONY: check-attest-admin
check-attest-admin: $(B)/sealvault-admin $(B)/sealvaultd $(B)/sealvault-enclave $(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/attest-admin.sh
CHECK_STEPS += check-attest-admin
.PHONY: bench-attest
bench-attest: $(B)/sealvault-admin $(B)/sealvaultd $(B)/sealvault-enclave $(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/attest-bench.sh
BENCH_STEPS += bench-attest

# --- tests/lib/tpm-proxy.py: two vaults on one swtpm, a slow flaky chip, hold/drop hooks ---
.PHONY: check-tpm-proxy
check-tpm-proxy: $(STATE_DRIVER) $(B)/sealvault-admin
	$(Q)$(STATE_ENV) tests/integration/tpm-proxy.sh
CHECK_STEPS += check-tpm-proxy

# --- forks and upgrades (issue 11): the fork attack on real processes through a discrete-chip
# proxy (state-fork.sh), and the upgrade of a sealvault 0.2 vault built from git (state-upgrade.sh) ---
.PHONY: check-state-fork check-state-upgrade
check-state-fork: $(B)/sealvault $(B)/sealvault-admin $(B)/sealvaultd $(B)/sealvault-enclave \
		  $(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/state-fork.sh
check-state-upgrade: $(STATE_DRIVER) $(B)/sealvault-admin
	$(Q)B=$(B) tests/integration/state-upgrade.sh
CHECK_STEPS += check-state-fork check-state-upgrade

# --- the vault key sealed to PCRs (issue 12): a firmware update approved with authorize-pcrs,
# and the migration of a plain-PolicyPCR vault with `sealvault-admin reseal` ---
.PHONY: check-state-pcr-update
check-state-pcr-update: $(STATE_DRIVER) $(B)/sealvault $(B)/sealvault-admin $(B)/sealvaultd \
			$(B)/sealvault-enclave $(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/state-pcr-update.sh
CHECK_STEPS += check-state-pcr-update
# --- the NV increment pipelined (issue 12, item 3): while one is held at the TPM, /healthz is
# answered, and nothing that needs it (or the journal frame after it) is answered or written ---
.PHONY: check-anchor-pipeline
check-anchor-pipeline: $(B)/sealvault $(B)/sealvault-admin $(B)/sealvaultd $(B)/sealvault-enclave \
		$(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/anchor-pipeline.sh
CHECK_STEPS += check-anchor-pipeline

# --- a TPM that misbehaves for longer (issue 12, item 3): a hung TPM (enclave timeout, sealvaultd
# restarts with back-off) and a TPM throttling NV writes for minutes (503s, no restart). The
# throttle test waits THROTTLE_SECONDS (default 180) almost idle; it is not in CHECK_STEPS, so
# that it can run next to the other steps. ---
.PHONY: check-tpm-hang check-tpm-throttle
check-tpm-hang: $(B)/sealvault $(B)/sealvault-admin $(B)/sealvaultd $(B)/sealvault-enclave \
		$(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/tpm-hang.sh
check-tpm-throttle: $(B)/sealvault $(B)/sealvault-admin $(B)/sealvaultd $(B)/sealvault-enclave \
		$(B)/sealvault-broker
	$(Q)B=$(B) THROTTLE_S=$(or $(THROTTLE_SECONDS),180) tests/integration/tpm-throttle.sh
CHECK_STEPS += check-tpm-hang
# It idles for THROTTLE_SECONDS while the TPM throttles: run next to the other steps.
CHECK_BACKGROUND += check-tpm-throttle
# --- issue 12: the NV-write budget from outside (tests/integration/nv-budget.sh): a saturated
# hybrid vault with a small budget writes NV at most burst + rate * T + 2 times, counted at the
# swtpm; guesses keep being answered ---
.PHONY: check-nv-budget
check-nv-budget: $(SV_BENCH) $(B)/sealvault-admin $(B)/sealvaultd $(B)/sealvault-enclave \
		 $(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/nv-budget.sh
CHECK_STEPS += check-nv-budget

# --- a plain-counter vault migrated to the hybrid counter with `sealvault-admin upgrade
# --counter-scheme hybrid` (issue 12), cut off at five points ---
.PHONY: check-state-migrate
check-state-migrate: $(STATE_DRIVER) $(B)/sealvault-admin
	$(Q)$(STATE_ENV) tests/integration/state-migrate.sh
CHECK_STEPS += check-state-migrate

# --- reload (issue 14, item 1): SIGHUP mid-load with a renewed certificate (no request fails,
# the new one is served), refused and broken reloads, the certbot deploy hook ---
.PHONY: check-reload
check-reload: $(SV_BENCH) $(B)/sealvault-admin $(B)/sealvaultd $(B)/sealvault-enclave \
	      $(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/reload.sh
CHECK_STEPS += check-reload

# --- the audit trail (issue 14, item 3): one scenario's records on sealvaultd's stderr, the
# enclave's restart alone (exit 75) on the same audit pair, a power cut's penalty, and (as root,
# with unshare) the journal path through sd_journal_send; see the script's header ---
.PHONY: check-audit
check-audit: $(B)/sealvaultd $(B)/sealvault-enclave $(B)/sealvault-broker $(B)/sealvault-admin \
	     $(B)/sealvault
	$(Q)B=$(B) tests/integration/audit.sh
CHECK_STEPS += check-audit
# --- graceful drain (issue 14, item 2): SIGTERM refuses new logins, a last-guess login with the
# right password finishes during the drain and its record survives; with the drain timeout passed
# first, the documented outcome (the record stays destroyed). drain-login is the library's login
# split at KE2 (test-only) ---
DRAIN_LOGIN := $(B)/tests/integration/drain-login
EXTRA_CFLAGS_tests_integration_drain-login := $(call pc_cflags,libsodium libcurl)
$(DRAIN_LOGIN): $(B)/tests/integration/drain-login.o $(B)/libsvclient.a $(B)/libsvcrypto.a \
		$(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(CLIENT_PKGS))
BINS += $(DRAIN_LOGIN)
.PHONY: check-drain
check-drain: $(DRAIN_LOGIN) $(B)/sealvault $(B)/sealvault-admin $(B)/sealvaultd \
	     $(B)/sealvault-enclave $(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/drain.sh
CHECK_STEPS += check-drain
# --- online admin (issue 14, item 5): sealvault-admin status and delete through sealvaultd's
# admin socket while the vault runs (same figures as offline), callers outside group
# sealvault-admin refused, admin frames refused on the broker's link, the enclave's restart ---
.PHONY: check-admin-online
check-admin-online: $(B)/sealvault-admin $(B)/sealvaultd $(B)/sealvault-enclave \
	      $(B)/sealvault-broker $(B)/sealvault $(SV_BENCH)
	$(Q)B=$(B) tests/integration/admin-online.sh
CHECK_STEPS += check-admin-online

# --- abuse limits without tokens (issue 13, items 7 and 8): the per-identifier login rate, a
# flood of unknown identifiers' logins against a small pending-login table, the per-address cap
# on unfinished logins, the attestation bucket, and IPv6 clients keyed on their /64 (in a network
# namespace of its own when run as root). abuse-flood sends well-formed login/starts from a given
# source address and abandons them (test-only) ---
ABUSE_FLOOD := $(B)/tests/integration/abuse-flood
EXTRA_CFLAGS_tests_integration_abuse-flood := $(call pc_cflags,libsodium libcurl)
$(ABUSE_FLOOD): $(B)/tests/integration/abuse-flood.o $(B)/libsvclient.a $(B)/libsvcrypto.a \
		$(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(CLIENT_PKGS))
BINS += $(ABUSE_FLOOD)
.PHONY: check-abuse
check-abuse: $(ABUSE_FLOOD) $(B)/sealvault $(B)/sealvault-admin $(B)/sealvaultd \
	     $(B)/sealvault-enclave $(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/abuse.sh
CHECK_STEPS += check-abuse

# --- access tokens on the request path (issue 13): tests/integration/token-auth.sh ---
.PHONY: check-token-auth
check-token-auth: $(B)/sealvault $(B)/sealvault-admin $(B)/sealvaultd $(B)/sealvault-enclave \
		  $(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/token-auth.sh
CHECK_STEPS += check-token-auth
# --- capacity: max-users refuses registrations instead of stopping the vault (issue 16) ---
.PHONY: check-capacity
check-capacity: $(B)/sealvault $(B)/sealvault-admin $(B)/sealvaultd $(B)/sealvault-enclave \
		$(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/capacity.sh
CHECK_STEPS += check-capacity
# bench-scale: a 10 M-user vault's start-up, memory per user and commit p99 while its snapshot is
# written, against a 1 M-user start-up and the p99 without a snapshot (issue 16; minutes, ~10 GB)
.PHONY: bench-scale
bench-scale: $(STATE_DRIVER) $(B)/sealvault-admin
	$(Q)$(STATE_ENV) tests/integration/scale-bench.sh
BENCH_STEPS += bench-scale
# --- threshold realms (issue 15): three vaults on three swtpms, each with its own sealvaultd and
# tokens; register/recover with --realms, realms lost, a lying realm behind a proxy, a stale
# version, the guess bound (tests/integration/realms.sh); and `make demo-realms`, the same story
# narrated (installs missing build dependencies when run as root, like `make demo`) ---
.PHONY: check-realms demo-realms
check-realms: $(B)/sealvault $(B)/sealvault-admin $(B)/sealvaultd $(B)/sealvault-enclave \
	      $(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/realms.sh
CHECK_STEPS += check-realms
demo-realms:
	$(Q)B=$(B) MAKE="$(MAKE)" tests/demo/demo-realms.sh
# Attested realms: each realm on an EK-certified swtpm with its expect file in the realm list;
# attested register/recover, one realm's expect file swapped for another's (t of n still
# recovers, all-n registration exits 4), the TPM CA inside the expect files
# (tests/integration/realms-attest.sh, 10-15 s).
.PHONY: check-realms-attest
check-realms-attest: $(B)/sealvault $(B)/sealvault-admin $(B)/sealvaultd $(B)/sealvault-enclave \
	      $(B)/sealvault-broker
	$(Q)B=$(B) tests/integration/realms-attest.sh
CHECK_STEPS += check-realms-attest
