# tests/bench/: sealvault-bench, the HTTPS load generator, and the `make bench` steps that run it
# against a real vault on swtpm (process engineer).
SV_BENCH := $(B)/sealvault-bench
EXTRA_CFLAGS_tests_bench_sealvault-bench := $(call pc_cflags,libcurl libsodium)
$(SV_BENCH): $(B)/tests/bench/sealvault-bench.o $(B)/libsvclient.a $(B)/libsvcrypto.a \
		$(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ -pthread $(call pc_libs,$(CLIENT_PKGS))
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
# The load test of issue 4 (200 clients registering and recovering for 60 s: no error, every
# secret byte-identical) is also a check step: it asserts correctness under concurrency, not speed.
.PHONY: check-load
check-load: bench-load
CHECK_STEPS += check-load
