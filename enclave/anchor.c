/*
 * The TPM NV counter and the run authority over it (see anchor.h). The run auth value is
 * BLAKE2b-256 keyed with a key derived from the vault key, over the run nonce: any run that
 * holds the vault key and a nonce can present it, nobody without the vault key can.
 */
#include "enclave/anchor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"

#define AUTH_LEN 32 /* TPM2B_AUTH for a SHA-256 index: at most the digest size */

struct anchor {
	struct tpm *tpm;
	uint32_t index;
	uint32_t mask; /* orderly mask (hybrid), 0 (plain) */
	int keyed;
	uint8_t *key;                /* sodium_malloc: run-auth derivation key */
	uint8_t *unclean;            /* sodium_malloc: auth value of the unclean-boots counter */
	uint8_t run[ANCHOR_RUN_LEN]; /* the run whose auth value is presented */
	int has_run;
};

static const char kdf_ctx[crypto_kdf_CONTEXTBYTES] = {'s', 'v', 'a', 'n', 'c', 'h', 'r', '1'};
#define KDF_RUN     1
#define KDF_UNCLEAN 2

int anchor_new(struct anchor **out, struct tpm *tpm, uint32_t index)
{
	struct anchor *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return SV_ERR_NOMEM;
	a->key = sodium_malloc(crypto_generichash_KEYBYTES);
	a->unclean = sodium_malloc(AUTH_LEN);
	if (a->key == NULL || a->unclean == NULL) {
		anchor_free(a);
		return SV_ERR_NOMEM;
	}
	a->tpm = tpm;
	a->index = index;
	*out = a;
	return SV_OK;
}

void anchor_free(struct anchor *a)
{
	if (a == NULL)
		return;
	if (a->key != NULL)
		sodium_free(a->key);
	if (a->unclean != NULL)
		sodium_free(a->unclean);
	free(a);
}

void anchor_set_vault_key(struct anchor *a, const uint8_t vault_key[TPM_VAULT_KEY_LEN])
{
	crypto_kdf_derive_from_key(a->key, crypto_generichash_KEYBYTES, KDF_RUN, kdf_ctx,
	                           vault_key);
	crypto_kdf_derive_from_key(a->unclean, AUTH_LEN, KDF_UNCLEAN, kdf_ctx, vault_key);
	a->keyed = 1;
}

void anchor_new_run(uint8_t run[ANCHOR_RUN_LEN])
{
	randombytes_buf(run, ANCHOR_RUN_LEN);
}

static void run_auth(const struct anchor *a, const uint8_t run[ANCHOR_RUN_LEN],
                     uint8_t auth[AUTH_LEN])
{
	crypto_generichash(auth, AUTH_LEN, run, ANCHOR_RUN_LEN, a->key,
	                   crypto_generichash_KEYBYTES);
}

/* Presents run's auth value from now on (no TPM command). */
static int present(struct anchor *a, const uint8_t run[ANCHOR_RUN_LEN])
{
	uint8_t auth[AUTH_LEN];
	if (!a->keyed)
		return SV_ERR_INTERNAL;
	run_auth(a, run, auth);
	int r = tpm_counter_set_auth(a->tpm, auth, sizeof(auth));
	sodium_memzero(auth, sizeof(auth));
	if (r == SV_OK && run != a->run) {
		memcpy(a->run, run, ANCHOR_RUN_LEN);
		a->has_run = 1;
	}
	return r;
}

int anchor_orderly_mask(struct tpm *tpm, uint32_t *mask)
{
	uint32_t m = 0;
	int r = tpm_orderly_count(tpm, &m);
	if (r != SV_OK)
		return r;
	if (m == 0 || (m & (m + 1)) != 0)
		return SV_ERR_CONFIG;
	*mask = m;
	return SV_OK;
}

void anchor_set_orderly(struct anchor *a, uint32_t mask)
{
	a->mask = mask;
}

uint64_t anchor_durable(uint32_t m, uint64_t c)
{
	return c & ~(uint64_t)m;
}

uint64_t anchor_flush_target(uint32_t m, uint64_t c)
{
	return (c | m) + 1;
}

uint64_t anchor_nv_writes(uint32_t m, uint64_t c, uint64_t t)
{
	uint64_t p = (uint64_t)m + 1;
	return t <= c ? 0 : t / p - c / p;
}

int anchor_define(struct anchor *a, const uint8_t run[ANCHOR_RUN_LEN], int orderly, uint64_t *value,
                  uint8_t name[TPM_NAME_MAX], size_t *name_len, uint64_t *nv_writes)
{
	int r = tpm_counter_define(a->tpm, a->index, orderly);
	if (r != SV_OK)
		return r;
	*nv_writes += 1;
	/* A new counter is unreadable until its first increment (with the empty auth value). */
	if ((r = tpm_counter_increment(a->tpm)) != SV_OK)
		return r;
	*nv_writes += 1;
	if ((r = anchor_take(a, run)) != SV_OK)
		return r;
	*nv_writes += 1;
	if ((r = anchor_read(a, value)) != SV_OK)
		return r;
	/* An orderly counter's first value is still only in TPM RAM: flush it, so that a power
	 * cut right after provisioning finds an NV copy. */
	if (orderly) {
		uint64_t t = anchor_flush_target(a->mask, *value), done = 0;
		if ((r = anchor_advance(a, *value, t, &done)) != SV_OK)
			return r;
		*nv_writes += anchor_nv_writes(a->mask, *value, t);
		*value = t;
	}
	/* NV_Increment set the WRITTEN attribute, which the name covers: take the name now. */
	return tpm_counter_attach(a->tpm, a->index, name, name_len);
}

int anchor_undefine(struct anchor *a)
{
	return tpm_counter_undefine(a->tpm, a->index);
}

int anchor_index_probe(struct tpm *tpm, uint32_t index, int *shape)
{
	return tpm_counter_probe(tpm, index, shape);
}

int anchor_index_undefine(struct tpm *tpm, uint32_t index)
{
	return tpm_counter_undefine(tpm, index);
}

int anchor_attach(struct anchor *a, uint8_t name[TPM_NAME_MAX], size_t *name_len)
{
	return tpm_counter_attach(a->tpm, a->index, name, name_len);
}

int anchor_read_as(struct anchor *a, const uint8_t run[ANCHOR_RUN_LEN], uint64_t *value)
{
	int r = present(a, run);
	return r != SV_OK ? r : tpm_counter_read(a->tpm, value);
}

int anchor_read_legacy(struct anchor *a, uint64_t *value)
{
	int r = tpm_counter_set_auth(a->tpm, NULL, 0);
	return r != SV_OK ? r : tpm_counter_read(a->tpm, value);
}

int anchor_read_owner(struct anchor *a, uint64_t *value)
{
	return tpm_counter_read_owner(a->tpm, value);
}

int anchor_take(struct anchor *a, const uint8_t run[ANCHOR_RUN_LEN])
{
	uint8_t auth[AUTH_LEN];
	if (!a->keyed)
		return SV_ERR_INTERNAL;
	run_auth(a, run, auth);
	int r = tpm_counter_change_auth(a->tpm, auth, sizeof(auth));
	sodium_memzero(auth, sizeof(auth));
	if (r == SV_OK) {
		memcpy(a->run, run, ANCHOR_RUN_LEN);
		a->has_run = 1;
	}
	return r;
}

/* Attaches the main counter again after a detour to the unclean-boots counter. */
static int reattach(struct anchor *a)
{
	uint8_t name[TPM_NAME_MAX];
	size_t name_len = 0;
	int r = tpm_counter_attach(a->tpm, a->index, name, &name_len);
	if (r == SV_OK && a->has_run)
		r = present(a, a->run);
	return r;
}

int anchor_unclean_define(struct anchor *a, uint32_t index, uint64_t *nv_writes)
{
	if (!a->keyed)
		return SV_ERR_INTERNAL;
	int r = tpm_counter_define(a->tpm, index, 0);
	if (r != SV_OK)
		return r;
	*nv_writes += 1;
	if ((r = tpm_counter_increment(a->tpm)) == SV_OK) {
		*nv_writes += 1;
		r = tpm_counter_change_auth(a->tpm, a->unclean, AUTH_LEN);
	}
	if (r == SV_OK)
		*nv_writes += 1;
	return r;
}

int anchor_unclean_bump(struct anchor *a, uint32_t index, uint64_t *value)
{
	uint8_t name[TPM_NAME_MAX];
	size_t name_len = 0;
	if (!a->keyed)
		return SV_ERR_INTERNAL;
	int r = tpm_counter_attach(a->tpm, index, name, &name_len);
	if (r == SV_OK)
		r = tpm_counter_set_auth(a->tpm, a->unclean, AUTH_LEN);
	if (r == SV_OK)
		r = tpm_counter_increment(a->tpm);
	if (r == SV_OK)
		r = tpm_counter_read_owner(a->tpm, value);
	int b = reattach(a);
	return r != SV_OK ? r : b;
}

int anchor_unclean_read(struct anchor *a, uint32_t index, uint64_t *value)
{
	uint8_t name[TPM_NAME_MAX];
	size_t name_len = 0;
	int r = tpm_counter_attach(a->tpm, index, name, &name_len);
	if (r == SV_OK)
		r = tpm_counter_read_owner(a->tpm, value);
	int b = reattach(a);
	return r != SV_OK ? r : b;
}

int anchor_read(struct anchor *a, uint64_t *value)
{
	return tpm_counter_read(a->tpm, value);
}

int anchor_advance(struct anchor *a, uint64_t from, uint64_t to, uint64_t *done)
{
	uint64_t v = 0;
	int r = to > from ? SV_OK : SV_ERR_INTERNAL;
	/* Each increment's success is authenticated (its response HMAC in the salted session): it
	 * proves this run still held the counter, so the value moved by one. The read-back is the
	 * second check issue 11 asks for, against any writer we did not foresee; it goes through
	 * the cheap owner read, since a forged answer can only stop the vault. A forced flush
	 * (hybrid) is a run of increments up to the next multiple of M + 1: the HMAC session
	 * keeps the run's auth value off the bus for every one of them. */
	*done = 0;
	for (uint64_t i = from; r == SV_OK && i < to; i++)
		if ((r = tpm_counter_increment(a->tpm)) == SV_OK)
			(*done)++;
	if (r == SV_ERR_BUSY)
		return r; /* throttled for the whole retry budget: not executed, may be retried */
	if (r == SV_OK)
		r = tpm_counter_read_owner(a->tpm, &v);
	if (r == SV_ERR_AUTH || (r == SV_OK && v != to))
		return SV_ERR_SUPERSEDED;
	return r == SV_OK ? SV_OK : r == SV_ERR_INTERNAL ? r : SV_ERR_TPM;
}

int anchor_judge(uint64_t h, uint64_t from, uint64_t c, uint32_t m, uint64_t jlen,
                 uint64_t tail_bytes, int *verdict, char *why, size_t why_len)
{
	*verdict = ANCHOR_CLEAN;
	if (h == c)
		return SV_OK;
	if (from <= c && c < h) {
		*verdict = ANCHOR_ROLL_FORWARD;
		return SV_OK;
	}
	if (m != 0 && (c & m) == m && anchor_durable(m, c) <= h && h < c) {
		*verdict = ANCHOR_POWER_CUT;
		return SV_OK;
	}
	if (h < c) {
		if (tail_bytes > 0)
			snprintf(
			    why, why_len,
			    "journal is damaged at byte %llu (records after counter %llu fail "
			    "their MAC) while the TPM counter is %llu: committed changes are "
			    "lost; restore the latest state directory (see docs/operations.md)",
			    (unsigned long long)jlen, (unsigned long long)h, (unsigned long long)c);
		else
			snprintf(
			    why, why_len,
			    "state is older than the TPM: journal ends at counter %llu but the "
			    "TPM counter is %llu (rolled back or lost writes); restore the "
			    "latest state directory, never an older copy",
			    (unsigned long long)h, (unsigned long long)c);
		return SV_ERR_STATE;
	}
	snprintf(why, why_len,
	         "journal is at counter %llu, ahead of TPM counter %llu by more than its last "
	         "commit: this state directory does not belong to this TPM's counter",
	         (unsigned long long)h, (unsigned long long)c);
	return SV_ERR_STATE;
}
