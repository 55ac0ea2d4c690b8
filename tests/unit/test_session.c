/* Unit tests for enclave/session: capacity, lookup, close, expiry in creation order, rescue slots,
 * wiping on close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/err.h"
#include "common/recordkey.h"
#include "enclave/session.h"

static void test_capacity_and_lookup(void **state)
{
	struct session_table *t;
	struct session *s[17], *x;
	assert_int_equal(session_table_new(&t, 16, 4, 1000), 0);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(session_open(t, 100, &s[i]), 0);
		assert_int_equal(s[i]->phase, SESSION_KE2_SENT);
		s[i]->id[0] = (uint8_t)i;
	}
	assert_int_equal(session_count(t), 16);
	assert_int_equal(session_open(t, 100, &s[16]), SV_ERR_BUSY);
	assert_null(s[16]);
	for (int i = 0; i < 16; i++) {
		x = session_find(t, s[i]->sid, 100);
		assert_ptr_equal(x, s[i]);
		assert_int_equal(x->id[0], i);
	}
	uint8_t sid[SESSION_ID_LEN];
	memcpy(sid, s[3]->sid, sizeof(sid));
	session_close(t, s[3]);
	assert_null(session_find(t, sid, 100)); /* a closed id is never found again */
	session_close(t, s[3]);                 /* closing twice is harmless */
	assert_int_equal(session_count(t), 15);
	assert_int_equal(session_open(t, 100, &s[16]), 0);
	assert_memory_not_equal(s[16]->sid, sid, sizeof(sid));
	session_table_free(t);
}

/* An id from an earlier run of the same vault (same tag key, another run) is told apart from
 * this run's ids, from ids that were never given out, and from another vault's ids. */
static void test_earlier_run(void **state)
{
	struct session_table *old, *now, *other;
	struct session *a, *b, *c;
	uint8_t key[SESSION_TAG_KEY_LEN], key2[SESSION_TAG_KEY_LEN], sid[SESSION_ID_LEN];
	randombytes_buf(key, sizeof(key));
	memcpy(key2, key, sizeof(key2));
	key2[0] ^= 1;
	assert_int_equal(session_table_new(&old, 16, 4, 1000), 0);
	assert_int_equal(session_table_new(&now, 16, 4, 1000), 0);
	assert_int_equal(session_table_new(&other, 16, 4, 1000), 0);
	session_table_set_key(old, key);
	session_table_set_key(now, key);
	session_table_set_key(other, key2);
	assert_int_equal(session_open(old, 100, &a), 0);
	assert_int_equal(session_open(now, 100, &b), 0);
	assert_int_equal(session_open(other, 100, &c), 0);
	assert_int_equal(session_other_run(now, a->sid), 1);
	assert_null(session_find(now, a->sid, 100));
	assert_int_equal(session_other_run(now, b->sid), 0);
	assert_int_equal(session_other_run(old, b->sid), 1);
	assert_int_equal(session_other_run(now, c->sid), 0); /* another vault's */
	for (int i = 0; i < 1000; i++) {                     /* never given out */
		randombytes_buf(sid, sizeof(sid));
		assert_int_equal(session_other_run(now, sid), 0);
	}
	memcpy(sid, a->sid, sizeof(sid)); /* every byte of a tagged id matters */
	for (size_t i = 0; i < sizeof(sid); i++) {
		sid[i] ^= 0x10;
		assert_int_equal(session_other_run(now, sid), 0);
		sid[i] ^= 0x10;
	}
	session_table_free(old);
	session_table_free(now);
	session_table_free(other);
}

static void test_expiry_in_order(void **state)
{
	struct session_table *t;
	struct session *a, *b, *c;
	uint8_t sa[SESSION_ID_LEN], sb[SESSION_ID_LEN], sc[SESSION_ID_LEN];
	assert_int_equal(session_table_new(&t, 16, 16, 1000), 0);
	assert_int_equal(session_open(t, 0, &a), 0);
	memcpy(sa, a->sid, sizeof(sa));
	assert_int_equal(session_open(t, 500, &b), 0);
	memcpy(sb, b->sid, sizeof(sb));
	assert_int_equal(session_open(t, 900, &c), 0);
	memcpy(sc, c->sid, sizeof(sc));
	assert_non_null(session_find(t, sa, 999));
	assert_null(session_find(t, sa, 1000)); /* timeout reached: not found even before expire */
	assert_int_equal(session_expire(t, 1499), 1);
	assert_int_equal(session_count(t), 2);
	assert_non_null(session_find(t, sb, 1499));
	assert_int_equal(session_expire(t, 1900), 2);
	assert_int_equal(session_count(t), 0);
	assert_null(session_find(t, sc, 1900));
	session_table_free(t);
}

static void test_rescue_slots(void **state)
{
	struct session_table *t;
	struct session *s[3];
	struct session_rescue *r, *r2;
	assert_int_equal(session_table_new(&t, 16, 2, 1000), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(session_open(t, 1, &s[i]), 0);
	assert_null(session_rescue_of(t, s[0]));
	assert_int_equal(session_rescue_attach(t, s[0], &r), 0);
	assert_int_equal(session_rescue_attach(t, s[0], &r2), SV_ERR_INTERNAL); /* one per login */
	memset(r->record, 0xaa, sizeof(r->record));
	r->blob_len = 3;
	assert_ptr_equal(session_rescue_of(t, s[0]), r);
	assert_int_equal(session_rescue_attach(t, s[1], &r2), 0);
	assert_false(session_rescue_available(t, (const uint8_t *)"x", 1));
	assert_int_equal(session_rescue_attach(t, s[2], &r2), SV_ERR_BUSY);
	assert_int_equal(session_rescue_count(t), 2);
	session_close(t, s[0]); /* frees and wipes the slot */
	static const uint8_t zero[STORE_RECORD_LEN];
	assert_memory_equal(r->record, zero, sizeof(zero));
	assert_int_equal(r->blob_len, 0);
	assert_true(session_rescue_available(t, (const uint8_t *)"x", 1));
	assert_int_equal(session_rescue_attach(t, s[2], &r2), 0);
	assert_ptr_equal(r2, r);
	session_table_free(t);
}

/* Sets s's record key to the tokens-mode key of (tenant, sub) (common/recordkey.h). */
static void set_key(struct session *s, const char *tenant, const char *sub)
{
	size_t n = 0;
	assert_int_equal(
	    record_key_tenant(tenant, (const uint8_t *)sub, strlen(sub), s->id, sizeof(s->id), &n),
	    0);
	s->id_len = (uint8_t)n;
}

static void test_rescue_tenant_share(void **state)
{
	/* 4 rescue slots: a tenant may hold 2; open-mode identifiers share the whole pool */
	struct session_table *t;
	struct session *a[3], *b, *o;
	struct session_rescue *r;
	uint8_t bkey[STORE_ID_MAX];
	size_t bkey_len;
	assert_int_equal(session_table_new(&t, 16, 4, 1000), 0);
	assert_int_equal(session_rescue_share(t), 2);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(session_open(t, 1, &a[i]), 0);
		set_key(a[i], "acme", i == 0 ? "u0" : i == 1 ? "u1" : "u2");
	}
	assert_int_equal(session_rescue_attach(t, a[0], &r), 0);
	assert_true(session_rescue_available(t, a[2]->id, a[2]->id_len));
	assert_int_equal(session_rescue_attach(t, a[1], &r), 0);
	/* acme holds its share: refused though 2 slots are free */
	assert_false(session_rescue_available(t, a[2]->id, a[2]->id_len));
	/* a realm record of acme's (0x01 | its record key) counts for acme too */
	uint8_t rkey[STORE_ID_MAX];
	size_t rkey_len = 0;
	assert_int_equal(record_key_realm(a[2]->id, a[2]->id_len, rkey, sizeof(rkey), &rkey_len),
	                 0);
	assert_false(session_rescue_available(t, rkey, rkey_len));
	assert_int_equal(session_rescue_attach(t, a[2], &r), SV_ERR_BUSY);
	assert_null(session_rescue_of(t, a[2]));
	/* another tenant, even one whose name extends acme's, is not charged for acme's */
	assert_int_equal(
	    record_key_tenant("acmeco", (const uint8_t *)"u0", 2, bkey, sizeof(bkey), &bkey_len),
	    0);
	assert_true(session_rescue_available(t, bkey, bkey_len));
	assert_int_equal(record_key_realm(bkey, bkey_len, rkey, sizeof(rkey), &rkey_len), 0);
	assert_true(session_rescue_available(t, rkey, rkey_len));
	assert_int_equal(session_open(t, 1, &b), 0);
	set_key(b, "globex", "v");
	assert_int_equal(session_rescue_attach(t, b, &r), 0);
	/* an open-mode identifier takes the last free slot */
	assert_int_equal(session_open(t, 1, &o), 0);
	o->id[0] = 'x';
	o->id_len = 1;
	assert_int_equal(session_rescue_attach(t, o, &r), 0);
	assert_int_equal(session_rescue_count(t), 4);
	/* closing one of acme's gives acme a slot back, once one is free */
	session_close(t, a[0]);
	assert_true(session_rescue_available(t, a[2]->id, a[2]->id_len));
	assert_int_equal(session_rescue_attach(t, a[2], &r), 0);
	session_table_free(t);
	/* a pool of 1: the one slot is anyone's */
	assert_int_equal(session_table_new(&t, 16, 1, 1000), 0);
	assert_int_equal(session_rescue_share(t), 1);
	assert_int_equal(session_open(t, 1, &a[0]), 0);
	set_key(a[0], "acme", "u0");
	assert_int_equal(session_rescue_attach(t, a[0], &r), 0);
	session_table_free(t);
}

static void close_odd(struct session_table *t, struct session *s, void *arg)
{
	int *n = arg;
	if (s->id[0] % 2)
		session_close(t, s);
	(*n)++;
}

static void test_foreach_may_close(void **state)
{
	struct session_table *t;
	struct session *s;
	int n = 0;
	assert_int_equal(session_table_new(&t, 16, 1, 1000), 0);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(session_open(t, 1, &s), 0);
		s->id[0] = (uint8_t)i;
	}
	session_foreach(t, close_odd, &n);
	assert_int_equal(n, 10);
	assert_int_equal(session_count(t), 5);
	session_table_free(t);
}

static void test_bounds(void **state)
{
	struct session_table *t;
	assert_int_equal(session_table_new(&t, 0, 1, 1000), SV_ERR_RANGE);
	assert_int_equal(session_table_new(&t, 16, 0, 1000), SV_ERR_RANGE);
	assert_int_equal(session_table_new(&t, 16, 17, 1000), SV_ERR_RANGE);
	assert_int_equal(session_table_new(&t, 16, 1, 0), SV_ERR_RANGE);
	assert_null(t);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_capacity_and_lookup),
	    cmocka_unit_test(test_earlier_run),
	    cmocka_unit_test(test_expiry_in_order),
	    cmocka_unit_test(test_rescue_slots),
	    cmocka_unit_test(test_rescue_tenant_share),
	    cmocka_unit_test(test_foreach_may_close),
	    cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
