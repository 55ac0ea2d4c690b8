/*
 * Unit tests of libsealvault's flows (client/libsealvault.c) against an in-test fake server:
 * this file replaces client/http.c (the libcurl transport) with a function that parses each
 * request body itself, runs the server side of OPAQUE from crypto/, counts guesses and answers
 * like the HTTP API of docs/protocol.md. Knobs make it misbehave (statuses, tampering, a server
 * that accepts any KE3) to check that the client reports each case as the right result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "client/http.h"
#include "client/sealvault.h"
#include "client/vaultcore.h"
#include "common/attest_stmt.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/info.h"
#include "common/msg.h"
#include "crypto/hkdf.h"
#include "crypto/opaque.h"

#define CONTEXT "sealvault-v1"
#define NUSERS  4

struct fake_user {
	int live;
	int destroyed;
	char id[256];
	uint8_t record[OPAQUE_RECORD_LEN];
	uint8_t blob[512];
	size_t blob_len;
	unsigned limit, used;
};

static struct {
	struct opaque_server_key key;
	uint8_t oprf_seed[OPAQUE_OPRF_SEED_LEN];
	uint8_t fake_seed[OPAQUE_FAKE_SEED_LEN];
	struct fake_user users[NUSERS];
	/* the one pending login */
	int pending;     /* 1 after KE2, 2 after a change-password KE3 */
	int pending_uid; /* -1: unknown identifier */
	uint8_t sid[16];
	struct opaque_server_state st;
	uint8_t session_key[OPAQUE_SESSION_KEY_LEN];
	uint8_t phantom_left;
	/* knobs */
	long force_status;  /* answer every request with this status and an empty body */
	int accept_any_ke3; /* a broken or hostile server */
	int tamper_release; /* flip a byte of the sealed blob released by recover */
	int transport_fail;
	int extra_byte; /* append a byte to login/start replies */
	int last_op;    /* op of the last authenticated login/finish */
	int requests;
	/* GET /v1/info */
	long info_status;         /* 0: serve the document; else answer this status */
	const char *info_context; /* NULL: CONTEXT */
	const char *info_suite;   /* NULL: INFO_SUITE */
	int info_requests;
	/* access tokens: the bearer set for the transport now, and on every vault POST */
	const char *bearer;
	int posts_with_bearer, posts_without;
	const char *force_text; /* with force_status: the body of that answer */
} F;

/* ---- the fake transport (replaces client/http.c) ---- */

struct client_http {
	int unused;
};

int client_http_new(struct client_http **out, const char *base_url)
{
	if (strncmp(base_url, "https://", 8) != 0)
		return SV_ERR_CONFIG;
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : SV_ERR_NOMEM;
}

void client_http_free(struct client_http *h)
{
	free(h);
}

int client_http_set_cacert(struct client_http *h, const char *path)
{
	return 0;
}

void client_http_set_timeout(struct client_http *h, unsigned seconds) {}

void client_http_set_bearer(struct client_http *h, const char *token)
{
	F.bearer = token;
}

/* GET /v1/info: this fake vault's description (F.info_* change it). */
static int info(long *status, struct sv_buf *reply)
{
	const char *c = F.info_context != NULL ? F.info_context : CONTEXT;
	struct sv_info in = {.context_len = strlen(c),
	                     .guess_default = 10,
	                     .guess_max = 10,
	                     .versions = {1},
	                     .n_versions = 1,
	                     .ksf_t = INFO_KSF_T,
	                     .ksf_m_kib = INFO_KSF_M_KIB};
	F.info_requests++;
	sv_buf_reset(reply);
	*status = F.info_status != 0 ? F.info_status : 200;
	if (F.info_status != 0)
		return 0;
	snprintf(in.suite, sizeof(in.suite), "%s", F.info_suite ? F.info_suite : INFO_SUITE);
	memcpy(in.context, c, in.context_len);
	memcpy(in.server_pk, F.key.pk, INFO_PK_LEN);
	info_vault_id(in.vault_id, in.server_pk);
	return info_encode(&in, reply);
}

/* GET is used for GET /v1/info and for attestation evidence: for the latter this fake vault
 * answers with a JSON text that is not evidence, and counts the requests. */
static int get_requests;
int client_http_get(struct client_http *h, const char *path, long *status, struct sv_buf *reply,
                    char *err, size_t err_len)
{
	if (strcmp(path, "/v1/info") == 0)
		return info(status, reply);
	get_requests++;
	assert_non_null(strstr(path, "/v1/attestation?nonce="));
	sv_buf_reset(reply);
	*status = 200;
	return sv_buf_put(reply, "{\"version\": 1}", 14);
}

static int find_user(const uint8_t *id, size_t len)
{
	for (int i = 0; i < NUSERS; i++)
		if ((F.users[i].live || F.users[i].destroyed) && strlen(F.users[i].id) == len &&
		    memcmp(F.users[i].id, id, len) == 0)
			return i;
	return -1;
}

static void mac_key(uint8_t key[64], const uint8_t sk[OPAQUE_SESSION_KEY_LEN])
{
	assert_int_equal(hkdf_sha512_expand(key, 64, sk, OPAQUE_SESSION_KEY_LEN,
	                                    (const uint8_t *)"sealvault op mac", 16, NULL, 0),
	                 0);
}

static int mac_ok(const uint8_t *msg, size_t len, const uint8_t *mac)
{
	uint8_t key[64], want[64];
	mac_key(key, F.session_key);
	hkdf_hmac_sha512(want, key, sizeof(key), msg, len, NULL, 0);
	return sodium_memcmp(want, mac, 64) == 0;
}

static long reg_start(struct sv_buf *in, struct sv_buf *out)
{
	uint8_t v;
	const uint8_t *id, *req;
	size_t id_len;
	uint8_t resp[OPAQUE_REGISTRATION_RESPONSE_LEN];
	if (sv_buf_get_u8(in, &v) || v != 1 || sv_buf_get_str16(in, 255, &id, &id_len) ||
	    id_len == 0 || sv_buf_get_ref(in, 32, &req) || sv_buf_expect_end(in))
		return 400;
	int u = find_user(id, id_len);
	if (u >= 0 && F.users[u].live)
		return 409;
	if (opaque_server_registration_response(resp, req, F.key.pk, F.oprf_seed, id, id_len))
		return 400;
	assert_int_equal(sv_buf_put(out, resp, sizeof(resp)), 0);
	return 200;
}

static long reg_finish(struct sv_buf *in)
{
	uint8_t v, limit;
	const uint8_t *id, *rec, *blob;
	size_t id_len, blob_len;
	if (sv_buf_get_u8(in, &v) || v != 1 || sv_buf_get_str16(in, 255, &id, &id_len) ||
	    id_len == 0 || sv_buf_get_ref(in, OPAQUE_RECORD_LEN, &rec) ||
	    sv_buf_get_u8(in, &limit) || sv_buf_get_str16(in, 512, &blob, &blob_len) ||
	    blob_len == 0 || sv_buf_expect_end(in) || opaque_record_check(rec, OPAQUE_RECORD_LEN))
		return 400;
	int u = find_user(id, id_len);
	if (u >= 0 && F.users[u].live)
		return 409;
	if (u < 0)
		for (u = 0; u < NUSERS && (F.users[u].live || F.users[u].destroyed); u++)
			;
	assert_true(u < NUSERS);
	struct fake_user *x = &F.users[u];
	memset(x, 0, sizeof(*x));
	x->live = 1;
	memcpy(x->id, id, id_len);
	memcpy(x->record, rec, sizeof(x->record));
	memcpy(x->blob, blob, blob_len);
	x->blob_len = blob_len;
	x->limit = limit ? limit : 10;
	return 200;
}

static long login_start(struct sv_buf *in, struct sv_buf *out)
{
	uint8_t v, ke2[OPAQUE_KE2_LEN], fake[OPAQUE_RECORD_LEN], left;
	const uint8_t *id, *ke1, *rec;
	size_t id_len;
	struct opaque_params p = {.context = (const uint8_t *)CONTEXT, .context_len = 12};
	if (sv_buf_get_u8(in, &v) || v != 1 || sv_buf_get_str16(in, 255, &id, &id_len) ||
	    id_len == 0 || sv_buf_get_ref(in, OPAQUE_KE1_LEN, &ke1) || sv_buf_expect_end(in))
		return 400;
	int u = find_user(id, id_len);
	if (u >= 0 && F.users[u].destroyed)
		return 410;
	if (u >= 0) {
		struct fake_user *x = &F.users[u];
		x->used++; /* charged before KE2 leaves */
		left = (uint8_t)(x->limit - x->used);
		rec = x->record;
	} else {
		assert_int_equal(opaque_fake_record_derive(fake, F.fake_seed, id, id_len), 0);
		left = F.phantom_left;
		rec = fake;
	}
	if (opaque_server_ke2(ke2, &F.st, ke1, rec, id, id_len, F.oprf_seed, &F.key, &p))
		return 400;
	randombytes_buf(F.sid, sizeof(F.sid));
	F.pending = 1;
	F.pending_uid = u;
	assert_int_equal(sv_buf_put(out, F.sid, 16), 0);
	assert_int_equal(sv_buf_put(out, ke2, sizeof(ke2)), 0);
	assert_int_equal(sv_buf_put_u8(out, left), 0);
	if (F.extra_byte)
		assert_int_equal(sv_buf_put_u8(out, 0), 0);
	return 200;
}

static long failed(struct sv_buf *out, struct fake_user *x)
{
	uint8_t left = x ? (uint8_t)(x->limit - x->used) : F.phantom_left;
	if (x && left == 0) { /* the last guess failed: destroyed for good */
		x->live = 0;
		x->destroyed = 1;
		memset(x->record, 0, sizeof(x->record));
		memset(x->blob, 0, sizeof(x->blob));
	}
	assert_int_equal(sv_buf_put_u8(out, left), 0);
	return 403;
}

static long login_finish(struct sv_buf *in, struct sv_buf *out)
{
	uint8_t v, op;
	const uint8_t *sid, *ke3, *payload = NULL, *mac, *macced;
	uint8_t resp[OPAQUE_REGISTRATION_RESPONSE_LEN];
	if (sv_buf_get_u8(in, &v) || v != 1)
		return 400;
	macced = sv_buf_ptr(in);
	if (sv_buf_get_ref(in, 16, &sid) || sv_buf_get_ref(in, 64, &ke3) || sv_buf_get_u8(in, &op))
		return 400;
	size_t payload_len = op == 3 ? 32 : 0;
	if (op < 1 || op > 3 || (payload_len && sv_buf_get_ref(in, payload_len, &payload)))
		return 400;
	size_t macced_len = 16 + 1 + payload_len;
	if (sv_buf_get_ref(in, 64, &mac) || sv_buf_expect_end(in))
		return 400;
	if (F.pending != 1 || memcmp(sid, F.sid, 16) != 0)
		return 409;
	F.pending = 0;
	struct fake_user *x = F.pending_uid >= 0 ? &F.users[F.pending_uid] : NULL;
	/* the MAC covers session_id | op | payload, i.e. everything but KE3 */
	uint8_t covered[16 + 1 + 32];
	memcpy(covered, macced, 16);
	memcpy(covered + 16, macced + 16 + 64, 1 + payload_len);
	int ok = opaque_server_finish(F.session_key, &F.st, ke3) == 0 && x != NULL &&
	         mac_ok(covered, macced_len, mac);
	if (!ok && !F.accept_any_ke3)
		return failed(out, x);
	if (x == NULL || !x->live)
		return 200; /* only the hostile server gets here */
	x->used = 0;
	F.last_op = op;
	if (op == 1) {
		uint8_t key[32], *p;
		assert_int_equal(hkdf_sha512_expand(key, 32, F.session_key, 64,
		                                    (const uint8_t *)"sealvault recover seal", 22,
		                                    NULL, 0),
		                 0);
		assert_int_equal(sv_buf_reserve(out, 24 + x->blob_len + 16, &p), 0);
		randombytes_buf(p, 24);
		crypto_aead_xchacha20poly1305_ietf_encrypt(p + 24, NULL, x->blob, x->blob_len,
		                                           F.sid, 16, NULL, p, key);
		if (F.tamper_release)
			p[30] ^= 1;
		return 200;
	}
	if (op == 2) {
		memset(x, 0, sizeof(*x));
		return 200;
	}
	if (opaque_server_registration_response(resp, payload, F.key.pk, F.oprf_seed,
	                                        (const uint8_t *)x->id, strlen(x->id)))
		return 400;
	F.pending = 2;
	assert_int_equal(sv_buf_put(out, resp, sizeof(resp)), 0);
	return 200;
}

static long change_finish(struct sv_buf *in, struct sv_buf *out)
{
	uint8_t v, limit;
	const uint8_t *sid, *rec, *blob, *mac;
	size_t blob_len;
	if (sv_buf_get_u8(in, &v) || v != 1 || sv_buf_get_ref(in, 16, &sid) ||
	    sv_buf_get_ref(in, OPAQUE_RECORD_LEN, &rec) || sv_buf_get_u8(in, &limit) ||
	    sv_buf_get_str16(in, 512, &blob, &blob_len) || blob_len == 0)
		return 400;
	size_t macced_len = in->off;
	if (sv_buf_get_ref(in, 64, &mac) || sv_buf_expect_end(in))
		return 400;
	if (F.pending != 2 || memcmp(sid, F.sid, 16) != 0)
		return 409;
	F.pending = 0;
	struct fake_user *x = &F.users[F.pending_uid];
	if (!mac_ok(in->data, macced_len, mac))
		return failed(out, x);
	memcpy(x->record, rec, sizeof(x->record));
	memcpy(x->blob, blob, blob_len);
	x->blob_len = blob_len;
	x->limit = limit ? limit : 10;
	x->used = 0;
	return 200;
}

int client_http_post(struct client_http *h, const char *path, const uint8_t *body, size_t len,
                     long *status, struct sv_buf *reply, char *err, size_t err_len)
{
	struct sv_buf in;
	F.requests++;
	sv_buf_reset(reply);
	if (F.transport_fail) {
		snprintf(err, err_len, "https://test%s: Connection refused", path);
		return SV_ERR_IO;
	}
	if (F.bearer != NULL && strcmp(F.bearer, "hdr.claims.sig") == 0)
		F.posts_with_bearer++;
	else
		F.posts_without++;
	if (F.force_status) {
		*status = F.force_status;
		return F.force_text != NULL ? sv_buf_put(reply, F.force_text, strlen(F.force_text))
		                            : 0;
	}
	sv_buf_from(&in, body, len);
	if (strcmp(path, "/v1/register/start") == 0)
		*status = reg_start(&in, reply);
	else if (strcmp(path, "/v1/register/finish") == 0)
		*status = reg_finish(&in);
	else if (strcmp(path, "/v1/login/start") == 0)
		*status = login_start(&in, reply);
	else if (strcmp(path, "/v1/login/finish") == 0)
		*status = login_finish(&in, reply);
	else if (strcmp(path, "/v1/change-password/finish") == 0)
		*status = change_finish(&in, reply);
	else
		*status = 404;
	return 0;
}

/* ---- helpers ---- */

static const uint8_t SECRET[] = "0123456789abcdef-backup-key-\x00\xff-bytes";
#define PW(s) (const uint8_t *)(s), strlen(s)

static int setup(void **state)
{
	memset(&F, 0, sizeof(F));
	assert_int_equal(opaque_server_key_generate(&F.key), 0);
	randombytes_buf(F.oprf_seed, sizeof(F.oprf_seed));
	randombytes_buf(F.fake_seed, sizeof(F.fake_seed));
	F.phantom_left = 9;
	struct sv_ctx *ctx;
	assert_int_equal(sv_ctx_new(&ctx, "https://vault.test:8443/"), 0);
	assert_int_equal(sv_ctx_set_ksf(ctx, 1, 8), 0); /* cheap Argon2id for tests */
	*state = ctx;
	return 0;
}

static int teardown(void **state)
{
	sv_ctx_free(*state);
	return 0;
}

static void reg(struct sv_ctx *ctx, const char *user, const char *pw, unsigned limit)
{
	assert_int_equal(sv_register(ctx, user, PW(pw), SECRET, sizeof(SECRET), limit),
	                 SV_RESULT_OK);
}

static enum sv_result rec(struct sv_ctx *ctx, const char *user, const char *pw, int *left)
{
	uint8_t *out = NULL;
	size_t n = 0;
	enum sv_result r = sv_recover(ctx, user, PW(pw), &out, &n, left);
	if (r == SV_RESULT_OK) {
		assert_int_equal(n, sizeof(SECRET));
		assert_memory_equal(out, SECRET, n);
	} else {
		assert_null(out);
		assert_int_equal(n, 0);
		assert_true(sv_ctx_error(ctx)[0] != '\0');
	}
	sv_secret_free(out, n);
	return r;
}

/* ---- tests ---- */

/* The *_token calls send the token on every vault request and nothing after; a 401 or a 403 with a
 * reason is SV_RESULT_TOKEN_REFUSED with the server's reason; a token that is no JWT never leaves.
 */
static void test_token_calls(void **state)
{
	struct sv_ctx *ctx = *state;
	uint8_t *out = NULL;
	size_t n = 0;
	int left = 0;
	assert_int_equal(sv_register_token(ctx, "hdr.claims.sig", "tina", PW("pw"), SECRET, 8, 0),
	                 SV_RESULT_OK);
	assert_int_equal(F.posts_without, 0);
	assert_int_equal(F.posts_with_bearer, 2);
	assert_null(F.bearer);
	assert_int_equal(sv_recover_token(ctx, "hdr.claims.sig", "tina", PW("pw"), &out, &n, &left),
	                 SV_RESULT_OK);
	assert_int_equal(F.posts_with_bearer, 4);
	sv_secret_free(out, n);
	/* the calls without a token send none */
	assert_int_equal(sv_recover(ctx, "tina", PW("pw"), &out, &n, &left), SV_RESULT_OK);
	sv_secret_free(out, n);
	assert_int_equal(F.posts_without, 2);
	F.force_status = 401;
	F.force_text = "the token has expired";
	assert_int_equal(sv_recover_token(ctx, "hdr.claims.sig", "tina", PW("pw"), &out, &n, &left),
	                 SV_RESULT_TOKEN_REFUSED);
	assert_string_equal(sv_ctx_error(ctx),
	                    "the vault refused the access token: the token has expired");
	assert_null(out);
	assert_int_equal(left, -1);
	F.force_status = 403;
	F.force_text = "the token's scope does not cover this operation";
	assert_int_equal(sv_delete_token(ctx, "hdr.claims.sig", "tina", PW("pw"), &left),
	                 SV_RESULT_TOKEN_REFUSED);
	assert_non_null(strstr(sv_ctx_error(ctx), "scope does not cover"));
	/* without the token API the same answer is an error, as 0.2 callers expect */
	assert_int_equal(sv_delete(ctx, "tina", PW("pw"), &left), SV_RESULT_ERROR);
	F.force_status = 0;
	F.force_text = NULL;
	int before = F.requests;
	assert_int_equal(sv_recover_token(ctx, "a b", "tina", PW("pw"), &out, &n, &left),
	                 SV_RESULT_ERROR);
	assert_int_equal(sv_recover_token(ctx, "", "tina", PW("pw"), &out, &n, &left),
	                 SV_RESULT_ERROR);
	assert_int_equal(F.requests, before);
	/* NULL: no token sent, a refusal still reported as one */
	F.force_status = 401;
	F.force_text = "no access token";
	assert_int_equal(sv_recover_token(ctx, NULL, "tina", PW("pw"), &out, &n, &left),
	                 SV_RESULT_TOKEN_REFUSED);
	assert_int_equal(F.posts_without, 4);
	F.force_status = 0;
	F.force_text = NULL;
}

static void test_register_recover(void **state)
{
	struct sv_ctx *ctx = *state;
	int left = -5;
	reg(ctx, "alice", "correct horse", 3);
	assert_int_equal(rec(ctx, "alice", "correct horse", &left), SV_RESULT_OK);
	assert_int_equal(left, 2); /* this login's own guess, given back by the valid KE3 */
	assert_int_equal(F.users[0].used, 0);
	assert_int_equal(F.last_op, 1);
	/* the server stored ciphertext only */
	assert_null(memmem(F.users[0].blob, F.users[0].blob_len, SECRET, 16));
	assert_int_equal(F.users[0].blob_len, sizeof(SECRET) + 10 + 24 + 16);
}

static void test_wrong_then_lockout(void **state)
{
	struct sv_ctx *ctx = *state;
	int left = -5;
	reg(ctx, "bob", "right", 3);
	assert_int_equal(rec(ctx, "bob", "wrong1", &left), SV_RESULT_WRONG_PASSWORD);
	assert_int_equal(left, 2);
	assert_non_null(strstr(sv_ctx_error(ctx), "wrong password"));
	assert_int_equal(rec(ctx, "bob", "wrong2", &left), SV_RESULT_WRONG_PASSWORD);
	assert_int_equal(left, 1);
	assert_int_equal(rec(ctx, "bob", "wrong3", &left), SV_RESULT_WRONG_PASSWORD);
	assert_int_equal(left, 0);
	assert_true(F.users[0].destroyed);
	assert_int_equal(rec(ctx, "bob", "right", &left), SV_RESULT_LOCKED);
	assert_int_equal(left, -1);
	assert_non_null(strstr(sv_ctx_error(ctx), "destroyed"));
}

static void test_two_wrong_then_right(void **state)
{
	struct sv_ctx *ctx = *state;
	int left;
	reg(ctx, "carol", "right", 3);
	assert_int_equal(rec(ctx, "carol", "x", &left), SV_RESULT_WRONG_PASSWORD);
	assert_int_equal(rec(ctx, "carol", "y", &left), SV_RESULT_WRONG_PASSWORD);
	assert_int_equal(left, 1);
	assert_int_equal(rec(ctx, "carol", "right", &left), SV_RESULT_OK);
	assert_int_equal(F.users[0].used, 0);
	assert_int_equal(rec(ctx, "carol", "x", &left), SV_RESULT_WRONG_PASSWORD);
	assert_int_equal(left, 2);
}

static void test_unknown_user(void **state)
{
	struct sv_ctx *ctx = *state;
	int left = -5;
	assert_int_equal(rec(ctx, "nobody", "pw", &left), SV_RESULT_WRONG_PASSWORD);
	assert_int_equal(left, 9);
	assert_int_equal(F.requests, 2); /* KE1 and a (failing) KE3, like a wrong password */
	assert_int_equal(sv_delete(ctx, "nobody", PW("pw"), &left), SV_RESULT_WRONG_PASSWORD);
}

static void test_register_twice(void **state)
{
	struct sv_ctx *ctx = *state;
	reg(ctx, "dave", "pw", 0);
	assert_int_equal(F.users[0].limit, 10);
	assert_int_equal(sv_register(ctx, "dave", PW("other"), SECRET, 4, 0), SV_RESULT_EXISTS);
	assert_non_null(strstr(sv_ctx_error(ctx), "already registered"));
	int left;
	assert_int_equal(rec(ctx, "dave", "pw", &left), SV_RESULT_OK);
}

static void test_delete(void **state)
{
	struct sv_ctx *ctx = *state;
	int left;
	reg(ctx, "erin", "pw", 5);
	assert_int_equal(sv_delete(ctx, "erin", PW("nope"), &left), SV_RESULT_WRONG_PASSWORD);
	assert_int_equal(left, 4);
	assert_true(F.users[0].live);
	assert_int_equal(sv_delete(ctx, "erin", PW("pw"), &left), SV_RESULT_OK);
	assert_int_equal(F.last_op, 2);
	assert_false(F.users[0].live);
	assert_int_equal(rec(ctx, "erin", "pw", &left), SV_RESULT_WRONG_PASSWORD);
	reg(ctx, "erin", "again", 5); /* the id is free again */
}

static void test_change_password(void **state)
{
	struct sv_ctx *ctx = *state;
	int left;
	reg(ctx, "frank", "old", 3);
	assert_int_equal(sv_change_password(ctx, "frank", PW("bad"), PW("new"), 4, &left),
	                 SV_RESULT_WRONG_PASSWORD);
	assert_int_equal(left, 2);
	assert_int_equal(sv_change_password(ctx, "frank", PW("old"), PW("new"), 4, &left),
	                 SV_RESULT_OK);
	assert_int_equal(F.last_op, 3);
	assert_int_equal(F.users[0].limit, 4);
	assert_int_equal(rec(ctx, "frank", "old", &left), SV_RESULT_WRONG_PASSWORD);
	assert_int_equal(left, 3);
	assert_int_equal(rec(ctx, "frank", "new", &left), SV_RESULT_OK);
	/* a new KSF profile is recorded in the re-sealed blob (raising it = changing password) */
	assert_int_equal(sv_ctx_set_ksf(ctx, 2, 16), 0);
	assert_int_equal(rec(ctx, "frank", "new", &left), SV_RESULT_WRONG_PASSWORD);
	assert_int_equal(sv_ctx_set_ksf(ctx, 1, 8), 0);
	assert_int_equal(sv_change_password(ctx, "frank", PW("new"), PW("newer"), 0, &left),
	                 SV_RESULT_OK);
	assert_int_equal(F.users[0].limit, 10); /* 0: the server's default */
	assert_int_equal(rec(ctx, "frank", "newer", &left), SV_RESULT_OK);
}

/* A context other than the vault's (GET /v1/info) stops every operation before its first
 * request to the vault: no guess is charged, nothing registered. */
static void test_context_mismatch(void **state)
{
	struct sv_ctx *ctx = *state;
	uint8_t *out = NULL;
	size_t n = 0;
	int left = 5;
	reg(ctx, "gina", "pw", 3);
	assert_int_equal(F.info_requests, 1);
	assert_int_equal(sv_ctx_set_context(ctx, (const uint8_t *)"other", 5), 0);
	F.requests = 0;
	assert_int_equal(sv_recover(ctx, "gina", PW("pw"), &out, &n, &left), SV_RESULT_ERROR);
	assert_null(out);
	assert_int_equal(left, -1);
	assert_string_equal(sv_ctx_error(ctx),
	                    "the server's OPAQUE context is 'sealvault-v1', this client uses "
	                    "'other' (set --context to the server's); no guess was spent");
	assert_int_equal(sv_delete(ctx, "gina", PW("pw"), &left), SV_RESULT_ERROR);
	assert_int_equal(sv_change_password(ctx, "gina", PW("pw"), PW("new"), 3, &left),
	                 SV_RESULT_ERROR);
	assert_int_equal(sv_register(ctx, "hugo", PW("pw"), SECRET, sizeof(SECRET), 3),
	                 SV_RESULT_ERROR);
	assert_int_equal(F.requests, 0);
	assert_int_equal(F.users[0].used, 0);
	/* a suite the client does not speak: the same */
	assert_int_equal(sv_ctx_set_context(ctx, (const uint8_t *)CONTEXT, strlen(CONTEXT)), 0);
	F.info_suite = "OPAQUE-3DH-P256-SHA256";
	assert_int_equal(rec(ctx, "gina", "pw", &left), SV_RESULT_ERROR);
	assert_non_null(strstr(sv_ctx_error(ctx), "OPAQUE suite is 'OPAQUE-3DH-P256-SHA256'"));
	assert_int_equal(F.requests, 0);
	/* the right context: one /v1/info for the context, then the guesses */
	F.info_suite = NULL;
	int before = F.info_requests;
	assert_int_equal(rec(ctx, "gina", "pw", &left), SV_RESULT_OK);
	assert_int_equal(left, 2);
	assert_int_equal(rec(ctx, "gina", "pw", &left), SV_RESULT_OK);
	assert_int_equal(F.info_requests, before + 1);
}

/* A vault without /v1/info (404: older than this client) is used as before: a wrong context is
 * then only seen as a failed login, which costs the guess. */
static void test_info_absent(void **state)
{
	struct sv_ctx *ctx = *state;
	int left;
	F.info_status = 404;
	reg(ctx, "gina", "pw", 3);
	assert_int_equal(sv_ctx_set_context(ctx, (const uint8_t *)"other", 5), 0);
	assert_int_equal(rec(ctx, "gina", "pw", &left), SV_RESULT_WRONG_PASSWORD);
	assert_non_null(strstr(sv_ctx_error(ctx), "context"));
	assert_int_equal(F.users[0].used, 1);
	/* other answers to GET /v1/info stop the operation */
	assert_int_equal(sv_ctx_set_context(ctx, (const uint8_t *)CONTEXT, strlen(CONTEXT)), 0);
	F.requests = 0;
	F.info_status = 503;
	assert_int_equal(rec(ctx, "gina", "pw", &left), SV_RESULT_BUSY);
	F.info_status = 500;
	assert_int_equal(rec(ctx, "gina", "pw", &left), SV_RESULT_ERROR);
	assert_non_null(strstr(sv_ctx_error(ctx), "/v1/info: HTTP 500"));
	F.info_status = 0;
	F.info_context = "x\"";
	assert_int_equal(rec(ctx, "gina", "pw", &left), SV_RESULT_ERROR);
	assert_int_equal(F.requests, 0);
	F.info_context = NULL;
	assert_int_equal(rec(ctx, "gina", "pw", &left), SV_RESULT_OK);
}

static void test_hostile_server(void **state)
{
	struct sv_ctx *ctx = *state;
	int left;
	reg(ctx, "hal", "pw", 3);
	F.accept_any_ke3 = 1;
	assert_int_equal(rec(ctx, "hal", "wrong", &left), SV_RESULT_ERROR);
	assert_non_null(strstr(sv_ctx_error(ctx), "accepted a proof"));
	F.accept_any_ke3 = 0;
	F.tamper_release = 1;
	assert_int_equal(rec(ctx, "hal", "pw", &left), SV_RESULT_ERROR);
	assert_non_null(strstr(sv_ctx_error(ctx), "malformed"));
	F.tamper_release = 0;
	F.extra_byte = 1;
	assert_int_equal(rec(ctx, "hal", "pw", &left), SV_RESULT_ERROR);
	F.extra_byte = 0;
	assert_int_equal(rec(ctx, "hal", "pw", &left), SV_RESULT_OK);
}

static void test_statuses(void **state)
{
	struct sv_ctx *ctx = *state;
	int left;
	static const struct {
		long status;
		enum sv_result res;
		const char *says;
	} cases[] = {
	    {503, SV_RESULT_BUSY, "busy"},      {429, SV_RESULT_BUSY, "limits the rate"},
	    {500, SV_RESULT_ERROR, "log"},      {404, SV_RESULT_ERROR, "base URL"},
	    {400, SV_RESULT_ERROR, "versions"}, {410, SV_RESULT_LOCKED, "destroyed"},
	    {302, SV_RESULT_ERROR, "302"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		F.force_status = cases[i].status;
		assert_int_equal(rec(ctx, "ivan", "pw", &left), cases[i].res);
		assert_non_null(strstr(sv_ctx_error(ctx), cases[i].says));
		assert_int_equal(sv_register(ctx, "ivan", PW("pw"), SECRET, 4, 0), cases[i].res);
	}
	F.force_status = 409;
	assert_int_equal(sv_register(ctx, "ivan", PW("pw"), SECRET, 4, 0), SV_RESULT_EXISTS);
	assert_int_equal(rec(ctx, "ivan", "pw", &left), SV_RESULT_ERROR);
	F.force_status = 200; /* an empty 200 where a message is due */
	assert_int_equal(rec(ctx, "ivan", "pw", &left), SV_RESULT_ERROR);
	assert_int_equal(sv_register(ctx, "ivan", PW("pw"), SECRET, 4, 0), SV_RESULT_ERROR);
	F.force_status = 0;
	F.transport_fail = 1;
	assert_int_equal(rec(ctx, "ivan", "pw", &left), SV_RESULT_ERROR);
	assert_non_null(strstr(sv_ctx_error(ctx), "--server"));
}

static void test_input_bounds(void **state)
{
	struct sv_ctx *ctx = *state;
	char longid[SV_USER_MAX_LEN + 2];
	uint8_t big[SV_SECRET_MAX_LEN + 1] = {1};
	int left;
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_int_equal(sv_register(ctx, "", PW("pw"), SECRET, 4, 0), SV_RESULT_ERROR);
	assert_int_equal(sv_register(ctx, longid, PW("pw"), SECRET, 4, 0), SV_RESULT_ERROR);
	longid[SV_USER_MAX_LEN] = '\0';
	assert_int_equal(sv_register(ctx, longid, PW("pw"), big, SV_SECRET_MAX_LEN, 0),
	                 SV_RESULT_OK);
	assert_int_equal(sv_register(ctx, "u", PW("pw"), big, SV_SECRET_MAX_LEN + 1, 0),
	                 SV_RESULT_ERROR);
	assert_int_equal(sv_register(ctx, "u", PW("pw"), big, 0, 0), SV_RESULT_ERROR);
	assert_int_equal(sv_register(ctx, "u", (const uint8_t *)"", 0, big, 1, 0), SV_RESULT_ERROR);
	assert_int_equal(sv_register(ctx, "u", PW("pw"), big, 1, 256), SV_RESULT_ERROR);
	assert_int_equal(F.requests, 2); /* only the valid registration reached the server */
	uint8_t *out = NULL;
	size_t n;
	assert_int_equal(sv_recover(ctx, longid, PW("pw"), &out, &n, &left), SV_RESULT_OK);
	assert_int_equal(n, SV_SECRET_MAX_LEN);
	sv_secret_free(out, n);

	struct sv_ctx *c2;
	assert_int_equal(sv_ctx_new(&c2, "http://vault.test"), -1);
	assert_null(c2);
	assert_int_equal(sv_ctx_new(&c2, "https://"), -1);
	assert_int_equal(sv_ctx_new(&c2, "https:///x"), -1);
	assert_int_equal(sv_ctx_new(&c2, "HTTPS://vault.test"), -1);
	assert_int_equal(sv_ctx_set_ksf(ctx, 0, 1024), -1);
	assert_int_equal(sv_ctx_set_ksf(ctx, 1, 7), -1);
	assert_int_equal(sv_ctx_set_ksf(ctx, 1, SV_KSF_MAX_M_KIB + 1), -1);
	uint8_t huge[1025] = {0};
	assert_int_equal(sv_ctx_set_context(ctx, huge, sizeof(huge)), -1);
	assert_int_equal(sv_ctx_set_context(ctx, NULL, 0), 0);
}

/* With an expect file every operation verifies first; a server whose evidence does not verify
 * gets nothing but the attestation request. */
static void test_expect_refuses_first(void **state)
{
	struct sv_ctx *ctx = *state;
	char path[] = "/tmp/test_client_expect_XXXXXX";
	const char *z = "0000000000000000000000000000000000000000000000000000000000000000";
	char text[1024];
	uint8_t *out = NULL;
	size_t n = 0;
	int left, fd = mkstemp(path);
	assert_true(fd >= 0);
	/* build_hash must be the hash of the three binary hashes: all-zero digests */
	uint8_t d[ATTEST_NBINARIES][ATTEST_HASH_LEN] = {{0}}, bh[32];
	char bhx[65];
	attest_build_hash_digests((const uint8_t(*)[ATTEST_HASH_LEN])d, bh);
	sodium_bin2hex(bhx, sizeof(bhx), bh, 32);
	int len =
	    snprintf(text, sizeof(text),
	             "{\"version\":1,\"build_hash\":\"%s\",\"binaries\":{\"sealvaultd\":\"%s\","
	             "\"sealvault-enclave\":\"%s\",\"sealvault-broker\":\"%s\"},"
	             "\"policy_hash\":\"%s\",\"boot_pcrs\":[0,1,2,3,4,5,6,7]}",
	             bhx, z, z, z, z);
	assert_int_equal(write(fd, text, (size_t)len), len);
	close(fd);
	assert_int_equal(sv_verify(ctx, NULL, 0, NULL, 0, NULL, 0), SV_RESULT_ERROR);
	assert_non_null(strstr(sv_ctx_error(ctx), "no expected values"));
	assert_int_equal(sv_ctx_set_expect(ctx, "/nonexistent/expect.json"), -1);
	assert_non_null(strstr(sv_ctx_error(ctx), "cannot open"));
	assert_int_equal(sv_ctx_set_expect(ctx, path), 0);
	unlink(path);
	get_requests = 0;
	F.requests = 0;
	assert_int_equal(sv_register(ctx, "carol", PW("pw"), SECRET, sizeof(SECRET), 3),
	                 SV_RESULT_ERROR);
	assert_non_null(strstr(sv_ctx_error(ctx), "evidence is malformed"));
	assert_int_equal(sv_recover(ctx, "carol", PW("pw"), &out, &n, &left), SV_RESULT_ERROR);
	assert_int_equal(sv_delete(ctx, "carol", PW("pw"), &left), SV_RESULT_ERROR);
	assert_int_equal(sv_change_password(ctx, "carol", PW("pw"), PW("new"), 3, &left),
	                 SV_RESULT_ERROR);
	assert_int_equal(get_requests, 4);
	assert_int_equal(F.requests, 0); /* nothing reached the vault */
	assert_null(out);
	/* turning verification off restores the plain protocol */
	assert_int_equal(sv_ctx_set_expect(ctx, NULL), 0);
	reg(ctx, "carol", "pw", 3);
	assert_int_equal(get_requests, 4);
}

static void test_generate_code(void **state)
{
	char a[SV_CODE_LEN + 1], b[SV_CODE_LEN + 1];
	assert_int_equal(sv_generate_code(a), 0);
	assert_int_equal(sv_generate_code(b), 0);
	assert_int_equal(strlen(a), SV_CODE_LEN);
	assert_string_not_equal(a, b);
	for (int i = 0; i < SV_CODE_LEN; i++) {
		if (i % 6 == 5)
			assert_int_equal(a[i], '-');
		else
			assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", a[i]));
	}
	assert_string_equal(sv_result_str(SV_RESULT_LOCKED),
	                    "locked out: the record was destroyed");
}

/* ---- the I/O-free core (client/vaultcore.h) driven directly, without a context ---- */

/* Runs core c against the fake vault (its transport function, called by hand) and records the
 * message types it sent into types[] (at most max). Returns how many requests it sent. */
static int drive(struct vaultcore *c, uint16_t *types, int max)
{
	struct vaultcore_request rq;
	struct sv_buf rep;
	int n = 0;
	assert_int_equal(sv_buf_init(&rep, 2048), 0);
	while (vaultcore_next(c, &rq)) {
		long status = 0;
		assert_true(n < max);
		types[n++] = rq.type;
		assert_string_equal(rq.path, msg_path(rq.type));
		assert_int_equal(
		    client_http_post(NULL, rq.path, rq.body, rq.len, &status, &rep, NULL, 0), 0);
		vaultcore_reply(c, status, sv_buf_ptr(&rep), sv_buf_remaining(&rep));
	}
	sv_buf_free(&rep);
	return n;
}

static const struct vaultcore_params CORE_PARAMS = {
    .context = (const uint8_t *)CONTEXT,
    .context_len = sizeof(CONTEXT) - 1,
    .ksf = {.type = KSF_ARGON2ID, .t = 1, .m_kib = 8},
};

static struct vaultcore *core(enum vaultcore_op op, const struct vaultcore_params *p,
                              const char *user, const char *pw, const char *new_pw)
{
	struct vaultcore *c = NULL;
	struct vaultcore_input in = {.user = (const uint8_t *)user,
	                             .user_len = strlen(user),
	                             .password = (const uint8_t *)pw,
	                             .password_len = strlen(pw),
	                             .new_password = (const uint8_t *)new_pw,
	                             .new_password_len = new_pw ? strlen(new_pw) : 0,
	                             .secret = SECRET,
	                             .secret_len = sizeof(SECRET),
	                             .max_attempts = 3};
	assert_int_equal(vaultcore_new(&c, op, p, &in), SV_OK);
	return c;
}

/* Every operation's steps, in order, and what the core reports at the end; the inputs were
 * copied (the caller's buffers are wiped at once). */
static void test_core_steps(void **state)
{
	uint16_t t[8] = {0};
	const uint8_t *secret;
	size_t len;
	char pw[] = "correct horse";

	struct vaultcore *c = core(VAULTCORE_REGISTER, &CORE_PARAMS, "dave", pw, NULL);
	sodium_memzero(pw, sizeof(pw) - 1);
	assert_false(vaultcore_done(c));
	assert_int_equal(drive(c, t, 8), 2);
	assert_int_equal(t[0], SV_MSG_REGISTER_START);
	assert_int_equal(t[1], SV_MSG_REGISTER_FINISH);
	assert_int_equal(vaultcore_result(c), SV_RESULT_OK);
	assert_string_equal(vaultcore_error(c), "");
	assert_int_equal(vaultcore_secret(c, &secret, &len), SV_ERR_PROTOCOL);
	vaultcore_free(c);
	assert_int_equal(F.users[0].limit, 3);

	c = core(VAULTCORE_RECOVER, &CORE_PARAMS, "dave", "correct horse", NULL);
	assert_int_equal(drive(c, t, 8), 2);
	assert_int_equal(t[0], SV_MSG_LOGIN_START);
	assert_int_equal(t[1], SV_MSG_LOGIN_FINISH);
	assert_int_equal(vaultcore_result(c), SV_RESULT_OK);
	assert_int_equal(vaultcore_attempts_left(c), 2);
	assert_int_equal(vaultcore_secret(c, &secret, &len), SV_OK);
	assert_int_equal(len, sizeof(SECRET));
	assert_memory_equal(secret, SECRET, len);
	/* a stray answer after the end changes nothing */
	vaultcore_reply(c, 500, NULL, 0);
	assert_int_equal(vaultcore_result(c), SV_RESULT_OK);
	vaultcore_free(c);

	/* change-password: recover, then the change login, then the new record */
	c = core(VAULTCORE_CHANGE, &CORE_PARAMS, "dave", "correct horse", "battery staple");
	assert_int_equal(drive(c, t, 8), 5);
	assert_int_equal(t[0], SV_MSG_LOGIN_START);
	assert_int_equal(t[1], SV_MSG_LOGIN_FINISH);
	assert_int_equal(t[2], SV_MSG_LOGIN_START);
	assert_int_equal(t[3], SV_MSG_LOGIN_FINISH);
	assert_int_equal(t[4], SV_MSG_CHANGE_FINISH);
	assert_int_equal(vaultcore_result(c), SV_RESULT_OK);
	vaultcore_free(c);
	c = core(VAULTCORE_RECOVER, &CORE_PARAMS, "dave", "correct horse", NULL);
	assert_int_equal(drive(c, t, 8), 2);
	assert_int_equal(vaultcore_result(c), SV_RESULT_WRONG_PASSWORD);
	assert_int_equal(vaultcore_attempts_left(c), 2);
	assert_non_null(strstr(vaultcore_error(c), "recover: wrong password"));
	vaultcore_free(c);
	c = core(VAULTCORE_RECOVER, &CORE_PARAMS, "dave", "battery staple", NULL);
	assert_int_equal(drive(c, t, 8), 2);
	assert_int_equal(vaultcore_result(c), SV_RESULT_OK);
	assert_int_equal(vaultcore_secret(c, &secret, &len), SV_OK);
	assert_memory_equal(secret, SECRET, len);
	vaultcore_free(c);

	c = core(VAULTCORE_DELETE, &CORE_PARAMS, "dave", "battery staple", NULL);
	assert_int_equal(drive(c, t, 8), 2);
	assert_int_equal(t[1], SV_MSG_LOGIN_FINISH);
	assert_int_equal(vaultcore_result(c), SV_RESULT_OK);
	vaultcore_free(c);
	assert_false(F.users[0].live);
}

/* Bad input ends the core before any request; a transport failure ends it with the caller's
 * message; a pinned server key that the vault does not use stops after the first answer. */
static void test_core_refusals(void **state)
{
	uint16_t t[8] = {0};
	struct vaultcore *c = NULL;
	struct vaultcore_request rq;
	struct vaultcore_input in = {.user = (const uint8_t *)"x", .user_len = 1};
	assert_int_equal(vaultcore_new(&c, VAULTCORE_RECOVER, &CORE_PARAMS, &in), SV_OK);
	assert_true(vaultcore_done(c));
	assert_int_equal(vaultcore_next(c, &rq), 0);
	assert_int_equal(vaultcore_result(c), SV_RESULT_ERROR);
	assert_non_null(strstr(vaultcore_error(c), "password must be"));
	vaultcore_free(c);
	assert_int_equal(vaultcore_new(&c, 9, &CORE_PARAMS, &in), SV_ERR_INVALID);
	assert_null(c);
	assert_int_equal(F.requests, 0);

	c = core(VAULTCORE_REGISTER, &CORE_PARAMS, "erin", "pw", NULL);
	assert_int_equal(vaultcore_next(c, &rq), 1);
	vaultcore_abort(c, SV_RESULT_ERROR, "https://test: Connection refused");
	assert_int_equal(vaultcore_next(c, &rq), 0);
	assert_string_equal(vaultcore_error(c), "https://test: Connection refused");
	vaultcore_free(c);

	uint8_t other[OPAQUE_PK_LEN];
	memcpy(other, F.key.pk, sizeof(other));
	other[0] ^= 1;
	struct vaultcore_params pinned = CORE_PARAMS;
	pinned.pin_server_key = 1;
	pinned.server_key = other;
	c = core(VAULTCORE_REGISTER, &pinned, "erin", "pw", NULL);
	assert_int_equal(drive(c, t, 8), 1); /* register/start, and no record sent */
	assert_int_equal(vaultcore_result(c), SV_RESULT_UNVERIFIED);
	assert_string_equal(vaultcore_failed_check(c), "server-key");
	vaultcore_free(c);
	assert_false(F.users[0].live);
	pinned.server_key = F.key.pk;
	c = core(VAULTCORE_REGISTER, &pinned, "erin", "pw", NULL);
	assert_int_equal(drive(c, t, 8), 2);
	assert_int_equal(vaultcore_result(c), SV_RESULT_OK);
	vaultcore_free(c);

	/* a token refusal is its own result only when asked for */
	F.force_status = 401;
	F.force_text = "the token expired";
	c = core(VAULTCORE_RECOVER, &CORE_PARAMS, "erin", "pw", NULL);
	assert_int_equal(drive(c, t, 8), 1);
	assert_int_equal(vaultcore_result(c), SV_RESULT_ERROR);
	assert_string_equal(vaultcore_error(c),
	                    "the vault refused the access token: the token expired");
	vaultcore_free(c);
	struct vaultcore_params tok = CORE_PARAMS;
	tok.token_results = 1;
	c = core(VAULTCORE_RECOVER, &tok, "erin", "pw", NULL);
	assert_int_equal(drive(c, t, 8), 1);
	assert_int_equal(vaultcore_result(c), SV_RESULT_TOKEN_REFUSED);
	vaultcore_free(c);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_token_calls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_register_recover, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_then_lockout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_wrong_then_right, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_register_twice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_change_password, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_context_mismatch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_info_absent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_server, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_statuses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_input_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expect_refuses_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_core_steps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_core_refusals, setup, teardown),
	    cmocka_unit_test(test_generate_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
