/*
 * Shared start-up for the crypto fuzz targets: one deterministic registration and login
 * transcript (fixed seeds, Identity KSF) so that targets can mutate valid messages.
 */
#ifndef SV_TESTS_FUZZ_COMMON_H
#define SV_TESTS_FUZZ_COMMON_H

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/opaque.h"

struct fuzz_world {
	struct opaque_server_key key;
	uint8_t oprf_seed[OPAQUE_OPRF_SEED_LEN];
	uint8_t record[OPAQUE_RECORD_LEN];
	uint8_t req[OPAQUE_REGISTRATION_REQUEST_LEN], resp[OPAQUE_REGISTRATION_RESPONSE_LEN];
	uint8_t ke1[OPAQUE_KE1_LEN], ke2[OPAQUE_KE2_LEN], ke3[OPAQUE_KE3_LEN];
	struct opaque_client_state reg_state, login_state; /* before finalize / before KE3 */
	struct opaque_server_state server_state;           /* before server finish */
	struct opaque_params params;
	struct ksf_params ksf;
};

static const uint8_t fuzz_pw[] = "fuzz password";
static const uint8_t fuzz_id[] = "fuzz-id";

static void fuzz_die(const char *what)
{
	fprintf(stderr, "fuzz set-up failed: %s\n", what);
	abort();
}

/* Builds the transcript once, from fixed bytes, so runs are reproducible. */
static void fuzz_world_init(struct fuzz_world *w)
{
	uint8_t seed[32], blind[32], nonce[32], ek[64], sk[64];
	struct opaque_client_state c;
	struct opaque_server_state s;

	if (sodium_init() < 0)
		fuzz_die("sodium_init");
	memset(w, 0, sizeof *w);
	w->params.context = (const uint8_t *)"fuzz";
	w->params.context_len = 4;
	w->ksf.type = KSF_IDENTITY;
	memset(w->oprf_seed, 0x11, sizeof w->oprf_seed);
	memset(seed, 0x22, sizeof seed);
	if (opaque_server_key_derive(&w->key, seed) != 0)
		fuzz_die("server key");
	memset(blind, 0, sizeof blind);
	blind[0] = 7;
	if (opaque_client_registration_request_det(w->req, &c, fuzz_pw, sizeof fuzz_pw - 1,
	                                           blind) != 0)
		fuzz_die("registration request");
	w->reg_state = c;
	if (opaque_server_registration_response(w->resp, w->req, w->key.pk, w->oprf_seed, fuzz_id,
	                                        sizeof fuzz_id - 1) != 0)
		fuzz_die("registration response");
	memset(nonce, 0x33, sizeof nonce);
	if (opaque_client_registration_finalize_det(w->record, ek, &c, fuzz_pw, sizeof fuzz_pw - 1,
	                                            w->resp, &w->params, &w->ksf, nonce) != 0)
		fuzz_die("registration finalize");
	blind[0] = 9;
	memset(seed, 0x44, sizeof seed);
	if (opaque_client_ke1_det(w->ke1, &c, fuzz_pw, sizeof fuzz_pw - 1, blind, nonce, seed) != 0)
		fuzz_die("KE1");
	w->login_state = c;
	if (opaque_server_ke2_det(w->ke2, &s, w->ke1, w->record, fuzz_id, sizeof fuzz_id - 1,
	                          w->oprf_seed, &w->key, &w->params, nonce, nonce, seed) != 0)
		fuzz_die("KE2");
	w->server_state = s;
	if (opaque_client_ke3(w->ke3, sk, ek, NULL, &c, fuzz_pw, sizeof fuzz_pw - 1, w->ke2,
	                      &w->params, &w->ksf) != 0)
		fuzz_die("KE3");
}

/* out = base XOR data (data shorter than base leaves the tail of base unchanged). */
static void fuzz_xor(uint8_t *out, const uint8_t *base, size_t n, const uint8_t *data, size_t len)
{
	memcpy(out, base, n);
	for (size_t i = 0; i < n && i < len; i++)
		out[i] ^= data[i];
}

/* A message of exactly n bytes is either the input itself or a mutation of a valid one. */
static int fuzz_is_unchanged(const uint8_t *a, const uint8_t *b, size_t n)
{
	return memcmp(a, b, n) == 0;
}

#endif
