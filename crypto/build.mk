# crypto/: the protocol core (RFC 9380 hashing, RFC 9497 OPRF, RFC 9807 OPAQUE, KSF), on libsodium.
# Used by the enclave (server side) and the client library; depends on common/ only.
CRYPTO_SRCS := crypto/h2c.c crypto/hkdf.c crypto/oprf.c crypto/ksf.c crypto/opaque.c
CRYPTO_OBJS := $(CRYPTO_SRCS:%.c=$(B)/%.o)
CRYPTO_LIBS := $(call pc_libs,libsodium)
UT_ARCHIVES += $(B)/libsvcrypto.a

$(B)/libsvcrypto.a: $(CRYPTO_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
