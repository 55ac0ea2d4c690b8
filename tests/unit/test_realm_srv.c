/*
 * Unit tests for enclave/realm (the realm side of threshold realms, docs/realms.md): three realms,
 * each a vault on its own in-memory fake store (tests/lib/fake_store.h), driven through
 * realm_srv_handle with request bodies from crypto/realm_wire.c and a real client computed with
 * crypto/realm.c, so that a recovery over the wire gives back the registered secret. A fourth
 * realm in tokens mode (tokens minted with admin/jwk.c) checks the access check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "admin/jwk.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/msg.h"
#include "common/recordkey.h"
#include "crypto/oprf.h"
#include "crypto/realm.h"
#include "crypto/realm_wire.h"
#include "enclave/access.h"
#include "enclave/audit.h"
#include "enclave/realm.h"
#include "enclave/session.h"
#include "enclave/store.h"
#include "enclave/vault.h"
#include "policy/vault.h"

#include "tests/lib/fake_store.h"

#define E 32
#define N 3

static struct store ST[N];
static struct sv_vault_policy P;
static struct vault *V[N + 1];
static struct realm_srv *RS[N + 1]; /* RS[N]: tokens mode, on ST[0] */
static struct access *A;
static struct admin_jwk JWK;
static struct sv_buf R;
static uint64_t NOW = 1000000;
static const uint8_t *TOK; /* the token of the next call (tokens-mode realm) */
static size_t TOK_LEN;

static const uint8_t realm_ids[N][REALM_ID_LEN] = {{0x11}, {0x22}, {0x33}};
static const struct ksf_params KSF = {KSF_IDENTITY, 0, 0};
static const uint8_t UID[] = "alice";
static const uint8_t SECRET[] = "the backup key: 32 bytes long!!";

#define AUD     "00112233445566778899aabbccddeeff"
#define TOK_NOW 1767225600LL

/* ---- the audit records the handlers note (audit_note is wrapped: --wrap in enclave/build.mk) */

struct noted {
	struct audit_note n;
	uint8_t key[STORE_ID_MAX];
	size_t key_len;
};
static struct noted NOTED[256];
static size_t NNOTED;

int __wrap_audit_note(const struct audit_note *n, const uint8_t *id, size_t id_len);
int __wrap_audit_note(const struct audit_note *n, const uint8_t *id, size_t id_len)
{
	assert_true(NNOTED < sizeof(NOTED) / sizeof(NOTED[0]));
	assert_true(id_len <= STORE_ID_MAX);
	NOTED[NNOTED].n = *n;
	memcpy(NOTED[NNOTED].key, id, id_len);
	NOTED[NNOTED].key_len = id_len;
	NNOTED++;
	return SV_OK;
}

/* The records noted since the last call are exactly kinds[0..n), each for the realm record key
 * of uid (0x01 | uid: never the /v1 identifier); forgets them. */
static void expect_noted(const uint8_t *uid, size_t uid_len, const unsigned *kinds, size_t n)
{
	uint8_t key[STORE_ID_MAX];
	size_t key_len = 0;
	assert_int_equal(record_key_realm(uid, uid_len, key, sizeof(key), &key_len), 0);
	assert_int_equal(NNOTED, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(NOTED[i].n.kind, kinds[i]);
		assert_int_equal(NOTED[i].n.known, 0); /* no realm kind carries it */
		assert_int_equal(NOTED[i].key_len, key_len);
		assert_memory_equal(NOTED[i].key, key, key_len);
	}
	NNOTED = 0;
}
#define EXPECT_NOTED(...)                                                                          \
	do {                                                                                       \
		static const unsigned k_[] = {__VA_ARGS__};                                        \
		expect_noted(UID, sizeof UID - 1, k_, sizeof k_ / sizeof k_[0]);                   \
	} while (0)

/* ---- fixture ---- */

static unsigned RATE; /* login-rate-per-id of the next setup */

static int setup(void **state)
{
	struct tenant_set set = {0};
	struct tenant t;
	char why[256];
	NNOTED = 0;
	assert_true(sodium_init() >= 0);
	policy_vault_defaults(&P);
	P.max_guess_limit = 40;
	P.default_guess_limit = 5;
	P.pending_login_max = 32;
	P.login_rate_per_id = RATE;
	P.login_burst_per_id = RATE;
	for (int i = 0; i < N; i++) {
		struct opaque_server_key k;
		memset(&ST[i], 0, sizeof(ST[i]));
		randombytes_buf(ST[i].sec.oprf_seed, sizeof(ST[i].sec.oprf_seed));
		randombytes_buf(ST[i].sec.fake_seed, sizeof(ST[i].sec.fake_seed));
		assert_int_equal(opaque_server_key_generate(&k), 0);
		memcpy(ST[i].sec.ake_sk, k.sk, sizeof(k.sk));
		memcpy(ST[i].sec.ake_pk, k.pk, sizeof(k.pk));
		struct vault_config cfg = {NULL, 0, &P, NULL, 0, "configured"};
		assert_int_equal(vault_new(&V[i], &ST[i], &cfg), 0);
		assert_int_equal(realm_srv_new(&RS[i], V[i], realm_ids[i]), 0);
	}
	/* the tokens-mode realm: one tenant, "acme" */
	assert_int_equal(admin_jwk_generate(&JWK, TENANT_KEY_ED25519, "k1"), SV_OK);
	char *jwks = admin_jwk_public_jwks(&JWK);
	assert_non_null(jwks);
	assert_int_equal(
	    tenant_parse_jwks(&t, "acme", (const uint8_t *)jwks, strlen(jwks), why, sizeof(why)),
	    SV_OK);
	free(jwks);
	assert_int_equal(tenant_set_add(&set, &t), SV_OK);
	struct token_policy pol = {.aud = AUD, .max_lifetime_s = 600, .skew_s = 60};
	assert_int_equal(access_new(&A, ACCESS_TOKENS, &set, &pol), SV_OK);
	access_set_clock(A, TOK_NOW);
	struct vault_config cfg = {NULL, 0, &P, A, 0, "configured"};
	assert_int_equal(vault_new(&V[N], &ST[0], &cfg), 0);
	assert_int_equal(realm_srv_new(&RS[N], V[N], realm_ids[0]), 0);
	assert_int_equal(sv_buf_init(&R, 8192), 0);
	TOK = NULL;
	TOK_LEN = 0;
	return 0;
}

static int setup_rate(void **state)
{
	RATE = 5;
	int r = setup(state);
	RATE = 0;
	return r;
}

static int teardown(void **state)
{
	for (int i = 0; i <= N; i++) {
		realm_srv_free(RS[i]);
		vault_free(V[i]);
	}
	access_free(A);
	admin_jwk_free(&JWK);
	sv_buf_free(&R);
	return 0;
}

/* One request to realm i; the caller's serve loop commits after it. Returns the status byte. */
static uint8_t call(int i, uint16_t type, const uint8_t *body, size_t len)
{
	struct store *s = &ST[i == N ? 0 : i];
	assert_int_equal(realm_srv_handle(RS[i], type, TOK, TOK_LEN, body, len, NOW, &R), 0);
	assert_true(R.len >= 1);
	assert_int_equal(store_commit(s), 0);
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

/* The fake store's record of realm record key 0x01 | uid (open mode). */
static struct fake_user *rec_of(int i, const uint8_t *uid, size_t uid_len)
{
	uint8_t key[STORE_ID_MAX];
	size_t n = 0;
	assert_int_equal(record_key_realm(uid, uid_len, key, sizeof(key), &n), 0);
	return fake_find(&ST[i], key, n);
}

static const uint8_t *mint(const char *sub, const char *scope, size_t *len)
{
	static char tok[TOKEN_MAX_LEN + 1];
	char why[128];
	assert_int_equal(admin_jwk_mint(&JWK, "acme", sub, AUD, scope, TOK_NOW, 300, tok,
	                                sizeof(tok), why, sizeof(why)),
	                 SV_OK);
	*len = strlen(tok);
	return (const uint8_t *)tok;
}

/* ---- the client, computed here with crypto/realm.c ---- */

struct reg {
	uint8_t version[REALM_VERSION_LEN], hash[REALM_HASH_LEN], check[32];
	uint8_t commitments[REALM_MAX * E];
	struct realm_share k[REALM_MAX], s[REALM_MAX];
	uint8_t tag[REALM_MAX][32], smac[REALM_MAX][32];
	uint8_t ct[REALM_CT_MAX];
	size_t ct_len;
	unsigned t, n;
};

static void make_reg(struct reg *r, const char *pw, unsigned t, unsigned n)
{
	uint8_t access[64], seed[32], k[32], s[32], y[64], prk[64], key[32];
	r->t = t;
	r->n = n;
	randombytes_buf(r->version, sizeof r->version);
	assert_int_equal(realm_stretch(access, seed, (const uint8_t *)pw, strlen(pw), r->version,
	                               UID, sizeof UID - 1, &KSF),
	                 0);
	assert_int_equal(oprf_generate_keypair(k, NULL), 0);
	assert_int_equal(realm_shamir_split(r->k, k, t, n), 0);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(realm_commitment(r->commitments + i * E, r->k[i].value), 0);
	assert_int_equal(realm_registration_hash(r->hash, r->version, &KSF, t, n, UID,
	                                         sizeof UID - 1, r->commitments),
	                 0);
	assert_int_equal(oprf_evaluate(y, OPRF_MODE_OPRF, k, access, sizeof access, NULL, 0), 0);
	realm_unlock_prk(prk, y, r->hash);
	assert_int_equal(realm_unlock_check(r->check, prk), 0);
	crypto_core_ristretto255_scalar_random(s);
	assert_int_equal(realm_shamir_split(r->s, s, t, n), 0);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(realm_unlock_tag(r->tag[i], prk, realm_ids[i], i + 1), 0);
		assert_int_equal(
		    realm_share_mac(r->smac[i], prk, realm_ids[i], i + 1, r->s[i].value), 0);
	}
	assert_int_equal(realm_secret_key(key, seed, s, r->hash), 0);
	r->ct_len = REALM_SEALED_LEN(sizeof SECRET);
	assert_int_equal(realm_secret_seal(r->ct, key, r->hash, SECRET, sizeof SECRET), 0);
}

/* The register body for realm i (0-based) of r, for realm id rid. */
static void register_body(struct sv_buf *b, const struct reg *r, unsigned i,
                          const uint8_t rid[REALM_ID_LEN], uint8_t limit)
{
	struct realm_register_req q = {.uid = UID,
	                               .uid_len = sizeof UID - 1,
	                               .realm_id = rid,
	                               .version = r->version,
	                               .ksf = KSF,
	                               .t = (uint8_t)r->t,
	                               .n = (uint8_t)r->n,
	                               .index = (uint8_t)(i + 1),
	                               .guess_limit = limit,
	                               .oprf_share = r->k[i].value,
	                               .commitments = r->commitments,
	                               .unlock_check = r->check,
	                               .unlock_tag = r->tag[i],
	                               .enc_share = r->s[i].value,
	                               .share_mac = r->smac[i],
	                               .ct = r->ct,
	                               .ct_len = r->ct_len};
	sv_buf_reset(b);
	assert_int_equal(realm_wire_register_encode(b, &q), 0);
}

static uint8_t do_register_at(int realm, const struct reg *r, unsigned i, uint8_t limit)
{
	struct sv_buf b;
	assert_int_equal(sv_buf_init(&b, REALM_WIRE_MAX), 0);
	register_body(&b, r, i, realm_ids[i], limit);
	uint8_t st = call(realm, SV_MSG_REALM_REGISTER, b.data, b.len);
	sv_buf_free(&b);
	return st;
}

static void register_all(const struct reg *r, uint8_t limit)
{
	for (unsigned i = 0; i < r->n; i++)
		assert_int_equal(do_register_at((int)i, r, i, limit), SV_STATUS_OK);
}

static uint8_t uid_call(int realm, uint16_t type, const uint8_t *uid, size_t uid_len)
{
	uint8_t body[2 + 255 + 1];
	struct sv_buf b;
	struct realm_uid_req q = {uid, uid_len};
	assert_int_equal(sv_buf_init(&b, sizeof(body)), 0);
	assert_int_equal(realm_wire_uid_encode(&b, &q), 0);
	uint8_t st = call(realm, type, b.data, b.len);
	sv_buf_free(&b);
	return st;
}

/* A client's pending recovery: the blinded access key and each realm's recover2 answer. */
struct rec2 {
	uint8_t access[64], seed[32], blind[32], blinded[E];
	uint8_t sid[N + 1][REALM_SESSION_LEN];
	struct realm_evaluation ev[N];
	uint8_t left[N + 1];
};

static void blind(struct rec2 *c, const struct reg *r, const char *pw)
{
	assert_int_equal(realm_stretch(c->access, c->seed, (const uint8_t *)pw, strlen(pw),
	                               r->version, UID, sizeof UID - 1, &KSF),
	                 0);
	assert_int_equal(oprf_blind(c->blind, c->blinded, OPRF_MODE_OPRF, c->access, 64), 0);
}

/* recover2 at realm (0..N; N is the tokens-mode realm, index 1) as the j-th evaluation. */
static uint8_t recover2(struct rec2 *c, const struct reg *r, int realm, size_t j,
                        const uint8_t *version)
{
	struct sv_buf b;
	struct realm_recover2_req q = {UID, sizeof UID - 1, version != NULL ? version : r->version,
	                               c->blinded};
	struct realm_recover2_reply a;
	assert_int_equal(sv_buf_init(&b, 512), 0);
	assert_int_equal(realm_wire_recover2_encode(&b, &q), 0);
	uint8_t st = call(realm, SV_MSG_REALM_RECOVER2, b.data, b.len);
	sv_buf_free(&b);
	if (st != SV_STATUS_OK)
		return st;
	assert_int_equal(realm_wire_recover2_reply_decode(&a, rbody(), rlen(), NULL), 0);
	unsigned idx = realm == N ? 0 : (unsigned)realm;
	memcpy(c->sid[realm], a.session_id, REALM_SESSION_LEN);
	c->left[realm] = a.attempts_left;
	c->ev[j].index = (uint8_t)(idx + 1);
	memcpy(c->ev[j].commitment, r->commitments + idx * E, E);
	memcpy(c->ev[j].evaluated, a.evaluated, E);
	memcpy(c->ev[j].proof, a.proof, 64);
	/* the realm's proof holds against its commitment */
	assert_int_equal(realm_verify(&c->ev[j], c->blinded), 0);
	return st;
}

/* recover3 at realm with the proof of tag (for the session recover2 opened there). */
static uint8_t recover3(int realm, const uint8_t sid[REALM_SESSION_LEN], const uint8_t tag[32])
{
	struct sv_buf b;
	uint8_t proof[32];
	assert_int_equal(realm_tag_proof(proof, tag, sid), 0);
	struct realm_recover3_req q = {sid, proof};
	assert_int_equal(sv_buf_init(&b, 128), 0);
	assert_int_equal(realm_wire_recover3_encode(&b, &q), 0);
	uint8_t st = call(realm, SV_MSG_REALM_RECOVER3, b.data, b.len);
	sv_buf_free(&b);
	return st;
}

/* The whole recovery through realms use[0..t) over the wire; 0 with the secret, or -1 for a
 * wrong password (seen by the unlock check; no recover3 sent). */
static int recover(const struct reg *r, const char *pw, const int *use, size_t nuse, uint8_t *out,
                   size_t *out_len)
{
	struct rec2 c;
	struct realm_share got[REALM_MAX];
	uint8_t comb[E], y[64], prk[64], check[32], tag[32], mac[32], s[32], key[32];
	size_t bad;
	assert_int_equal(nuse, r->t);
	blind(&c, r, pw);
	for (size_t j = 0; j < nuse; j++)
		assert_int_equal(recover2(&c, r, use[j], j, NULL), SV_STATUS_OK);
	assert_int_equal(realm_combine(comb, &bad, c.blinded, c.ev, r->t), 0);
	assert_int_equal(oprf_finalize(y, c.access, 64, c.blind, comb), 0);
	realm_unlock_prk(prk, y, r->hash);
	assert_int_equal(realm_unlock_check(check, prk), 0);
	if (sodium_memcmp(check, r->check, 32) != 0)
		return -1;
	for (size_t j = 0; j < nuse; j++) {
		int i = use[j];
		struct realm_recover3_reply a;
		assert_int_equal(realm_unlock_tag(tag, prk, realm_ids[i], (unsigned)i + 1), 0);
		assert_int_equal(recover3(i, c.sid[i], tag), SV_STATUS_OK);
		assert_int_equal(realm_wire_recover3_reply_decode(&a, rbody(), rlen(), NULL), 0);
		assert_int_equal(a.ct_len, r->ct_len);
		assert_memory_equal(a.ct, r->ct, r->ct_len);
		assert_int_equal(realm_release_open(got[j].value, mac, tag, c.sid[i], a.release),
		                 0);
		got[j].index = (uint8_t)(i + 1);
		assert_int_equal(
		    realm_share_mac(check, prk, realm_ids[i], (unsigned)i + 1, got[j].value), 0);
		assert_int_equal(sodium_memcmp(check, mac, 32), 0);
	}
	assert_int_equal(realm_shamir_combine(s, got, r->t), 0);
	assert_int_equal(realm_secret_key(key, c.seed, s, r->hash), 0);
	return realm_secret_open(out, out_len, key, r->hash, r->ct, r->ct_len);
}

static struct reg *new_reg(const char *pw, unsigned t, unsigned n)
{
	struct reg *r = sodium_malloc(sizeof *r);
	assert_non_null(r);
	make_reg(r, pw, t, n);
	return r;
}

static void status_of(int realm, struct realm_status_reply *a)
{
	assert_int_equal(uid_call(realm, SV_MSG_REALM_STATUS, UID, sizeof UID - 1), SV_STATUS_OK);
	assert_int_equal(realm_wire_status_reply_decode(a, rbody(), rlen(), NULL), 0);
}

/* ---- tests ---- */

/* register at three realms, then recover1 everywhere and a 2-of-3 recovery through every pair:
 * the secret comes back and each realm used has its counter back at zero. */
static void test_round_trip(void **state)
{
	static const int pairs[][2] = {{0, 1}, {0, 2}, {2, 1}};
	struct reg *r = new_reg("hunter2", 2, 3);
	struct realm_status_reply st;
	uint8_t out[REALM_SECRET_MAX];
	size_t len = 0;

	register_all(r, 7);
	EXPECT_NOTED(AUDIT_REALM_REGISTER, AUDIT_REALM_REGISTER, AUDIT_REALM_REGISTER);
	assert_int_equal(NOTED[0].n.guess_limit, 7);
	for (int i = 0; i < N; i++) {
		struct realm_recover1_reply a;
		assert_int_equal(uid_call(i, SV_MSG_REALM_RECOVER1, UID, sizeof UID - 1),
		                 SV_STATUS_OK);
		assert_int_equal(realm_wire_recover1_reply_decode(&a, rbody(), rlen(), NULL), 0);
		assert_memory_equal(a.version, r->version, REALM_VERSION_LEN);
		assert_int_equal(a.t, 2);
		assert_int_equal(a.n, 3);
		assert_int_equal(a.index, i + 1);
		assert_int_equal(a.attempts_left, 7);
		assert_int_equal(a.ksf.type, KSF_IDENTITY);
		assert_memory_equal(a.unlock_check, r->check, 32);
		assert_memory_equal(a.commitments, r->commitments, 3 * E);
		assert_int_equal(ST[i].staged, 0); /* recover1 charges nothing */
		assert_int_equal(rec_of(i, UID, sizeof UID - 1)->used, 0);
		status_of(i, &st);
		assert_int_equal(st.state, REALM_STATE_REGISTERED);
		assert_int_equal(st.guess_limit, 7);
		assert_int_equal(st.attempts_left, 7);
		assert_int_equal(st.index, i + 1);
	}
	assert_int_equal(NNOTED, 0); /* recover1 and status change nothing */
	for (size_t p = 0; p < 3; p++) {
		memset(out, 0, sizeof out);
		assert_int_equal(recover(r, "hunter2", pairs[p], 2, out, &len), 0);
		assert_int_equal(len, sizeof SECRET);
		assert_memory_equal(out, SECRET, sizeof SECRET);
		for (int i = 0; i < N; i++)
			assert_int_equal(rec_of(i, UID, sizeof UID - 1)->used, 0);
		/* a realm guess at each realm, then each realm's share released: realm kinds */
		EXPECT_NOTED(AUDIT_REALM_GUESS, AUDIT_REALM_GUESS, AUDIT_REALM_RECOVERED,
		             AUDIT_REALM_RECOVERED);
		assert_int_equal(NOTED[0].n.attempts_left, 6);
		assert_int_equal(NOTED[0].n.guess_limit, 7);
		assert_false(NOTED[2].n.restored);
		assert_true(NOTED[2].n.at_write); /* a reset: durable once written */
	}
	/* a wrong password: the unlock check tells, the realms used stay charged */
	assert_int_equal(recover(r, "hunter3", pairs[0], 2, out, &len), -1);
	EXPECT_NOTED(AUDIT_REALM_GUESS, AUDIT_REALM_GUESS);
	assert_int_equal(rec_of(0, UID, sizeof UID - 1)->used, 1);
	assert_int_equal(rec_of(1, UID, sizeof UID - 1)->used, 1);
	assert_int_equal(rec_of(2, UID, sizeof UID - 1)->used, 0);
	/* the /v1 namespace is untouched: no record under the bare identifier */
	assert_null(fake_find(&ST[0], UID, sizeof UID - 1));
	sodium_free(r);
}

/* A wrong tag proof: 403 with the attempts left while any are, 410 at the last (the record
 * destroyed: recover1 and recover2 410, status "destroyed"). */
static void test_wrong_proof_then_destroyed(void **state)
{
	struct reg *r = new_reg("pw", 2, 3);
	struct rec2 c;
	uint8_t wrong[32];
	struct realm_status_reply st;
	randombytes_buf(wrong, sizeof wrong);
	register_all(r, 3);
	blind(&c, r, "pw");
	for (int k = 2; k >= 1; k--) {
		assert_int_equal(recover2(&c, r, 0, 0, NULL), SV_STATUS_OK);
		assert_int_equal(c.left[0], k);
		assert_int_equal(recover3(0, c.sid[0], wrong), SV_STATUS_AUTH_FAILED);
		assert_int_equal(rlen(), 1);
		assert_int_equal(rbody()[0], k);
	}
	NNOTED = 0;
	assert_int_equal(recover2(&c, r, 0, 0, NULL), SV_STATUS_OK);
	assert_int_equal(c.left[0], 0);
	assert_true(rec_of(0, UID, sizeof UID - 1)->destroyed); /* at once, at the charge */
	EXPECT_NOTED(AUDIT_REALM_GUESS, AUDIT_REALM_DESTROYED);
	assert_int_equal(NOTED[1].n.guess_limit, 3);
	assert_int_equal(recover3(0, c.sid[0], wrong), SV_STATUS_LOCKED);
	assert_int_equal(uid_call(0, SV_MSG_REALM_RECOVER1, UID, sizeof UID - 1), SV_STATUS_LOCKED);
	assert_int_equal(recover2(&c, r, 0, 0, NULL), SV_STATUS_LOCKED);
	status_of(0, &st);
	assert_int_equal(st.state, REALM_STATE_DESTROYED);
	/* registering again replaces the destroyed record */
	assert_int_equal(do_register_at(0, r, 0, 3), SV_STATUS_OK);
	status_of(0, &st);
	assert_int_equal(st.state, REALM_STATE_REGISTERED);
	assert_int_equal(st.attempts_left, 3);
	sodium_free(r);
}

/* The charge that uses the last guess destroys the record and keeps a copy for its session: a
 * right tag proof writes it back with the counter at zero. */
static void test_last_guess_rescue(void **state)
{
	static const int use[] = {0, 1};
	struct reg *r = new_reg("pw", 2, 3);
	struct rec2 c;
	uint8_t wrong[32], out[REALM_SECRET_MAX];
	size_t len;
	randombytes_buf(wrong, sizeof wrong);
	register_all(r, 2);
	blind(&c, r, "pw");
	assert_int_equal(recover2(&c, r, 0, 0, NULL), SV_STATUS_OK);
	assert_int_equal(recover3(0, c.sid[0], wrong), SV_STATUS_AUTH_FAILED);
	NNOTED = 0;
	/* realm 0's last guess, then a right recovery through realms 0 and 1 */
	assert_int_equal(recover(r, "pw", use, sizeof use / sizeof use[0], out, &len), 0);
	assert_memory_equal(out, SECRET, sizeof SECRET);
	EXPECT_NOTED(AUDIT_REALM_GUESS, AUDIT_REALM_DESTROYED, AUDIT_REALM_GUESS,
	             AUDIT_REALM_RECOVERED, AUDIT_REALM_RECOVERED);
	assert_true(NOTED[3].n.restored);  /* realm 0: the record its last guess destroyed */
	assert_false(NOTED[3].n.at_write); /* a restore: durable once anchored */
	assert_false(NOTED[4].n.restored);
	struct fake_user *u = rec_of(0, UID, sizeof UID - 1);
	assert_false(u->destroyed);
	assert_int_equal(u->used, 0);
	assert_int_equal(u->limit, 2);
	assert_int_equal(u->blob_len, 3 * E + r->ct_len);
	sodium_free(r);
}

/* A last guess whose session ends otherwise (a wrong proof, a deletion, a re-registration)
 * never brings the record back. */
static void test_last_guess_lost(void **state)
{
	struct reg *r = new_reg("pw", 2, 3);
	struct rec2 c;
	blind(&c, r, "pw");
	assert_int_equal(do_register_at(0, r, 0, 1), SV_STATUS_OK);
	/* deleted while the last guess is pending: the right proof finds nothing to restore */
	assert_int_equal(recover2(&c, r, 0, 0, NULL), SV_STATUS_OK);
	assert_int_equal(uid_call(0, SV_MSG_REALM_DELETE, UID, sizeof UID - 1), SV_STATUS_OK);
	assert_int_equal(recover3(0, c.sid[0], r->tag[0]), SV_STATUS_OUT_OF_ORDER);
	assert_null(rec_of(0, UID, sizeof UID - 1));
	/* the session expires: the record stays destroyed */
	assert_int_equal(do_register_at(0, r, 0, 1), SV_STATUS_OK);
	assert_int_equal(recover2(&c, r, 0, 0, NULL), SV_STATUS_OK);
	NOW += (uint64_t)P.login_timeout_s * 1000;
	vault_expire(V[0], NOW);
	assert_int_equal(recover3(0, c.sid[0], r->tag[0]), SV_STATUS_OUT_OF_ORDER);
	assert_true(rec_of(0, UID, sizeof UID - 1)->destroyed);
	sodium_free(r);
}

/* recover2 naming another version: 409, nothing charged, no session. */
static void test_stale_version(void **state)
{
	struct reg *r = new_reg("pw", 2, 3);
	struct rec2 c;
	uint8_t other[REALM_VERSION_LEN];
	size_t pending;
	register_all(r, 5);
	blind(&c, r, "pw");
	memcpy(other, r->version, sizeof other);
	other[0] ^= 1;
	assert_int_equal(recover2(&c, r, 1, 0, other), SV_STATUS_OUT_OF_ORDER);
	assert_int_equal(rec_of(1, UID, sizeof UID - 1)->used, 0);
	assert_int_equal(vault_pending(V[1], &pending), 0);
	assert_int_equal(ST[1].charges, 0);
	/* an identifier with no record: 404 at recover1 and recover2, nothing charged */
	static const uint8_t bob[] = "bob";
	assert_int_equal(uid_call(1, SV_MSG_REALM_RECOVER1, bob, 3), SV_STATUS_NOT_FOUND);
	assert_int_equal(rlen(), 0);
	sodium_free(r);
}

/* recover3 consumes its session whatever the answer: a replay, an unknown or a made-up session
 * id is 409. */
static void test_session_replay(void **state)
{
	struct reg *r = new_reg("pw", 2, 3);
	struct rec2 c;
	uint8_t unknown[REALM_SESSION_LEN] = {0};
	size_t pending;
	register_all(r, 5);
	blind(&c, r, "pw");
	assert_int_equal(recover2(&c, r, 2, 0, NULL), SV_STATUS_OK);
	assert_int_equal(vault_pending(V[2], &pending), 1);
	assert_int_equal(recover3(2, c.sid[2], r->tag[2]), SV_STATUS_OK);
	assert_int_equal(vault_pending(V[2], &pending), 0);
	assert_int_equal(rec_of(2, UID, sizeof UID - 1)->used, 0);
	assert_int_equal(recover3(2, c.sid[2], r->tag[2]), SV_STATUS_OUT_OF_ORDER);
	assert_int_equal(recover3(2, unknown, r->tag[2]), SV_STATUS_OUT_OF_ORDER);
	/* a wrong proof consumes it too */
	assert_int_equal(recover2(&c, r, 2, 0, NULL), SV_STATUS_OK);
	assert_int_equal(recover3(2, c.sid[2], r->tag[1]), SV_STATUS_AUTH_FAILED);
	assert_int_equal(recover3(2, c.sid[2], r->tag[2]), SV_STATUS_OUT_OF_ORDER);
	assert_int_equal(rec_of(2, UID, sizeof UID - 1)->used, 1);
	/* a realm's session is no /v1 login: login/finish does not know it */
	sodium_free(r);
}

/* A re-registration between recover2 and recover3: the old session cannot reset the new record. */
static void test_replaced_between(void **state)
{
	struct reg *r = new_reg("pw", 2, 3), *r2 = new_reg("pw2", 2, 3);
	struct rec2 c;
	register_all(r, 5);
	blind(&c, r, "pw");
	assert_int_equal(recover2(&c, r, 0, 0, NULL), SV_STATUS_OK);
	assert_int_equal(do_register_at(0, r2, 0, 5), SV_STATUS_OK);
	assert_int_equal(recover3(0, c.sid[0], r->tag[0]), SV_STATUS_OUT_OF_ORDER);
	sodium_free(r);
	sodium_free(r2);
}

/* delete: 200 whether or not there is a record, and nothing left afterwards. */
static void test_delete_idempotent(void **state)
{
	struct reg *r = new_reg("pw", 2, 3);
	struct realm_status_reply st;
	register_all(r, 5);
	NNOTED = 0;
	assert_int_equal(uid_call(1, SV_MSG_REALM_DELETE, UID, sizeof UID - 1), SV_STATUS_OK);
	assert_int_equal(rlen(), 0);
	assert_null(rec_of(1, UID, sizeof UID - 1));
	EXPECT_NOTED(AUDIT_REALM_DELETED);
	assert_false(NOTED[0].n.operator);
	assert_int_equal(uid_call(1, SV_MSG_REALM_DELETE, UID, sizeof UID - 1), SV_STATUS_OK);
	assert_int_equal(ST[1].staged, 0);
	assert_int_equal(NNOTED, 0); /* nothing deleted: no record */
	assert_int_equal(uid_call(1, SV_MSG_REALM_RECOVER1, UID, sizeof UID - 1),
	                 SV_STATUS_NOT_FOUND);
	status_of(1, &st);
	assert_int_equal(st.state, REALM_STATE_NONE);
	/* the other realms keep theirs */
	assert_non_null(rec_of(0, UID, sizeof UID - 1));
	sodium_free(r);
}

/* Malformed bodies, a registration for another realm, a guess limit above the maximum and a
 * blinded element that is not one: 400, and nothing staged or changed. */
static void test_malformed_changes_nothing(void **state)
{
	struct reg *r = new_reg("pw", 2, 3);
	struct sv_buf b;
	struct rec2 c;
	static const uint16_t types[] = {SV_MSG_REALM_REGISTER, SV_MSG_REALM_RECOVER1,
	                                 SV_MSG_REALM_RECOVER2, SV_MSG_REALM_RECOVER3,
	                                 SV_MSG_REALM_DELETE,   SV_MSG_REALM_STATUS};
	assert_int_equal(sv_buf_init(&b, REALM_WIRE_MAX), 0);
	register_all(r, 5);
	/* every type: empty, a wrong version byte, and a truncated register */
	register_body(&b, r, 0, realm_ids[0], 5);
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		assert_int_equal(call(0, types[k], NULL, 0), SV_STATUS_BAD_REQUEST);
		b.data[0] = 3;
		assert_int_equal(call(0, types[k], b.data, b.len), SV_STATUS_BAD_REQUEST);
		b.data[0] = REALM_WIRE_VERSION;
		assert_int_equal(call(0, types[k], b.data, b.len - 1), SV_STATUS_BAD_REQUEST);
	}
	/* trailing bytes */
	assert_int_equal(sv_buf_put_u8(&b, 0), 0);
	assert_int_equal(call(0, SV_MSG_REALM_REGISTER, b.data, b.len), SV_STATUS_BAD_REQUEST);
	/* meant for realm 2 */
	register_body(&b, r, 0, realm_ids[1], 5);
	assert_int_equal(call(0, SV_MSG_REALM_REGISTER, b.data, b.len), SV_STATUS_BAD_REQUEST);
	assert_non_null(strstr((const char *)rbody(), "this registration is for realm 22"));
	/* above max-guess-limit */
	register_body(&b, r, 0, realm_ids[0], (uint8_t)(P.max_guess_limit + 1));
	assert_int_equal(call(0, SV_MSG_REALM_REGISTER, b.data, b.len), SV_STATUS_BAD_REQUEST);
	/* the blinded element is not one */
	blind(&c, r, "pw");
	memset(c.blinded, 0xff, E);
	assert_int_equal(recover2(&c, r, 0, 0, NULL), SV_STATUS_BAD_REQUEST);
	/* not a realm type */
	assert_int_equal(call(0, SV_MSG_LOGIN_START, NULL, 0), SV_STATUS_BAD_REQUEST);
	struct fake_user *u = rec_of(0, UID, sizeof UID - 1);
	assert_int_equal(u->used, 0);
	assert_int_equal(u->limit, 5);
	assert_int_equal(ST[0].charges, 0);
	assert_int_equal(ST[0].counter, 1); /* the one registration */
	EXPECT_NOTED(AUDIT_REALM_REGISTER, AUDIT_REALM_REGISTER, AUDIT_REALM_REGISTER);
	/* a 0 guess limit is the realm's default */
	register_body(&b, r, 0, realm_ids[0], 0);
	assert_int_equal(call(0, SV_MSG_REALM_REGISTER, b.data, b.len), SV_STATUS_OK);
	assert_int_equal(rec_of(0, UID, sizeof UID - 1)->limit, P.default_guess_limit);
	sv_buf_free(&b);
	sodium_free(r);
}

/* Tokens mode: a missing token, another user's, or one without the scope is refused before
 * anything is stored or charged; a refused recover3 leaves the session usable. */
static void test_tokens(void **state)
{
	struct reg *r = new_reg("pw", 2, 3);
	struct sv_buf b;
	struct rec2 c;
	size_t n, pending;
	uint8_t key[STORE_ID_MAX];
	size_t key_len = 0;
	assert_int_equal(sv_buf_init(&b, REALM_WIRE_MAX), 0);
	register_body(&b, r, 0, realm_ids[0], 5);
	TOK = NULL;
	TOK_LEN = 0;
	assert_int_equal(call(N, SV_MSG_REALM_REGISTER, b.data, b.len), SV_STATUS_UNAUTHORIZED);
	TOK = mint("alice", "recover", &TOK_LEN);
	assert_int_equal(call(N, SV_MSG_REALM_REGISTER, b.data, b.len), SV_STATUS_FORBIDDEN);
	TOK = mint("bob", "register", &TOK_LEN);
	assert_int_equal(call(N, SV_MSG_REALM_REGISTER, b.data, b.len), SV_STATUS_UNAUTHORIZED);
	assert_int_equal(store_records(&ST[0]), 0);
	TOK = mint("alice", "register", &TOK_LEN);
	assert_int_equal(call(N, SV_MSG_REALM_REGISTER, b.data, b.len), SV_STATUS_OK);
	/* the record key: 0x01 | 0x00 | len | "acme" | "alice" */
	uint8_t v1[STORE_ID_MAX];
	assert_int_equal(record_key_tenant("acme", UID, sizeof UID - 1, v1, sizeof v1, &n), 0);
	assert_int_equal(record_key_realm(v1, n, key, sizeof key, &key_len), 0);
	struct fake_user *u = fake_find(&ST[0], key, key_len);
	assert_non_null(u);
	/* recover2 refused: no token, the register scope, bob's token */
	blind(&c, r, "pw");
	TOK = NULL;
	TOK_LEN = 0;
	assert_int_equal(recover2(&c, r, N, 0, NULL), SV_STATUS_UNAUTHORIZED);
	TOK = mint("alice", "register", &TOK_LEN);
	assert_int_equal(recover2(&c, r, N, 0, NULL), SV_STATUS_FORBIDDEN);
	TOK = mint("bob", "recover", &TOK_LEN);
	assert_int_equal(recover2(&c, r, N, 0, NULL), SV_STATUS_UNAUTHORIZED);
	assert_int_equal(u->used, 0);
	assert_int_equal(ST[0].charges, 0);
	assert_int_equal(vault_pending(V[N], &pending), 0);
	/* status with any scope; delete needs its own */
	TOK = mint("alice", "register", &TOK_LEN);
	assert_int_equal(uid_call(N, SV_MSG_REALM_STATUS, UID, sizeof UID - 1), SV_STATUS_OK);
	assert_int_equal(rbody()[0], REALM_STATE_REGISTERED);
	assert_int_equal(uid_call(N, SV_MSG_REALM_DELETE, UID, sizeof UID - 1),
	                 SV_STATUS_FORBIDDEN);
	assert_non_null(fake_find(&ST[0], key, key_len));
	/* a real recovery step: bob cannot finish alice's session, alice can */
	TOK = mint("alice", "recover", &TOK_LEN);
	assert_int_equal(recover2(&c, r, N, 0, NULL), SV_STATUS_OK);
	assert_int_equal(u->used, 1);
	TOK = mint("bob", "recover", &TOK_LEN);
	assert_int_equal(recover3(N, c.sid[N], r->tag[0]), SV_STATUS_UNAUTHORIZED);
	assert_int_equal(u->used, 1);
	TOK = mint("alice", "recover", &TOK_LEN);
	assert_int_equal(recover3(N, c.sid[N], r->tag[0]), SV_STATUS_OK);
	assert_int_equal(u->used, 0);
	TOK = mint("alice", "delete", &TOK_LEN);
	assert_int_equal(uid_call(N, SV_MSG_REALM_DELETE, UID, sizeof UID - 1), SV_STATUS_OK);
	assert_null(fake_find(&ST[0], key, key_len));
	TOK = NULL;
	TOK_LEN = 0;
	sv_buf_free(&b);
	sodium_free(r);
}

/* A realm record and a /v1 record of the same identifier never meet: the vault's login/start
 * on the identifier knows nothing of the realm record. */
static void test_namespaces(void **state)
{
	struct reg *r = new_reg("pw", 1, 1);
	static const int use[] = {0};
	uint8_t out[REALM_SECRET_MAX];
	size_t len;
	assert_int_equal(do_register_at(0, r, 0, 4), SV_STATUS_OK);
	assert_int_equal(store_records(&ST[0]), 1);
	assert_null(fake_find(&ST[0], UID, sizeof UID - 1));
	/* t = n = 1: the realm alone gives the secret back */
	assert_int_equal(recover(r, "pw", use, sizeof use / sizeof use[0], out, &len), 0);
	assert_memory_equal(out, SECRET, sizeof SECRET);
	sodium_free(r);
}

/* recover2 shares the vault's per-identifier rate and pending-session table: over the rate
 * 429, a full table 503, both before anything is charged. */
static void test_rate_and_table(void **state)
{
	struct reg *r = new_reg("pw", 2, 3);
	struct rec2 c;
	size_t pending;
	register_all(r, 20);
	blind(&c, r, "pw");
	for (int k = 0; k < 5; k++)
		assert_int_equal(recover2(&c, r, 0, 0, NULL), SV_STATUS_OK);
	assert_int_equal(recover2(&c, r, 0, 0, NULL), SV_STATUS_TOO_MANY);
	assert_true(rlen() > 4);
	assert_true(rbody()[3] >= 1); /* Retry-After, seconds */
	assert_int_equal(rec_of(0, UID, sizeof UID - 1)->used, 5);
	/* the table (32 entries) fills with realm sessions of realm 1 under another rate... */
	teardown(state);
	setup(state);
	register_all(r, 40);
	for (unsigned k = 0; k < P.pending_login_max; k++)
		assert_int_equal(recover2(&c, r, 1, 0, NULL), SV_STATUS_OK);
	assert_int_equal(vault_pending(V[1], &pending), P.pending_login_max);
	assert_int_equal(recover2(&c, r, 1, 0, NULL), SV_STATUS_BUSY);
	assert_int_equal(rec_of(1, UID, sizeof UID - 1)->used, P.pending_login_max);
	/* ... and frees up at the timeout */
	NOW += (uint64_t)P.login_timeout_s * 1000;
	assert_int_equal(recover2(&c, r, 1, 0, NULL), SV_STATUS_OK);
	sodium_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_proof_then_destroyed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_last_guess_rescue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_last_guess_lost, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_version, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_session_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replaced_between, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_idempotent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_changes_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_namespaces, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rate_and_table, setup_rate, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
