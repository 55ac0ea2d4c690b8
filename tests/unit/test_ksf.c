/* Unit tests for crypto/ksf: profile bounds, encoding round trip, hostile decoder input,
 * Argon2id output equal to libsodium's crypto_pwhash with the documented salt and version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/err.h"
#include "crypto/ksf.h"

static void test_check(void **state)
{
	struct ksf_params p = {KSF_IDENTITY, 0, 0};

	assert_int_equal(ksf_params_check(&p), 0);
	p.t = 1;
	assert_int_equal(ksf_params_check(&p), SV_ERR_INVALID);
	p = (struct ksf_params){KSF_ARGON2ID, KSF_ARGON2ID_T_MIN, KSF_ARGON2ID_M_MIN};
	assert_int_equal(ksf_params_check(&p), 0);
	p.t = 0;
	assert_int_equal(ksf_params_check(&p), SV_ERR_RANGE);
	p.t = KSF_ARGON2ID_T_MAX + 1;
	assert_int_equal(ksf_params_check(&p), SV_ERR_RANGE);
	p.t = KSF_ARGON2ID_T_MAX;
	p.m_kib = KSF_ARGON2ID_M_MIN - 1;
	assert_int_equal(ksf_params_check(&p), SV_ERR_RANGE);
	p.m_kib = KSF_ARGON2ID_M_MAX + 1;
	assert_int_equal(ksf_params_check(&p), SV_ERR_RANGE);
	p.m_kib = KSF_ARGON2ID_M_MAX;
	assert_int_equal(ksf_params_check(&p), 0);
	p.type = 2;
	assert_int_equal(ksf_params_check(&p), SV_ERR_INVALID);
	assert_int_equal(ksf_params_check(NULL), SV_ERR_INVALID);
}

static void test_encoding(void **state)
{
	struct ksf_params p = {KSF_ARGON2ID, 3, 65536}, q;
	uint8_t enc[KSF_PARAMS_LEN + 1] = {0};
	static const uint8_t want[KSF_PARAMS_LEN] = {1, 0, 0, 0, 3, 0, 1, 0, 0};

	assert_int_equal(ksf_params_encode(enc, &p), 0);
	assert_memory_equal(enc, want, sizeof want);
	memset(&q, 0xaa, sizeof q);
	assert_int_equal(ksf_params_decode(&q, enc, KSF_PARAMS_LEN), 0);
	assert_int_equal(q.type, p.type);
	assert_int_equal(q.t, p.t);
	assert_int_equal(q.m_kib, p.m_kib);
	/* hostile lengths: 0, 1, n-1, n+1, 0xffffffff; nothing written on failure */
	memset(&q, 0x55, sizeof q);
	struct ksf_params before = q;
	assert_int_equal(ksf_params_decode(&q, enc, 0), SV_ERR_INVALID);
	assert_int_equal(ksf_params_decode(&q, enc, 1), SV_ERR_INVALID);
	assert_int_equal(ksf_params_decode(&q, enc, KSF_PARAMS_LEN - 1), SV_ERR_INVALID);
	assert_int_equal(ksf_params_decode(&q, enc, KSF_PARAMS_LEN + 1), SV_ERR_INVALID);
	assert_int_equal(ksf_params_decode(&q, enc, 0xffffffffu), SV_ERR_INVALID);
	assert_int_equal(ksf_params_decode(&q, NULL, KSF_PARAMS_LEN), SV_ERR_INVALID);
	/* a well-formed encoding of a bad profile */
	enc[0] = 9;
	assert_int_equal(ksf_params_decode(&q, enc, KSF_PARAMS_LEN), SV_ERR_INVALID);
	enc[0] = 1;
	enc[4] = 0; /* t = 0 */
	assert_int_equal(ksf_params_decode(&q, enc, KSF_PARAMS_LEN), SV_ERR_RANGE);
	assert_memory_equal(&q, &before, sizeof q);
	p.type = 5;
	assert_int_equal(ksf_params_encode(enc, &p), SV_ERR_INVALID);
}

static void test_stretch(void **state)
{
	static const uint8_t salt[16];
	struct ksf_params id = {KSF_IDENTITY, 0, 0}, a = {KSF_ARGON2ID, 2, 64}, bad = {3, 0, 0};
	uint8_t in[64], out[64], ref[64];

	randombytes_buf(in, sizeof in);
	assert_int_equal(ksf_stretch(out, in, &id), 0);
	assert_memory_equal(out, in, 64);
	assert_int_equal(ksf_stretch(out, in, &a), 0);
	assert_int_equal(crypto_pwhash_argon2id(ref, 64, (const char *)in, 64, salt, 2, 64 * 1024,
	                                        crypto_pwhash_argon2id_ALG_ARGON2ID13),
	                 0);
	assert_memory_equal(out, ref, 64);
	/* in place */
	memcpy(out, in, 64);
	assert_int_equal(ksf_stretch(out, out, &a), 0);
	assert_memory_equal(out, ref, 64);
	assert_int_equal(ksf_stretch(out, in, &bad), SV_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_encoding),
	    cmocka_unit_test(test_stretch),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
