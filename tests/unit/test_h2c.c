/*
 * Unit tests for crypto/h2c: expand_message_xmd against an RFC 9380 K.3 answer, message parts
 * versus one buffer, the oversize-DST rule, length bounds, HashToGroup/HashToScalar outputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/err.h"
#include "crypto/h2c.h"

static const char dst[] = "QUUX-V01-CS02-with-expander-SHA512-256";

static void test_xmd_known_answer(void **state)
{
	/* RFC 9380 K.3, msg "abc", len_in_bytes 0x20 */
	static const uint8_t want[32] = {0x0d, 0xa7, 0x49, 0xf1, 0x2f, 0xbe, 0x54, 0x83,
	                                 0xeb, 0x06, 0x6a, 0x5f, 0x59, 0x50, 0x55, 0x67,
	                                 0x9b, 0x97, 0x6e, 0x93, 0xab, 0xe9, 0xbe, 0x6f,
	                                 0x0f, 0x63, 0x18, 0xbc, 0xe7, 0xac, 0xa8, 0xdc};
	struct h2c_part abc = {(const uint8_t *)"abc", 3};
	struct h2c_part split[3] = {
	    {(const uint8_t *)"a", 1}, {NULL, 0}, {(const uint8_t *)"bc", 2}};
	uint8_t out[32];

	assert_int_equal(h2c_expand_xmd_sha512(out, 32, &abc, 1, (const uint8_t *)dst, strlen(dst)),
	                 0);
	assert_memory_equal(out, want, 32);
	memset(out, 0, sizeof out);
	assert_int_equal(
	    h2c_expand_xmd_sha512(out, 32, split, 3, (const uint8_t *)dst, strlen(dst)), 0);
	assert_memory_equal(out, want, 32);
}

static void test_xmd_bounds(void **state)
{
	static uint8_t out[H2C_XMD_MAX + 1];
	struct h2c_part m = {(const uint8_t *)"m", 1};

	assert_int_equal(h2c_expand_xmd_sha512(out, 0, &m, 1, (const uint8_t *)dst, 3),
	                 SV_ERR_RANGE);
	assert_int_equal(
	    h2c_expand_xmd_sha512(out, H2C_XMD_MAX + 1, &m, 1, (const uint8_t *)dst, 3),
	    SV_ERR_RANGE);
	assert_int_equal(h2c_expand_xmd_sha512(out, H2C_XMD_MAX, &m, 1, (const uint8_t *)dst, 3),
	                 0);
	/* shorter outputs are prefixes of longer ones only if the length is not bound in: it is */
	uint8_t a[64], b[65];
	assert_int_equal(h2c_expand_xmd_sha512(a, 64, &m, 1, (const uint8_t *)dst, 3), 0);
	assert_int_equal(h2c_expand_xmd_sha512(b, 65, &m, 1, (const uint8_t *)dst, 3), 0);
	assert_memory_not_equal(a, b, 64);
}

static void test_xmd_oversize_dst(void **state)
{
	uint8_t long_dst[300], hashed[64], a[48], b[48];
	struct h2c_part m = {(const uint8_t *)"msg", 3};
	crypto_hash_sha512_state st;

	memset(long_dst, 'D', sizeof long_dst);
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, (const uint8_t *)"H2C-OVERSIZE-DST-", 17);
	crypto_hash_sha512_update(&st, long_dst, sizeof long_dst);
	crypto_hash_sha512_final(&st, hashed);
	assert_int_equal(h2c_expand_xmd_sha512(a, sizeof a, &m, 1, long_dst, sizeof long_dst), 0);
	assert_int_equal(h2c_expand_xmd_sha512(b, sizeof b, &m, 1, hashed, sizeof hashed), 0);
	assert_memory_equal(a, b, sizeof a);
	/* exactly 255 bytes is used as it is */
	assert_int_equal(h2c_expand_xmd_sha512(a, sizeof a, &m, 1, long_dst, 255), 0);
	assert_memory_not_equal(a, b, sizeof a);
}

static void test_hash_to_group_scalar(void **state)
{
	struct h2c_part m = {(const uint8_t *)"x", 1};
	uint8_t e[32], s[32];

	assert_int_equal(h2c_hash_to_group(e, &m, 1, (const uint8_t *)dst, 5), 0);
	assert_int_equal(h2c_element_check(e), 0);
	assert_int_equal(h2c_hash_to_scalar(s, &m, 1, (const uint8_t *)dst, 5), 0);
	assert_int_equal(h2c_scalar_check(s), 0);
	memset(e, 0, sizeof e);
	assert_int_equal(h2c_element_check(e), SV_ERR_CRYPTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_xmd_known_answer),
	    cmocka_unit_test(test_xmd_bounds),
	    cmocka_unit_test(test_xmd_oversize_dst),
	    cmocka_unit_test(test_hash_to_group_scalar),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
