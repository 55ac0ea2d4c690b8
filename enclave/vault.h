/*
 * The vault: request handlers for the client protocol (docs/protocol.md), on top of the OPAQUE
 * core (crypto/) and the durable store (store.h). Single-threaded; the enclave's serve loop owns
 * it.
 *
 * Group commit: vault_handle() may stage store changes. The caller collects the replies of a batch
 * of requests, calls store_commit() once, and only then sends those replies. A reply that depends
 * on a staged change must never leave before that commit.
 */
#ifndef SV_ENCLAVE_VAULT_H
#define SV_ENCLAVE_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "policy/vault.h"

struct vault;
struct store;
struct access;

struct vault_config {
	const uint8_t *context; /* OPAQUE context string; may be empty (length 0) */
	size_t context_len;
	const struct sv_vault_policy *policy;
	/* the access check (enclave/access.h), kept by reference; NULL: none at all, the request's
	 * identifier is the record key (tests) */
	struct access *access;
	/* records (users and tombstones) beyond which a new identifier's registration is refused
	 * with SV_STATUS_FULL (enclave/capacity.h); 0: no limit */
	uint64_t max_users;
	const char *max_users_source; /* its /metrics label (capacity_source_name); may be NULL */
};

int vault_new(struct vault **out, struct store *store, const struct vault_config *cfg)
    __attribute__((warn_unused_result));
void vault_free(struct vault *v);

/* Handles one client request; type is an MSG_F_VAULT row of common/msgtable.h (each has a case
 * here, tests/unit/test_vault.c checks; any other type is answered 400). Always writes a complete
 * SV_MSG_REPLY payload (status byte, then body) into reply and returns 0, including for bad input
 * (SV_STATUS_BAD_REQUEST, nothing changed). Returns a negative SV_ERR_* only when the process must
 * stop (internal error); then reply is undefined. */
int vault_handle(struct vault *v, uint16_t type, const uint8_t *req, size_t req_len,
                 uint64_t now_ms, struct sv_buf *reply) __attribute__((warn_unused_result));

/* vault_handle for a request that came with the access token tok[0..tok_len) (len 0: none;
 * common/msg.h MSG_F_TOKEN). A token the access check refuses is answered
 * SV_STATUS_UNAUTHORIZED or SV_STATUS_FORBIDDEN with the reason, and nothing changes. */
int vault_handle_token(struct vault *v, uint16_t type, const uint8_t *tok, size_t tok_len,
                       const uint8_t *req, size_t req_len, uint64_t now_ms, struct sv_buf *reply)
    __attribute__((warn_unused_result));

/* Drops pending logins older than the policy timeout (an expired login stays charged). */
void vault_expire(struct vault *v, uint64_t now_ms);

/* The pending logins now (between KE2 and KE3, or waiting for change-password/finish), and in
 * *last_guesses how many of them hold a last guess (a rescue slot): for the drain. */
size_t vault_pending(const struct vault *v, size_t *last_guesses);

/* What the threshold realm's handlers (enclave/realm.h) share with the vault rather than keep
 * their own: the store, the access check, the pending-login table (so that its capacity, rescue
 * pool, expiry and the drain hold for a realm's recover2 as for a login/start), the
 * per-identifier login rate and the policy. Valid while v lives. */
struct session_table;
struct idlimit;
struct vault_shared {
	struct store *store;
	struct access *access; /* NULL: no check (unit tests) */
	struct session_table *sessions;
	struct idlimit *idl;
	const struct sv_vault_policy *pol;
	uint64_t max_users; /* 0: no limit */
};
void vault_shared(struct vault *v, struct vault_shared *out);

/* Closes every pending session of record key key[0..key_len) that holds a rescue copy: after a
 * new record was put for it (or it was deleted), an older record must never come back. */
void vault_drop_rescues(struct vault *v, const uint8_t *key, size_t key_len);

/* Appends Prometheus text lines for the vault's counters (guesses, lock-outs, pending logins). */
int vault_metrics(const struct vault *v, struct sv_buf *out) __attribute__((warn_unused_result));

#endif
