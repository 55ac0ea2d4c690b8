/* Unit tests for enclave/phantom: counting per identifier, saturation, forgetting, eviction of
 * the least recently charged identifier of a full set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/err.h"
#include "enclave/phantom.h"

#define ID(s) (const uint8_t *)(s), strlen(s)

static void test_counts_per_identifier(void **state)
{
	struct phantom_table *t;
	assert_int_equal(phantom_table_new(&t, 1024), 0);
	assert_int_equal(phantom_used(t, ID("a")), 0);
	assert_int_equal(phantom_charge(t, ID("a"), 1), 1);
	assert_int_equal(phantom_charge(t, ID("a"), 2), 2);
	assert_int_equal(phantom_charge(t, ID("b"), 3), 1);
	assert_int_equal(phantom_used(t, ID("a")), 2);
	assert_int_equal(phantom_used(t, ID("ab")), 0);
	phantom_forget(t, ID("a"));
	assert_int_equal(phantom_used(t, ID("a")), 0);
	assert_int_equal(phantom_used(t, ID("b")), 1);
	for (int i = 0; i < 300; i++)
		(void)phantom_charge(t, ID("c"), 4);
	assert_int_equal(phantom_used(t, ID("c")), 255); /* saturates */
	phantom_table_free(t);
}

static void test_eviction_is_lru(void **state)
{
	struct phantom_table *t;
	char id[16];
	/* capacity 4: one set of four ways, so every identifier shares it */
	assert_int_equal(phantom_table_new(&t, 4), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		assert_int_equal(phantom_charge(t, ID(id), (uint64_t)10 + i), 1);
	}
	(void)phantom_charge(t, ID("id0"), 20); /* id0 is now the most recent */
	assert_int_equal(phantom_charge(t, ID("new"), 21), 1);
	assert_int_equal(phantom_used(t, ID("id1")), 0); /* the least recent went */
	assert_int_equal(phantom_used(t, ID("id0")), 2);
	assert_int_equal(phantom_used(t, ID("id2")), 1);
	assert_int_equal(phantom_used(t, ID("id3")), 1);
	assert_int_equal(phantom_used(t, ID("new")), 1);
	phantom_table_free(t);
}

static void test_bounds(void **state)
{
	struct phantom_table *t = (struct phantom_table *)1;
	assert_int_equal(phantom_table_new(&t, 0), SV_ERR_RANGE);
	assert_null(t);
	assert_int_equal(phantom_table_new(&t, ((size_t)1 << 30) + 1), SV_ERR_RANGE);
	phantom_table_free(NULL);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts_per_identifier),
	    cmocka_unit_test(test_eviction_is_lru),
	    cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
