#include "enclave/tenant.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#include "common/err.h"

#define COORD_LEN 32 /* Ed25519 x, P-256 x and y */

int tenant_name_valid(const char *name)
{
	size_t n = strnlen(name, TENANT_NAME_MAX + 1);
	if (n == 0 || n > TENANT_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return 0;
	}
	return 1;
}

int tenant_json_object(const uint8_t *text, size_t len, struct json_object **out)
{
	*out = NULL;
	if (len == 0 || len > TENANT_JWKS_MAX || memchr(text, '\0', len) != NULL)
		return SV_ERR_INVALID;
	struct json_tokener *tok = json_tokener_new_ex(TENANT_JSON_DEPTH);
	if (tok == NULL)
		return SV_ERR_NOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	struct json_object *o = json_tokener_parse_ex(tok, (const char *)text, (int)len);
	int ok = o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
	         json_tokener_get_parse_end(tok) == len && json_object_is_type(o, json_type_object);
	json_tokener_free(tok);
	if (!ok) {
		json_object_put(o);
		return SV_ERR_INVALID;
	}
	*out = o;
	return SV_OK;
}

/* Decodes base64url without padding (RFC 7515 §2) of exactly want bytes. */
static int b64url_exact(uint8_t *out, size_t want, const char *s, size_t len)
{
	size_t n;
	const char *end;
	if (sodium_base642bin(out, want, s, len, NULL, &n, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != s + len || n != want)
		return SV_ERR_INVALID;
	return SV_OK;
}

/* A string member of o: SV_OK with *s and *len, SV_ERR_NOTFOUND when absent, else
 * SV_ERR_INVALID. */
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

static int str_is(struct json_object *o, const char *key, const char *want)
{
	const char *s;
	size_t n;
	return get_str(o, key, &s, &n) == SV_OK && n == strlen(want) && memcmp(s, want, n) == 0;
}

static int p256_prepare(struct tenant_key *k)
{
	static char group[] = "prime256v1";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
	    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, k->pub, k->pub_len),
	    OSSL_PARAM_construct_end()};
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL), *check = NULL;
	int r = SV_ERR_CRYPTO;
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	/* fromdata decodes the point; the public check also tests it is on the curve and not the
	 * point at infinity, whatever the OpenSSL version does on import. */
	check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (check == NULL || EVP_PKEY_public_check(check) != 1)
		goto out;
	k->pkey = pkey;
	pkey = NULL;
	r = SV_OK;
out:
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return r;
}

/* One JWK of the set into k; on failure why says what is wrong with it. */
static int parse_key(struct json_object *jk, struct tenant_key *k, char *why, size_t why_len)
{
	const char *kid, *x, *y;
	size_t kid_len, x_len, y_len;
	memset(k, 0, sizeof(*k));
	if (!json_object_is_type(jk, json_type_object)) {
		snprintf(why, why_len, "a key is not a JSON object");
		return SV_ERR_INVALID;
	}
	if (get_str(jk, "kid", &kid, &kid_len) != SV_OK || kid_len == 0 ||
	    kid_len > TENANT_KID_MAX) {
		snprintf(why, why_len, "a key has no kid (a string of 1..%d characters)",
		         TENANT_KID_MAX);
		return SV_ERR_INVALID;
	}
	for (size_t i = 0; i < kid_len; i++)
		if (kid[i] < 0x21 || kid[i] > 0x7e) {
			snprintf(why, why_len, "a kid has a character other than printable ASCII");
			return SV_ERR_INVALID;
		}
	memcpy(k->kid, kid, kid_len);
	if (json_object_object_get_ex(jk, "d", NULL)) {
		snprintf(why, why_len,
		         "key %s is a private key (it has \"d\"): give the public keys", k->kid);
		return SV_ERR_INVALID;
	}
	const char *alg;
	if (str_is(jk, "kty", "OKP") && str_is(jk, "crv", "Ed25519")) {
		k->type = TENANT_KEY_ED25519;
		alg = "EdDSA";
	} else if (str_is(jk, "kty", "EC") && str_is(jk, "crv", "P-256")) {
		k->type = TENANT_KEY_P256;
		alg = "ES256";
	} else {
		snprintf(why, why_len, "key %s: only OKP/Ed25519 and EC/P-256 keys are supported",
		         k->kid);
		return SV_ERR_INVALID;
	}
	if (json_object_object_get_ex(jk, "alg", NULL) && !str_is(jk, "alg", alg)) {
		snprintf(why, why_len, "key %s: alg must be %s for this key type", k->kid, alg);
		return SV_ERR_INVALID;
	}
	if (json_object_object_get_ex(jk, "use", NULL) && !str_is(jk, "use", "sig")) {
		snprintf(why, why_len, "key %s: use must be \"sig\"", k->kid);
		return SV_ERR_INVALID;
	}
	if (get_str(jk, "x", &x, &x_len) != SV_OK) {
		snprintf(why, why_len, "key %s: no x", k->kid);
		return SV_ERR_INVALID;
	}
	if (k->type == TENANT_KEY_ED25519) {
		if (b64url_exact(k->pub, COORD_LEN, x, x_len) != SV_OK ||
		    crypto_core_ed25519_is_valid_point(k->pub) != 1) {
			snprintf(why, why_len, "key %s: x is not a valid Ed25519 public key",
			         k->kid);
			return SV_ERR_CRYPTO;
		}
		k->pub_len = COORD_LEN;
		return SV_OK;
	}
	k->pub[0] = 0x04;
	if (get_str(jk, "y", &y, &y_len) != SV_OK ||
	    b64url_exact(k->pub + 1, COORD_LEN, x, x_len) != SV_OK ||
	    b64url_exact(k->pub + 1 + COORD_LEN, COORD_LEN, y, y_len) != SV_OK) {
		snprintf(why, why_len, "key %s: x and y must be 32 bytes each, base64url", k->kid);
		return SV_ERR_INVALID;
	}
	k->pub_len = 1 + 2 * COORD_LEN;
	if (p256_prepare(k) != SV_OK) {
		snprintf(why, why_len, "key %s: (x, y) is not a point on P-256", k->kid);
		return SV_ERR_CRYPTO;
	}
	return SV_OK;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(((const struct tenant_key *)a)->kid, ((const struct tenant_key *)b)->kid);
}

void tenant_clear(struct tenant *t)
{
	for (size_t i = 0; i < t->n_keys; i++)
		EVP_PKEY_free(t->keys[i].pkey);
	memset(t, 0, sizeof(*t));
}

int tenant_parse_jwks(struct tenant *t, const char *name, const uint8_t *text, size_t len,
                      char *why, size_t why_len)
{
	struct json_object *root = NULL, *keys;
	int r;
	memset(t, 0, sizeof(*t));
	if (!tenant_name_valid(name)) {
		snprintf(why, why_len,
		         "invalid tenant name (1..%d of a-z 0-9 . _ -, starting with a letter or "
		         "digit)",
		         TENANT_NAME_MAX);
		return SV_ERR_INVALID;
	}
	if (tenant_json_object(text, len, &root) != SV_OK) {
		snprintf(why, why_len, "not a JSON object (or over %d bytes)", TENANT_JWKS_MAX);
		return SV_ERR_INVALID;
	}
	size_t n = 0;
	if (json_object_object_get_ex(root, "keys", &keys) &&
	    json_object_is_type(keys, json_type_array))
		n = json_object_array_length(keys);
	if (n == 0 || n > TENANT_KEYS_MAX) {
		snprintf(why, why_len, "not a JWK Set: \"keys\" must be an array of 1..%d keys",
		         TENANT_KEYS_MAX);
		r = SV_ERR_INVALID;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		r = parse_key(json_object_array_get_idx(keys, i), &t->keys[i], why, why_len);
		if (r != SV_OK)
			goto out;
		t->n_keys++;
	}
	qsort(t->keys, t->n_keys, sizeof(t->keys[0]), cmp_key);
	for (size_t i = 1; i < t->n_keys; i++)
		if (strcmp(t->keys[i - 1].kid, t->keys[i].kid) == 0) {
			snprintf(why, why_len, "two keys have kid %s", t->keys[i].kid);
			r = SV_ERR_INVALID;
			goto out;
		}
	memcpy(t->name, name, strlen(name));
	r = SV_OK;
out:
	json_object_put(root);
	if (r != SV_OK)
		tenant_clear(t);
	return r;
}

static int cmp_tenant(const void *a, const void *b)
{
	return strcmp(((const struct tenant *)a)->name, ((const struct tenant *)b)->name);
}

int tenant_set_add(struct tenant_set *set, struct tenant *t)
{
	if (tenant_set_find(set, t->name, strlen(t->name), NULL) != NULL)
		return SV_ERR_EXISTS;
	if (set->n >= TENANTS_MAX)
		return SV_ERR_RANGE;
	struct tenant *grown = realloc(set->tenants, (set->n + 1) * sizeof(*grown));
	if (grown == NULL)
		return SV_ERR_NOMEM;
	set->tenants = grown;
	set->tenants[set->n++] = *t;
	memset(t, 0, sizeof(*t));
	qsort(set->tenants, set->n, sizeof(set->tenants[0]), cmp_tenant);
	return SV_OK;
}

void tenant_set_free(struct tenant_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		tenant_clear(&set->tenants[i]);
	free(set->tenants);
	set->tenants = NULL;
	set->n = 0;
}

/* Reads dirfd/file (a regular file of at most TENANT_JWKS_MAX bytes) into buf. */
static int read_file(int dirfd, const char *file, uint8_t *buf, size_t *len)
{
	int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	if (fd < 0)
		return SV_ERR_IO;
	int r = SV_ERR_IO;
	*len = 0;
	if (fstat(fd, &st) != 0)
		goto out;
	r = SV_ERR_RANGE;
	if (!S_ISREG(st.st_mode) || st.st_size > TENANT_JWKS_MAX)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf + *len, TENANT_JWKS_MAX + 1 - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = SV_ERR_IO;
			goto out;
		}
		if (n == 0)
			break;
		*len += (size_t)n;
		if (*len > TENANT_JWKS_MAX)
			goto out;
	}
	r = SV_OK;
out:
	close(fd);
	return r;
}

int tenant_set_load_dir(struct tenant_set *set, const char *dir, char *why, size_t why_len)
{
	const size_t suffix = strlen(TENANT_FILE_SUFFIX);
	struct tenant *t = NULL;
	uint8_t *buf = NULL;
	int r = SV_OK;
	memset(set, 0, sizeof(*set));
	DIR *d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT)
			return SV_OK;
		snprintf(why, why_len, "cannot open the tenants directory %s: %s", dir,
		         strerror(errno));
		return SV_ERR_IO;
	}
	t = malloc(sizeof(*t));
	buf = malloc(TENANT_JWKS_MAX + 1);
	if (t == NULL || buf == NULL) {
		r = SV_ERR_NOMEM;
		snprintf(why, why_len, "out of memory reading %s", dir);
		goto out;
	}
	for (;;) {
		errno = 0;
		struct dirent *e = readdir(d);
		if (e == NULL) {
			if (errno != 0) {
				r = SV_ERR_IO;
				snprintf(why, why_len, "cannot read %s: %s", dir, strerror(errno));
			}
			break;
		}
		size_t n = strlen(e->d_name);
		if (e->d_name[0] == '.' || n <= suffix ||
		    strcmp(e->d_name + n - suffix, TENANT_FILE_SUFFIX) != 0)
			continue;
		char name[TENANT_NAME_MAX + 2] = {0};
		if (n - suffix > TENANT_NAME_MAX) {
			r = SV_ERR_INVALID;
			snprintf(why, why_len, "%s/%s: the tenant name is too long", dir,
			         e->d_name);
			break;
		}
		memcpy(name, e->d_name, n - suffix);
		size_t len;
		r = read_file(dirfd(d), e->d_name, buf, &len);
		if (r != SV_OK) {
			snprintf(why, why_len, "%s/%s: %s", dir, e->d_name,
			         r == SV_ERR_RANGE ? "not a regular file of at most 64 KiB"
			                           : strerror(errno));
			break;
		}
		char kwhy[200];
		r = tenant_parse_jwks(t, name, buf, len, kwhy, sizeof(kwhy));
		if (r != SV_OK) {
			snprintf(why, why_len, "%s/%s: %s", dir, e->d_name, kwhy);
			break;
		}
		r = tenant_set_add(set, t);
		if (r != SV_OK) {
			tenant_clear(t);
			snprintf(why, why_len, "%s: more than %d tenants", dir, TENANTS_MAX);
			break;
		}
	}
out:
	closedir(d);
	free(t);
	free(buf);
	if (r != SV_OK)
		tenant_set_free(set);
	return r;
}

const struct tenant *tenant_set_find(const struct tenant_set *set, const char *name, size_t len,
                                     size_t *index)
{
	for (size_t i = 0; i < set->n; i++)
		if (strlen(set->tenants[i].name) == len &&
		    memcmp(set->tenants[i].name, name, len) == 0) {
			if (index != NULL)
				*index = i;
			return &set->tenants[i];
		}
	return NULL;
}

const struct tenant_key *tenant_find_key(const struct tenant *t, const char *kid, size_t len)
{
	for (size_t i = 0; i < t->n_keys; i++)
		if (strlen(t->keys[i].kid) == len && memcmp(t->keys[i].kid, kid, len) == 0)
			return &t->keys[i];
	return NULL;
}

static void hash_str(crypto_hash_sha256_state *st, const void *p, size_t n)
{
	uint8_t be[2] = {(uint8_t)(n >> 8), (uint8_t)n};
	crypto_hash_sha256_update(st, be, 2);
	crypto_hash_sha256_update(st, p, n);
}

void tenant_set_digest(const struct tenant_set *set, uint8_t out[static TENANT_DIGEST_LEN])
{
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	hash_str(&st, TENANT_DIGEST_TAG, sizeof(TENANT_DIGEST_TAG) - 1);
	uint8_t count[2] = {(uint8_t)(set->n >> 8), (uint8_t)set->n};
	crypto_hash_sha256_update(&st, count, 2);
	for (size_t i = 0; i < set->n; i++) {
		const struct tenant *t = &set->tenants[i];
		hash_str(&st, t->name, strlen(t->name));
		uint8_t nk = (uint8_t)t->n_keys;
		crypto_hash_sha256_update(&st, &nk, 1);
		for (size_t j = 0; j < t->n_keys; j++) {
			const struct tenant_key *k = &t->keys[j];
			uint8_t type = (uint8_t)k->type;
			hash_str(&st, k->kid, strlen(k->kid));
			crypto_hash_sha256_update(&st, &type, 1);
			hash_str(&st, k->pub, k->pub_len);
		}
	}
	crypto_hash_sha256_final(&st, out);
}
