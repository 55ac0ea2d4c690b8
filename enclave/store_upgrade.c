/*
 * Upgrading a vault of sealvault 0.2 (state version 1) in place (store.h: store_upgrade).
 *
 * A 0.2 vault's NV counter has an empty auth value and no policy, so it can never be bound to a
 * run (anchor.h) and forked copies of its state directory cannot be refused. The upgrade moves
 * the vault to a new counter that can, without ever leaving two usable vaults behind:
 *
 *   1. open the 0.2 state under the old counter's rules (head == counter, or one ahead: completed);
 *   2. commit a final 0.2 record on the old counter (append, fsync, increment, read back): from
 *      now on every other copy of the 0.2 directory is older than the old counter, so it can
 *      neither start under 0.2 nor be upgraded (two upgrades of two copies cannot both pass);
 *   3. write upgrade.intent (old and new index), fsync;
 *   4. define the new counter, bound to a new run (3 NV writes);
 *   5. write a version 2 snapshot (naming the run, under the new counter's value) into the other
 *      slot, fsync;
 *   6. write the version 2 header naming the new counter (vault.hdr.new, fsync, rename, fsync
 *      the directory): the switch;
 *   7. empty the journal to continue the new snapshot;
 *   8. undefine the old counter, remove upgrade.intent.
 *
 * Interrupted before 6, the directory is still a 0.2 vault (a version 2 slot is ignored by the
 * 0.2 reader): running the upgrade again removes the counter the intent names, if it holds one
 * of sealvault's shape, and starts over. Interrupted after 6, it is a current vault: running it
 * again empties the journal if 7 was cut off (the journal is then still the 0.2 one, which does
 * not continue the new snapshot; STORE_OPEN_UPGRADED drops it only while upgrade.intent exists,
 * on a plain counter, and when the counter equals the snapshot's value, so nothing committed
 * since can be dropped), then removes the old counter and the intent. Until then the vault
 * refuses to start and names this command.
 */
#include "enclave/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "enclave/anchor.h"
#include "enclave/approval.h"
#include "enclave/journal.h"
#include "enclave/store_impl.h"
#include "enclave/tpm.h"

#define NV_OWNER_FIRST 0x01000000u
#define NV_OWNER_LAST  0x013fffffu
#define INDEX_TRIES    64

/* The intent file: "old=0x%08x new=0x%08x\n", with " scheme=hybrid" before the newline for a
 * migration of a current plain vault (store_migrate_hybrid), whose old counter is a current
 * sealvault counter that only that migration may remove. SV_ERR_NOTFOUND when there is none. */
static int intent_read(int dfd, uint32_t *old_index, uint32_t *new_index, int *migrate)
{
	char buf[64] = {0};
	int fd = openat(dfd, FN_INTENT, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? SV_ERR_NOTFOUND : SV_ERR_IO;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	unsigned o = 0, w = 0;
	if (n <= 0 || sscanf(buf, "old=0x%8x new=0x%8x", &o, &w) != 2)
		return SV_ERR_INVALID;
	*old_index = o;
	*new_index = w;
	*migrate = strstr(buf, " scheme=hybrid\n") != NULL;
	return SV_OK;
}

static int intent_write(int dfd, uint32_t old_index, uint32_t new_index, int migrate)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "old=0x%08x new=0x%08x%s\n", old_index, new_index,
	                 migrate ? " scheme=hybrid" : "");
	int fd = openat(dfd, FN_INTENT, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return SV_ERR_IO;
	int r = store_pwrite_all(fd, (const uint8_t *)buf, (size_t)n, 0) == SV_OK && fsync(fd) == 0
	            ? SV_OK
	            : SV_ERR_IO;
	close(fd);
	return r == SV_OK && fsync(dfd) == 0 ? SV_OK : SV_ERR_IO;
}

static int intent_remove(int dfd)
{
	if (unlinkat(dfd, FN_INTENT, 0) != 0 && errno != ENOENT)
		return SV_ERR_IO;
	return fsync(dfd) == 0 ? SV_OK : SV_ERR_IO;
}

/* Removes a counter this upgrade created (only one of sealvault's shape: never anything else). */
static int remove_ours(struct tpm *tpm, uint32_t index, char *why, size_t why_len)
{
	int shape = TPM_COUNTER_ABSENT, r = anchor_index_probe(tpm, index, &shape);
	if (r == SV_OK && shape == TPM_COUNTER_SEALVAULT)
		r = anchor_index_undefine(tpm, index);
	if (r != SV_OK)
		snprintf(why, why_len,
		         "cannot remove NV index 0x%08x left by an interrupted upgrade: %s; check "
		         "the TPM and run the upgrade again",
		         index, sv_strerror(r));
	return r;
}

/* Is idx + also (also != 0: the unclean-boots counter of a hybrid vault) free, in the same
 * range as idx, and not old? For also == 0, yes. */
static int companion_free(struct tpm *tpm, uint32_t old, uint32_t idx, uint32_t also, int *free_)
{
	int shape = TPM_COUNTER_ABSENT;
	*free_ = 1;
	if (also == 0)
		return SV_OK;
	if (idx + also > NV_OWNER_LAST || ((idx + also) >> 24) != (idx >> 24) ||
	    idx + also == old) {
		*free_ = 0;
		return SV_OK;
	}
	int r = anchor_index_probe(tpm, idx + also, &shape);
	*free_ = shape == TPM_COUNTER_ABSENT;
	return r;
}

/* The index for the new counter: the one asked for, or the first free one after old; with also
 * != 0, idx + also must be free too. */
static int choose_index(struct tpm *tpm, uint32_t old, uint32_t want, uint32_t also, uint32_t *out,
                        char *why, size_t why_len)
{
	if (want == old) {
		snprintf(
		    why, why_len,
		    "--nv-index 0x%08x is the old counter's index: the new counter needs another "
		    "(free) one",
		    want);
		return SV_ERR_EXISTS;
	}
	for (uint32_t i = 1; i <= INDEX_TRIES; i++) {
		uint32_t idx = want != 0 ? want : old + i;
		int shape = TPM_COUNTER_ABSENT;
		if (idx > NV_OWNER_LAST || idx < NV_OWNER_FIRST)
			break;
		if (anchor_index_probe(tpm, idx, &shape) != SV_OK) {
			snprintf(why, why_len, "cannot look up NV index 0x%08x", idx);
			return SV_ERR_TPM;
		}
		int both = 1;
		if (shape == TPM_COUNTER_ABSENT &&
		    companion_free(tpm, old, idx, also, &both) != SV_OK) {
			snprintf(why, why_len, "cannot look up NV index 0x%08x", idx + also);
			return SV_ERR_TPM;
		}
		if (shape == TPM_COUNTER_ABSENT && both) {
			*out = idx;
			return SV_OK;
		}
		if (want != 0 && shape != TPM_COUNTER_ABSENT) {
			snprintf(why, why_len,
			         "NV index 0x%08x is already defined on this TPM: choose another "
			         "--nv-index",
			         idx);
			return SV_ERR_EXISTS;
		}
		if (want != 0) {
			snprintf(
			    why, why_len,
			    "NV index 0x%08x (the unclean-boots counter, --nv-index + 0x%x) is "
			    "taken or out of range: choose another --nv-index",
			    idx + also, also);
			return SV_ERR_EXISTS;
		}
	}
	snprintf(why, why_len,
	         "no free NV index for the new counter after 0x%08x: pass --nv-index with a free "
	         "index of the owner range",
	         old);
	return SV_ERR_EXISTS;
}

static int read_header_file(int dfd, const char *dir, const char *name, struct journal_state_hdr *h,
                            char *why, size_t why_len)
{
	uint8_t *buf = NULL;
	size_t len = 0, ad_len = 0;
	int fd = -1, r = store_open_at(dfd, name, O_RDONLY, dir, why, why_len, &fd);
	if (r != SV_OK)
		return r;
	r = store_read_all(fd, 4096, &buf, &len);
	close(fd);
	if (r == SV_OK && (r = journal_state_decode(buf, len, h, &ad_len)) != SV_OK)
		snprintf(why, why_len, "state header %s/%s is damaged: restore it", dir, name);
	store_wipe_free(buf, len);
	return r == SV_OK ? SV_OK : SV_ERR_STATE;
}

static int read_header(int dfd, const char *dir, struct journal_state_hdr *h, char *why,
                       size_t why_len)
{
	return read_header_file(dfd, dir, FN_HDR, h, why, why_len);
}

/* Step 6: the version 2 header, atomically (vault.hdr.new, fsync, the old file's owner: the
 * vault's user when root runs sealvault-admin, rename, fsync the directory). */
static int switch_header(struct store *s, int dfd, struct journal_state_hdr *h)
{
	struct sv_buf hdr;
	char why[256];
	int r = sv_buf_init(&hdr, 4096);
	if (r != SV_OK)
		return r;
	if ((r = store_header_encode(s, h, &hdr)) == SV_OK)
		r = approval_replace(dfd, ".", FN_HDR, &hdr, why, sizeof(why));
	sv_buf_free(&hdr);
	return r;
}

/* Finishes an upgrade whose header switch happened (or reports a current vault). */
static int finish_current(const char *dir, int dfd, struct tpm *tpm,
                          const struct journal_state_hdr *h, struct store_upgrade_result *res,
                          char *why, size_t why_len)
{
	struct store *s = NULL;
	uint32_t old = 0, neu = 0;
	int migrate = 0, r = intent_read(dfd, &old, &neu, &migrate);
	if (r == SV_OK && migrate) {
		/* its old counter is a current one, which this path never removes */
		snprintf(
		    why, why_len,
		    "%s/%s records an interrupted migration to the hybrid counter: finish it "
		    "with sealvault-admin upgrade --counter-scheme hybrid --state-dir %s --tpm "
		    "TCTI",
		    dir, FN_INTENT, dir);
		return SV_ERR_STATE;
	}
	if (r == SV_OK && old != h->nv_index) {
		/* Cut off between the header switch (6) and emptying the journal (7), the journal
		 * is still the 0.2 one: empty it now, while the intent says so. */
		if ((r = store_open_common(&s, dir, tpm, NULL, STORE_OPEN_UPGRADED, why,
		                           why_len)) != SV_OK)
			return r;
		store_close(s);
		s = NULL;
		int shape = TPM_COUNTER_ABSENT;
		/* the 0.2 counter has no policy: never remove a current sealvault counter */
		if ((r = anchor_index_probe(tpm, old, &shape)) == SV_OK &&
		    shape == TPM_COUNTER_OTHER)
			r = anchor_index_undefine(tpm, old);
		if (r != SV_OK) {
			snprintf(
			    why, why_len,
			    "cannot undefine the old NV counter 0x%08x: %s; run the upgrade again",
			    old, sv_strerror(r));
			return r;
		}
		res->old_index = old;
	}
	if ((r == SV_OK || r == SV_ERR_NOTFOUND) && (r = intent_remove(dfd)) != SV_OK) {
		snprintf(why, why_len, "cannot remove %s/%s: %s", dir, FN_INTENT, strerror(errno));
		return r;
	}
	if (r != SV_OK) {
		snprintf(why, why_len, "%s/%s is damaged: remove it and run the upgrade again", dir,
		         FN_INTENT);
		return SV_ERR_STATE;
	}
	/* Check that the vault opens; a read-only open changes nothing. */
	if ((r = store_open_common(&s, dir, tpm, NULL, STORE_OPEN_READONLY, why, why_len)) != SV_OK)
		return r;
	res->already_current = 1;
	res->new_index = h->nv_index;
	res->users = s->users;
	res->counter = s->counter;
	store_close(s);
	return SV_OK;
}

/* Steps 2..8 on a 0.2 vault opened under the old rules. */
static int upgrade_open(struct store *s, int dfd, struct tpm *tpm, struct journal_state_hdr *h,
                        uint32_t want, struct store_upgrade_result *res, char *why, size_t why_len)
{
	uint32_t old = s->nv_index, idx = 0;
	uint8_t mac[JOURNAL_MAC_LEN];
	size_t len = 0;
	int r;
	/* Checked before anything is written: a taken --nv-index costs nothing. */
	if ((r = choose_index(tpm, old, want, 0, &idx, why, why_len)) != SV_OK)
		return r;
	if ((r = store_stage_noop(s)) != SV_OK || (r = store_commit(s)) != SV_OK) {
		snprintf(why, why_len,
		         "cannot commit on the old NV counter 0x%08x: %s (another copy of this "
		         "0.2 state directory was started or upgraded at the same time?)",
		         old, sv_strerror(r));
		return r == SV_ERR_SUPERSEDED ? SV_ERR_STATE : r;
	}
	if ((r = intent_write(dfd, old, idx, 0)) != SV_OK) {
		snprintf(why, why_len, "cannot write %s: %s", FN_INTENT, strerror(errno));
		return r;
	}
	struct anchor *a = NULL;
	uint64_t value = 0, writes = 0;
	if ((r = anchor_new(&a, tpm, idx)) != SV_OK)
		return r;
	anchor_set_vault_key(a, s->key);
	anchor_new_run(s->run);
	h->nv_name_len = 0;
	r = anchor_define(a, s->run, 0, &value, h->nv_name, &h->nv_name_len, &writes);
	if (r != SV_OK) {
		snprintf(why, why_len, "cannot define the new NV counter 0x%08x: %s", idx,
		         sv_strerror(r));
		anchor_free(a);
		return r == SV_ERR_EXISTS ? r : SV_ERR_TPM;
	}
	/* From here on the store works on the new counter and the version 2 format. */
	anchor_free(s->anchor);
	s->anchor = a;
	s->legacy = 0;
	s->nv_index = idx;
	s->counter = s->tpm_counter = value;
	s->nv_writes += writes;
	h->nv_index = idx;
	if ((r = store_snapshot_slot(s, mac, &len)) != SV_OK ||
	    (r = switch_header(s, dfd, h)) != SV_OK) {
		snprintf(why, why_len, "cannot write the upgraded snapshot and header: %s",
		         strerror(errno));
		return r;
	}
	if ((r = store_write_journal_head(s, value, mac)) != SV_OK) {
		snprintf(why, why_len,
		         "cannot empty the journal (%s); the vault is upgraded: run the upgrade "
		         "again to finish",
		         strerror(errno));
		return r;
	}
	s->active = 1 - s->active;
	s->snap_counter = value;
	s->snap_bytes = len;
	if ((r = anchor_index_undefine(tpm, old)) != SV_OK) {
		snprintf(why, why_len,
		         "the vault is upgraded, but the old NV counter 0x%08x could not be "
		         "undefined (%s): run the upgrade again to finish",
		         old, sv_strerror(r));
		return r;
	}
	if ((r = intent_remove(dfd)) != SV_OK) {
		snprintf(why, why_len, "cannot remove %s: %s; run the upgrade again to finish",
		         FN_INTENT, strerror(errno));
		return r;
	}
	res->old_index = old;
	res->new_index = idx;
	res->users = s->users;
	res->counter = value;
	return SV_OK;
}

int store_upgrade(const char *dir, struct tpm *tpm, uint32_t new_index,
                  struct store_upgrade_result *res, char *why, size_t why_len)
{
	struct journal_state_hdr *h = sodium_malloc(sizeof(*h));
	struct store *s = NULL;
	int dfd = -1, r;
	memset(res, 0, sizeof(*res));
	if (h == NULL)
		return SV_ERR_NOMEM;
	if ((r = store_open_dir(dir, &dfd, why, why_len)) != SV_OK ||
	    (r = read_header(dfd, dir, h, why, why_len)) != SV_OK)
		goto out;
	if (h->version != JOURNAL_STATE_VERSION_OLD) {
		r = finish_current(dir, dfd, tpm, h, res, why, why_len);
		goto out;
	}
	/* A 0.2 vault; an intent left by an interrupted upgrade names a counter it may have made.
	 */
	uint32_t old = 0, neu = 0;
	int migrate = 0;
	r = intent_read(dfd, &old, &neu, &migrate);
	if (r == SV_OK && neu != h->nv_index && (r = remove_ours(tpm, neu, why, why_len)) != SV_OK)
		goto out;
	if (r == SV_ERR_INVALID) {
		snprintf(why, why_len, "%s/%s is damaged: remove it and run the upgrade again", dir,
		         FN_INTENT);
		r = SV_ERR_STATE;
		goto out;
	}
	if ((r = store_open_common(&s, dir, tpm, NULL, STORE_OPEN_LEGACY, why, why_len)) != SV_OK)
		goto out;
	r = upgrade_open(s, dfd, tpm, h, new_index, res, why, why_len);
out:
	store_close(s);
	if (dfd >= 0)
		close(dfd);
	sodium_free(h);
	return r;
}

/* ---- Plain counter to hybrid (issue 12): store_migrate_hybrid ----
 *
 * A current vault on the plain counter moves to the hybrid scheme's two counters the way a 0.2
 * vault moves to a current one, with one difference: the old counter is a current sealvault
 * counter that still starts the plain directory, so it is undefined *before* the header names
 * the new ones. That undefine is the commit point: before it, the plain vault is the vault and
 * every copy of the hybrid state is unusable (the staged header is not vault.hdr); after it, no
 * copy of the plain directory can start (its counter is gone), and the staged header is the
 * vault. No moment leaves two lineages that can both start.
 *
 *   1. open the plain vault as a run (take-over: a vault still running on another copy stops),
 *      and, if an earlier attempt was cut off before the commit point, remove the counters its
 *      intent names (only of sealvault's shape) and its staged header: this run has just shown
 *      that the plain vault is the current lineage;
 *   2. commit a final record on the old counter (every other copy is older from now on), then
 *      snapshot, so that the plain snapshot slot alone holds the whole state;
 *   3. write upgrade.intent (old and new index, scheme=hybrid), fsync;
 *   4. define the unclean-boots counter at new + STORE_UNCLEAN_OFFSET, then the orderly counter
 *      at new, bound to a new run and flushed (store_init's order; 7 NV writes);
 *   5. write a hybrid snapshot (the same users under the new counter's value V, naming the new
 *      run) into the other slot, fsync;
 *   6. if V is below the old counter C, empty the journal now to continue the hybrid snapshot
 *      (the plain open treats a journal based below its snapshot as obsolete and uses the
 *      snapshot of step 2); write the hybrid header as vault.hdr.hybrid, fsync;
 *   7. undefine the old counter: the commit point;
 *   8. rename vault.hdr.hybrid to vault.hdr, fsync the directory; if V is above C, empty the
 *      journal now (until then the hybrid open treats the plain journal, based at C < V, as
 *      obsolete); remove upgrade.intent.
 * (V = C would make the journal ambiguous: the new counter is then flushed once more, to the
 * next multiple of M + 1.)
 *
 * Running it again: with the old counter still there, the plain vault opens (or refuses, as it
 * would to start) and the migration starts over; with it gone and the staged header there, the
 * rename and the rest are finished; with a hybrid vault.hdr, only upgrade.intent is left to
 * remove (the old index is never touched again: it may be someone else's by now). */

#define FN_STAGED "vault.hdr.hybrid"

static int staged_exists(int dfd)
{
	struct stat st;
	return fstatat(dfd, FN_STAGED, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Step 6: the hybrid header as vault.hdr.hybrid, with vault.hdr's owner (the vault's user when
 * root runs sealvault-admin), fsynced with the directory. */
static int stage_header(struct store *s, int dfd, const char *dir, struct journal_state_hdr *h,
                        char *why, size_t why_len)
{
	struct sv_buf b;
	struct stat st;
	int r = sv_buf_init(&b, 4096);
	if (r != SV_OK)
		return r;
	if ((r = store_header_encode(s, h, &b)) == SV_OK)
		r = approval_write(dfd, dir, FN_STAGED, &b, 0, why, why_len);
	sv_buf_free(&b);
	if (r != SV_OK)
		return r;
	if (fstatat(dfd, FN_HDR, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    fchownat(dfd, FN_STAGED, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0 &&
	    errno != EPERM) {
		snprintf(why, why_len, "cannot give %s/%s the owner of vault.hdr: %s", dir,
		         FN_STAGED, strerror(errno));
		return SV_ERR_IO;
	}
	if (fsync(dfd) != 0) {
		snprintf(why, why_len, "cannot fsync %s: %s", dir, strerror(errno));
		return SV_ERR_IO;
	}
	return SV_OK;
}

/* Step 8's switch: the staged header becomes vault.hdr. */
static int install_staged(int dfd, const char *dir, char *why, size_t why_len)
{
	if (renameat(dfd, FN_STAGED, dfd, FN_HDR) != 0 || fsync(dfd) != 0) {
		snprintf(why, why_len,
		         "cannot rename %s/%s to vault.hdr (%s): run the same command again to "
		         "finish the migration",
		         dir, FN_STAGED, strerror(errno));
		return SV_ERR_IO;
	}
	return SV_OK;
}

/* A hybrid vault.hdr: checks that the vault opens (read-only: nothing changes), then removes
 * what an interrupted migration left (the staged header, upgrade.intent). */
static int migrate_finish(const char *dir, int dfd, struct tpm *tpm,
                          const struct journal_state_hdr *h, int have_intent, uint32_t old,
                          struct store_upgrade_result *res, char *why, size_t why_len)
{
	struct store *s = NULL;
	int r = store_open_common(&s, dir, tpm, NULL, STORE_OPEN_READONLY, why, why_len);
	if (r != SV_OK)
		return r;
	res->already_current = 1;
	res->new_index = h->nv_index;
	res->users = s->users;
	res->counter = s->counter;
	store_close(s);
	if (have_intent) {
		if ((unlinkat(dfd, FN_STAGED, 0) != 0 && errno != ENOENT) ||
		    intent_remove(dfd) != SV_OK) {
			snprintf(why, why_len,
			         "cannot remove %s/%s or %s: %s; the vault is migrated, run the "
			         "command again to finish",
			         dir, FN_STAGED, FN_INTENT, strerror(errno));
			return SV_ERR_IO;
		}
		res->old_index = old;
	}
	return SV_OK;
}

/* Step 4: the two counters at idx and idx + STORE_UNCLEAN_OFFSET, the orderly one bound to run;
 * *value is its flushed value, never c_old. On SV_ERR_EXISTS (the index was taken since
 * choose_index looked) nothing of this run stays defined and the intent is removed, so that a
 * run again never removes the other owner's counter. */
static int define_counters(struct store *s, int dfd, struct anchor *a, uint32_t idx, uint32_t mask,
                           const uint8_t run[ANCHOR_RUN_LEN], uint64_t c_old, uint64_t *value,
                           struct journal_state_hdr *h, uint64_t *writes, char *why, size_t why_len)
{
	uint32_t unclean = idx + STORE_UNCLEAN_OFFSET;
	int r = anchor_unclean_define(a, unclean, writes);
	if (r == SV_ERR_EXISTS) {
		(void)intent_remove(dfd);
		snprintf(
		    why, why_len,
		    "NV index 0x%08x (the unclean-boots counter) was defined meanwhile: choose "
		    "another --nv-index",
		    unclean);
		return r;
	}
	if (r != SV_OK) {
		snprintf(why, why_len,
		         "cannot define the unclean-boots counter at NV index 0x%08x: %s; run the "
		         "same command again (it removes what it made and starts over)",
		         unclean, sv_strerror(r));
		return SV_ERR_TPM;
	}
	h->nv_name_len = 0;
	r = anchor_define(a, run, 1, value, h->nv_name, &h->nv_name_len, writes);
	if (r == SV_ERR_EXISTS) {
		int u = anchor_index_undefine(s->tpm, unclean);
		if (u == SV_OK)
			(void)intent_remove(dfd);
		snprintf(why, why_len,
		         "NV index 0x%08x was defined meanwhile: choose another --nv-index%s", idx,
		         u == SV_OK ? "" : " (run the same command: it removes what it made)");
		return r;
	}
	if (r == SV_OK && *value == c_old) {
		/* one more block, so that the two journals' bases never coincide (see above) */
		uint64_t t = anchor_flush_target(mask, *value), done = 0;
		if ((r = anchor_advance(a, *value, t, &done)) == SV_OK) {
			*writes += anchor_nv_writes(mask, *value, t);
			*value = t;
		}
	}
	if (r != SV_OK) {
		snprintf(why, why_len,
		         "cannot define the hybrid NV counter 0x%08x: %s; run the same command "
		         "again (it removes what it made and starts over)",
		         idx, sv_strerror(r));
		return SV_ERR_TPM;
	}
	return SV_OK;
}

/* Steps 2..8 on the plain vault s, opened as a run. */
static int migrate_open(struct store *s, const char *dir, int dfd, struct journal_state_hdr *h,
                        uint32_t mask, uint32_t want, struct store_upgrade_result *res, char *why,
                        size_t why_len)
{
	uint32_t old = s->nv_index, idx = 0;
	uint8_t mac[JOURNAL_MAC_LEN], run[ANCHOR_RUN_LEN];
	uint64_t value = 0, writes = 0;
	struct anchor *a = NULL;
	size_t len = 0;
	int r;
	if ((r = choose_index(s->tpm, old, want, STORE_UNCLEAN_OFFSET, &idx, why, why_len)) !=
	    SV_OK)
		return r;
	if ((r = store_stage_noop(s)) != SV_OK || (r = store_commit(s)) != SV_OK) {
		snprintf(why, why_len,
		         "cannot commit on the old NV counter 0x%08x: %s (was a copy of %s started "
		         "at the same time?)",
		         old, sv_strerror(r), dir);
		return r == SV_ERR_SUPERSEDED ? SV_ERR_STATE : r;
	}
	if ((r = store_snapshot(s)) != SV_OK) {
		snprintf(why, why_len, "cannot write a snapshot of the plain vault: %s",
		         sv_strerror(r));
		return r;
	}
	uint64_t c_old = s->counter;
	if ((r = intent_write(dfd, old, idx, 1)) != SV_OK) {
		snprintf(why, why_len, "cannot write %s/%s: %s", dir, FN_INTENT, strerror(errno));
		return r;
	}
	if ((r = anchor_new(&a, s->tpm, idx)) != SV_OK)
		return r;
	anchor_set_vault_key(a, s->key);
	anchor_set_orderly(a, mask);
	anchor_new_run(run);
	r = define_counters(s, dfd, a, idx, mask, run, c_old, &value, h, &writes, why, why_len);
	if (r != SV_OK) {
		anchor_free(a);
		sodium_memzero(run, sizeof(run));
		return r;
	}
	/* From here on the store describes the hybrid vault. */
	anchor_free(s->anchor);
	s->anchor = a;
	memcpy(s->run, run, ANCHOR_RUN_LEN);
	sodium_memzero(run, sizeof(run));
	s->scheme = JOURNAL_SCHEME_HYBRID;
	s->orderly_mask = mask;
	s->unclean_index = idx + STORE_UNCLEAN_OFFSET;
	s->nv_index = idx;
	s->counter = s->tpm_counter = value;
	s->nv_writes += writes;
	h->scheme = JOURNAL_SCHEME_HYBRID;
	h->nv_index = idx;
	h->orderly_mask = mask;
	h->unclean_index = s->unclean_index;
	if ((r = store_snapshot_slot(s, mac, &len)) != SV_OK ||
	    (value < c_old && (r = store_write_journal_head(s, value, mac)) != SV_OK)) {
		snprintf(why, why_len,
		         "cannot write the hybrid snapshot (%s): run the same command again (it "
		         "starts over)",
		         strerror(errno));
		return r;
	}
	if ((r = stage_header(s, dfd, dir, h, why, why_len)) != SV_OK)
		return r;
	if ((r = anchor_index_undefine(s->tpm, old)) != SV_OK) {
		snprintf(why, why_len,
		         "cannot undefine the old NV counter 0x%08x: %s; the vault is still the "
		         "plain one, run the same command again (it starts over)",
		         old, sv_strerror(r));
		return r;
	}
	if ((r = install_staged(dfd, dir, why, why_len)) != SV_OK)
		return r;
	if (value > c_old && store_write_journal_head(s, value, mac) != SV_OK) {
		snprintf(why, why_len,
		         "cannot empty the journal (%s); the vault is migrated: run the same "
		         "command again to finish",
		         strerror(errno));
		return SV_ERR_IO;
	}
	if ((r = intent_remove(dfd)) != SV_OK) {
		snprintf(why, why_len,
		         "cannot remove %s/%s: %s; the vault is migrated, run the same command "
		         "again to finish",
		         dir, FN_INTENT, strerror(errno));
		return r;
	}
	res->old_index = old;
	res->new_index = idx;
	res->users = s->users;
	res->counter = value;
	return SV_OK;
}

/* Before the plain vault is opened: an intent whose old counter is gone and whose staged
 * header is there is past the commit point (finish it); one whose old counter is gone without
 * a staged header is a copy of a directory that another run migrated (refuse; remove
 * nothing). *done: finished here. */
static int migrate_resume(const char *dir, int dfd, struct tpm *tpm, struct journal_state_hdr *h,
                          uint32_t old, uint32_t neu, struct store_upgrade_result *res, int *done,
                          char *why, size_t why_len)
{
	int shape = TPM_COUNTER_ABSENT, r = anchor_index_probe(tpm, old, &shape);
	*done = 0;
	if (r != SV_OK) {
		snprintf(why, why_len, "cannot look up the old NV counter 0x%08x: %s", old,
		         sv_strerror(r));
		return SV_ERR_TPM;
	}
	if (shape != TPM_COUNTER_ABSENT)
		return SV_OK; /* before the commit point: the plain vault decides */
	if (!staged_exists(dfd)) {
		snprintf(why, why_len,
		         "the old NV counter 0x%08x is gone but %s/%s is missing: this is not the "
		         "directory the migration ran on (a copy?); nothing was changed",
		         old, dir, FN_STAGED);
		return SV_ERR_STATE;
	}
	if ((r = read_header_file(dfd, dir, FN_STAGED, h, why, why_len)) != SV_OK)
		return r;
	if (h->version == JOURNAL_STATE_VERSION_OLD || h->scheme != JOURNAL_SCHEME_HYBRID ||
	    h->nv_index != neu) {
		snprintf(why, why_len,
		         "%s/%s does not name the hybrid counter 0x%08x of %s: restore the state "
		         "directory from backup",
		         dir, FN_STAGED, neu, FN_INTENT);
		return SV_ERR_STATE;
	}
	if ((r = install_staged(dfd, dir, why, why_len)) != SV_OK)
		return r;
	*done = 1;
	return migrate_finish(dir, dfd, tpm, h, 1, old, res, why, why_len);
}

int store_migrate_hybrid(const char *dir, struct tpm *tpm, uint32_t new_index,
                         struct store_upgrade_result *res, char *why, size_t why_len)
{
	struct journal_state_hdr *h = sodium_malloc(sizeof(*h));
	struct store *s = NULL;
	uint32_t old = 0, neu = 0, mask = 0;
	int dfd = -1, migrate = 0, have_intent, done = 0, r;
	memset(res, 0, sizeof(*res));
	if (h == NULL)
		return SV_ERR_NOMEM;
	if ((r = store_open_dir(dir, &dfd, why, why_len)) != SV_OK ||
	    (r = read_header(dfd, dir, h, why, why_len)) != SV_OK)
		goto out;
	r = SV_ERR_STATE;
	if (h->version == JOURNAL_STATE_VERSION_OLD) {
		snprintf(why, why_len,
		         "%s holds a vault of sealvault 0.2: upgrade it first with sealvault-admin "
		         "upgrade --state-dir %s --tpm TCTI, then run this again",
		         dir, dir);
		goto out;
	}
	int ir = intent_read(dfd, &old, &neu, &migrate);
	if (ir == SV_OK && !migrate) {
		snprintf(why, why_len,
		         "%s/%s records an unfinished upgrade from 0.2: finish it first with "
		         "sealvault-admin upgrade --state-dir %s --tpm TCTI",
		         dir, FN_INTENT, dir);
		goto out;
	}
	have_intent = ir == SV_OK;
	if ((ir != SV_OK && ir != SV_ERR_NOTFOUND) ||
	    (have_intent && h->scheme != JOURNAL_SCHEME_HYBRID &&
	     (old != h->nv_index || neu == old || neu + STORE_UNCLEAN_OFFSET == old))) {
		snprintf(why, why_len, "%s/%s is damaged: remove it and run the command again", dir,
		         FN_INTENT);
		goto out;
	}
	if (h->scheme == JOURNAL_SCHEME_HYBRID) {
		r = migrate_finish(dir, dfd, tpm, h, have_intent, old, res, why, why_len);
		goto out;
	}
	if (have_intent &&
	    ((r = migrate_resume(dir, dfd, tpm, h, old, neu, res, &done, why, why_len)) != SV_OK ||
	     done))
		goto out;
	if (anchor_orderly_mask(tpm, &mask) != SV_OK) {
		snprintf(why, why_len,
		         "this TPM does not report a usable TPM_PT_ORDERLY_COUNT (it must be 2^k - "
		         "1): the hybrid counter cannot work on it; keep the plain counter");
		r = SV_ERR_CONFIG;
		goto out;
	}
	if ((r = store_open_common(&s, dir, tpm, NULL, STORE_OPEN_EAGER, why, why_len)) != SV_OK)
		goto out;
	/* This run holds the plain vault's counter: what an earlier attempt made is garbage. */
	if (have_intent &&
	    ((r = remove_ours(tpm, neu, why, why_len)) != SV_OK ||
	     (r = remove_ours(tpm, neu + STORE_UNCLEAN_OFFSET, why, why_len)) != SV_OK))
		goto out;
	if (have_intent && unlinkat(dfd, FN_STAGED, 0) != 0 && errno != ENOENT) {
		snprintf(why, why_len, "cannot remove %s/%s: %s", dir, FN_STAGED, strerror(errno));
		r = SV_ERR_IO;
		goto out;
	}
	r = migrate_open(s, dir, dfd, h, mask, new_index, res, why, why_len);
out:
	store_close(s);
	if (dfd >= 0)
		close(dfd);
	sodium_free(h);
	return r;
}

/* ---- The vault key's sealing: signed PCR policies (issue 12) ----
 *
 * A vault key sealed with --pcrs before issue 12 has a plain PolicyPCR at init's values: the
 * first update that changes one of those PCRs strands it. store_reseal moves it, while the PCRs
 * still match, to PolicyAuthorize(K), whose approvals authorize-pcrs renews (store_approve):
 *
 *   1. open the vault read-only (the plain unseal; every check of a start);
 *   2. write vault-policy.bin (atomically; ignored while the header says plain);
 *   3. seal the same key under PolicyAuthorize(K, ATTEST_REF_VAULT_KEY) and unseal it back;
 *   4. write the header with the new sealed blob and seal kind (vault.hdr.new, fsync, rename,
 *      fsync the directory): the switch.
 *
 * Interrupted before 4, the old header stands and running it again starts over; after 4, running
 * it again finds a resealed vault and only checks that it opens. */

/* The state directory and its decoded header (*h in sodium_malloc'd memory); close_header frees
 * both, also after a failure. */
static int open_header(const char *dir, int *dfd, struct journal_state_hdr **h, char *why,
                       size_t why_len)
{
	*dfd = -1;
	if ((*h = sodium_malloc(sizeof(**h))) == NULL)
		return SV_ERR_NOMEM;
	int r = store_open_dir(dir, dfd, why, why_len);
	return r == SV_OK ? read_header(*dfd, dir, *h, why, why_len) : r;
}

static void close_header(int dfd, struct journal_state_hdr *h)
{
	if (dfd >= 0)
		close(dfd);
	if (h != NULL)
		sodium_free(h);
}

int store_read_seal(const char *dir, uint32_t *pcr_mask, uint32_t *seal, char *why, size_t why_len)
{
	struct journal_state_hdr *h = NULL;
	int dfd = -1, r = open_header(dir, &dfd, &h, why, why_len);
	if (r == SV_OK) {
		*pcr_mask = h->pcr_mask;
		*seal = h->seal;
	}
	close_header(dfd, h);
	return r;
}

/* The new sealed blob of the key in s: PolicyAuthorize(K) for approved, else a plain PolicyPCR
 * at the current values; unsealed back before it is used. */
static int reseal_key(struct store *s, struct tpm *tpm, struct journal_state_hdr *h,
                      const struct approval_vault *approved, char *why, size_t why_len)
{
	uint8_t policy[TPM_DIGEST_LEN], check[TPM_VAULT_KEY_LEN];
	struct tpm_approval ta;
	int r;
	if (approved != NULL) {
		if (approval_vault_policy(&approved->key, policy) != SV_OK) {
			snprintf(why, why_len, "the policy key's public area does not parse");
			return SV_ERR_CONFIG;
		}
		approval_vault_tpm(approved, &ta);
	}
	if ((r = tpm_seal_key(tpm, h->pcr_mask, approved != NULL ? policy : NULL, s->key, h->sealed,
	                      sizeof(h->sealed), &h->sealed_len)) != SV_OK) {
		snprintf(why, why_len, "cannot seal the vault key again in the TPM: %s",
		         sv_strerror(r));
		return r;
	}
	r = tpm_unseal(tpm, h->pcr_mask, approved != NULL ? &ta : NULL, h->sealed, h->sealed_len,
	               check);
	if (r != SV_OK || sodium_memcmp(check, s->key, sizeof(check)) != 0) {
		snprintf(why, why_len, "the resealed vault key does not unseal back; TPM fault");
		r = SV_ERR_TPM;
	}
	sodium_memzero(check, sizeof(check));
	h->seal = approved != NULL ? JOURNAL_SEAL_AUTHORIZED : JOURNAL_SEAL_PCR;
	return r;
}

int store_reseal(const char *dir, struct tpm *tpm, const struct approval_vault *approved,
                 int *already, char *why, size_t why_len)
{
	struct journal_state_hdr *h = NULL;
	struct store *s = NULL;
	uint32_t want = approved != NULL ? JOURNAL_SEAL_AUTHORIZED : JOURNAL_SEAL_PCR;
	int dfd = -1, r;
	*already = 0;
	if ((r = open_header(dir, &dfd, &h, why, why_len)) != SV_OK)
		goto out;
	r = SV_ERR_CONFIG;
	if (h->pcr_mask == 0) {
		snprintf(
		    why, why_len,
		    "the vault key in %s is not sealed to PCRs (init without --pcrs): there is "
		    "nothing to reseal",
		    dir);
		goto out;
	}
	if (approved != NULL && approved->pol.boot_pcrs != h->pcr_mask) {
		snprintf(why, why_len, "the PCR approval is for PCR mask 0x%06x, not 0x%06x",
		         approved->pol.boot_pcrs, h->pcr_mask);
		goto out;
	}
	/* Every check of a start, and the key (the plain unseal, or the approved one on a re-run)
	 */
	if ((r = store_open_common(&s, dir, tpm, NULL, STORE_OPEN_READONLY, why, why_len)) != SV_OK)
		goto out;
	if (h->seal == want) {
		*already = 1;
		goto out;
	}
	if ((approved != NULL &&
	     (r = approval_vault_save(dfd, dir, approved, why, why_len)) != SV_OK) ||
	    (r = reseal_key(s, tpm, h, approved, why, why_len)) != SV_OK)
		goto out;
	if ((r = switch_header(s, dfd, h)) != SV_OK) {
		snprintf(why, why_len, "cannot replace %s/vault.hdr: %s; run the command again",
		         dir, strerror(errno));
		goto out;
	}
	if (approved == NULL && unlinkat(dfd, APPROVAL_FN_VAULT, 0) == 0)
		(void)fsync(dfd);
out:
	store_close(s);
	close_header(dfd, h);
	return r;
}

int store_approve(const char *dir, struct tpm *tpm, const struct approval_vault *approved,
                  char *why, size_t why_len)
{
	struct journal_state_hdr *h = NULL;
	uint8_t check[TPM_VAULT_KEY_LEN];
	struct tpm_approval ta;
	int dfd = -1, r;
	if ((r = open_header(dir, &dfd, &h, why, why_len)) != SV_OK)
		goto out;
	r = SV_ERR_CONFIG;
	if (h->seal != JOURNAL_SEAL_AUTHORIZED || approved->pol.boot_pcrs != h->pcr_mask) {
		snprintf(
		    why, why_len,
		    "the vault key in %s is not sealed to PCR mask 0x%06x with a signed policy",
		    dir, approved->pol.boot_pcrs);
		goto out;
	}
	approval_vault_tpm(approved, &ta);
	r = tpm_unseal(tpm, h->pcr_mask, &ta, h->sealed, h->sealed_len, check);
	sodium_memzero(check, sizeof(check));
	if (r != SV_OK) {
		snprintf(
		    why, why_len,
		    "the vault key does not unseal with the new approval (%s): another TPM, or "
		    "vault.hdr is not this vault's; nothing was replaced",
		    sv_strerror(r));
		r = r == SV_ERR_BUSY ? r : SV_ERR_STATE;
		goto out;
	}
	r = approval_vault_save(dfd, dir, approved, why, why_len);
out:
	close_header(dfd, h);
	return r;
}
