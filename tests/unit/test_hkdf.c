/*
 * Unit tests for crypto/hkdf: HMAC-SHA512 and HKDF-SHA512 against OpenSSL's independent
 * implementation, for salts longer than a SHA-512 block and output lengths around the block
 * edges up to the RFC 5869 maximum, and the length bounds.
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
#include "crypto/hkdf.h"

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
	    cmocka_unit_test(test_hkdf_against_openssl),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
