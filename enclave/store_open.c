/*
 * Opening the vault state (store.h: store_open, store_open_lazy, store_open_readonly): pick the
 * newest valid snapshot, replay the journal frames chained from it, check that the TPM counter
 * is bound to the last run this directory holds (anchor.h: a forked or superseded copy is
 * refused), and judge the head H against the counter C: H == C is clean, H == C+1 is a crash
 * between fsync and increment (the increment is completed), anything else is refused. Bytes
 * after the last valid frame are an uncommitted tail only when H >= C (no committed frame can be
 * missing); they are then dropped. Then this run takes the counter over (store_take_over):
 * at once for a serving vault, before its first write for a lazy open.
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

#include "common/attest_stmt.h"
#include "common/buf.h"
#include "common/err.h"
#include "enclave/anchor.h"
#include "enclave/approval.h"
#include "enclave/journal.h"
#include "enclave/store_impl.h"
#include "enclave/tpm.h"

/* Unseals the vault key into s->key: through the approval in vault-policy.bin for a key sealed
 * with PolicyAuthorize(K), else as the header says (plain PolicyPCR, or no policy). */
static int unseal(struct store *s, int dfd, const char *dir, const struct journal_state_hdr *h,
                  char *why, size_t why_len)
{
	struct approval_vault *v = NULL;
	struct tpm_approval ta;
	char pcrs[80] = "";
	int r = SV_ERR_STATE, u;
	if (attest_pcrs_format(h->pcr_mask, pcrs, sizeof(pcrs)) != SV_OK)
		pcrs[0] = '\0';
	if (h->seal == JOURNAL_SEAL_AUTHORIZED) {
		if ((v = malloc(sizeof(*v))) == NULL)
			return SV_ERR_NOMEM;
		u = approval_vault_load(dfd, dir, v, why, why_len);
		if (u == SV_ERR_NOTFOUND)
			snprintf(
			    why, why_len,
			    "%s/%s is missing: the vault key unseals only with PCR values the "
			    "policy key approved; approve the current ones with sealvault-admin "
			    "authorize-pcrs --state-dir %s --tpm TCTI --policy-key FILE, or "
			    "restore "
			    "the state directory from backup",
			    dir, APPROVAL_FN_VAULT, dir);
		if (u == SV_OK && v->pol.boot_pcrs != h->pcr_mask) {
			snprintf(why, why_len,
			         "%s/%s approves other PCRs than the vault key is sealed to (%s): "
			         "approve them with sealvault-admin authorize-pcrs, or restore the "
			         "state "
			         "directory from backup",
			         dir, APPROVAL_FN_VAULT, pcrs);
			u = SV_ERR_INVALID;
		}
		if (u != SV_OK)
			goto out;
		approval_vault_tpm(v, &ta);
	}
	u = tpm_unseal(s->tpm, h->pcr_mask, v != NULL ? &ta : NULL, h->sealed, h->sealed_len,
	               s->key);
	if (u == SV_OK) {
		r = SV_OK;
	} else if (u == SV_ERR_BUSY) {
		snprintf(why, why_len,
		         "the TPM has no free object slot to unseal the vault key (other clients "
		         "hold them; without a resource manager such as /dev/tpmrm0 a TPM has only "
		         "a few): start again once they are gone");
		r = SV_ERR_TPM;
	} else if (u == SV_ERR_STATE) {
		snprintf(
		    why, why_len,
		    "the vault key is sealed to PCR values that no longer match: PCRs %s (SHA-256) "
		    "differ from the values the policy key approved (a firmware, boot loader or "
		    "kernel update?); if you trust this boot state, approve the new values with "
		    "sealvault-admin authorize-pcrs --state-dir %s --tpm TCTI --policy-key FILE "
		    "and start again (docs/operations.md \"Firmware and kernel updates\")",
		    pcrs, dir);
	} else if (v != NULL) {
		snprintf(why, why_len,
		         "the TPM refused to unseal the vault key with the approval in %s/%s (not "
		         "signed by this vault's policy key, another TPM, or vault.hdr was "
		         "altered): restore the state directory from backup",
		         dir, APPROVAL_FN_VAULT);
	} else if (h->pcr_mask != 0) {
		snprintf(
		    why, why_len,
		    "the TPM refused to unseal the vault key: the PCRs of its policy (%s, a plain "
		    "PolicyPCR of a vault made before signed PCR policies) no longer hold the "
		    "values of init (different boot chain or build), or vault.hdr was altered; "
		    "boot the configuration the vault was sealed to, then move the key to a "
		    "policy that authorize-pcrs can renew: sealvault-admin reseal --state-dir %s "
		    "--tpm TCTI --policy-key FILE",
		    pcrs, dir);
	} else {
		snprintf(why, why_len,
		         "the TPM refused to unseal the vault key: the state directory "
		         "belongs to another TPM or vault.hdr was altered; restore it from "
		         "backup");
	}
out:
	free(v);
	return r;
}

/* Loads the header, checks the TPM binding, unseals and decrypts the secrets. */
static int load_header(struct store *s, int dfd, const char *dir, struct journal_state_hdr *h,
                       char *why, size_t why_len)
{
	uint8_t *buf = NULL, name[TPM_NAME_MAX], nv_name[TPM_NAME_MAX];
	size_t len = 0, ad_len = 0, name_len = 0, nv_name_len = 0;
	int fd = -1, r;
	if ((r = store_open_at(dfd, FN_HDR, O_RDONLY, dir, why, why_len, &fd)) != SV_OK) {
		if (r == SV_ERR_STATE)
			snprintf(why, why_len,
			         "no vault in %s (vault.hdr missing): provision one with "
			         "sealvault-admin init, or pass the right --state-dir",
			         dir);
		return r;
	}
	r = store_read_all(fd, 4096, &buf, &len);
	close(fd);
	if (r == SV_OK)
		r = journal_state_decode(buf, len, h, &ad_len);
	if (r == SV_OK && (h->version == JOURNAL_STATE_VERSION_OLD) != s->legacy) {
		if (s->legacy)
			snprintf(why, why_len, "%s/vault.hdr is already a current vault", dir);
		else
			snprintf(
			    why, why_len,
			    "%s/vault.hdr is a vault of sealvault 0.2 (state version 1), whose "
			    "TPM counter cannot refuse forked copies of the state directory: "
			    "upgrade it once with the service stopped: sealvault-admin upgrade "
			    "--state-dir %s --tpm TCTI (docs/operations.md \"Upgrading from 0.2\")",
			    dir, dir);
		r = s->legacy ? SV_ERR_EXISTS : SV_ERR_STATE;
		goto out;
	}
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
	s->orderly_mask = h->orderly_mask;
	s->unclean_index = h->unclean_index;
	r = SV_ERR_STATE;
	if (tpm_primary_name(s->tpm, name, &name_len) != SV_OK || name_len != h->primary_name_len ||
	    memcmp(name, h->primary_name, name_len) != 0) {
		snprintf(why, why_len,
		         "this state directory was provisioned on a different TPM (primary key "
		         "name mismatch): start it on its own TPM, or provision a new vault");
		goto out;
	}
	if ((r = anchor_new(&s->anchor, s->tpm, h->nv_index)) != SV_OK)
		goto out;
	r = SV_ERR_STATE;
	int a = anchor_attach(s->anchor, nv_name, &nv_name_len);
	struct stat st;
	if (a == SV_ERR_NOTFOUND && fstatat(dfd, FN_INTENT, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		snprintf(why, why_len,
		         "NV counter index 0x%08x does not exist on this TPM, and %s/%s shows an "
		         "upgrade or counter migration that was cut off: run the same "
		         "sealvault-admin upgrade command again to finish it",
		         h->nv_index, dir, FN_INTENT);
		goto out;
	}
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
	s->seal = h->seal;
	s->init_time = h->init_time;
	if (s->orderly_mask != 0) {
		/* The power-cut window is the TPM's: it must still be the one init saw. */
		uint32_t m = 0;
		if (anchor_orderly_mask(s->tpm, &m) != SV_OK || m != s->orderly_mask) {
			snprintf(why, why_len,
			         "the TPM reports TPM_PT_ORDERLY_COUNT %u, but the vault's hybrid "
			         "counter was provisioned for %u: the TPM changed (firmware?); the "
			         "power-cut rule cannot be trusted, refusing to start",
			         m, s->orderly_mask);
			r = SV_ERR_STATE;
			goto out;
		}
		anchor_set_orderly(s->anchor, s->orderly_mask);
	}
	if ((r = unseal(s, dfd, dir, h, why, why_len)) != SV_OK)
		goto out;
	r = SV_ERR_STATE;
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
	anchor_set_vault_key(s->anchor, s->key);
	r = SV_OK;
out:
	store_wipe_free(buf, len);
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

/* A commit frame moves the counter on: by one, and under the hybrid scheme also to a multiple
 * of M + 1 (a forced flush, or the power-cut penalty, from where the TPM was); the NV writes
 * it records never go down (plain: each commit is one). */
static int commit_in_sequence(const struct store *s, const struct journal_frame *f)
{
	if (s->orderly_mask == 0)
		return f->counter == s->counter + 1 && f->nv_writes > s->nv_writes;
	return f->counter > s->counter &&
	       (f->counter == s->counter + 1 || (f->counter & s->orderly_mask) == 0) &&
	       f->nv_writes >= s->nv_writes;
}

/* Replays the journal; returns the valid length and the tail length. */
static int replay(struct store *s, const char *dir, int *obsolete, char *why, size_t why_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct journal_head h;
	int r = store_read_all(s->jfd, (size_t)1 << 40, &buf, &len);
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
	if ((h.base_counter > s->snap_counter ||
	     sodium_memcmp(h.base_mac, s->head_mac, JOURNAL_MAC_LEN) != 0) &&
	    s->upgraded_open && s->orderly_mask == 0) {
		/* The 0.2 journal of an upgrade cut off after the header switch: everything in it
		 * is in the version 2 snapshot. Dropped only if the counter agrees (the caller). */
		*obsolete = 1;
		s->journal_dropped = 1;
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
		/* a commit moves the counter by one; a flush repeats it and holds only resets; a
		 * start repeats it, holds one run op and counts the NV write of its take-over */
		int flush = f.kind == JOURNAL_KIND_FLUSH, start = f.kind == JOURNAL_KIND_START;
		int commit = f.kind == JOURNAL_KIND_COMMIT;
		if ((!commit && !flush && !start) || f.scheme != s->scheme ||
		    (commit && !commit_in_sequence(s, &f)) ||
		    (flush && (f.counter != s->counter || f.nv_writes != s->nv_writes)) ||
		    (start && (s->legacy || f.counter != s->counter ||
		               f.nv_writes <= s->nv_writes || f.count != 1))) {
			snprintf(
			    why, why_len,
			    "journal record at byte %zu is out of sequence (counter %llu after "
			    "%llu): restore the state directory from backup",
			    off, (unsigned long long)f.counter, (unsigned long long)s->counter);
			goto out;
		}
		struct sv_buf b;
		sv_buf_from(&b, plain, plen);
		s->apply_counter = f.counter;
		for (uint32_t n = 0; n < f.count; n++) {
			struct journal_op op;
			if (journal_op_get(&b, &op) != SV_OK || op.type == JOURNAL_OP_USER ||
			    (op.type == JOURNAL_OP_PENALTY && op.charge != 1) ||
			    (flush && op.type != JOURNAL_OP_RESET) ||
			    (start != (op.type == JOURNAL_OP_RUN)) ||
			    (!start && store_apply_op(s, &op) != SV_OK)) {
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
		s->start_trailing = start;
		if (start) {
			/* Remembered so that open can drop it if it never took effect (anchor.h).
			 */
			struct journal_op op;
			sv_buf_from(&b, plain, plen);
			if (journal_op_get(&b, &op) != SV_OK)
				goto out;
			s->start_off = off;
			memcpy(s->start_prev_mac, s->head_mac, JOURNAL_MAC_LEN);
			s->start_prev_nv_writes = s->nv_writes;
			memcpy(s->prev_run, s->run, ANCHOR_RUN_LEN);
			memcpy(s->run, op.run, ANCHOR_RUN_LEN);
		}
		/* a start or flush frame after an interrupted commit leaves it interrupted */
		if (commit)
			s->last_from = s->counter;
		s->counter = f.counter;
		s->nv_writes = f.nv_writes;
		memcpy(s->head_mac, mac, JOURNAL_MAC_LEN);
		off += flen;
		s->jframes++;
	}
	s->jlen = off;
	s->tail_bytes = len - off;
	r = SV_OK;
out:
	store_wipe_free(buf, len);
	return r;
}

/* May this state directory start? The TPM must accept the auth value of the last run it holds
 * (anchor.h): otherwise a later run, on another copy, has taken the counter over. A start
 * frame at the very end whose take-over never happened (a crash between its fsync and
 * NV_ChangeAuth) is dropped, and the run before it must be the one the TPM accepts. Then the
 * journal head is judged against the counter. */
static int check_run(struct store *s, char *why, size_t why_len)
{
	uint64_t c = 0;
	int r =
	    s->legacy ? anchor_read_legacy(s->anchor, &c) : anchor_read_as(s->anchor, s->run, &c);
	if (r == SV_ERR_AUTH && s->start_trailing) {
		r = anchor_read_as(s->anchor, s->prev_run, &c);
		if (r == SV_OK) {
			s->start_dropped = s->jlen - s->start_off;
			s->jframes--;
			s->jlen = s->start_off;
			memcpy(s->head_mac, s->start_prev_mac, JOURNAL_MAC_LEN);
			s->nv_writes = s->start_prev_nv_writes;
			memcpy(s->run, s->prev_run, ANCHOR_RUN_LEN);
			s->start_trailing = 0;
		}
	}
	if (r == SV_ERR_AUTH) {
		/* An older copy is usually also behind the counter: say that, it is more useful. */
		int v;
		if (anchor_read_owner(s->anchor, &c) == SV_OK &&
		    anchor_judge(s->counter, s->last_from, c, s->orderly_mask, s->jlen,
		                 s->tail_bytes, &v, why, why_len) != SV_OK)
			return SV_ERR_STATE;
		snprintf(why, why_len,
		         "this state directory is not the one the vault last started from: the TPM "
		         "counter 0x%08x is bound to a later run (a copy of this directory was "
		         "started since, or the directory was restored from a backup); a forked "
		         "or older copy is never served again; start the directory the vault last "
		         "ran on (see docs/operations.md)",
		         s->nv_index);
		return SV_ERR_STATE;
	}
	if (r != SV_OK) {
		snprintf(why, why_len, "cannot read NV counter 0x%08x: %s", s->nv_index,
		         sv_strerror(r));
		return SV_ERR_TPM;
	}
	int v = ANCHOR_CLEAN;
	if ((r = anchor_judge(s->counter, s->last_from, c, s->orderly_mask, s->jlen, s->tail_bytes,
	                      &v, why, why_len)) != SV_OK)
		return r;
	s->tpm_counter = c;
	s->roll_forward = v == ANCHOR_ROLL_FORWARD;
	s->power_cut = v == ANCHOR_POWER_CUT;
	return SV_OK;
}

/* Takes the TPM counter over for this run: a start frame with a fresh run nonce, fsynced, then
 * NV_ChangeAuth to the nonce's auth value (every older run's increments now fail), then the
 * interrupted commit completed (roll forward) or the counter read back: it must still be the
 * journal head, or another run incremented it between check_run and the take-over. */
int store_take_over(struct store *s, char *why, size_t why_len)
{
	uint8_t run[ANCHOR_RUN_LEN], mac[JOURNAL_MAC_LEN];
	struct sv_buf plain, frame;
	uint64_t c = 0, done = 0;
	int r;
	anchor_new_run(run);
	struct journal_op op = {.type = JOURNAL_OP_RUN, .run = run};
	struct journal_frame f = {.kind = JOURNAL_KIND_START,
	                          .scheme = s->scheme,
	                          .counter = s->counter,
	                          .nv_writes = s->nv_writes + 1,
	                          .count = 1};
	if ((r = sv_buf_init(&plain, 64)) != SV_OK)
		return r;
	if ((r = sv_buf_init(&frame, 64 + JOURNAL_FRAME_OVERHEAD)) != SV_OK) {
		sv_buf_free(&plain);
		return r;
	}
	if ((r = journal_op_put(&plain, &op)) != SV_OK ||
	    (r = journal_frame_seal(s->keys, s->head_mac, &f, plain.data, plain.len, &frame,
	                            mac)) != SV_OK)
		goto out;
	if (store_pwrite_all(s->jfd, frame.data, frame.len, (off_t)s->jlen) != SV_OK ||
	    fdatasync(s->jfd) != 0) {
		snprintf(why, why_len, "cannot write the start record to the journal: %s",
		         strerror(errno));
		r = SV_ERR_IO;
		goto out;
	}
	s->jlen += frame.len;
	memcpy(s->head_mac, mac, JOURNAL_MAC_LEN);
	s->nv_writes = f.nv_writes;
	memcpy(s->run, run, ANCHOR_RUN_LEN);
	if ((r = anchor_take(s->anchor, run)) != SV_OK) {
		snprintf(why, why_len,
		         "cannot bind NV counter 0x%08x to this run (NV_ChangeAuth: %s): check the "
		         "TPM and start again",
		         s->nv_index, sv_strerror(r));
		r = SV_ERR_TPM;
		goto out;
	}
	if (s->roll_forward)
		r = anchor_advance(s->anchor, s->tpm_counter, s->counter, &done);
	else if ((r = anchor_read(s->anchor, &c)) == SV_OK && c != s->tpm_counter)
		r = SV_ERR_SUPERSEDED;
	if (r == SV_OK && s->roll_forward) {
		s->tpm_counter = s->counter;
	}
	if (r == SV_ERR_SUPERSEDED) {
		snprintf(why, why_len,
		         "the TPM counter 0x%08x moved while this run started (journal at %llu): "
		         "another run of this vault, on another copy of the state directory, is "
		         "incrementing it; stop every other copy (see docs/operations.md)",
		         s->nv_index, (unsigned long long)s->counter);
		r = SV_ERR_STATE;
	} else if (r != SV_OK) {
		snprintf(why, why_len,
		         "cannot %s NV counter 0x%08x after binding it to this run: %s; check the "
		         "TPM and start again",
		         s->roll_forward ? "complete the interrupted commit on" : "read",
		         s->nv_index, sv_strerror(r));
		r = SV_ERR_TPM;
	}
	if (r == SV_OK)
		s->taken = 1;
out:
	sodium_memzero(run, sizeof(run));
	sv_buf_free(&plain);
	sv_buf_free(&frame);
	return r;
}

#define YEAR_S (365u * 24 * 3600)

/* Unclean boots in the last year since the operator's last acknowledgement, this one included:
 * above the policy's budget the vault waits for the operator (sealvault-admin
 * acknowledge-unclean-boots), since every one charged every user a guess. */
static int unclean_budget(struct store *s, uint64_t now, char *why, size_t why_len)
{
	uint64_t n = 1;
	for (size_t i = 0; i < s->nunclean; i++)
		if (s->unclean_times[i] > s->ack_time && s->unclean_times[i] + YEAR_S > now)
			n++;
	if (n <= s->pol.unclean_boots_per_year)
		return SV_OK;
	snprintf(why, why_len,
	         "the TPM lost power without an orderly shutdown %llu times in the last year "
	         "(budget: unclean-boots-per-year = %u); each one charges every user one guess. "
	         "Find out why, then acknowledge with: sealvault-admin acknowledge-unclean-boots "
	         "--state-dir DIR --tpm TCTI (docs/operations.md \"Power cuts\")",
	         (unsigned long long)n, s->pol.unclean_boots_per_year);
	return SV_ERR_STATE;
}

/* After a power cut (anchor_judge): bump the unclean-boots counter, then commit the penalty as a
 * forced flush (every user charged one guess: the one a power cut may have taken back). A crash
 * in between charges it again at the next start: never fewer guesses than were made. */
static int charge_penalty(struct store *s, uint64_t now, char *why, size_t why_len)
{
	uint64_t v = 0, destroyed = s->destroyed;
	int r = anchor_unclean_bump(s->anchor, s->unclean_index, &v);
	if (r == SV_OK) {
		s->nv_writes++;
		r = store_stage_penalty(s, now, v);
	}
	if (r == SV_OK)
		r = store_commit(s);
	if (r != SV_OK) {
		snprintf(why, why_len,
		         "cannot commit the power-cut penalty (unclean-boots counter 0x%08x, NV "
		         "counter 0x%08x): %s; check the TPM and start again",
		         s->unclean_index, s->nv_index, sv_strerror(r));
		return r == SV_ERR_SUPERSEDED ? SV_ERR_STATE : SV_ERR_TPM;
	}
	s->power_cut = 0;
	s->penalty_charged = 1;
	s->penalty_destroyed = s->destroyed - destroyed;
	return SV_OK;
}

int store_open_common(struct store **out, const char *dir, struct tpm *tpm,
                      const struct sv_vault_policy *pol, enum store_open_mode mode, char *why,
                      size_t why_len)
{
	int readonly = mode == STORE_OPEN_READONLY;
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
	s->legacy = mode == STORE_OPEN_LEGACY;
	s->upgraded_open = mode == STORE_OPEN_UPGRADED;
	h = sodium_malloc(sizeof(*h));
	if (h == NULL) {
		r = SV_ERR_NOMEM;
		goto out;
	}
	if ((r = store_open_dir(dir, &dfd, why, why_len)) != SV_OK)
		goto out;
	if ((r = store_take_lock(s, dfd, dir, 0, why, why_len)) != SV_OK ||
	    (r = store_open_at(dfd, FN_JOURNAL, O_RDWR, dir, why, why_len, &s->jfd)) != SV_OK ||
	    (r = store_open_at(dfd, FN_SLOT_A, O_RDWR, dir, why, why_len, &s->slot_fd[0])) !=
	        SV_OK ||
	    (r = store_open_at(dfd, FN_SLOT_B, O_RDWR, dir, why, why_len, &s->slot_fd[1])) !=
	        SV_OK ||
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
			r = store_snapshot_load(s, order[k], why, why_len);
	if (r == SV_ERR_AUTH) {
		snprintf(why, why_len,
		         "no valid snapshot in %s (snap.a and snap.b are both damaged or empty): "
		         "restore the state directory from backup",
		         dir);
		r = SV_ERR_STATE;
		goto out;
	}
	if (r != SV_OK || (r = replay(s, dir, &obsolete, why, why_len)) != SV_OK) {
		struct stat st;
		if (r == SV_ERR_STATE && fstatat(dfd, FN_INTENT, &st, AT_SYMLINK_NOFOLLOW) == 0)
			snprintf(
			    why, why_len,
			    "the journal in %s does not continue its snapshot, and %s/%s shows "
			    "an upgrade that was cut off: run the same sealvault-admin upgrade "
			    "command again to finish it",
			    dir, dir, FN_INTENT);
		goto out;
	}
	if ((r = check_run(s, why, why_len)) != SV_OK)
		goto out;
	if (s->journal_dropped && s->tpm_counter != s->snap_counter) {
		/* something was committed on the new counter: that journal is not the 0.2 one */
		snprintf(why, why_len,
		         "the journal continues a snapshot that is missing or damaged, and NV "
		         "counter 0x%08x (%llu) is past the snapshot (%llu): restore the state "
		         "directory from backup",
		         s->nv_index, (unsigned long long)s->tpm_counter,
		         (unsigned long long)s->snap_counter);
		r = SV_ERR_STATE;
		goto out;
	}
	if (!readonly) {
		if (obsolete)
			r = store_write_journal_head(s, s->snap_counter, s->head_mac);
		else if (s->tail_bytes > 0 || s->start_dropped > 0)
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
		if (s->legacy) {
			/* sealvault 0.2: no runs; complete an interrupted commit on the old counter
			 */
			uint64_t done = 0;
			s->taken = 1;
			if (s->roll_forward && (r = anchor_advance(s->anchor, s->tpm_counter,
			                                           s->counter, &done)) != SV_OK) {
				snprintf(why, why_len,
				         "cannot complete the interrupted commit on NV counter "
				         "0x%08x: %s; check the TPM and start again",
				         s->nv_index, sv_strerror(r));
				r = SV_ERR_TPM;
				goto out;
			}
			s->tpm_counter = s->counter;
		} else {
			uint64_t now = (uint64_t)time(NULL);
			if (s->power_cut && mode != STORE_OPEN_ACK &&
			    (r = unclean_budget(s, now, why, why_len)) != SV_OK)
				goto out;
			if ((mode == STORE_OPEN_EAGER || mode == STORE_OPEN_ACK ||
			     s->roll_forward || s->power_cut) &&
			    (r = store_take_over(s, why, why_len)) != SV_OK)
				goto out;
			if (s->power_cut && (r = charge_penalty(s, now, why, why_len)) != SV_OK)
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
	int r = store_open_common(out, state_dir, tpm, pol, STORE_OPEN_EAGER, why, why_len);
	/* a serving vault writes its snapshots on a thread of their own (store_snapshot_start),
	 * started now: the enclave's sandbox allows no new thread later */
	if (r == SV_OK && (r = store_snapshot_thread_start(*out)) != SV_OK) {
		snprintf(why, why_len, "cannot start the snapshot thread: %s", sv_strerror(r));
		store_close(*out);
		*out = NULL;
	}
	return r;
}

int store_open_lazy(struct store **out, const char *state_dir, struct tpm *tpm,
                    const struct sv_vault_policy *pol, char *why, size_t why_len)
{
	return store_open_common(out, state_dir, tpm, pol, STORE_OPEN_LAZY, why, why_len);
}

int store_open_readonly(struct store **out, const char *state_dir, struct tpm *tpm,
                        const struct sv_vault_policy *pol, char *why, size_t why_len)
{
	return store_open_common(out, state_dir, tpm, pol, STORE_OPEN_READONLY, why, why_len);
}

int store_acknowledge_unclean(const char *state_dir, struct tpm *tpm,
                              const struct sv_vault_policy *pol, int *penalty, char *why,
                              size_t why_len)
{
	struct store *s = NULL;
	int r = store_open_common(&s, state_dir, tpm, pol, STORE_OPEN_ACK, why, why_len);
	if (r != SV_OK)
		return r;
	*penalty = s->commits > 0; /* the penalty is the only commit before this one */
	if (s->orderly_mask == 0) {
		snprintf(
		    why, why_len,
		    "%s is a plain-counter vault: it has no unclean-boot budget to acknowledge",
		    state_dir);
		r = SV_ERR_STATE;
	} else if ((r = store_acknowledge(s, (uint64_t)time(NULL))) != SV_OK ||
	           (r = store_commit(s)) != SV_OK) {
		snprintf(why, why_len, "cannot commit the acknowledgement: %s", sv_strerror(r));
	}
	store_close(s);
	return r;
}
