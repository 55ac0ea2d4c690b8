/*
 * An in-memory fake of the store functions the vault uses (enclave/store.h): the same contract
 * (charge destroys at the limit, tombstones, staged changes counted until store_commit), no TPM,
 * no files. For unit tests and fuzz targets only. It DEFINES the store_* functions: include it in
 * exactly one translation unit of a program, and link no state archive into that program.
 */
#ifndef SV_TESTS_LIB_FAKE_STORE_H
#define SV_TESTS_LIB_FAKE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "enclave/store.h"

#ifndef FAKE_USERS
#define FAKE_USERS 32
#endif

struct fake_user {
	int live;
	uint8_t id[STORE_ID_MAX];
	size_t id_len;
	uint8_t record[STORE_RECORD_LEN];
	uint8_t blob[STORE_BLOB_MAX];
	size_t blob_len;
	unsigned limit, used;
	int destroyed;
};

struct store {
	struct store_secrets sec;
	struct fake_user u[FAKE_USERS];
	size_t staged; /* changes since the last commit */
	size_t noops;  /* store_stage_noop calls */
	size_t charges;
	/* the hybrid scheme's flush rule, for the vault's unknown-identifier path: commits under
	 * counter values above `durable` are not on NV; no_flush makes a forced flush refused */
	uint64_t counter, durable;
	int hybrid, no_flush;
	size_t flush_requests;
};

static struct fake_user *fake_find(struct store *s, const uint8_t *id, size_t id_len)
{
	for (int i = 0; i < FAKE_USERS; i++)
		if (s->u[i].live && s->u[i].id_len == id_len && memcmp(s->u[i].id, id, id_len) == 0)
			return &s->u[i];
	return NULL;
}

const struct store_secrets *store_secrets(const struct store *s)
{
	return &s->sec;
}

uint64_t store_records(const struct store *s)
{
	uint64_t n = 0;
	for (int i = 0; i < FAKE_USERS; i++)
		n += s->u[i].live != 0;
	return n;
}

int store_lookup(const struct store *s, const uint8_t *id, size_t id_len,
                 struct store_user_view *out)
{
	struct fake_user *u = fake_find((struct store *)s, id, id_len);
	if (u == NULL)
		return SV_ERR_NOTFOUND;
	out->id = u->id;
	out->id_len = u->id_len;
	out->record = u->destroyed ? NULL : u->record;
	out->blob = u->destroyed ? NULL : u->blob;
	out->blob_len = u->destroyed ? 0 : u->blob_len;
	out->guess_limit = u->limit;
	out->guesses_used = u->used;
	out->destroyed = u->destroyed;
	return SV_OK;
}

int store_put_user(struct store *s, const uint8_t *id, size_t id_len,
                   const uint8_t record[static STORE_RECORD_LEN], const uint8_t *blob,
                   size_t blob_len, unsigned guess_limit)
{
	struct fake_user *u = fake_find(s, id, id_len);
	for (int i = 0; u == NULL && i < FAKE_USERS; i++)
		if (!s->u[i].live)
			u = &s->u[i];
	if (u == NULL)
		return SV_ERR_BUSY; /* the fake is full */
	if (id_len < 1 || id_len > STORE_ID_MAX || blob_len > STORE_BLOB_MAX || guess_limit < 1 ||
	    guess_limit > 255)
		return SV_ERR_RANGE;
	memset(u, 0, sizeof(*u));
	u->live = 1;
	memcpy(u->id, id, id_len);
	u->id_len = id_len;
	memcpy(u->record, record, STORE_RECORD_LEN);
	memcpy(u->blob, blob, blob_len);
	u->blob_len = blob_len;
	u->limit = guess_limit;
	s->staged++;
	return SV_OK;
}

int store_charge_guess(struct store *s, const uint8_t *id, size_t id_len, unsigned *left)
{
	struct fake_user *u = fake_find(s, id, id_len);
	if (u == NULL)
		return SV_ERR_NOTFOUND;
	if (u->destroyed)
		return SV_ERR_LOCKED;
	u->used++;
	if (u->used >= u->limit) {
		u->destroyed = 1;
		sodium_memzero(u->record, sizeof(u->record));
		sodium_memzero(u->blob, sizeof(u->blob));
		u->blob_len = 0;
	}
	*left = u->limit - u->used;
	s->staged++;
	s->charges++;
	return SV_OK;
}

int store_reset_guesses(struct store *s, const uint8_t *id, size_t id_len)
{
	struct fake_user *u = fake_find(s, id, id_len);
	if (u == NULL)
		return SV_ERR_NOTFOUND;
	if (u->destroyed)
		return SV_ERR_LOCKED;
	u->used = 0;
	s->staged++;
	return SV_OK;
}

int store_delete_user(struct store *s, const uint8_t *id, size_t id_len)
{
	struct fake_user *u = fake_find(s, id, id_len);
	if (u == NULL)
		return SV_ERR_NOTFOUND;
	memset(u, 0, sizeof(*u));
	s->staged++;
	return SV_OK;
}

int store_durable(const struct store *s, uint64_t c)
{
	return !s->hybrid || c <= s->durable;
}

uint64_t store_counter(const struct store *s)
{
	return s->counter;
}

void store_set_flush_allowed(struct store *s, int ok)
{
	s->no_flush = !ok;
}

int store_require_flush(struct store *s)
{
	if (s->hybrid && s->no_flush)
		return SV_ERR_BUSY;
	s->flush_requests++;
	return SV_OK;
}

int store_stage_noop(struct store *s)
{
	s->staged++;
	s->noops++;
	return SV_OK;
}

size_t store_pending(const struct store *s)
{
	return s->staged;
}

int store_commit(struct store *s)
{
	if (s->staged > 0)
		s->counter++;
	if (s->flush_requests > 0)
		s->durable = s->counter;
	s->flush_requests = 0;
	s->staged = 0;
	return SV_OK;
}

#endif
