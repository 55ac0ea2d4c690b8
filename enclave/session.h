/*
 * Pending logins: the logins between KE2 and KE3 (and between a change-password login and its
 * change-password/finish), in a table of fixed capacity allocated once at start-up (before the
 * sandbox) in sodium_malloc'd memory, because every entry holds secrets (the OPAQUE server state,
 * then the session key). A smaller pool of rescue slots holds a copy of the record and blob for the
 * logins that were charged the last allowed guess (whose charge destroyed the record). One tenant
 * (the tenant named by a tokens-mode record key, common/recordkey.h) may hold at most
 * session_rescue_share() of them, so that a tenant keeping throw-away identifiers on their last
 * guess cannot make another tenant's last-guess recovery wait; open-mode identifiers share the
 * whole pool. A threshold realm's recover2 (enclave/realm.h) opens an entry of the same table
 * (phase SESSION_REALM: the realm record key, the hash of the record it evaluated with, the
 * attempts left, a rescue slot for its last guess; no OPAQUE state), so that the table's limits,
 * the rescue pool and the drain hold for it as for a login.
 *
 * Entries are found by their 16-byte session id through a hash index. An id is 8 random bytes, 4
 * bytes drawn at random for each run of the enclave, and a 4-byte tag, a MAC of the first 12 under
 * a key the vault derives from its secrets (session_table_set_key): so that a login begun before a
 * restart (a valid tag, another run) is told from one that never began. Entries are kept on a list
 * in creation order so that expiry drops the oldest first in O(1) each. Nothing here allocates
 * after session_table_new(). Single-threaded.
 */
#ifndef SV_ENCLAVE_SESSION_H
#define SV_ENCLAVE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/opaque.h"
#include "enclave/store.h"

#define SESSION_ID_LEN      16
#define SESSION_RUN_LEN     4
#define SESSION_TAG_LEN     4
#define SESSION_TAG_KEY_LEN 32

enum session_phase {
	SESSION_FREE = 0,
	SESSION_KE2_SENT = 1,     /* waiting for login/finish */
	SESSION_CHANGE_READY = 2, /* KE3 verified, waiting for change-password/finish */
	SESSION_REALM = 3,        /* a realm's recover2 answered, waiting for recover3 */
};

#define SESSION_RECORD_HASH_LEN 32

/* A copy of a destroyed record, kept for the one login that may still restore it. */
struct session_rescue {
	uint8_t record[STORE_RECORD_LEN];
	uint8_t blob[STORE_BLOB_MAX];
	uint16_t blob_len;
	uint8_t guess_limit;
	uint8_t in_use;
};

/* One pending login. The vault owns the fields between phase and created_ms; the table manages
 * sid, phase, created_ms, the rescue slot and its own links. */
struct session {
	uint8_t sid[SESSION_ID_LEN];
	uint8_t phase;         /* enum session_phase */
	uint8_t fake;          /* 1: unknown identifier, fake KE2 (can never authenticate) */
	uint8_t attempts_left; /* as reported with KE2 */
	uint8_t id_len;
	uint8_t id[STORE_ID_MAX];
	uint8_t record_hash[SESSION_RECORD_HASH_LEN]; /* BLAKE2b of the record KE2 came from */
	uint64_t created_ms;
	/* SECRET: expected KE3 and session key; after a valid KE3 only ost.session_key is kept. */
	struct opaque_server_state ost;
	uint32_t rescue;         /* index of the rescue slot, SESSION_NO_RESCUE when none */
	uint32_t hnext;          /* hash chain / free list */
	uint32_t older, newer;   /* creation-order list */
	uint32_t folder, fnewer; /* creation-order list of the fake ones (session_mark_fake) */
};

#define SESSION_NO_RESCUE UINT32_MAX

struct session_table;

/* cap: policy pending_login_max; rescue_cap: rescue slots (1..cap); timeout_ms: policy
 * login_timeout_s * 1000. */
int session_table_new(struct session_table **out, size_t cap, size_t rescue_cap,
                      uint64_t timeout_ms) __attribute__((warn_unused_result));
void session_table_free(struct session_table *t);

/* A free entry with a fresh random session id, phase SESSION_KE2_SENT, created_ms = now_ms, no
 * rescue slot, all other fields zero. Drops expired entries first. When the table is full, the
 * oldest entry marked fake (an unknown identifier's login, which can never authenticate) is
 * closed to make room, whoever asks; SV_ERR_BUSY when the table is full of real logins. */
int session_open(struct session_table *t, uint64_t now_ms, struct session **out)
    __attribute__((warn_unused_result));

/* Attaches a free rescue slot to s (zeroed, in_use set) and returns it; SV_ERR_BUSY when all are
 * taken or s's tenant holds its share (set s->id first). The slot is wiped and freed when s is
 * closed. */
int session_rescue_attach(struct session_table *t, struct session *s, struct session_rescue **out)
    __attribute__((warn_unused_result));
/* The rescue slot of s, or NULL. */
struct session_rescue *session_rescue_of(struct session_table *t, const struct session *s);
/* Whether a login for record key id[0..id_len) could take a rescue slot: one is free and the key's
 * tenant holds fewer than its share (so that a login can check before it charges anything). */
int session_rescue_available(const struct session_table *t, const uint8_t *id, size_t id_len);
/* The most rescue slots one tenant may hold: half the pool, at least 1. */
size_t session_rescue_share(const struct session_table *t);
/* Live entries holding a rescue slot. */
size_t session_rescue_count(const struct session_table *t);

/* The live, unexpired entry with this id, or NULL. Does not change anything. */
struct session *session_find(struct session_table *t, const uint8_t sid[SESSION_ID_LEN],
                             uint64_t now_ms);

/* The key of the ids' tags, the same in every run of one vault (until set: a random one). */
void session_table_set_key(struct session_table *t, const uint8_t key[SESSION_TAG_KEY_LEN]);
/* 1 if sid carries a valid tag but another run's bytes: a login begun before a restart, whose
 * state ended with that run. 0 for this run's ids and for ids the vault never gave out. */
int session_other_run(const struct session_table *t, const uint8_t sid[SESSION_ID_LEN]);

/* Marks s as the login of an unknown identifier (sets s->fake): the first kind a full table
 * drops (session_open). */
void session_mark_fake(struct session_table *t, struct session *s);
/* Fake logins dropped to make room so far. */
uint64_t session_evicted(const struct session_table *t);

/* Wipes the entry and returns it to the free list (a consumed session id is never found again). */
void session_close(struct session_table *t, struct session *s);

/* Closes every entry older than the timeout; returns how many. */
size_t session_expire(struct session_table *t, uint64_t now_ms);

/* Calls fn on every live entry (for invalidating logins of a re-registered identifier). fn may
 * close the entry it is given. */
void session_foreach(struct session_table *t,
                     void (*fn)(struct session_table *, struct session *, void *), void *arg);

size_t session_count(const struct session_table *t);
size_t session_capacity(const struct session_table *t);

#endif
