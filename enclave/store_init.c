/*
 * Provisioning a new vault (store.h: store_init): the sealed vault key, the NV counter bound to
 * the first run (anchor.h), the global secrets, an empty snapshot naming that run, an empty
 * journal and the state header, written so that an interrupted init leaves no vault behind.
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
#include "enclave/approval.h"
#include "enclave/journal.h"
#include "enclave/store_impl.h"
#include "enclave/tpm.h"

static int create_file(int dfd, const char *name, const char *dir, const uint8_t *p, size_t n,
                       char *why, size_t why_len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(why, why_len, "cannot create %s/%s: %s", dir, name, strerror(errno));
		return SV_ERR_IO;
	}
	int r = store_pwrite_all(fd, p, n, 0) == SV_OK && fsync(fd) == 0 ? SV_OK : SV_ERR_IO;
	if (r != SV_OK)
		snprintf(why, why_len, "cannot write %s/%s: %s", dir, name, strerror(errno));
	close(fd);
	return r;
}

int store_header_encode(struct store *s, struct journal_state_hdr *h, struct sv_buf *out)
{
	uint8_t sk[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	static const char ctx[crypto_kdf_CONTEXTBYTES] = {'s', 'v', 's', 'e', 'c', 'r', 't', '1'};
	size_t ad_len = 0, start = out->len;
	int r;
	/* Encode once with a zero ciphertext to learn the AD, then encrypt and encode again. */
	randombytes_buf(h->nonce, sizeof(h->nonce));
	if ((r = journal_state_encode(h, out, &ad_len)) != SV_OK)
		return r;
	crypto_kdf_derive_from_key(sk, sizeof(sk), 1, ctx, s->key);
	crypto_aead_xchacha20poly1305_ietf_encrypt(h->secrets_ct, NULL, (const uint8_t *)s->secrets,
	                                           JOURNAL_SECRETS_LEN, out->data + start, ad_len,
	                                           NULL, h->nonce, sk);
	sodium_memzero(sk, sizeof(sk));
	out->len = start;
	return journal_state_encode(h, out, &ad_len);
}

static int init_files(struct store *s, int dfd, const char *dir, struct journal_state_hdr *h,
                      const struct approval_vault *approved, char *why, size_t why_len)
{
	struct sv_buf hdr, snap, plain;
	uint8_t zero[JOURNAL_MAC_LEN] = {0}, mac[JOURNAL_MAC_LEN], head[JOURNAL_HEAD_LEN];
	int r;
	memset(&hdr, 0, sizeof(hdr));
	memset(&snap, 0, sizeof(snap));
	memset(&plain, 0, sizeof(plain));
	if ((r = sv_buf_init(&hdr, 4096)) != SV_OK || (r = sv_buf_init(&snap, 4096)) != SV_OK ||
	    (r = sv_buf_init(&plain, 64)) != SV_OK)
		goto out;
	if ((r = store_header_encode(s, h, &hdr)) != SV_OK)
		goto out;
	struct journal_frame f = {.kind = JOURNAL_KIND_SNAPSHOT,
	                          .scheme = s->scheme,
	                          .counter = s->counter,
	                          .nv_writes = s->nv_writes,
	                          .count = 1};
	struct journal_op run = {.type = JOURNAL_OP_RUN, .run = s->run};
	if ((r = journal_op_put(&plain, &run)) != SV_OK ||
	    (r = journal_frame_seal(s->keys, zero, &f, plain.data, plain.len, &snap, mac)) != SV_OK)
		goto out;
	struct journal_head jh = {.base_counter = s->counter};
	memcpy(jh.base_mac, mac, sizeof(mac));
	journal_head_encode(&jh, head);
	/* vault.hdr last: a directory without it is not a vault (an interrupted init). */
	if ((r = create_file(dfd, FN_SLOT_A, dir, snap.data, snap.len, why, why_len)) != SV_OK ||
	    (r = create_file(dfd, FN_SLOT_B, dir, NULL, 0, why, why_len)) != SV_OK ||
	    (r = create_file(dfd, FN_JOURNAL, dir, head, sizeof(head), why, why_len)) != SV_OK ||
	    (approved != NULL &&
	     (r = approval_vault_save(dfd, dir, approved, why, why_len)) != SV_OK) ||
	    (r = create_file(dfd, FN_HDR, dir, hdr.data, hdr.len, why, why_len)) != SV_OK)
		goto out;
	if (fsync(dfd) != 0) {
		snprintf(why, why_len, "cannot fsync %s: %s", dir, strerror(errno));
		r = SV_ERR_IO;
	}
out:
	sv_buf_free(&hdr);
	sv_buf_free(&snap);
	sv_buf_free(&plain);
	return r;
}

/* The sealed key's policy: PolicyAuthorize(K) for an approval of exactly pcr_mask. */
static int seal_policy(uint32_t pcr_mask, const struct approval_vault *approved,
                       uint8_t policy[TPM_DIGEST_LEN], char *why, size_t why_len)
{
	if (approved->pol.boot_pcrs != pcr_mask) {
		snprintf(why, why_len, "the PCR approval is for PCR mask 0x%06x, not 0x%06x",
		         approved->pol.boot_pcrs, pcr_mask);
		return SV_ERR_CONFIG;
	}
	if (approval_vault_policy(&approved->key, policy) != SV_OK) {
		snprintf(why, why_len, "the policy key's public area does not parse");
		return SV_ERR_CONFIG;
	}
	return SV_OK;
}

int store_init(const char *dir, struct tpm *tpm, uint32_t nv_index, uint32_t pcr_mask, int hybrid,
               const struct approval_vault *approved, char *why, size_t why_len)
{
	static const char *files[] = {FN_HDR, FN_JOURNAL, FN_SLOT_A, FN_SLOT_B, APPROVAL_FN_VAULT};
	uint8_t policy[TPM_DIGEST_LEN];
	struct tpm_approval ta;
	struct store *s = NULL;
	struct journal_state_hdr *h = NULL;
	int dfd = -1, defined = 0, unclean_defined = 0, r;
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
	if ((r = store_open_dir(dir, &dfd, why, why_len)) != SV_OK)
		goto out;
	if ((r = store_take_lock(s, dfd, dir, 1, why, why_len)) != SV_OK)
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
	if (pcr_mask == 0)
		approved = NULL;
	if (approved != NULL) {
		if ((r = seal_policy(pcr_mask, approved, policy, why, why_len)) != SV_OK)
			goto out;
		approval_vault_tpm(approved, &ta);
		h->seal = JOURNAL_SEAL_AUTHORIZED;
	}
	h->scheme = hybrid ? JOURNAL_SCHEME_HYBRID : JOURNAL_SCHEME_PLAIN;
	h->nv_index = nv_index;
	h->pcr_mask = pcr_mask;
	h->init_time = (uint64_t)time(NULL);
	s->scheme = h->scheme;
	s->nv_index = nv_index;
	if (hybrid) {
		if (anchor_orderly_mask(tpm, &h->orderly_mask) != SV_OK) {
			snprintf(
			    why, why_len,
			    "this TPM does not report a usable TPM_PT_ORDERLY_COUNT (it must be "
			    "2^k - 1): provision with --counter-scheme plain");
			r = SV_ERR_CONFIG;
			goto out;
		}
		h->unclean_index = nv_index + STORE_UNCLEAN_OFFSET;
		if ((h->unclean_index >> 24) != (nv_index >> 24)) {
			snprintf(
			    why, why_len,
			    "--nv-index 0x%08x leaves no room for the unclean-boots counter at "
			    "0x%08x: choose a lower index",
			    nv_index, h->unclean_index);
			r = SV_ERR_CONFIG;
			goto out;
		}
		s->orderly_mask = h->orderly_mask;
		s->unclean_index = h->unclean_index;
	}
	if ((r = tpm_primary_name(tpm, h->primary_name, &h->primary_name_len)) != SV_OK)
		goto out;
	if ((r = tpm_seal_new(tpm, pcr_mask, approved != NULL ? policy : NULL, s->key, h->sealed,
	                      sizeof(h->sealed), &h->sealed_len)) != SV_OK) {
		snprintf(why, why_len, "cannot create the sealed vault key in the TPM");
		goto out;
	}
	uint8_t check[TPM_VAULT_KEY_LEN];
	r = tpm_unseal(tpm, pcr_mask, approved != NULL ? &ta : NULL, h->sealed, h->sealed_len,
	               check);
	int same = r == SV_OK && sodium_memcmp(check, s->key, sizeof(check)) == 0;
	sodium_memzero(check, sizeof(check));
	if (!same) {
		snprintf(why, why_len, "the sealed vault key does not unseal back; TPM fault");
		r = SV_ERR_TPM;
		goto out;
	}
	/* The counter, bound at once to the first run (the one the empty snapshot names). */
	if ((r = anchor_new(&s->anchor, tpm, nv_index)) != SV_OK)
		goto out;
	anchor_set_vault_key(s->anchor, s->key);
	anchor_set_orderly(s->anchor, s->orderly_mask);
	anchor_new_run(s->run);
	if (hybrid) {
		/* the unclean-boots counter first: nothing to undo but itself if the rest fails */
		r = anchor_unclean_define(s->anchor, h->unclean_index, &s->nv_writes);
		unclean_defined = r != SV_ERR_EXISTS && s->nv_writes > 0;
		if (r != SV_OK) {
			if (r == SV_ERR_EXISTS)
				snprintf(why, why_len,
				         "NV index 0x%08x (the unclean-boots counter, --nv-index + "
				         "1) is already defined on this TPM: choose another "
				         "--nv-index",
				         h->unclean_index);
			else
				snprintf(why, why_len,
				         "cannot define the unclean-boots counter at NV index "
				         "0x%08x: %s",
				         h->unclean_index, sv_strerror(r));
			goto out;
		}
	}
	uint64_t unclean_writes = s->nv_writes;
	r = anchor_define(s->anchor, s->run, hybrid, &s->counter, h->nv_name, &h->nv_name_len,
	                  &s->nv_writes);
	if (r == SV_ERR_EXISTS) {
		snprintf(why, why_len,
		         "NV index 0x%08x is already defined on this TPM (another vault?): choose "
		         "another --nv-index, or remove it with tpm2_nvundefine if it is unused",
		         nv_index);
		goto out;
	}
	defined = s->nv_writes > unclean_writes;
	if (r != SV_OK) {
		snprintf(why, why_len, "cannot %s NV counter 0x%08x: %s%s",
		         defined ? "initialise" : "define", nv_index, sv_strerror(r),
		         defined ? "" : " (owner auth must be empty)");
		goto out;
	}
	h->init_counter = s->counter;
	s->tpm_counter = s->counter;
	journal_keys_derive(s->keys, s->key);
	randombytes_buf(s->secrets->oprf_seed, sizeof(s->secrets->oprf_seed));
	crypto_core_ristretto255_scalar_random(s->secrets->ake_sk);
	if (crypto_scalarmult_ristretto255_base(s->secrets->ake_pk, s->secrets->ake_sk) != 0) {
		r = SV_ERR_CRYPTO;
		goto out;
	}
	randombytes_buf(s->secrets->fake_seed, sizeof(s->secrets->fake_seed));
	r = init_files(s, dfd, dir, h, approved, why, why_len);
out:
	if (r != SV_OK && unclean_defined &&
	    anchor_index_undefine(tpm, nv_index + STORE_UNCLEAN_OFFSET) != SV_OK)
		snprintf(why + strlen(why), why_len - strlen(why),
		         "; NV index 0x%08x stays defined, remove it with tpm2_nvundefine",
		         nv_index + STORE_UNCLEAN_OFFSET);
	if (r != SV_OK && defined) {
		if (anchor_undefine(s->anchor) != SV_OK)
			snprintf(why + strlen(why), why_len - strlen(why),
			         "; NV index 0x%08x stays defined, remove it with tpm2_nvundefine",
			         nv_index);
		for (size_t i = 0;
		     dfd >= 0 && r != SV_ERR_EXISTS && i < sizeof(files) / sizeof(files[0]); i++)
			(void)unlinkat(dfd, files[i], 0);
	}
	if (dfd >= 0)
		close(dfd);
	if (h != NULL)
		sodium_free(h);
	store_close(s);
	return r;
}
