/* Unit tests for common/buf: bounds, hostile lengths, no partial reads, wiping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"

static void test_round_trip(void **state)
{
	struct sv_buf b;
	assert_int_equal(sv_buf_init(&b, 64), 0);
	assert_int_equal(sv_buf_put_u8(&b, 0xab), 0);
	assert_int_equal(sv_buf_put_u16(&b, 0x1234), 0);
	assert_int_equal(sv_buf_put_u32(&b, 0xdeadbeef), 0);
	assert_int_equal(sv_buf_put_u64(&b, 0x0102030405060708ULL), 0);
	assert_int_equal(sv_buf_put_str16(&b, "hello", 5), 0);
	assert_int_equal(b.len, 1 + 2 + 4 + 8 + 2 + 5);
	assert_int_equal(b.data[1], 0x12); /* big-endian */

	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	const uint8_t *p;
	size_t n;
	assert_int_equal(sv_buf_get_u8(&b, &u8), 0);
	assert_int_equal(sv_buf_get_u16(&b, &u16), 0);
	assert_int_equal(sv_buf_get_u32(&b, &u32), 0);
	assert_int_equal(sv_buf_get_u64(&b, &u64), 0);
	assert_int_equal(sv_buf_expect_end(&b), SV_ERR_INVALID);
	assert_int_equal(sv_buf_get_str16(&b, 16, &p, &n), 0);
	assert_int_equal(u8, 0xab);
	assert_int_equal(u16, 0x1234);
	assert_int_equal(u32, 0xdeadbeef);
	assert_true(u64 == 0x0102030405060708ULL);
	assert_int_equal(n, 5);
	assert_memory_equal(p, "hello", 5);
	assert_int_equal(sv_buf_expect_end(&b), 0);
	sv_buf_free(&b);
}

static void test_max_is_enforced(void **state)
{
	struct sv_buf b;
	assert_int_equal(sv_buf_init(&b, 4), 0);
	assert_int_equal(sv_buf_put_u32(&b, 1), 0);
	assert_int_equal(sv_buf_put_u8(&b, 1), SV_ERR_RANGE);
	assert_int_equal(b.len, 4);
	sv_buf_free(&b);
	assert_int_equal(sv_buf_init(&b, 3), 0);
	assert_int_equal(sv_buf_put_u32(&b, 1), SV_ERR_RANGE);
	assert_int_equal(b.len, 0);
	assert_int_equal(sv_buf_put_str16(&b, "ab", 2), SV_ERR_RANGE);
	assert_int_equal(b.len, 0);
	sv_buf_free(&b);
}

static void test_short_reads_consume_nothing(void **state)
{
	const uint8_t in[3] = {1, 2, 3};
	struct sv_buf b;
	uint32_t v32;
	uint64_t v64;
	sv_buf_from(&b, in, sizeof(in));
	assert_int_equal(sv_buf_get_u32(&b, &v32), SV_ERR_INVALID);
	assert_int_equal(sv_buf_get_u64(&b, &v64), SV_ERR_INVALID);
	assert_int_equal(sv_buf_remaining(&b), 3);
	uint8_t out[4];
	assert_int_equal(sv_buf_get(&b, out, 4), SV_ERR_INVALID);
	assert_int_equal(sv_buf_get(&b, out, 3), 0);
	assert_memory_equal(out, in, 3);
	assert_int_equal(sv_buf_put_u8(&b, 1), SV_ERR_INTERNAL); /* borrowed: read-only */
	sv_buf_free(&b);
}

static void test_hostile_str16_lengths(void **state)
{
	/* declared lengths 0xffff, n+1 and above the caller's max must all be refused intact */
	const uint8_t huge[] = {0xff, 0xff, 'a', 'b'};
	const uint8_t one_more[] = {0x00, 0x03, 'a', 'b'};
	const uint8_t zero[] = {0x00, 0x00};
	const uint8_t over_max[] = {0x00, 0x02, 'a', 'b'};
	struct sv_buf b;
	const uint8_t *p;
	size_t n = 99;

	sv_buf_from(&b, huge, sizeof(huge));
	assert_int_equal(sv_buf_get_str16(&b, 0xffff, &p, &n), SV_ERR_INVALID);
	assert_int_equal(b.off, 0);
	sv_buf_from(&b, one_more, sizeof(one_more));
	assert_int_equal(sv_buf_get_str16(&b, 16, &p, &n), SV_ERR_INVALID);
	assert_int_equal(b.off, 0);
	sv_buf_from(&b, over_max, sizeof(over_max));
	assert_int_equal(sv_buf_get_str16(&b, 1, &p, &n), SV_ERR_RANGE);
	assert_int_equal(b.off, 0);
	sv_buf_from(&b, zero, sizeof(zero));
	assert_int_equal(sv_buf_get_str16(&b, 16, &p, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sv_buf_expect_end(&b), 0);
}

static void test_reset_wipes(void **state)
{
	struct sv_buf b;
	assert_int_equal(sv_buf_init(&b, 16), 0);
	assert_int_equal(sv_buf_put(&b, "secret", 6), 0);
	uint8_t *data = b.data;
	sv_buf_reset(&b);
	assert_int_equal(b.len, 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(data[i], 0);
	sv_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.max, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_max_is_enforced),
	    cmocka_unit_test(test_short_reads_consume_nothing),
	    cmocka_unit_test(test_hostile_str16_lengths),
	    cmocka_unit_test(test_reset_wipes),
	};
	return cmocka_run_group_tests_name("common/buf", tests, NULL, NULL);
}
