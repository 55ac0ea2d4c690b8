/*
 * Internal to the store (enclave/store.c, store_open.c, store_init.c, store_snapshot.c): the
 * in-memory state and the helpers the three files share. Nothing outside enclave/store*.c includes
 * this.
 */
#ifndef SV_ENCLAVE_STORE_IMPL_H
#define SV_ENCLAVE_STORE_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "enclave/anchor.h"
#include "enclave/journal.h"
#include "enclave/store.h"

#define FN_HDR       "vault.hdr"
#define FN_JOURNAL   "journal"
#define FN_SLOT_A    "snap.a"
#define FN_SLOT_B    "snap.b"
#define FN_LOCK      "lock"
#define FN_INTENT    "upgrade.intent" /* store_upgrade.c: an upgrade or migration under way */
#define PENDING_MAX  (64u << 20)
#define UNCLEAN_HIST 64 /* unclean boots remembered for the yearly budget */

struct user {
	uint64_t charged_at; /* counter of the commit of the last charge not yet reset (0: none) */
	uint16_t blob_len;
	uint8_t id_len;
	uint8_t limit;
	uint8_t used;
	uint8_t destroyed;
	uint8_t arena;  /* 1: in a block of s->arena (loaded from a snapshot), never freed alone */
	uint8_t data[]; /* id | record | blob; only id when destroyed */
};

/* Users loaded from a snapshot are laid out one after the other in big blocks instead of one
 * malloc each: no per-user allocator overhead (about 12 bytes a user) and a faster start. */
struct arena {
	struct arena *next;
	size_t used, cap;
	uint8_t data[];
};

#define DELETED ((struct user *)(uintptr_t)1)

struct store {
	struct tpm *tpm;
	struct anchor *anchor;
	struct sv_vault_policy pol;
	int readonly;
	int failed; /* a commit failed half-way: memory is ahead of disk, refuse everything */
	int lock_fd, jfd, slot_fd[2];
	int active;   /* slot index the journal continues */
	uint8_t *key; /* sodium_malloc: vault key */
	struct journal_keys *keys;
	struct store_secrets *secrets;
	uint8_t hkey[crypto_shorthash_KEYBYTES];
	struct user **tab;
	uint8_t *tags;           /* per slot: 8 bits of the identifier's hash (store.c, find_tag) */
	size_t cap, nslots_used; /* nslots_used counts live entries and DELETED markers */
	struct arena *arena;     /* blocks of the users loaded from the snapshot, newest first */
	int bulk;                /* loading a snapshot: new users go into the arena */
	uint64_t users, destroyed;
	uint64_t counter, nv_writes, snap_counter;
	uint8_t head_mac[JOURNAL_MAC_LEN];
	uint64_t jlen, tail_bytes;
	uint64_t jframes;           /* journal frames replayed at open */
	int penalty_charged;        /* this open charged a power-cut penalty */
	uint64_t penalty_destroyed; /* ... and destroyed this many records with it */
	uint64_t snap_bytes;        /* size of the active snapshot */
	size_t chunk_bytes; /* plaintext bytes per snapshot chunk (store_set_snapshot_chunk) */
	/* a snapshot written by the snapshot thread (store_snapshot.c, store_snapshot_start):
	 * while snap_live, users change only in copies and leave the table into retired; every
	 * journal frame written meanwhile is kept in snap_delta for the snapshot's delta chunks */
	struct snap_job *snap_job;
	int snap_live;
	int keep_threads; /* store_keep_threads */
	struct user **retired;
	size_t nretired, retired_cap;
	struct sv_buf snap_delta;
	int roll_forward;
	/* counter scheme (anchor.h): orderly mask (0: plain), what the TPM holds (what survives a
	 * power cut follows from it and counter: store.c, durable), and the counter before the last
	 * commit frame replayed (anchor_judge) */
	uint32_t orderly_mask;
	uint32_t unclean_index;
	uint64_t tpm_counter;
	uint64_t last_from;
	uint64_t apply_counter; /* counter of the frame whose ops are being applied */
	int need_flush;         /* a staged change must reach NV before it is answered */
	int flush_ok;           /* forced flushes allowed now (store_set_flush_allowed) */
	uint64_t write_target;  /* counter of the frame store_write wrote */
	uint64_t increments, forced_flushes;
	/* hybrid: unclean boots (power cuts detected at start), oldest first; the operator's
	 * last acknowledgement; the unclean-boots counter after the last one */
	int power_cut;
	uint64_t unclean_times[UNCLEAN_HIST];
	size_t nunclean;
	uint64_t ack_time;
	uint64_t unclean_value;
	uint64_t penalties;
	uint32_t nv_index;
	uint32_t pcr_mask;
	uint32_t seal; /* JOURNAL_SEAL_* */
	uint64_t init_time;
	uint8_t scheme;
	struct sv_buf pending;
	size_t npending;
	size_t nanchored; /* staged changes whose reply must wait for the NV increment */
	/* store_write done, store_anchor not yet: the sealed frame's length and MAC, and what it
	 * holds (store_write moves the staged changes out of pending: what is staged while its
	 * anchor runs goes into the next frame) */
	int written;   /* JOURNAL_KIND_COMMIT or _FLUSH */
	int anchoring; /* store_anchor_begin done, store_anchor_end not yet */
	size_t written_count;
	int written_flush; /* the written commit is a forced flush */
	size_t written_len;
	uint64_t written_nv_writes;
	uint8_t written_mac[JOURNAL_MAC_LEN];
	uint64_t write_t0;
	uint64_t commits, flushes, changes, last_commit_us;
	/* run authority (anchor.h): this run's nonce, and what replay learnt about start frames */
	uint8_t run[ANCHOR_RUN_LEN];
	uint8_t prev_run[ANCHOR_RUN_LEN];        /* the run before a trailing start frame */
	int start_trailing;                      /* the journal's last frame is a start frame */
	uint64_t start_off;                      /* ... at this offset, */
	uint8_t start_prev_mac[JOURNAL_MAC_LEN]; /* chained after this MAC, */
	uint64_t start_prev_nv_writes;           /* after this many NV writes */
	uint64_t start_dropped; /* bytes of a start frame that never took effect, dropped at open */
	int taken;              /* this run has taken the counter over (take_over) */
	int legacy;             /* a sealvault 0.2 vault opened by store_upgrade */
	int upgraded_open;      /* STORE_OPEN_UPGRADED */
	int journal_dropped;    /* ... and the journal was the 0.2 one */
};

/* store.c */
int store_alloc(struct store **out, struct tpm *tpm, const struct sv_vault_policy *pol)
    __attribute__((warn_unused_result));
/* Applies n snapshot user entries (JOURNAL_OP_USER only) as store_apply_op would, faster: the
 * table slots are fetched ahead. hashes: room for n. */
int store_apply_users(struct store *s, const struct journal_op *ops, size_t n, uint64_t *hashes)
    __attribute__((warn_unused_result));
/* Applies one decoded op (journal replay or snapshot load); any mismatch means corrupt state. */
int store_apply_op(struct store *s, const struct journal_op *op)
    __attribute__((warn_unused_result));
int store_pwrite_all(int fd, const uint8_t *p, size_t n, off_t off)
    __attribute__((warn_unused_result));
/* Reads a whole file into a new malloc'd buffer (at most max bytes). */
int store_read_all(int fd, size_t max, uint8_t **out, size_t *len)
    __attribute__((warn_unused_result));
void store_wipe_free(uint8_t *p, size_t n);
int store_write_journal_head(struct store *s, uint64_t base, const uint8_t mac[JOURNAL_MAC_LEN])
    __attribute__((warn_unused_result));
int store_open_at(int dfd, const char *name, int flags, const char *dir, char *why, size_t why_len,
                  int *fd) __attribute__((warn_unused_result));
int store_take_lock(struct store *s, int dfd, const char *dir, int create, char *why,
                    size_t why_len) __attribute__((warn_unused_result));
/* Opens the state directory (O_DIRECTORY); SV_ERR_STATE when it does not exist, SV_ERR_IO
 * otherwise, with the reason in why. */
int store_open_dir(const char *dir, int *dfd, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* store_snapshot.c: writes a snapshot of the current state (under s->counter, naming s->run),
 * in chunks, into the slot the journal does not continue, and fsyncs it; the caller then
 * switches to it. mac: the last chunk's, which the journal head must name. */
int store_snapshot_slot(struct store *s, uint8_t mac[JOURNAL_MAC_LEN], size_t *len)
    __attribute__((warn_unused_result));
/* store_snapshot.c: loads slot i (every chunk verified, users applied to an empty table).
 * SV_ERR_AUTH: not a valid snapshot of this vault (the caller tries the other slot; the table
 * is empty again); SV_ERR_STATE with why: valid MACs but ops that do not decode. */
int store_snapshot_load(struct store *s, int i, char *why, size_t why_len)
    __attribute__((warn_unused_result));
/* store.c: frees every user and the table, and forgets the unclean-boot history. */
void store_clear_users(struct store *s);
/* store.c: frees (wiping) the users kept while a snapshot was written. */
void store_drop_retired(struct store *s);
/* store_snapshot.c: after a frame is written while the snapshot thread works, keeps its ops
 * for the snapshot's delta chunks; SV_ERR_NOMEM. */
int store_snapshot_note_frame(struct store *s, const struct journal_frame *f, const uint8_t *plain,
                              size_t len) __attribute__((warn_unused_result));
/* store_snapshot.c: when the snapshot thread has finished and no frame is written and not yet
 * anchored, appends the delta chunks and the end, fsyncs, and switches the journal to it. 0 when
 * done or not yet due; an error when the snapshot failed (the store then refuses all work). */
int store_snapshot_poll(struct store *s) __attribute__((warn_unused_result));
/* store_snapshot.c: starts the snapshot thread (store_open does it before the sandbox: the
 * enclave's filter allows no new thread) and ends it (store_close). */
int store_snapshot_thread_start(struct store *s) __attribute__((warn_unused_result));
void store_snapshot_thread_stop(struct store *s);

/* store.c: stages the power-cut penalty (JOURNAL_OP_PENALTY, applied at once) and makes the
 * commit a forced flush whatever the budget says. */
int store_stage_penalty(struct store *s, uint64_t time, uint64_t unclean)
    __attribute__((warn_unused_result));

/* store.c: stages the operator's acknowledgement of the unclean boots so far (forced flush). */
int store_acknowledge(struct store *s, uint64_t time) __attribute__((warn_unused_result));

/* store_init.c: the state header with the global secrets encrypted under the vault key (fresh
 * nonce; the AD is the header itself). */
int store_header_encode(struct store *s, struct journal_state_hdr *h, struct sv_buf *out)
    __attribute__((warn_unused_result));

/* store_open.c: store_open* with a mode; STORE_OPEN_LEGACY reads a sealvault 0.2 vault (state
 * version 1) for store_upgrade: no run check, commits on the old counter with its empty auth. */
enum store_open_mode {
	STORE_OPEN_EAGER,
	STORE_OPEN_LAZY,
	STORE_OPEN_READONLY,
	STORE_OPEN_LEGACY,
	STORE_OPEN_ACK, /* eager, and a power cut over the yearly budget is accepted */
	/* lazy, for store_upgrade finishing a 0.2 upgrade cut off between the header switch and
	 * emptying the journal: a journal that does not continue the snapshot is then the 0.2 one,
	 * and is emptied if the TPM counter shows nothing committed since the snapshot */
	STORE_OPEN_UPGRADED,
};
int store_open_common(struct store **out, const char *dir, struct tpm *tpm,
                      const struct sv_vault_policy *pol, enum store_open_mode mode, char *why,
                      size_t why_len) __attribute__((warn_unused_result));
/* store_open.c: takes the TPM counter over for this run (anchor.h); store_write calls it before
 * the first write of a lazily opened store. */
int store_take_over(struct store *s, char *why, size_t why_len) __attribute__((warn_unused_result));

#endif
