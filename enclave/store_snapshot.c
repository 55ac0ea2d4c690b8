/*
 * Snapshots in chunks (issue 16): a snapshot slot holds a chain of frames (enclave/journal.h),
 * each at most about s->chunk_bytes of plaintext, so that no snapshot has a size ceiling below
 * the disk and neither writing nor reading one needs more memory than a chunk:
 *
 *   chunk 0      kind SNAPSHOT_PART (or SNAPSHOT when it is the only one), chained from 32 zero
 *                bytes; its first op is the run op, then the unclean-boot history, then users
 *   chunk 1..    kind SNAPSHOT_PART, each chained from the MAC of the one before, users only
 *   last chunk   kind SNAPSHOT: the end; nothing may follow it in the file
 *
 * Every chunk repeats the snapshot's counter, NV writes and scheme, and carries the count of its
 * own ops. The last chunk's MAC is the snapshot's MAC, which the journal head names (base_mac):
 * it covers the whole chain, so a chunk that is missing, reordered, repeated, altered or taken
 * from another snapshot breaks the chain or that MAC, and a chain cut after any chunk lacks the
 * SNAPSHOT end. Such a slot is invalid as a whole, as a damaged single-frame snapshot always
 * was (docs/threat-model.md "Write order"). A snapshot of sealvault before chunks is one
 * SNAPSHOT frame: the same format with one chunk, read as before.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "enclave/anchor.h"
#include "enclave/journal.h"
#include "enclave/store_impl.h"

/* The largest op a snapshot holds: a user entry with the longest identifier and blob. */
#define OP_MAX (16 + JOURNAL_ID_MAX + JOURNAL_RECORD_LEN + JOURNAL_BLOB_MAX)

/* ---------- writing ---------- */

struct chunker {
	struct store *s;
	int fd;
	struct sv_buf plain, frame;
	uint8_t prev[JOURNAL_MAC_LEN];
	uint32_t count; /* ops in plain */
	uint64_t off;   /* bytes written to the slot */
};

/* Seals the ops gathered so far as one chunk of the given kind and writes it at c->off. */
static int chunk_flush(struct chunker *c, uint8_t kind)
{
	struct journal_frame f = {.kind = kind,
	                          .scheme = c->s->scheme,
	                          .counter = c->s->counter,
	                          .nv_writes = c->s->nv_writes,
	                          .count = c->count};
	uint8_t mac[JOURNAL_MAC_LEN];
	sv_buf_reset(&c->frame);
	int r = journal_frame_seal(c->s->keys, c->prev, &f, c->plain.data, c->plain.len, &c->frame,
	                           mac);
	if (r != SV_OK)
		return r;
	if (store_pwrite_all(c->fd, c->frame.data, c->frame.len, (off_t)c->off) != SV_OK)
		return SV_ERR_IO;
	c->off += c->frame.len;
	memcpy(c->prev, mac, sizeof(mac));
	sv_buf_reset(&c->plain);
	c->count = 0;
	return SV_OK;
}

/* Adds one op, first closing the chunk when it is full (a chunk may exceed chunk_bytes by at
 * most one op). */
static int chunk_put(struct chunker *c, const struct journal_op *op)
{
	int r;
	if (c->plain.len >= c->s->chunk_bytes && (r = chunk_flush(c, JOURNAL_KIND_SNAPSHOT_PART)))
		return r;
	if ((r = journal_op_put(&c->plain, op)) != SV_OK)
		return r;
	c->count++;
	return SV_OK;
}

int store_snapshot_slot(struct store *s, uint8_t mac[JOURNAL_MAC_LEN], size_t *len)
{
	struct chunker c = {.s = s, .fd = s->slot_fd[1 - s->active]};
	int r;
	if ((r = sv_buf_init(&c.plain, s->chunk_bytes + OP_MAX)) != SV_OK ||
	    (r = sv_buf_init(&c.frame, s->chunk_bytes + OP_MAX + JOURNAL_FRAME_OVERHEAD)) != SV_OK)
		goto out;
	struct journal_op run = {.type = JOURNAL_OP_RUN, .run = s->run};
	if ((r = chunk_put(&c, &run)) != SV_OK)
		goto out;
	/* hybrid: the unclean boots the yearly budget still counts, and the last acknowledgement */
	for (size_t i = 0; i < s->nunclean; i++) {
		struct journal_op op = {.type = JOURNAL_OP_PENALTY,
		                        .time = s->unclean_times[i],
		                        .unclean = s->unclean_value};
		if ((r = chunk_put(&c, &op)) != SV_OK)
			goto out;
	}
	if (s->ack_time != 0) {
		struct journal_op op = {.type = JOURNAL_OP_ACK, .time = s->ack_time};
		if ((r = chunk_put(&c, &op)) != SV_OK)
			goto out;
	}
	for (size_t i = 0; i < s->cap; i++) {
		const struct user *u = s->tab[i];
		if (u == NULL || u == DELETED)
			continue;
		struct journal_op op = {.type = JOURNAL_OP_USER,
		                        .id = u->data,
		                        .id_len = u->id_len,
		                        .limit = u->limit,
		                        .used = u->used,
		                        .destroyed = u->destroyed,
		                        .record = u->data + u->id_len,
		                        .blob = u->data + u->id_len + STORE_RECORD_LEN,
		                        .blob_len = u->blob_len};
		if ((r = chunk_put(&c, &op)) != SV_OK)
			goto out;
	}
	if ((r = chunk_flush(&c, JOURNAL_KIND_SNAPSHOT)) != SV_OK)
		goto out;
	if (ftruncate(c.fd, (off_t)c.off) != 0 || fdatasync(c.fd) != 0) {
		r = SV_ERR_IO;
		goto out;
	}
	memcpy(mac, c.prev, JOURNAL_MAC_LEN);
	*len = (size_t)c.off;
out:
	sv_buf_free(&c.plain);
	sv_buf_free(&c.frame);
	return r;
}

/* ---------- reading ---------- */

static const char *slot_name(int i)
{
	return i == 0 ? FN_SLOT_A : FN_SLOT_B;
}

static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return SV_ERR_IO;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return SV_OK;
}

/* Reads the frame at off into *buf (grown as needed): SV_ERR_AUTH when the file does not hold a
 * whole frame there. */
static int read_frame(int fd, uint64_t off, uint64_t size, uint8_t **buf, size_t *cap, size_t *flen)
{
	uint8_t h[JOURNAL_FRAME_HDR_LEN];
	if (size - off < JOURNAL_FRAME_OVERHEAD)
		return SV_ERR_AUTH;
	int r = pread_all(fd, h, sizeof(h), off);
	if (r != SV_OK)
		return r;
	uint32_t ct_len =
	    (uint32_t)h[28] << 24 | (uint32_t)h[29] << 16 | (uint32_t)h[30] << 8 | h[31];
	uint64_t n = (uint64_t)JOURNAL_FRAME_OVERHEAD - JOURNAL_TAG_LEN + ct_len;
	if (ct_len < JOURNAL_TAG_LEN || ct_len > JOURNAL_FRAME_MAX || n > size - off)
		return SV_ERR_AUTH;
	if (n > *cap) {
		uint8_t *p = malloc((size_t)n);
		if (p == NULL)
			return SV_ERR_NOMEM;
		store_wipe_free(*buf, *cap);
		*buf = p;
		*cap = (size_t)n;
	}
	*flen = (size_t)n;
	return pread_all(fd, *buf, (size_t)n, off);
}

/* Applies the ops of one chunk; the run op (first op of chunk 0 of a current snapshot) is
 * taken here. SV_ERR_INVALID: the ops do not decode or do not fit a snapshot. */
static int apply_chunk(struct store *s, const uint8_t *plain, size_t plen, uint32_t count,
                       int first)
{
	struct sv_buf b;
	int r;
	sv_buf_from(&b, plain, plen);
	for (uint32_t n = 0; n < count; n++) {
		struct journal_op op;
		if (journal_op_get(&b, &op) != SV_OK)
			return SV_ERR_INVALID;
		if (first && n == 0 && !s->legacy) {
			if (op.type != JOURNAL_OP_RUN)
				return SV_ERR_INVALID;
			memcpy(s->run, op.run, ANCHOR_RUN_LEN);
			continue;
		}
		/* the unclean-boot history (hybrid) only in the first chunk, then the users */
		int history = first && ((op.type == JOURNAL_OP_PENALTY && op.charge == 0) ||
		                        op.type == JOURNAL_OP_ACK);
		if (op.type != JOURNAL_OP_USER && !history)
			return SV_ERR_INVALID;
		if ((r = store_apply_op(s, &op)) != SV_OK)
			return r == SV_ERR_NOMEM ? r : SV_ERR_INVALID;
	}
	return sv_buf_expect_end(&b);
}

/* 1 when the first op of a chunk is a run op (a current snapshot; sealvault 0.2 had none). */
static int starts_with_run(const uint8_t *plain, size_t plen, uint32_t count)
{
	struct sv_buf b;
	struct journal_op op;
	sv_buf_from(&b, plain, plen);
	return count > 0 && journal_op_get(&b, &op) == SV_OK && op.type == JOURNAL_OP_RUN;
}

int store_snapshot_load(struct store *s, int i, char *why, size_t why_len)
{
	uint8_t *buf = NULL, prev[JOURNAL_MAC_LEN] = {0}, mac[JOURNAL_MAC_LEN];
	size_t cap = 0;
	uint64_t off = 0, counter = 0, nv_writes = 0;
	struct stat st;
	int r, end = 0;
	if (fstat(s->slot_fd[i], &st) != 0)
		return SV_ERR_IO;
	uint64_t size = (uint64_t)st.st_size;
	/* the table at its final size at once (about 250 bytes per user entry on disk) */
	s->cap = 1024;
	while (size / 250 * 10 >= (uint64_t)s->cap * 7)
		s->cap *= 2;
	if ((s->tab = calloc(s->cap, sizeof(*s->tab))) == NULL) {
		s->cap = 0;
		return SV_ERR_NOMEM;
	}
	for (int first = 1; !end; first = 0) {
		size_t flen = 0, fl = 0, plen = 0;
		const uint8_t *plain = NULL;
		struct journal_frame f;
		if ((r = read_frame(s->slot_fd[i], off, size, &buf, &cap, &flen)) != SV_OK)
			goto out;
		r = journal_frame_open(s->keys, prev, buf, flen, &f, &fl, &plain, &plen, mac);
		if (r == SV_ERR_INVALID || r == SV_ERR_AUTH ||
		    (f.kind != JOURNAL_KIND_SNAPSHOT && f.kind != JOURNAL_KIND_SNAPSHOT_PART) ||
		    f.scheme != s->scheme ||
		    (!first && (f.counter != counter || f.nv_writes != nv_writes))) {
			r = SV_ERR_AUTH; /* not a valid snapshot: the caller tries the other slot */
			goto out;
		}
		/* A current snapshot starts with the run op; one of sealvault 0.2 (read only by
		 * store_upgrade) has none. A slot of the other kind is not this header's: try the
		 * other slot (an upgrade interrupted between the new snapshot and the new header).
		 */
		if (first && starts_with_run(plain, plen, f.count) == s->legacy) {
			r = SV_ERR_AUTH;
			goto out;
		}
		end = f.kind == JOURNAL_KIND_SNAPSHOT;
		off += flen;
		if (end && off != size) {
			r = SV_ERR_AUTH; /* bytes after the end: not a snapshot this code wrote */
			goto out;
		}
		counter = f.counter;
		nv_writes = f.nv_writes;
		memcpy(prev, mac, sizeof(mac));
		if ((r = apply_chunk(s, plain, plen, f.count, first)) != SV_OK) {
			if (r != SV_ERR_NOMEM) {
				snprintf(why, why_len,
				         "snapshot %s does not decode although its MAC is valid "
				         "(internal corruption): restore the state directory from "
				         "backup",
				         slot_name(i));
				r = SV_ERR_STATE;
			}
			goto out;
		}
	}
	s->counter = s->snap_counter = s->last_from = counter;
	s->nv_writes = nv_writes;
	memcpy(s->head_mac, mac, sizeof(mac));
	s->active = i;
	s->snap_bytes = size;
	r = SV_OK;
out:
	store_wipe_free(buf, cap);
	if (r != SV_OK)
		store_clear_users(s); /* the other slot starts from an empty table */
	return r;
}
