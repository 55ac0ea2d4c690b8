/*
 * Tenants: the providers a vault trusts to sign access tokens (docs/tokens.md). A tenant is a
 * name and a JWK Set (RFC 7517) of public signing keys, Ed25519 (RFC 8037, "OKP") or P-256
 * ("EC"), each selected by its `kid`; several keys per tenant allow rotation. The set lives in
 * one file per tenant, TENANT_DIR_DEFAULT/NAME.jwks, read once at start: every key is decoded,
 * checked (a valid point, on the curve) and prepared for verification before the enclave's
 * sandbox, so that enclave/token.c verifies with no file or device access.
 *
 * tenant_set_digest() is a canonical hash of the loaded set (names, kids, key bytes; not the
 * files' formatting), for the attestation policy hash to pin which tenants may act.
 */
#ifndef SV_ENCLAVE_TENANT_H
#define SV_ENCLAVE_TENANT_H

#include <stddef.h>
#include <stdint.h>

struct json_object;
struct evp_pkey_st;

#define TENANT_NAME_MAX    64    /* bytes: [a-z0-9] then [a-z0-9._-], see tenant_name_valid */
#define TENANT_KID_MAX     128   /* bytes of printable ASCII (0x21..0x7e) */
#define TENANT_KEYS_MAX    16    /* keys in one tenant's JWK Set */
#define TENANTS_MAX        256   /* tenants in one vault */
#define TENANT_JWKS_MAX    65536 /* bytes of one .jwks file */
#define TENANT_JSON_DEPTH  8     /* nesting accepted in a JWK Set, a JWS header or claims */
#define TENANT_DIGEST_LEN  32
#define TENANT_DIGEST_TAG  "sealvault-tenants-1"
#define TENANT_FILE_SUFFIX ".jwks"
#define TENANT_DIR_DEFAULT "/etc/sealvault/tenants.d"

enum tenant_key_type {
	TENANT_KEY_ED25519 = 1, /* kty OKP, crv Ed25519, JWS alg EdDSA */
	TENANT_KEY_P256 = 2,    /* kty EC, crv P-256, JWS alg ES256 */
};

#define TENANT_PUB_MAX 65 /* P-256 uncompressed point 0x04 || x || y; Ed25519 is 32 */

struct tenant_key {
	char kid[TENANT_KID_MAX + 1];
	enum tenant_key_type type;
	uint8_t pub[TENANT_PUB_MAX];
	size_t pub_len;
	struct evp_pkey_st *pkey; /* P-256: the prepared OpenSSL key; NULL for Ed25519 */
};

struct tenant {
	char name[TENANT_NAME_MAX + 1];
	struct tenant_key keys[TENANT_KEYS_MAX];
	size_t n_keys; /* sorted by kid */
};

struct tenant_set {
	struct tenant *tenants; /* sorted by name */
	size_t n;
};

/* 1 if name (NUL-terminated) is 1..TENANT_NAME_MAX bytes of [a-z0-9._-] starting with [a-z0-9],
 * else 0. */
int tenant_name_valid(const char *name);

/* Parses text (len bytes, a JSON object; nothing may follow it) as json-c does with strict
 * syntax, UTF-8 validation and TENANT_JSON_DEPTH: SV_OK with *out (json_object_put it), or
 * SV_ERR_INVALID. A repeated member name keeps the last value (RFC 7515 §5.2 allows that). */
int tenant_json_object(const uint8_t *text, size_t len, struct json_object **out)
    __attribute__((warn_unused_result));

/* Parses one tenant's public JWK Set: {"keys":[...]} with 1..TENANT_KEYS_MAX keys, each OKP/
 * Ed25519 (x) or EC/P-256 (x, y) with a unique kid and, if present, alg (EdDSA or ES256, to
 * match) and use ("sig"). Refuses private keys (a "d" member). SV_OK and t filled (free with
 * tenant_clear), or an SV_ERR_* and a one-line reason in why, and t empty. */
int tenant_parse_jwks(struct tenant *t, const char *name, const uint8_t *text, size_t len,
                      char *why, size_t why_len) __attribute__((warn_unused_result));

/* Frees the prepared keys of t and empties it. */
void tenant_clear(struct tenant *t);

/* Reads every DIR/NAME.jwks (regular files; other names are skipped, an invalid NAME is an
 * error) into set, sorted by name. A missing directory is an empty set. SV_OK, or an SV_ERR_*,
 * a reason naming the file in why, and an empty set. */
int tenant_set_load_dir(struct tenant_set *set, const char *dir, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* Moves *t into set (t is left empty): SV_OK, SV_ERR_EXISTS for a name already there (t is
 * left as it was), SV_ERR_RANGE past TENANTS_MAX, SV_ERR_NOMEM. */
int tenant_set_add(struct tenant_set *set, struct tenant *t) __attribute__((warn_unused_result));

void tenant_set_free(struct tenant_set *set);

/* The tenant named by name[0..len), or NULL; *index is its place in set. */
const struct tenant *tenant_set_find(const struct tenant_set *set, const char *name, size_t len,
                                     size_t *index);

/* t's key named kid[0..len), or NULL. */
const struct tenant_key *tenant_find_key(const struct tenant *t, const char *kid, size_t len);

/* SHA-256 over TENANT_DIGEST_TAG, then per tenant in name order: its name, key count and per key
 * in kid order: kid, type, public key bytes (lengths as 2-byte big-endian prefixes). Two sets
 * have the same digest exactly when they trust the same keys under the same names and kids. */
void tenant_set_digest(const struct tenant_set *set, uint8_t out[static TENANT_DIGEST_LEN]);

#endif
