/* Unit tests for enclave/tenant (JWK Sets, the tenant set, its digest) and enclave/token (JWT
 * verification): tokens minted by PyJWT (tests/tokens/pyjwt_vectors.h, fixed time), tokens built
 * here with libsodium for the cases PyJWT will not produce (duplicate members, bad encodings),
 * every refusal class, and verification under the enclave's seccomp filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "enclave/tenant.h"
#include "enclave/token.h"
#include "policy/seccomp.h"
#include "tests/tokens/pyjwt_vectors.h"

static struct tenant_set set;
static struct token_policy pol;
static uint8_t ed1_pk[crypto_sign_PUBLICKEYBYTES], ed1_sk[crypto_sign_SECRETKEYBYTES];

static void add_tenant(struct tenant_set *s, const char *name, const char *jwks)
{
	struct tenant t;
	char why[256] = "";
	int r = tenant_parse_jwks(&t, name, (const uint8_t *)jwks, strlen(jwks), why, sizeof(why));
	if (r != SV_OK)
		fprintf(stderr, "%s: %s\n", name, why);
	assert_int_equal(r, SV_OK);
	assert_int_equal(tenant_set_add(s, &t), SV_OK);
}

static int setup(void **state)
{
	(void)state;
	uint8_t seed[32];
	assert_true(sodium_init() >= 0);
	memset(&set, 0, sizeof(set));
	add_tenant(&set, "acme", pyjwt_jwks_acme);
	add_tenant(&set, "beta", pyjwt_jwks_beta);
	memset(&pol, 0, sizeof(pol));
	strcpy(pol.aud, PYJWT_REALM);
	pol.max_lifetime_s = TOKEN_MAX_LIFETIME_DEFAULT;
	pol.skew_s = TOKEN_SKEW_DEFAULT;
	memset(seed, 1, sizeof(seed)); /* PyJWT's ed-1 key (gen-pyjwt-vectors.py) */
	crypto_sign_seed_keypair(ed1_pk, ed1_sk, seed);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tenant_set_free(&set);
	return 0;
}

static int verify(const char *tok, struct token_claims *c, const char **why)
{
	return token_verify(&set, &pol, PYJWT_NOW, tok, strlen(tok), c, why);
}

static void test_pyjwt_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pyjwt_vectors) / sizeof(pyjwt_vectors[0]); i++) {
		struct token_claims c;
		const char *why = NULL;
		int r = verify(pyjwt_vectors[i].token, &c, &why);
		if (pyjwt_vectors[i].why == NULL) {
			if (r != SV_OK)
				fprintf(stderr, "%s refused: %s\n", pyjwt_vectors[i].name, why);
			assert_int_equal(r, SV_OK);
			assert_null(why);
		} else {
			if (r == SV_OK || strstr(why, pyjwt_vectors[i].why) == NULL)
				fprintf(stderr, "%s: %s\n", pyjwt_vectors[i].name,
				        r ? why : "accepted");
			assert_int_equal(r, SV_ERR_AUTH);
			assert_non_null(strstr(why, pyjwt_vectors[i].why));
			assert_int_equal(c.sub_len, 0);
		}
	}
}

static const char *vector(const char *name)
{
	for (size_t i = 0; i < sizeof(pyjwt_vectors) / sizeof(pyjwt_vectors[0]); i++)
		if (strcmp(pyjwt_vectors[i].name, name) == 0)
			return pyjwt_vectors[i].token;
	fail_msg("no vector %s", name);
	return NULL;
}

static void test_claims_out(void **state)
{
	(void)state;
	struct token_claims c;
	const char *why;
	assert_int_equal(verify(vector("ok_eddsa"), &c, &why), SV_OK);
	assert_int_equal(c.tenant, 0);
	assert_int_equal(c.sub_len, strlen("alice@example.com"));
	assert_memory_equal(c.sub, "alice@example.com", c.sub_len);
	assert_int_equal(c.scope, TOKEN_SCOPE_ALL);
	assert_int_equal(c.exp, PYJWT_NOW + 300);
	assert_int_equal(verify(vector("ok_es256"), &c, &why), SV_OK);
	assert_int_equal(c.scope, TOKEN_SCOPE_RECOVER);
	assert_false(token_scope_covers(c.scope, TOKEN_SCOPE_REGISTER));
	assert_true(token_scope_covers(c.scope, TOKEN_SCOPE_RECOVER));
	assert_int_equal(verify(vector("ok_eddsa_scope"), &c, &why), SV_OK);
	assert_int_equal(c.scope, TOKEN_SCOPE_REGISTER | TOKEN_SCOPE_DELETE);
	assert_int_equal(verify(vector("ok_beta"), &c, &why), SV_OK);
	assert_int_equal(c.tenant, 1);
	assert_memory_equal(c.sub, "bob", 3);
}

/* The ok token at the same time, with the clock moved: the skew is applied both ways. */
static void test_time_edges(void **state)
{
	(void)state;
	struct token_claims c;
	const char *why, *tok = vector("ok_eddsa"); /* iat NOW, exp NOW + 300 */
	assert_int_equal(token_verify(&set, &pol, PYJWT_NOW + 359, tok, strlen(tok), &c, &why),
	                 SV_OK);
	assert_int_equal(token_verify(&set, &pol, PYJWT_NOW + 360, tok, strlen(tok), &c, &why),
	                 SV_ERR_AUTH);
	assert_non_null(strstr(why, "expired"));
	assert_int_equal(token_verify(&set, &pol, PYJWT_NOW - 60, tok, strlen(tok), &c, &why),
	                 SV_OK);
	assert_int_equal(token_verify(&set, &pol, PYJWT_NOW - 61, tok, strlen(tok), &c, &why),
	                 SV_ERR_AUTH);
	struct token_policy strict = pol;
	strict.max_lifetime_s = 299;
	assert_int_equal(token_verify(&set, &strict, PYJWT_NOW, tok, strlen(tok), &c, &why),
	                 SV_ERR_AUTH);
	assert_non_null(strstr(why, "lifetime"));
	strict = pol;
	strcpy(strict.aud, "ffeeddccbbaa99887766554433221100");
	assert_int_equal(token_verify(&set, &strict, PYJWT_NOW, tok, strlen(tok), &c, &why),
	                 SV_ERR_AUTH);
	assert_non_null(strstr(why, "aud"));
}

static void b64u(char *out, size_t out_max, const void *p, size_t n)
{
	assert_true(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING) <=
	            out_max);
	sodium_bin2base64(out, out_max, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* header.claims.signature with ed-1's key, from raw JSON texts (n bytes each, may hold NUL). */
static void mint_raw(char *out, size_t out_max, const char *header, size_t hn, const char *claims,
                     size_t cn)
{
	uint8_t sig[crypto_sign_BYTES];
	char b[8192];
	b64u(out, out_max, header, hn);
	strcat(out, ".");
	b64u(b, sizeof(b), claims, cn);
	strcat(out, b);
	crypto_sign_detached(sig, NULL, (const uint8_t *)out, strlen(out), ed1_sk);
	strcat(out, ".");
	b64u(b, sizeof(b), sig, sizeof(sig));
	strcat(out, b);
}

static void mint(char *out, size_t out_max, const char *header, const char *claims)
{
	mint_raw(out, out_max, header, strlen(header), claims, strlen(claims));
}

#define HDR "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\"}"
#define CLM                                                                                        \
	"{\"iss\":\"acme\",\"sub\":\"alice\",\"aud\":\"" PYJWT_REALM                               \
	"\",\"iat\":1767225600,\"exp\":1767225700}"

static void expect_refused(const char *header, const char *claims, const char *reason)
{
	char tok[4096];
	struct token_claims c;
	const char *why;
	mint(tok, sizeof(tok), header, claims);
	int r = verify(tok, &c, &why);
	if (r == SV_OK || strstr(why, reason) == NULL)
		fprintf(stderr, "%s / %s: %s\n", header, claims, r ? why : "accepted");
	assert_int_equal(r, SV_ERR_AUTH);
	assert_non_null(strstr(why, reason));
}

static void test_built_here(void **state)
{
	(void)state;
	char tok[4096];
	struct token_claims c;
	const char *why;
	mint(tok, sizeof(tok), HDR, CLM);
	assert_int_equal(verify(tok, &c, &why), SV_OK);
	/* A repeated member keeps its last value (RFC 7515 §5.2), as PyJWT and jose read it. */
	mint(tok, sizeof(tok), "{\"alg\":\"none\",\"alg\":\"EdDSA\",\"kid\":\"ed-1\"}", CLM);
	assert_int_equal(verify(tok, &c, &why), SV_OK);
	expect_refused("{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",\"alg\":\"none\"}", CLM, "alg");
	mint(tok, sizeof(tok), HDR,
	     "{\"iss\":\"acme\",\"sub\":\"alice\",\"sub\":\"mallory\",\"aud\":\"" PYJWT_REALM
	     "\",\"iat\":1767225600,\"exp\":1767225700}");
	assert_int_equal(verify(tok, &c, &why), SV_OK);
	assert_int_equal(c.sub_len, 7);
	assert_memory_equal(c.sub, "mallory", 7);
	/* Header and claims must each be one JSON object and nothing else. */
	expect_refused("[\"EdDSA\"]", CLM, "header");
	expect_refused("\"x\"", CLM, "header");
	expect_refused(HDR "x", CLM, "header");
	mint(tok, sizeof(tok), " " HDR "\n", CLM); /* RFC 8259 allows white space around */
	assert_int_equal(verify(tok, &c, &why), SV_OK);
	expect_refused(HDR "{}", CLM, "header");
	expect_refused("{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",}", CLM, "header");
	expect_refused("{'alg':'EdDSA'}", CLM, "header");
	expect_refused(HDR, "[1]", "claims");
	expect_refused(HDR, CLM "x", "claims");
	expect_refused(HDR, "", "malformed");
	mint_raw(tok, sizeof(tok), HDR, sizeof(HDR), CLM, strlen(CLM)); /* trailing NUL */
	assert_int_equal(verify(tok, &c, &why), SV_ERR_AUTH);
	expect_refused("{\"alg\":\"EdDSA\",\"kid\":\"\xff\"}", CLM, "header"); /* not UTF-8 */
	expect_refused("{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",\"crit\":[]}", CLM, "crit");
	expect_refused("{\"alg\":\"eddsa\",\"kid\":\"ed-1\"}", CLM, "alg");
	expect_refused("{\"alg\":\"HS256\",\"kid\":\"ed-1\"}", CLM, "alg");
	expect_refused("{\"alg\":\"RS256\",\"kid\":\"ed-1\"}", CLM, "alg");
	expect_refused("{\"alg\":1,\"kid\":\"ed-1\"}", CLM, "alg");
	expect_refused("{\"kid\":\"ed-1\"}", CLM, "alg");
	expect_refused("{\"alg\":\"EdDSA\",\"kid\":7}", CLM, "kid");
	expect_refused("{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",\"typ\":5}", CLM, "typ");
	mint(tok, sizeof(tok), "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",\"typ\":\"jwt\"}", CLM);
	assert_int_equal(verify(tok, &c, &why), SV_OK);
	/* Claims of the wrong type or range. */
	expect_refused(HDR,
	               "{\"iss\":\"acme\",\"sub\":\"alice\",\"aud\":\"" PYJWT_REALM
	               "\",\"iat\":\"1767225600\",\"exp\":1767225700}",
	               "iat");
	expect_refused(HDR,
	               "{\"iss\":\"acme\",\"sub\":\"alice\",\"aud\":\"" PYJWT_REALM
	               "\",\"iat\":-1,\"exp\":1767225700}",
	               "iat");
	expect_refused(HDR,
	               "{\"iss\":\"acme\",\"sub\":\"alice\",\"aud\":\"" PYJWT_REALM
	               "\",\"iat\":1767225600,\"exp\":99999999999999999999}",
	               "exp");
	expect_refused(HDR,
	               "{\"iss\":\"acme\",\"sub\":\"alice\",\"aud\":\"" PYJWT_REALM
	               "\",\"iat\":1767225600,\"exp\":1767225500}",
	               "before");
	expect_refused(HDR,
	               "{\"iss\":\"acme\",\"sub\":\"alice\",\"aud\":\"" PYJWT_REALM
	               "\",\"iat\":1767225600,\"exp\":1767225700,\"nbf\":1.5}",
	               "nbf");
	expect_refused(HDR,
	               "{\"iss\":\"acme\",\"sub\":\"\",\"aud\":\"" PYJWT_REALM
	               "\",\"iat\":1767225600,\"exp\":1767225700}",
	               "sub");
	expect_refused(HDR,
	               "{\"iss\":\"acme\",\"sub\":[\"alice\"],\"aud\":\"" PYJWT_REALM
	               "\",\"iat\":1767225600,\"exp\":1767225700}",
	               "sub");
	expect_refused(HDR,
	               "{\"iss\":\"acme\",\"sub\":\"alice\",\"aud\":[\"" PYJWT_REALM
	               "\",7],\"iat\":1767225600,\"exp\":1767225700}",
	               "aud");
	expect_refused(HDR,
	               "{\"iss\":\"acme\",\"sub\":\"alice\",\"aud\":\"" PYJWT_REALM
	               "\",\"iat\":1767225600,\"exp\":1767225700,\"scope\":\"recover  delete\"}",
	               "scope");
	expect_refused(HDR,
	               "{\"iss\":\"acme\",\"sub\":\"alice\",\"aud\":\"" PYJWT_REALM
	               "\",\"iat\":1767225600,\"exp\":1767225700,\"scope\":[\"recover\"]}",
	               "scope");
	expect_refused(HDR,
	               "{\"iss\":\"ACME\",\"sub\":\"alice\",\"aud\":\"" PYJWT_REALM
	               "\",\"iat\":1767225600,\"exp\":1767225700}",
	               "iss");
}

/* Encoding damage to a good token: each is refused before or at the signature. */
static void test_encoding(void **state)
{
	(void)state;
	static const char *const suffixes[] = {".", "x", "=", "==", ".x", " ", "\n"};
	char tok[4096], bad[4200];
	struct token_claims c;
	const char *why;
	mint(tok, sizeof(tok), HDR, CLM);
	size_t n = strlen(tok);
	char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(bad, sizeof(bad), "%s%s", tok, suffixes[i]);
		assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	}
	assert_int_equal(token_verify(&set, &pol, PYJWT_NOW, "", 0, &c, &why), SV_ERR_AUTH);
	assert_string_equal(why, TOKEN_WHY_NONE);
	/* Padding, a standard-base64 character, a space inside a segment. */
	snprintf(bad, sizeof(bad), "%.*s=%s", (int)(dot1 - tok), tok, dot1);
	assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	static const char swaps[] = "+/ =%";
	for (size_t i = 0; swaps[i] != '\0'; i++) {
		strcpy(bad, tok);
		bad[3] = swaps[i];
		assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
		strcpy(bad, tok);
		bad[dot2 - tok + 5] = swaps[i];
		assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	}
	/* Empty segments, one or four segments. */
	assert_int_equal(verify("..", &c, &why), SV_ERR_AUTH);
	snprintf(bad, sizeof(bad), "%.*s", (int)(dot2 - tok + 1), tok);
	assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	snprintf(bad, sizeof(bad), "%s%s", dot1, "");
	assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	snprintf(bad, sizeof(bad), "%.*s.%s", (int)(dot1 - tok), tok, dot1);
	assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	snprintf(bad, sizeof(bad), "%.*s", (int)(dot1 - tok), tok);
	assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	/* The signature: one bit flipped, truncated, a byte too many, non-canonical last char
	 * (86 characters carry 64 bytes and 4 spare bits that must be zero). */
	strcpy(bad, tok);
	bad[dot2 - tok + 10] = bad[dot2 - tok + 10] == 'A' ? 'B' : 'A';
	assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	assert_non_null(strstr(why, "signature"));
	snprintf(bad, sizeof(bad), "%.*s", (int)(n - 2), tok);
	assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	snprintf(bad, sizeof(bad), "%sAA", tok);
	assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	strcpy(bad, tok);
	const char *b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t last = (size_t)(strchr(b64, bad[n - 1]) - b64);
	bad[n - 1] = b64[last ^ 1]; /* a spare bit set */
	assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	/* The tenant's other key type and the length limit. */
	memset(bad, 'A', sizeof(bad) - 1);
	bad[sizeof(bad) - 1] = '\0';
	bad[10] = bad[20] = '.';
	assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	assert_non_null(strstr(why, "too long"));
}

/* The length bound: a good token of exactly TOKEN_MAX_LEN bytes passes, one byte more does not;
 * a JWK Set file of exactly TENANT_JWKS_MAX bytes parses, one byte more does not. */
static void test_max_lengths(void **state)
{
	(void)state;
	static char tok[TOKEN_MAX_LEN + 200], claims[TOKEN_MAX_LEN], header[64];
	struct token_claims c;
	const char *why;
	int found = 0;
	for (int ws = 0; ws < 4 && !found; ws++) {
		snprintf(header, sizeof(header), "%*s" HDR, ws, "");
		for (int pad = 2800; pad < 3100 && !found; pad++) {
			snprintf(claims, sizeof(claims),
			         "{\"iss\":\"acme\",\"sub\":\"alice\",\"aud\":\"" PYJWT_REALM
			         "\",\"iat\":1767225600,\"exp\":1767225700,\"pad\":\"%0*d\"}",
			         pad, 0);
			mint(tok, sizeof(tok), header, claims);
			found = strlen(tok) == TOKEN_MAX_LEN;
		}
	}
	assert_true(found);
	assert_int_equal(verify(tok, &c, &why), SV_OK);
	strcat(tok, "A"); /* 4097 bytes */
	assert_int_equal(verify(tok, &c, &why), SV_ERR_AUTH);
	assert_non_null(strstr(why, "too long"));

	size_t n = strlen(pyjwt_jwks_beta);
	uint8_t *big = malloc(TENANT_JWKS_MAX + 2);
	struct tenant t;
	char kwhy[256];
	assert_non_null(big);
	memcpy(big, pyjwt_jwks_beta, n);
	memset(big + n, ' ', TENANT_JWKS_MAX + 1 - n);
	assert_int_equal(tenant_parse_jwks(&t, "beta", big, TENANT_JWKS_MAX, kwhy, sizeof(kwhy)),
	                 SV_OK);
	tenant_clear(&t);
	assert_int_equal(
	    tenant_parse_jwks(&t, "beta", big, TENANT_JWKS_MAX + 1, kwhy, sizeof(kwhy)),
	    SV_ERR_INVALID);
	assert_int_equal(tenant_parse_jwks(&t, "beta", big, 0, kwhy, sizeof(kwhy)), SV_ERR_INVALID);
	assert_int_equal(tenant_parse_jwks(&t, "beta", big, 1, kwhy, sizeof(kwhy)), SV_ERR_INVALID);
	free(big);
}

/* ES256 r || s: only 64 bytes, r and s in 1..n-1. */
static void test_es256_signature(void **state)
{
	(void)state;
	char bad[4096], b[200];
	uint8_t sig[66];
	size_t sig_len;
	struct token_claims c;
	const char *why, *tok = vector("ok_es256");
	const char *dot2 = strrchr(tok, '.');
	assert_int_equal(sodium_base642bin(sig, sizeof(sig), dot2 + 1, strlen(dot2 + 1), NULL,
	                                   &sig_len, NULL,
	                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
	                 0);
	assert_int_equal(sig_len, 64);
	size_t lens[] = {63, 65, 32, 0};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t s2[66] = {0};
		memcpy(s2, sig, lens[i] < 64 ? lens[i] : 64);
		b64u(b, sizeof(b), s2, lens[i]);
		snprintf(bad, sizeof(bad), "%.*s.%s", (int)(dot2 - tok), tok, b);
		assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	}
	uint8_t zero_r[64];
	memcpy(zero_r, sig, 64);
	memset(zero_r, 0, 32);
	b64u(b, sizeof(b), zero_r, 64);
	snprintf(bad, sizeof(bad), "%.*s.%s", (int)(dot2 - tok), tok, b);
	assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	uint8_t ones[64];
	memset(ones, 0xff, 64); /* r, s >= n */
	b64u(b, sizeof(b), ones, 64);
	snprintf(bad, sizeof(bad), "%.*s.%s", (int)(dot2 - tok), tok, b);
	assert_int_equal(verify(bad, &c, &why), SV_ERR_AUTH);
	assert_non_null(strstr(why, "signature"));
}

static void test_scope_parse(void **state)
{
	(void)state;
	unsigned m;
	assert_int_equal(token_scope_parse("recover", 7, &m), SV_OK);
	assert_int_equal(m, TOKEN_SCOPE_RECOVER);
	assert_int_equal(token_scope_parse("delete register recover", 23, &m), SV_OK);
	assert_int_equal(m, TOKEN_SCOPE_ALL);
	assert_int_equal(token_scope_parse("", 0, &m), SV_OK);
	assert_int_equal(m, 0);
	static const char *const bad[] = {" recover", "recover ", "recover  delete",
	                                  "Recover",  "recoverx", "recover\tdelete",
	                                  "x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(token_scope_parse(bad[i], strlen(bad[i]), &m), SV_ERR_INVALID);
		assert_int_equal(m, 0);
	}
}

static int parse(const char *name, const char *jwks, char *why)
{
	struct tenant t;
	int r = tenant_parse_jwks(&t, name, (const uint8_t *)jwks, strlen(jwks), why, 256);
	if (r == SV_OK)
		tenant_clear(&t);
	else
		assert_int_equal(t.n_keys, 0);
	return r;
}

#define ED_X "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w"
#define EC_X "n62Erq4Iu-9_AQAU2CzvagneKwz4cbXODE8dE6WaWTQ"
#define EC_Y "B8tFdp8QcOLCRw_lsb_mMTPAsM3GTqS_N5Go7CoH_U8"

static void test_jwks(void **state)
{
	(void)state;
	char why[256];
	static const struct {
		const char *jwks, *why; /* why NULL: accepted */
	} cases[] = {
	    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X "\",\"kid\":\"a\"}]}",
	     NULL},
	    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" EC_X "\",\"y\":\"" EC_Y
	     "\",\"kid\":\"a\",\"use\":\"sig\",\"alg\":\"ES256\"}]}",
	     NULL},
	    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X
	     "\",\"d\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\",\"kid\":\"a\"}]}",
	     "private"},
	    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X
	     "\",\"kid\":\"a\"},{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X
	     "\",\"kid\":\"a\"}]}",
	     "two keys"},
	    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"" ED_X "\",\"kid\":\"a\"}]}",
	     "only"},
	    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"kid\":\"a\"}]}", "only"},
	    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X
	     "\",\"kid\":\"a\",\"alg\":\"ES256\"}]}",
	     "alg"},
	    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X
	     "\",\"kid\":\"a\",\"use\":\"enc\"}]}",
	     "use"},
	    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X "\"}]}", "kid"},
	    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X "\",\"kid\":\"\"}]}",
	     "kid"},
	    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X
	     "\",\"kid\":\"a b\"}]}",
	     "kid"},
	    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X "A\",\"kid\":\"a\"}]}",
	     "Ed25519"},
	    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X "=\",\"kid\":\"a\"}]}",
	     "Ed25519"},
	    /* the identity point and a small-order point */
	    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
	     "\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"kid\":\"a\"}]}",
	     "Ed25519"},
	    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
	     "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"kid\":\"a\"}]}",
	     "Ed25519"},
	    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" EC_X "\",\"y\":\"" EC_X
	     "\",\"kid\":\"a\"}]}",
	     "not a point"},
	    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" EC_X "\",\"kid\":\"a\"}]}",
	     "32 bytes"},
	    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"" EC_X "\",\"y\":\"" EC_Y
	     "\",\"kid\":\"a\"}]}",
	     "only"},
	    {"{\"keys\":[]}", "1..16"},
	    {"{\"keys\":{}}", "1..16"},
	    {"{}", "1..16"},
	    {"[]", "JSON object"},
	    {"{\"keys\":[]} x", "JSON object"},
	    {"{\"keys\":[1]}", "not a JSON object"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why[0] = '\0';
		int r = parse("acme", cases[i].jwks, why);
		if ((r == SV_OK) != (cases[i].why == NULL) ||
		    (cases[i].why != NULL && strstr(why, cases[i].why) == NULL))
			fail_msg("case %zu: %s", i, r == SV_OK ? "accepted" : why);
	}
	/* 16 keys are accepted, 17 are not. */
	char big[8192] = "{\"keys\":[";
	for (int i = 0; i < 17; i++) {
		char k[200];
		snprintf(k, sizeof(k),
		         "%s{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X
		         "\",\"kid\":\"k%02d\"}",
		         i ? "," : "", i);
		strcat(big, k);
		if (i == 15) {
			char sixteen[8192];
			snprintf(sixteen, sizeof(sixteen), "%s]}", big);
			assert_int_equal(parse("acme", sixteen, why), SV_OK);
		}
	}
	strcat(big, "]}");
	assert_int_equal(parse("acme", big, why), SV_ERR_INVALID);
	assert_int_equal(parse("Acme", pyjwt_jwks_beta, why), SV_ERR_INVALID);
}

static void test_names(void **state)
{
	(void)state;
	static const char *const good[] = {
	    "a", "acme", "acme-prod_2.eu", "0",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	static const char *const bad[] = {
	    "",
	    ".acme",
	    "-acme",
	    "_a",
	    "Acme",
	    "a/b",
	    "a b",
	    "..",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "caf\xc3\xa9"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(tenant_name_valid(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(tenant_name_valid(bad[i]));
}

static void test_set_and_digest(void **state)
{
	(void)state;
	struct tenant_set a = {0}, b = {0};
	uint8_t da[TENANT_DIGEST_LEN], db[TENANT_DIGEST_LEN], de[TENANT_DIGEST_LEN];
	tenant_set_digest(&a, de);
	/* Order of insertion and of keys in the file does not matter. */
	add_tenant(&a, "acme", pyjwt_jwks_acme);
	add_tenant(&a, "beta", pyjwt_jwks_beta);
	add_tenant(&b, "beta", pyjwt_jwks_beta);
	const char *acme_reordered =
	    "{\"keys\": [{\"kid\":\"ec-1\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" EC_X
	    "\",\"y\":\"" EC_Y
	    "\"},  {\"kid\":\"ed-1\",\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X
	    "\"}], \"note\": \"ignored\"}";
	add_tenant(&b, "acme", acme_reordered);
	tenant_set_digest(&a, da);
	tenant_set_digest(&b, db);
	assert_memory_equal(da, db, TENANT_DIGEST_LEN);
	assert_memory_not_equal(da, de, TENANT_DIGEST_LEN);
	assert_string_equal(a.tenants[0].name, "acme");
	assert_string_equal(a.tenants[0].keys[0].kid, "ec-1");
	struct tenant t;
	char why[256];
	assert_int_equal(tenant_parse_jwks(&t, "acme", (const uint8_t *)pyjwt_jwks_beta,
	                                   strlen(pyjwt_jwks_beta), why, sizeof(why)),
	                 SV_OK);
	assert_int_equal(tenant_set_add(&a, &t), SV_ERR_EXISTS);
	assert_int_equal(t.n_keys, 1);
	tenant_clear(&t);
	tenant_set_free(&b);
	/* A renamed kid or another tenant name changes the digest. */
	const char *renamed =
	    "{\"keys\": [{\"kid\":\"ec-2\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" EC_X
	    "\",\"y\":\"" EC_Y
	    "\"},{\"kid\":\"ed-1\",\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X "\"}]}";
	add_tenant(&b, "beta", pyjwt_jwks_beta);
	add_tenant(&b, "acme", renamed);
	tenant_set_digest(&b, db);
	assert_memory_not_equal(da, db, TENANT_DIGEST_LEN);
	tenant_set_free(&b);
	add_tenant(&b, "beta", pyjwt_jwks_beta);
	add_tenant(&b, "acme2", pyjwt_jwks_acme);
	tenant_set_digest(&b, db);
	assert_memory_not_equal(da, db, TENANT_DIGEST_LEN);
	assert_non_null(tenant_set_find(&a, "beta", 4, NULL));
	assert_null(tenant_set_find(&a, "bet", 3, NULL));
	assert_null(tenant_find_key(&a.tenants[0], "ed-", 3));
	tenant_set_free(&a);
	tenant_set_free(&b);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_load_dir(void **state)
{
	(void)state;
	char dir[] = "/tmp/sv-test-tenants-XXXXXX", why[512], path[600];
	struct tenant_set s;
	assert_non_null(mkdtemp(dir));
	write_file(dir, "beta.jwks", pyjwt_jwks_beta);
	write_file(dir, "acme.jwks", pyjwt_jwks_acme);
	write_file(dir, ".acme.jwks.tmp", "junk");
	write_file(dir, "README", "junk");
	write_file(dir, "acme.jwks~", "junk");
	assert_int_equal(tenant_set_load_dir(&s, dir, why, sizeof(why)), SV_OK);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.tenants[0].name, "acme");
	assert_int_equal(s.tenants[0].n_keys, 2);
	tenant_set_free(&s);
	/* A bad file is an error naming it; the set is left empty. */
	write_file(dir, "gamma.jwks", "{\"keys\":[]}");
	assert_int_equal(tenant_set_load_dir(&s, dir, why, sizeof(why)), SV_ERR_INVALID);
	assert_non_null(strstr(why, "gamma.jwks"));
	assert_int_equal(s.n, 0);
	snprintf(path, sizeof(path), "%s/gamma.jwks", dir);
	unlink(path);
	write_file(dir, "Gamma.jwks", pyjwt_jwks_beta);
	assert_int_equal(tenant_set_load_dir(&s, dir, why, sizeof(why)), SV_ERR_INVALID);
	assert_non_null(strstr(why, "invalid tenant name"));
	snprintf(path, sizeof(path), "%s/Gamma.jwks", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/delta.jwks", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(tenant_set_load_dir(&s, dir, why, sizeof(why)), SV_ERR_RANGE);
	rmdir(path);
	for (const char *const *f =
	         (const char *const[]){"acme.jwks", "beta.jwks", ".acme.jwks.tmp", "README",
	                               "acme.jwks~", NULL};
	     *f != NULL; f++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *f);
		unlink(path);
	}
	assert_int_equal(rmdir(dir), 0);
	/* A missing directory is an empty set. */
	assert_int_equal(tenant_set_load_dir(&s, dir, why, sizeof(why)), SV_OK);
	assert_int_equal(s.n, 0);
}

/* Verification needs no system call the enclave's filter forbids: a child installs the filter
 * (as sealvault-enclave does after its set-up) and verifies both kinds of token. */
static void test_under_seccomp(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct policy_seccomp_enclave cfg = {.fds = {0, 1, 2}, .n_fds = 3};
		char why[256];
		struct token_claims c;
		const char *w;
		if (policy_seccomp_enclave_install(&cfg, why, sizeof(why)) != 0)
			_exit(2);
		for (int i = 0; i < 3; i++) /* the first use of each path too */
			if (verify(vector("ok_eddsa"), &c, &w) != SV_OK ||
			    verify(vector("ok_es256"), &c, &w) != SV_OK ||
			    verify(vector("es256_wrong_key"), &c, &w) != SV_ERR_AUTH ||
			    verify(vector("wrong_key"), &c, &w) != SV_ERR_AUTH)
				_exit(3);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("verification under the enclave filter died of signal %d",
		         WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pyjwt_vectors),
	    cmocka_unit_test(test_claims_out),
	    cmocka_unit_test(test_time_edges),
	    cmocka_unit_test(test_built_here),
	    cmocka_unit_test(test_encoding),
	    cmocka_unit_test(test_max_lengths),
	    cmocka_unit_test(test_es256_signature),
	    cmocka_unit_test(test_scope_parse),
	    cmocka_unit_test(test_jwks),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_set_and_digest),
	    cmocka_unit_test(test_load_dir),
	    cmocka_unit_test(test_under_seccomp),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
