/*
 * Access tokens (docs/tokens.md): a JWT (RFC 7519) in JWS compact serialization (RFC 7515),
 * signed by a tenant's key (enclave/tenant.h) with alg EdDSA (Ed25519, RFC 8037) or ES256
 * (ECDSA P-256 SHA-256, the signature as r || s). Every other alg ("none", HS256, RS256, ...)
 * and a "crit" header are refused; "kid" is required and selects the key within the tenant
 * named by "iss".
 *
 * Claims: iss (the tenant), sub (the user's identifier, 1..TOKEN_SUB_MAX bytes), aud (the vault's
 * realm id, a string or an array holding it), exp and iat (integer seconds); optional nbf and
 * scope (space-separated words of "register recover delete"; absent means all of them). The
 * lifetime exp - iat may not exceed the policy's maximum; exp, nbf and an iat in the future are
 * judged with the policy's clock skew.
 *
 * token_verify is pure: the tenant set is prepared before the sandbox, the time is an argument,
 * and it touches no file, device or clock. A refused token gets a short fixed reason, safe to
 * send to the client as RFC 6750's error_description (no secret, no part of the token).
 */
#ifndef SV_ENCLAVE_TOKEN_H
#define SV_ENCLAVE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "enclave/tenant.h"

#define TOKEN_MAX_LEN              4096 /* bytes of one compact JWS */
#define TOKEN_SUB_MAX              255  /* as an identifier (STORE_ID_MAX, VAULTREQ_ID_MAX) */
#define TOKEN_AUD_MAX              64   /* bytes of the realm id the policy holds */
#define TOKEN_AUD_ARRAY_MAX        16   /* audiences in an aud array */
#define TOKEN_MAX_LIFETIME_DEFAULT 600  /* s, exp - iat */
#define TOKEN_SKEW_DEFAULT         60   /* s */
#define TOKEN_TIME_MAX             ((int64_t)1 << 40) /* exp, iat, nbf: 0..2^40 s */

/* Scope bits; TOKEN_SCOPE_ALL when the token has no scope claim. */
#define TOKEN_SCOPE_REGISTER 0x1u
#define TOKEN_SCOPE_RECOVER  0x2u
#define TOKEN_SCOPE_DELETE   0x4u
#define TOKEN_SCOPE_ALL      0x7u

/* error_description of a token whose scope does not cover the operation (403,
 * error="insufficient_scope"); every token_verify refusal is error="invalid_token" (401). */
#define TOKEN_WHY_SCOPE "the token's scope does not cover this operation"
#define TOKEN_WHY_NONE  "no access token"

struct token_policy {
	char aud[TOKEN_AUD_MAX + 1]; /* this vault's realm id (info_vault_id, hex) */
	int64_t max_lifetime_s;      /* 1.. */
	int64_t skew_s;              /* 0.. */
};

struct token_claims {
	size_t tenant; /* index in the tenant set */
	uint8_t sub[TOKEN_SUB_MAX];
	size_t sub_len;
	unsigned scope; /* TOKEN_SCOPE_* bits */
	int64_t exp;
};

/* Verifies the compact JWS tok[0..len) against set and pol at time now (seconds since the
 * epoch). SV_OK and *out filled; or SV_ERR_AUTH, *why a static reason, and *out zeroed. The
 * caller still compares out->sub with the request's identifier (or the pending login's) and
 * out->scope with the operation (TOKEN_WHY_SCOPE). */
int token_verify(const struct tenant_set *set, const struct token_policy *pol, int64_t now,
                 const char *tok, size_t len, struct token_claims *out, const char **why)
    __attribute__((warn_unused_result));

/* Parses a scope string (words of "register recover delete" separated by single spaces) into
 * TOKEN_SCOPE_* bits: SV_OK, or SV_ERR_INVALID for an unknown word or bad spacing. */
int token_scope_parse(const char *s, size_t len, unsigned *mask)
    __attribute__((warn_unused_result));

/* 1 if the granted scope bits cover every bit of need, else 0. */
static inline int token_scope_covers(unsigned granted, unsigned need)
{
	return (granted & need) == need;
}

#endif
