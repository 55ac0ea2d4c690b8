/* Unit tests for policy/vault.c: defaults pass their own check, every bound is enforced at
 * min-1 / min / max / max+1, junk values and unknown names are refused, the hash is canonical. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "policy/vault.h"

static char why[256];

static void test_defaults_valid(void **state)
{
	struct sv_vault_policy p;
	policy_vault_defaults(&p);
	assert_int_equal(policy_vault_check(&p, why, sizeof(why)), SV_OK);
	assert_int_equal(p.counter_scheme, POLICY_COUNTER_HYBRID);
	assert_int_equal(p.default_guess_limit, 10);
	assert_int_equal(p.nv_writes_per_day, 0); /* automatic */
}

struct bound {
	const char *name;
	const char *below, *lo, *hi, *above;
};

static void test_bounds(void **state)
{
	static const struct bound b[] = {
	    {"max-guess-limit", "0", "1", "255", "256"},
	    {"batch-window-us", NULL, "0", "100000", "100001"},
	    {"max-batch", "0", "1", "4096", "4097"},
	    {"pending-login-max", "15", "16", "1048576", "1048577"},
	    {"login-timeout-s", "0", "1", "600", "601"},
	    {"nv-writes-per-day", NULL, "0", "1000000", "1000001"},
	    {"nv-writes-burst", "0", "1", "100000", "100001"},
	    {"unclean-boots-per-year", NULL, "0", "1000", "1001"},
	};
	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
		struct sv_vault_policy p;
		policy_vault_defaults(&p);
		if (b[i].below != NULL)
			assert_int_equal(
			    policy_vault_set(&p, b[i].name, b[i].below, why, sizeof(why)),
			    SV_ERR_CONFIG);
		assert_int_equal(policy_vault_set(&p, b[i].name, b[i].lo, why, sizeof(why)), SV_OK);
		assert_int_equal(policy_vault_set(&p, b[i].name, b[i].hi, why, sizeof(why)), SV_OK);
		assert_int_equal(policy_vault_set(&p, b[i].name, b[i].above, why, sizeof(why)),
		                 SV_ERR_CONFIG);
		assert_non_null(strstr(why, b[i].name));
	}
}

static void test_bad_values(void **state)
{
	struct sv_vault_policy p;
	policy_vault_defaults(&p);
	static const char *bad[] = {
	    "", "-1", "+5", " 5", "5 ", "5x", "0x10", "4294967296", "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(policy_vault_set(&p, "max-batch", bad[i], why, sizeof(why)),
		                 SV_ERR_CONFIG);
	assert_int_equal(p.max_batch, 256);
	assert_int_equal(policy_vault_set(&p, "no-such-option", "1", why, sizeof(why)),
	                 SV_ERR_CONFIG);
	assert_non_null(strstr(why, "no-such-option"));
	assert_int_equal(policy_vault_set(&p, "counter-scheme", "orderly", why, sizeof(why)),
	                 SV_ERR_CONFIG);
	assert_int_equal(policy_vault_set(&p, "counter-scheme", "plain", why, sizeof(why)), SV_OK);
	assert_int_equal(p.counter_scheme, POLICY_COUNTER_PLAIN);
	assert_int_equal(policy_vault_set(&p, "counter-scheme", "hybrid", why, sizeof(why)), SV_OK);
	assert_int_equal(p.counter_scheme, POLICY_COUNTER_HYBRID);
	/* 0.3's name of the budget still sets it */
	assert_int_equal(policy_vault_set(&p, "nv-flush-budget-per-day", "7", why, sizeof(why)),
	                 SV_OK);
	assert_int_equal(p.nv_writes_per_day, 7);
}

static void test_relations(void **state)
{
	struct sv_vault_policy p;
	policy_vault_defaults(&p);
	assert_int_equal(policy_vault_set(&p, "default-guess-limit", "20", why, sizeof(why)),
	                 SV_OK);
	assert_int_equal(policy_vault_check(&p, why, sizeof(why)), SV_ERR_CONFIG);
	assert_non_null(strstr(why, "default-guess-limit"));
	p.max_guess_limit = 20;
	assert_int_equal(policy_vault_check(&p, why, sizeof(why)), SV_OK);
	p.max_batch = 0;
	assert_int_equal(policy_vault_check(&p, why, sizeof(why)), SV_ERR_CONFIG);
	p.max_batch = 1;
	p.counter_scheme = 3;
	assert_int_equal(policy_vault_check(&p, why, sizeof(why)), SV_ERR_CONFIG);
}

static void test_hash(void **state)
{
	struct sv_vault_policy a, b;
	uint8_t ha[32], hb[32];
	policy_vault_defaults(&a);
	policy_vault_defaults(&b);
	policy_vault_hash(&a, ha);
	policy_vault_hash(&b, hb);
	assert_memory_equal(ha, hb, 32);
	b.batch_window_us++;
	policy_vault_hash(&b, hb);
	assert_memory_not_equal(ha, hb, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_valid), cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_bad_values),     cmocka_unit_test(test_relations),
	    cmocka_unit_test(test_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
