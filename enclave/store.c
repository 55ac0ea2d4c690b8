/*
 * The durable vault state: an in-memory user table (open addressing, SipHash with a random key),
 * a MAC'd hash-chained journal, A/B snapshots and the TPM NV counter they are anchored in.
 *
 * Commit: encode the staged ops as one frame for counter C+1, pwrite + fdatasync the journal,
 * NV_Increment (-> C+1), and only then report success. Open: pick the newest valid snapshot,
 * replay the journal frames chained from it, and compare the head H with the TPM counter C:
 * H == C is clean, H == C+1 is a crash between fsync and increment (the increment is completed),
 * anything else is refused. Bytes after the last valid frame are an uncommitted tail only when
 * H >= C (no committed frame can be missing); they are then dropped.
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
#include "enclave/journal.h"
#include "enclave/tpm.h"

#define FN_HDR       "vault.hdr"
#define FN_JOURNAL   "journal"
#define FN_SLOT_A    "snap.a"
#define FN_SLOT_B    "snap.b"
#define FN_LOCK      "lock"
#define PENDING_MAX  (64u << 20)
#define SNAPSHOT_MAX ((size_t)JOURNAL_FRAME_MAX)

struct user {
	uint16_t blob_len;
	uint8_t id_len;
	uint8_t limit;
	uint8_t used;
	uint8_t destroyed;
	uint8_t data[]; /* id | record | blob; only id when destroyed */
};

#define DELETED ((struct user *)(uintptr_t)1)

struct store {
	struct tpm *tpm;
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
	size_t cap, nslots_used; /* nslots_used counts live entries and DELETED markers */
	uint64_t users, destroyed;
	uint64_t counter, nv_writes, snap_counter;
	uint8_t head_mac[JOURNAL_MAC_LEN];
	uint64_t jlen, tail_bytes;
	uint64_t snap_bytes; /* size of the active snapshot */
	int roll_forward;
	uint32_t nv_index;
	uint32_t pcr_mask;
	uint64_t init_time;
	uint8_t scheme;
	struct sv_buf pending;
	size_t npending;
	size_t nanchored; /* staged changes whose reply must wait for the NV increment */
	/* store_write done, store_anchor not yet: the sealed frame's length and MAC */
	int written; /* JOURNAL_KIND_COMMIT or _FLUSH */
	size_t written_len;
	uint8_t written_mac[JOURNAL_MAC_LEN];
	uint64_t write_t0;
	uint64_t commits, flushes, changes, last_commit_us;
};

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
	return sizeof(struct user) + id_len + (destroyed ? 0 : STORE_RECORD_LEN + blob_len);
}

static void user_free(struct user *u)
{
	if (u == NULL || u == DELETED)
		return;
	sodium_memzero(u, user_size(u->id_len, u->destroyed, u->blob_len));
	free(u);
}

/* Slot of id, or of the first free slot where it would go when absent (*found = 0). */
static size_t find(const struct store *s, const uint8_t *id, size_t n, int *found)
{
	size_t mask = s->cap - 1, i = (size_t)id_hash(s, id, n) & mask, free_slot = SIZE_MAX;
	for (;;) {
		struct user *u = s->tab[i];
		if (u == NULL) {
			*found = 0;
			return free_slot != SIZE_MAX ? free_slot : i;
		}
		if (u == DELETED) {
			if (free_slot == SIZE_MAX)
				free_slot = i;
		} else if (u->id_len == n && sodium_memcmp(u->data, id, n) == 0) {
			*found = 1;
			return i;
		}
		i = (i + 1) & mask;
	}
}

static int grow_table(struct store *s)
{
	size_t cap = s->cap ? s->cap : 1024;
	while ((s->users + s->destroyed + 1) * 10 >= cap * 7)
		cap *= 2;
	if (cap == s->cap && (s->nslots_used + 1) * 10 < s->cap * 8)
		return SV_OK;
	struct user **old = s->tab;
	size_t old_cap = s->cap;
	s->tab = calloc(cap, sizeof(*s->tab));
	if (s->tab == NULL) {
		s->tab = old;
		return SV_ERR_NOMEM;
	}
	s->cap = cap;
	s->nslots_used = 0;
	for (size_t i = 0; i < old_cap; i++) {
		struct user *u = old[i];
		if (u == NULL || u == DELETED)
			continue;
		int found;
		s->tab[find(s, u->data, u->id_len, &found)] = u;
		s->nslots_used++;
	}
	free(old);
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
	struct user *u = malloc(user_size(n, 0, blob_len));
	if (u == NULL)
		return SV_ERR_NOMEM;
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
	size_t i = find(s, id, n, &found);
	if (found) {
		if (s->tab[i]->destroyed) {
			s->destroyed--;
			s->users++;
		}
		user_free(s->tab[i]);
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
	struct user *t = realloc(u, keep);
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
	struct user *u = s->tab[i];
	if (u->destroyed)
		return SV_ERR_LOCKED;
	u->used++;
	*used_after = u->used;
	if (u->used >= u->limit)
		destroy(s, i);
	return SV_OK;
}

static int apply_reset(struct store *s, const uint8_t *id, size_t n)
{
	struct user *u = get(s, id, n);
	if (u == NULL)
		return SV_ERR_NOTFOUND;
	if (u->destroyed)
		return SV_ERR_LOCKED;
	u->used = 0;
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
	user_free(s->tab[i]);
	s->tab[i] = DELETED;
	return SV_OK;
}

/* Applies one decoded op (journal replay or snapshot load); any mismatch means corrupt state. */
static int apply_op(struct store *s, const struct journal_op *op)
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
	case JOURNAL_OP_USER:
		if (get(s, op->id, op->id_len) != NULL)
			return SV_ERR_INVALID;
		if (op->destroyed) {
			static const uint8_t zero[STORE_RECORD_LEN];
			if ((r = apply_put(s, op->id, op->id_len, zero, NULL, 0, op->limit)) !=
			    SV_OK)
				return r;
			int found;
			size_t i = find(s, op->id, op->id_len, &found);
			s->tab[i]->used = op->limit;
			destroy(s, i);
			return SV_OK;
		}
		if ((r = apply_put(s, op->id, op->id_len, op->record, op->blob, op->blob_len,
		                   op->limit)) != SV_OK)
			return r;
		get(s, op->id, op->id_len)->used = op->used;
		return SV_OK;
	default: return SV_ERR_INVALID;
	}
}

/* ---------- file helpers (descriptors only after open) ---------- */

static int pwrite_all(int fd, const uint8_t *p, size_t n, off_t off)
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
static int read_all(int fd, size_t max, uint8_t **out, size_t *len)
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

static void wipe_free(uint8_t *p, size_t n)
{
	if (p != NULL) {
		sodium_memzero(p, n);
		free(p);
	}
}

static int write_journal_head(struct store *s, uint64_t base, const uint8_t mac[JOURNAL_MAC_LEN])
{
	struct journal_head h = {.base_counter = base};
	uint8_t enc[JOURNAL_HEAD_LEN];
	memcpy(h.base_mac, mac, JOURNAL_MAC_LEN);
	journal_head_encode(&h, enc);
	if (pwrite_all(s->jfd, enc, sizeof(enc), 0) != SV_OK ||
	    ftruncate(s->jfd, sizeof(enc)) != 0 || fdatasync(s->jfd) != 0)
		return SV_ERR_IO;
	s->jlen = sizeof(enc);
	memcpy(s->head_mac, mac, JOURNAL_MAC_LEN);
	return SV_OK;
}

/* ---------- lifecycle ---------- */

static int store_alloc(struct store **out, struct tpm *tpm, const struct sv_vault_policy *pol)
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
	*out = s;
	return SV_OK;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->cap; i++)
		user_free(s->tab[i]);
	free(s->tab);
	sv_buf_free(&s->pending);
	if (s->key != NULL)
		sodium_free(s->key);
	if (s->keys != NULL)
		sodium_free(s->keys);
	if (s->secrets != NULL)
		sodium_free(s->secrets);
	int fds[] = {s->jfd, s->slot_fd[0], s->slot_fd[1], s->lock_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	sodium_memzero(s, sizeof(*s));
	free(s);
}

static int open_at(int dfd, const char *name, int flags, const char *dir, char *why, size_t why_len,
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

static int take_lock(struct store *s, int dfd, const char *dir, int create, char *why,
                     size_t why_len)
{
	int r =
	    open_at(dfd, FN_LOCK, O_RDWR | (create ? O_CREAT : 0), dir, why, why_len, &s->lock_fd);
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

static const char *slot_name(int i)
{
	return i == 0 ? FN_SLOT_A : FN_SLOT_B;
}

/* Loads the header, checks the TPM binding, unseals and decrypts the secrets. */
static int load_header(struct store *s, int dfd, const char *dir, struct journal_state_hdr *h,
                       char *why, size_t why_len)
{
	uint8_t *buf = NULL, name[TPM_NAME_MAX], nv_name[TPM_NAME_MAX];
	size_t len = 0, ad_len = 0, name_len = 0, nv_name_len = 0;
	int fd = -1, r;
	if ((r = open_at(dfd, FN_HDR, O_RDONLY, dir, why, why_len, &fd)) != SV_OK) {
		if (r == SV_ERR_STATE)
			snprintf(why, why_len,
			         "no vault in %s (vault.hdr missing): provision one with "
			         "sealvault-admin init, or pass the right --state-dir",
			         dir);
		return r;
	}
	r = read_all(fd, 4096, &buf, &len);
	close(fd);
	if (r == SV_OK)
		r = journal_state_decode(buf, len, h, &ad_len);
	if (r != SV_OK) {
		snprintf(why, why_len,
		         "state header %s/vault.hdr is damaged or not a sealvault header: restore "
		         "the state directory from backup",
		         dir);
		r = SV_ERR_STATE;
		goto out;
	}
	s->nv_index = h->nv_index;
	s->scheme = h->scheme;
	r = SV_ERR_STATE;
	if (tpm_primary_name(s->tpm, name, &name_len) != SV_OK || name_len != h->primary_name_len ||
	    memcmp(name, h->primary_name, name_len) != 0) {
		snprintf(why, why_len,
		         "this state directory was provisioned on a different TPM (primary key "
		         "name mismatch): start it on its own TPM, or provision a new vault");
		goto out;
	}
	int a = tpm_counter_attach(s->tpm, h->nv_index, nv_name, &nv_name_len);
	if (a == SV_ERR_NOTFOUND) {
		snprintf(why, why_len,
		         "NV counter index 0x%08x does not exist on this TPM: the state directory "
		         "belongs to another TPM or the index was deleted; the vault cannot be "
		         "trusted, provision a new one",
		         h->nv_index);
		goto out;
	}
	if (a != SV_OK || nv_name_len != h->nv_name_len ||
	    memcmp(nv_name, h->nv_name, nv_name_len) != 0) {
		snprintf(why, why_len,
		         "NV counter index 0x%08x differs from the one provisioned (redefined?): "
		         "refusing to trust it; provision a new vault",
		         h->nv_index);
		goto out;
	}
	s->pcr_mask = h->pcr_mask;
	s->init_time = h->init_time;
	if (tpm_unseal(s->tpm, h->pcr_mask, h->sealed, h->sealed_len, s->key) != SV_OK) {
		if (h->pcr_mask != 0)
			snprintf(why, why_len,
			         "the TPM refused to unseal the vault key: the PCRs of its policy "
			         "(mask 0x%06x) no longer hold the values of init (different boot "
			         "chain or build), or vault.hdr was altered; boot the measured "
			         "configuration the vault was sealed to",
			         h->pcr_mask);
		else
			snprintf(why, why_len,
			         "the TPM refused to unseal the vault key: the state directory "
			         "belongs to another TPM or vault.hdr was altered; restore it from "
			         "backup");
		goto out;
	}
	uint8_t sk[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	static const char ctx[crypto_kdf_CONTEXTBYTES] = {'s', 'v', 's', 'e', 'c', 'r', 't', '1'};
	crypto_kdf_derive_from_key(sk, sizeof(sk), 1, ctx, s->key);
	unsigned long long plen = 0;
	int d = crypto_aead_xchacha20poly1305_ietf_decrypt((uint8_t *)s->secrets, &plen, NULL,
	                                                   h->secrets_ct, JOURNAL_SECRETS_CT_LEN,
	                                                   buf, ad_len, h->nonce, sk);
	sodium_memzero(sk, sizeof(sk));
	if (d != 0 || plen != JOURNAL_SECRETS_LEN) {
		snprintf(why, why_len,
		         "state header vault.hdr fails authentication: it was altered; restore the "
		         "state directory from backup");
		goto out;
	}
	journal_keys_derive(s->keys, s->key);
	r = SV_OK;
out:
	wipe_free(buf, len);
	return r;
}

/* Counter in the (unauthenticated) header of a slot, to try the newest first; 0 when unusable. */
static int slot_counter(struct store *s, int i, uint64_t *counter)
{
	uint8_t h[JOURNAL_FRAME_HDR_LEN];
	if (pread(s->slot_fd[i], h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return 0;
	*counter = 0;
	for (int k = 8; k < 16; k++)
		*counter = *counter << 8 | h[k];
	return 1;
}

static int load_snapshot(struct store *s, int i, char *why, size_t why_len)
{
	uint8_t *buf = NULL, zero[JOURNAL_MAC_LEN] = {0}, mac[JOURNAL_MAC_LEN];
	size_t len = 0, flen = 0, plen = 0;
	const uint8_t *plain = NULL;
	struct journal_frame f;
	struct sv_buf b;
	int r = read_all(s->slot_fd[i], SNAPSHOT_MAX + JOURNAL_FRAME_OVERHEAD, &buf, &len);
	if (r == SV_OK)
		r = journal_frame_open(s->keys, zero, buf, len, &f, &flen, &plain, &plen, mac);
	if (r == SV_ERR_INVALID || r == SV_ERR_AUTH ||
	    (r == SV_OK &&
	     (flen != len || f.kind != JOURNAL_KIND_SNAPSHOT || f.scheme != s->scheme))) {
		r = SV_ERR_AUTH; /* not a valid snapshot: the caller tries the other slot */
		goto out;
	}
	if (r != SV_OK)
		goto out;
	s->cap = 1024;
	while ((uint64_t)f.count * 10 >= s->cap * 7)
		s->cap *= 2;
	s->tab = calloc(s->cap, sizeof(*s->tab));
	if (s->tab == NULL) {
		r = SV_ERR_NOMEM;
		goto out;
	}
	sv_buf_from(&b, plain, plen);
	for (uint32_t n = 0; n < f.count; n++) {
		struct journal_op op;
		if ((r = journal_op_get(&b, &op)) != SV_OK || op.type != JOURNAL_OP_USER ||
		    (r = apply_op(s, &op)) != SV_OK)
			goto bad;
	}
	if ((r = sv_buf_expect_end(&b)) != SV_OK)
		goto bad;
	s->counter = s->snap_counter = f.counter;
	s->nv_writes = f.nv_writes;
	memcpy(s->head_mac, mac, sizeof(mac));
	s->active = i;
	s->snap_bytes = len;
	r = SV_OK;
	goto out;
bad:
	if (r != SV_ERR_NOMEM) {
		snprintf(why, why_len,
		         "snapshot %s does not decode although its MAC is valid (internal "
		         "corruption): restore the state directory from backup",
		         slot_name(i));
		r = SV_ERR_STATE;
	}
out:
	wipe_free(buf, len);
	return r;
}

/* Replays the journal; returns the valid length and the tail length. */
static int replay(struct store *s, const char *dir, int *obsolete, char *why, size_t why_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct journal_head h;
	int r = read_all(s->jfd, (size_t)1 << 40, &buf, &len);
	if (r != SV_OK) {
		snprintf(why, why_len, "cannot read %s/journal: %s", dir, sv_strerror(r));
		return r;
	}
	r = SV_ERR_STATE;
	if (len < JOURNAL_HEAD_LEN || journal_head_decode(buf, JOURNAL_HEAD_LEN, &h) != SV_OK) {
		snprintf(why, why_len,
		         "journal header in %s is missing or damaged: restore the state directory "
		         "from backup",
		         dir);
		goto out;
	}
	if (h.base_counter < s->snap_counter) {
		/* Crash after a snapshot, before the journal was emptied: all in the snapshot. */
		*obsolete = 1;
		s->jlen = JOURNAL_HEAD_LEN;
		r = SV_OK;
		goto out;
	}
	if (h.base_counter > s->snap_counter ||
	    sodium_memcmp(h.base_mac, s->head_mac, JOURNAL_MAC_LEN) != 0) {
		snprintf(why, why_len,
		         "the journal continues a snapshot (counter %llu) that is missing or "
		         "damaged: restore the state directory from backup",
		         (unsigned long long)h.base_counter);
		goto out;
	}
	size_t off = JOURNAL_HEAD_LEN;
	while (off < len) {
		struct journal_frame f;
		size_t flen = 0, plen = 0;
		const uint8_t *plain = NULL;
		uint8_t mac[JOURNAL_MAC_LEN];
		if (journal_frame_open(s->keys, s->head_mac, buf + off, len - off, &f, &flen,
		                       &plain, &plen, mac) != SV_OK)
			break; /* the tail; judged against the TPM counter by the caller */
		/* a commit moves the counter by one; a flush repeats it and holds only resets */
		int flush = f.kind == JOURNAL_KIND_FLUSH;
		if ((f.kind != JOURNAL_KIND_COMMIT && !flush) || f.scheme != s->scheme ||
		    (!flush && (f.counter != s->counter + 1 || f.nv_writes <= s->nv_writes)) ||
		    (flush && (f.counter != s->counter || f.nv_writes != s->nv_writes))) {
			snprintf(
			    why, why_len,
			    "journal record at byte %zu is out of sequence (counter %llu after "
			    "%llu): restore the state directory from backup",
			    off, (unsigned long long)f.counter, (unsigned long long)s->counter);
			goto out;
		}
		struct sv_buf b;
		sv_buf_from(&b, plain, plen);
		for (uint32_t n = 0; n < f.count; n++) {
			struct journal_op op;
			if (journal_op_get(&b, &op) != SV_OK || op.type == JOURNAL_OP_USER ||
			    (flush && op.type != JOURNAL_OP_RESET) || apply_op(s, &op) != SV_OK) {
				snprintf(why, why_len,
				         "journal record for counter %llu does not apply to the "
				         "state (corrupt): restore the state directory from backup",
				         (unsigned long long)f.counter);
				goto out;
			}
		}
		if (sv_buf_expect_end(&b) != SV_OK) {
			snprintf(why, why_len, "journal record for counter %llu has trailing bytes",
			         (unsigned long long)f.counter);
			goto out;
		}
		s->counter = f.counter;
		s->nv_writes = f.nv_writes;
		memcpy(s->head_mac, mac, JOURNAL_MAC_LEN);
		off += flen;
	}
	s->jlen = off;
	s->tail_bytes = len - off;
	r = SV_OK;
out:
	wipe_free(buf, len);
	return r;
}

static int open_common(struct store **out, const char *dir, struct tpm *tpm,
                       const struct sv_vault_policy *pol, int readonly, char *why, size_t why_len)
{
	struct store *s = NULL;
	struct journal_state_hdr *h = NULL;
	int dfd = -1, obsolete = 0, r;
	char pwhy[200];
	if (pol != NULL && policy_vault_check(pol, pwhy, sizeof(pwhy)) != SV_OK) {
		snprintf(why, why_len, "%s", pwhy);
		return SV_ERR_CONFIG;
	}
	if ((r = store_alloc(&s, tpm, pol)) != SV_OK)
		return r;
	s->readonly = readonly;
	h = sodium_malloc(sizeof(*h));
	if (h == NULL) {
		r = SV_ERR_NOMEM;
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		snprintf(why, why_len, "cannot open state directory %s: %s", dir, strerror(errno));
		r = errno == ENOENT ? SV_ERR_STATE : SV_ERR_IO;
		goto out;
	}
	if ((r = take_lock(s, dfd, dir, 0, why, why_len)) != SV_OK ||
	    (r = open_at(dfd, FN_JOURNAL, O_RDWR, dir, why, why_len, &s->jfd)) != SV_OK ||
	    (r = open_at(dfd, FN_SLOT_A, O_RDWR, dir, why, why_len, &s->slot_fd[0])) != SV_OK ||
	    (r = open_at(dfd, FN_SLOT_B, O_RDWR, dir, why, why_len, &s->slot_fd[1])) != SV_OK ||
	    (r = load_header(s, dfd, dir, h, why, why_len)) != SV_OK)
		goto out;
	uint64_t sc[2] = {0, 0};
	int ok[2] = {slot_counter(s, 0, &sc[0]), slot_counter(s, 1, &sc[1])};
	int order[2] = {0, 1};
	if (ok[1] && (!ok[0] || sc[1] > sc[0])) {
		order[0] = 1;
		order[1] = 0;
	}
	r = SV_ERR_AUTH;
	for (int k = 0; k < 2 && r == SV_ERR_AUTH; k++)
		if (ok[order[k]])
			r = load_snapshot(s, order[k], why, why_len);
	if (r == SV_ERR_AUTH) {
		snprintf(why, why_len,
		         "no valid snapshot in %s (snap.a and snap.b are both damaged or empty): "
		         "restore the state directory from backup",
		         dir);
		r = SV_ERR_STATE;
		goto out;
	}
	if (r != SV_OK || (r = replay(s, dir, &obsolete, why, why_len)) != SV_OK)
		goto out;
	uint64_t c = 0;
	r = tpm_counter_read(tpm, &c);
	if (r != SV_OK) {
		snprintf(why, why_len, "cannot read NV counter 0x%08x: %s", s->nv_index,
		         sv_strerror(r));
		r = SV_ERR_TPM;
		goto out;
	}
	r = SV_ERR_STATE;
	uint64_t hd = s->counter;
	if (hd + 1 == c || hd + 1 < c) {
		if (s->tail_bytes > 0)
			snprintf(
			    why, why_len,
			    "journal is damaged at byte %llu (records after counter %llu fail "
			    "their MAC) while the TPM counter is %llu: committed changes are "
			    "lost; restore the latest state directory (see docs/operations.md)",
			    (unsigned long long)s->jlen, (unsigned long long)hd,
			    (unsigned long long)c);
		else
			snprintf(
			    why, why_len,
			    "state is older than the TPM: journal ends at counter %llu but the "
			    "TPM counter is %llu (rolled back or lost writes); restore the "
			    "latest state directory, never an older copy",
			    (unsigned long long)hd, (unsigned long long)c);
		goto out;
	}
	if (hd > c + 1) {
		snprintf(why, why_len,
		         "journal is at counter %llu, ahead of TPM counter %llu by more than one: "
		         "this state directory does not belong to this TPM's counter",
		         (unsigned long long)hd, (unsigned long long)c);
		goto out;
	}
	s->roll_forward = hd == c + 1;
	if (!readonly) {
		if (obsolete)
			r = write_journal_head(s, s->snap_counter, s->head_mac);
		else if (s->tail_bytes > 0)
			r = ftruncate(s->jfd, (off_t)s->jlen) == 0 && fdatasync(s->jfd) == 0
			        ? SV_OK
			        : SV_ERR_IO;
		else
			r = SV_OK;
		if (r != SV_OK) {
			snprintf(why, why_len, "cannot repair %s/journal: %s", dir,
			         strerror(errno));
			goto out;
		}
		if (s->roll_forward && tpm_counter_increment(tpm) != SV_OK) {
			snprintf(why, why_len,
			         "cannot complete the interrupted commit (NV increment failed): "
			         "check the TPM and start again");
			r = SV_ERR_TPM;
			goto out;
		}
	}
	*out = s;
	s = NULL;
	r = SV_OK;
out:
	if (dfd >= 0)
		close(dfd);
	if (h != NULL)
		sodium_free(h);
	store_close(s);
	return r;
}

int store_open(struct store **out, const char *state_dir, struct tpm *tpm,
               const struct sv_vault_policy *pol, char *why, size_t why_len)
{
	return open_common(out, state_dir, tpm, pol, 0, why, why_len);
}

int store_open_readonly(struct store **out, const char *state_dir, struct tpm *tpm,
                        const struct sv_vault_policy *pol, char *why, size_t why_len)
{
	return open_common(out, state_dir, tpm, pol, 1, why, why_len);
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

static int writable(const struct store *s)
{
	return s->readonly || s->failed || s->written ? SV_ERR_STATE : SV_OK;
}

/* Stages op; if apply then fails, the staged bytes are taken back. */
static int stage(struct store *s, const struct journal_op *op, size_t *mark)
{
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
	if ((r = stage(s, &op, &mark)) != SV_OK)
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
	if ((r = stage(s, &op, &mark)) != SV_OK)
		return r;
	return finish(s, mark, apply_delete(s, id, id_len));
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
	if (s->npending == 0)
		return SV_OK;
	s->write_t0 = now_us();
	/* Nothing but resets: a flush frame, durable without an NV write (store.h, store_write). */
	int flush = s->nanchored == 0;
	struct journal_frame f = {.kind = flush ? JOURNAL_KIND_FLUSH : JOURNAL_KIND_COMMIT,
	                          .scheme = s->scheme,
	                          .counter = s->counter + !flush,
	                          .nv_writes = s->nv_writes + !flush,
	                          .count = (uint32_t)s->npending};
	if ((r = sv_buf_init(&frame, PENDING_MAX + JOURNAL_FRAME_OVERHEAD)) != SV_OK)
		return r;
	/* From here on a failure leaves memory ahead of disk: the store refuses further work. */
	s->failed = 1;
	r = journal_frame_seal(s->keys, s->head_mac, &f, s->pending.data, s->pending.len, &frame,
	                       s->written_mac);
	if (r != SV_OK)
		goto out;
	if (pwrite_all(s->jfd, frame.data, frame.len, (off_t)s->jlen) != SV_OK ||
	    fdatasync(s->jfd) != 0) {
		r = SV_ERR_IO;
		goto out;
	}
	s->failed = 0;
	s->written = f.kind;
	s->written_len = frame.len;
out:
	sv_buf_free(&frame);
	return r;
}

int store_anchor(struct store *s)
{
	int r;
	if (s->readonly || s->failed)
		return SV_ERR_STATE;
	if (!s->written)
		return s->npending == 0 ? SV_OK : SV_ERR_STATE;
	if (s->written == JOURNAL_KIND_FLUSH) {
		s->flushes++;
	} else {
		/* A failure leaves the frame on disk one ahead of the TPM: the next start completes
		 * it. */
		s->failed = 1;
		if ((r = tpm_counter_increment(s->tpm)) != SV_OK)
			return r;
		s->failed = 0;
		s->counter++;
		s->nv_writes++;
		s->commits++;
	}
	s->written = 0;
	s->jlen += s->written_len;
	memcpy(s->head_mac, s->written_mac, JOURNAL_MAC_LEN);
	s->changes += s->npending;
	s->npending = 0;
	s->nanchored = 0;
	sv_buf_reset(&s->pending);
	/* Replay time stays proportional to the state: snapshot when the journal outgrows both a
	 * floor and the last snapshot (so a big vault is not rewritten every few commits). */
	if (s->jlen > STORE_SNAPSHOT_JOURNAL_BYTES && s->jlen > s->snap_bytes)
		r = store_snapshot(s);
	s->last_commit_us = now_us() - s->write_t0;
	return r;
}

int store_commit(struct store *s)
{
	int r = store_write(s);
	return r == SV_OK ? store_anchor(s) : r;
}

int store_snapshot(struct store *s)
{
	struct sv_buf plain, frame;
	uint8_t zero[JOURNAL_MAC_LEN] = {0}, mac[JOURNAL_MAC_LEN];
	int r;
	if ((r = writable(s)) != SV_OK)
		return r;
	if (s->npending != 0)
		return SV_ERR_BUSY;
	if (s->counter == s->snap_counter)
		return SV_OK;
	if ((r = sv_buf_init(&plain, SNAPSHOT_MAX - JOURNAL_TAG_LEN)) != SV_OK ||
	    (r = sv_buf_init(&frame, SNAPSHOT_MAX + JOURNAL_FRAME_OVERHEAD)) != SV_OK)
		return r;
	uint32_t count = 0;
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
		if ((r = journal_op_put(&plain, &op)) != SV_OK)
			goto out;
		count++;
	}
	struct journal_frame f = {.kind = JOURNAL_KIND_SNAPSHOT,
	                          .scheme = s->scheme,
	                          .counter = s->counter,
	                          .nv_writes = s->nv_writes,
	                          .count = count};
	if ((r = journal_frame_seal(s->keys, zero, &f, plain.data, plain.len, &frame, mac)) !=
	    SV_OK)
		goto out;
	int slot = 1 - s->active;
	if (pwrite_all(s->slot_fd[slot], frame.data, frame.len, 0) != SV_OK ||
	    ftruncate(s->slot_fd[slot], (off_t)frame.len) != 0 ||
	    fdatasync(s->slot_fd[slot]) != 0) {
		r = SV_ERR_IO;
		goto out;
	}
	if ((r = write_journal_head(s, s->counter, mac)) != SV_OK)
		goto out;
	s->active = slot;
	s->snap_counter = s->counter;
	s->snap_bytes = frame.len;
out:
	sv_buf_free(&plain);
	sv_buf_free(&frame);
	return r;
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
}

void store_get_info(const struct store *s, struct store_info *out)
{
	out->nv_index = s->nv_index;
	out->pcr_mask = s->pcr_mask;
	out->init_time = s->init_time;
	out->counter_scheme = s->scheme;
	out->active_slot = s->active == 0 ? 'a' : 'b';
	out->snapshot_counter = s->snap_counter;
	out->journal_bytes = s->jlen;
	out->tail_bytes = s->tail_bytes;
	out->roll_forward = s->roll_forward;
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

/* ---------- provisioning ---------- */

static int create_file(int dfd, const char *name, const char *dir, const uint8_t *p, size_t n,
                       char *why, size_t why_len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(why, why_len, "cannot create %s/%s: %s", dir, name, strerror(errno));
		return SV_ERR_IO;
	}
	int r = pwrite_all(fd, p, n, 0) == SV_OK && fsync(fd) == 0 ? SV_OK : SV_ERR_IO;
	if (r != SV_OK)
		snprintf(why, why_len, "cannot write %s/%s: %s", dir, name, strerror(errno));
	close(fd);
	return r;
}

static int init_files(struct store *s, int dfd, const char *dir, struct journal_state_hdr *h,
                      char *why, size_t why_len)
{
	struct sv_buf hdr, snap;
	uint8_t zero[JOURNAL_MAC_LEN] = {0}, mac[JOURNAL_MAC_LEN], head[JOURNAL_HEAD_LEN];
	uint8_t sk[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	static const char ctx[crypto_kdf_CONTEXTBYTES] = {'s', 'v', 's', 'e', 'c', 'r', 't', '1'};
	size_t ad_len = 0;
	int r;
	if ((r = sv_buf_init(&hdr, 4096)) != SV_OK || (r = sv_buf_init(&snap, 4096)) != SV_OK)
		return r;
	/* Encode once with a zero ciphertext to learn the AD, then encrypt and encode again. */
	randombytes_buf(h->nonce, sizeof(h->nonce));
	if ((r = journal_state_encode(h, &hdr, &ad_len)) != SV_OK)
		goto out;
	crypto_kdf_derive_from_key(sk, sizeof(sk), 1, ctx, s->key);
	crypto_aead_xchacha20poly1305_ietf_encrypt(h->secrets_ct, NULL, (const uint8_t *)s->secrets,
	                                           JOURNAL_SECRETS_LEN, hdr.data, ad_len, NULL,
	                                           h->nonce, sk);
	sodium_memzero(sk, sizeof(sk));
	sv_buf_reset(&hdr);
	if ((r = journal_state_encode(h, &hdr, &ad_len)) != SV_OK)
		goto out;
	struct journal_frame f = {.kind = JOURNAL_KIND_SNAPSHOT,
	                          .scheme = JOURNAL_SCHEME_PLAIN,
	                          .counter = s->counter,
	                          .nv_writes = s->nv_writes,
	                          .count = 0};
	if ((r = journal_frame_seal(s->keys, zero, &f, NULL, 0, &snap, mac)) != SV_OK)
		goto out;
	struct journal_head jh = {.base_counter = s->counter};
	memcpy(jh.base_mac, mac, sizeof(mac));
	journal_head_encode(&jh, head);
	/* vault.hdr last: a directory without it is not a vault (an interrupted init). */
	if ((r = create_file(dfd, FN_SLOT_A, dir, snap.data, snap.len, why, why_len)) != SV_OK ||
	    (r = create_file(dfd, FN_SLOT_B, dir, NULL, 0, why, why_len)) != SV_OK ||
	    (r = create_file(dfd, FN_JOURNAL, dir, head, sizeof(head), why, why_len)) != SV_OK ||
	    (r = create_file(dfd, FN_HDR, dir, hdr.data, hdr.len, why, why_len)) != SV_OK)
		goto out;
	if (fsync(dfd) != 0) {
		snprintf(why, why_len, "cannot fsync %s: %s", dir, strerror(errno));
		r = SV_ERR_IO;
	}
out:
	sv_buf_free(&hdr);
	sv_buf_free(&snap);
	return r;
}

int store_init(const char *dir, struct tpm *tpm, uint32_t nv_index, uint32_t pcr_mask, char *why,
               size_t why_len)
{
	static const char *files[] = {FN_HDR, FN_JOURNAL, FN_SLOT_A, FN_SLOT_B};
	struct store *s = NULL;
	struct journal_state_hdr *h = NULL;
	int dfd = -1, defined = 0, r;
	if ((r = store_alloc(&s, tpm, NULL)) != SV_OK)
		return r;
	h = sodium_malloc(sizeof(*h));
	if (h == NULL) {
		r = SV_ERR_NOMEM;
		goto out;
	}
	memset(h, 0, sizeof(*h));
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(why, why_len, "cannot create state directory %s: %s", dir,
		         strerror(errno));
		r = SV_ERR_IO;
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		snprintf(why, why_len, "cannot open state directory %s: %s", dir, strerror(errno));
		r = SV_ERR_IO;
		goto out;
	}
	if ((r = take_lock(s, dfd, dir, 1, why, why_len)) != SV_OK)
		goto out;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct stat st;
		if (fstatat(dfd, files[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
			snprintf(why, why_len,
			         "%s already holds %sa vault (%s exists): refusing to overwrite "
			         "it; choose an empty --state-dir",
			         dir, strcmp(files[i], FN_HDR) == 0 ? "" : "part of ", files[i]);
			r = SV_ERR_EXISTS;
			goto out;
		}
	}
	if ((pcr_mask & ~JOURNAL_PCR_MASK_ALL) != 0) {
		snprintf(why, why_len, "PCR selection 0x%x: only PCRs 0..23 exist", pcr_mask);
		r = SV_ERR_CONFIG;
		goto out;
	}
	h->scheme = JOURNAL_SCHEME_PLAIN;
	h->nv_index = nv_index;
	h->pcr_mask = pcr_mask;
	h->init_time = (uint64_t)time(NULL);
	s->scheme = JOURNAL_SCHEME_PLAIN;
	s->nv_index = nv_index;
	if ((r = tpm_primary_name(tpm, h->primary_name, &h->primary_name_len)) != SV_OK)
		goto out;
	r = tpm_counter_define(tpm, nv_index);
	if (r == SV_ERR_EXISTS) {
		snprintf(why, why_len,
		         "NV index 0x%08x is already defined on this TPM (another vault?): choose "
		         "another --nv-index, or remove it with tpm2_nvundefine if it is unused",
		         nv_index);
		goto out;
	}
	if (r != SV_OK) {
		snprintf(why, why_len, "cannot define NV counter 0x%08x (owner auth must be empty)",
		         nv_index);
		goto out;
	}
	defined = 1;
	/* A new counter is unreadable until its first increment. */
	if ((r = tpm_counter_attach(tpm, nv_index, h->nv_name, &h->nv_name_len)) != SV_OK ||
	    (r = tpm_counter_increment(tpm)) != SV_OK ||
	    (r = tpm_counter_read(tpm, &s->counter)) != SV_OK) {
		snprintf(why, why_len, "cannot initialise NV counter 0x%08x: %s", nv_index,
		         sv_strerror(r));
		goto out;
	}
	/* NV_Increment changed the index's WRITTEN attribute, so take its name now. */
	if ((r = tpm_counter_attach(tpm, nv_index, h->nv_name, &h->nv_name_len)) != SV_OK)
		goto out;
	s->nv_writes = 2; /* DefineSpace + first increment */
	h->init_counter = s->counter;
	if ((r = tpm_seal_new(tpm, pcr_mask, s->key, h->sealed, sizeof(h->sealed),
	                      &h->sealed_len)) != SV_OK) {
		snprintf(why, why_len, "cannot create the sealed vault key in the TPM");
		goto out;
	}
	uint8_t check[TPM_VAULT_KEY_LEN];
	r = tpm_unseal(tpm, pcr_mask, h->sealed, h->sealed_len, check);
	int same = r == SV_OK && sodium_memcmp(check, s->key, sizeof(check)) == 0;
	sodium_memzero(check, sizeof(check));
	if (!same) {
		snprintf(why, why_len, "the sealed vault key does not unseal back; TPM fault");
		r = SV_ERR_TPM;
		goto out;
	}
	journal_keys_derive(s->keys, s->key);
	randombytes_buf(s->secrets->oprf_seed, sizeof(s->secrets->oprf_seed));
	crypto_core_ristretto255_scalar_random(s->secrets->ake_sk);
	if (crypto_scalarmult_ristretto255_base(s->secrets->ake_pk, s->secrets->ake_sk) != 0) {
		r = SV_ERR_CRYPTO;
		goto out;
	}
	randombytes_buf(s->secrets->fake_seed, sizeof(s->secrets->fake_seed));
	r = init_files(s, dfd, dir, h, why, why_len);
out:
	if (r != SV_OK && defined) {
		if (tpm_counter_undefine(tpm, nv_index) != SV_OK)
			snprintf(why + strlen(why), why_len - strlen(why),
			         "; NV index 0x%08x stays defined, remove it with tpm2_nvundefine",
			         nv_index);
		for (size_t i = 0; dfd >= 0 && r != SV_ERR_EXISTS && i < 4; i++)
			(void)unlinkat(dfd, files[i], 0);
	}
	if (dfd >= 0)
		close(dfd);
	if (h != NULL)
		sodium_free(h);
	store_close(s);
	return r;
}
