/* Phantom guess counters for unknown identifiers: keyed tags in a 4-way set-associative table. */
#include "enclave/phantom.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"

#define WAYS    4
#define TAG_LEN 16

struct slot {
	uint8_t tag[TAG_LEN];
	uint64_t last_ms;
	uint64_t charged_at; /* counter of the last charge's commit, as for a real user */
	uint8_t used;        /* 0: slot empty */
};

struct phantom_table {
	struct slot *slots; /* nsets * WAYS */
	size_t nsets;
	uint8_t key[crypto_generichash_KEYBYTES];
};

int phantom_table_new(struct phantom_table **out, size_t cap)
{
	struct phantom_table *t;

	*out = NULL;
	if (cap == 0 || cap > ((size_t)1 << 30))
		return SV_ERR_RANGE;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return SV_ERR_NOMEM;
	for (t->nsets = 1; t->nsets * WAYS < cap; t->nsets *= 2)
		;
	if ((t->slots = calloc(t->nsets * WAYS, sizeof(*t->slots))) == NULL) {
		free(t);
		return SV_ERR_NOMEM;
	}
	/* Touch every page now: a large calloc is mapped lazily, and the first charge of an unknown
	 * identifier would otherwise pay a page fault (~10 us) that a known identifier never pays.
	 */
	sodium_memzero(t->slots, t->nsets * WAYS * sizeof(*t->slots)); /* not elided */
	randombytes_buf(t->key, sizeof(t->key));
	*out = t;
	return SV_OK;
}

void phantom_table_free(struct phantom_table *t)
{
	if (t == NULL)
		return;
	sodium_memzero(t->slots, t->nsets * WAYS * sizeof(*t->slots));
	free(t->slots);
	sodium_memzero(t->key, sizeof(t->key));
	free(t);
}

/* The set and the tag of an identifier. */
static struct slot *set_of(const struct phantom_table *t, const uint8_t *id, size_t id_len,
                           uint8_t tag[TAG_LEN])
{
	uint64_t h;
	/* crypto_generichash only fails for out-of-range sizes, which are constants here. */
	(void)crypto_generichash(tag, TAG_LEN, id, id_len, t->key, sizeof(t->key));
	memcpy(&h, tag, sizeof(h));
	return &t->slots[(h & (t->nsets - 1)) * WAYS];
}

static struct slot *find(struct slot *set, const uint8_t tag[TAG_LEN])
{
	for (int i = 0; i < WAYS; i++)
		if (set[i].used != 0 && memcmp(set[i].tag, tag, TAG_LEN) == 0)
			return &set[i];
	return NULL;
}

unsigned phantom_used(const struct phantom_table *t, const uint8_t *id, size_t id_len)
{
	uint8_t tag[TAG_LEN];
	struct slot *s = find(set_of(t, id, id_len, tag), tag);
	return s != NULL ? s->used : 0;
}

unsigned phantom_charge(struct phantom_table *t, const uint8_t *id, size_t id_len, uint64_t now_ms)
{
	uint8_t tag[TAG_LEN];
	struct slot *set = set_of(t, id, id_len, tag);
	struct slot *s = find(set, tag);

	if (s == NULL) {
		s = &set[0];
		for (int i = 0; i < WAYS; i++) {
			if (set[i].used == 0) {
				s = &set[i];
				break;
			}
			if (set[i].last_ms < s->last_ms)
				s = &set[i];
		}
		memcpy(s->tag, tag, TAG_LEN);
		s->used = 0;
		s->charged_at = 0;
	}
	if (s->used < UINT8_MAX)
		s->used++;
	s->last_ms = now_ms;
	return s->used;
}

uint64_t phantom_charged_at(const struct phantom_table *t, const uint8_t *id, size_t id_len)
{
	uint8_t tag[TAG_LEN];
	struct slot *s = find(set_of(t, id, id_len, tag), tag);
	return s != NULL ? s->charged_at : 0;
}

void phantom_set_charged_at(struct phantom_table *t, const uint8_t *id, size_t id_len,
                            uint64_t counter)
{
	uint8_t tag[TAG_LEN];
	struct slot *s = find(set_of(t, id, id_len, tag), tag);
	if (s != NULL)
		s->charged_at = counter;
}

void phantom_forget(struct phantom_table *t, const uint8_t *id, size_t id_len)
{
	uint8_t tag[TAG_LEN];
	struct slot *s = find(set_of(t, id, id_len, tag), tag);
	if (s != NULL)
		memset(s, 0, sizeof(*s));
}
