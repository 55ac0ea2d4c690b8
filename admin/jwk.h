/*
 * A tenant's private signing key as a private JWK (RFC 7517; RFC 8037 for Ed25519): what
 * `sealvault-admin tenant keygen` writes and `sealvault-admin token` signs with, for tests and
 * demos (providers keep their keys in their own backends, docs/tokens.md). Ed25519 keys carry the
 * 32-byte seed as "d" and are used through libsodium; P-256 keys carry the scalar as "d" and are
 * used through OpenSSL. The kid defaults to the key's RFC 7638 thumbprint.
 */
#ifndef SV_ADMIN_JWK_H
#define SV_ADMIN_JWK_H

#include <stddef.h>
#include <stdint.h>

#include "enclave/tenant.h"

#define ADMIN_JWK_SIG_LEN 64 /* EdDSA signature, or ES256 r || s */

struct admin_jwk {
	enum tenant_key_type type;
	char kid[TENANT_KID_MAX + 1];
	uint8_t pub[TENANT_PUB_MAX]; /* as struct tenant_key */
	size_t pub_len;
	uint8_t *d;               /* sodium_malloc'd, 32 bytes: the seed or the scalar */
	uint8_t *ed_sk;           /* sodium_malloc'd libsodium secret key (Ed25519) */
	struct evp_pkey_st *pkey; /* the key pair (P-256) */
};

/* A new key of type with kid (NULL: the thumbprint). SV_OK or an SV_ERR_*. */
int admin_jwk_generate(struct admin_jwk *k, enum tenant_key_type type, const char *kid)
    __attribute__((warn_unused_result));

/* Reads a private JWK from path: SV_OK, or an SV_ERR_* and a reason in why. */
int admin_jwk_read(struct admin_jwk *k, const char *path, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* Writes k as a private JWK to a new file path (mode 0600; an existing file is not replaced). */
int admin_jwk_write_private(const struct admin_jwk *k, const char *path, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* The public JWK Set of k alone, {"keys":[...]}, as malloc'd text (NULL: out of memory). */
char *admin_jwk_public_jwks(const struct admin_jwk *k);

/* Signs msg as JWS alg EdDSA or ES256 (r || s). */
int admin_jwk_sign(const struct admin_jwk *k, const uint8_t *msg, size_t len,
                   uint8_t sig[static ADMIN_JWK_SIG_LEN]) __attribute__((warn_unused_result));

/* A compact JWS access token (docs/tokens.md) signed with k: header alg, kid, typ JWT; claims
 * iss tenant, sub, aud, iat now, exp now + ttl, and scope unless NULL. Into tok (tok_len
 * bytes, NUL-terminated): SV_OK, or an SV_ERR_* and a reason in why. */
int admin_jwk_mint(const struct admin_jwk *k, const char *tenant, const char *sub, const char *aud,
                   const char *scope, long long now, long long ttl, char *tok, size_t tok_len,
                   char *why, size_t why_len) __attribute__((warn_unused_result));

/* "EdDSA" or "ES256". */
const char *admin_jwk_alg(const struct admin_jwk *k);

/* Wipes and frees the key. */
void admin_jwk_free(struct admin_jwk *k);

#endif
