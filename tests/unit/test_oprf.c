/*
 * Unit tests for crypto/oprf: OPRF, VOPRF and POPRF round trips with random keys (batched
 * proofs included), every proof byte flipped, wrong keys and info, hostile element and scalar
 * encodings, hostile lengths for the element/scalar decoders.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/err.h"
#include "crypto/oprf.h"

#define N 3

static const uint8_t noncanon_p[32] = {
    0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
};
static const uint8_t *inputs[N] = {(const uint8_t *)"", (const uint8_t *)"a",
                                   (const uint8_t *)"bc"};
static const size_t in_len[N] = {0, 1, 2};

static void test_oprf_round_trip(void **state)
{
	uint8_t sk[32], blind[32], blinded[32], ev[32], out1[64], out2[64];

	assert_int_equal(oprf_generate_keypair(sk, NULL), 0);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(oprf_blind(blind, blinded, OPRF_MODE_OPRF, inputs[i], in_len[i]),
		                 0);
		assert_int_equal(oprf_element_check(blinded, 32), 0);
		assert_int_equal(oprf_blind_evaluate(ev, sk, blinded), 0);
		assert_int_equal(oprf_finalize(out1, inputs[i], in_len[i], blind, ev), 0);
		assert_int_equal(
		    oprf_evaluate(out2, OPRF_MODE_OPRF, sk, inputs[i], in_len[i], NULL, 0), 0);
		assert_memory_equal(out1, out2, 64);
	}
	/* another key gives another output */
	assert_int_equal(oprf_generate_keypair(sk, NULL), 0);
	assert_int_equal(
	    oprf_evaluate(out2, OPRF_MODE_OPRF, sk, inputs[N - 1], in_len[N - 1], NULL, 0), 0);
	assert_memory_not_equal(out1, out2, 64);
}

static void test_voprf_batch(void **state)
{
	uint8_t sk[32], pk[32], sk2[32], pk2[32], blinds[N][32], blinded[N * 32], ev[N * 32];
	uint8_t proof[64], bad[64], out[64], ref[64];

	assert_int_equal(oprf_generate_keypair(sk, pk), 0);
	assert_int_equal(oprf_generate_keypair(sk2, pk2), 0);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(
		    oprf_blind(blinds[i], blinded + 32 * i, OPRF_MODE_VOPRF, inputs[i], in_len[i]),
		    0);
	for (size_t n = 1; n <= N; n++) {
		assert_int_equal(oprf_voprf_evaluate(ev, proof, sk, pk, blinded, n), 0);
		assert_int_equal(oprf_voprf_verify(pk, blinded, ev, n, proof), 0);
		assert_int_not_equal(oprf_voprf_verify(pk2, blinded, ev, n, proof), 0);
	}
	for (size_t i = 0; i < sizeof proof; i++) {
		memcpy(bad, proof, sizeof bad);
		bad[i] ^= (uint8_t)(1u << (i % 8));
		assert_int_not_equal(oprf_voprf_verify(pk, blinded, ev, N, bad), 0);
	}
	/* a swapped evaluation breaks the batch proof */
	memcpy(bad, ev, 32);
	memcpy(ev, ev + 32, 32);
	memcpy(ev + 32, bad, 32);
	assert_int_not_equal(oprf_voprf_verify(pk, blinded, ev, N, proof), 0);
	memcpy(ev + 32, ev, 32);
	memcpy(ev, bad, 32);
	assert_int_equal(oprf_voprf_verify(pk, blinded, ev, N, proof), 0);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(oprf_finalize(out, inputs[i], in_len[i], blinds[i], ev + 32 * i),
		                 0);
		assert_int_equal(
		    oprf_evaluate(ref, OPRF_MODE_VOPRF, sk, inputs[i], in_len[i], NULL, 0), 0);
		assert_memory_equal(out, ref, 64);
	}
	assert_int_equal(oprf_voprf_evaluate(ev, proof, sk, pk, blinded, 0), SV_ERR_RANGE);
	assert_int_equal(oprf_voprf_verify(pk, blinded, ev, OPRF_BATCH_MAX + 1, proof),
	                 SV_ERR_RANGE);
}

static void test_poprf(void **state)
{
	static const uint8_t info[] = "info", info2[] = "inf0";
	uint8_t sk[32], pk[32], tweak[32], tweak2[32], blinds[N][32], blinded[N * 32], ev[N * 32];
	uint8_t proof[64], bad[64], out[64], ref[64];

	assert_int_equal(oprf_generate_keypair(sk, pk), 0);
	assert_int_equal(oprf_poprf_tweak(tweak, pk, info, 4), 0);
	assert_int_equal(oprf_poprf_tweak(tweak2, pk, info2, 4), 0);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(
		    oprf_blind(blinds[i], blinded + 32 * i, OPRF_MODE_POPRF, inputs[i], in_len[i]),
		    0);
	assert_int_equal(oprf_poprf_evaluate(ev, proof, sk, blinded, N, info, 4), 0);
	assert_int_equal(oprf_poprf_verify(tweak, blinded, ev, N, proof), 0);
	assert_int_not_equal(oprf_poprf_verify(tweak2, blinded, ev, N, proof), 0);
	for (size_t i = 0; i < sizeof proof; i++) {
		memcpy(bad, proof, sizeof bad);
		bad[i] ^= 0x10;
		assert_int_not_equal(oprf_poprf_verify(tweak, blinded, ev, N, bad), 0);
	}
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(
		    oprf_poprf_finalize(out, inputs[i], in_len[i], info, 4, blinds[i], ev + 32 * i),
		    0);
		assert_int_equal(
		    oprf_evaluate(ref, OPRF_MODE_POPRF, sk, inputs[i], in_len[i], info, 4), 0);
		assert_memory_equal(out, ref, 64);
		assert_int_equal(
		    oprf_evaluate(ref, OPRF_MODE_POPRF, sk, inputs[i], in_len[i], info2, 4), 0);
		assert_memory_not_equal(out, ref, 64);
	}
}

static void test_derive_keypair(void **state)
{
	uint8_t seed[32] = {1}, sk[32], pk[32], sk2[32], pk2[32];

	assert_int_equal(oprf_derive_keypair(sk, pk, OPRF_MODE_OPRF, seed, (const uint8_t *)"x", 1),
	                 0);
	assert_int_equal(
	    oprf_derive_keypair(sk2, pk2, OPRF_MODE_OPRF, seed, (const uint8_t *)"x", 1), 0);
	assert_memory_equal(sk, sk2, 32);
	assert_memory_equal(pk, pk2, 32);
	/* the mode is part of the domain separation */
	assert_int_equal(
	    oprf_derive_keypair(sk2, NULL, OPRF_MODE_VOPRF, seed, (const uint8_t *)"x", 1), 0);
	assert_memory_not_equal(sk, sk2, 32);
	assert_int_equal(oprf_derive_keypair(sk2, NULL, 3, seed, NULL, 0), SV_ERR_INVALID);
	assert_int_equal(oprf_derive_keypair(sk2, NULL, 0, seed, seed, OPRF_INFO_MAX + 1),
	                 SV_ERR_RANGE);
}

static void test_hostile_encodings(void **state)
{
	uint8_t sk[32], pk[32], zero[32] = {0}, buf[33] = {0}, out[64], blinded[32], blind[32];
	uint8_t big[32], proof[64] = {0};

	assert_int_equal(oprf_generate_keypair(sk, pk), 0);
	/* element decoder: lengths and encodings */
	memcpy(buf, pk, 32);
	assert_int_equal(oprf_element_check(buf, 32), 0);
	assert_int_equal(oprf_element_check(buf, 0), SV_ERR_INVALID);
	assert_int_equal(oprf_element_check(buf, 1), SV_ERR_INVALID);
	assert_int_equal(oprf_element_check(buf, 31), SV_ERR_INVALID);
	assert_int_equal(oprf_element_check(buf, 33), SV_ERR_INVALID);
	assert_int_equal(oprf_element_check(buf, 0xffffffffu), SV_ERR_INVALID);
	assert_int_equal(oprf_element_check(NULL, 32), SV_ERR_INVALID);
	assert_int_equal(oprf_element_check(zero, 32), SV_ERR_CRYPTO);
	assert_int_equal(oprf_element_check(noncanon_p, 32), SV_ERR_CRYPTO);
	/* libsodium 1.0.18 ignores bit 255; a valid element with it set must still be refused */
	buf[31] |= 0x80;
	assert_int_equal(oprf_element_check(buf, 32), SV_ERR_CRYPTO);
	assert_int_equal(oprf_blind_evaluate(out, sk, buf), SV_ERR_CRYPTO);
	assert_int_equal(oprf_poprf_tweak(out, buf, NULL, 0), SV_ERR_CRYPTO);
	/* scalar decoder */
	memset(big, 0xff, sizeof big);
	memcpy(buf, sk, 32);
	assert_int_equal(oprf_scalar_check(buf, 32), 0);
	assert_int_equal(oprf_scalar_check(buf, 0), SV_ERR_INVALID);
	assert_int_equal(oprf_scalar_check(buf, 1), SV_ERR_INVALID);
	assert_int_equal(oprf_scalar_check(buf, 31), SV_ERR_INVALID);
	assert_int_equal(oprf_scalar_check(buf, 33), SV_ERR_INVALID);
	assert_int_equal(oprf_scalar_check(buf, 0xffffffffu), SV_ERR_INVALID);
	assert_int_equal(oprf_scalar_check(zero, 32), SV_ERR_CRYPTO);
	assert_int_equal(oprf_scalar_check(big, 32), SV_ERR_CRYPTO);
	/* processing functions refuse identity and non-canonical elements */
	assert_int_equal(oprf_blind_evaluate(out, sk, zero), SV_ERR_CRYPTO);
	assert_int_equal(oprf_blind_evaluate(out, sk, noncanon_p), SV_ERR_CRYPTO);
	assert_int_equal(oprf_blind(blind, blinded, 0, (const uint8_t *)"x", 1), 0);
	assert_int_equal(oprf_finalize(out, (const uint8_t *)"x", 1, blind, zero), SV_ERR_CRYPTO);
	assert_int_equal(oprf_finalize(out, (const uint8_t *)"x", 1, zero, blinded), SV_ERR_CRYPTO);
	assert_int_equal(oprf_voprf_evaluate(out, proof, sk, pk, zero, 1), SV_ERR_CRYPTO);
	assert_int_not_equal(oprf_voprf_verify(zero, blinded, blinded, 1, proof), 0);
	assert_int_not_equal(oprf_voprf_verify(pk, blinded, zero, 1, proof), 0);
	assert_int_not_equal(oprf_voprf_verify(pk, blinded, blinded, 1, proof), 0);
	assert_int_equal(oprf_poprf_tweak(out, zero, NULL, 0), SV_ERR_CRYPTO);
	/* blinds must be reduced and non-zero */
	assert_int_equal(oprf_blind_det(blinded, 0, zero, (const uint8_t *)"x", 1), SV_ERR_CRYPTO);
	assert_int_equal(oprf_blind_det(blinded, 0, big, (const uint8_t *)"x", 1), SV_ERR_CRYPTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_oprf_round_trip),
	    cmocka_unit_test(test_voprf_batch),
	    cmocka_unit_test(test_poprf),
	    cmocka_unit_test(test_derive_keypair),
	    cmocka_unit_test(test_hostile_encodings),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
