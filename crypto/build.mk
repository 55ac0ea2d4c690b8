# crypto/: the protocol core (RFC 9380 hashing, RFC 9497 OPRF, RFC 9807 OPAQUE, KSF), on libsodium.
# Used by the enclave (server side) and the client library; depends on common/ only.
CRYPTO_SRCS := crypto/h2c.c crypto/hkdf.c crypto/oprf.c crypto/ksf.c crypto/opaque.c
CRYPTO_OBJS := $(CRYPTO_SRCS:%.c=$(B)/%.o)
CRYPTO_LIBS := $(call pc_libs,libsodium)
UT_ARCHIVES += $(B)/libsvcrypto.a

$(B)/libsvcrypto.a: $(CRYPTO_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# bench-crypto (source in tests/bench/, whose build.mk belongs to the process engineer): the
# OPAQUE costs on one pinned core and the `ke2/scalarmults: R` line; a `make bench` step.
BENCH_CRYPTO := $(B)/tests/bench/bench-crypto
BENCH_CRYPTO_ROUNDS ?= 61

# It also prints token-verify/ke2 (issue 13), hence the token archive and its libraries.
$(BENCH_CRYPTO): $(B)/tests/bench/bench-crypto.o $(B)/libsvtoken.a $(B)/libsvcrypto.a \
		$(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,libsodium json-c openssl)

BINS += $(BENCH_CRYPTO)
BENCH_STEPS += bench-crypto
.PHONY: bench-crypto
bench-crypto: $(BENCH_CRYPTO)
	$(BENCH_CRYPTO) -n $(BENCH_CRYPTO_ROUNDS)
