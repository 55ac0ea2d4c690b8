/*
 * Fuzzes the access-token verifier (enclave/token.c) and the JWK Set parser (enclave/tenant.c)
 * with the fixed tenant set of the PyJWT vectors (tests/tokens/pyjwt_vectors.h). The first byte
 * picks a mode:
 *   0  the rest is a compact JWS, verified as it is;
 *   1  the rest is HEADER-JSON NUL CLAIMS-JSON, signed here with the tenant's Ed25519 key so that
 *      the claim checks are reached (short inputs use a valid pair);
 *   2  the rest edits a PyJWT vector: (position, byte) pairs;
 *   3  the rest is a JWK Set.
 * Invariants: an accepted token's signing input is one signed by a tenant key (a vector's, or
 * mode 1's), its sub is 1..TOKEN_SUB_MAX bytes, its scope within TOKEN_SCOPE_ALL and its claims
 * within the policy; a refusal always has a reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "enclave/tenant.h"
#include "enclave/token.h"
#include "tests/tokens/pyjwt_vectors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NV (sizeof(pyjwt_vectors) / sizeof(pyjwt_vectors[0]))

static struct tenant_set set;
static struct token_policy pol;
static uint8_t ed_pk[32], ed_sk[64];

static void add(const char *name, const char *jwks)
{
	struct tenant t;
	char why[256];
	if (tenant_parse_jwks(&t, name, (const uint8_t *)jwks, strlen(jwks), why, sizeof(why)) !=
	        SV_OK ||
	    tenant_set_add(&set, &t) != SV_OK)
		abort();
}

static void init(void)
{
	uint8_t seed[32];
	if (sodium_init() < 0)
		abort();
	add("acme", pyjwt_jwks_acme);
	add("beta", pyjwt_jwks_beta);
	memcpy(pol.aud, PYJWT_REALM, sizeof(PYJWT_REALM));
	pol.max_lifetime_s = TOKEN_MAX_LIFETIME_DEFAULT;
	pol.skew_s = TOKEN_SKEW_DEFAULT;
	memset(seed, 1, sizeof(seed)); /* ed-1 of acme */
	crypto_sign_seed_keypair(ed_pk, ed_sk, seed);
}

/* Verifies tok; signed_here: the signing input mode 1 signed (NULL: none). */
static void check(const char *tok, size_t len, const char *signed_here, size_t signed_len)
{
	struct token_claims c;
	const char *why = NULL;
	int r = token_verify(&set, &pol, PYJWT_NOW, tok, len, &c, &why);
	if (r != SV_OK) {
		if (r != SV_ERR_AUTH || why == NULL || c.sub_len != 0)
			abort();
		return;
	}
	if (c.sub_len < 1 || c.sub_len > TOKEN_SUB_MAX || (c.scope & ~TOKEN_SCOPE_ALL) != 0 ||
	    c.tenant >= set.n || c.exp + pol.skew_s <= PYJWT_NOW)
		abort();
	const char *dot2 = memrchr(tok, '.', len);
	size_t in_len = (size_t)(dot2 - tok);
	if (signed_here != NULL && in_len == signed_len && memcmp(tok, signed_here, in_len) == 0)
		return;
	for (size_t i = 0; i < NV; i++) {
		const char *v = pyjwt_vectors[i].token;
		if (strrchr(v, '.') - v == (ptrdiff_t)in_len && memcmp(v, tok, in_len) == 0)
			return;
	}
	abort(); /* accepted a signing input no key signed: a forgery */
}

static size_t b64(char *out, size_t max, const void *p, size_t n)
{
	if (sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING) > max)
		return 0;
	sodium_bin2base64(out, max, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return strlen(out);
}

static void mode_sign(const uint8_t *p, size_t n)
{
	static const char hdr[] = "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\"}";
	static const char clm[] = "{\"iss\":\"acme\",\"sub\":\"a\",\"aud\":\"" PYJWT_REALM
	                          "\",\"iat\":1767225600,\"exp\":1767225700,\"scope\":\"recover\"}";
	static char tok[3 * TOKEN_MAX_LEN];
	uint8_t sig[64];
	const uint8_t *h = (const uint8_t *)hdr, *c = (const uint8_t *)clm;
	size_t hn = sizeof(hdr) - 1, cn = sizeof(clm) - 1;
	const uint8_t *nul = memchr(p, 0, n);
	if (nul != NULL) {
		h = p;
		hn = (size_t)(nul - p);
		c = nul + 1;
		cn = n - hn - 1;
	} else if (n > 0) {
		c = p;
		cn = n;
	}
	size_t a = b64(tok, sizeof(tok), h, hn);
	if (a == 0 || a + 2 >= sizeof(tok))
		return;
	tok[a++] = '.';
	size_t b = b64(tok + a, sizeof(tok) - a, c, cn);
	if (b == 0)
		return;
	a += b;
	crypto_sign_detached(sig, NULL, (const uint8_t *)tok, a, ed_sk);
	if (a + 2 + sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_URLSAFE_NO_PADDING) >
	    sizeof(tok))
		return;
	tok[a] = '.';
	size_t s = b64(tok + a + 1, sizeof(tok) - a - 1, sig, sizeof(sig));
	check(tok, a + 1 + s, tok, a);
}

static void mode_edit(const uint8_t *p, size_t n)
{
	char tok[TOKEN_MAX_LEN + 1];
	if (n < 1)
		return;
	const char *v = pyjwt_vectors[p[0] % NV].token;
	size_t len = strlen(v);
	memcpy(tok, v, len);
	for (size_t i = 1; i + 1 < n; i += 2) {
		size_t at = p[i] * len / 256;
		if (p[i + 1] == 0 && len > 1) { /* delete */
			memmove(tok + at, tok + at + 1, len - at - 1);
			len--;
		} else {
			tok[at] = (char)p[i + 1];
		}
	}
	check(tok, len, NULL, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		init();
		ready = 1;
	}
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	switch (data[0] % 4) {
	case 0: check((const char *)p, n, NULL, 0); break;
	case 1: mode_sign(p, n); break;
	case 2: mode_edit(p, n); break;
	default: {
		struct tenant t;
		char why[256] = "";
		if (tenant_parse_jwks(&t, "acme", p, n, why, sizeof(why)) == SV_OK) {
			if (t.n_keys < 1 || t.n_keys > TENANT_KEYS_MAX)
				abort();
			tenant_clear(&t);
		} else if (t.n_keys != 0 || why[0] == '\0') {
			abort();
		}
	}
	}
	return 0;
}
