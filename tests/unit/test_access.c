/* Unit tests for enclave/access: the access check of a vault request (tokens and open mode), the
 * record key of (tenant, sub), the pending login's owner, and the refusal counters. Tokens are
 * minted with admin/jwk.c (what `sealvault-admin token` uses) for two in-test tenants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "admin/jwk.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/msg.h"
#include "enclave/access.h"

#define AUD "00112233445566778899aabbccddeeff"
#define NOW 1767225600LL

static struct admin_jwk keys[2];
static const char *const names[2] = {"acme", "beta"};
static struct access *A;
static char tok[TOKEN_MAX_LEN + 1];

/* A token of tenant t (0 acme, 1 beta) for sub, scope (NULL: all), issued now with ttl. */
static const uint8_t *mint(int t, const char *sub, const char *scope, long long now, long long ttl,
                           size_t *len)
{
	char why[128];
	assert_int_equal(admin_jwk_mint(&keys[t], names[t], sub, AUD, scope, now, ttl, tok,
	                                sizeof(tok), why, sizeof(why)),
	                 SV_OK);
	*len = strlen(tok);
	return (const uint8_t *)tok;
}

static int setup(void **state)
{
	struct tenant_set set = {0};
	char why[256];
	assert_true(sodium_init() >= 0);
	for (int i = 0; i < 2; i++) {
		struct tenant t;
		assert_int_equal(admin_jwk_generate(&keys[i], TENANT_KEY_ED25519, "k1"), SV_OK);
		char *jwks = admin_jwk_public_jwks(&keys[i]);
		assert_non_null(jwks);
		assert_int_equal(tenant_parse_jwks(&t, names[i], (const uint8_t *)jwks,
		                                   strlen(jwks), why, sizeof(why)),
		                 SV_OK);
		free(jwks);
		assert_int_equal(tenant_set_add(&set, &t), SV_OK);
	}
	struct token_policy pol = {.aud = AUD, .max_lifetime_s = 600, .skew_s = 60};
	assert_int_equal(access_new(&A, ACCESS_TOKENS, &set, &pol), SV_OK);
	assert_int_equal(set.n, 0); /* moved */
	access_set_clock(A, NOW);
	return 0;
}

static int teardown(void **state)
{
	access_free(A);
	for (int i = 0; i < 2; i++)
		admin_jwk_free(&keys[i]);
	return 0;
}

static void test_no_token(void **state)
{
	struct access_grant g;
	const char *why = NULL;
	assert_int_equal(access_verify(A, NULL, 0, TOKEN_SCOPE_REGISTER, 0, &g, &why),
	                 SV_STATUS_UNAUTHORIZED);
	assert_string_equal(why, TOKEN_WHY_NONE);
	/* garbage, and a token past its lifetime: invalid_token with the verifier's reason */
	assert_int_equal(access_verify(A, (const uint8_t *)"a.b.c", 5, 0, 0, &g, &why),
	                 SV_STATUS_UNAUTHORIZED);
	size_t n;
	const uint8_t *t = mint(0, "alice", NULL, NOW - 1000, 300, &n);
	assert_int_equal(access_verify(A, t, n, 0, 0, &g, &why), SV_STATUS_UNAUTHORIZED);
	assert_string_equal(why, "the token has expired");
}

/* The record key is 0x00 | len | tenant | sub, only for the token's own sub. */
static void test_key(void **state)
{
	struct access_grant g;
	const char *why = NULL;
	uint8_t key[STORE_ID_MAX];
	size_t n, kl = 0;
	const uint8_t *t = mint(0, "alice", NULL, NOW, 300, &n);
	assert_int_equal(access_verify(A, t, n, TOKEN_SCOPE_REGISTER, 0, &g, &why), SV_OK);
	assert_int_equal(g.open, 0);
	assert_int_equal(access_key(A, &g, (const uint8_t *)"alice", 5, key, &kl, &why), SV_OK);
	assert_int_equal(kl, 11);
	assert_memory_equal(key, "\0\4acmealice", 11);
	assert_int_equal(access_key(A, &g, (const uint8_t *)"alic", 4, key, &kl, &why),
	                 SV_STATUS_UNAUTHORIZED);
	assert_int_equal(access_key(A, &g, (const uint8_t *)"bob", 3, key, &kl, &why),
	                 SV_STATUS_UNAUTHORIZED);
	assert_string_equal(why, "the token's sub is not the identifier of this request");
	/* the same sub at beta is another key */
	t = mint(1, "alice", NULL, NOW, 300, &n);
	assert_int_equal(access_verify(A, t, n, 0, 0, &g, &why), SV_OK);
	assert_int_equal(access_key(A, &g, (const uint8_t *)"alice", 5, key, &kl, &why), SV_OK);
	assert_memory_equal(key, "\0\4betaalice", 11);
	/* 2 + 4 + 249 = 255 fits, one more does not (400, not 401) */
	char sub[256];
	memset(sub, 'x', sizeof(sub));
	sub[249] = '\0';
	t = mint(0, sub, NULL, NOW, 300, &n);
	assert_int_equal(access_verify(A, t, n, 0, 0, &g, &why), SV_OK);
	assert_int_equal(access_key(A, &g, (const uint8_t *)sub, 249, key, &kl, &why), SV_OK);
	assert_int_equal(kl, STORE_ID_MAX);
	sub[249] = 'x';
	sub[250] = '\0';
	t = mint(0, sub, NULL, NOW, 300, &n);
	assert_int_equal(access_verify(A, t, n, 0, 0, &g, &why), SV_OK);
	assert_int_equal(access_key(A, &g, (const uint8_t *)sub, 250, key, &kl, &why),
	                 SV_STATUS_BAD_REQUEST);
}

/* all: every bit; any: one of them; no scope claim: everything. */
static void test_scope(void **state)
{
	struct access_grant g;
	const char *why = NULL;
	size_t n;
	const uint8_t *t = mint(0, "alice", "register", NOW, 300, &n);
	assert_int_equal(access_verify(A, t, n, TOKEN_SCOPE_REGISTER, 0, &g, &why), SV_OK);
	assert_int_equal(access_verify(A, t, n, TOKEN_SCOPE_RECOVER, 0, &g, &why),
	                 SV_STATUS_FORBIDDEN);
	assert_string_equal(why, TOKEN_WHY_SCOPE);
	assert_int_equal(
	    access_verify(A, t, n, 0, TOKEN_SCOPE_RECOVER | TOKEN_SCOPE_DELETE, &g, &why),
	    SV_STATUS_FORBIDDEN);
	t = mint(0, "alice", "delete", NOW, 300, &n);
	assert_int_equal(
	    access_verify(A, t, n, 0, TOKEN_SCOPE_RECOVER | TOKEN_SCOPE_DELETE, &g, &why), SV_OK);
	assert_int_equal(
	    access_verify(A, t, n, TOKEN_SCOPE_RECOVER | TOKEN_SCOPE_REGISTER, 0, &g, &why),
	    SV_STATUS_FORBIDDEN);
	t = mint(0, "alice", "recover register", NOW, 300, &n);
	assert_int_equal(
	    access_verify(A, t, n, TOKEN_SCOPE_RECOVER | TOKEN_SCOPE_REGISTER, 0, &g, &why), SV_OK);
	t = mint(0, "alice", NULL, NOW, 300, &n);
	assert_int_equal(access_verify(A, t, n, TOKEN_SCOPE_ALL, 0, &g, &why), SV_OK);
}

/* A pending login's key is owned by its own tenant and sub only. */
static void test_owns(void **state)
{
	struct access_grant g;
	const char *why = NULL;
	size_t n;
	static const uint8_t key[] = "\0\4acmealice";
	const uint8_t *t = mint(0, "alice", NULL, NOW, 300, &n);
	assert_int_equal(access_verify(A, t, n, 0, 0, &g, &why), SV_OK);
	assert_int_equal(access_owns(A, &g, key, 11, &why), SV_OK);
	assert_int_equal(access_owns(A, &g, key, 10, &why), SV_STATUS_UNAUTHORIZED);
	t = mint(1, "alice", NULL, NOW, 300, &n); /* beta's alice */
	assert_int_equal(access_verify(A, t, n, 0, 0, &g, &why), SV_OK);
	assert_int_equal(access_owns(A, &g, key, 11, &why), SV_STATUS_UNAUTHORIZED);
	assert_string_equal(why, "the token is for another user than the login it finishes");
	t = mint(0, "mallory", NULL, NOW, 300, &n);
	assert_int_equal(access_verify(A, t, n, 0, 0, &g, &why), SV_OK);
	assert_int_equal(access_owns(A, &g, key, 11, &why), SV_STATUS_UNAUTHORIZED);
}

/* Open mode: no token looked at; identifiers are keys, but may not start with 0x00. */
static void test_open(void **state)
{
	struct access *o = NULL;
	struct access_grant g;
	const char *why = NULL;
	uint8_t key[STORE_ID_MAX];
	size_t kl = 0;
	uint8_t digest[TENANT_DIGEST_LEN], zero[TENANT_DIGEST_LEN] = {0};
	assert_int_equal(access_new(&o, ACCESS_OPEN, NULL, NULL), SV_OK);
	assert_int_equal(access_verify(o, NULL, 0, TOKEN_SCOPE_ALL, 0, &g, &why), SV_OK);
	assert_int_equal(g.open, 1);
	assert_int_equal(access_key(o, &g, (const uint8_t *)"alice", 5, key, &kl, &why), SV_OK);
	assert_int_equal(kl, 5);
	assert_int_equal(access_key(o, &g, (const uint8_t *)"\0\4acmealice", 11, key, &kl, &why),
	                 SV_STATUS_BAD_REQUEST);
	assert_int_equal(access_owns(o, &g, (const uint8_t *)"x", 1, &why), SV_OK);
	access_digest(o, digest);
	assert_memory_equal(digest, zero, sizeof(zero));
	struct sv_buf b;
	assert_int_equal(sv_buf_init(&b, 4096), 0);
	assert_int_equal(access_metrics(o, &b), 0);
	assert_non_null(memmem(b.data, b.len, "sealvault_auth_mode{mode=\"open\"} 1", 34));
	sv_buf_free(&b);
	access_free(o);
	/* tokens mode without an audience or with a bad mode is a configuration error */
	struct token_policy bad = {.max_lifetime_s = 600};
	assert_int_equal(access_new(&o, ACCESS_TOKENS, NULL, &bad), SV_ERR_CONFIG);
	assert_int_equal(access_new(&o, (enum access_mode)7, NULL, NULL), SV_ERR_CONFIG);
}

/* A token verified once is taken from the memo for the next request of its operation, but its
 * expiry is judged again every time; a changed byte is a new token, fully verified. */
static void test_memo(void **state)
{
	struct access_grant g;
	const char *why = NULL;
	struct sv_buf b;
	size_t n;
	char copy[TOKEN_MAX_LEN + 1];
	const uint8_t *t = mint(0, "alice", "recover", NOW, 300, &n);
	memcpy(copy, t, n + 1);
	assert_int_equal(access_verify(A, t, n, TOKEN_SCOPE_RECOVER, 0, &g, &why), SV_OK);
	assert_int_equal(access_verify(A, t, n, TOKEN_SCOPE_RECOVER, 0, &g, &why), SV_OK);
	assert_int_equal(g.claims.sub_len, 5);
	assert_memory_equal(g.claims.sub, "alice", 5);
	assert_int_equal(g.claims.scope, TOKEN_SCOPE_RECOVER);
	/* the scope is judged per request, memo or not */
	assert_int_equal(access_verify(A, t, n, TOKEN_SCOPE_DELETE, 0, &g, &why),
	                 SV_STATUS_FORBIDDEN);
	/* a changed signature byte is another token: verified, refused */
	copy[n - 2] = copy[n - 2] == 'A' ? 'B' : 'A';
	assert_int_equal(access_verify(A, (const uint8_t *)copy, n, 0, 0, &g, &why),
	                 SV_STATUS_UNAUTHORIZED);
	/* exp + skew passes: the memoised token expires like any other */
	access_set_clock(A, NOW + 300 + 59);
	assert_int_equal(access_verify(A, t, n, 0, 0, &g, &why), SV_OK);
	access_set_clock(A, NOW + 300 + 60);
	assert_int_equal(access_verify(A, t, n, 0, 0, &g, &why), SV_STATUS_UNAUTHORIZED);
	assert_string_equal(why, "the token has expired");
	assert_int_equal(sv_buf_init(&b, 4096), 0);
	assert_int_equal(access_metrics(A, &b), 0);
	static const char hits[] = "sealvault_tokens_memo_hits_total 3\n";
	if (memmem(b.data, b.len, hits, sizeof(hits) - 1) == NULL)
		fail_msg("no '%s' in %.*s", hits, (int)b.len, (const char *)b.data);
	sv_buf_free(&b);
}

/* The memo keeps the tokens of the logins in flight on a busy vault: 64 tokens verified one
 * after the other are answered from the memo when they come back, as each login/finish comes
 * back after the login/starts of the other clients. Only a set that 5 of the 64 land in (about
 * once in 600 runs) loses its 5; with one slot per set (256 slots) 12 or so were lost. */
static void test_memo_busy(void **state)
{
	enum { N = 64 };
	static char toks[N][TOKEN_MAX_LEN + 1];
	struct access_grant g;
	const char *why = NULL;
	struct sv_buf b;
	size_t n;
	for (int i = 0; i < N; i++) {
		char sub[16];
		snprintf(sub, sizeof(sub), "user%d", i);
		const uint8_t *t = mint(0, sub, "recover", NOW, 300, &n);
		memcpy(toks[i], t, n + 1);
		assert_int_equal(access_verify(A, t, n, TOKEN_SCOPE_RECOVER, 0, &g, &why), SV_OK);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(access_verify(A, (const uint8_t *)toks[i], strlen(toks[i]),
		                               TOKEN_SCOPE_RECOVER, 0, &g, &why),
		                 SV_OK);
	assert_int_equal(sv_buf_init(&b, 4096), 0);
	assert_int_equal(access_metrics(A, &b), 0);
	static const char key[] = "\nsealvault_tokens_memo_hits_total ";
	const char *at = memmem(b.data, b.len, key, sizeof(key) - 1);
	assert_non_null(at);
	unsigned long hits = strtoul(at + sizeof(key) - 1, NULL, 10);
	if (hits < N - 5)
		fail_msg("only %lu of %d tokens came from the memo", hits, N);
	sv_buf_free(&b);
}

/* The counters: accepted, 401 and 403 refusals, and the mode and tenant gauges. */
static void test_metrics(void **state)
{
	struct access_grant g;
	const char *why = NULL;
	struct sv_buf b;
	size_t n;
	const uint8_t *t = mint(0, "alice", "register", NOW, 300, &n);
	assert_int_equal(access_verify(A, t, n, TOKEN_SCOPE_REGISTER, 0, &g, &why), SV_OK);
	assert_int_equal(access_verify(A, t, n, TOKEN_SCOPE_RECOVER, 0, &g, &why),
	                 SV_STATUS_FORBIDDEN);
	assert_int_equal(access_verify(A, NULL, 0, 0, 0, &g, &why), SV_STATUS_UNAUTHORIZED);
	assert_int_equal(sv_buf_init(&b, 4096), 0);
	assert_int_equal(access_metrics(A, &b), 0);
	const char *want[] = {"sealvault_auth_mode{mode=\"tokens\"} 1\n",
	                      "sealvault_tenants 2\n",
	                      "sealvault_tenant_keys 2\n",
	                      "sealvault_tokens_accepted_total 1\n",
	                      "sealvault_tokens_refused_total{status=\"401\"} 1\n",
	                      "sealvault_tokens_refused_total{status=\"403\"} 1\n"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (memmem(b.data, b.len, want[i], strlen(want[i])) == NULL)
			fail_msg("no '%s' in %.*s", want[i], (int)b.len, (const char *)b.data);
	sv_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_no_token, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scope, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_owns, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_memo, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_memo_busy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
