# tests/bench/: sealvault-bench, the HTTPS load generator, and the `make bench` steps that run it
# against a real vault on swtpm (process engineer).
SV_BENCH := $(B)/sealvault-bench
EXTRA_CFLAGS_tests_bench_sealvault-bench := $(call pc_cflags,libcurl libsodium)
# with --tenant it mints access tokens with admin/jwk.c, as `sealvault-admin token` does
$(SV_BENCH): $(B)/tests/bench/sealvault-bench.o $(B)/admin/jwk.o $(B)/libsvtoken.a \
		$(B)/libsvclient.a $(B)/libsvcrypto.a $(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ -pthread \
		$(call pc_libs,$(CLIENT_PKGS) json-c openssl)
BINS += $(SV_BENCH)
BENCH_DEPS := $(SV_BENCH) $(B)/sealvaultd $(B)/sealvault-enclave $(B)/sealvault-broker \
	$(B)/sealvault-admin
# BENCH_CLIENTS / BENCH_SECONDS / LOAD_CLIENTS / LOAD_SECONDS may be set on the command line.
.PHONY: bench-https bench-load
bench-https: $(BENCH_DEPS)
	$(Q)B=$(B) tests/bench/bench.sh bench $(or $(BENCH_CLIENTS),128) $(or $(BENCH_SECONDS),10)
bench-load: $(BENCH_DEPS)
	$(Q)B=$(B) tests/bench/bench.sh load $(or $(LOAD_CLIENTS),200) $(or $(LOAD_SECONDS),60)
BENCH_STEPS += bench-https bench-load
# Issue 12: the NV writes per 1000 guesses of the hybrid and the plain counter at 1, 16 and 128
# clients through a slow discrete chip (tests/lib/tpm-proxy.py), the projected TPM life, and the
# recoveries/s of both schemes through that chip next to the hybrid's on swtpm directly.
# NVBENCH_SECONDS: length of the fixed-length phases.
.PHONY: bench-nv-wear bench-slow-tpm
bench-nv-wear: $(BENCH_DEPS)
	$(Q)B=$(B) tests/bench/nvbench.sh wear $(or $(NVBENCH_SECONDS),10)
bench-slow-tpm: $(BENCH_DEPS)
	$(Q)B=$(B) tests/bench/nvbench.sh slow $(or $(NVBENCH_SECONDS),10)
BENCH_STEPS += bench-nv-wear bench-slow-tpm
# The load test of issue 4 (200 clients registering and recovering for 60 s: no error, every
# secret byte-identical) is also a check step: it asserts correctness under concurrency, not speed.
.PHONY: check-load
check-load: bench-load
CHECK_STEPS += check-load
# The same load on a hybrid vault behind a slow, faulty chip (tests/lib/tpm-proxy.py: 3 ms per
# command, 40 ms per flash write, 10 % transient NV errors, one dropped TPM connection; sealvaultd
# under tests/lib/supervise.py as systemd would run it), then `sealvault-admin status` (issue 12's
# acceptance): only documented 503s, every secret byte-identical, the enclave restarted alone.
.PHONY: check-load-slowtpm
check-load-slowtpm: $(BENCH_DEPS)
	$(Q)B=$(B) tests/bench/load-slowtpm.sh $(or $(LOAD_CLIENTS),200) 35 10
CHECK_STEPS += check-load-slowtpm
