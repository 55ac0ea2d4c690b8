/*
 * Unit tests for enclave/vault (and its session table, phantom counters and request decoders):
 * full protocol flows through vault_handle with the real OPAQUE client from crypto/, on a small
 * in-memory fake of the store functions (tests/lib/fake_store.h: no TPM, no files).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/recordkey.h"
#include "common/msg.h"
#include "crypto/hkdf.h"
#include "crypto/opaque.h"
#include "enclave/store.h"
#include "enclave/vault.h"
#include "enclave/vaultreq.h"
#include "policy/vault.h"

#include "tests/lib/fake_store.h"

/* ---- test fixture ---- */

static struct store S;
static struct sv_vault_policy P;
static struct vault *V;
static struct sv_buf R; /* the last reply */
static uint64_t NOW = 1000000;
static const struct ksf_params KSF = {KSF_IDENTITY, 0, 0};
static const uint8_t CONTEXT[] = "sealvault test";

static uint64_t MAX_USERS; /* vault_config.max_users of the next setup */

static int setup_with_rate(unsigned pending_max, unsigned rate_per_id)
{
	struct opaque_server_key k;
	memset(&S, 0, sizeof(S));
	randombytes_buf(S.sec.oprf_seed, sizeof(S.sec.oprf_seed));
	randombytes_buf(S.sec.fake_seed, sizeof(S.sec.fake_seed));
	assert_int_equal(opaque_server_key_generate(&k), 0);
	memcpy(S.sec.ake_sk, k.sk, sizeof(k.sk));
	memcpy(S.sec.ake_pk, k.pk, sizeof(k.pk));
	policy_vault_defaults(&P);
	P.max_guess_limit = 20;
	P.pending_login_max = pending_max;
	P.login_rate_per_id = rate_per_id;
	struct vault_config cfg = {CONTEXT, sizeof(CONTEXT) - 1, &P, NULL, MAX_USERS, "configured"};
	assert_int_equal(vault_new(&V, &S, &cfg), 0);
	assert_int_equal(sv_buf_init(&R, 4096), 0);
	return 0;
}

/* Most tests log in far faster than any per-identifier rate allows: without it. */
static int setup_with(unsigned pending_max)
{
	return setup_with_rate(pending_max, 0);
}

static int setup(void **state)
{
	return setup_with(64);
}
static int setup_rate(void **state)
{
	return setup_with_rate(64, 5); /* the default: 5 a minute, 5 at once */
}
static int setup_small(void **state)
{
	return setup_with(16);
}
static int setup_capacity(void **state)
{
	MAX_USERS = 3;
	int r = setup_with(64);
	MAX_USERS = 0;
	return r;
}

static int teardown(void **state)
{
	vault_free(V);
	V = NULL;
	sv_buf_free(&R);
	return 0;
}

/* Sends one request; returns the status byte. The caller's "loop" commits after every request. */
static uint8_t call(uint16_t type, const uint8_t *body, size_t len)
{
	assert_int_equal(vault_handle(V, type, body, len, NOW, &R), 0);
	assert_true(R.len >= 1);
	assert_int_equal(store_commit(&S), 0);
	return R.data[0];
}

static const uint8_t *rbody(void)
{
	return R.data + 1;
}
static size_t rlen(void)
{
	return R.len - 1;
}

static struct opaque_params params(void)
{
	struct opaque_params p = {CONTEXT, sizeof(CONTEXT) - 1, NULL, 0, NULL, 0};
	return p;
}

/* The identifier of a request: id itself, or for "@tenant/sub" the tokens-mode record key of
 * (tenant, sub) (common/recordkey.h), as the access check would make it (the tests run without
 * one: the identifier is the key). */
static size_t put_id(uint8_t *b, const char *id)
{
	size_t n = strlen(id);
	const char *slash = strchr(id, '/');
	if (id[0] == '@' && slash != NULL) {
		char tenant[64];
		snprintf(tenant, sizeof(tenant), "%.*s", (int)(slash - id - 1), id + 1);
		assert_int_equal(record_key_tenant(tenant, (const uint8_t *)slash + 1,
		                                   strlen(slash + 1), b + 2, STORE_ID_MAX, &n),
		                 0);
	} else
		memcpy(b + 2, id, n);
	b[0] = (uint8_t)(n >> 8);
	b[1] = (uint8_t)n;
	return 2 + n;
}

static uint8_t register_user(const char *id, const char *pw, uint8_t limit, const uint8_t *blob,
                             size_t blob_len)
{
	struct opaque_client_state st;
	uint8_t req[OPAQUE_REGISTRATION_REQUEST_LEN], resp[OPAQUE_REGISTRATION_RESPONSE_LEN];
	uint8_t rec[OPAQUE_RECORD_LEN], ek[OPAQUE_EXPORT_KEY_LEN], b[1024];
	struct opaque_params pp = params();
	size_t n = 0;

	assert_int_equal(
	    opaque_client_registration_request(req, &st, (const uint8_t *)pw, strlen(pw)), 0);
	b[n++] = 1;
	n += put_id(b + n, id);
	memcpy(b + n, req, sizeof(req));
	n += sizeof(req);
	uint8_t status = call(SV_MSG_REGISTER_START, b, n);
	if (status != SV_STATUS_OK) {
		opaque_client_state_wipe(&st);
		return status;
	}
	assert_int_equal(rlen(), OPAQUE_REGISTRATION_RESPONSE_LEN);
	memcpy(resp, rbody(), sizeof(resp));
	assert_int_equal(opaque_client_registration_finalize(rec, ek, &st, (const uint8_t *)pw,
	                                                     strlen(pw), resp, &pp, &KSF),
	                 0);
	n = 0;
	b[n++] = 1;
	n += put_id(b + n, id);
	memcpy(b + n, rec, sizeof(rec));
	n += sizeof(rec);
	b[n++] = limit;
	b[n++] = (uint8_t)(blob_len >> 8);
	b[n++] = (uint8_t)blob_len;
	memcpy(b + n, blob, blob_len);
	n += blob_len;
	return call(SV_MSG_REGISTER_FINISH, b, n);
}

struct login {
	uint8_t sid[16];
	uint8_t ke2[OPAQUE_KE2_LEN];
	uint8_t left;
	uint8_t ke3[OPAQUE_KE3_LEN];
	uint8_t session_key[OPAQUE_SESSION_KEY_LEN];
	int authed; /* the client accepted KE2 (right password) */
};

/* login/start, then the client side of KE3. Returns the login/start status. */
static uint8_t login(const char *id, const char *pw, struct login *L)
{
	struct opaque_client_state st;
	uint8_t ke1[OPAQUE_KE1_LEN], b[512], ek[OPAQUE_EXPORT_KEY_LEN];
	struct opaque_params pp = params();
	size_t n = 0;

	memset(L, 0, sizeof(*L));
	assert_int_equal(opaque_client_ke1(ke1, &st, (const uint8_t *)pw, strlen(pw)), 0);
	b[n++] = 1;
	n += put_id(b + n, id);
	memcpy(b + n, ke1, sizeof(ke1));
	n += sizeof(ke1);
	uint8_t status = call(SV_MSG_LOGIN_START, b, n);
	if (status != SV_STATUS_OK) {
		opaque_client_state_wipe(&st);
		return status;
	}
	assert_int_equal(rlen(), 16 + OPAQUE_KE2_LEN + 1);
	memcpy(L->sid, rbody(), 16);
	memcpy(L->ke2, rbody() + 16, OPAQUE_KE2_LEN);
	L->left = rbody()[16 + OPAQUE_KE2_LEN];
	int r = opaque_client_ke3(L->ke3, L->session_key, ek, NULL, &st, (const uint8_t *)pw,
	                          strlen(pw), L->ke2, &pp, &KSF);
	assert_true(r == 0 || r == SV_ERR_AUTH);
	L->authed = r == 0;
	if (!L->authed) {
		/* What a client without the password can send: any KE3, any key. */
		randombytes_buf(L->ke3, sizeof(L->ke3));
		randombytes_buf(L->session_key, sizeof(L->session_key));
	}
	return status;
}

static void mac_key(uint8_t key[64], const uint8_t session_key[64])
{
	assert_int_equal(hkdf_sha512_expand(key, 64, session_key, 64,
	                                    (const uint8_t *)"sealvault op mac", 16, NULL, 0),
	                 0);
}

/* Builds a login/finish body into b; returns its length. */
static size_t finish_body(uint8_t *b, const struct login *L, uint8_t op, const uint8_t *payload,
                          size_t payload_len)
{
	uint8_t key[64], macced[16 + 1 + 32];
	size_t n = 0;
	b[n++] = 1;
	memcpy(b + n, L->sid, 16);
	n += 16;
	memcpy(b + n, L->ke3, 64);
	n += 64;
	b[n++] = op;
	if (payload_len > 0) {
		memcpy(b + n, payload, payload_len);
		memcpy(macced + 17, payload, payload_len);
	}
	n += payload_len;
	memcpy(macced, L->sid, 16);
	macced[16] = op;
	mac_key(key, L->session_key);
	hkdf_hmac_sha512(b + n, key, 64, macced, 17 + payload_len, NULL, 0);
	return n + 64;
}

static uint8_t finish(const struct login *L, uint8_t op, const uint8_t *payload, size_t payload_len)
{
	uint8_t b[256];
	return call(SV_MSG_LOGIN_FINISH, b, finish_body(b, L, op, payload, payload_len));
}

/* Opens the blob of a recover reply. */
static void open_recover(const struct login *L, uint8_t *blob, size_t *blob_len)
{
	uint8_t key[32];
	unsigned long long n;
	assert_true(rlen() > 24 + 16);
	assert_int_equal(hkdf_sha512_expand(key, 32, L->session_key, 64,
	                                    (const uint8_t *)"sealvault recover seal", 22, NULL, 0),
	                 0);
	assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
	                     blob, &n, NULL, rbody() + 24, rlen() - 24, L->sid, 16, rbody(), key),
	                 0);
	*blob_len = (size_t)n;
}

static struct fake_user *user(const char *id)
{
	return fake_find(&S, (const uint8_t *)id, strlen(id));
}

static const uint8_t BLOB[] = "client-encrypted backup key, opaque to the vault";

/* ---- flows ---- */

static void test_register_and_recover(void **state)
{
	struct login L;
	uint8_t blob[STORE_BLOB_MAX];
	size_t blob_len;

	assert_int_equal(register_user("alice", "correct horse", 5, BLOB, sizeof(BLOB)),
	                 SV_STATUS_OK);
	assert_non_null(user("alice"));
	assert_int_equal(user("alice")->limit, 5);
	assert_int_equal(login("alice", "correct horse", &L), SV_STATUS_OK);
	assert_true(L.authed);
	assert_int_equal(L.left, 4);
	assert_int_equal(user("alice")->used, 1); /* charged before KE2 left */
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
	open_recover(&L, blob, &blob_len);
	assert_int_equal(blob_len, sizeof(BLOB));
	assert_memory_equal(blob, BLOB, sizeof(BLOB));
	assert_int_equal(user("alice")->used, 0); /* reset by the valid KE3 */
}

static void test_default_limit(void **state)
{
	struct login L;
	assert_int_equal(register_user("dee", "pw", 0, BLOB, 1), SV_STATUS_OK);
	assert_int_equal(user("dee")->limit, P.default_guess_limit);
	assert_int_equal(login("dee", "pw", &L), SV_STATUS_OK);
	assert_int_equal(L.left, P.default_guess_limit - 1);
}

static void test_limit_above_max_rejected(void **state)
{
	assert_int_equal(register_user("max", "pw", (uint8_t)(P.max_guess_limit + 1), BLOB, 1),
	                 SV_STATUS_BAD_REQUEST);
	assert_null(user("max"));
	assert_int_equal(register_user("max", "pw", (uint8_t)P.max_guess_limit, BLOB, 1),
	                 SV_STATUS_OK);
}

static void test_wrong_password(void **state)
{
	struct login L;
	assert_int_equal(register_user("bob", "right", 5, BLOB, sizeof(BLOB)), SV_STATUS_OK);
	assert_int_equal(login("bob", "wrong", &L), SV_STATUS_OK);
	assert_false(L.authed);
	assert_int_equal(L.left, 4);
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_AUTH_FAILED);
	assert_int_equal(rlen(), 1);
	assert_int_equal(rbody()[0], 4);
	assert_int_equal(user("bob")->used, 1); /* stays charged */
	/* a missing KE3 costs the same */
	assert_int_equal(login("bob", "wrong", &L), SV_STATUS_OK);
	assert_int_equal(L.left, 3);
	assert_int_equal(user("bob")->used, 2);
}

static void test_limit_two_wrong_then_right(void **state)
{
	struct login L;
	uint8_t blob[STORE_BLOB_MAX];
	size_t n;
	assert_int_equal(register_user("carol", "right", 3, BLOB, sizeof(BLOB)), SV_STATUS_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(login("carol", "wrong", &L), SV_STATUS_OK);
		assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_AUTH_FAILED);
		assert_int_equal(rbody()[0], 2 - i);
	}
	/* the third (last) guess: the charge destroys the record, the right password restores it */
	assert_int_equal(login("carol", "right", &L), SV_STATUS_OK);
	assert_int_equal(L.left, 0);
	assert_true(user("carol")->destroyed);
	assert_true(L.authed);
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
	open_recover(&L, blob, &n);
	assert_memory_equal(blob, BLOB, sizeof(BLOB));
	assert_false(user("carol")->destroyed);
	assert_int_equal(user("carol")->used, 0);
	/* and it is a normal record again */
	assert_int_equal(login("carol", "right", &L), SV_STATUS_OK);
	assert_int_equal(L.left, 2);
}

static void test_limit_three_wrong_then_right(void **state)
{
	struct login L;
	assert_int_equal(register_user("dave", "right", 3, BLOB, sizeof(BLOB)), SV_STATUS_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(login("dave", "wrong", &L), SV_STATUS_OK);
		assert_int_equal(L.left, 2 - i);
		/* 403 with attempts left, and 410 for the last one */
		assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0),
		                 i < 2 ? SV_STATUS_AUTH_FAILED : SV_STATUS_LOCKED);
	}
	assert_true(user("dave")->destroyed);
	assert_int_equal(rlen(), 0);
	size_t charges = S.charges;
	assert_int_equal(login("dave", "right", &L), SV_STATUS_LOCKED);
	assert_int_equal(rlen(), 0);
	assert_int_equal(S.charges, charges); /* nothing charged on a destroyed record */
	/* the record content is gone, the tombstone stays */
	uint8_t zero[STORE_RECORD_LEN] = {0};
	assert_memory_equal(user("dave")->record, zero, sizeof(zero));
	/* a destroyed identifier may be registered again */
	assert_int_equal(register_user("dave", "new", 3, BLOB, 4), SV_STATUS_OK);
	assert_int_equal(login("dave", "new", &L), SV_STATUS_OK);
	assert_true(L.authed);
}

static void test_last_guess_expires(void **state)
{
	struct login L;
	assert_int_equal(register_user("erin", "right", 1, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("erin", "right", &L), SV_STATUS_OK);
	assert_int_equal(L.left, 0);
	NOW += (uint64_t)P.login_timeout_s * 1000;
	vault_expire(V, NOW);
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OUT_OF_ORDER);
	assert_true(user("erin")->destroyed);
	assert_int_equal(login("erin", "right", &L), SV_STATUS_LOCKED);
}

/* The enclave restarted between KE2 and KE3 (a new vault on the same store): the KE3 is answered
 * busy (start again), not out of order, and changes nothing; the charged guess stays charged and
 * a new login succeeds. An id that no run gave out is still out of order. */
static void test_login_from_earlier_run(void **state)
{
	struct login L;
	assert_int_equal(register_user("finn", "right", 5, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("finn", "right", &L), SV_STATUS_OK);
	struct vault_config cfg = {CONTEXT, sizeof(CONTEXT) - 1, &P, NULL, 0, NULL};
	vault_free(V);
	assert_int_equal(vault_new(&V, &S, &cfg), 0);
	size_t staged = S.staged;
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_BUSY);
	assert_non_null(memmem(rbody(), rlen(), "restarted", 9));
	assert_int_equal(S.staged, staged);
	assert_int_equal(user("finn")->used, 1);
	struct login M;
	assert_int_equal(login("finn", "right", &M), SV_STATUS_OK);
	assert_int_equal(finish(&M, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
	assert_int_equal(user("finn")->used, 0);
	/* never given out */
	randombytes_buf(L.sid, sizeof(L.sid));
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OUT_OF_ORDER);
}

static void test_overtaken_by_last_guess(void **state)
{
	struct login A, B;
	assert_int_equal(register_user("fay", "right", 2, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("fay", "right", &A), SV_STATUS_OK);
	assert_int_equal(A.left, 1);
	assert_int_equal(login("fay", "wrong", &B), SV_STATUS_OK); /* the last guess */
	assert_int_equal(B.left, 0);
	/* A's right password cannot bring back a record destroyed by B's charge */
	assert_int_equal(finish(&A, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_LOCKED);
	assert_int_equal(finish(&B, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_LOCKED);
	assert_true(user("fay")->destroyed);
}

static void test_rescue_invalidated_by_reregistration(void **state)
{
	struct login L;
	assert_int_equal(register_user("gus", "old", 1, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("gus", "old", &L), SV_STATUS_OK);
	assert_true(user("gus")->destroyed);
	/* tombstoned: anyone may register the identifier again */
	assert_int_equal(register_user("gus", "new", 1, BLOB, 8), SV_STATUS_OK);
	/* the pending login of the old record must not resurrect it */
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OUT_OF_ORDER);
	assert_false(user("gus")->destroyed);
	assert_int_equal(login("gus", "old", &L), SV_STATUS_OK);
	assert_false(L.authed);
}

static void test_unknown_identifier(void **state)
{
	struct login K, U;
	assert_int_equal(register_user("known", "pw", 0, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("known", "pw", &K), SV_STATUS_OK);
	size_t klen = R.len, noops = S.noops, pending_before = 0;
	assert_int_equal(store_pending(&S), pending_before);
	assert_int_equal(vault_handle(V, SV_MSG_LOGIN_START, NULL, 0, NOW, &R), 0); /* 400 */
	assert_int_equal(login("nobody", "pw", &U), SV_STATUS_OK);
	/* the same shape as a known identifier with the default limit */
	assert_int_equal(R.len, klen);
	assert_int_equal(U.left, K.left);
	assert_false(U.authed);
	assert_int_equal(S.noops, noops + 1); /* went through a commit like a real charge */
	/* the fake record is stable per identifier: KE2 masks the same server public key part */
	assert_null(user("nobody"));
	/* finish: 403 with attempts left, like a wrong password */
	assert_int_equal(finish(&U, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_AUTH_FAILED);
	assert_int_equal(rbody()[0], U.left);
	/* it counts down and locks out like a fresh record with the default limit */
	for (unsigned i = 1; i < P.default_guess_limit; i++) {
		assert_int_equal(login("nobody", "pw", &U), SV_STATUS_OK);
		assert_int_equal(U.left, P.default_guess_limit - 1 - i);
	}
	assert_int_equal(finish(&U, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_LOCKED);
	assert_int_equal(login("nobody", "pw", &U), SV_STATUS_LOCKED);
	assert_int_equal(rlen(), 0);
	/* registering it (it is free) starts a real record from zero */
	assert_int_equal(register_user("nobody", "pw", 0, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("nobody", "pw", &U), SV_STATUS_OK);
	assert_true(U.authed);
}

static void test_unknown_ke3_never_accepted(void **state)
{
	struct login U;
	/* even a KE3 computed "correctly" against the fake KE2 is refused: nobody has the fake
	 * record's private key, and the vault refuses fake logins outright */
	assert_int_equal(login("ghost", "pw", &U), SV_STATUS_OK);
	assert_int_equal(finish(&U, VAULTREQ_OP_DELETE, NULL, 0), SV_STATUS_AUTH_FAILED);
	assert_null(user("ghost"));
}

static void test_register_existing_conflict(void **state)
{
	assert_int_equal(register_user("hal", "pw", 3, BLOB, 8), SV_STATUS_OK);
	size_t staged = S.staged;
	assert_int_equal(register_user("hal", "other", 3, BLOB, 8), SV_STATUS_CONFLICT);
	assert_int_equal(S.staged, staged);
	/* register/finish alone (skipping start) is refused too */
	uint8_t b[600];
	size_t n = 0;
	b[n++] = 1;
	n += put_id(b + n, "hal");
	memcpy(b + n, user("hal")->record, STORE_RECORD_LEN);
	n += STORE_RECORD_LEN;
	b[n++] = 3;
	b[n++] = 0;
	b[n++] = 1;
	b[n++] = 'x';
	assert_int_equal(call(SV_MSG_REGISTER_FINISH, b, n), SV_STATUS_CONFLICT);
	assert_int_equal(user("hal")->blob_len, 8);
}

static void test_delete(void **state)
{
	struct login L;
	assert_int_equal(register_user("ivy", "pw", 3, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("ivy", "pw", &L), SV_STATUS_OK);
	assert_int_equal(finish(&L, VAULTREQ_OP_DELETE, NULL, 0), SV_STATUS_OK);
	assert_int_equal(rlen(), 0);
	assert_null(user("ivy"));
	assert_int_equal(login("ivy", "pw", &L), SV_STATUS_OK); /* now an unknown identifier */
	assert_false(L.authed);
}

static uint8_t change_password(const struct login *L, const char *pw, uint8_t limit,
                               const uint8_t *blob, size_t blob_len, int tamper)
{
	struct opaque_client_state st;
	struct opaque_params pp = params();
	uint8_t req[32], resp[64], rec[OPAQUE_RECORD_LEN], ek[64], key[64], b[1024];
	size_t n = 0;

	assert_int_equal(
	    opaque_client_registration_request(req, &st, (const uint8_t *)pw, strlen(pw)), 0);
	uint8_t status = finish(L, VAULTREQ_OP_CHANGE, req, sizeof(req));
	if (status != SV_STATUS_OK) {
		opaque_client_state_wipe(&st);
		return status;
	}
	assert_int_equal(rlen(), 64);
	memcpy(resp, rbody(), 64);
	assert_int_equal(opaque_client_registration_finalize(rec, ek, &st, (const uint8_t *)pw,
	                                                     strlen(pw), resp, &pp, &KSF),
	                 0);
	b[n++] = 1;
	memcpy(b + n, L->sid, 16);
	n += 16;
	memcpy(b + n, rec, sizeof(rec));
	n += sizeof(rec);
	b[n++] = limit;
	b[n++] = (uint8_t)(blob_len >> 8);
	b[n++] = (uint8_t)blob_len;
	memcpy(b + n, blob, blob_len);
	n += blob_len;
	mac_key(key, L->session_key);
	if (tamper == 2) {
		/* authenticated but invalid (identity client public key): 400, the login waits */
		uint8_t bad[1024];
		memcpy(bad, b, n);
		memset(bad + 17, 0, 32);
		hkdf_hmac_sha512(bad + n, key, 64, bad, n, NULL, 0);
		assert_int_equal(call(SV_MSG_CHANGE_FINISH, bad, n + 64), SV_STATUS_BAD_REQUEST);
		memcpy(bad + 17, b + 17, 32);
		bad[n - 3 - blob_len] = 255; /* a valid record, but a limit above the maximum */
		hkdf_hmac_sha512(bad + n, key, 64, bad, n, NULL, 0);
		assert_int_equal(call(SV_MSG_CHANGE_FINISH, bad, n + 64), SV_STATUS_BAD_REQUEST);
	}
	hkdf_hmac_sha512(b + n, key, 64, b, n, NULL, 0);
	n += 64;
	if (tamper == 1)
		b[20] ^= 1; /* inside the record */
	return call(SV_MSG_CHANGE_FINISH, b, n);
}

static void test_change_password(void **state)
{
	struct login L;
	uint8_t blob[STORE_BLOB_MAX];
	size_t n;
	static const uint8_t NEWBLOB[] = "the same backup key, encrypted under the new export key";

	assert_int_equal(register_user("jo", "old", 3, BLOB, sizeof(BLOB)), SV_STATUS_OK);
	assert_int_equal(login("jo", "old", &L), SV_STATUS_OK);
	assert_int_equal(change_password(&L, "new", 7, NEWBLOB, sizeof(NEWBLOB), 2), SV_STATUS_OK);
	assert_int_equal(user("jo")->limit, 7);
	assert_int_equal(user("jo")->used, 0);
	/* the session is finished: a second change-password/finish is out of order */
	assert_int_equal(change_password(&L, "newer", 7, NEWBLOB, 4, 0), SV_STATUS_OUT_OF_ORDER);
	assert_int_equal(login("jo", "old", &L), SV_STATUS_OK);
	assert_false(L.authed);
	assert_int_equal(login("jo", "new", &L), SV_STATUS_OK);
	assert_true(L.authed);
	assert_int_equal(L.left, 5); /* 7 - the old-password guess - this one */
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
	open_recover(&L, blob, &n);
	assert_int_equal(n, sizeof(NEWBLOB));
	assert_memory_equal(blob, NEWBLOB, n);
}

static void test_change_password_mac_tampered(void **state)
{
	struct login L;
	assert_int_equal(register_user("kim", "old", 3, BLOB, sizeof(BLOB)), SV_STATUS_OK);
	uint8_t before[STORE_RECORD_LEN];
	memcpy(before, user("kim")->record, sizeof(before));
	assert_int_equal(login("kim", "old", &L), SV_STATUS_OK);
	assert_int_equal(change_password(&L, "new", 3, BLOB, 8, 1), SV_STATUS_AUTH_FAILED);
	assert_int_equal(rlen(), 1);
	assert_int_equal(rbody()[0], 3); /* guesses were reset by the valid KE3 */
	assert_memory_equal(user("kim")->record, before, sizeof(before));
	assert_int_equal(login("kim", "old", &L), SV_STATUS_OK);
	assert_true(L.authed);
}

static void test_stale_login_after_password_change(void **state)
{
	struct login A, B;
	assert_int_equal(register_user("lee", "old", 5, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("lee", "old", &A), SV_STATUS_OK);
	assert_int_equal(login("lee", "old", &B), SV_STATUS_OK);
	assert_int_equal(change_password(&B, "new", 5, BLOB, 8, 0), SV_STATUS_OK);
	/* A authenticated with the old password against the old record: refused */
	assert_int_equal(finish(&A, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OUT_OF_ORDER);
}

static void test_op_mac_tampering(void **state)
{
	struct login L;
	uint8_t b[256];
	assert_int_equal(register_user("mo", "pw", 5, BLOB, 8), SV_STATUS_OK);

	/* a broker turning a recovery into a deletion */
	assert_int_equal(login("mo", "pw", &L), SV_STATUS_OK);
	size_t n = finish_body(b, &L, VAULTREQ_OP_RECOVER, NULL, 0);
	b[1 + 16 + 64] = VAULTREQ_OP_DELETE;
	assert_int_equal(call(SV_MSG_LOGIN_FINISH, b, n), SV_STATUS_AUTH_FAILED);
	assert_int_equal(rbody()[0], 4);
	assert_non_null(user("mo"));
	assert_int_equal(user("mo")->used, 1); /* not reset: the operation was not authorised */
	/* the login is consumed */
	n = finish_body(b, &L, VAULTREQ_OP_RECOVER, NULL, 0);
	assert_int_equal(call(SV_MSG_LOGIN_FINISH, b, n), SV_STATUS_OUT_OF_ORDER);

	/* every byte of the MAC matters */
	for (size_t i = 0; i < 64; i += 9) {
		assert_int_equal(login("mo", "pw", &L), SV_STATUS_OK);
		n = finish_body(b, &L, VAULTREQ_OP_RECOVER, NULL, 0);
		b[n - 64 + i] ^= 0x80;
		assert_int_equal(call(SV_MSG_LOGIN_FINISH, b, n), SV_STATUS_AUTH_FAILED);
		/* a good login resets so the test does not run out of guesses */
		assert_int_equal(login("mo", "pw", &L), SV_STATUS_OK);
		assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
	}
	/* a tampered KE3 */
	assert_int_equal(login("mo", "pw", &L), SV_STATUS_OK);
	L.ke3[5] ^= 1;
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_AUTH_FAILED);
}

static void test_replayed_ke3(void **state)
{
	struct login L;
	uint8_t b[256];
	assert_int_equal(register_user("ned", "pw", 5, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("ned", "pw", &L), SV_STATUS_OK);
	size_t n = finish_body(b, &L, VAULTREQ_OP_RECOVER, NULL, 0);
	assert_int_equal(call(SV_MSG_LOGIN_FINISH, b, n), SV_STATUS_OK);
	size_t staged = S.staged;
	assert_int_equal(call(SV_MSG_LOGIN_FINISH, b, n), SV_STATUS_OUT_OF_ORDER);
	assert_int_equal(S.staged, staged);
	/* a replayed wrong KE3 too */
	assert_int_equal(login("ned", "bad", &L), SV_STATUS_OK);
	n = finish_body(b, &L, VAULTREQ_OP_RECOVER, NULL, 0);
	assert_int_equal(call(SV_MSG_LOGIN_FINISH, b, n), SV_STATUS_AUTH_FAILED);
	assert_int_equal(call(SV_MSG_LOGIN_FINISH, b, n), SV_STATUS_OUT_OF_ORDER);
	assert_int_equal(user("ned")->used, 1);
}

static void test_out_of_order(void **state)
{
	struct login L;
	assert_int_equal(register_user("oz", "pw", 5, BLOB, 8), SV_STATUS_OK);
	/* login/finish for a session that never existed */
	memset(&L, 0, sizeof(L));
	randombytes_buf(L.sid, sizeof(L.sid));
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OUT_OF_ORDER);
	assert_true(rlen() > 0); /* says what to do */
	/* change-password/finish after a recover login */
	assert_int_equal(login("oz", "pw", &L), SV_STATUS_OK);
	uint8_t b[1024];
	size_t n = 0;
	b[n++] = 1;
	memcpy(b + n, L.sid, 16);
	n += 16;
	memcpy(b + n, user("oz")->record, STORE_RECORD_LEN);
	n += STORE_RECORD_LEN;
	b[n++] = 0;
	b[n++] = 0;
	b[n++] = 1;
	b[n++] = 'x';
	memset(b + n, 0, 64);
	n += 64;
	assert_int_equal(call(SV_MSG_CHANGE_FINISH, b, n), SV_STATUS_OUT_OF_ORDER);
	/* nothing changed: the login still works */
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
	/* a login/finish on a session waiting for change-password/finish */
	assert_int_equal(login("oz", "pw", &L), SV_STATUS_OK);
	uint8_t req[32];
	struct opaque_client_state st;
	assert_int_equal(opaque_client_registration_request(req, &st, (const uint8_t *)"n", 1), 0);
	opaque_client_state_wipe(&st);
	assert_int_equal(finish(&L, VAULTREQ_OP_CHANGE, req, 32), SV_STATUS_OK);
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OUT_OF_ORDER);
}

static void test_expiry(void **state)
{
	struct login L;
	assert_int_equal(register_user("pam", "pw", 5, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("pam", "pw", &L), SV_STATUS_OK);
	NOW += (uint64_t)P.login_timeout_s * 1000 - 1;
	struct login M;
	assert_int_equal(login("pam", "pw", &M), SV_STATUS_OK);
	NOW += 1; /* L is now exactly timeout old; M is not */
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OUT_OF_ORDER);
	assert_int_equal(user("pam")->used, 2); /* an expired login stays charged */
	vault_expire(V, NOW);
	struct sv_buf m;
	assert_int_equal(sv_buf_init(&m, 8192), 0);
	assert_int_equal(vault_metrics(V, &m), 0);
	assert_int_equal(sv_buf_put_u8(&m, 0), 0);
	assert_non_null(strstr((const char *)m.data, "sealvault_vault_expired_logins_total 1\n"));
	assert_non_null(strstr((const char *)m.data, "sealvault_vault_pending_logins 1\n"));
	sv_buf_free(&m);
	assert_int_equal(finish(&M, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
}

/* max-users 3: a new identifier beyond it is refused at register/start and register/finish
 * (SV_STATUS_FULL, nothing staged); logins, password changes, deletions and re-registering a
 * tombstone keep working; a deletion frees a place. */
static void test_capacity_full(void **state)
{
	struct login L;
	assert_int_equal(register_user("a1", "pw", 3, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(register_user("a2", "pw", 1, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(register_user("a3", "pw", 3, BLOB, 8), SV_STATUS_OK);
	size_t staged = S.staged;
	assert_int_equal(register_user("a4", "pw", 3, BLOB, 8), SV_STATUS_FULL);
	assert_int_equal(S.staged, staged);
	assert_null(user("a4"));
	assert_non_null(strstr((const char *)rbody(), "max-users"));
	/* register/finish alone (skipping start) is refused too */
	uint8_t b[600];
	size_t n = 0;
	b[n++] = 1;
	n += put_id(b + n, "a4");
	memcpy(b + n, user("a1")->record, STORE_RECORD_LEN);
	n += STORE_RECORD_LEN;
	b[n++] = 3;
	b[n++] = 0;
	b[n++] = 1;
	b[n++] = 'x';
	assert_int_equal(call(SV_MSG_REGISTER_FINISH, b, n), SV_STATUS_FULL);
	assert_null(user("a4"));
	/* an existing identifier is still a conflict, not "full" */
	assert_int_equal(register_user("a1", "other", 3, BLOB, 8), SV_STATUS_CONFLICT);
	/* logins and password changes work */
	assert_int_equal(login("a1", "pw", &L), SV_STATUS_OK);
	assert_true(L.authed);
	assert_int_equal(change_password(&L, "pw2", 3, BLOB, 8, 0), SV_STATUS_OK);
	/* a tombstone keeps its place; re-registering it needs none */
	assert_int_equal(login("a2", "wrong", &L), SV_STATUS_OK);
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_LOCKED);
	assert_true(user("a2")->destroyed);
	assert_int_equal(register_user("a4", "pw", 3, BLOB, 8), SV_STATUS_FULL);
	assert_int_equal(register_user("a2", "pw", 3, BLOB, 8), SV_STATUS_OK);
	/* a deletion frees a place */
	assert_int_equal(login("a3", "pw", &L), SV_STATUS_OK);
	assert_int_equal(finish(&L, VAULTREQ_OP_DELETE, NULL, 0), SV_STATUS_OK);
	assert_int_equal(register_user("a4", "pw", 3, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(register_user("a5", "pw", 3, BLOB, 8), SV_STATUS_FULL);
	struct sv_buf m;
	assert_int_equal(sv_buf_init(&m, 16384), 0);
	assert_int_equal(vault_metrics(V, &m), 0);
	assert_int_equal(sv_buf_put_u8(&m, 0), 0);
	assert_non_null(strstr((const char *)m.data, "sealvault_vault_full_total 4\n"));
	assert_non_null(
	    strstr((const char *)m.data, "sealvault_max_users{source=\"configured\"} 3\n"));
	sv_buf_free(&m);
}

static void test_pending_cap(void **state)
{
	struct login L[17];
	assert_int_equal(register_user("quinn", "pw", 20, BLOB, 8), SV_STATUS_OK);
	for (int i = 0; i < 16; i++)
		assert_int_equal(login("quinn", "pw", &L[i]), SV_STATUS_OK);
	unsigned used = user("quinn")->used;
	size_t noops = S.noops;
	/* full of real logins: nothing to make room with */
	assert_int_equal(login("quinn", "pw", &L[16]), SV_STATUS_BUSY);
	assert_int_equal(login("stranger", "pw", &L[16]), SV_STATUS_BUSY);
	assert_int_equal(user("quinn")->used, used); /* nothing charged */
	assert_int_equal(S.noops, noops);
	/* finishing one frees a slot */
	assert_int_equal(finish(&L[1], VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
	assert_int_equal(login("quinn", "pw", &L[16]), SV_STATUS_OK);
	/* expiry frees the rest */
	NOW += (uint64_t)P.login_timeout_s * 1000;
	for (int i = 0; i < 16; i++)
		assert_int_equal(login("quinn", "pw", &L[i]), SV_STATUS_OK);
}

/* A full table drops the oldest login of an unknown identifier for a new one (whoever asks), and
 * never a real user's. */
static void test_pending_unknown_evicted_first(void **state)
{
	struct login Q[16], X[16], N;
	char id[32];
	assert_int_equal(register_user("quinn", "pw", 20, BLOB, 8), SV_STATUS_OK);
	for (int i = 0; i < 8; i++) {
		snprintf(id, sizeof(id), "stranger%d", i);
		assert_int_equal(login(id, "pw", &X[i]), SV_STATUS_OK);
		assert_int_equal(login("quinn", "pw", &Q[i]), SV_STATUS_OK);
	}
	/* full: the real user and an unknown identifier both get in, each by dropping a stranger */
	assert_int_equal(login("quinn", "pw", &Q[8]), SV_STATUS_OK);
	assert_int_equal(login("newcomer", "pw", &N), SV_STATUS_OK);
	assert_int_equal(finish(&X[0], VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OUT_OF_ORDER);
	assert_int_equal(finish(&X[1], VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OUT_OF_ORDER);
	assert_int_equal(finish(&X[2], VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_AUTH_FAILED);
	/* 9 real + 6 unknown now (15): fill with real ones; the unknown ones go first */
	for (int i = 9; i < 16; i++)
		assert_int_equal(login("quinn", "pw", &Q[i]), SV_STATUS_OK);
	/* 16 real logins now: the table is full of them and refuses */
	assert_int_equal(login("another", "pw", &N), SV_STATUS_BUSY);
	/* every real login survived and finishes */
	for (int i = 0; i < 16; i++)
		assert_int_equal(finish(&Q[i], VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
	struct sv_buf m;
	assert_int_equal(sv_buf_init(&m, 16384), 0);
	assert_int_equal(vault_metrics(V, &m), 0);
	assert_int_equal(sv_buf_put_u8(&m, 0), 0);
	assert_non_null(
	    strstr((const char *)m.data, "sealvault_vault_evicted_unknown_logins_total 8\n"));
	sv_buf_free(&m);
}

/* The per-identifier login rate: 5 at once, then one per 12 s; 429 with the seconds to wait;
 * nothing charged; known and unknown identifiers alike; other identifiers unaffected. */
static void test_login_rate(void **state)
{
	struct login L;
	assert_int_equal(register_user("rita", "pw", 20, BLOB, 8), SV_STATUS_OK);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(login("rita", "wrong", &L), SV_STATUS_OK);
		assert_int_equal(login("ghost", "pw", &L), SV_STATUS_OK);
	}
	unsigned used = user("rita")->used;
	size_t noops = S.noops;
	assert_int_equal(login("rita", "wrong", &L), SV_STATUS_TOO_MANY);
	assert_true(rlen() > 4);
	uint32_t secs = ((uint32_t)rbody()[0] << 24) | ((uint32_t)rbody()[1] << 16) |
	                ((uint32_t)rbody()[2] << 8) | rbody()[3];
	assert_int_equal(secs, 12);
	assert_non_null(memmem(rbody() + 4, rlen() - 4, "too many logins for this identifier", 35));
	assert_int_equal(login("ghost", "pw", &L), SV_STATUS_TOO_MANY); /* unknown: the same */
	assert_int_equal(user("rita")->used, used);                     /* nothing charged */
	assert_int_equal(S.noops, noops);
	assert_int_equal(login("rosa", "pw", &L), SV_STATUS_OK); /* another identifier */
	/* 11 s later still refused (1 s to go), at 12 s one more, then refused again */
	NOW += 11000;
	assert_int_equal(login("rita", "wrong", &L), SV_STATUS_TOO_MANY);
	assert_int_equal(rbody()[3], 1);
	NOW += 1000;
	assert_int_equal(login("rita", "pw", &L), SV_STATUS_OK);
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
	assert_int_equal(login("rita", "pw", &L), SV_STATUS_TOO_MANY);
	/* a minute later the whole burst is back */
	NOW += 60000;
	for (int i = 0; i < 5; i++)
		assert_int_equal(login("rita", "pw", &L), SV_STATUS_OK);
	struct sv_buf m;
	assert_int_equal(sv_buf_init(&m, 16384), 0);
	assert_int_equal(vault_metrics(V, &m), 0);
	assert_int_equal(sv_buf_put_u8(&m, 0), 0);
	assert_non_null(
	    strstr((const char *)m.data, "sealvault_vault_login_rate_limited_total 4\n"));
	sv_buf_free(&m);
}

static void test_rescue_slots_full(void **state)
{
	/* 16 pending logins max, 16 rescue slots: every pending login could be a last guess */
	struct login L[16];
	char id[16];
	for (int i = 0; i < 16; i++) {
		snprintf(id, sizeof(id), "r%d", i);
		assert_int_equal(register_user(id, "pw", 1, BLOB, 8), SV_STATUS_OK);
		assert_int_equal(login(id, "pw", &L[i]), SV_STATUS_OK);
		assert_int_equal(L[i].left, 0);
	}
	for (int i = 0; i < 16; i++)
		assert_int_equal(finish(&L[i], VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
	for (int i = 0; i < 16; i++) {
		snprintf(id, sizeof(id), "r%d", i);
		assert_false(user(id)->destroyed);
	}
}

static void test_rescue_pool_busy(void **state)
{
	/* 64 pending logins, 16 rescue slots: the 17th concurrent last guess must wait */
	struct login L;
	char id[16];
	for (int i = 0; i < 17; i++) {
		snprintf(id, sizeof(id), "s%d", i);
		assert_int_equal(register_user(id, "pw", 1, BLOB, 8), SV_STATUS_OK);
		assert_int_equal(login(id, "pw", &L), i < 16 ? SV_STATUS_OK : SV_STATUS_BUSY);
	}
	assert_false(user("s16")->destroyed); /* refused before anything was charged */
	assert_int_equal(user("s16")->used, 0);
	assert_int_equal(register_user("t", "pw", 2, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("t", "pw", &L), SV_STATUS_OK); /* not a last guess: fine */
}

static void test_rescue_tenant_share(void **state)
{
	/* 64 pending logins, 16 rescue slots, 8 per tenant: acme's throw-away identifiers held on
	 * their last guess take acme's 8 and no more; globex's last-guess recovery still works */
	struct login L, G;
	char id[32];
	for (int i = 0; i < 9; i++) {
		snprintf(id, sizeof(id), "@acme/junk%d", i);
		assert_int_equal(register_user(id, "pw", 1, BLOB, 8), SV_STATUS_OK);
		assert_int_equal(login(id, "wrong", &L), i < 8 ? SV_STATUS_OK : SV_STATUS_BUSY);
	}
	/* the refused one was charged nothing: a charge would have destroyed it (423, not 503) */
	assert_int_equal(login("@acme/junk8", "pw", &L), SV_STATUS_BUSY);
	assert_int_equal(register_user("@globex/bob", "pw-bob", 1, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("@globex/bob", "pw-bob", &G), SV_STATUS_OK);
	assert_int_equal(G.left, 0);
	assert_true(G.authed);
	assert_int_equal(finish(&G, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
	/* open-mode identifiers are not a tenant's: they use the free slots */
	for (int i = 0; i < 8; i++) {
		snprintf(id, sizeof(id), "open%d", i);
		assert_int_equal(register_user(id, "pw", 1, BLOB, 8), SV_STATUS_OK);
		assert_int_equal(login(id, "pw", &L), SV_STATUS_OK);
	}
}

/* ---- decoders: hostile lengths, trailing bytes, version ---- */

static size_t build_register_finish(uint8_t *b, size_t id_len, uint16_t decl_id, size_t blob_len,
                                    uint16_t decl_blob)
{
	size_t n = 0;
	b[n++] = 1;
	b[n++] = (uint8_t)(decl_id >> 8);
	b[n++] = (uint8_t)decl_id;
	memset(b + n, 'i', id_len);
	n += id_len;
	memset(b + n, 0x11, STORE_RECORD_LEN);
	n += STORE_RECORD_LEN;
	b[n++] = 3;
	b[n++] = (uint8_t)(decl_blob >> 8);
	b[n++] = (uint8_t)decl_blob;
	memset(b + n, 'b', blob_len);
	return n + blob_len;
}

static void test_decode_register_finish(void **state)
{
	uint8_t b[2048];
	struct vaultreq_register_finish r;
	const char *why;
	size_t n = build_register_finish(b, 5, 5, 10, 10);

	assert_int_equal(vaultreq_parse_register_finish(&r, b, n, &why), 0);
	assert_int_equal(r.id_len, 5);
	assert_int_equal(r.blob_len, 10);
	assert_int_equal(r.guess_limit, 3);
	/* every truncation, and one trailing byte */
	for (size_t l = 0; l < n; l++)
		assert_int_not_equal(vaultreq_parse_register_finish(&r, b, l, &why), 0);
	b[n] = 0;
	why = NULL;
	assert_int_equal(vaultreq_parse_register_finish(&r, b, n + 1, &why), SV_ERR_INVALID);
	assert_non_null(why);
	assert_null(r.id); /* nothing half-filled */
	/* identifier lengths 0, 256, 0xffff; blob lengths 0, 513, 0xffff; declared n-1 / n+1 */
	uint16_t bad_ids[] = {0, 256, 0xffff};
	for (size_t i = 0; i < 3; i++) {
		n = build_register_finish(b, 5, bad_ids[i], 10, 10);
		assert_int_not_equal(vaultreq_parse_register_finish(&r, b, n, &why), 0);
	}
	uint16_t bad_blobs[] = {0, 513, 0xffff};
	for (size_t i = 0; i < 3; i++) {
		n = build_register_finish(b, 5, 5, 10, bad_blobs[i]);
		assert_int_not_equal(vaultreq_parse_register_finish(&r, b, n, &why), 0);
	}
	n = build_register_finish(b, 5, 4, 10, 10);
	assert_int_not_equal(vaultreq_parse_register_finish(&r, b, n, &why), 0);
	n = build_register_finish(b, 5, 6, 10, 10);
	assert_int_not_equal(vaultreq_parse_register_finish(&r, b, n, &why), 0);
	n = build_register_finish(b, 5, 5, 10, 9);
	assert_int_not_equal(vaultreq_parse_register_finish(&r, b, n, &why), 0);
	n = build_register_finish(b, 5, 5, 10, 11);
	assert_int_not_equal(vaultreq_parse_register_finish(&r, b, n, &why), 0);
	/* the extremes that are valid */
	n = build_register_finish(b, 255, 255, 512, 512);
	assert_int_equal(n, VAULTREQ_BODY_MAX);
	assert_int_equal(vaultreq_parse_register_finish(&r, b, n, &why), 0);
	n = build_register_finish(b, 1, 1, 1, 1);
	assert_int_equal(vaultreq_parse_register_finish(&r, b, n, &why), 0);
	/* version */
	b[0] = 2;
	assert_int_not_equal(vaultreq_parse_register_finish(&r, b, n, &why), 0);
	b[0] = 0;
	assert_int_not_equal(vaultreq_parse_register_finish(&r, b, n, &why), 0);
}

static void test_decode_fixed_bodies(void **state)
{
	uint8_t b[512];
	const char *why;
	struct vaultreq_register_start rs;
	struct vaultreq_login_start ls;
	struct vaultreq_login_finish lf;

	/* register/start and login/start: v | id | fixed */
	for (int which = 0; which < 2; which++) {
		size_t fixed = which == 0 ? 32 : 96;
		size_t n = 0;
		b[n++] = 1;
		n += put_id(b + n, "abc");
		memset(b + n, 7, fixed);
		n += fixed;
		for (size_t l = 0; l <= n + 1; l++) {
			int r = which == 0 ? vaultreq_parse_register_start(&rs, b, l, &why)
			                   : vaultreq_parse_login_start(&ls, b, l, &why);
			if (l == n)
				assert_int_equal(r, 0);
			else
				assert_int_not_equal(r, 0);
		}
		b[2] = 0; /* declared id length 0 */
		assert_int_not_equal(which == 0 ? vaultreq_parse_register_start(&rs, b, n, &why)
		                                : vaultreq_parse_login_start(&ls, b, n, &why),
		                     0);
	}
	assert_int_not_equal(vaultreq_parse_login_start(&ls, NULL, 0, &why), 0);

	/* login/finish for each op */
	for (uint8_t op = 0; op <= 4; op++) {
		size_t n = 0, payload = op == VAULTREQ_OP_CHANGE ? 32 : 0;
		b[n++] = 1;
		memset(b + n, 1, 16 + 64);
		n += 16 + 64;
		b[n++] = op;
		memset(b + n, 2, payload + 64);
		n += payload + 64;
		int valid = op >= 1 && op <= 3;
		for (size_t l = 0; l <= n + 1; l++) {
			int r = vaultreq_parse_login_finish(&lf, b, l, &why);
			if (l == n && valid) {
				assert_int_equal(r, 0);
				assert_int_equal(lf.payload_len, payload);
				assert_ptr_equal(lf.session_id, b + 1);
				assert_ptr_equal(lf.mac, b + n - 64);
			} else {
				assert_int_not_equal(r, 0);
			}
		}
	}
}

static void test_decode_change_finish(void **state)
{
	uint8_t b[1024];
	const char *why;
	struct vaultreq_change_finish c;
	size_t n = 0;
	b[n++] = 1;
	memset(b + n, 1, 16 + 192);
	n += 16 + 192;
	b[n++] = 0;
	b[n++] = 0;
	b[n++] = 3;
	memset(b + n, 'b', 3 + 64);
	n += 3 + 64;
	for (size_t l = 0; l <= n + 1; l++) {
		int r = vaultreq_parse_change_finish(&c, b, l, &why);
		if (l == n) {
			assert_int_equal(r, 0);
			assert_int_equal(c.macced_len, n - 64);
			assert_int_equal(c.blob_len, 3);
		} else {
			assert_int_not_equal(r, 0);
		}
	}
	b[1 + 16 + 192 + 1] = 0xff; /* declared blob length 0xff03 */
	assert_int_not_equal(vaultreq_parse_change_finish(&c, b, n, &why), 0);
}

/* Hostile input through vault_handle: a clear 4xx, nothing staged, and the next request works. */
static void test_hostile_bodies(void **state)
{
	struct login L;
	uint8_t b[2048];
	assert_int_equal(register_user("uma", "pw", 5, BLOB, 8), SV_STATUS_OK);
	unsigned used = user("uma")->used;
	uint16_t types[] = {
	    SV_MSG_REGISTER_START, SV_MSG_REGISTER_FINISH, SV_MSG_LOGIN_START, SV_MSG_LOGIN_FINISH,
	    SV_MSG_CHANGE_FINISH,  SV_MSG_STATS,           SV_MSG_ATTESTATION, 999};
	for (int round = 0; round < 300; round++) {
		size_t n = randombytes_uniform(sizeof(b));
		randombytes_buf(b, n);
		if (round % 3 == 0 && n > 0)
			b[0] = 1; /* get past the version byte */
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
			uint8_t st = call(types[t], b, n);
			assert_true(st == SV_STATUS_BAD_REQUEST || st == SV_STATUS_OUT_OF_ORDER);
			assert_true(rlen() > 0);
			assert_int_equal(store_pending(&S), 0);
		}
	}
	/* an oversized body of every type */
	memset(b, 1, sizeof(b));
	for (size_t t = 0; t < 5; t++)
		assert_int_equal(call(types[t], b, sizeof(b)), SV_STATUS_BAD_REQUEST);
	/* invalid group elements: all-zero RegistrationRequest and KE1 */
	size_t n = 0;
	b[n++] = 1;
	n += put_id(b + n, "newbie");
	memset(b + n, 0, 96);
	assert_int_equal(call(SV_MSG_REGISTER_START, b, n + 32), SV_STATUS_BAD_REQUEST);
	assert_int_equal(call(SV_MSG_LOGIN_START, b, n + 96), SV_STATUS_BAD_REQUEST);
	n = 0;
	b[n++] = 1;
	n += put_id(b + n, "uma");
	memset(b + n, 0, 96);
	assert_int_equal(call(SV_MSG_LOGIN_START, b, n + 96), SV_STATUS_BAD_REQUEST);
	/* an invalid record at register/finish */
	n = build_register_finish(b, 5, 5, 4, 4);
	memset(b + 8, 0, 32); /* client public key = identity */
	assert_int_equal(call(SV_MSG_REGISTER_FINISH, b, n), SV_STATUS_BAD_REQUEST);
	assert_int_equal(user("uma")->used, used);
	assert_int_equal(store_pending(&S), 0);
	/* and the next good request works */
	assert_int_equal(login("uma", "pw", &L), SV_STATUS_OK);
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
}

/* vault_handle's switch covers exactly the MSG_F_VAULT rows of common/msgtable.h: each of them
 * reaches its decoder, every other type is refused as not a vault request. */
static void test_vault_rows_handled(void **state)
{
	static const char other[] = "not a vault request type";
	for (uint32_t t = 0; t <= 0xffff; t++) {
		assert_int_equal(call((uint16_t)t, NULL, 0), SV_STATUS_BAD_REQUEST);
		int refused =
		    rlen() >= sizeof(other) - 1 &&
		    memcmp(rbody() + rlen() - (sizeof(other) - 1), other, sizeof(other) - 1) == 0;
		if (refused == ((msg_flags((uint16_t)t) & MSG_F_VAULT) != 0))
			fail_msg("type %u: vault_handle disagrees with the table", (unsigned)t);
	}
}

static void test_bad_change_payload_changes_nothing(void **state)
{
	struct login L;
	uint8_t zero[32] = {0};
	assert_int_equal(register_user("val", "pw", 5, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("val", "pw", &L), SV_STATUS_OK);
	assert_int_equal(finish(&L, VAULTREQ_OP_CHANGE, zero, 32), SV_STATUS_BAD_REQUEST);
	assert_int_equal(user("val")->used, 1);
}

static void test_metrics(void **state)
{
	struct login L;
	struct sv_buf m;
	assert_int_equal(register_user("wes", "pw", 5, BLOB, 8), SV_STATUS_OK);
	assert_int_equal(login("wes", "pw", &L), SV_STATUS_OK);
	assert_int_equal(finish(&L, VAULTREQ_OP_RECOVER, NULL, 0), SV_STATUS_OK);
	assert_int_equal(sv_buf_init(&m, 8192), 0);
	assert_int_equal(vault_metrics(V, &m), 0);
	assert_int_equal(sv_buf_put_u8(&m, 0), 0);
	const char *t = (const char *)m.data;
	assert_non_null(strstr(t, "# TYPE sealvault_vault_login_starts_total counter\n"));
	assert_non_null(strstr(t, "sealvault_vault_login_starts_total 1\n"));
	assert_non_null(strstr(t, "sealvault_vault_recoveries_total 1\n"));
	assert_non_null(strstr(t, "sealvault_vault_registrations_total 1\n"));
	assert_non_null(strstr(t, "sealvault_vault_pending_logins 0\n"));
	sv_buf_free(&m);
}

static void test_vault_new_checks_key(void **state)
{
	struct vault *v2;
	struct vault_config cfg = {NULL, 0, &P, NULL, 0, NULL};
	S.sec.ake_pk[0] ^= 1;
	assert_int_equal(vault_new(&v2, &S, &cfg), SV_ERR_STATE);
	assert_null(v2);
	S.sec.ake_pk[0] ^= 1;
	struct sv_vault_policy bad = P;
	bad.default_guess_limit = bad.max_guess_limit + 1;
	cfg.policy = &bad;
	assert_int_equal(vault_new(&v2, &S, &cfg), SV_ERR_CONFIG);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_register_and_recover, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_default_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limit_above_max_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_password, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limit_two_wrong_then_right, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limit_three_wrong_then_right, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_last_guess_expires, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overtaken_by_last_guess, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rescue_invalidated_by_reregistration, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_identifier, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_ke3_never_accepted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_register_existing_conflict, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_change_password, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_change_password_mac_tampered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_login_after_password_change, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_op_mac_tampering, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replayed_ke3, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pending_cap, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_capacity_full, setup_capacity, teardown),
	    cmocka_unit_test_setup_teardown(test_rescue_slots_full, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_rescue_pool_busy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rescue_tenant_share, setup, teardown),
	    cmocka_unit_test(test_decode_register_finish),
	    cmocka_unit_test(test_decode_fixed_bodies),
	    cmocka_unit_test(test_decode_change_finish),
	    cmocka_unit_test_setup_teardown(test_hostile_bodies, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vault_rows_handled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_change_payload_changes_nothing, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pending_unknown_evicted_first, setup_small,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_login_rate, setup_rate, teardown),
	    cmocka_unit_test_setup_teardown(test_vault_new_checks_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_login_from_earlier_run, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
