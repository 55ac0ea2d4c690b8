/*
 * Unit tests for crypto/realm_wire: every /v2/realm/ body round-trips through its encoder and
 * decoder; every proper prefix and one trailing byte are refused; hostile lengths and values
 * (uid 0, 256 and 0xffff bytes, t > n, index 0 and > n, 17 realms, ciphertext 40 and 297 bytes,
 * an invalid element, a share that does not match its commitment, a wrong version byte).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "crypto/realm.h"
#include "crypto/realm_wire.h"

static uint8_t shares[REALM_MAX][32], commitments[REALM_MAX * 32], realm_id[16], version[16];
static uint8_t check[32], tag[32], enc_share[32], share_mac[32], ct[REALM_CT_MAX];
static uint8_t blinded[32], session[16], proof[64], release[REALM_RELEASE_LEN];
static const uint8_t uid[] = "alice@example.org";

static int setup(void **state)
{
	for (int i = 0; i < REALM_MAX; i++) {
		crypto_core_ristretto255_scalar_random(shares[i]);
		if (realm_commitment(commitments + 32 * i, shares[i]) != 0)
			return -1;
	}
	randombytes_buf(realm_id, sizeof realm_id);
	randombytes_buf(version, sizeof version);
	randombytes_buf(check, sizeof check);
	randombytes_buf(tag, sizeof tag);
	crypto_core_ristretto255_scalar_random(enc_share);
	randombytes_buf(share_mac, sizeof share_mac);
	randombytes_buf(ct, sizeof ct);
	crypto_core_ristretto255_random(blinded);
	randombytes_buf(session, sizeof session);
	randombytes_buf(proof, sizeof proof);
	randombytes_buf(release, sizeof release);
	return 0;
}

static struct realm_register_req reg(unsigned t, unsigned n, unsigned index)
{
	struct realm_register_req r = {
	    .uid = uid,
	    .uid_len = sizeof uid - 1,
	    .realm_id = realm_id,
	    .version = version,
	    .ksf = {KSF_ARGON2ID, 3, 65536},
	    .t = (uint8_t)t,
	    .n = (uint8_t)n,
	    .index = (uint8_t)index,
	    .guess_limit = 7,
	    .oprf_share = shares[index - 1],
	    .commitments = commitments,
	    .unlock_check = check,
	    .unlock_tag = tag,
	    .enc_share = enc_share,
	    .share_mac = share_mac,
	    .ct = ct,
	    .ct_len = REALM_SEALED_LEN(32),
	};
	return r;
}

typedef int (*decode_fn)(const uint8_t *in, size_t len, const char **why);

/* The whole body decodes; every proper prefix and the body plus one byte do not. */
static void prefixes_and_trailer(const struct sv_buf *b, decode_fn dec)
{
	uint8_t tmp[REALM_WIRE_MAX + 1];
	const char *why = NULL;

	memcpy(tmp, sv_buf_ptr(b), b->len);
	assert_int_equal(dec(tmp, b->len, &why), 0);
	for (size_t l = 0; l < b->len; l++) {
		why = NULL;
		assert_int_not_equal(dec(tmp, l, &why), 0);
		assert_non_null(why);
	}
	tmp[b->len] = 0;
	assert_int_equal(dec(tmp, b->len + 1, &why), SV_ERR_INVALID);
}

static int dec_register(const uint8_t *in, size_t len, const char **why)
{
	struct realm_register_req r;

	return realm_wire_register_decode(&r, in, len, why);
}
static int dec_uid(const uint8_t *in, size_t len, const char **why)
{
	struct realm_uid_req r;

	return realm_wire_uid_decode(&r, in, len, why);
}
static int dec_r1(const uint8_t *in, size_t len, const char **why)
{
	struct realm_recover1_reply r;

	return realm_wire_recover1_reply_decode(&r, in, len, why);
}
static int dec_r2(const uint8_t *in, size_t len, const char **why)
{
	struct realm_recover2_req r;

	return realm_wire_recover2_decode(&r, in, len, why);
}
static int dec_r2_reply(const uint8_t *in, size_t len, const char **why)
{
	struct realm_recover2_reply r;

	return realm_wire_recover2_reply_decode(&r, in, len, why);
}
static int dec_r3(const uint8_t *in, size_t len, const char **why)
{
	struct realm_recover3_req r;

	return realm_wire_recover3_decode(&r, in, len, why);
}
static int dec_r3_reply(const uint8_t *in, size_t len, const char **why)
{
	struct realm_recover3_reply r;

	return realm_wire_recover3_reply_decode(&r, in, len, why);
}
static int dec_status(const uint8_t *in, size_t len, const char **why)
{
	struct realm_status_reply r;

	return realm_wire_status_reply_decode(&r, in, len, why);
}

static void test_register_round_trip(void **state)
{
	static const unsigned shapes[][3] = {{1, 1, 1}, {2, 3, 2}, {3, 5, 5}, {16, 16, 16}};
	struct realm_register_req in, out;
	struct sv_buf b;

	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		in = reg(shapes[s][0], shapes[s][1], shapes[s][2]);
		assert_int_equal(sv_buf_init(&b, REALM_WIRE_MAX), 0);
		assert_int_equal(realm_wire_register_encode(&b, &in), 0);
		assert_int_equal(b.len, 1 + 2 + (sizeof uid - 1) + 16 + 16 + 9 + 4 + 32 +
		                            32 * shapes[s][1] + 4 * 32 + 2 + REALM_SEALED_LEN(32));
		assert_int_equal(realm_wire_register_decode(&out, sv_buf_ptr(&b), b.len, NULL), 0);
		assert_int_equal(out.uid_len, in.uid_len);
		assert_memory_equal(out.uid, uid, in.uid_len);
		assert_memory_equal(out.realm_id, realm_id, 16);
		assert_memory_equal(out.version, version, 16);
		assert_int_equal(out.ksf.type, KSF_ARGON2ID);
		assert_int_equal(out.ksf.t, 3);
		assert_int_equal(out.ksf.m_kib, 65536);
		assert_int_equal(out.t, in.t);
		assert_int_equal(out.n, in.n);
		assert_int_equal(out.index, in.index);
		assert_int_equal(out.guess_limit, 7);
		assert_memory_equal(out.oprf_share, in.oprf_share, 32);
		assert_memory_equal(out.commitments, commitments, 32 * in.n);
		assert_memory_equal(out.unlock_check, check, 32);
		assert_memory_equal(out.unlock_tag, tag, 32);
		assert_memory_equal(out.enc_share, enc_share, 32);
		assert_memory_equal(out.share_mac, share_mac, 32);
		assert_int_equal(out.ct_len, in.ct_len);
		assert_memory_equal(out.ct, ct, in.ct_len);
		if (s == 1)
			prefixes_and_trailer(&b, dec_register);
		sv_buf_free(&b);
	}
	/* the longest body fits REALM_WIRE_MAX exactly */
	{
		static uint8_t long_uid[REALM_UID_MAX];

		in = reg(16, 16, 1);
		in.uid = long_uid;
		in.uid_len = REALM_UID_MAX;
		in.ct_len = REALM_CT_MAX;
		assert_int_equal(sv_buf_init(&b, REALM_WIRE_MAX), 0);
		assert_int_equal(realm_wire_register_encode(&b, &in), 0);
		assert_int_equal(b.len, REALM_WIRE_MAX);
		assert_int_equal(realm_wire_register_decode(&out, sv_buf_ptr(&b), b.len, NULL), 0);
		sv_buf_free(&b);
	}
}

/* Encodes r, patches byte at off to val, and expects the decoder to refuse with err. */
static void patched(const struct realm_register_req *r, size_t off, uint8_t val, int err)
{
	struct realm_register_req out;
	uint8_t tmp[REALM_WIRE_MAX];
	const char *why = NULL;
	struct sv_buf b;

	assert_int_equal(sv_buf_init(&b, REALM_WIRE_MAX), 0);
	assert_int_equal(realm_wire_register_encode(&b, r), 0);
	memcpy(tmp, sv_buf_ptr(&b), b.len);
	tmp[off] = val;
	assert_int_equal(realm_wire_register_decode(&out, tmp, b.len, &why), err);
	assert_non_null(why);
	assert_null(out.uid); /* nothing written */
	sv_buf_free(&b);
}

static void test_register_hostile(void **state)
{
	struct realm_register_req r = reg(2, 3, 2), bad;
	const size_t u = sizeof uid - 1, shape = 1 + 2 + u + 16 + 16 + 9; /* offset of t */
	const size_t share = shape + 4, coms = share + 32;
	struct sv_buf b;

	patched(&r, 0, 1, SV_ERR_INVALID);                /* version byte 1 */
	patched(&r, 0, 3, SV_ERR_INVALID);                /* version byte 3 */
	patched(&r, shape, 4, SV_ERR_RANGE);              /* t > n */
	patched(&r, shape, 0, SV_ERR_RANGE);              /* t = 0 */
	patched(&r, shape + 1, 17, SV_ERR_RANGE);         /* 17 realms */
	patched(&r, shape + 2, 0, SV_ERR_RANGE);          /* index 0 */
	patched(&r, shape + 2, 4, SV_ERR_RANGE);          /* index > n */
	patched(&r, shape + 2, 1, SV_ERR_CRYPTO);         /* share is not realm 1's */
	patched(&r, shape - 9, 7, SV_ERR_RANGE);          /* unknown KSF type */
	patched(&r, share + 31, 0xff, SV_ERR_CRYPTO);     /* share not reduced */
	patched(&r, coms + 32 + 31, 0x80, SV_ERR_CRYPTO); /* commitment with bit 255 set */
	patched(&r, coms + 32 + 5, commitments[32 + 5] ^ 1, SV_ERR_CRYPTO);
	patched(&r, 1, 0x01, SV_ERR_RANGE); /* uid length 256 + 17 */
	patched(&r, 2, 0, SV_ERR_RANGE);    /* uid length 0 (high byte 0) */
	{
		/* uid length 0xffff, 256 */
		uint8_t body[] = {2, 0xff, 0xff, 'a'}, body2[] = {2, 0x01, 0x00, 'a'};
		struct realm_register_req out;

		assert_int_equal(realm_wire_register_decode(&out, body, sizeof body, NULL),
		                 SV_ERR_RANGE);
		assert_int_equal(realm_wire_register_decode(&out, body2, sizeof body2, NULL),
		                 SV_ERR_RANGE);
		assert_int_equal(realm_wire_register_decode(&out, NULL, 0, NULL), SV_ERR_INVALID);
	}
	/* ciphertext 40 and 297 bytes: the encoder refuses, and so does the decoder */
	assert_int_equal(sv_buf_init(&b, REALM_WIRE_MAX + 8), 0);
	bad = r;
	bad.ct_len = REALM_CT_MIN - 1;
	assert_int_equal(realm_wire_register_encode(&b, &bad), SV_ERR_RANGE);
	sv_buf_free(&b);
	{
		uint8_t tmp[REALM_WIRE_MAX + 8];
		struct realm_register_req out;
		size_t len;

		assert_int_equal(sv_buf_init(&b, REALM_WIRE_MAX), 0);
		assert_int_equal(realm_wire_register_encode(&b, &r), 0);
		len = b.len;
		memcpy(tmp, sv_buf_ptr(&b), len);
		sv_buf_free(&b);
		/* rewrite the ct length field (2 bytes before the ciphertext) */
		tmp[len - r.ct_len - 2] = 0;
		tmp[len - r.ct_len - 1] = REALM_CT_MIN - 1;
		assert_int_equal(
		    realm_wire_register_decode(&out, tmp, len - r.ct_len + REALM_CT_MIN - 1, NULL),
		    SV_ERR_RANGE);
		tmp[len - r.ct_len - 2] = (uint8_t)((REALM_CT_MAX + 1) >> 8);
		tmp[len - r.ct_len - 1] = (uint8_t)(REALM_CT_MAX + 1);
		assert_int_equal(realm_wire_register_decode(&out, tmp, len, NULL), SV_ERR_RANGE);
	}
	bad = r;
	bad.t = 3;
	bad.n = 2;
	assert_int_equal(sv_buf_init(&b, REALM_WIRE_MAX), 0);
	assert_int_equal(realm_wire_register_encode(&b, &bad), SV_ERR_RANGE);
	sv_buf_free(&b);
}

static void test_small_bodies(void **state)
{
	struct realm_uid_req u = {uid, sizeof uid - 1}, uo;
	struct realm_recover2_req r2 = {uid, sizeof uid - 1, version, blinded}, r2o;
	struct realm_recover2_reply p2 = {session, blinded, proof, 4}, p2o;
	struct realm_recover3_req r3 = {session, tag}, r3o;
	struct realm_recover3_reply p3 = {release, ct, REALM_CT_MAX}, p3o;
	struct sv_buf b;

	assert_int_equal(sv_buf_init(&b, REALM_WIRE_MAX), 0);
	assert_int_equal(realm_wire_uid_encode(&b, &u), 0);
	assert_int_equal(b.len, 3 + sizeof uid - 1);
	assert_int_equal(realm_wire_uid_decode(&uo, sv_buf_ptr(&b), b.len, NULL), 0);
	assert_memory_equal(uo.uid, uid, uo.uid_len);
	prefixes_and_trailer(&b, dec_uid);

	sv_buf_reset(&b);
	assert_int_equal(realm_wire_recover2_encode(&b, &r2), 0);
	assert_int_equal(realm_wire_recover2_decode(&r2o, sv_buf_ptr(&b), b.len, NULL), 0);
	assert_memory_equal(r2o.version, version, 16);
	assert_memory_equal(r2o.blinded, blinded, 32);
	prefixes_and_trailer(&b, dec_r2);
	{
		uint8_t tmp[REALM_WIRE_MAX];

		memcpy(tmp, sv_buf_ptr(&b), b.len);
		memset(tmp + b.len - 32, 0, 32); /* the identity is not a blinded element */
		assert_int_equal(realm_wire_recover2_decode(&r2o, tmp, b.len, NULL), SV_ERR_CRYPTO);
	}

	sv_buf_reset(&b);
	assert_int_equal(realm_wire_recover2_reply_encode(&b, &p2), 0);
	assert_int_equal(b.len, REALM_RECOVER2_REPLY_LEN);
	assert_int_equal(realm_wire_recover2_reply_decode(&p2o, sv_buf_ptr(&b), b.len, NULL), 0);
	assert_memory_equal(p2o.session_id, session, 16);
	assert_memory_equal(p2o.proof, proof, 64);
	assert_int_equal(p2o.attempts_left, 4);
	prefixes_and_trailer(&b, dec_r2_reply);

	sv_buf_reset(&b);
	assert_int_equal(realm_wire_recover3_encode(&b, &r3), 0);
	assert_int_equal(b.len, 1 + 16 + 32);
	assert_int_equal(realm_wire_recover3_decode(&r3o, sv_buf_ptr(&b), b.len, NULL), 0);
	assert_memory_equal(r3o.tag_proof, tag, 32);
	prefixes_and_trailer(&b, dec_r3);

	sv_buf_reset(&b);
	assert_int_equal(realm_wire_recover3_reply_encode(&b, &p3), 0);
	assert_int_equal(b.len, REALM_RELEASE_LEN + 2 + REALM_CT_MAX);
	assert_int_equal(realm_wire_recover3_reply_decode(&p3o, sv_buf_ptr(&b), b.len, NULL), 0);
	assert_memory_equal(p3o.release, release, REALM_RELEASE_LEN);
	assert_int_equal(p3o.ct_len, REALM_CT_MAX);
	prefixes_and_trailer(&b, dec_r3_reply);
	sv_buf_free(&b);
}

static void test_recover1_and_status_replies(void **state)
{
	struct realm_recover1_reply r1 = {version, {KSF_IDENTITY, 0, 0}, 2, 3, 3, 9,
	                                  check,   commitments},
	                            r1o;
	struct realm_status_reply st = {REALM_STATE_REGISTERED, version, 2, 3, 1, 10, 9}, sto;
	uint8_t tmp[REALM_WIRE_MAX];
	struct sv_buf b;

	assert_int_equal(sv_buf_init(&b, REALM_WIRE_MAX), 0);
	assert_int_equal(realm_wire_recover1_reply_encode(&b, &r1), 0);
	assert_int_equal(b.len, 16 + 9 + 4 + 32 + 3 * 32);
	assert_int_equal(realm_wire_recover1_reply_decode(&r1o, sv_buf_ptr(&b), b.len, NULL), 0);
	assert_int_equal(r1o.index, 3);
	assert_int_equal(r1o.attempts_left, 9);
	assert_memory_equal(r1o.commitments, commitments, 96);
	prefixes_and_trailer(&b, dec_r1);
	memcpy(tmp, sv_buf_ptr(&b), b.len);
	tmp[16 + 9 + 2] = 4; /* index > n */
	assert_int_equal(realm_wire_recover1_reply_decode(&r1o, tmp, b.len, NULL), SV_ERR_RANGE);

	sv_buf_reset(&b);
	assert_int_equal(realm_wire_status_reply_encode(&b, &st), 0);
	assert_int_equal(b.len, REALM_STATUS_REPLY_LEN);
	assert_int_equal(realm_wire_status_reply_decode(&sto, sv_buf_ptr(&b), b.len, NULL), 0);
	assert_int_equal(sto.guess_limit, 10);
	assert_int_equal(sto.attempts_left, 9);
	prefixes_and_trailer(&b, dec_status);
	memcpy(tmp, sv_buf_ptr(&b), b.len);
	tmp[b.len - 1] = 11; /* more left than the limit */
	assert_int_equal(realm_wire_status_reply_decode(&sto, tmp, b.len, NULL), SV_ERR_RANGE);

	st.state = REALM_STATE_DESTROYED;
	sv_buf_reset(&b);
	assert_int_equal(realm_wire_status_reply_encode(&b, &st), 0);
	assert_true(sodium_is_zero(sv_buf_ptr(&b) + 1, b.len - 1));
	assert_int_equal(realm_wire_status_reply_decode(&sto, sv_buf_ptr(&b), b.len, NULL), 0);
	assert_int_equal(sto.state, REALM_STATE_DESTROYED);
	memcpy(tmp, sv_buf_ptr(&b), b.len);
	tmp[5] = 1; /* a destroyed record has no version */
	assert_int_equal(realm_wire_status_reply_decode(&sto, tmp, b.len, NULL), SV_ERR_INVALID);
	tmp[0] = 3;
	assert_int_equal(realm_wire_status_reply_decode(&sto, tmp, b.len, NULL), SV_ERR_RANGE);
	st.state = 3;
	assert_int_equal(realm_wire_status_reply_encode(&b, &st), SV_ERR_RANGE);
	sv_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_register_round_trip),
	    cmocka_unit_test(test_register_hostile),
	    cmocka_unit_test(test_small_bodies),
	    cmocka_unit_test(test_recover1_and_status_replies),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, NULL);
}
