/*
 * Unit tests of the client's pure encoders and decoders: the backup-key blob (client/blob.c)
 * and the HTTP API bodies (client/wire.c): layouts, hostile lengths, every byte tampered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "client/blob.h"
#include "client/wire.h"
#include "common/buf.h"
#include "common/err.h"
#include "crypto/hkdf.h"

static const struct ksf_params KSF = {.type = KSF_ARGON2ID, .t = 3, .m_kib = 65536};

static void test_blob_round_trip(void **state)
{
	uint8_t ek[OPAQUE_EXPORT_KEY_LEN], blob[CLIENT_BLOB_MAX], out[CLIENT_SECRET_MAX];
	uint8_t secret[CLIENT_SECRET_MAX];
	size_t blob_len, out_len;
	struct ksf_params got;
	randombytes_buf(ek, sizeof(ek));
	randombytes_buf(secret, sizeof(secret));
	for (size_t n = 1; n <= CLIENT_SECRET_MAX; n += CLIENT_SECRET_MAX - 1) {
		assert_int_equal(client_blob_seal(blob, &blob_len, secret, n, ek, &KSF,
		                                  (const uint8_t *)"alice", 5),
		                 0);
		assert_int_equal(blob_len, n + CLIENT_BLOB_OVERHEAD);
		/* header: version 1, then the profile type | t | m_kib big-endian */
		static const uint8_t hdr[] = {1, 1, 0, 0, 0, 3, 0, 1, 0, 0};
		assert_memory_equal(blob, hdr, sizeof(hdr));
		assert_int_equal(client_blob_open(out, &out_len, &got, blob, blob_len, ek,
		                                  (const uint8_t *)"alice", 5),
		                 0);
		assert_int_equal(out_len, n);
		assert_memory_equal(out, secret, n);
		assert_int_equal(got.t, 3);
		assert_int_equal(got.m_kib, 65536);
	}
	assert_int_equal(CLIENT_BLOB_MAX, 512);
	assert_int_equal(blob_len, CLIENT_BLOB_MAX);
}

static void test_blob_rejects(void **state)
{
	uint8_t ek[OPAQUE_EXPORT_KEY_LEN], blob[CLIENT_BLOB_MAX], out[CLIENT_SECRET_MAX];
	size_t blob_len, out_len = 777;
	randombytes_buf(ek, sizeof(ek));
	assert_int_equal(client_blob_seal(blob, &blob_len, (const uint8_t *)"key", 3, ek, &KSF,
	                                  (const uint8_t *)"bob", 3),
	                 0);
	/* every byte flipped once must fail (header bytes: bad profile or AD mismatch) */
	for (size_t i = 0; i < blob_len; i++) {
		blob[i] ^= 0x40;
		assert_int_not_equal(client_blob_open(out, &out_len, NULL, blob, blob_len, ek,
		                                      (const uint8_t *)"bob", 3),
		                     0);
		blob[i] ^= 0x40;
	}
	assert_int_equal(out_len, 777);
	/* another user's id, another key */
	assert_int_equal(
	    client_blob_open(out, &out_len, NULL, blob, blob_len, ek, (const uint8_t *)"bob2", 4),
	    SV_ERR_AUTH);
	ek[0] ^= 1;
	assert_int_equal(
	    client_blob_open(out, &out_len, NULL, blob, blob_len, ek, (const uint8_t *)"bob", 3),
	    SV_ERR_AUTH);
	ek[0] ^= 1;
	/* hostile lengths */
	static const size_t lens[] = {0, 1, CLIENT_BLOB_OVERHEAD, CLIENT_BLOB_MAX + 1, SIZE_MAX};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		assert_int_equal(client_blob_open(out, &out_len, NULL, blob, lens[i], ek,
		                                  (const uint8_t *)"bob", 3),
		                 SV_ERR_INVALID);
	assert_int_equal(client_blob_open(out, &out_len, NULL, blob, blob_len - 1, ek,
	                                  (const uint8_t *)"bob", 3),
	                 SV_ERR_AUTH);
	assert_int_equal(
	    client_blob_open(out, &out_len, NULL, blob, blob_len, ek, (const uint8_t *)"bob", 3),
	    0);
	/* sealing bounds */
	uint8_t big[CLIENT_SECRET_MAX + 1] = {0};
	assert_int_equal(client_blob_seal(blob, &blob_len, big, sizeof(big), ek, &KSF,
	                                  (const uint8_t *)"bob", 3),
	                 SV_ERR_RANGE);
	assert_int_equal(
	    client_blob_seal(blob, &blob_len, big, 0, ek, &KSF, (const uint8_t *)"bob", 3),
	    SV_ERR_RANGE);
	assert_int_equal(
	    client_blob_seal(blob, &blob_len, big, 1, ek, &KSF, (const uint8_t *)"bob", 0),
	    SV_ERR_RANGE);
	struct ksf_params bad = {.type = KSF_ARGON2ID, .t = 0, .m_kib = 8};
	assert_int_not_equal(
	    client_blob_seal(blob, &blob_len, big, 1, ek, &bad, (const uint8_t *)"bob", 3), 0);
}

static void test_requests(void **state)
{
	struct sv_buf b;
	uint8_t req[32], rec[192], ke1[96], ke3[64], sid[16], sk[64], blob[5] = {9, 9, 9, 9, 9};
	struct client_wire_keys k;
	memset(req, 0xa1, sizeof(req));
	memset(rec, 0xb2, sizeof(rec));
	memset(ke1, 0xc3, sizeof(ke1));
	memset(ke3, 0xd4, sizeof(ke3));
	memset(sid, 0xe5, sizeof(sid));
	randombytes_buf(sk, sizeof(sk));
	assert_int_equal(client_wire_keys_derive(&k, sk), 0);
	assert_int_equal(sv_buf_init(&b, CLIENT_WIRE_BODY_MAX), 0);

	assert_int_equal(client_wire_register_start(&b, (const uint8_t *)"ab", 2, req), 0);
	assert_int_equal(b.len, 1 + 2 + 2 + 32);
	assert_memory_equal(b.data,
	                    "\x01\x00\x02"
	                    "ab",
	                    5);
	assert_int_equal(client_wire_register_finish(&b, (const uint8_t *)"ab", 2, rec, 7, blob, 5),
	                 0);
	assert_int_equal(b.len, 1 + 4 + 192 + 1 + 2 + 5);
	assert_int_equal(b.data[5 + 192], 7);
	assert_int_equal(client_wire_login_start(&b, (const uint8_t *)"ab", 2, ke1), 0);
	assert_int_equal(b.len, 1 + 4 + 96);

	/* login/finish: v | sid | KE3 | op | payload | HMAC(mac_key, sid | op | payload) */
	uint8_t mk[64], want[64], macced[16 + 1 + 32];
	assert_int_equal(
	    hkdf_sha512_expand(mk, 64, sk, 64, (const uint8_t *)"sealvault op mac", 16, NULL, 0),
	    0);
	assert_memory_equal(mk, k.mac_key, 64);
	assert_int_equal(client_wire_login_finish(&b, &k, sid, ke3, 3, req, 32), 0);
	assert_int_equal(b.len, 1 + 16 + 64 + 1 + 32 + 64);
	memcpy(macced, sid, 16);
	macced[16] = 3;
	memcpy(macced + 17, req, 32);
	hkdf_hmac_sha512(want, mk, 64, macced, sizeof(macced), NULL, 0);
	assert_memory_equal(b.data + b.len - 64, want, 64);
	assert_int_equal(client_wire_login_finish(&b, &k, sid, ke3, 1, NULL, 0), 0);
	assert_int_equal(b.len, 1 + 16 + 64 + 1 + 64);
	assert_int_equal(client_wire_login_finish(&b, &k, sid, ke3, 1, req, 32), SV_ERR_INVALID);
	assert_int_equal(client_wire_login_finish(&b, &k, sid, ke3, 3, NULL, 0), SV_ERR_INVALID);
	assert_int_equal(client_wire_login_finish(&b, &k, sid, ke3, 0, NULL, 0), SV_ERR_RANGE);
	assert_int_equal(client_wire_login_finish(&b, &k, sid, ke3, 4, NULL, 0), SV_ERR_RANGE);

	/* change-password/finish: the MAC covers every byte before it, version included */
	assert_int_equal(client_wire_change_finish(&b, &k, sid, rec, 5, blob, 5), 0);
	assert_int_equal(b.len, 1 + 16 + 192 + 1 + 2 + 5 + 64);
	hkdf_hmac_sha512(want, mk, 64, b.data, b.len - 64, NULL, 0);
	assert_memory_equal(b.data + b.len - 64, want, 64);

	/* identifier and blob bounds */
	uint8_t id[256] = {0};
	assert_int_equal(client_wire_login_start(&b, id, 0, ke1), SV_ERR_RANGE);
	assert_int_equal(client_wire_login_start(&b, id, 256, ke1), SV_ERR_RANGE);
	assert_int_equal(client_wire_login_start(&b, id, 255, ke1), 0);
	uint8_t bigblob[513] = {0};
	assert_int_equal(client_wire_register_finish(&b, id, 255, rec, 0, bigblob, 512), 0);
	assert_true(b.len <= CLIENT_WIRE_BODY_MAX);
	assert_int_equal(client_wire_register_finish(&b, id, 1, rec, 0, bigblob, 513),
	                 SV_ERR_RANGE);
	assert_int_equal(client_wire_register_finish(&b, id, 1, rec, 0, bigblob, 0), SV_ERR_RANGE);
	sv_buf_free(&b);
}

static void test_replies(void **state)
{
	uint8_t body[600], resp[64], sid[16], ke2[320], left = 99, blob[512];
	size_t blob_len = 0;
	struct client_wire_keys k;
	uint8_t sk[64];
	randombytes_buf(body, sizeof(body));
	randombytes_buf(sk, sizeof(sk));
	assert_int_equal(client_wire_keys_derive(&k, sk), 0);
	static const size_t hostile[] = {0, 1, 63, 65, 336, 338, SIZE_MAX};
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		assert_int_equal(client_wire_parse_register_start(resp, body, hostile[i]),
		                 SV_ERR_INVALID);
		assert_int_equal(client_wire_parse_login_start(sid, ke2, &left, body, hostile[i]),
		                 SV_ERR_INVALID);
		assert_int_equal(client_wire_parse_change(resp, body, hostile[i]), SV_ERR_INVALID);
	}
	assert_int_equal(left, 99);
	assert_int_equal(client_wire_parse_register_start(resp, body, 64), 0);
	assert_int_equal(client_wire_parse_login_start(sid, ke2, &left, body, 337), 0);
	assert_int_equal(left, body[336]);
	assert_int_equal(client_wire_parse_auth_failed(&left, body, 1), 0);
	assert_int_equal(left, body[0]);
	assert_int_equal(client_wire_parse_auth_failed(&left, body, 0), SV_ERR_INVALID);
	assert_int_equal(client_wire_parse_auth_failed(&left, body, 2), SV_ERR_INVALID);
	assert_int_equal(client_wire_parse_empty(body, 0), 0);
	assert_int_equal(client_wire_parse_empty(body, 1), SV_ERR_INVALID);

	/* recover: nonce(24) | XChaCha20-Poly1305(seal_key, AD = session id) */
	uint8_t sealed[24 + 100 + 16], plain[100];
	randombytes_buf(plain, sizeof(plain));
	randombytes_buf(sid, sizeof(sid));
	randombytes_buf(sealed, 24);
	crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + 24, NULL, plain, sizeof(plain), sid, 16,
	                                           NULL, sealed, k.seal_key);
	assert_int_equal(client_wire_parse_recover(blob, sizeof(blob), &blob_len, &k, sid, sealed,
	                                           sizeof(sealed)),
	                 0);
	assert_int_equal(blob_len, 100);
	assert_memory_equal(blob, plain, 100);
	for (size_t i = 0; i < sizeof(sealed); i += 7) {
		sealed[i] ^= 1;
		assert_int_equal(client_wire_parse_recover(blob, sizeof(blob), &blob_len, &k, sid,
		                                           sealed, sizeof(sealed)),
		                 SV_ERR_AUTH);
		sealed[i] ^= 1;
	}
	sid[0] ^= 1;
	assert_int_equal(client_wire_parse_recover(blob, sizeof(blob), &blob_len, &k, sid, sealed,
	                                           sizeof(sealed)),
	                 SV_ERR_AUTH);
	assert_int_equal(
	    client_wire_parse_recover(blob, 99, &blob_len, &k, sid, sealed, sizeof(sealed)),
	    SV_ERR_RANGE);
	assert_int_equal(
	    client_wire_parse_recover(blob, sizeof(blob), &blob_len, &k, sid, sealed, 40),
	    SV_ERR_INVALID);
	assert_int_equal(
	    client_wire_parse_recover(blob, sizeof(blob), &blob_len, &k, sid, sealed, 0),
	    SV_ERR_INVALID);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_blob_round_trip),
	    cmocka_unit_test(test_blob_rejects),
	    cmocka_unit_test(test_requests),
	    cmocka_unit_test(test_replies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
