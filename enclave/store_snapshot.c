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
#include <pthread.h>
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

/* One snapshot being written: everything it needs is copied here, so that the snapshot thread
 * reads nothing of the store that the serve loop changes. */
struct chunker {
	const struct journal_keys *keys;
	int fd;
	uint8_t scheme;
	uint64_t counter, nv_writes; /* of the next chunk */
	size_t chunk_bytes;
	struct sv_buf plain, frame;
	uint8_t prev[JOURNAL_MAC_LEN];
	uint32_t count;     /* ops in plain */
	uint64_t off;       /* bytes written to the slot */
	uint64_t synced;    /* ... of which fsynced */
	uint64_t sync_step; /* fsync every this many bytes (0: only at the end) */
};

/* The snapshot thread fsyncs as it goes, so that the disk never holds gigabytes of dirty pages
 * that the journal's next fsync would wait behind. */
#define SYNC_STEP (32u << 20)

static int chunker_init(struct chunker *c, const struct store *s)
{
	memset(c, 0, sizeof(*c));
	c->keys = s->keys;
	c->fd = s->slot_fd[1 - s->active];
	c->scheme = s->scheme;
	c->counter = s->counter;
	c->nv_writes = s->nv_writes;
	c->chunk_bytes = s->chunk_bytes;
	int r = sv_buf_init(&c->plain, s->chunk_bytes + OP_MAX);
	if (r == SV_OK)
		r = sv_buf_init(&c->frame, s->chunk_bytes + OP_MAX + JOURNAL_FRAME_OVERHEAD);
	return r;
}

static void chunker_free(struct chunker *c)
{
	sv_buf_free(&c->plain);
	sv_buf_free(&c->frame);
}

/* Seals count ops in plain[0..len) as one chunk of the given kind and writes it at c->off. */
static int chunk_write(struct chunker *c, uint8_t kind, uint32_t count, const uint8_t *plain,
                       size_t len)
{
	struct journal_frame f = {.kind = kind,
	                          .scheme = c->scheme,
	                          .counter = c->counter,
	                          .nv_writes = c->nv_writes,
	                          .count = count};
	uint8_t mac[JOURNAL_MAC_LEN];
	sv_buf_reset(&c->frame);
	int r = journal_frame_seal(c->keys, c->prev, &f, plain, len, &c->frame, mac);
	if (r != SV_OK)
		return r;
	if (store_pwrite_all(c->fd, c->frame.data, c->frame.len, (off_t)c->off) != SV_OK)
		return SV_ERR_IO;
	c->off += c->frame.len;
	memcpy(c->prev, mac, sizeof(mac));
	if (c->sync_step != 0 && c->off - c->synced >= c->sync_step) {
		if (fdatasync(c->fd) != 0)
			return SV_ERR_IO;
		c->synced = c->off;
	}
	return SV_OK;
}

/* Seals the ops gathered so far as one chunk. */
static int chunk_flush(struct chunker *c, uint8_t kind)
{
	int r = chunk_write(c, kind, c->count, c->plain.data, c->plain.len);
	sv_buf_reset(&c->plain);
	c->count = 0;
	return r;
}

/* Adds one op, first closing the chunk when it is full (a chunk may exceed chunk_bytes by at
 * most one op). */
static int chunk_put(struct chunker *c, const struct journal_op *op)
{
	int r;
	if (c->plain.len >= c->chunk_bytes && (r = chunk_flush(c, JOURNAL_KIND_SNAPSHOT_PART)))
		return r;
	if ((r = journal_op_put(&c->plain, op)) != SV_OK)
		return r;
	c->count++;
	return SV_OK;
}

/* What a snapshot holds before its users: the run, the unclean-boot history (hybrid). */
struct snap_head {
	uint8_t run[ANCHOR_RUN_LEN];
	uint64_t unclean_times[UNCLEAN_HIST];
	size_t nunclean;
	uint64_t unclean_value, ack_time;
};

static void head_of(const struct store *s, struct snap_head *h)
{
	memcpy(h->run, s->run, sizeof(h->run));
	memcpy(h->unclean_times, s->unclean_times, sizeof(h->unclean_times));
	h->nunclean = s->nunclean;
	h->unclean_value = s->unclean_value;
	h->ack_time = s->ack_time;
}

/* Writes the head and the users v[0..n) (NULL and DELETED skipped) as chunks, all but the last
 * batch of ops, which stays in c->plain. */
static int write_users(struct chunker *c, const struct snap_head *h, struct user *const *v,
                       size_t n)
{
	int r;
	struct journal_op run = {.type = JOURNAL_OP_RUN, .run = h->run};
	if ((r = chunk_put(c, &run)) != SV_OK)
		return r;
	for (size_t i = 0; i < h->nunclean; i++) {
		struct journal_op op = {.type = JOURNAL_OP_PENALTY,
		                        .time = h->unclean_times[i],
		                        .unclean = h->unclean_value};
		if ((r = chunk_put(c, &op)) != SV_OK)
			return r;
	}
	if (h->ack_time != 0) {
		struct journal_op op = {.type = JOURNAL_OP_ACK, .time = h->ack_time};
		if ((r = chunk_put(c, &op)) != SV_OK)
			return r;
	}
	for (size_t i = 0; i < n; i++) {
		const struct user *u = v[i];
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
		if ((r = chunk_put(c, &op)) != SV_OK)
			return r;
	}
	return SV_OK;
}

static int chunker_sync(struct chunker *c)
{
	return ftruncate(c->fd, (off_t)c->off) == 0 && fdatasync(c->fd) == 0 ? SV_OK : SV_ERR_IO;
}

int store_snapshot_slot(struct store *s, uint8_t mac[JOURNAL_MAC_LEN], size_t *len)
{
	struct chunker c;
	struct snap_head h;
	int r = chunker_init(&c, s);
	head_of(s, &h);
	if (r == SV_OK)
		r = write_users(&c, &h, s->tab, s->cap);
	if (r == SV_OK)
		r = chunk_flush(&c, JOURNAL_KIND_SNAPSHOT);
	if (r == SV_OK)
		r = chunker_sync(&c);
	if (r == SV_OK) {
		memcpy(mac, c.prev, JOURNAL_MAC_LEN);
		*len = (size_t)c.off;
	}
	chunker_free(&c);
	sodium_memzero(&h, sizeof(h));
	return r;
}

/* ---------- writing on the snapshot thread ---------- */

enum { JOB_STARTING, JOB_IDLE, JOB_WORK, JOB_DONE, JOB_QUIT };

struct snap_job {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state, r;
	struct chunker c;
	struct snap_head h;
	struct user **users; /* the table's users when it began (none changes until the end) */
	size_t n;
};

static void *snap_thread(void *arg)
{
	struct snap_job *j = arg;
	/* what a new thread does once (glibc's rseq and robust-list registration before this
	 * function, its malloc arena here) happens before store_snapshot_thread_start returns,
	 * i.e. before the enclave's filter, which refuses rseq */
	free(malloc(64));
	pthread_mutex_lock(&j->mu);
	j->state = JOB_IDLE;
	pthread_cond_broadcast(&j->cv);
	for (;;) {
		while (j->state != JOB_WORK && j->state != JOB_QUIT)
			pthread_cond_wait(&j->cv, &j->mu);
		if (j->state == JOB_QUIT)
			break;
		pthread_mutex_unlock(&j->mu);
		int r = write_users(&j->c, &j->h, j->users, j->n);
		/* the last batch of users is the first delta's predecessor: a chunk of its own */
		if (r == SV_OK && j->c.count > 0)
			r = chunk_flush(&j->c, JOURNAL_KIND_SNAPSHOT_PART);
		if (r == SV_OK && fdatasync(j->c.fd) != 0)
			r = SV_ERR_IO;
		pthread_mutex_lock(&j->mu);
		j->r = r;
		j->state = JOB_DONE;
		pthread_cond_broadcast(&j->cv);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

int store_snapshot_thread_start(struct store *s)
{
	if (s->snap_job != NULL)
		return SV_OK;
	struct snap_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return SV_ERR_NOMEM;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	if (pthread_create(&j->th, NULL, snap_thread, j) != 0) {
		pthread_mutex_destroy(&j->mu);
		pthread_cond_destroy(&j->cv);
		free(j);
		return SV_ERR_NOMEM;
	}
	pthread_mutex_lock(&j->mu);
	while (j->state == JOB_STARTING)
		pthread_cond_wait(&j->cv, &j->mu);
	pthread_mutex_unlock(&j->mu);
	s->snap_job = j;
	return SV_OK;
}

/* Waits until the snapshot thread has finished its job. */
static void job_wait(struct snap_job *j)
{
	pthread_mutex_lock(&j->mu);
	while (j->state == JOB_WORK)
		pthread_cond_wait(&j->cv, &j->mu);
	pthread_mutex_unlock(&j->mu);
}

/* Ends a snapshot written on the thread, switched to or not. */
static void job_clear(struct store *s)
{
	struct snap_job *j = s->snap_job;
	chunker_free(&j->c);
	sodium_memzero(&j->h, sizeof(j->h));
	free(j->users);
	j->users = NULL;
	j->n = 0;
	j->state = JOB_IDLE;
	s->snap_live = 0;
	store_drop_retired(s);
	sv_buf_free(&s->snap_delta);
}

void store_snapshot_thread_stop(struct store *s)
{
	struct snap_job *j = s->snap_job;
	if (j == NULL)
		return;
	job_wait(j);
	if (s->snap_live)
		job_clear(s); /* never switched to: the slot it wrote is not a snapshot */
	if (s->keep_threads) {
		/* under the enclave's filter a thread cannot end (its exit takes rt_sigprocmask):
		 * it stays parked, idle, on its own job, until the process ends */
		s->snap_job = NULL;
		return;
	}
	pthread_mutex_lock(&j->mu);
	j->state = JOB_QUIT;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	pthread_join(j->th, NULL);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j);
	s->snap_job = NULL;
}

int store_snapshot_start(struct store *s)
{
	int r;
	if (s->readonly || s->failed || s->written || s->snap_live)
		return SV_ERR_STATE;
	if (s->npending != 0)
		return SV_ERR_BUSY;
	if (s->counter == s->snap_counter)
		return SV_OK;
	if ((r = store_snapshot_thread_start(s)) != SV_OK)
		return r;
	struct snap_job *j = s->snap_job;
	size_t n = 0;
	if ((j->users = malloc((s->users + s->destroyed + 1) * sizeof(*j->users))) == NULL)
		return SV_ERR_NOMEM;
	for (size_t i = 0; i < s->cap; i++)
		if (s->tab[i] != NULL && s->tab[i] != DELETED)
			j->users[n++] = s->tab[i];
	j->n = n;
	if ((r = chunker_init(&j->c, s)) != SV_OK ||
	    (r = sv_buf_init(&s->snap_delta, (size_t)1 << 40)) != SV_OK) {
		chunker_free(&j->c);
		free(j->users);
		j->users = NULL;
		return r;
	}
	head_of(s, &j->h);
	j->c.sync_step = SYNC_STEP;
	s->snap_live = 1;
	pthread_mutex_lock(&j->mu);
	j->state = JOB_WORK;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	return SV_OK;
}

void store_keep_threads(struct store *s)
{
	s->keep_threads = 1;
}

int store_snapshot_busy(const struct store *s)
{
	return s->snap_live;
}

int store_snapshot_note_frame(struct store *s, const struct journal_frame *f, const uint8_t *plain,
                              size_t len)
{
	int r = sv_buf_put_u8(&s->snap_delta, f->kind);
	if (r == SV_OK)
		r = sv_buf_put_u64(&s->snap_delta, f->counter);
	if (r == SV_OK)
		r = sv_buf_put_u64(&s->snap_delta, f->nv_writes);
	if (r == SV_OK)
		r = sv_buf_put_u32(&s->snap_delta, f->count);
	if (r == SV_OK)
		r = sv_buf_put_u32(&s->snap_delta, (uint32_t)len);
	if (r == SV_OK && len > 0)
		r = sv_buf_put(&s->snap_delta, plain, len);
	return r;
}

/* Appends a delta chunk per frame kept, then the end under the current counter; fsyncs. */
static int write_deltas(struct store *s, struct chunker *c)
{
	struct sv_buf b;
	int r;
	sv_buf_from(&b, s->snap_delta.data, s->snap_delta.len);
	while (sv_buf_remaining(&b) > 0) {
		uint8_t kind;
		uint32_t count, len;
		const uint8_t *plain = NULL;
		if ((r = sv_buf_get_u8(&b, &kind)) != SV_OK ||
		    (r = sv_buf_get_u64(&b, &c->counter)) != SV_OK ||
		    (r = sv_buf_get_u64(&b, &c->nv_writes)) != SV_OK ||
		    (r = sv_buf_get_u32(&b, &count)) != SV_OK ||
		    (r = sv_buf_get_u32(&b, &len)) != SV_OK ||
		    (r = sv_buf_get_ref(&b, len, &plain)) != SV_OK ||
		    (r = chunk_write(c, JOURNAL_KIND_SNAPSHOT_DELTA, count, plain, len)) != SV_OK)
			return r;
	}
	c->counter = s->counter;
	c->nv_writes = s->nv_writes;
	if ((r = chunk_write(c, JOURNAL_KIND_SNAPSHOT, 0, NULL, 0)) != SV_OK)
		return r;
	return chunker_sync(c);
}

int store_snapshot_poll(struct store *s)
{
	struct snap_job *j = s->snap_job;
	if (!s->snap_live || s->written)
		return SV_OK;
	pthread_mutex_lock(&j->mu);
	int done = j->state == JOB_DONE, r = j->r;
	pthread_mutex_unlock(&j->mu);
	if (!done)
		return SV_OK;
	/* the journal ends with an anchored frame under s->counter: the delta chunks hold every
	 * frame since the snapshot began, so the snapshot is the state the journal reached */
	if (r == SV_OK)
		r = write_deltas(s, &j->c);
	if (r == SV_OK)
		r = store_write_journal_head(s, s->counter, j->c.prev);
	if (r == SV_OK) {
		s->active = 1 - s->active;
		s->snap_counter = s->counter;
		s->snap_bytes = j->c.off;
	} else {
		s->failed = 1; /* as when a snapshot in the loop fails: the caller stops */
	}
	job_clear(s);
	return r;
}

int store_snapshot_wait(struct store *s)
{
	if (!s->snap_live)
		return SV_OK;
	job_wait(s->snap_job);
	return store_snapshot_poll(s);
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
 * taken here. A user chunk holds user entries (and, in chunk 0, the unclean-boot history); a
 * delta chunk holds the ops of one journal commit or flush frame, applied as replay applies
 * them. SV_ERR_INVALID: the ops do not decode or do not fit their chunk. */
#define USER_BATCH 256 /* user entries applied together (store_apply_users) */

static int apply_chunk(struct store *s, const uint8_t *plain, size_t plen, uint32_t count,
                       int first, int delta)
{
	struct journal_op batch[USER_BATCH];
	uint64_t hashes[USER_BATCH];
	size_t nb = 0;
	struct sv_buf b;
	int r;
	sv_buf_from(&b, plain, plen);
	for (uint32_t n = 0; n < count; n++) {
		struct journal_op op;
		if (journal_op_get(&b, &op) != SV_OK)
			return SV_ERR_INVALID;
		if (!delta && op.type == JOURNAL_OP_USER) {
			batch[nb++] = op;
			if (nb == USER_BATCH) {
				if ((r = store_apply_users(s, batch, nb, hashes)) != SV_OK)
					return r == SV_ERR_NOMEM ? r : SV_ERR_INVALID;
				nb = 0;
			}
			continue;
		}
		if (nb > 0) {
			if ((r = store_apply_users(s, batch, nb, hashes)) != SV_OK)
				return r == SV_ERR_NOMEM ? r : SV_ERR_INVALID;
			nb = 0;
		}
		if (first && n == 0 && !s->legacy) {
			if (op.type != JOURNAL_OP_RUN)
				return SV_ERR_INVALID;
			memcpy(s->run, op.run, ANCHOR_RUN_LEN);
			continue;
		}
		int ok;
		if (delta)
			ok = op.type != JOURNAL_OP_USER && op.type != JOURNAL_OP_RUN &&
			     (op.type != JOURNAL_OP_PENALTY || op.charge == 1);
		else /* the unclean-boot history (hybrid) only in the first chunk, then users */
			ok = op.type == JOURNAL_OP_USER ||
			     (first && ((op.type == JOURNAL_OP_PENALTY && op.charge == 0) ||
			                op.type == JOURNAL_OP_ACK));
		if (!ok)
			return SV_ERR_INVALID;
		if ((r = store_apply_op(s, &op)) != SV_OK)
			return r == SV_ERR_NOMEM ? r : SV_ERR_INVALID;
	}
	if (nb > 0 && (r = store_apply_users(s, batch, nb, hashes)) != SV_OK)
		return r == SV_ERR_NOMEM ? r : SV_ERR_INVALID;
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

/* Start-up reads a slot on two threads: a reader verifies and decrypts the chunks in order, up
 * to READ_AHEAD ahead, while this thread applies them (the MACs and the decryption are about
 * half of the work). Memory: READ_AHEAD + 1 chunk buffers. */
#define READ_AHEAD 3

struct opened {
	uint8_t *buf;
	size_t cap, flen, plen;
	const uint8_t *plain;
	struct journal_frame f;
	uint8_t mac[JOURNAL_MAC_LEN];
	int r; /* read_frame, then journal_frame_open */
};

struct reader {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct opened q[READ_AHEAD + 1];
	size_t made, used; /* chunks opened; chunks the applier is done with */
	int stop;          /* the applier needs no more */
	int fd;
	uint64_t size;
	const struct journal_keys *keys;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	uint8_t prev[JOURNAL_MAC_LEN] = {0};
	uint64_t off = 0;
	for (int last = 0; !last;) {
		pthread_mutex_lock(&rd->mu);
		while (!rd->stop && rd->made - rd->used > READ_AHEAD)
			pthread_cond_wait(&rd->cv, &rd->mu);
		int stop = rd->stop;
		struct opened *o = &rd->q[rd->made % (READ_AHEAD + 1)];
		pthread_mutex_unlock(&rd->mu);
		if (stop)
			break;
		size_t fl = 0;
		o->r = read_frame(rd->fd, off, rd->size, &o->buf, &o->cap, &o->flen);
		if (o->r == SV_OK)
			o->r = journal_frame_open(rd->keys, prev, o->buf, o->flen, &o->f, &fl,
			                          &o->plain, &o->plen, o->mac);
		if (o->r == SV_OK) {
			memcpy(prev, o->mac, sizeof(prev));
			off += o->flen;
		}
		last = o->r != SV_OK || o->f.kind == JOURNAL_KIND_SNAPSHOT;
		pthread_mutex_lock(&rd->mu);
		rd->made++;
		pthread_cond_broadcast(&rd->cv);
		pthread_mutex_unlock(&rd->mu);
	}
	return NULL;
}

/* The next opened chunk (waits for the reader). */
static struct opened *reader_next(struct reader *rd)
{
	pthread_mutex_lock(&rd->mu);
	while (rd->made == rd->used)
		pthread_cond_wait(&rd->cv, &rd->mu);
	struct opened *o = &rd->q[rd->used % (READ_AHEAD + 1)];
	pthread_mutex_unlock(&rd->mu);
	return o;
}

/* The applier is done with the chunk reader_next gave it. */
static void reader_done(struct reader *rd)
{
	pthread_mutex_lock(&rd->mu);
	rd->used++;
	pthread_cond_broadcast(&rd->cv);
	pthread_mutex_unlock(&rd->mu);
}

int store_snapshot_load(struct store *s, int i, char *why, size_t why_len)
{
	uint8_t mac[JOURNAL_MAC_LEN] = {0};
	uint64_t off = 0, counter = 0, nv_writes = 0;
	struct stat st;
	struct reader rd = {.fd = s->slot_fd[i], .keys = s->keys};
	pthread_t th;
	int r, end = 0;
	if (fstat(s->slot_fd[i], &st) != 0)
		return SV_ERR_IO;
	uint64_t size = rd.size = (uint64_t)st.st_size;
	/* the table at its final size at once (about 250 bytes per user entry on disk) */
	s->cap = 1024;
	while (size / 250 * 10 >= (uint64_t)s->cap * 7)
		s->cap *= 2;
	s->tab = calloc(s->cap, sizeof(*s->tab));
	s->tags = calloc(s->cap, 1);
	if (s->tab == NULL || s->tags == NULL) {
		store_clear_users(s);
		return SV_ERR_NOMEM;
	}
	pthread_mutex_init(&rd.mu, NULL);
	pthread_cond_init(&rd.cv, NULL);
	if (pthread_create(&th, NULL, reader_main, &rd) != 0) {
		r = SV_ERR_NOMEM;
		goto out_nothread;
	}
	/* user chunks under the counter the snapshot began at, then (written while the vault
	 * committed) delta chunks under their frames' counters, then the end */
	int deltas = 0;
	s->bulk = 1;
	for (int first = 1; !end; first = 0) {
		struct opened *o = reader_next(&rd);
		const struct journal_frame *f = &o->f;
		if ((r = o->r) == SV_ERR_INVALID)
			r = SV_ERR_AUTH;
		int part = r == SV_OK && f->kind == JOURNAL_KIND_SNAPSHOT_PART;
		int delta = r == SV_OK && f->kind == JOURNAL_KIND_SNAPSHOT_DELTA;
		end = r == SV_OK && f->kind == JOURNAL_KIND_SNAPSHOT;
		if (r != SV_OK)
			goto out;
		if ((!part && !delta && !end) || f->scheme != s->scheme || (first && delta) ||
		    (part && deltas) || (end && deltas && f->count != 0) ||
		    (!first && !deltas && !delta &&
		     (f->counter != counter || f->nv_writes != nv_writes)) ||
		    (!first && (f->counter < counter || f->nv_writes < nv_writes))) {
			r = SV_ERR_AUTH; /* not a valid snapshot: the caller tries the other slot */
			goto out;
		}
		/* A current snapshot starts with the run op; one of sealvault 0.2 (read only by
		 * store_upgrade) has none. A slot of the other kind is not this header's: try the
		 * other slot (an upgrade interrupted between the new snapshot and the new header).
		 */
		if (first && starts_with_run(o->plain, o->plen, f->count) == s->legacy) {
			r = SV_ERR_AUTH;
			goto out;
		}
		off += o->flen;
		if (end && off != size) {
			r = SV_ERR_AUTH; /* bytes after the end: not a snapshot this code wrote */
			goto out;
		}
		deltas |= delta;
		counter = f->counter;
		nv_writes = f->nv_writes;
		s->apply_counter = f->counter;
		memcpy(mac, o->mac, sizeof(mac));
		if ((r = apply_chunk(s, o->plain, o->plen, f->count, first, delta)) != SV_OK) {
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
		reader_done(&rd);
	}
	s->counter = s->snap_counter = s->last_from = counter;
	s->nv_writes = nv_writes;
	memcpy(s->head_mac, mac, sizeof(mac));
	s->active = i;
	s->snap_bytes = size;
	r = SV_OK;
out:
	s->bulk = 0;
	pthread_mutex_lock(&rd.mu);
	rd.stop = 1;
	pthread_cond_broadcast(&rd.cv);
	pthread_mutex_unlock(&rd.mu);
	pthread_join(th, NULL);
out_nothread:
	for (size_t k = 0; k <= READ_AHEAD; k++)
		store_wipe_free(rd.q[k].buf, rd.q[k].cap);
	pthread_mutex_destroy(&rd.mu);
	pthread_cond_destroy(&rd.cv);
	if (r != SV_OK)
		store_clear_users(s); /* the other slot starts from an empty table */
	return r;
}
