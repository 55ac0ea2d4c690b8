/*
 * The vault's durable state: the in-memory user table and global secrets, a MAC'd hash-chained
 * journal and snapshots in the state directory, anchored in a TPM NV counter.
 *
 * Contract: mutations (store_put_user, store_charge_guess, ...) apply in memory at once and are
 * staged for the next commit. NOTHING they change may be acknowledged to anyone until
 * store_commit() has returned 0 (append, fsync, NV increment) — except a guess reset, which may be
 * acknowledged once store_write() has returned 0 (see there). If a commit fails, memory is
 * ahead of the durable state: the caller must exit without answering (I3, I4).
 *
 * After store_open() returns, no function here opens a path: everything works on descriptors
 * opened during store_open() (the enclave's seccomp filter forbids open/openat).
 */
#ifndef SV_ENCLAVE_STORE_H
#define SV_ENCLAVE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "policy/vault.h"

#define STORE_ID_MAX     255 /* credential identifier, bytes */
#define STORE_RECORD_LEN 192 /* OPAQUE RegistrationRecord */
/* the blob: a /v1 client-encrypted backup-key blob (at most VAULTREQ_BLOB_MAX, 512 bytes), or a
 * realm record's commitments and ciphertext (enclave/realm.h, at most 808 bytes) */
#define STORE_BLOB_MAX 1024

struct store;
struct tpm;

/* A read-only view of one user; valid until the next store_* call that mutates. */
struct store_user_view {
	const uint8_t *id;
	size_t id_len;
	const uint8_t *record; /* STORE_RECORD_LEN bytes; NULL when destroyed */
	const uint8_t *blob;   /* NULL when destroyed */
	size_t blob_len;
	unsigned guess_limit;  /* fixed at registration */
	unsigned guesses_used; /* charged and not reset by a successful login */
	int destroyed;         /* 1: limit reached, record zeroised, tombstone kept */
};

/* Global vault secrets, generated at init; owned by the store, in sodium_malloc'd memory. */
struct store_secrets {
	uint8_t oprf_seed[64]; /* RFC 9807 oprf_seed */
	uint8_t ake_sk[32];    /* server AKE private key (ristretto255 scalar) */
	uint8_t ake_pk[32];    /* server AKE public key */
	uint8_t fake_seed[32]; /* derives per-identifier fake records (RFC 9807 §10.9) */
};

struct store_stats {
	uint64_t counter;        /* TPM NV counter value */
	uint64_t journal_head;   /* counter value of the last journal record */
	uint64_t nv_writes;      /* NV writes caused by this vault since init */
	uint64_t commits;        /* durable commits since start (each one NV increment) */
	uint64_t flushes;        /* durable flushes since start (resets only, no NV write) */
	uint64_t changes;        /* state changes committed since start */
	uint64_t users;          /* active records */
	uint64_t destroyed;      /* tombstones */
	uint64_t last_commit_us; /* duration of the last commit */
	/* counter scheme (enclave/anchor.h) */
	uint32_t orderly_mask;   /* hybrid: TPM_PT_ORDERLY_COUNT; plain: 0 */
	uint64_t durable;        /* highest counter value that survives a power cut */
	uint64_t increments;     /* NV increments of commits since start (a flush pads) */
	uint64_t forced_flushes; /* commits since start that were forced flushes */
	uint64_t penalties;      /* power-cut penalties charged since init (hybrid) */
	uint64_t unclean_boots;  /* the unclean-boots TPM counter at the last penalty (a new
	                            counter starts at the highest value any counter had) */
	int power_cut;           /* read-only open: the next start charges a penalty */
};

/* Opens the state directory, unseals the vault key through tpm, replays snapshot + journal,
 * checks that the TPM counter is bound to the last run this directory holds (enclave/anchor.h:
 * a forked or superseded copy is refused), compares the head with the TPM counter, and takes the
 * counter over for this run (start frame, fsync, NV_ChangeAuth, read-back). Refusal: SV_ERR_STATE
 * with a one-line reason an operator can act on in why. */
int store_open(struct store **out, const char *state_dir, struct tpm *tpm,
               const struct sv_vault_policy *pol, char *why, size_t why_len)
    __attribute__((warn_unused_result));
void store_close(struct store *s);

const struct store_secrets *store_secrets(const struct store *s);

/* The audit key (common/audit.h): derived from the vault key under a label of its own, so that
 * it reveals nothing about the vault key and protects only the identifiers in the audit trail. */
#define STORE_AUDIT_KEY_LEN 32
void store_audit_key(const struct store *s, uint8_t out[static STORE_AUDIT_KEY_LEN]);
/* Records held in memory: active users and tombstones (what max-users counts, capacity.h). */
uint64_t store_records(const struct store *s);

/* SV_ERR_NOTFOUND when the identifier was never registered (or was deleted). */
int store_lookup(const struct store *s, const uint8_t *id, size_t id_len,
                 struct store_user_view *out) __attribute__((warn_unused_result));

/* New record, or replacement of an existing one (password change); guesses_used becomes 0. Also
 * accepted for a destroyed identifier: the tombstone becomes an active record again (the vault
 * uses this for re-registration and to write back a record whose last guess succeeded). */
int store_put_user(struct store *s, const uint8_t *id, size_t id_len,
                   const uint8_t record[static STORE_RECORD_LEN], const uint8_t *blob,
                   size_t blob_len, unsigned guess_limit) __attribute__((warn_unused_result));
/* guesses_used + 1; when it reaches the limit the record is destroyed (zeroised, tombstoned).
 * *left receives limit - used afterwards. SV_ERR_LOCKED if already destroyed. */
int store_charge_guess(struct store *s, const uint8_t *id, size_t id_len, unsigned *left)
    __attribute__((warn_unused_result));
/* guesses_used = 0 after a successful login. */
int store_reset_guesses(struct store *s, const uint8_t *id, size_t id_len)
    __attribute__((warn_unused_result));
/* Removes the record for good (user-requested or operator delete); the identifier becomes free.
 * Also removes a tombstone. */
int store_delete_user(struct store *s, const uint8_t *id, size_t id_len)
    __attribute__((warn_unused_result));

/* Stages a change that alters no user: a journal record without effect on replay, committed by
 * store_commit like any other change (append, fsync, NV increment). The vault stages one for a
 * login/start on an unknown identifier, so that its reply goes through the same commit as a real
 * charged guess and timing does not tell which identifiers exist (docs/threat-model.md). */
int store_stage_noop(struct store *s) __attribute__((warn_unused_result));

/* ---- The counter scheme (hybrid: docs/threat-model.md "The hybrid counter") ----
 * Under the hybrid scheme a commit normally costs one orderly increment and no NV write; the
 * changes that must be on NV before they are answered (registrations, password changes,
 * deletions, and a user's charged guess while that user's previous one is not yet on NV) turn
 * the commit into a forced flush (increments up to the next multiple of M + 1: one NV write).
 * The enclave's NV-write budget decides whether a forced flush may happen now; when it may not,
 * those mutations return SV_ERR_BUSY and stage nothing. The plain scheme ignores all this. */
void store_set_flush_allowed(struct store *s, int ok); /* default: allowed */
/* Makes the next commit a forced flush (the vault calls it for an unknown identifier's second
 * guess, so that it costs what a real user's does); SV_ERR_BUSY as above. */
int store_require_flush(struct store *s) __attribute__((warn_unused_result));
/* 1 when a commit under counter value c survives a power cut (always for c = 0). */
int store_durable(const struct store *s, uint64_t c);
/* The counter value of the last commit (the next one is at least one more). */
uint64_t store_counter(const struct store *s);
/* NV increments that committing the staged changes would take (0: nothing needs the counter). */
uint64_t store_commit_cost(const struct store *s);
/* NV increments a forced flush would take from the counter's current value. */
uint64_t store_flush_cost(const struct store *s);

/* Number of staged, not yet durable changes. */
size_t store_pending(const struct store *s);
/* Makes every staged change durable: append journal records, fsync, increment the NV counter
 * (TPM_RC_NV_RATE/RETRY/YIELDED retried with back-off). No-op when nothing is pending.
 * Equivalent to store_write() followed by store_anchor(). */
int store_commit(struct store *s) __attribute__((warn_unused_result));

/* store_commit in two halves, so that a reply which needs no anchor leaves before the TPM round
 * trip. store_write appends the staged changes as one journal frame under the next counter value
 * and fsyncs it; store_anchor then increments the NV counter. When every staged change is a reset,
 * store_write writes a flush frame instead, under the current counter value, and store_anchor
 * increments nothing (the next commit's increment covers it, and nothing needs it before then: see
 * below). In between nothing may be staged (mutations return SV_ERR_STATE), and the only replies
 * that may leave are those whose changes were all guess resets (store_pending_anchored() did not
 * grow while they were handled): a reset is durable once fsynced (I3), and a rollback of the disk
 * that removed it would leave the user charged, never give anyone a guess (I2); every other change
 * (a charge, the unknown-user no-op that must time like one, a registration, a deletion) waits for
 * store_anchor. If store_anchor fails the frame is on disk one ahead of the TPM and the next start
 * completes it.
 *
 * store_anchor returns SV_ERR_BUSY when the TPM kept answering the increment with transient codes
 * (TPM_RC_NV_RATE: a chip throttling NV writes) for the whole retry budget (tpm.h) and did not
 * execute it. The anchor is then still owed: the frame stays written, memory stays one frame
 * ahead of the TPM (the state a restart would roll forward), nothing can be staged or written,
 * nothing that waited for the anchor may be acknowledged, and store_anchor may be called again
 * at any later time; the first call that returns 0 completes the commit as usual. */
int store_write(struct store *s) __attribute__((warn_unused_result));
int store_anchor(struct store *s) __attribute__((warn_unused_result));
/* Staged changes that must not be acknowledged before store_anchor. store_write takes the staged
 * changes into its frame: from then on store_pending and store_pending_anchored count the next
 * frame's. */
size_t store_pending_anchored(const struct store *s);

/* store_anchor of a commit frame in three steps, so that the NV increments can run on another
 * thread while this one keeps staging (enclave/serve.c). store_anchor_begin (this thread) records
 * what the increments cover in job; store_anchor_run (any one thread) does them, touching only
 * job and the TPM through job->anchor: while it runs, no other TPM command may be sent on the
 * store's struct tpm; store_anchor_end (this thread again, after run has returned and its writes
 * are visible, e.g. through a mutex) returns what store_anchor would have and does its
 * bookkeeping. Between begin and end, mutations are allowed again: they stage the NEXT frame,
 * which store_write refuses (SV_ERR_STATE) until the written one is anchored, so the journal is
 * never more than one commit frame ahead of the TPM counter (anchor_judge); store_counter and
 * store_commit_cost already count from the written frame's counter value, store_durable does not
 * (the anchor may still fail). Nothing staged then may be acknowledged before its own frame is
 * written (and anchored, if store_pending_anchored grew). store_anchor_due: a commit frame is
 * written and store_anchor_begin (or store_anchor) must follow; otherwise (a flush frame, or
 * nothing written) store_anchor completes at once without the TPM. */
struct anchor;
struct store_anchor_job {
	struct anchor *anchor;
	uint64_t from, to, done;
	int r;
};
int store_anchor_due(const struct store *s);
int store_anchor_begin(struct store *s, struct store_anchor_job *job)
    __attribute__((warn_unused_result));
void store_anchor_run(struct store_anchor_job *job);
int store_anchor_end(struct store *s, const struct store_anchor_job *job)
    __attribute__((warn_unused_result));
/* The journal has outgrown its snapshot: the next anchor that ends with nothing staged takes a
 * new one (a caller that stages during anchors should let one end with nothing staged). */
int store_snapshot_due(const struct store *s);

void store_get_stats(const struct store *s, struct store_stats *out);

/* ---- Additions for the admin tool, the state driver and the bench (state engineer). ---- */

/* A commit that leaves the journal bigger than this AND bigger than the last snapshot takes a
 * new snapshot. */
#define STORE_SNAPSHOT_JOURNAL_BYTES (8u << 20)

#define STORE_UNCLEAN_OFFSET 0x10000u /* unclean-boots counter index = nv_index + this */

/* Provisions a new vault in state_dir (created 0700 if missing; refused if it already holds a
 * vault or any state file): defines the NV counter at nv_index (hybrid: orderly, plus the
 * unclean-boots counter at nv_index + STORE_UNCLEAN_OFFSET), seals a new vault key, generates the
 * global secrets and writes an empty snapshot and journal. With pcr_mask non-zero the key is
 * bound to the SHA-256 PCRs in pcr_mask: through PolicyAuthorize(K) when approved is given (the
 * policy key's approval of those PCRs' current values, attest_approve; it is stored as
 * vault-policy.bin, and sealvault-admin authorize-pcrs replaces it after an update), or, with
 * approved NULL, through a plain PolicyPCR at their current values, as vaults were sealed before
 * (only tests make such vaults now). */
struct approval_vault;
int store_init(const char *state_dir, struct tpm *tpm, uint32_t nv_index, uint32_t pcr_mask,
               int hybrid, const struct approval_vault *approved, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* Hybrid: records that the operator has seen the unclean boots so far (they no longer count
 * against unclean-boots-per-year), charging first the penalty of a power cut the yearly budget
 * held back. Opens, commits and closes; the vault must be stopped. *penalty: 1 when a held-back
 * penalty was charged. */
int store_acknowledge_unclean(const char *state_dir, struct tpm *tpm,
                              const struct sv_vault_policy *pol, int *penalty, char *why,
                              size_t why_len) __attribute__((warn_unused_result));

/* How the vault key of the (stopped) vault in state_dir is sealed, from its header alone (no TPM):
 * *pcr_mask (0: no PCR policy) and *seal (JOURNAL_SEAL_*). SV_ERR_STATE with why when there is no
 * readable header. */
int store_read_seal(const char *state_dir, uint32_t *pcr_mask, uint32_t *seal, char *why,
                    size_t why_len) __attribute__((warn_unused_result));
/* sealvault-admin authorize-pcrs: checks that the vault key (sealed with PolicyAuthorize) unseals
 * with the new approval and only then replaces vault-policy.bin with it (atomically). */
int store_approve(const char *state_dir, struct tpm *tpm, const struct approval_vault *approved,
                  char *why, size_t why_len) __attribute__((warn_unused_result));
/* sealvault-admin reseal: moves a vault key sealed with a plain PolicyPCR (JOURNAL_SEAL_PCR) to
 * PolicyAuthorize(K) with the approval `approved` of the same PCRs, while they still hold init's
 * values: opens the vault read-only (the plain unseal), writes vault-policy.bin, seals the same
 * key under the new policy, checks that it unseals, and replaces vault.hdr atomically (new file,
 * fsync, rename, fsync the directory). Safe to interrupt and to run again: before the rename the
 * old header stands, after it *already is set by the next run. approved NULL reseals the other
 * way, to a plain PolicyPCR: tests make a vault of the old kind with it. */
int store_reseal(const char *state_dir, struct tpm *tpm, const struct approval_vault *approved,
                 int *already, char *why, size_t why_len) __attribute__((warn_unused_result));

/* Like store_open, but this run takes the TPM counter over (enclave/anchor.h: a start frame and
 * one NV write) only before its first journal write, or at open when the journal is one ahead
 * and the interrupted commit must be completed. A tool that opens, looks and closes (the state
 * driver's `check`) then leaves the run that started last in charge. store_open takes over at
 * once: a serving vault must stop every older run before it answers anything. */
int store_open_lazy(struct store **out, const char *state_dir, struct tpm *tpm,
                    const struct sv_vault_policy *pol, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* Like store_open, but changes nothing: no roll-forward increment, no tail truncation, no journal
 * reset. For `sealvault-admin status`. Mutations and store_commit are refused (SV_ERR_STATE). */
int store_open_readonly(struct store **out, const char *state_dir, struct tpm *tpm,
                        const struct sv_vault_policy *pol, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* SV_ERR_BUSY (reason in why) when another process holds the state directory's lock. A probe
 * for tools that must not touch the TPM of a running vault (on swtpm a second connection would
 * wait behind the enclave's); store_open itself takes the lock for good. */
int store_check_unlocked(const char *state_dir, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* Upgrades, in place and with the vault stopped, a vault of sealvault 0.2 (state version 1: its
 * NV counter has no policy that allows binding it to a run, so forked copies of its state
 * directory cannot be refused). It commits a final 0.2 record on the old counter (so that no
 * other copy of the 0.2 directory can be started or upgraded), defines a new counter at new_index
 * (0: the first free index after the old one) bound to a new run, writes a version 2 snapshot and
 * header naming it, and undefines the old counter. Every step is safe to interrupt: running it
 * again finishes or restarts it (an intent file, upgrade.intent, records the indices). */
struct store_upgrade_result {
	uint32_t old_index, new_index;
	int already_current; /* the vault was already version 2 (after finishing leftovers) */
	uint64_t users, counter;
};
int store_upgrade(const char *state_dir, struct tpm *tpm, uint32_t new_index,
                  struct store_upgrade_result *res, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* Migrates, in place and with the vault stopped, a current (state version 2) vault on the plain
 * counter to the hybrid scheme (issue 12, docs/operations.md "NV wear"): it opens the vault (a
 * run: it takes the counter over), commits a final record on the old counter, defines the
 * unclean-boots counter at new_index + STORE_UNCLEAN_OFFSET and the orderly counter at new_index
 * (0: the first index after the old one where both are free) bound to a new run, writes a hybrid
 * snapshot and header naming them, and undefines the old counter. Users, records, guess counts,
 * the vault key and its sealing are unchanged. Every step is safe to interrupt: running it again
 * starts over (before the old counter is undefined) or finishes (after); upgrade.intent records
 * the indices. res->already_current: the vault was hybrid already (res->old_index is set when
 * this run finished an interrupted migration). A 0.2 vault is refused: upgrade it first. */
int store_migrate_hybrid(const char *state_dir, struct tpm *tpm, uint32_t new_index,
                         struct store_upgrade_result *res, char *why, size_t why_len)
    __attribute__((warn_unused_result));

struct store_info {
	uint32_t nv_index;
	uint32_t pcr_mask;         /* PCRs the vault key is sealed to (0: none) */
	uint32_t seal;             /* JOURNAL_SEAL_*: how (plain or approved by the policy key) */
	uint64_t init_time;        /* when init ran, seconds since the epoch */
	uint8_t counter_scheme;    /* JOURNAL_SCHEME_* recorded in the state header */
	char active_slot;          /* 'a' or 'b': the snapshot the journal continues */
	uint64_t snapshot_counter; /* counter value of that snapshot */
	uint64_t journal_bytes;    /* valid journal length */
	uint64_t tail_bytes;       /* uncommitted tail found at open (dropped unless read-only) */
	int roll_forward;          /* 1: the journal was one ahead of the TPM at open */
	uint32_t orderly_mask;     /* hybrid: TPM_PT_ORDERLY_COUNT at init; plain: 0 */
	uint32_t unclean_index;    /* hybrid: the unclean-boots counter's NV index */
	uint64_t unclean_year;     /* unclean boots in the last 365 days, not acknowledged */
	uint64_t unclean_year_all; /* ... acknowledged or not */
	uint64_t ack_time;         /* the operator's last acknowledgement (0: never) */
	int power_cut;             /* read-only open found a power cut not yet charged */
	uint64_t journal_frames;   /* journal frames replayed at open (the audit start-up record) */
	int penalty_charged;       /* this open charged a power-cut penalty (hybrid) */
	uint64_t penalty_destroyed; /* records that penalty destroyed (their last guess) */
};
void store_get_info(const struct store *s, struct store_info *out);

/* Snapshots are written in chunks of about this many plaintext bytes (enclave/store_snapshot.c).
 * store_set_snapshot_chunk changes it for this store: the tests make it tiny so that a small
 * vault's snapshot has many chunks (bytes within STORE_SNAPSHOT_CHUNK_MIN..MAX). */
#define STORE_SNAPSHOT_CHUNK     (4u << 20)
#define STORE_SNAPSHOT_CHUNK_MIN 1u
#define STORE_SNAPSHOT_CHUNK_MAX (256u << 20)
int store_set_snapshot_chunk(struct store *s, size_t bytes) __attribute__((warn_unused_result));

/* Writes a snapshot of the committed state into the other A/B slot and empties the journal.
 * Refused while changes are pending. store_commit calls it when the journal grows past
 * STORE_SNAPSHOT_JOURNAL_BYTES and the size of the last snapshot. */
int store_snapshot(struct store *s) __attribute__((warn_unused_result));

/* A snapshot that does not stop commits (issue 16): store_snapshot_start (same preconditions as
 * store_snapshot) hands the users of the committed state to the store's snapshot thread, which
 * writes them into the other slot while commits go on (every change is then made to a copy of
 * the user, and every frame written is kept). The first commit (or flush) to end after the
 * thread has finished appends the kept frames as delta chunks and the end, fsyncs, and switches
 * the journal to it, as store_snapshot does; until then the journal and the old slot stand. A
 * commit that ends with the journal due for a snapshot starts one this way when the store has a
 * snapshot thread (store_open starts one, before the enclave's sandbox); otherwise it writes it at
 * once. store_snapshot_busy: 1 from the start until the switch; store_snapshot_wait: waits for the
 * thread and switches (SV_ERR_STATE while a frame awaits its anchor). */
int store_snapshot_start(struct store *s) __attribute__((warn_unused_result));
int store_snapshot_busy(const struct store *s);
/* The process is about to install a filter under which no thread can end (the enclave's):
 * store_close then leaves the snapshot thread parked, idle, until the process ends. */
void store_keep_threads(struct store *s);
int store_snapshot_wait(struct store *s) __attribute__((warn_unused_result));

#endif
