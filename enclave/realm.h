/*
 * The realm side of threshold realms (docs/realms.md): the handlers of the six /v2/realm/ routes
 * (common/msgtable.h, handler `realm`). Bodies are decoded and replies encoded by
 * crypto/realm_wire.h, the cryptography is crypto/realm.h; this module adds the access check, the
 * records, the guess charge and the sessions.
 *
 * Records. A user's realm record lives in the vault's own store (same journal, snapshots and TPM
 * anchoring as /v1) under the realm record key RECORD_KEY_REALM | the user's /v1 record key
 * (common/recordkey.h), so it never meets the user's /v1 record. The store's guess limit and
 * guesses used are the registration's G and its counter; the 192-byte record and the blob hold:
 *
 *   record  format u8 (1) | t u8 | n u8 | index u8 | version[16] | ksf_profile[9] | 3 zero bytes |
 *           k_i[32] | unlock_check[32] | unlock_tag[32] | s_i[32] | share_mac[32]      (192)
 *   blob    K_1..K_n[32 n] | ciphertext (41..296)                                    (<= 808)
 *
 * Guess accounting is the vault's (enclave/vault.c): recover2 charges one guess with
 * store_charge_guess before its answer leaves (the caller's group commit), the charge that uses
 * the last guess destroys the record and keeps a copy in the session's rescue slot, and only a
 * right tag proof at recover3 resets the counter or writes that copy back. Sessions are entries
 * of the vault's pending-login table (enclave/session.h, phase SESSION_REALM), so its capacity,
 * the per-identifier rate, expiry at login-timeout-s and the drain hold for them too.
 *
 * Group commit as in vault.h: a reply that depends on a staged change must not leave before the
 * caller's store_commit (the serve loop does this for every request).
 */
#ifndef SV_ENCLAVE_REALM_H
#define SV_ENCLAVE_REALM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "crypto/realm.h"

struct vault;
struct realm_srv;

/* The realm side on top of vault v (whose store, access check, sessions and rate it shares:
 * vault_shared), for the realm named realm_id (this vault's vault_id, common/info.h). */
int realm_srv_new(struct realm_srv **out, struct vault *v, const uint8_t realm_id[REALM_ID_LEN])
    __attribute__((warn_unused_result));
void realm_srv_free(struct realm_srv *r);

/* Handles one /v2/realm/ request (a `realm` row of common/msgtable.h) that came with the access
 * token tok[0..tok_len) (len 0: none). Always writes a complete SV_MSG_REPLY payload (status byte,
 * then body) and returns 0, for bad input too (400, nothing changed); any other type is answered
 * 400. A negative SV_ERR_* only when the process must stop; then reply is undefined. */
int realm_srv_handle(struct realm_srv *r, uint16_t type, const uint8_t *tok, size_t tok_len,
                     const uint8_t *req, size_t req_len, uint64_t now_ms, struct sv_buf *reply)
    __attribute__((warn_unused_result));

/* Appends the Prometheus lines of the realm's counters. */
int realm_srv_metrics(const struct realm_srv *r, struct sv_buf *out)
    __attribute__((warn_unused_result));

#endif
