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
	int keyed;
	uint8_t *key; /* sodium_malloc: run-auth derivation key */
};

static const char kdf_ctx[crypto_kdf_CONTEXTBYTES] = {'s', 'v', 'a', 'n', 'c', 'h', 'r', '1'};

int anchor_new(struct anchor **out, struct tpm *tpm, uint32_t index)
{
	struct anchor *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return SV_ERR_NOMEM;
	a->key = sodium_malloc(crypto_generichash_KEYBYTES);
	if (a->key == NULL) {
		free(a);
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
	sodium_free(a->key);
	free(a);
}

void anchor_set_vault_key(struct anchor *a, const uint8_t vault_key[TPM_VAULT_KEY_LEN])
{
	crypto_kdf_derive_from_key(a->key, crypto_generichash_KEYBYTES, 1, kdf_ctx, vault_key);
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
	return r;
}

int anchor_define(struct anchor *a, const uint8_t run[ANCHOR_RUN_LEN], uint64_t *value,
                  uint8_t name[TPM_NAME_MAX], size_t *name_len, uint64_t *nv_writes)
{
	int r = tpm_counter_define(a->tpm, a->index);
	if (r != SV_OK)
		return r;
	*nv_writes = 1;
	/* A new counter is unreadable until its first increment (with the empty auth value). */
	if ((r = tpm_counter_increment(a->tpm)) != SV_OK)
		return r;
	*nv_writes += 1;
	if ((r = anchor_take(a, run)) != SV_OK)
		return r;
	*nv_writes += 1;
	if ((r = anchor_read(a, value)) != SV_OK)
		return r;
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
	return r;
}

int anchor_read(struct anchor *a, uint64_t *value)
{
	return tpm_counter_read(a->tpm, value);
}

int anchor_advance(struct anchor *a, uint64_t expect)
{
	uint64_t v = 0;
	/* The increment's success is authenticated (its response HMAC in the salted session): it
	 * proves this run still held the counter, so the value is the previous one plus one. The
	 * read-back is the second check issue 11 asks for, against any writer we did not foresee;
	 * it goes through the cheap owner read, since a forged answer can only stop the vault. */
	int r = tpm_counter_increment(a->tpm);
	if (r == SV_ERR_BUSY)
		return r; /* throttled for the whole retry budget: not executed, may be retried */
	if (r == SV_OK)
		r = tpm_counter_read_owner(a->tpm, &v);
	if (r == SV_ERR_AUTH || (r == SV_OK && v != expect))
		return SV_ERR_SUPERSEDED;
	return r == SV_OK ? SV_OK : SV_ERR_TPM;
}

int anchor_judge(uint64_t h, uint64_t c, uint64_t jlen, uint64_t tail_bytes, int *roll_forward,
                 char *why, size_t why_len)
{
	*roll_forward = 0;
	if (h == c)
		return SV_OK;
	if (h == c + 1) {
		*roll_forward = 1;
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
	         "journal is at counter %llu, ahead of TPM counter %llu by more than one: this "
	         "state directory does not belong to this TPM's counter",
	         (unsigned long long)h, (unsigned long long)c);
	return SV_ERR_STATE;
}
