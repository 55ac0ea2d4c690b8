/* The per-identifier login rate: a fixed table of GCRA entries under keyed tags (idlimit.h). */
#include "enclave/idlimit.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"

#define TAG_LEN 16

struct entry {
	uint8_t tag[TAG_LEN];
	uint64_t full_ms; /* the bucket is full again from this time on; 0: a free entry */
};

struct idlimit {
	struct entry *e;
	size_t cap;
	uint64_t interval_ms;  /* one login per this, on average */
	uint64_t tolerance_ms; /* (burst - 1) intervals: how far ahead full_ms may run */
	uint8_t key[crypto_generichash_KEYBYTES];
	uint64_t refused, refused_full;
};

int idlimit_new(struct idlimit **out, size_t cap, unsigned per_min, unsigned burst)
{
	*out = NULL;
	if (cap < 64 || (cap & (cap - 1)) != 0 || burst < 1 || per_min > 60000)
		return SV_ERR_RANGE;
	struct idlimit *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return SV_ERR_NOMEM;
	if (per_min > 0) {
		if ((t->e = calloc(cap, sizeof(*t->e))) == NULL) {
			free(t);
			return SV_ERR_NOMEM;
		}
		t->cap = cap;
		t->interval_ms = 60000 / per_min;
		t->tolerance_ms = (uint64_t)(burst - 1) * t->interval_ms;
	}
	randombytes_buf(t->key, sizeof(t->key));
	*out = t;
	return SV_OK;
}

void idlimit_free(struct idlimit *t)
{
	if (t == NULL)
		return;
	free(t->e);
	sodium_memzero(t, sizeof(*t));
	free(t);
}

/* BLAKE2b under the run's key over u16 tenant_len | tenant | u16 id_len | id. */
static void tag_of(const struct idlimit *t, const struct idlimit_who *who, uint8_t tag[TAG_LEN])
{
	crypto_generichash_state st;
	uint8_t len[2];
	crypto_generichash_init(&st, t->key, sizeof(t->key), TAG_LEN);
	len[0] = (uint8_t)(who->tenant_len >> 8);
	len[1] = (uint8_t)who->tenant_len;
	crypto_generichash_update(&st, len, sizeof(len));
	if (who->tenant_len > 0)
		crypto_generichash_update(&st, who->tenant, who->tenant_len);
	len[0] = (uint8_t)(who->id_len >> 8);
	len[1] = (uint8_t)who->id_len;
	crypto_generichash_update(&st, len, sizeof(len));
	crypto_generichash_update(&st, who->id, who->id_len);
	crypto_generichash_final(&st, tag, TAG_LEN);
}

int idlimit_check(struct idlimit *t, const struct idlimit_who *who, uint64_t now_ms, size_t *slot,
                  unsigned *retry_s)
{
	uint8_t tag[TAG_LEN];
	uint64_t first;
	size_t free_slot = SIZE_MAX;

	*slot = SIZE_MAX;
	if (t->e == NULL)
		return SV_OK; /* no limit */
	tag_of(t, who, tag);
	memcpy(&first, tag, sizeof(first));
	for (size_t i = 0; i < IDLIMIT_PROBES; i++) {
		size_t k = (size_t)(first + i) & (t->cap - 1);
		struct entry *e = &t->e[k];
		if (e->full_ms != 0 && sodium_memcmp(e->tag, tag, TAG_LEN) == 0) {
			uint64_t tat = e->full_ms > now_ms ? e->full_ms : now_ms;
			if (tat - now_ms > t->tolerance_ms) {
				uint64_t wait = tat - t->tolerance_ms - now_ms;
				*retry_s = (unsigned)((wait + 999) / 1000);
				t->refused++;
				return SV_ERR_BUSY;
			}
			*slot = k;
			return SV_OK;
		}
		/* a full bucket is as good as none: its entry may be reused */
		if (free_slot == SIZE_MAX && e->full_ms <= now_ms)
			free_slot = k;
	}
	if (free_slot == SIZE_MAX) {
		*retry_s = 1;
		t->refused_full++;
		return SV_ERR_BUSY;
	}
	*slot = free_slot;
	return SV_OK;
}

void idlimit_charge(struct idlimit *t, const struct idlimit_who *who, size_t slot, uint64_t now_ms)
{
	if (t->e == NULL || slot >= t->cap)
		return;
	struct entry *e = &t->e[slot];
	uint8_t tag[TAG_LEN];
	tag_of(t, who, tag);
	if (e->full_ms == 0 || sodium_memcmp(e->tag, tag, TAG_LEN) != 0 || e->full_ms < now_ms) {
		memcpy(e->tag, tag, TAG_LEN);
		e->full_ms = now_ms;
	}
	e->full_ms += t->interval_ms;
	if (e->full_ms == 0)
		e->full_ms = 1;
}

uint64_t idlimit_refused(const struct idlimit *t)
{
	return t->refused;
}

uint64_t idlimit_refused_full(const struct idlimit *t)
{
	return t->refused_full;
}

size_t idlimit_capacity(const struct idlimit *t)
{
	return t->cap;
}
