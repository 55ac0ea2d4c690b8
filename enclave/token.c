#include "enclave/token.h"

#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "common/err.h"

#define SIG_LEN   64 /* Ed25519 signature; ES256 r || s, 32 bytes each */
#define COORD_LEN 32

static const struct {
	const char *word;
	unsigned bit;
} scopes[] = {
    {"register", TOKEN_SCOPE_REGISTER},
    {"recover", TOKEN_SCOPE_RECOVER},
    {"delete", TOKEN_SCOPE_DELETE},
};

int token_scope_parse(const char *s, size_t len, unsigned *mask)
{
	size_t i = 0;
	*mask = 0;
	if (len == 0)
		return SV_OK; /* an empty scope grants nothing */
	for (;;) {
		const char *sp = memchr(s + i, ' ', len - i);
		size_t w = (sp == NULL ? len : (size_t)(sp - s)) - i;
		size_t k = 0;
		while (k < sizeof(scopes) / sizeof(scopes[0]) &&
		       !(strlen(scopes[k].word) == w && memcmp(scopes[k].word, s + i, w) == 0))
			k++;
		if (w == 0 || k == sizeof(scopes) / sizeof(scopes[0])) {
			*mask = 0;
			return SV_ERR_INVALID;
		}
		*mask |= scopes[k].bit;
		if (sp == NULL)
			return SV_OK;
		i += w + 1;
		if (i == len) { /* a trailing space */
			*mask = 0;
			return SV_ERR_INVALID;
		}
	}
}

/* Decodes one base64url segment (no padding, nothing else) and parses it as a JSON object. */
static int decode_json(const char *seg, size_t len, struct json_object **o)
{
	uint8_t bin[TOKEN_MAX_LEN];
	size_t n;
	const char *end;
	*o = NULL;
	if (sodium_base642bin(bin, sizeof(bin), seg, len, NULL, &n, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != seg + len)
		return SV_ERR_INVALID;
	return tenant_json_object(bin, n, o);
}

static int get_str(struct json_object *o, const char *key, const char **s, size_t *len)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return SV_ERR_NOTFOUND;
	if (!json_object_is_type(v, json_type_string))
		return SV_ERR_INVALID;
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	return SV_OK;
}

/* An integer time claim in 0..TOKEN_TIME_MAX: SV_OK, SV_ERR_NOTFOUND, or SV_ERR_INVALID (a
 * fraction, a string, out of range). */
static int get_time(struct json_object *o, const char *key, int64_t *t)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return SV_ERR_NOTFOUND;
	if (!json_object_is_type(v, json_type_int))
		return SV_ERR_INVALID;
	*t = json_object_get_int64(v);
	return *t >= 0 && *t <= TOKEN_TIME_MAX ? SV_OK : SV_ERR_INVALID;
}

static int str_eq(const char *s, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(s, want, n) == 0;
}

static int aud_ok(struct json_object *claims, const char *want)
{
	struct json_object *v;
	if (!json_object_object_get_ex(claims, "aud", &v))
		return 0;
	if (json_object_is_type(v, json_type_string))
		return str_eq(json_object_get_string(v), (size_t)json_object_get_string_len(v),
		              want);
	if (!json_object_is_type(v, json_type_array))
		return 0;
	size_t n = json_object_array_length(v);
	int found = 0;
	if (n > TOKEN_AUD_ARRAY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct json_object *a = json_object_array_get_idx(v, i);
		if (!json_object_is_type(a, json_type_string))
			return 0;
		found |=
		    str_eq(json_object_get_string(a), (size_t)json_object_get_string_len(a), want);
	}
	return found;
}

static int verify_es256(const struct tenant_key *k, const uint8_t sig[static SIG_LEN],
                        const char *msg, size_t msg_len)
{
	uint8_t h[crypto_hash_sha256_BYTES], der[80];
	unsigned char *p = der;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, COORD_LEN, NULL),
	       *s = BN_bin2bn(sig + COORD_LEN, COORD_LEN, NULL);
	EVP_PKEY_CTX *ctx = NULL;
	int ok = 0;
	if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1)
		goto out;
	r = s = NULL; /* es owns them */
	int der_len = i2d_ECDSA_SIG(es, NULL);
	if (der_len <= 0 || (size_t)der_len > sizeof(der) || i2d_ECDSA_SIG(es, &p) != der_len)
		goto out;
	crypto_hash_sha256(h, (const uint8_t *)msg, msg_len);
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
	     EVP_PKEY_verify(ctx, der, (size_t)der_len, h, sizeof(h)) == 1;
out:
	EVP_PKEY_CTX_free(ctx);
	ECDSA_SIG_free(es);
	BN_free(r);
	BN_free(s);
	if (!ok) /* a refused signature leaves nothing for the next OpenSSL caller to find */
		ERR_clear_error();
	return ok;
}

/* The header: alg and kid; *why on refusal. */
static int check_header(struct json_object *h, enum tenant_key_type *type, const char **kid,
                        size_t *kid_len, const char **why)
{
	const char *alg, *typ;
	size_t alg_len, typ_len;
	if (get_str(h, "alg", &alg, &alg_len) != SV_OK) {
		*why = "the token header has no alg";
		return SV_ERR_AUTH;
	}
	if (str_eq(alg, alg_len, "EdDSA")) {
		*type = TENANT_KEY_ED25519;
	} else if (str_eq(alg, alg_len, "ES256")) {
		*type = TENANT_KEY_P256;
	} else {
		*why = "the token's alg is not accepted (only EdDSA and ES256)";
		return SV_ERR_AUTH;
	}
	if (json_object_object_get_ex(h, "crit", NULL)) {
		*why = "the token header has crit, which is not supported";
		return SV_ERR_AUTH;
	}
	int r = get_str(h, "typ", &typ, &typ_len);
	if (r == SV_ERR_INVALID ||
	    (r == SV_OK && !(typ_len == 3 && strncasecmp(typ, "JWT", 3) == 0))) {
		*why = "the token's typ is not JWT";
		return SV_ERR_AUTH;
	}
	if (get_str(h, "kid", kid, kid_len) != SV_OK) {
		*why = "the token header has no kid";
		return SV_ERR_AUTH;
	}
	return SV_OK;
}

/* The claims after the signature: sub, aud, times, scope. */
static int check_claims(struct json_object *c, const struct token_policy *pol, int64_t now,
                        struct token_claims *out, const char **why)
{
	const char *sub, *scope;
	size_t sub_len, scope_len;
	int64_t exp, iat, nbf;
	if (get_str(c, "sub", &sub, &sub_len) != SV_OK || sub_len == 0 || sub_len > TOKEN_SUB_MAX) {
		*why = "the token's sub is missing or not 1..255 bytes";
		return SV_ERR_AUTH;
	}
	if (!aud_ok(c, pol->aud)) {
		*why = "the token is not addressed to this vault (aud)";
		return SV_ERR_AUTH;
	}
	if (get_time(c, "exp", &exp) != SV_OK || get_time(c, "iat", &iat) != SV_OK) {
		*why = "the token's exp or iat is missing or not an integer";
		return SV_ERR_AUTH;
	}
	int r = get_time(c, "nbf", &nbf);
	if (r == SV_ERR_INVALID) {
		*why = "the token's nbf is not an integer";
		return SV_ERR_AUTH;
	}
	if (exp <= iat) {
		*why = "the token expires before it was issued";
		return SV_ERR_AUTH;
	}
	if (exp - iat > pol->max_lifetime_s) {
		*why = "the token's lifetime (exp - iat) is over the vault's maximum";
		return SV_ERR_AUTH;
	}
	if (now >= exp + pol->skew_s) {
		*why = "the token has expired";
		return SV_ERR_AUTH;
	}
	if (iat > now + pol->skew_s || (r == SV_OK && nbf > now + pol->skew_s)) {
		*why = "the token is not valid yet (iat or nbf in the future)";
		return SV_ERR_AUTH;
	}
	out->scope = TOKEN_SCOPE_ALL;
	r = get_str(c, "scope", &scope, &scope_len);
	if (r == SV_ERR_INVALID ||
	    (r == SV_OK && token_scope_parse(scope, scope_len, &out->scope) != SV_OK)) {
		*why = "the token's scope has a word other than register, recover, delete";
		return SV_ERR_AUTH;
	}
	memcpy(out->sub, sub, sub_len);
	out->sub_len = sub_len;
	out->exp = exp;
	return SV_OK;
}

int token_verify(const struct tenant_set *set, const struct token_policy *pol, int64_t now,
                 const char *tok, size_t len, struct token_claims *out, const char **why)
{
	struct json_object *header = NULL, *claims = NULL;
	const char *kid, *iss;
	size_t kid_len, iss_len, index;
	enum tenant_key_type type;
	uint8_t sig[SIG_LEN];
	int r = SV_ERR_AUTH;
	memset(out, 0, sizeof(*out));
	*why = "the token is malformed (not a compact JWS)";
	if (len == 0) {
		*why = TOKEN_WHY_NONE;
		return SV_ERR_AUTH;
	}
	if (len > TOKEN_MAX_LEN) {
		*why = "the token is too long";
		return SV_ERR_AUTH;
	}
	const char *dot1 = memchr(tok, '.', len);
	const char *dot2 =
	    dot1 == NULL ? NULL : memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok));
	/* An empty signature (alg none) is refused by the header's alg, then by its length. */
	if (dot2 == NULL || dot1 == tok || dot2 == dot1 + 1 ||
	    memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - tok)) != NULL)
		return SV_ERR_AUTH;
	if (decode_json(tok, (size_t)(dot1 - tok), &header) != SV_OK) {
		*why = "the token header is not base64url of a JSON object";
		goto out;
	}
	if (check_header(header, &type, &kid, &kid_len, why) != SV_OK)
		goto out;
	if (decode_json(dot1 + 1, (size_t)(dot2 - dot1 - 1), &claims) != SV_OK) {
		*why = "the token's claims are not base64url of a JSON object";
		goto out;
	}
	const struct tenant *t = NULL;
	if (get_str(claims, "iss", &iss, &iss_len) == SV_OK)
		t = tenant_set_find(set, iss, iss_len, &index);
	if (t == NULL) {
		*why = "the token's issuer (iss) is not a tenant of this vault";
		goto out;
	}
	const struct tenant_key *k = tenant_find_key(t, kid, kid_len);
	if (k == NULL) {
		*why = "the token's kid is not a key of its tenant";
		goto out;
	}
	if (k->type != type) {
		*why = "the token's alg does not match its key";
		goto out;
	}
	size_t sig_len;
	const char *end;
	if (sodium_base642bin(sig, sizeof(sig), dot2 + 1, len - (size_t)(dot2 + 1 - tok), NULL,
	                      &sig_len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != tok + len || sig_len != SIG_LEN) {
		*why = "the token's signature is not 64 bytes of base64url";
		goto out;
	}
	const char *msg = tok;
	size_t msg_len = (size_t)(dot2 - tok);
	int good =
	    type == TENANT_KEY_ED25519
	        ? crypto_sign_verify_detached(sig, (const uint8_t *)msg, msg_len, k->pub) == 0
	        : verify_es256(k, sig, msg, msg_len);
	if (!good) {
		*why = "the token's signature does not verify";
		goto out;
	}
	if (check_claims(claims, pol, now, out, why) != SV_OK)
		goto out;
	out->tenant = index;
	*why = NULL;
	r = SV_OK;
out:
	json_object_put(header);
	json_object_put(claims);
	if (r != SV_OK)
		sodium_memzero(out, sizeof(*out));
	return r;
}
