#include "admin/jwk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <sodium.h>

#include "common/err.h"
#include "enclave/token.h"

#define D_LEN      32
#define COORD_LEN  32
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

const char *admin_jwk_alg(const struct admin_jwk *k)
{
	return k->type == TENANT_KEY_ED25519 ? "EdDSA" : "ES256";
}

void admin_jwk_free(struct admin_jwk *k)
{
	sodium_free(k->d);
	sodium_free(k->ed_sk);
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof(*k));
}

static int add_str(struct json_object *o, const char *key, const char *s)
{
	struct json_object *v = json_object_new_string(s);
	if (v == NULL || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static int add_b64(struct json_object *o, const char *key, const uint8_t *p, size_t n)
{
	char s[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	sodium_bin2base64(s, sizeof(s), p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	int r = add_str(o, key, s);
	sodium_memzero(s, sizeof(s));
	return r;
}

/* The JWK members of k; what: 0 the RFC 7638 thumbprint input (required members only, in
 * lexicographic order), 1 the public JWK, 2 the private JWK. */
static struct json_object *jwk_object(const struct admin_jwk *k, int what)
{
	struct json_object *o = json_object_new_object();
	int ed = k->type == TENANT_KEY_ED25519;
	if (o == NULL || add_str(o, "crv", ed ? "Ed25519" : "P-256") != 0 ||
	    add_str(o, "kty", ed ? "OKP" : "EC") != 0 ||
	    add_b64(o, "x", ed ? k->pub : k->pub + 1, COORD_LEN) != 0 ||
	    (!ed && add_b64(o, "y", k->pub + 1 + COORD_LEN, COORD_LEN) != 0) ||
	    (what == 2 && add_b64(o, "d", k->d, D_LEN) != 0) ||
	    (what > 0 &&
	     (add_str(o, "kid", k->kid) != 0 || add_str(o, "alg", admin_jwk_alg(k)) != 0 ||
	      add_str(o, "use", "sig") != 0))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static int thumbprint(struct admin_jwk *k)
{
	uint8_t h[crypto_hash_sha256_BYTES];
	struct json_object *o = jwk_object(k, 0);
	if (o == NULL)
		return SV_ERR_NOMEM;
	const char *s = json_object_to_json_string_ext(o, JSON_FLAGS);
	crypto_hash_sha256(h, (const uint8_t *)s, strlen(s));
	json_object_put(o);
	sodium_bin2base64(k->kid, sizeof(k->kid), h, sizeof(h),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return SV_OK;
}

static int alloc_secrets(struct admin_jwk *k)
{
	k->d = sodium_malloc(D_LEN);
	k->ed_sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	return k->d != NULL && k->ed_sk != NULL ? SV_OK : SV_ERR_NOMEM;
}

/* The P-256 key pair from k->d and k->pub; fails unless they belong together. */
static int p256_from_d(struct admin_jwk *k)
{
	static char group[] = "prime256v1";
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	BIGNUM *d = BN_secure_new();
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL), *check = NULL;
	int r = SV_ERR_CRYPTO;
	if (bld == NULL || d == NULL || ctx == NULL || BN_bin2bn(k->d, D_LEN, d) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, k->pub, k->pub_len) !=
	        1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &k->pkey, EVP_PKEY_KEYPAIR, params) != 1)
		goto out;
	check = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	if (check != NULL && EVP_PKEY_pairwise_check(check) == 1)
		r = SV_OK;
out:
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(d);
	return r;
}

int admin_jwk_generate(struct admin_jwk *k, enum tenant_key_type type, const char *kid)
{
	memset(k, 0, sizeof(*k));
	k->type = type;
	int r = alloc_secrets(k);
	if (r != SV_OK)
		goto out;
	if (type == TENANT_KEY_ED25519) {
		randombytes_buf(k->d, D_LEN);
		crypto_sign_seed_keypair(k->pub, k->ed_sk, k->d);
		k->pub_len = crypto_sign_PUBLICKEYBYTES;
	} else {
		BIGNUM *d = NULL;
		r = SV_ERR_CRYPTO;
		k->pkey = EVP_EC_gen("P-256");
		if (k->pkey == NULL ||
		    EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1 ||
		    BN_bn2binpad(d, k->d, D_LEN) != D_LEN ||
		    EVP_PKEY_set_utf8_string_param(
		        k->pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "uncompressed") != 1 ||
		    EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_PUB_KEY, k->pub,
		                                    sizeof(k->pub), &k->pub_len) != 1 ||
		    k->pub_len != sizeof(k->pub) || k->pub[0] != 0x04) {
			BN_clear_free(d);
			goto out;
		}
		BN_clear_free(d);
	}
	if (kid != NULL) {
		r = strlen(kid) >= 1 && strlen(kid) <= TENANT_KID_MAX ? SV_OK : SV_ERR_RANGE;
		if (r == SV_OK)
			memcpy(k->kid, kid, strlen(kid));
	} else {
		r = thumbprint(k);
	}
out:
	if (r != SV_OK)
		admin_jwk_free(k);
	return r;
}

/* Reads at most TENANT_JWKS_MAX bytes of path into a sodium_malloc'd buffer. */
static int read_secret_file(const char *path, uint8_t **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return SV_ERR_IO;
	*buf = sodium_malloc(TENANT_JWKS_MAX + 1);
	*len = 0;
	int r = *buf == NULL ? SV_ERR_NOMEM : SV_OK;
	while (r == SV_OK) {
		ssize_t n = read(fd, *buf + *len, TENANT_JWKS_MAX + 1 - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = SV_ERR_IO;
		else if (n == 0)
			break;
		else if ((*len += (size_t)n) > TENANT_JWKS_MAX)
			r = SV_ERR_RANGE;
	}
	close(fd);
	return r;
}

int admin_jwk_read(struct admin_jwk *k, const char *path, char *why, size_t why_len)
{
	uint8_t *text = NULL;
	size_t len = 0, d_len = 0;
	struct json_object *o = NULL, *dv, *set = NULL, *arr = NULL;
	struct tenant t;
	char twhy[200];
	memset(k, 0, sizeof(*k));
	memset(&t, 0, sizeof(t));
	int r = read_secret_file(path, &text, &len);
	if (r != SV_OK) {
		snprintf(why, why_len, "cannot read the key file %s: %s", path,
		         r == SV_ERR_IO ? strerror(errno) : "too large");
		goto out;
	}
	r = SV_ERR_INVALID;
	if (tenant_json_object(text, len, &o) != SV_OK || !json_object_object_get_ex(o, "d", &dv) ||
	    !json_object_is_type(dv, json_type_string)) {
		snprintf(why, why_len, "%s is not a private JWK (a JSON object with \"d\")", path);
		goto out;
	}
	if ((r = alloc_secrets(k)) != SV_OK)
		goto out;
	char *ds = (char *)json_object_get_string(dv); /* wiped in place below */
	size_t ds_len = (size_t)json_object_get_string_len(dv);
	const char *end;
	r = sodium_base642bin(k->d, D_LEN, ds, ds_len, NULL, &d_len, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
	            end == ds + ds_len && d_len == D_LEN
	        ? SV_OK
	        : SV_ERR_INVALID;
	sodium_memzero(ds, ds_len);
	json_object_object_del(o, "d");
	if (r != SV_OK) {
		snprintf(why, why_len, "%s: \"d\" is not 32 bytes of base64url", path);
		goto out;
	}
	/* The public part is checked as a tenant's JWK Set is. */
	set = json_object_new_object();
	arr = json_object_new_array();
	if (set == NULL || arr == NULL || json_object_array_add(arr, json_object_get(o)) != 0 ||
	    json_object_object_add(set, "keys", arr) != 0) {
		json_object_put(arr);
		r = SV_ERR_NOMEM;
		goto out;
	}
	const char *pub_text = json_object_to_json_string_ext(set, JSON_FLAGS);
	r = tenant_parse_jwks(&t, "key", (const uint8_t *)pub_text, strlen(pub_text), twhy,
	                      sizeof(twhy));
	if (r != SV_OK) {
		snprintf(why, why_len, "%s: %s", path, twhy);
		goto out;
	}
	k->type = t.keys[0].type;
	memcpy(k->kid, t.keys[0].kid, sizeof(k->kid));
	memcpy(k->pub, t.keys[0].pub, t.keys[0].pub_len);
	k->pub_len = t.keys[0].pub_len;
	if (k->type == TENANT_KEY_ED25519) {
		uint8_t pk[crypto_sign_PUBLICKEYBYTES];
		crypto_sign_seed_keypair(pk, k->ed_sk, k->d);
		r = memcmp(pk, k->pub, sizeof(pk)) == 0 ? SV_OK : SV_ERR_CRYPTO;
	} else {
		r = p256_from_d(k);
	}
	if (r != SV_OK)
		snprintf(why, why_len, "%s: \"d\" is not the private key of x%s", path,
		         k->type == TENANT_KEY_ED25519 ? "" : " and y");
out:
	tenant_clear(&t);
	json_object_put(set);
	json_object_put(o);
	sodium_free(text);
	if (r != SV_OK)
		admin_jwk_free(k);
	return r;
}

int admin_jwk_write_private(const struct admin_jwk *k, const char *path, char *why, size_t why_len)
{
	struct json_object *o = jwk_object(k, 2);
	if (o == NULL)
		return SV_ERR_NOMEM;
	char *s = (char *)json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_FLAGS);
	size_t n = strlen(s);
	int r = SV_ERR_IO;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(why, why_len, "cannot create %s: %s%s", path, strerror(e),
		         e == EEXIST ? " (a key file is never overwritten)" : "");
		r = e == EEXIST ? SV_ERR_EXISTS : SV_ERR_IO;
		goto out;
	}
	if (write(fd, s, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
		snprintf(why, why_len, "cannot write %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		goto out;
	}
	r = close(fd) == 0 ? SV_OK : SV_ERR_IO;
out:
	sodium_memzero(s, n);
	json_object_put(o);
	return r;
}

char *admin_jwk_public_jwks(const struct admin_jwk *k)
{
	struct json_object *set = json_object_new_object(), *arr = json_object_new_array();
	struct json_object *key = jwk_object(k, 1);
	char *out = NULL;
	if (set == NULL || arr == NULL || key == NULL || json_object_array_add(arr, key) != 0) {
		json_object_put(key);
		json_object_put(arr);
		json_object_put(set);
		return NULL;
	}
	if (json_object_object_add(set, "keys", arr) != 0)
		json_object_put(arr);
	else
		out = strdup(
		    json_object_to_json_string_ext(set, JSON_C_TO_STRING_PRETTY | JSON_FLAGS));
	json_object_put(set);
	return out;
}

static int sign_es256(const struct admin_jwk *k, const uint8_t *msg, size_t len,
                      uint8_t sig[static ADMIN_JWK_SIG_LEN])
{
	uint8_t der[80];
	size_t der_len = sizeof(der);
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *es = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ret = SV_ERR_CRYPTO;
	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
	    EVP_DigestSign(md, der, &der_len, msg, len) != 1 ||
	    (es = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) == NULL)
		goto out;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, sig, COORD_LEN) == COORD_LEN &&
	    BN_bn2binpad(s, sig + COORD_LEN, COORD_LEN) == COORD_LEN)
		ret = SV_OK;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return ret;
}

int admin_jwk_sign(const struct admin_jwk *k, const uint8_t *msg, size_t len,
                   uint8_t sig[static ADMIN_JWK_SIG_LEN])
{
	if (k->type == TENANT_KEY_ED25519)
		return crypto_sign_detached(sig, NULL, msg, len, k->ed_sk) == 0 ? SV_OK
		                                                                : SV_ERR_CRYPTO;
	return sign_es256(k, msg, len, sig);
}

/* Appends the base64url of text to out. */
static void append_b64(char *out, size_t out_max, const void *p, size_t n)
{
	size_t used = strlen(out);
	sodium_bin2base64(out + used, out_max - used, p, n,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static int add_member(struct json_object *o, const char *key, struct json_object *v)
{
	if (v == NULL || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

int admin_jwk_mint(const struct admin_jwk *k, const char *tenant, const char *sub, const char *aud,
                   const char *scope, long long now, long long ttl, char *tok, size_t tok_len,
                   char *why, size_t why_len)
{
	struct json_object *h = json_object_new_object(), *c = json_object_new_object();
	uint8_t sig[ADMIN_JWK_SIG_LEN];
	int r = SV_ERR_NOMEM;
	if (h == NULL || c == NULL ||
	    add_member(h, "alg", json_object_new_string(admin_jwk_alg(k))) ||
	    add_member(h, "kid", json_object_new_string(k->kid)) ||
	    add_member(h, "typ", json_object_new_string("JWT")) ||
	    add_member(c, "iss", json_object_new_string(tenant)) ||
	    add_member(c, "sub", json_object_new_string(sub)) ||
	    add_member(c, "aud", json_object_new_string(aud)) ||
	    add_member(c, "iat", json_object_new_int64(now)) ||
	    add_member(c, "exp", json_object_new_int64(now + ttl)) ||
	    (scope != NULL && add_member(c, "scope", json_object_new_string(scope))))
		goto out;
	const int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
	const char *hs = json_object_to_json_string_ext(h, flags);
	const char *cs = json_object_to_json_string_ext(c, flags);
	size_t need =
	    sodium_base64_ENCODED_LEN(strlen(hs), sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
	    sodium_base64_ENCODED_LEN(strlen(cs), sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
	    sodium_base64_ENCODED_LEN(sizeof(sig), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (need > tok_len) {
		snprintf(why, why_len, "the token would be over %d bytes", TOKEN_MAX_LEN);
		r = SV_ERR_RANGE;
		goto out;
	}
	tok[0] = '\0';
	append_b64(tok, tok_len, hs, strlen(hs));
	strcat(tok, ".");
	append_b64(tok, tok_len, cs, strlen(cs));
	if ((r = admin_jwk_sign(k, (const uint8_t *)tok, strlen(tok), sig)) != SV_OK) {
		snprintf(why, why_len, "signing failed");
		goto out;
	}
	strcat(tok, ".");
	append_b64(tok, tok_len, sig, sizeof(sig));
	r = SV_OK;
out:
	json_object_put(h);
	json_object_put(c);
	return r;
}
