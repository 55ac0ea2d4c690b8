/*
 * The durable vault state: an in-memory user table (open addressing, SipHash with a random key),
 * a MAC'd hash-chained journal, A/B snapshots and the TPM NV counter they are anchored in
 * (enclave/anchor.h). This file: the table, the mutations, commits and snapshots. Opening
 * (replay, the run check, the take-over) is in store_open.c, provisioning in store_init.c.
 *
 * Commit: encode the staged ops as one frame for counter C+1, pwrite + fdatasync the journal,
 * NV_Increment (-> C+1) and read it back, and only then report success (store_write,
 * store_anchor). A frame of guess resets alone is a flush: fsynced under C, no NV write.
 *
 * Hybrid counter (anchor.h, docs/threat-model.md "The hybrid counter"): a commit that must be
 * on NV before it is answered (a registration, a password change, a deletion, or the second
 * charged guess of a user whose previous charge is not yet on NV) goes to the next multiple of
 * M + 1 instead (a forced flush), so each user has at most one answered guess that a power cut
 * can take back; the power-cut penalty at start (store_open.c) charges exactly that one.
 */
#include "enclave/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "enclave/anchor.h"
#include "enclave/journal.h"
#include "enclave/store_impl.h"
#include "enclave/tpm.h"

/* ---------- user table ---------- */

static uint64_t id_hash(const struct store *s, const uint8_t *id, size_t n)
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, id, n, s->hkey);
	uint64_t v;
	memcpy(&v, h, sizeof(v));
	return v;
}

static size_t user_size(size_t id_len, int destroyed, size_t blob_len)
{
	return offsetof(struct user, data) + id_len + (destroyed ? 0 : STORE_RECORD_LEN + blob_len);
}

/* Wipes a user and frees it, unless it lives in the arena (freed with the store). */
static void user_free(struct user *u)
{
	if (u == NULL || u == DELETED)
		return;
	int arena = u->arena;
	sodium_memzero(u, user_size(u->id_len, u->destroyed, u->blob_len));
	if (!arena)
		free(u);
}

#define ARENA_BLOCK (4u << 20)

/* n bytes for a user, 8-byte aligned: from the arena while a snapshot is loaded, else malloc. */
static struct user *user_alloc(struct store *s, size_t n)
{
	if (!s->bulk) {
		struct user *u = malloc(n < sizeof(struct user) ? sizeof(struct user) : n);
		if (u != NULL)
			u->arena = 0;
		return u;
	}
	n = (n + 7) & ~(size_t)7;
	struct arena *a = s->arena;
	if (a == NULL || a->cap - a->used < n) {
		size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		if ((a = malloc(sizeof(*a) + cap)) == NULL)
			return NULL;
		a->next = s->arena;
		a->used = 0;
		a->cap = cap;
		s->arena = a;
	}
	struct user *u = (struct user *)(void *)(a->data + a->used);
	a->used += n;
	u->arena = 1;
	return u;
}

static void arena_free(struct store *s)
{
	while (s->arena != NULL) {
		struct arena *next = s->arena->next;
		sodium_memzero(s->arena->data, s->arena->used);
		free(s->arena);
		s->arena = next;
	}
}

/* While the snapshot thread writes (store_snapshot_start), it reads the users that were in the
 * table when it began: none of them may change or be freed until the snapshot is switched to.
 * Every change then goes to a copy (own), and a user that leaves the table is kept (drop) until
 * the switch to the snapshot (store_snapshot_poll) frees them all. */
static void drop(struct store *s, struct user *u)
{
	if (u == NULL || u == DELETED)
		return;
	if (!s->snap_live) {
		user_free(u);
		return;
	}
	if (s->nretired == s->retired_cap) {
		size_t cap = s->retired_cap ? s->retired_cap * 2 : 1024;
		struct user **p = realloc(s->retired, cap * sizeof(*p));
		if (p == NULL)
			return; /* kept without a wipe rather than freed under the reader */
		s->retired = p;
		s->retired_cap = cap;
	}
	s->retired[s->nretired++] = u;
}

void store_drop_retired(struct store *s)
{
	for (size_t i = 0; i < s->nretired; i++)
		user_free(s->retired[i]);
	free(s->retired);
	s->retired = NULL;
	s->nretired = s->retired_cap = 0;
}

/* The user in slot i, writable: a copy of it while a snapshot is being written. */
static struct user *own(struct store *s, size_t i)
{
	struct user *u = s->tab[i];
	if (!s->snap_live)
		return u;
	size_t n = user_size(u->id_len, u->destroyed, u->blob_len);
	struct user *c = malloc(n < sizeof(struct user) ? sizeof(struct user) : n);
	if (c == NULL)
		return NULL;
	memcpy(c, u, n);
	c->arena = 0;
	drop(s, u);
	s->tab[i] = c;
	return c;
}

/* Slot of id, or of the first free slot where it would go when absent (*found = 0). A slot's
 * tag (8 more bits of the hash, s->tags) spares the look at a user whose identifier cannot
 * match: without it, following the pointers of the probe sequence was a third of the start. */
static size_t find_hashed(const struct store *s, const uint8_t *id, size_t n, uint64_t h,
                          int *found, uint8_t *tag_out)
{
	size_t mask = s->cap - 1, i = (size_t)h & mask, free_slot = SIZE_MAX;
	uint8_t tag = (uint8_t)(h >> 56);
	if (tag_out != NULL)
		*tag_out = tag;
	for (;;) {
		struct user *u = s->tab[i];
		if (u == NULL) {
			*found = 0;
			return free_slot != SIZE_MAX ? free_slot : i;
		}
		if (u == DELETED) {
			if (free_slot == SIZE_MAX)
				free_slot = i;
		} else if (s->tags[i] == tag && u->id_len == n &&
		           sodium_memcmp(u->data, id, n) == 0) {
			*found = 1;
			return i;
		}
		i = (i + 1) & mask;
	}
}

static size_t find_tag(const struct store *s, const uint8_t *id, size_t n, int *found,
                       uint8_t *tag_out)
{
	return find_hashed(s, id, n, id_hash(s, id, n), found, tag_out);
}

static size_t find(const struct store *s, const uint8_t *id, size_t n, int *found)
{
	return find_tag(s, id, n, found, NULL);
}

static int grow_table(struct store *s)
{
	size_t cap = s->cap ? s->cap : 1024;
	while ((s->users + s->destroyed + 1) * 10 >= cap * 7)
		cap *= 2;
	if (cap == s->cap && (s->nslots_used + 1) * 10 < s->cap * 8)
		return SV_OK;
	struct user **old = s->tab;
	uint8_t *old_tags = s->tags;
	size_t old_cap = s->cap;
	s->tab = calloc(cap, sizeof(*s->tab));
	s->tags = calloc(cap, 1);
	if (s->tab == NULL || s->tags == NULL) {
		free(s->tab);
		free(s->tags);
		s->tab = old;
		s->tags = old_tags;
		return SV_ERR_NOMEM;
	}
	s->cap = cap;
	s->nslots_used = 0;
	for (size_t i = 0; i < old_cap; i++) {
		struct user *u = old[i];
		if (u == NULL || u == DELETED)
			continue;
		int found;
		uint8_t tag;
		size_t k = find_tag(s, u->data, u->id_len, &found, &tag);
		s->tab[k] = u;
		s->tags[k] = tag;
		s->nslots_used++;
	}
	free(old);
	free(old_tags);
	return SV_OK;
}

static struct user *get(const struct store *s, const uint8_t *id, size_t n)
{
	int found = 0;
	if (s->cap == 0)
		return NULL;
	size_t i = find(s, id, n, &found);
	return found ? s->tab[i] : NULL;
}

static int apply_put(struct store *s, const uint8_t *id, size_t n, const uint8_t *record,
                     const uint8_t *blob, size_t blob_len, unsigned limit)
{
	int r = grow_table(s);
	if (r != SV_OK)
		return r;
	struct user *u = user_alloc(s, user_size(n, 0, blob_len));
	if (u == NULL)
		return SV_ERR_NOMEM;
	u->charged_at = 0;
	u->id_len = (uint8_t)n;
	u->blob_len = (uint16_t)blob_len;
	u->limit = (uint8_t)limit;
	u->used = 0;
	u->destroyed = 0;
	memcpy(u->data, id, n);
	memcpy(u->data + n, record, STORE_RECORD_LEN);
	if (blob_len > 0)
		memcpy(u->data + n + STORE_RECORD_LEN, blob, blob_len);
	int found = 0;
	uint8_t tag;
	size_t i = find_tag(s, id, n, &found, &tag);
	s->tags[i] = tag;
	if (found) {
		if (s->tab[i]->destroyed) {
			s->destroyed--;
			s->users++;
		}
		drop(s, s->tab[i]);
	} else {
		if (s->tab[i] == NULL)
			s->nslots_used++;
		s->users++;
	}
	s->tab[i] = u;
	return SV_OK;
}

/* Wipes record and blob and keeps the identifier as a tombstone. */
static void destroy(struct store *s, size_t i)
{
	struct user *u = s->tab[i];
	size_t keep = user_size(u->id_len, 1, 0);
	sodium_memzero(u->data + u->id_len, STORE_RECORD_LEN + u->blob_len);
	u->destroyed = 1;
	u->blob_len = 0;
	struct user *t = u->arena ? u : realloc(u, keep < sizeof(*u) ? sizeof(*u) : keep);
	s->tab[i] = t != NULL ? t : u;
	s->users--;
	s->destroyed++;
}

static int apply_charge(struct store *s, const uint8_t *id, size_t n, unsigned *used_after)
{
	int found = 0;
	if (s->cap == 0)
		return SV_ERR_NOTFOUND;
	size_t i = find(s, id, n, &found);
	if (!found)
		return SV_ERR_NOTFOUND;
	if (s->tab[i]->destroyed)
		return SV_ERR_LOCKED;
	struct user *u = own(s, i);
	if (u == NULL)
		return SV_ERR_NOMEM;
	u->used++;
	u->charged_at = s->apply_counter;
	*used_after = u->used;
	if (u->used >= u->limit)
		destroy(s, i);
	return SV_OK;
}

/* The power-cut penalty (hybrid): every active user is charged one guess; a user at the last
 * guess is destroyed, as by a charge. Tombstones stay as they are. */
static int apply_penalty(struct store *s)
{
	for (size_t i = 0; i < s->cap; i++) {
		struct user *u = s->tab[i];
		if (u == NULL || u == DELETED || u->destroyed)
			continue;
		if ((u = own(s, i)) == NULL)
			return SV_ERR_NOMEM;
		u->used++;
		if (u->used >= u->limit)
			destroy(s, i);
	}
	return SV_OK;
}

/* Remembers an unclean boot for the yearly budget (oldest forgotten first). */
static void note_unclean(struct store *s, uint64_t time)
{
	if (s->nunclean == UNCLEAN_HIST) {
		memmove(s->unclean_times, s->unclean_times + 1,
		        (UNCLEAN_HIST - 1) * sizeof(s->unclean_times[0]));
		s->nunclean--;
	}
	s->unclean_times[s->nunclean++] = time;
}

static int apply_reset(struct store *s, const uint8_t *id, size_t n)
{
	int found = 0;
	if (s->cap == 0)
		return SV_ERR_NOTFOUND;
	size_t i = find(s, id, n, &found);
	if (!found)
		return SV_ERR_NOTFOUND;
	if (s->tab[i]->destroyed)
		return SV_ERR_LOCKED;
	struct user *u = own(s, i);
	if (u == NULL)
		return SV_ERR_NOMEM;
	u->used = 0;
	u->charged_at = 0;
	return SV_OK;
}

static int apply_delete(struct store *s, const uint8_t *id, size_t n)
{
	int found = 0;
	if (s->cap == 0)
		return SV_ERR_NOTFOUND;
	size_t i = find(s, id, n, &found);
	if (!found)
		return SV_ERR_NOTFOUND;
	if (s->tab[i]->destroyed)
		s->destroyed--;
	else
		s->users--;
	drop(s, s->tab[i]);
	s->tab[i] = DELETED;
	return SV_OK;
}

/* A snapshot's user entry: a new user (a tombstone keeps only the identifier), with one lookup
 * (start-up does this ten million times). */
static int apply_user(struct store *s, const struct journal_op *op, uint64_t h)
{
	int found = 0, d = op->destroyed != 0, r = grow_table(s);
	uint8_t tag;
	if (r != SV_OK)
		return r;
	size_t i = find_hashed(s, op->id, op->id_len, h, &found, &tag);
	if (found)
		return SV_ERR_INVALID;
	size_t blob_len = d ? 0 : op->blob_len;
	struct user *u = user_alloc(s, user_size(op->id_len, d, blob_len));
	if (u == NULL)
		return SV_ERR_NOMEM;
	u->charged_at = 0;
	u->id_len = (uint8_t)op->id_len;
	u->blob_len = (uint16_t)blob_len;
	u->limit = op->limit;
	u->used = d ? op->limit : op->used;
	u->destroyed = (uint8_t)d;
	memcpy(u->data, op->id, op->id_len);
	if (!d) {
		memcpy(u->data + op->id_len, op->record, STORE_RECORD_LEN);
		if (blob_len > 0)
			memcpy(u->data + op->id_len + STORE_RECORD_LEN, op->blob, blob_len);
	}
	if (s->tab[i] == NULL)
		s->nslots_used++;
	s->tab[i] = u;
	s->tags[i] = tag;
	if (d)
		s->destroyed++;
	else
		s->users++;
	return SV_OK;
}

#define PREFETCH_AHEAD 8

int store_apply_users(struct store *s, const struct journal_op *ops, size_t n, uint64_t *hashes)
{
	int r = SV_OK;
	/* the table's slots are random accesses: hash all, then fetch a few slots ahead */
	for (size_t k = 0; k < n; k++) {
		if (ops[k].type != JOURNAL_OP_USER)
			return SV_ERR_INVALID;
		hashes[k] = id_hash(s, ops[k].id, ops[k].id_len);
	}
	for (size_t k = 0; k < n && r == SV_OK; k++) {
		if (k + PREFETCH_AHEAD < n && s->cap != 0) {
			size_t j = (size_t)hashes[k + PREFETCH_AHEAD] & (s->cap - 1);
			__builtin_prefetch(&s->tab[j]);
			__builtin_prefetch(&s->tags[j]);
		}
		r = apply_user(s, &ops[k], hashes[k]);
	}
	return r;
}

/* Applies one decoded op (journal replay or snapshot load); any mismatch means corrupt state. */
int store_apply_op(struct store *s, const struct journal_op *op)
{
	unsigned used = 0;
	int r;
	switch (op->type) {
	case JOURNAL_OP_PUT:
		return apply_put(s, op->id, op->id_len, op->record, op->blob, op->blob_len,
		                 op->limit);
	case JOURNAL_OP_CHARGE:
		r = apply_charge(s, op->id, op->id_len, &used);
		return r != SV_OK ? r : used == op->used ? SV_OK : SV_ERR_INVALID;
	case JOURNAL_OP_RESET: return apply_reset(s, op->id, op->id_len);
	case JOURNAL_OP_DELETE: return apply_delete(s, op->id, op->id_len);
	case JOURNAL_OP_NOOP: return SV_OK;
	case JOURNAL_OP_PENALTY:
		if (s->orderly_mask == 0)
			return SV_ERR_INVALID;
		if (op->charge) {
			if ((r = apply_penalty(s)) != SV_OK)
				return r;
			s->penalties++;
		}
		note_unclean(s, op->time);
		s->unclean_value = op->unclean;
		return SV_OK;
	case JOURNAL_OP_ACK:
		if (s->orderly_mask == 0)
			return SV_ERR_INVALID;
		s->ack_time = op->time;
		return SV_OK;
	case JOURNAL_OP_USER: return apply_user(s, op, id_hash(s, op->id, op->id_len));
	default: return SV_ERR_INVALID;
	}
}

/* ---------- file helpers (descriptors only after open) ---------- */

int store_pwrite_all(int fd, const uint8_t *p, size_t n, off_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return SV_ERR_IO;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return SV_OK;
}

/* Reads a whole file into a new malloc'd buffer (at most max bytes). */
int store_read_all(int fd, size_t max, uint8_t **out, size_t *len)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return SV_ERR_IO;
	if ((uint64_t)st.st_size > max)
		return SV_ERR_RANGE;
	size_t n = (size_t)st.st_size, done = 0;
	uint8_t *p = malloc(n ? n : 1);
	if (p == NULL)
		return SV_ERR_NOMEM;
	while (done < n) {
		ssize_t r = pread(fd, p + done, n - done, (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(p);
			return SV_ERR_IO;
		}
		done += (size_t)r;
	}
	*out = p;
	*len = n;
	return SV_OK;
}

void store_wipe_free(uint8_t *p, size_t n)
{
	if (p != NULL) {
		sodium_memzero(p, n);
		free(p);
	}
}

int store_write_journal_head(struct store *s, uint64_t base, const uint8_t mac[JOURNAL_MAC_LEN])
{
	struct journal_head h = {.base_counter = base};
	uint8_t enc[JOURNAL_HEAD_LEN];
	memcpy(h.base_mac, mac, JOURNAL_MAC_LEN);
	journal_head_encode(&h, enc);
	if (store_pwrite_all(s->jfd, enc, sizeof(enc), 0) != SV_OK ||
	    ftruncate(s->jfd, sizeof(enc)) != 0 || fdatasync(s->jfd) != 0)
		return SV_ERR_IO;
	s->jlen = sizeof(enc);
	memcpy(s->head_mac, mac, JOURNAL_MAC_LEN);
	return SV_OK;
}

/* ---------- lifecycle ---------- */

int store_alloc(struct store **out, struct tpm *tpm, const struct sv_vault_policy *pol)
{
	struct store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return SV_ERR_NOMEM;
	s->tpm = tpm;
	if (pol != NULL)
		s->pol = *pol;
	else
		policy_vault_defaults(&s->pol);
	s->lock_fd = s->jfd = s->slot_fd[0] = s->slot_fd[1] = -1;
	s->key = sodium_malloc(TPM_VAULT_KEY_LEN);
	s->keys = sodium_malloc(sizeof(*s->keys));
	s->secrets = sodium_malloc(sizeof(*s->secrets));
	if (s->key == NULL || s->keys == NULL || s->secrets == NULL ||
	    sv_buf_init(&s->pending, PENDING_MAX) != SV_OK) {
		store_close(s);
		return SV_ERR_NOMEM;
	}
	randombytes_buf(s->hkey, sizeof(s->hkey));
	s->flush_ok = 1;
	s->chunk_bytes = STORE_SNAPSHOT_CHUNK;
	*out = s;
	return SV_OK;
}

void store_clear_users(struct store *s)
{
	/* users in the arena are wiped with it, block by block */
	for (size_t i = 0; i < s->cap; i++)
		if (s->tab[i] != NULL && s->tab[i] != DELETED && !s->tab[i]->arena)
			user_free(s->tab[i]);
	free(s->tab);
	free(s->tags);
	s->tab = NULL;
	s->tags = NULL;
	arena_free(s);
	s->cap = s->nslots_used = 0;
	s->users = s->destroyed = 0;
	s->nunclean = 0;
	s->unclean_value = s->ack_time = 0;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	store_snapshot_thread_stop(s);
	store_clear_users(s);
	sv_buf_free(&s->pending);
	if (s->key != NULL)
		sodium_free(s->key);
	if (s->keys != NULL)
		sodium_free(s->keys);
	if (s->secrets != NULL)
		sodium_free(s->secrets);
	anchor_free(s->anchor);
	int fds[] = {s->jfd, s->slot_fd[0], s->slot_fd[1], s->lock_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	sodium_memzero(s, sizeof(*s));
	free(s);
}

int store_open_at(int dfd, const char *name, int flags, const char *dir, char *why, size_t why_len,
                  int *fd)
{
	*fd = openat(dfd, name, flags | O_CLOEXEC, 0600);
	if (*fd >= 0)
		return SV_OK;
	if (errno == ENOENT)
		snprintf(why, why_len,
		         "state file %s/%s is missing: the state directory is incomplete; restore "
		         "it from the latest backup (see docs/operations.md)",
		         dir, name);
	else
		snprintf(why, why_len, "cannot open %s/%s: %s", dir, name, strerror(errno));
	return errno == ENOENT ? SV_ERR_STATE : SV_ERR_IO;
}

int store_take_lock(struct store *s, int dfd, const char *dir, int create, char *why,
                    size_t why_len)
{
	int r = store_open_at(dfd, FN_LOCK, O_RDWR | (create ? O_CREAT : 0), dir, why, why_len,
	                      &s->lock_fd);
	if (r != SV_OK)
		return r;
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(why, why_len,
		         "state directory %s is in use by another process (lock held): stop the "
		         "running enclave first",
		         dir);
		return SV_ERR_BUSY;
	}
	return SV_OK;
}

int store_open_dir(const char *dir, int *dfd, char *why, size_t why_len)
{
	*dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dfd >= 0)
		return SV_OK;
	snprintf(why, why_len, "cannot open state directory %s: %s", dir, strerror(errno));
	return errno == ENOENT ? SV_ERR_STATE : SV_ERR_IO;
}

void store_audit_key(const struct store *s, uint8_t out[static STORE_AUDIT_KEY_LEN])
{
	static const char ctx[crypto_kdf_CONTEXTBYTES] = {'s', 'v', 'a', 'u', 'd', 'i', 't', '1'};
	crypto_kdf_derive_from_key(out, STORE_AUDIT_KEY_LEN, 1, ctx, s->key);
}

const struct store_secrets *store_secrets(const struct store *s)
{
	return s->secrets;
}

/* ---------- reads and mutations ---------- */

static int check_id(const uint8_t *id, size_t n)
{
	return id != NULL && n > 0 && n <= STORE_ID_MAX ? SV_OK : SV_ERR_RANGE;
}

int store_lookup(const struct store *s, const uint8_t *id, size_t id_len,
                 struct store_user_view *out)
{
	if (check_id(id, id_len) != SV_OK)
		return SV_ERR_RANGE;
	const struct user *u = get(s, id, id_len);
	if (u == NULL)
		return SV_ERR_NOTFOUND;
	out->id = u->data;
	out->id_len = u->id_len;
	out->record = u->destroyed ? NULL : u->data + u->id_len;
	out->blob = u->destroyed ? NULL : u->data + u->id_len + STORE_RECORD_LEN;
	out->blob_len = u->blob_len;
	out->guess_limit = u->limit;
	out->guesses_used = u->used;
	out->destroyed = u->destroyed;
	return SV_OK;
}

/* Staging is refused between store_write and store_anchor, except while the written frame's
 * anchor runs (store_anchor_begin .. _end): then it stages the next frame. */
static int writable(const struct store *s)
{
	return s->readonly || s->failed || (s->written && !s->anchoring) ? SV_ERR_STATE : SV_OK;
}

/* The counter value the next frame follows: the written commit's while its anchor is
 * outstanding, else what the TPM holds (ahead of the journal after a power cut). */
static uint64_t next_base(const struct store *s)
{
	return s->written == JOURNAL_KIND_COMMIT ? s->write_target : s->tpm_counter;
}

/* Hybrid: the change being staged must be on NV before it is answered, so this commit will be
 * a forced flush; SV_ERR_BUSY when forced flushes are not allowed now (the NV-write budget is
 * short: store_set_flush_allowed), so that the caller answers "busy" and changes nothing. */
static int require_flush(struct store *s)
{
	if (s->orderly_mask == 0)
		return SV_OK; /* plain: every commit is on NV */
	if (!s->flush_ok && !s->need_flush)
		return SV_ERR_BUSY;
	s->need_flush = 1;
	return SV_OK;
}

/* Stages op; if apply then fails, the staged bytes are taken back. */
static int stage(struct store *s, const struct journal_op *op, size_t *mark)
{
	/* a lower bound of the commit's counter */
	s->apply_counter = (s->written == JOURNAL_KIND_COMMIT ? s->write_target : s->counter) + 1;
	*mark = s->pending.len;
	int r = journal_op_put(&s->pending, op);
	if (r == SV_ERR_RANGE && s->pending.len + 1024 > PENDING_MAX)
		return SV_ERR_BUSY;
	return r;
}

static int finish(struct store *s, size_t mark, int r)
{
	if (r != SV_OK) {
		sodium_memzero(s->pending.data + mark, s->pending.len - mark);
		s->pending.len = mark;
		return r;
	}
	s->npending++;
	/* Only a guess reset may be acknowledged before the increment (store_write). */
	if (s->pending.data[mark] != JOURNAL_OP_RESET)
		s->nanchored++;
	return SV_OK;
}

int store_put_user(struct store *s, const uint8_t *id, size_t id_len,
                   const uint8_t record[static STORE_RECORD_LEN], const uint8_t *blob,
                   size_t blob_len, unsigned guess_limit)
{
	size_t mark;
	int r;
	if ((r = writable(s)) != SV_OK)
		return r;
	if (check_id(id, id_len) != SV_OK || blob_len > STORE_BLOB_MAX ||
	    (blob == NULL && blob_len > 0) || guess_limit == 0 || guess_limit > 255)
		return SV_ERR_RANGE;
	struct journal_op op = {.type = JOURNAL_OP_PUT,
	                        .id = id,
	                        .id_len = id_len,
	                        .limit = (uint8_t)guess_limit,
	                        .record = record,
	                        .blob = blob,
	                        .blob_len = blob_len};
	if ((r = require_flush(s)) != SV_OK || (r = stage(s, &op, &mark)) != SV_OK)
		return r;
	return finish(s, mark, apply_put(s, id, id_len, record, blob, blob_len, guess_limit));
}

int store_charge_guess(struct store *s, const uint8_t *id, size_t id_len, unsigned *left)
{
	size_t mark;
	unsigned used = 0;
	int r;
	if ((r = writable(s)) != SV_OK)
		return r;
	if (check_id(id, id_len) != SV_OK)
		return SV_ERR_RANGE;
	const struct user *u = get(s, id, id_len);
	if (u == NULL)
		return SV_ERR_NOTFOUND;
	if (u->destroyed)
		return SV_ERR_LOCKED;
	/* One answered guess per user that a power cut may take back, no more (hybrid). */
	if (!store_durable(s, u->charged_at) && (r = require_flush(s)) != SV_OK)
		return r;
	unsigned limit = u->limit;
	struct journal_op op = {
	    .type = JOURNAL_OP_CHARGE, .id = id, .id_len = id_len, .used = (uint8_t)(u->used + 1)};
	if ((r = stage(s, &op, &mark)) != SV_OK)
		return r;
	r = finish(s, mark, apply_charge(s, id, id_len, &used));
	if (r == SV_OK)
		*left = limit - used;
	return r;
}

int store_reset_guesses(struct store *s, const uint8_t *id, size_t id_len)
{
	size_t mark;
	int r;
	if ((r = writable(s)) != SV_OK)
		return r;
	if (check_id(id, id_len) != SV_OK)
		return SV_ERR_RANGE;
	const struct user *u = get(s, id, id_len);
	if (u == NULL)
		return SV_ERR_NOTFOUND;
	if (u->destroyed)
		return SV_ERR_LOCKED;
	struct journal_op op = {.type = JOURNAL_OP_RESET, .id = id, .id_len = id_len};
	if ((r = stage(s, &op, &mark)) != SV_OK)
		return r;
	return finish(s, mark, apply_reset(s, id, id_len));
}

int store_delete_user(struct store *s, const uint8_t *id, size_t id_len)
{
	size_t mark;
	int r;
	if ((r = writable(s)) != SV_OK)
		return r;
	if (check_id(id, id_len) != SV_OK)
		return SV_ERR_RANGE;
	if (get(s, id, id_len) == NULL)
		return SV_ERR_NOTFOUND;
	struct journal_op op = {.type = JOURNAL_OP_DELETE, .id = id, .id_len = id_len};
	if ((r = require_flush(s)) != SV_OK || (r = stage(s, &op, &mark)) != SV_OK)
		return r;
	return finish(s, mark, apply_delete(s, id, id_len));
}

int store_stage_penalty(struct store *s, uint64_t time, uint64_t unclean)
{
	size_t mark;
	int r;
	if ((r = writable(s)) != SV_OK)
		return r;
	struct journal_op op = {
	    .type = JOURNAL_OP_PENALTY, .time = time, .unclean = unclean, .charge = 1};
	if ((r = stage(s, &op, &mark)) != SV_OK)
		return r;
	s->need_flush = 1;
	return finish(s, mark, store_apply_op(s, &op));
}

int store_acknowledge(struct store *s, uint64_t time)
{
	size_t mark;
	int r;
	if ((r = writable(s)) != SV_OK)
		return r;
	if (s->orderly_mask == 0)
		return SV_ERR_STATE;
	struct journal_op op = {.type = JOURNAL_OP_ACK, .time = time};
	if ((r = stage(s, &op, &mark)) != SV_OK)
		return r;
	s->need_flush = 1;
	return finish(s, mark, store_apply_op(s, &op));
}

int store_stage_noop(struct store *s)
{
	size_t mark;
	int r;
	if ((r = writable(s)) != SV_OK)
		return r;
	struct journal_op op = {.type = JOURNAL_OP_NOOP};
	if ((r = stage(s, &op, &mark)) != SV_OK)
		return r;
	return finish(s, mark, SV_OK);
}

int store_require_flush(struct store *s)
{
	int r = writable(s);
	return r != SV_OK ? r : require_flush(s);
}

/* What survives a power cut: up to the last multiple of M + 1 both the journal and the TPM
 * reached (the TPM is behind during a roll-forward, ahead after a power cut). */
static uint64_t durable(const struct store *s)
{
	return anchor_durable(s->orderly_mask,
	                      s->tpm_counter < s->counter ? s->tpm_counter : s->counter);
}

int store_durable(const struct store *s, uint64_t counter)
{
	return counter <= durable(s);
}

uint64_t store_counter(const struct store *s)
{
	return s->written == JOURNAL_KIND_COMMIT ? s->write_target : s->counter;
}

void store_set_flush_allowed(struct store *s, int ok)
{
	s->flush_ok = ok;
}

/* Where the next commit goes: the next counter value, or for a forced flush the next multiple
 * of M + 1 above what the TPM holds (after a power cut the TPM is ahead of the journal). */
static uint64_t commit_target(const struct store *s)
{
	return s->need_flush ? anchor_flush_target(s->orderly_mask, next_base(s))
	                     : next_base(s) + 1;
}

uint64_t store_commit_cost(const struct store *s)
{
	return s->npending == 0 || s->nanchored == 0 ? 0 : commit_target(s) - next_base(s);
}

uint64_t store_flush_cost(const struct store *s)
{
	return anchor_flush_target(s->orderly_mask, next_base(s)) - next_base(s);
}

size_t store_pending(const struct store *s)
{
	return s->npending;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

size_t store_pending_anchored(const struct store *s)
{
	return s->nanchored;
}

int store_write(struct store *s)
{
	struct sv_buf frame;
	int r;
	if ((r = writable(s)) != SV_OK)
		return r;
	if (s->written)
		return SV_ERR_STATE; /* one frame ahead of the TPM at most (anchor_judge) */
	if (s->npending == 0)
		return SV_OK;
	if (!s->taken) {
		char why[256];
		if ((r = store_take_over(s, why, sizeof(why))) != SV_OK) {
			s->failed = 1;
			return r == SV_ERR_STATE ? SV_ERR_SUPERSEDED : r;
		}
	}
	s->write_t0 = now_us();
	/* Nothing but resets: a flush frame, durable without an NV write (store.h, store_write). */
	int flush = s->nanchored == 0;
	s->write_target = flush ? s->counter : commit_target(s);
	struct journal_frame f = {
	    .kind = flush ? JOURNAL_KIND_FLUSH : JOURNAL_KIND_COMMIT,
	    .scheme = s->scheme,
	    .counter = s->write_target,
	    .nv_writes =
	        s->nv_writes +
	        (flush ? 0 : anchor_nv_writes(s->orderly_mask, s->tpm_counter, s->write_target)),
	    .count = (uint32_t)s->npending};
	if ((r = sv_buf_init(&frame, PENDING_MAX + JOURNAL_FRAME_OVERHEAD)) != SV_OK)
		return r;
	/* From here on a failure leaves memory ahead of disk: the store refuses further work. */
	s->failed = 1;
	r = journal_frame_seal(s->keys, s->head_mac, &f, s->pending.data, s->pending.len, &frame,
	                       s->written_mac);
	if (r != SV_OK)
		goto out;
	if (store_pwrite_all(s->jfd, frame.data, frame.len, (off_t)s->jlen) != SV_OK ||
	    fdatasync(s->jfd) != 0) {
		r = SV_ERR_IO;
		goto out;
	}
	/* the snapshot thread is writing: the snapshot will end with this frame's ops */
	if (s->snap_live &&
	    (r = store_snapshot_note_frame(s, &f, s->pending.data, s->pending.len)) != SV_OK)
		goto out;
	s->failed = 0;
	s->written = f.kind;
	s->written_len = frame.len;
	s->written_nv_writes = f.nv_writes;
	s->written_count = s->npending;
	s->written_flush = s->need_flush;
	s->npending = 0;
	s->nanchored = 0;
	s->need_flush = 0;
	sv_buf_reset(&s->pending);
out:
	sv_buf_free(&frame);
	return r;
}

/* The written frame is anchored (or was a flush): it becomes the journal's head. */
static int finish_frame(struct store *s)
{
	int r = SV_OK;
	s->written = 0;
	s->jlen += s->written_len;
	memcpy(s->head_mac, s->written_mac, JOURNAL_MAC_LEN);
	s->changes += s->written_count;
	s->written_count = 0;
	/* A snapshot the thread has finished is switched to now. */
	if ((r = store_snapshot_poll(s)) != SV_OK)
		return r;
	/* Replay time stays proportional to the state: snapshot when the journal outgrows both a
	 * floor and the last snapshot (so a big vault is not rewritten every few commits). Not
	 * while the next frame is being staged (the snapshot would hold its unwritten changes):
	 * store_snapshot_due tells the caller to let a commit end with nothing staged. With a
	 * snapshot thread the commits go on while it writes (store_snapshot_start). */
	if (store_snapshot_due(s) && s->npending == 0 && !s->snap_live)
		r = s->snap_job != NULL ? store_snapshot_start(s) : store_snapshot(s);
	s->last_commit_us = now_us() - s->write_t0;
	return r;
}

int store_snapshot_due(const struct store *s)
{
	return !s->legacy && s->jlen > STORE_SNAPSHOT_JOURNAL_BYTES && s->jlen > s->snap_bytes;
}

int store_anchor_due(const struct store *s)
{
	return s->written == JOURNAL_KIND_COMMIT && !s->anchoring;
}

int store_anchor_begin(struct store *s, struct store_anchor_job *job)
{
	if (s->readonly || s->failed || !store_anchor_due(s))
		return SV_ERR_STATE;
	memset(job, 0, sizeof(*job));
	job->anchor = s->anchor;
	job->from = s->tpm_counter;
	job->to = s->write_target;
	job->r = SV_ERR_INTERNAL; /* until store_anchor_run has run */
	s->anchoring = 1;
	return SV_OK;
}

void store_anchor_run(struct store_anchor_job *job)
{
	job->r = anchor_advance(job->anchor, job->from, job->to, &job->done);
}

int store_anchor_end(struct store *s, const struct store_anchor_job *job)
{
	if (!s->anchoring || job->anchor != s->anchor)
		return SV_ERR_STATE;
	s->anchoring = 0;
	if (job->r == SV_ERR_BUSY) {
		/* still owed: the frame stays written (store.h); a retry resumes where the
		 * increments stopped */
		s->increments += job->done;
		s->tpm_counter += job->done;
		return SV_ERR_BUSY;
	}
	if (job->r != SV_OK) {
		/* The frame is on disk one ahead of the TPM: the next start completes it. Memory
		 * is ahead of both: refuse everything. */
		s->failed = 1;
		return job->r;
	}
	s->increments += s->write_target - s->tpm_counter;
	s->forced_flushes += s->written_flush;
	s->counter = s->tpm_counter = s->write_target;
	s->nv_writes = s->written_nv_writes;
	s->commits++;
	return finish_frame(s);
}

int store_anchor(struct store *s)
{
	struct store_anchor_job job;
	if (s->readonly || s->failed || s->anchoring)
		return SV_ERR_STATE;
	if (!s->written)
		return s->npending == 0 ? SV_OK : SV_ERR_STATE;
	if (s->written == JOURNAL_KIND_FLUSH) {
		s->flushes++;
		return finish_frame(s);
	}
	int r = store_anchor_begin(s, &job);
	if (r != SV_OK)
		return r;
	store_anchor_run(&job);
	return store_anchor_end(s, &job);
}

int store_commit(struct store *s)
{
	int r = store_write(s);
	return r == SV_OK ? store_anchor(s) : r;
}

int store_set_snapshot_chunk(struct store *s, size_t bytes)
{
	if (bytes < STORE_SNAPSHOT_CHUNK_MIN || bytes > STORE_SNAPSHOT_CHUNK_MAX)
		return SV_ERR_RANGE;
	s->chunk_bytes = bytes;
	return SV_OK;
}

int store_snapshot(struct store *s)
{
	uint8_t mac[JOURNAL_MAC_LEN];
	size_t len = 0;
	int r;
	if ((r = writable(s)) != SV_OK)
		return r;
	if (s->written)
		return SV_ERR_STATE;
	if (s->npending != 0)
		return SV_ERR_BUSY;
	if (s->snap_live)
		return store_snapshot_wait(s); /* one is being written: finish that one */
	if (s->counter == s->snap_counter)
		return SV_OK;
	if ((r = store_snapshot_slot(s, mac, &len)) != SV_OK ||
	    (r = store_write_journal_head(s, s->counter, mac)) != SV_OK)
		return r;
	s->active = 1 - s->active;
	s->snap_counter = s->counter;
	s->snap_bytes = len;
	return SV_OK;
}

uint64_t store_records(const struct store *s)
{
	return s->users + s->destroyed;
}

void store_get_stats(const struct store *s, struct store_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->counter = s->counter - (s->roll_forward && s->readonly ? 1 : 0);
	out->journal_head = s->counter;
	out->nv_writes = s->nv_writes - (s->roll_forward && s->readonly ? 1 : 0);
	out->commits = s->commits;
	out->flushes = s->flushes;
	out->changes = s->changes;
	out->users = s->users;
	out->destroyed = s->destroyed;
	out->last_commit_us = s->last_commit_us;
	out->orderly_mask = s->orderly_mask;
	out->durable = durable(s);
	out->increments = s->increments;
	out->forced_flushes = s->forced_flushes;
	out->penalties = s->penalties;
	out->unclean_boots = s->unclean_value;
	out->power_cut = s->power_cut;
}

void store_get_info(const struct store *s, struct store_info *out)
{
	out->nv_index = s->nv_index;
	out->pcr_mask = s->pcr_mask;
	out->seal = s->seal;
	out->init_time = s->init_time;
	out->counter_scheme = s->scheme;
	out->active_slot = s->active == 0 ? 'a' : 'b';
	out->snapshot_counter = s->snap_counter;
	out->journal_bytes = s->jlen;
	out->tail_bytes = s->tail_bytes;
	out->roll_forward = s->roll_forward;
	out->orderly_mask = s->orderly_mask;
	out->unclean_index = s->unclean_index;
	out->ack_time = s->ack_time;
	out->power_cut = s->power_cut;
	out->journal_frames = s->jframes;
	out->penalty_charged = s->penalty_charged;
	out->penalty_destroyed = s->penalty_destroyed;
	uint64_t now = (uint64_t)time(NULL);
	out->unclean_year = out->unclean_year_all = 0;
	for (size_t i = 0; i < s->nunclean; i++)
		if (s->unclean_times[i] + 365u * 86400 > now) {
			out->unclean_year_all++;
			out->unclean_year += s->unclean_times[i] > s->ack_time;
		}
}

int store_check_unlocked(const char *dir, char *why, size_t why_len)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd, r = SV_OK;
	if (dfd < 0)
		return SV_OK; /* store_open says what is wrong with the directory */
	fd = openat(dfd, FN_LOCK, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			snprintf(why, why_len,
			         "state directory %s is in use by another process (lock held): "
			         "stop the running enclave first",
			         dir);
			r = SV_ERR_BUSY;
		}
		close(fd); /* releases the probe lock */
	}
	close(dfd);
	return r;
}
