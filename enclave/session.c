/* Pending logins: fixed-capacity table in sodium_malloc'd memory, hash index, creation-order list.
 */
#include "enclave/session.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "common/recordkey.h"

#define NIL UINT32_MAX

struct session_table {
	struct session *e; /* cap entries, sodium_malloc'd */
	uint32_t *bucket;  /* nbuckets heads of hash chains */
	size_t cap, nbuckets, count;
	struct session_rescue *r; /* rescue_cap slots, sodium_malloc'd */
	uint32_t *r_free;         /* stack of free slot indices */
	uint32_t *r_owner;        /* the entry holding each slot, NIL when free */
	size_t rescue_cap, r_nfree;
	uint32_t free_head;
	uint32_t oldest, newest;
	uint32_t foldest, fnewest; /* the fake ones */
	uint64_t timeout_ms, evicted;
	uint8_t run[SESSION_RUN_LEN];         /* random per run: bytes 8..11 of every id */
	uint8_t tag_key[SESSION_TAG_KEY_LEN]; /* bytes 12..15 of every id: a MAC of bytes 0..11 */
};

static size_t bucket_of(const struct session_table *t, const uint8_t sid[SESSION_ID_LEN])
{
	/* Session ids are random and chosen by the enclave, so their bytes are a good hash. */
	uint64_t h;
	memcpy(&h, sid, sizeof(h));
	return (size_t)(h & (t->nbuckets - 1));
}

int session_table_new(struct session_table **out, size_t cap, size_t rescue_cap,
                      uint64_t timeout_ms)
{
	struct session_table *t = NULL;
	int err = SV_ERR_NOMEM;

	*out = NULL;
	if (cap == 0 || cap >= NIL || rescue_cap == 0 || rescue_cap > cap || timeout_ms == 0)
		return SV_ERR_RANGE;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto out;
	t->cap = cap;
	t->timeout_ms = timeout_ms;
	randombytes_buf(t->run, sizeof(t->run));
	randombytes_buf(t->tag_key, sizeof(t->tag_key)); /* until session_table_set_key */
	for (t->nbuckets = 16; t->nbuckets < cap; t->nbuckets *= 2)
		;
	if ((t->e = sodium_allocarray(cap, sizeof(*t->e))) == NULL)
		goto out;
	memset(t->e, 0, cap * sizeof(*t->e));
	if ((t->bucket = malloc(t->nbuckets * sizeof(*t->bucket))) == NULL)
		goto out;
	for (size_t i = 0; i < t->nbuckets; i++)
		t->bucket[i] = NIL;
	for (size_t i = 0; i < cap; i++)
		t->e[i].hnext = i + 1 < cap ? (uint32_t)(i + 1) : NIL;
	t->rescue_cap = rescue_cap;
	if ((t->r = sodium_allocarray(rescue_cap, sizeof(*t->r))) == NULL)
		goto out;
	memset(t->r, 0, rescue_cap * sizeof(*t->r));
	if ((t->r_free = malloc(rescue_cap * sizeof(*t->r_free))) == NULL ||
	    (t->r_owner = malloc(rescue_cap * sizeof(*t->r_owner))) == NULL)
		goto out;
	for (size_t i = 0; i < rescue_cap; i++) {
		t->r_free[i] = (uint32_t)(rescue_cap - 1 - i);
		t->r_owner[i] = NIL;
	}
	t->r_nfree = rescue_cap;
	t->free_head = 0;
	t->oldest = t->newest = NIL;
	t->foldest = t->fnewest = NIL;
	*out = t;
	t = NULL;
	err = SV_OK;
out:
	session_table_free(t);
	return err;
}

void session_table_free(struct session_table *t)
{
	if (t == NULL)
		return;
	if (t->e != NULL)
		sodium_free(t->e); /* wipes */
	if (t->r != NULL)
		sodium_free(t->r);
	free(t->bucket);
	free(t->r_free);
	free(t->r_owner);
	free(t);
}

static void unlink_hash(struct session_table *t, uint32_t idx)
{
	uint32_t *p = &t->bucket[bucket_of(t, t->e[idx].sid)];
	while (*p != NIL && *p != idx)
		p = &t->e[*p].hnext;
	if (*p == idx)
		*p = t->e[idx].hnext;
}

static void unlink_age(struct session_table *t, uint32_t idx)
{
	struct session *s = &t->e[idx];
	if (s->older != NIL)
		t->e[s->older].newer = s->newer;
	else
		t->oldest = s->newer;
	if (s->newer != NIL)
		t->e[s->newer].older = s->older;
	else
		t->newest = s->older;
}

static void unlink_fake(struct session_table *t, uint32_t idx)
{
	struct session *s = &t->e[idx];
	if (s->folder != NIL)
		t->e[s->folder].fnewer = s->fnewer;
	else
		t->foldest = s->fnewer;
	if (s->fnewer != NIL)
		t->e[s->fnewer].folder = s->folder;
	else
		t->fnewest = s->folder;
}

void session_mark_fake(struct session_table *t, struct session *s)
{
	uint32_t idx = (uint32_t)(s - t->e);
	if (s->phase == SESSION_FREE || s->fake)
		return;
	s->fake = 1;
	s->fnewer = NIL;
	s->folder = t->fnewest;
	if (t->fnewest != NIL)
		t->e[t->fnewest].fnewer = idx;
	else
		t->foldest = idx;
	t->fnewest = idx;
}

uint64_t session_evicted(const struct session_table *t)
{
	return t->evicted;
}

void session_close(struct session_table *t, struct session *s)
{
	uint32_t idx = (uint32_t)(s - t->e);
	if (s->phase == SESSION_FREE)
		return;
	unlink_hash(t, idx);
	unlink_age(t, idx);
	if (s->fake)
		unlink_fake(t, idx);
	if (s->rescue != SESSION_NO_RESCUE) {
		sodium_memzero(&t->r[s->rescue], sizeof(t->r[s->rescue]));
		t->r_owner[s->rescue] = NIL;
		t->r_free[t->r_nfree++] = s->rescue;
	}
	sodium_memzero(s, sizeof(*s));
	s->hnext = t->free_head;
	t->free_head = idx;
	t->count--;
}

static int expired(const struct session_table *t, const struct session *s, uint64_t now_ms)
{
	return now_ms >= s->created_ms && now_ms - s->created_ms >= t->timeout_ms;
}

size_t session_expire(struct session_table *t, uint64_t now_ms)
{
	size_t n = 0;
	while (t->oldest != NIL && expired(t, &t->e[t->oldest], now_ms)) {
		session_close(t, &t->e[t->oldest]);
		n++;
	}
	return n;
}

struct session *session_find(struct session_table *t, const uint8_t sid[SESSION_ID_LEN],
                             uint64_t now_ms)
{
	for (uint32_t i = t->bucket[bucket_of(t, sid)]; i != NIL; i = t->e[i].hnext) {
		struct session *s = &t->e[i];
		if (sodium_memcmp(s->sid, sid, SESSION_ID_LEN) == 0)
			return expired(t, s, now_ms) ? NULL : s;
	}
	return NULL;
}

#define SID_RANDOM_LEN (SESSION_ID_LEN - SESSION_RUN_LEN - SESSION_TAG_LEN)

void session_table_set_key(struct session_table *t, const uint8_t key[SESSION_TAG_KEY_LEN])
{
	memcpy(t->tag_key, key, SESSION_TAG_KEY_LEN);
}

/* The tag of an id: BLAKE2b keyed with the vault's tag key over its random bytes and run. */
static void sid_tag(const struct session_table *t, const uint8_t sid[SESSION_ID_LEN],
                    uint8_t tag[SESSION_TAG_LEN])
{
	uint8_t full[16]; /* BLAKE2b's shortest output */
	crypto_generichash(full, sizeof(full), sid, SID_RANDOM_LEN + SESSION_RUN_LEN, t->tag_key,
	                   sizeof(t->tag_key));
	memcpy(tag, full, SESSION_TAG_LEN);
}

int session_other_run(const struct session_table *t, const uint8_t sid[SESSION_ID_LEN])
{
	uint8_t tag[SESSION_TAG_LEN];
	sid_tag(t, sid, tag);
	if (sodium_memcmp(tag, sid + SID_RANDOM_LEN + SESSION_RUN_LEN, SESSION_TAG_LEN) != 0)
		return 0; /* not an id this vault gave out */
	return sodium_memcmp(sid + SID_RANDOM_LEN, t->run, SESSION_RUN_LEN) != 0;
}

int session_open(struct session_table *t, uint64_t now_ms, struct session **out)
{
	uint8_t sid[SESSION_ID_LEN];

	*out = NULL;
	session_expire(t, now_ms);
	if (t->free_head == NIL && t->foldest != NIL) {
		/* an unknown identifier's login can never authenticate: it goes before a real one
		 */
		session_close(t, &t->e[t->foldest]);
		t->evicted++;
	}
	if (t->free_head == NIL)
		return SV_ERR_BUSY;
	/* 64 random bits among at most pending-login-max live ids of this run: a collision is not
	 * a practical event, but an id must name one session, so draw again rather than rely on
	 * that. */
	memcpy(sid + SID_RANDOM_LEN, t->run, SESSION_RUN_LEN);
	do {
		randombytes_buf(sid, SID_RANDOM_LEN);
		sid_tag(t, sid, sid + SID_RANDOM_LEN + SESSION_RUN_LEN);
	} while (session_find(t, sid, now_ms) != NULL);

	uint32_t idx = t->free_head;
	struct session *s = &t->e[idx];
	t->free_head = s->hnext;
	memset(s, 0, sizeof(*s));
	memcpy(s->sid, sid, SESSION_ID_LEN);
	s->phase = SESSION_KE2_SENT;
	s->created_ms = now_ms;
	s->rescue = SESSION_NO_RESCUE;
	size_t b = bucket_of(t, sid);
	s->hnext = t->bucket[b];
	t->bucket[b] = idx;
	s->older = t->newest;
	s->newer = NIL;
	if (t->newest != NIL)
		t->e[t->newest].newer = idx;
	else
		t->oldest = idx;
	t->newest = idx;
	t->count++;
	*out = s;
	return SV_OK;
}

size_t session_rescue_share(const struct session_table *t)
{
	return t->rescue_cap / 2 > 0 ? t->rescue_cap / 2 : 1;
}

/* Whether the tenant of record key id may take one more rescue slot. O(rescue slots), paid only
 * by a login on its last guess. */
static int under_share(const struct session_table *t, const uint8_t *id, size_t id_len)
{
	const uint8_t *tenant, *other;
	/* a realm record key (common/recordkey.h) counts for the tenant of its /v1 key */
	size_t plen = record_key_tenant_of(id, id_len, &tenant), held = 0;
	if (plen == 0)
		return 1; /* open mode: one pool */
	for (size_t i = 0; i < t->rescue_cap; i++) {
		const struct session *o;
		if (t->r_owner[i] == NIL)
			continue;
		o = &t->e[t->r_owner[i]];
		if (record_key_tenant_of(o->id, o->id_len, &other) == plen &&
		    memcmp(other, tenant, plen) == 0)
			held++;
	}
	return held < session_rescue_share(t);
}

int session_rescue_attach(struct session_table *t, struct session *s, struct session_rescue **out)
{
	*out = NULL;
	if (s->phase == SESSION_FREE || s->rescue != SESSION_NO_RESCUE)
		return SV_ERR_INTERNAL;
	if (!session_rescue_available(t, s->id, s->id_len))
		return SV_ERR_BUSY;
	s->rescue = t->r_free[--t->r_nfree];
	t->r_owner[s->rescue] = (uint32_t)(s - t->e);
	*out = &t->r[s->rescue];
	memset(*out, 0, sizeof(**out));
	(*out)->in_use = 1;
	return SV_OK;
}

struct session_rescue *session_rescue_of(struct session_table *t, const struct session *s)
{
	return s->rescue != SESSION_NO_RESCUE ? &t->r[s->rescue] : NULL;
}

int session_rescue_available(const struct session_table *t, const uint8_t *id, size_t id_len)
{
	return t->r_nfree > 0 && under_share(t, id, id_len);
}

size_t session_rescue_count(const struct session_table *t)
{
	return t->rescue_cap - t->r_nfree;
}

void session_foreach(struct session_table *t,
                     void (*fn)(struct session_table *, struct session *, void *), void *arg)
{
	uint32_t i = t->oldest;
	while (i != NIL) {
		uint32_t next = t->e[i].newer;
		fn(t, &t->e[i], arg);
		i = next;
	}
}

size_t session_count(const struct session_table *t)
{
	return t->count;
}

size_t session_capacity(const struct session_table *t)
{
	return t->cap;
}
