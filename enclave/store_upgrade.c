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
 * of sealvault's shape, and starts over. Interrupted after 6, it is a current vault (the normal
 * open discards the journal older than the new snapshot): running it again removes the old
 * counter and the intent.
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

#define FN_INTENT      "upgrade.intent"
#define NV_OWNER_FIRST 0x01000000u
#define NV_OWNER_LAST  0x013fffffu
#define INDEX_TRIES    64

/* The intent file: "old=0x%08x new=0x%08x\n". SV_ERR_NOTFOUND when there is none. */
static int intent_read(int dfd, uint32_t *old_index, uint32_t *new_index)
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
	return SV_OK;
}

static int intent_write(int dfd, uint32_t old_index, uint32_t new_index)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "old=0x%08x new=0x%08x\n", old_index, new_index);
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

/* The index for the new counter: the one asked for, or the first free one after old. */
static int choose_index(struct tpm *tpm, uint32_t old, uint32_t want, uint32_t *out, char *why,
                        size_t why_len)
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
		if (shape == TPM_COUNTER_ABSENT) {
			*out = idx;
			return SV_OK;
		}
		if (want != 0) {
			snprintf(why, why_len,
			         "NV index 0x%08x is already defined on this TPM: choose another "
			         "--nv-index",
			         idx);
			return SV_ERR_EXISTS;
		}
	}
	snprintf(why, why_len,
	         "no free NV index for the new counter after 0x%08x: pass --nv-index with a free "
	         "index of the owner range",
	         old);
	return SV_ERR_EXISTS;
}

static int read_header(int dfd, const char *dir, struct journal_state_hdr *h, char *why,
                       size_t why_len)
{
	uint8_t *buf = NULL;
	size_t len = 0, ad_len = 0;
	int fd = -1, r = store_open_at(dfd, FN_HDR, O_RDONLY, dir, why, why_len, &fd);
	if (r != SV_OK)
		return r;
	r = store_read_all(fd, 4096, &buf, &len);
	close(fd);
	if (r == SV_OK && (r = journal_state_decode(buf, len, h, &ad_len)) != SV_OK)
		snprintf(why, why_len, "state header %s/vault.hdr is damaged: restore it", dir);
	store_wipe_free(buf, len);
	return r == SV_OK ? SV_OK : SV_ERR_STATE;
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
	int r = intent_read(dfd, &old, &neu);
	if (r == SV_OK && old != h->nv_index) {
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
	if ((r = choose_index(tpm, old, want, &idx, why, why_len)) != SV_OK)
		return r;
	if ((r = store_stage_noop(s)) != SV_OK || (r = store_commit(s)) != SV_OK) {
		snprintf(why, why_len,
		         "cannot commit on the old NV counter 0x%08x: %s (another copy of this "
		         "0.2 state directory was started or upgraded at the same time?)",
		         old, sv_strerror(r));
		return r == SV_ERR_SUPERSEDED ? SV_ERR_STATE : r;
	}
	if ((r = intent_write(dfd, old, idx)) != SV_OK) {
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
	s->counter = value;
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
	r = intent_read(dfd, &old, &neu);
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
