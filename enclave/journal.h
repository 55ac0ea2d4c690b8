/*
 * On-disk formats of the vault state (all integers big-endian, every decoder bounds-checked and
 * rejecting trailing bytes):
 *
 *   frame     hdr(32) = magic "SVF1" | kind u8 | scheme u8 | 0 u16 | counter u64 | nv_writes u64 |
 *                       count u32 | ct_len u32
 *             nonce(24) | ct(ct_len: XChaCha20-Poly1305 of the payload, AD = hdr) |
 *             mac(32) = BLAKE2b-256 keyed with k_mac over prev_mac | hdr | nonce | ct
 *             A commit frame holds `count` change ops and commits under NV counter `counter`;
 *             a flush frame holds `count` guess resets and repeats the counter (and nv_writes)
 *             of the frame before it (no NV write);
 *             a start frame holds one run op (the run nonce whose key the TPM counter is about
 *             to be bound to, enclave/anchor.h) and repeats the counter of the frame before it;
 *             a snapshot is a chain of chunk frames (enclave/store_snapshot.c): the first
 *             chains from 32 zero bytes and holds the run op first, then history ops and
 *             user entries, each later one chains from the MAC of the one before and holds
 *             user entries; every chunk but the last is kind SNAPSHOT_PART, the last is
 *             kind SNAPSHOT; each chunk's `count` is its own ops. A snapshot written while
 *             the vault kept committing has, between its user chunks (under the counter it
 *             began at) and its end, SNAPSHOT_DELTA chunks: the ops of each journal frame
 *             written meanwhile, under that frame's counter and NV writes; its end chunk
 *             then has no ops and the last counter. (A snapshot written before chunks is
 *             the one-chunk case: a single SNAPSHOT frame.)
 *             In ops, a record's blob is a str16 of at most JOURNAL_BLOB_MAX bytes (1024 since
 *             threshold realms, enclave/realm.h; 512 before: older builds refuse longer ones).
 *   journal   head(48) = magic "SVJ1" | version u32 | base_counter u64 | base_mac(32), then
 *             commit and flush frames chained from base_mac, commit counters base+1, base+2, ...
 *   state hdr vault.hdr: magic "SVH1" | version u16 | scheme u8 | 0 u8 | nv_index u32 |
 *             nv_name str16 | primary_name str16 | sealed str16 | init_counter u64 |
 *             pcr_mask u32 (SHA-256 PCRs of the sealing policy, bits 0..23; 0 = none) |
 *             init_time u64 (seconds since the epoch, for NV wear projections) |
 *             orderly_mask u32 (hybrid: TPM_PT_ORDERLY_COUNT at init; plain: 0) |
 *             unclean_index u32 (hybrid: the unclean-boots NV counter; plain: 0) | 4 zero
 *             bytes | seal u32 (how the vault key is sealed to pcr_mask: JOURNAL_SEAL_*) |
 *             nonce(24) | secrets ct(176, AD = all before)
 *
 * Counter schemes (docs/threat-model.md): plain, every commit one NV increment and one NV
 * write; hybrid, an orderly counter (TPMA_NV_ORDERLY) whose increments reach NV only when the
 * bits under orderly_mask roll over, so a commit frame may also jump to the next multiple of
 * orderly_mask + 1 (a forced flush: the TPM is incremented up to it).
 */
#ifndef SV_ENCLAVE_JOURNAL_H
#define SV_ENCLAVE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define JOURNAL_KEY_LEN       32
#define JOURNAL_MAC_LEN       32
#define JOURNAL_FRAME_HDR_LEN 32
#define JOURNAL_NONCE_LEN     24
#define JOURNAL_TAG_LEN       16
#define JOURNAL_FRAME_OVERHEAD                                                                     \
	(JOURNAL_FRAME_HDR_LEN + JOURNAL_NONCE_LEN + JOURNAL_TAG_LEN + JOURNAL_MAC_LEN)
#define JOURNAL_FRAME_MAX      0x7fffffffu /* bytes of ciphertext in one frame */
#define JOURNAL_HEAD_LEN       48
#define JOURNAL_ID_MAX         255
#define JOURNAL_RECORD_LEN     192
#define JOURNAL_BLOB_MAX       1024 /* 512 before threshold realms (STORE_BLOB_MAX) */
#define JOURNAL_NAME_MAX       68
#define JOURNAL_SEALED_MAX     1024
#define JOURNAL_SECRETS_LEN    160
#define JOURNAL_SECRETS_CT_LEN (JOURNAL_SECRETS_LEN + JOURNAL_TAG_LEN)
#define JOURNAL_SCHEME_PLAIN   1
#define JOURNAL_SCHEME_HYBRID  2
#define JOURNAL_RUN_LEN        32 /* run nonce (enclave/anchor.h) */
/* State header versions: 1 (sealvault 0.2: a counter without run authority, snapshots without a
 * run op) is read only by store_upgrade; 2 is current, and the only version encoded. */
#define JOURNAL_STATE_VERSION_OLD 1
#define JOURNAL_STATE_VERSION     2
#define JOURNAL_PCR_MASK_ALL      0x00ffffffu /* PCRs 0..23 */
/* The seal field: with pcr_mask 0 it is JOURNAL_SEAL_PCR and the vault key has no policy. */
#define JOURNAL_SEAL_PCR        0 /* plain PolicyPCR at init's values (vaults before issue 12) */
#define JOURNAL_SEAL_AUTHORIZED 1 /* PolicyAuthorize(K): PCR values K approved (approval.h) */

/* A flush frame holds only guess resets; it is fsynced but not anchored: it carries the counter
 * value of the commit before it (the TPM's current value) and follows it in the chain. A start
 * frame is written by every run before it takes the TPM counter over (docs/threat-model.md); it
 * carries the counter of the frame before it, like a flush. */
enum journal_kind {
	JOURNAL_KIND_COMMIT = 1,
	JOURNAL_KIND_SNAPSHOT = 2,
	JOURNAL_KIND_FLUSH = 3,
	JOURNAL_KIND_START = 4,
	JOURNAL_KIND_SNAPSHOT_PART = 5,  /* a snapshot chunk that is not the last */
	JOURNAL_KIND_SNAPSHOT_DELTA = 6, /* a snapshot chunk: the ops of one journal frame */
};

enum journal_op_type {
	JOURNAL_OP_PUT = 1,    /* id, limit, record, blob: new or replaced user, used = 0 */
	JOURNAL_OP_CHARGE = 2, /* id, used (value after the charge) */
	JOURNAL_OP_RESET = 3,  /* id */
	JOURNAL_OP_DELETE = 4, /* id */
	JOURNAL_OP_USER = 5,   /* snapshot entry: id, limit, used, destroyed, record+blob unless
	                          destroyed */
	JOURNAL_OP_NOOP = 6,   /* type byte only: no effect on replay (store_stage_noop) */
	JOURNAL_OP_RUN = 7, /* run nonce (JOURNAL_RUN_LEN): start frames, first op of a snapshot */
	JOURNAL_OP_PENALTY = 8, /* time u64, unclean u64, charge u8: an unclean boot (hybrid) at
	                           time (seconds since the epoch), the unclean-boots counter after
	                           it; charge 1 (commit frames): every user is charged one guess;
	                           charge 0 (snapshots): history only, for the yearly budget */
	JOURNAL_OP_ACK = 9,     /* time u64: the operator acknowledged the unclean boots so far */
};

struct journal_keys {
	uint8_t mac[JOURNAL_KEY_LEN];
	uint8_t enc[JOURNAL_KEY_LEN];
};

struct journal_frame {
	uint8_t kind;
	uint8_t scheme;
	uint64_t counter;
	uint64_t nv_writes;
	uint32_t count;
};

struct journal_op {
	uint8_t type;
	const uint8_t *id;
	size_t id_len;
	uint8_t limit;
	uint8_t used;
	uint8_t destroyed;
	const uint8_t *record; /* JOURNAL_RECORD_LEN bytes */
	const uint8_t *blob;
	size_t blob_len;
	const uint8_t *run; /* JOURNAL_RUN_LEN bytes (JOURNAL_OP_RUN) */
	uint64_t time;      /* JOURNAL_OP_PENALTY, JOURNAL_OP_ACK */
	uint64_t unclean;   /* JOURNAL_OP_PENALTY */
	uint8_t charge;     /* JOURNAL_OP_PENALTY */
};

struct journal_head {
	uint64_t base_counter;
	uint8_t base_mac[JOURNAL_MAC_LEN];
};

struct journal_state_hdr {
	uint16_t
	    version; /* decoded: JOURNAL_STATE_VERSION or _OLD; encode writes the current one */
	uint8_t scheme;
	uint32_t nv_index;
	uint8_t nv_name[JOURNAL_NAME_MAX];
	size_t nv_name_len;
	uint8_t primary_name[JOURNAL_NAME_MAX];
	size_t primary_name_len;
	uint8_t sealed[JOURNAL_SEALED_MAX];
	size_t sealed_len;
	uint64_t init_counter;
	uint32_t pcr_mask;
	uint64_t init_time;
	uint32_t orderly_mask;  /* hybrid: 2^k - 1, k >= 1; plain: 0 */
	uint32_t unclean_index; /* hybrid: NV index of the unclean-boots counter; plain: 0 */
	uint32_t seal;          /* JOURNAL_SEAL_* */
	uint8_t nonce[JOURNAL_NONCE_LEN];
	uint8_t secrets_ct[JOURNAL_SECRETS_CT_LEN];
};

/* Derives the journal keys from the vault key. */
void journal_keys_derive(struct journal_keys *k, const uint8_t vault_key[32]);

/* Appends one sealed frame to out and returns its MAC (the next frame's prev). */
int journal_frame_seal(const struct journal_keys *k, const uint8_t prev[JOURNAL_MAC_LEN],
                       const struct journal_frame *f, const uint8_t *plain, size_t plain_len,
                       struct sv_buf *out, uint8_t mac[JOURNAL_MAC_LEN])
    __attribute__((warn_unused_result));
/* Verifies and decrypts IN PLACE the frame at the start of data[0..len). SV_ERR_INVALID: not a
 * complete frame (truncated, bad magic or lengths); SV_ERR_AUTH: MAC or AEAD failure. On success
 * *frame_len is the frame's size and *plain points into data. Nothing is decrypted on failure. */
int journal_frame_open(const struct journal_keys *k, const uint8_t prev[JOURNAL_MAC_LEN],
                       uint8_t *data, size_t len, struct journal_frame *f, size_t *frame_len,
                       const uint8_t **plain, size_t *plain_len, uint8_t mac[JOURNAL_MAC_LEN])
    __attribute__((warn_unused_result));

int journal_op_put(struct sv_buf *b, const struct journal_op *op)
    __attribute__((warn_unused_result));
/* Decodes one op; validates type, lengths and flags. Pointers refer into b. */
int journal_op_get(struct sv_buf *b, struct journal_op *op) __attribute__((warn_unused_result));

void journal_head_encode(const struct journal_head *h, uint8_t out[JOURNAL_HEAD_LEN]);
int journal_head_decode(const uint8_t *in, size_t len, struct journal_head *h)
    __attribute__((warn_unused_result));

/* Encodes the state header; the secrets' AD is the first *ad_len bytes of the output. */
int journal_state_encode(const struct journal_state_hdr *h, struct sv_buf *out, size_t *ad_len)
    __attribute__((warn_unused_result));
/* Accepts JOURNAL_STATE_VERSION and JOURNAL_STATE_VERSION_OLD (h->version says which). */
int journal_state_decode(const uint8_t *in, size_t len, struct journal_state_hdr *h, size_t *ad_len)
    __attribute__((warn_unused_result));

#endif
