/*
 * Fuzzes the RFC 9497 decoders: element and scalar decoding, and VOPRF/POPRF batch proof
 * verification with attacker-chosen key, elements and proof. The input is laid out as
 * mode(1) | n(1) | pk(32) | proof(64) | n blinded(32 each) | n evaluated(32 each), short inputs
 * padded from a valid transcript. Invariant: only the honest transcript's proof verifies.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "crypto/oprf.h"

#define NB 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t sk[32], pk[32], tweak[32], blinded[NB * 32], ev_v[NB * 32], ev_p[NB * 32];
static uint8_t proof_v[64], proof_p[64];
static const uint8_t info[] = "fuzz info";

static void init(void)
{
	uint8_t seed[32], r[32] = {5}, blind[32] = {3};

	if (sodium_init() < 0)
		abort();
	memset(seed, 0x55, sizeof seed);
	if (oprf_derive_keypair(sk, pk, OPRF_MODE_VOPRF, seed, NULL, 0) != 0)
		abort();
	for (int i = 0; i < NB; i++) {
		uint8_t in = (uint8_t)i;

		if (oprf_blind_det(blinded + 32 * i, OPRF_MODE_VOPRF, blind, &in, 1) != 0)
			abort();
	}
	if (oprf_voprf_evaluate_det(ev_v, proof_v, sk, pk, blinded, NB, r) != 0 ||
	    oprf_poprf_evaluate_det(ev_p, proof_p, sk, blinded, NB, info, sizeof info - 1, r) !=
	        0 ||
	    oprf_poprf_tweak(tweak, pk, info, sizeof info - 1) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	uint8_t key[32], proof[64], b[NB * 32], e[NB * 32];
	size_t n, off;
	int poprf, r;

	if (!ready) {
		init();
		ready = 1;
	}
	/* the plain decoders on the raw input */
	(void)oprf_element_check(data, size);
	(void)oprf_scalar_check(data, size);
	if (size < 2)
		return 0;
	poprf = data[0] & 1;
	n = (size_t)(data[1] % NB) + 1;
	data += 2;
	size -= 2;
	/* XOR the rest into the honest transcript: all-zero input = the honest proof */
	memcpy(key, poprf ? tweak : pk, 32);
	memcpy(proof, poprf ? proof_p : proof_v, 64);
	memcpy(b, blinded, sizeof b);
	memcpy(e, poprf ? ev_p : ev_v, sizeof e);
	off = 0;
	for (size_t i = 0; i < 32 && off < size; i++)
		key[i] ^= data[off++];
	for (size_t i = 0; i < 64 && off < size; i++)
		proof[i] ^= data[off++];
	for (size_t i = 0; i < n * 32 && off < size; i++)
		b[i] ^= data[off++];
	for (size_t i = 0; i < n * 32 && off < size; i++)
		e[i] ^= data[off++];
	r = poprf ? oprf_poprf_verify(key, b, e, n, proof) : oprf_voprf_verify(key, b, e, n, proof);
	if (r == 0 &&
	    (memcmp(key, poprf ? tweak : pk, 32) != 0 ||
	     memcmp(proof, poprf ? proof_p : proof_v, 64) != 0 || n != NB ||
	     memcmp(b, blinded, sizeof b) != 0 || memcmp(e, poprf ? ev_p : ev_v, sizeof e) != 0))
		abort(); /* a proof verified for something the server did not prove */
	return 0;
}
