/* Unit tests for enclave/idlimit: the per-identifier login rate (GCRA), its Retry-After, and the
 * table's eviction rule: only full buckets are reused, so nobody can reset another identifier's
 * bucket by pushing it out, and a table without a reusable entry refuses (fail closed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/err.h"
#include "enclave/idlimit.h"

static int try(struct idlimit *t, const char *id, uint64_t now, unsigned *retry)
{
	size_t slot;
	unsigned r = 0;
	struct idlimit_who who = {.id = (const uint8_t *)id, .id_len = strlen(id)};
	int err = idlimit_check(t, &who, now, &slot, &r);
	if (err == 0)
		idlimit_charge(t, &who, slot, now);
	if (retry != NULL)
		*retry = r;
	return err;
}

static void test_rate_and_retry(void **state)
{
	struct idlimit *t;
	unsigned retry;
	assert_int_equal(idlimit_new(&t, 64, 5, 5), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(try(t, "alice", 1000, NULL), 0);
	assert_int_equal(try(t, "alice", 1000, &retry), SV_ERR_BUSY);
	assert_int_equal(retry, 12); /* one login per 12 s */
	assert_int_equal(try(t, "bob", 1000, NULL), 0);
	assert_int_equal(try(t, "alice", 12999, &retry), SV_ERR_BUSY);
	assert_int_equal(retry, 1);
	assert_int_equal(try(t, "alice", 13000, NULL), 0);
	assert_int_equal(try(t, "alice", 13000, NULL), SV_ERR_BUSY);
	/* a check that is refused or not followed by a charge changes nothing */
	size_t slot;
	struct idlimit_who carol = {.id = (const uint8_t *)"carol", .id_len = 5};
	assert_int_equal(idlimit_check(t, &carol, 13000, &slot, &retry), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(try(t, "carol", 13000, NULL), 0);
	/* after a minute and more the whole burst is back, no more */
	for (int i = 0; i < 5; i++)
		assert_int_equal(try(t, "alice", 200000, NULL), 0);
	assert_int_equal(try(t, "alice", 200000, NULL), SV_ERR_BUSY);
	assert_int_equal(idlimit_refused(t), 4);
	idlimit_free(t);
}

static void test_off_and_bounds(void **state)
{
	struct idlimit *t;
	assert_int_equal(idlimit_new(&t, 64, 0, 1), 0); /* 0: no limit, no table */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(try(t, "alice", 0, NULL), 0);
	assert_int_equal(idlimit_capacity(t), 0);
	idlimit_free(t);
	assert_int_equal(idlimit_new(&t, 63, 5, 5), SV_ERR_RANGE);
	assert_int_equal(idlimit_new(&t, 100, 5, 5), SV_ERR_RANGE);
	assert_int_equal(idlimit_new(&t, 64, 5, 0), SV_ERR_RANGE);
	assert_int_equal(idlimit_new(&t, 64, 60001, 5), SV_ERR_RANGE);
}

/* A flood of other identifiers cannot push a victim's bucket out while it is not full: the victim
 * stays limited; new identifiers are refused instead once the table has nothing to reuse. */
static void test_no_reset_by_flood(void **state)
{
	struct idlimit *t;
	char id[32];
	unsigned retry;
	assert_int_equal(idlimit_new(&t, 64, 5, 5), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(try(t, "victim", 1000, NULL), 0);
	int admitted = 0, refused = 0;
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "attacker-%d", i);
		if (try(t, id, 1000, NULL) == 0)
			admitted++;
		else
			refused++;
	}
	assert_true(admitted <= 63);
	assert_true(refused >= 5000 - 63);
	assert_int_equal(idlimit_refused_full(t), (uint64_t)refused);
	assert_int_equal(try(t, "victim", 1000, &retry), SV_ERR_BUSY); /* still limited */
	assert_int_equal(retry, 12);
	/* once the attackers' buckets are full again (12 s: one login each), their entries are
	 * reused by anyone, and the victim's own bucket has refilled by one */
	assert_int_equal(try(t, "newcomer", 13000, NULL), 0);
	assert_int_equal(try(t, "victim", 13000, NULL), 0);
	assert_int_equal(try(t, "victim", 13000, NULL), SV_ERR_BUSY);
	idlimit_free(t);
}

/* The same sub under two tenants is two buckets (ready for access tokens). */
static void test_tenants(void **state)
{
	struct idlimit *t;
	size_t slot;
	unsigned retry;
	assert_int_equal(idlimit_new(&t, 64, 1, 1), 0);
	struct idlimit_who a = {(const uint8_t *)"acme", 4, (const uint8_t *)"u1", 2};
	struct idlimit_who b = {(const uint8_t *)"bolt", 4, (const uint8_t *)"u1", 2};
	struct idlimit_who c = {(const uint8_t *)"acmeu", 5, (const uint8_t *)"1", 1};
	assert_int_equal(idlimit_check(t, &a, 1000, &slot, &retry), 0);
	idlimit_charge(t, &a, slot, 1000);
	assert_int_equal(idlimit_check(t, &a, 1000, &slot, &retry), SV_ERR_BUSY);
	assert_int_equal(idlimit_check(t, &b, 1000, &slot, &retry), 0);
	assert_int_equal(idlimit_check(t, &c, 1000, &slot, &retry), 0); /* lengths are bound */
	idlimit_free(t);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rate_and_retry),
	    cmocka_unit_test(test_off_and_bounds),
	    cmocka_unit_test(test_no_reset_by_flood),
	    cmocka_unit_test(test_tenants),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
