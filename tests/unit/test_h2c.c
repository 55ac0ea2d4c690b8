/*
 * Unit tests for crypto/h2c and crypto/hkdf: expand_message_xmd against an RFC 9380 K.3 answer,
 * message parts versus one buffer, the oversize-DST rule, length bounds; HMAC/HKDF-SHA512
 * against OpenSSL's independent implementation for key and output lengths around the edges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <sodium.h>

#include "common/err.h"
#include "crypto/h2c.h"
#include "crypto/hkdf.h"

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

static void ossl_hkdf(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                      const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
	OSSL_PARAM p[5], *q = p;

	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA512", 0);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
	*q = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_KDF_derive(ctx, out, out_len, p), 1);
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
}

static void test_hkdf_against_openssl(void **state)
{
	static const size_t out_lens[] = {1, 63, 64, 65, 128, 200, HKDF_SHA512_EXPAND_MAX};
	static uint8_t want[HKDF_SHA512_EXPAND_MAX], got[HKDF_SHA512_EXPAND_MAX];
	uint8_t salt[150], ikm[80], info[40], prk[64];

	randombytes_buf(salt, sizeof salt);
	randombytes_buf(ikm, sizeof ikm);
	randombytes_buf(info, sizeof info);
	for (size_t i = 0; i < sizeof out_lens / sizeof out_lens[0]; i++) {
		/* a salt longer than the SHA-512 block exercises HMAC's key hashing */
		size_t sl = i % 2 ? sizeof salt : 16;

		ossl_hkdf(want, out_lens[i], salt, sl, ikm, sizeof ikm, info, sizeof info);
		hkdf_sha512_extract(prk, salt, sl, ikm, sizeof ikm);
		assert_int_equal(hkdf_sha512_expand(got, out_lens[i], prk, sizeof prk, info, 10,
		                                    info + 10, sizeof info - 10),
		                 0);
		assert_memory_equal(got, want, out_lens[i]);
	}
	/* HMAC with a long key, checked against OpenSSL too */
	unsigned int n = 0;
	HMAC(EVP_sha512(), salt, (int)sizeof salt, ikm, sizeof ikm, want, &n);
	hkdf_hmac_sha512(got, salt, sizeof salt, ikm, 30, ikm + 30, sizeof ikm - 30);
	assert_int_equal(n, 64);
	assert_memory_equal(got, want, 64);
	assert_int_equal(hkdf_sha512_expand(got, 0, prk, 64, NULL, 0, NULL, 0), SV_ERR_RANGE);
	assert_int_equal(
	    hkdf_sha512_expand(got, HKDF_SHA512_EXPAND_MAX + 1, prk, 64, NULL, 0, NULL, 0),
	    SV_ERR_RANGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_xmd_known_answer),
	    cmocka_unit_test(test_xmd_bounds),
	    cmocka_unit_test(test_xmd_oversize_dst),
	    cmocka_unit_test(test_hash_to_group_scalar),
	    cmocka_unit_test(test_hkdf_against_openssl),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
