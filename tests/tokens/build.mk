# tests/tokens/: access tokens (issue 13) outside the request path. token-verify runs the
# enclave's check (enclave/token.c) on a tenants directory; check-tokens mints tokens with
# sealvault-admin and with the Python example of docs/tokens.md (PyJWT) and verifies them, each
# refusal included. The unit tests are tests/unit/test_token.c (PyJWT vectors:
# tests/tokens/pyjwt_vectors.h, from tests/tokens/gen-pyjwt-vectors.py).
TOKEN_VERIFY := $(B)/tests/tokens/token-verify
EXTRA_CFLAGS_tests_tokens_token-verify := $(call pc_cflags,libsodium)
$(TOKEN_VERIFY): $(B)/tests/tokens/token-verify.o $(B)/libsvtoken.a $(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,libsodium json-c openssl)
BINS += $(TOKEN_VERIFY)
.PHONY: check-tokens
check-tokens: $(TOKEN_VERIFY) $(B)/sealvault-admin
	$(Q)B=$(B) tests/tokens/check-tokens.sh
CHECK_STEPS += check-tokens
