/*
 * Unit tests for crypto/opaque: registration and login round trips (right and wrong password,
 * with and without identities, context), fake records, every decoder with hostile lengths,
 * identity and non-canonical elements in every position, every byte of KE2 and KE3 flipped.
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
#include "crypto/opaque.h"

static const uint8_t oprf_seed[OPAQUE_OPRF_SEED_LEN] = {1, 2, 3};
static const uint8_t fake_seed[OPAQUE_FAKE_SEED_LEN] = {9, 8, 7};
static const uint8_t cred_id[] = "alice@example";
static const uint8_t pw[] = "correct horse battery staple";
static const uint8_t wrong_pw[] = "correct horse battery stapler";
/* Cheap Argon2id so the tests exercise the real KSF path quickly. */
static const struct ksf_params ksf = {KSF_ARGON2ID, 1, 8};
static const struct ksf_params ksf_id = {KSF_IDENTITY, 0, 0};

/* p, the field prime 2^255 - 19: a non-canonical encoding (of zero). */
static const uint8_t noncanon_p[32] = {
    0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
};
/* An odd ("negative") field element: never a canonical ristretto255 encoding. */
static const uint8_t noncanon_neg[32] = {1};

/* Spoils the element at p: 0 identity, 1 = p, 2 negative, 3 the valid element with bit 255 set
 * (libsodium 1.0.18 alone would accept that one as a second spelling of the same element). */
#define NBAD 4
static void spoil(uint8_t *p, size_t how)
{
	switch (how) {
	case 0: memset(p, 0, 32); break;
	case 1: memcpy(p, noncanon_p, 32); break;
	case 2: memcpy(p, noncanon_neg, 32); break;
	default: p[31] |= 0x80; break;
	}
}

struct world {
	struct opaque_server_key key;
	uint8_t record[OPAQUE_RECORD_LEN];
	uint8_t export_key[OPAQUE_EXPORT_KEY_LEN];
};

static void do_register(struct world *w, const struct opaque_params *p, const struct ksf_params *k)
{
	struct opaque_client_state cst;
	uint8_t req[OPAQUE_REGISTRATION_REQUEST_LEN], resp[OPAQUE_REGISTRATION_RESPONSE_LEN];

	assert_int_equal(opaque_server_key_generate(&w->key), 0);
	assert_int_equal(opaque_client_registration_request(req, &cst, pw, sizeof pw - 1), 0);
	assert_int_equal(opaque_registration_request_check(req, sizeof req), 0);
	assert_int_equal(opaque_server_registration_response(resp, req, w->key.pk, oprf_seed,
	                                                     cred_id, sizeof cred_id - 1),
	                 0);
	assert_int_equal(opaque_registration_response_check(resp, sizeof resp), 0);
	assert_memory_equal(resp + 32, w->key.pk, 32);
	assert_int_equal(opaque_client_registration_finalize(w->record, w->export_key, &cst, pw,
	                                                     sizeof pw - 1, resp, p, k),
	                 0);
	assert_int_equal(opaque_record_check(w->record, sizeof w->record), 0);
	/* the client state is wiped after use */
	assert_true(sodium_is_zero((const uint8_t *)&cst, sizeof cst));
}

/* One login; returns what client_ke3 returned, and checks the server side when it succeeded. */
static int do_login(const struct world *w, const uint8_t *password, size_t password_len,
                    const struct opaque_params *pc, const struct opaque_params *ps,
                    const struct ksf_params *k)
{
	struct opaque_client_state cst;
	struct opaque_server_state sst;
	uint8_t ke1[OPAQUE_KE1_LEN], ke2[OPAQUE_KE2_LEN], ke3[OPAQUE_KE3_LEN];
	uint8_t sk_c[64], sk_s[64], ek[64], spk[32];
	int r;

	assert_int_equal(opaque_client_ke1(ke1, &cst, password, password_len), 0);
	assert_int_equal(opaque_ke1_check(ke1, sizeof ke1), 0);
	assert_int_equal(opaque_server_ke2(ke2, &sst, ke1, w->record, cred_id, sizeof cred_id - 1,
	                                   oprf_seed, &w->key, ps),
	                 0);
	assert_int_equal(opaque_ke2_check(ke2, sizeof ke2), 0);
	r = opaque_client_ke3(ke3, sk_c, ek, spk, &cst, password, password_len, ke2, pc, k);
	if (r != 0) {
		/* nothing usable leaks out of a failed login */
		assert_true(sodium_is_zero(ke3, sizeof ke3));
		assert_true(sodium_is_zero(sk_c, sizeof sk_c));
		assert_true(sodium_is_zero(ek, sizeof ek));
		return r;
	}
	assert_int_equal(opaque_ke3_check(ke3, sizeof ke3), 0);
	assert_memory_equal(spk, w->key.pk, 32);
	assert_memory_equal(ek, w->export_key, sizeof ek);
	assert_int_equal(opaque_server_finish(sk_s, &sst, ke3), 0);
	assert_memory_equal(sk_c, sk_s, sizeof sk_c);
	/* the server state is single use */
	assert_true(sodium_is_zero((const uint8_t *)&sst, sizeof sst));
	assert_int_equal(opaque_server_finish(sk_s, &sst, ke3), SV_ERR_AUTH);
	return 0;
}

static void test_round_trip(void **state)
{
	struct world w;
	struct opaque_params p = {(const uint8_t *)"sealvault-test", 14, NULL, 0, NULL, 0};

	do_register(&w, &p, &ksf);
	assert_int_equal(do_login(&w, pw, sizeof pw - 1, &p, &p, &ksf), 0);
	assert_int_equal(do_login(&w, wrong_pw, sizeof wrong_pw - 1, &p, &p, &ksf), SV_ERR_AUTH);
	assert_int_equal(do_login(&w, pw, 0, &p, &p, &ksf), SV_ERR_AUTH);
	/* a different KSF profile is a different password */
	struct ksf_params other = {KSF_ARGON2ID, 2, 8};
	assert_int_equal(do_login(&w, pw, sizeof pw - 1, &p, &p, &other), SV_ERR_AUTH);
	/* NULL params are the empty context and default identities */
	do_register(&w, NULL, &ksf_id);
	assert_int_equal(do_login(&w, pw, sizeof pw - 1, NULL, NULL, &ksf_id), 0);
}

static void test_identities_and_context(void **state)
{
	struct world w;
	struct opaque_params p = {(const uint8_t *)"ctx", 3, (const uint8_t *)"alice", 5,
	                          (const uint8_t *)"bob", 3};
	struct opaque_params q;

	do_register(&w, &p, &ksf_id);
	assert_int_equal(do_login(&w, pw, sizeof pw - 1, &p, &p, &ksf_id), 0);
	assert_int_equal(do_login(&w, wrong_pw, sizeof wrong_pw - 1, &p, &p, &ksf_id), SV_ERR_AUTH);
	/* the client expects other identities than it registered with: envelope fails */
	q = p;
	q.server_identity = (const uint8_t *)"eve";
	assert_int_equal(do_login(&w, pw, sizeof pw - 1, &q, &p, &ksf_id), SV_ERR_AUTH);
	/* server and client disagree about the client identity: the server MAC fails */
	q = p;
	q.client_identity = (const uint8_t *)"alicf";
	assert_int_equal(do_login(&w, pw, sizeof pw - 1, &p, &q, &ksf_id), SV_ERR_AUTH);
	/* different contexts */
	q = p;
	q.context = (const uint8_t *)"CTX";
	assert_int_equal(do_login(&w, pw, sizeof pw - 1, &p, &q, &ksf_id), SV_ERR_AUTH);
	/* bad parameter shapes are refused before any work */
	q = p;
	q.client_identity_len = 0;
	assert_int_equal(do_login(&w, pw, sizeof pw - 1, &q, &p, &ksf_id), SV_ERR_RANGE);
	q = p;
	q.context = NULL;
	struct opaque_server_state sst;
	uint8_t ke1[96] = {0}, ke2[320];
	assert_int_equal(
	    opaque_server_ke2(ke2, &sst, ke1, w.record, cred_id, 5, oprf_seed, &w.key, &q),
	    SV_ERR_RANGE);
}

static void test_fake_record(void **state)
{
	struct opaque_params p = {(const uint8_t *)"ctx", 3, NULL, 0, NULL, 0};
	uint8_t r1[OPAQUE_RECORD_LEN], r2[OPAQUE_RECORD_LEN], r3[OPAQUE_RECORD_LEN];
	struct world w;

	assert_int_equal(opaque_fake_record_derive(r1, fake_seed, cred_id, sizeof cred_id - 1), 0);
	assert_int_equal(opaque_fake_record_derive(r2, fake_seed, cred_id, sizeof cred_id - 1), 0);
	assert_int_equal(opaque_fake_record_derive(r3, fake_seed, (const uint8_t *)"bob", 3), 0);
	assert_memory_equal(r1, r2, sizeof r1);                  /* stable per identifier */
	assert_memory_not_equal(r1, r3, 96);                     /* differs across identifiers */
	assert_true(sodium_is_zero(r1 + 96, 96));                /* all-zero envelope */
	assert_int_equal(opaque_record_check(r1, sizeof r1), 0); /* a valid-looking record */
	/* client public key = HashToGroup(fake_seed | credential_identifier), docs/protocol.md */
	static const char dst[] = "sealvault-v1-FakeClientKey-ristretto255_XMD:SHA-512_R255MAP_RO_";
	const struct h2c_part in[] = {{fake_seed, 32}, {cred_id, sizeof cred_id - 1}};
	uint8_t pk[32];
	assert_int_equal(h2c_hash_to_group(pk, in, 2, (const uint8_t *)dst, sizeof dst - 1), 0);
	assert_memory_equal(r1, pk, sizeof pk);
	assert_int_equal(opaque_fake_record_derive(r3, fake_seed, NULL, 0), SV_ERR_RANGE);
	assert_int_equal(opaque_fake_record_derive(r3, fake_seed, cred_id, 0), SV_ERR_RANGE);
	/* A login against a fake record runs the whole server path and fails on the client. */
	assert_int_equal(opaque_server_key_generate(&w.key), 0);
	memcpy(w.record, r1, sizeof r1);
	memset(w.export_key, 0, sizeof w.export_key);
	assert_int_equal(do_login(&w, pw, sizeof pw - 1, &p, &p, &ksf_id), SV_ERR_AUTH);
}

static void test_server_keys(void **state)
{
	struct opaque_server_key k, k2;
	uint8_t seed[32] = {5}, zero[32] = {0}, big[32];

	assert_int_equal(opaque_server_key_derive(&k, seed), 0);
	assert_int_equal(opaque_server_key_from_sk(&k2, k.sk), 0);
	assert_memory_equal(k.pk, k2.pk, 32);
	assert_int_equal(opaque_server_key_from_sk(&k2, zero), SV_ERR_CRYPTO);
	memset(big, 0xff, sizeof big); /* >= L: not reduced */
	assert_int_equal(opaque_server_key_from_sk(&k2, big), SV_ERR_CRYPTO);
	assert_true(sodium_is_zero((const uint8_t *)&k2, sizeof k2));
}

typedef int (*check_fn)(const uint8_t *, size_t);

static void hostile_lengths(check_fn fn, size_t n, const uint8_t *valid)
{
	uint8_t buf[OPAQUE_KE2_LEN + 1];

	memcpy(buf, valid, n);
	buf[n] = 0;
	assert_int_equal(fn(buf, n), 0);
	assert_int_equal(fn(buf, 0), SV_ERR_INVALID);
	assert_int_equal(fn(buf, 1), SV_ERR_INVALID);
	assert_int_equal(fn(buf, n - 1), SV_ERR_INVALID);
	assert_int_equal(fn(buf, n + 1), SV_ERR_INVALID);
	assert_int_equal(fn(buf, 0xffffffffu), SV_ERR_INVALID);
	assert_int_equal(fn(NULL, n), SV_ERR_INVALID);
}

/* Each element position: the identity and three non-canonical encodings must be refused. */
static void bad_elements(check_fn fn, const uint8_t *valid, size_t n, const size_t *offs,
                         size_t noffs)
{
	uint8_t buf[OPAQUE_KE2_LEN];

	for (size_t i = 0; i < noffs; i++)
		for (size_t j = 0; j < NBAD; j++) {
			memcpy(buf, valid, n);
			spoil(buf + offs[i], j);
			assert_int_equal(fn(buf, n), SV_ERR_CRYPTO);
		}
}

struct transcript {
	struct world w;
	struct opaque_client_state cst;
	struct opaque_server_state sst;
	uint8_t req[32], resp[64], ke1[96], ke2[320], ke3[64];
};

static void make_transcript(struct transcript *t)
{
	struct opaque_client_state c2;
	uint8_t sk[64], ek[64];

	do_register(&t->w, NULL, &ksf_id);
	assert_int_equal(opaque_client_registration_request(t->req, &c2, pw, sizeof pw - 1), 0);
	assert_int_equal(opaque_server_registration_response(t->resp, t->req, t->w.key.pk,
	                                                     oprf_seed, cred_id, 3),
	                 0);
	assert_int_equal(opaque_client_ke1(t->ke1, &t->cst, pw, sizeof pw - 1), 0);
	assert_int_equal(opaque_server_ke2(t->ke2, &t->sst, t->ke1, t->w.record, cred_id,
	                                   sizeof cred_id - 1, oprf_seed, &t->w.key, NULL),
	                 0);
	c2 = t->cst;
	assert_int_equal(
	    opaque_client_ke3(t->ke3, sk, ek, NULL, &c2, pw, sizeof pw - 1, t->ke2, NULL, &ksf_id),
	    0);
}

static void test_decoders(void **state)
{
	static const size_t req_offs[] = {0}, resp_offs[] = {0, 32}, ke1_offs[] = {0, 64},
	                    ke2_offs[] = {0, 224}, rec_offs[] = {0};
	struct transcript t;

	make_transcript(&t);
	hostile_lengths(opaque_registration_request_check, 32, t.req);
	hostile_lengths(opaque_registration_response_check, 64, t.resp);
	hostile_lengths(opaque_record_check, 192, t.w.record);
	hostile_lengths(opaque_ke1_check, 96, t.ke1);
	hostile_lengths(opaque_ke2_check, 320, t.ke2);
	hostile_lengths(opaque_ke3_check, 64, t.ke3);
	bad_elements(opaque_registration_request_check, t.req, 32, req_offs, 1);
	bad_elements(opaque_registration_response_check, t.resp, 64, resp_offs, 2);
	bad_elements(opaque_record_check, t.w.record, 192, rec_offs, 1);
	bad_elements(opaque_ke1_check, t.ke1, 96, ke1_offs, 2);
	bad_elements(opaque_ke2_check, t.ke2, 320, ke2_offs, 2);
}

/* The processing functions refuse bad elements themselves, without the decoders. */
static void test_bad_elements_processing(void **state)
{
	struct transcript t;
	uint8_t buf[320], out[320], rec[192], ek[64], sk[64];
	struct opaque_server_state sst;
	struct opaque_client_state c;

	make_transcript(&t);
	for (size_t j = 0; j < NBAD; j++) {
		/* registration request */
		memcpy(buf, t.req, 32);
		spoil(buf, j);
		assert_int_equal(opaque_server_registration_response(out, buf, t.w.key.pk,
		                                                     oprf_seed, cred_id, 3),
		                 SV_ERR_CRYPTO);
		assert_true(sodium_is_zero(out, 64));
		/* KE1: blinded element, then client key share */
		for (size_t off = 0; off <= 64; off += 64) {
			memcpy(buf, t.ke1, 96);
			spoil(buf + off, j);
			assert_int_equal(opaque_server_ke2(out, &sst, buf, t.w.record, cred_id, 3,
			                                   oprf_seed, &t.w.key, NULL),
			                 SV_ERR_CRYPTO);
			assert_true(sodium_is_zero(out, 320));
		}
		/* registration response: evaluated element, then server public key */
		for (size_t off = 0; off <= 32; off += 32) {
			memcpy(buf, t.resp, 64);
			spoil(buf + off, j);
			assert_int_equal(
			    opaque_client_registration_request(out, &c, pw, sizeof pw - 1), 0);
			assert_int_equal(opaque_client_registration_finalize(
			                     rec, ek, &c, pw, sizeof pw - 1, buf, NULL, &ksf_id),
			                 SV_ERR_CRYPTO);
		}
		/* KE2: evaluated element and server key share (the masked key is covered by the
		 * envelope MAC, see test_tamper_ke2) */
		for (size_t off = 0; off <= 224; off += 224) {
			memcpy(buf, t.ke2, 320);
			spoil(buf + off, j);
			c = t.cst;
			assert_int_not_equal(opaque_client_ke3(out, sk, ek, NULL, &c, pw,
			                                       sizeof pw - 1, buf, NULL, &ksf_id),
			                     0);
		}
	}
}

static void test_tamper_ke2(void **state)
{
	struct transcript t;
	uint8_t ke2[320], ke3[64], sk[64], ek[64];
	struct opaque_client_state c;

	make_transcript(&t);
	for (size_t i = 0; i < sizeof ke2; i++) {
		memcpy(ke2, t.ke2, sizeof ke2);
		ke2[i] ^= (uint8_t)(1u << (i % 8));
		c = t.cst;
		assert_int_not_equal(
		    opaque_client_ke3(ke3, sk, ek, NULL, &c, pw, sizeof pw - 1, ke2, NULL, &ksf_id),
		    0);
		assert_true(sodium_is_zero(ke3, sizeof ke3));
	}
	/* the untampered KE2 still works from the same state */
	c = t.cst;
	assert_int_equal(
	    opaque_client_ke3(ke3, sk, ek, NULL, &c, pw, sizeof pw - 1, t.ke2, NULL, &ksf_id), 0);
	assert_memory_equal(ke3, t.ke3, sizeof ke3);
}

static void test_tamper_ke3(void **state)
{
	struct transcript t;
	struct opaque_server_state s;
	uint8_t ke3[64], sk[64];

	make_transcript(&t);
	for (size_t i = 0; i < sizeof ke3; i++) {
		memcpy(ke3, t.ke3, sizeof ke3);
		ke3[i] ^= (uint8_t)(0x80u >> (i % 8));
		s = t.sst;
		memset(sk, 0xaa, sizeof sk);
		assert_int_equal(opaque_server_finish(sk, &s, ke3), SV_ERR_AUTH);
		assert_true(sodium_is_zero(sk, sizeof sk));
		assert_true(sodium_is_zero((const uint8_t *)&s, sizeof s));
	}
	s = t.sst;
	assert_int_equal(opaque_server_finish(sk, &s, t.ke3), 0);
}

static void test_bad_arguments(void **state)
{
	struct transcript t;
	uint8_t out[320], sk[64], ek[64];
	struct opaque_server_state s;
	struct opaque_client_state c;
	struct ksf_params bad_ksf = {7, 0, 0};

	make_transcript(&t);
	/* credential identifiers must be 1..65535 bytes */
	assert_int_equal(
	    opaque_server_registration_response(out, t.req, t.w.key.pk, oprf_seed, cred_id, 0),
	    SV_ERR_RANGE);
	assert_int_equal(opaque_server_ke2(out, &s, t.ke1, t.w.record, cred_id, 65536, oprf_seed,
	                                   &t.w.key, NULL),
	                 SV_ERR_RANGE);
	/* a KSF the client cannot run fails before any output */
	c = t.cst;
	assert_int_equal(
	    opaque_client_ke3(out, sk, ek, NULL, &c, pw, sizeof pw - 1, t.ke2, NULL, &bad_ksf),
	    SV_ERR_INVALID);
	/* over-long passwords are refused */
	assert_int_equal(opaque_client_ke1(out, &c, pw, 65536), SV_ERR_RANGE);
	/* wrong credential identifier at login = wrong OPRF key = authentication failure */
	assert_int_equal(opaque_server_ke2(out, &s, t.ke1, t.w.record, (const uint8_t *)"x", 1,
	                                   oprf_seed, &t.w.key, NULL),
	                 0);
	c = t.cst;
	assert_int_equal(
	    opaque_client_ke3(out + 256, sk, ek, NULL, &c, pw, sizeof pw - 1, out, NULL, &ksf_id),
	    SV_ERR_AUTH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_identities_and_context),
	    cmocka_unit_test(test_fake_record),   cmocka_unit_test(test_server_keys),
	    cmocka_unit_test(test_decoders),      cmocka_unit_test(test_bad_elements_processing),
	    cmocka_unit_test(test_tamper_ke2),    cmocka_unit_test(test_tamper_ke3),
	    cmocka_unit_test(test_bad_arguments),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
