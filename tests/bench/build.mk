# Benchmarks: `make bench` runs every BENCH_STEPS entry; bench-crypto measures crypto/ on one core.
BENCH_CRYPTO := $(B)/tests/bench/bench-crypto
BENCH_CRYPTO_ROUNDS ?= 31

$(BENCH_CRYPTO): $(B)/tests/bench/bench-crypto.o $(B)/libsvcrypto.a $(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,libsodium)

BINS += $(BENCH_CRYPTO)
BENCH_STEPS += bench-crypto
.PHONY: bench-crypto
bench-crypto: $(BENCH_CRYPTO)
	$(BENCH_CRYPTO) -n $(BENCH_CRYPTO_ROUNDS)
