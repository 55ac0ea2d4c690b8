/*
 * Who may act on a record (issue 13, docs/tokens.md): the enclave's check of the access token
 * that every vault request carries (common/msg.h MSG_F_TOKEN), and the record key it grants.
 *
 * Two modes (sealvault.conf(5) `auth`):
 *   tokens  every request needs a token a tenant signed (enclave/token.h) whose sub is the
 *           request's identifier (or the pending login's user) and whose scope covers the
 *           operation; records are keyed by (tenant, sub), so tenants never meet;
 *   open    no token is asked for or looked at; records are keyed by the identifier alone
 *           (the behaviour before tokens; set only explicitly, and warned about at every start).
 *
 * The record key in tokens mode, the store's identifier (at most STORE_ID_MAX bytes):
 *
 *   0x00 | u8 length of the tenant name | tenant name | sub
 *
 * An open-mode identifier may not begin with 0x00 (refused as malformed), so the two kinds of
 * key never meet in one store: a vault switched from open to tokens keeps its open records
 * readable by nobody but `sealvault-admin delete`, and the other way round. Nor may it begin with
 * 0x01 (RECORD_KEY_REALM): a threshold realm's record (enclave/realm.h) is kept under
 * 0x01 | the /v1 record key of either kind (common/recordkey.h), one byte more, so that it never
 * meets a /v1 record.
 *
 * A check is pure apart from the wall clock (CLOCK_REALTIME, which the sandbox allows), and
 * refusing changes nothing but the refusal counters.
 */
#ifndef SV_ENCLAVE_ACCESS_H
#define SV_ENCLAVE_ACCESS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "enclave/store.h"
#include "enclave/tenant.h"
#include "enclave/token.h"

#define ACCESS_KEY_TAG 0x00 /* first byte of a tokens-mode record key: common/recordkey.h */

enum access_mode {
	ACCESS_OPEN = 1,   /* POLICY_AUTH_OPEN */
	ACCESS_TOKENS = 2, /* POLICY_AUTH_TOKENS */
};

struct access;

/* What a verified token grants (tokens mode), or nothing to check (open mode). */
struct access_grant {
	int open; /* 1: open mode, every identifier is the caller's own */
	struct token_claims claims;
};

/* An access check in mode with the tenants of *set (moved into it: *set is left empty) and the
 * token policy pol (tokens mode; both ignored in open mode). SV_OK, SV_ERR_NOMEM or SV_ERR_CONFIG
 * (an unknown mode). */
int access_new(struct access **out, enum access_mode mode, struct tenant_set *set,
               const struct token_policy *pol) __attribute__((warn_unused_result));
void access_free(struct access *a);

enum access_mode access_mode(const struct access *a);

/* For tests: judge tokens at this time (seconds since the epoch) instead of the wall clock;
 * 0 goes back to the wall clock. */
void access_set_clock(struct access *a, int64_t now);

/* Verifies the request's token tok[0..len) (len 0: none) for an operation that needs every
 * scope bit of all and, when any is not 0, one of the bits of any (TOKEN_SCOPE_*). SV_OK and *g;
 * or SV_STATUS_UNAUTHORIZED / SV_STATUS_FORBIDDEN (common/msg.h, positive) and a static reason in
 * *why, fit for RFC 6750's error_description. Open mode: SV_OK, g->open = 1. */
int access_verify(struct access *a, const uint8_t *tok, size_t len, unsigned all, unsigned any,
                  struct access_grant *g, const char **why) __attribute__((warn_unused_result));

/* The record key for the request's identifier id[0..id_len) under grant g: SV_OK and
 * key[0..*key_len); SV_STATUS_UNAUTHORIZED when the token's sub is not id;
 * SV_STATUS_BAD_REQUEST when the key would not fit STORE_ID_MAX bytes (tokens mode) or an
 * open-mode identifier begins with ACCESS_KEY_TAG. *why as above. */
int access_key(struct access *a, const struct access_grant *g, const uint8_t *id, size_t id_len,
               uint8_t key[static STORE_ID_MAX], size_t *key_len, const char **why)
    __attribute__((warn_unused_result));

/* Whether grant g names the user whose record key is key[0..key_len) (a pending login's): SV_OK,
 * or SV_STATUS_UNAUTHORIZED and *why (the token was swapped for another user's). */
int access_owns(struct access *a, const struct access_grant *g, const uint8_t *key, size_t key_len,
                const char **why) __attribute__((warn_unused_result));

/* The whole check of one request, for the vault's and the realm's handlers. a NULL: no check at
 * all (unit tests): the identifier is the key. Otherwise access_verify of tok[0..tok_len) for the
 * scopes (all, any), then access_key of id[0..id_len) into key, or, with id NULL, access_owns of
 * key[0..*key_len) (a pending session's). SV_OK, or the SV_STATUS_* to answer with *why. */
int access_request(struct access *a, const uint8_t *tok, size_t tok_len, unsigned all, unsigned any,
                   const uint8_t *id, size_t id_len, uint8_t key[static STORE_ID_MAX],
                   size_t *key_len, const char **why) __attribute__((warn_unused_result));

/* The tenant set digest (tenant_set_digest); all zero in open mode. */
void access_digest(const struct access *a, uint8_t out[static TENANT_DIGEST_LEN]);

/* Appends the Prometheus lines: the mode, tenants and keys loaded, tokens accepted, refusals. */
int access_metrics(const struct access *a, struct sv_buf *out) __attribute__((warn_unused_result));

#endif
