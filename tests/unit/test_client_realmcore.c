/*
 * The I/O-free realm client (client/realmcore.c) against realms in memory: each fake realm keeps
 * what a register body gave it and answers recover1/2/3, delete and GET /v1/info with the realm
 * side of crypto/realm.c and crypto/realm_wire.c, so that every reply the core checks is one a
 * real realm would send. Faults (a wrong evaluation, a wrong share, a realm down, a stale
 * registration, a refused token) are injected per realm.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "client/realmcore.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/info.h"
#include "crypto/realm.h"
#include "crypto/realm_wire.h"

#define E 32

struct fake {
	int down;           /* transport error for every request */
	int bad_eval;       /* recover2: a wrong evaluation (proof fails) */
	int bad_share;      /* recover3: a share that fails its MAC */
	int refuse_tag;     /* recover3: 403 to the right proof */
	int token;          /* 401 to every POST */
	int wrong_id;       /* GET /v1/info names another vault */
	int r2_gone;        /* recover2: 410, as if destroyed since recover1 */
	int registered;     /* 0 none, 1 registered, 2 destroyed */
	unsigned recover2s; /* recover2 requests seen */
	uint8_t id[REALM_ID_LEN];
	uint8_t version[REALM_VERSION_LEN];
	struct ksf_params ksf;
	uint8_t t, n, index, limit, used;
	uint8_t k[32], K[REALM_MAX * E], check[32], tag[32], s[32], smac[32];
	uint8_t ct[REALM_CT_MAX];
	size_t ct_len;
	uint8_t session[REALM_SESSION_LEN];
	int session_open;
};

static struct fake realms[REALM_MAX];
static struct realmcore_realm list[REALM_MAX];
static char names[REALM_MAX][16];
static char warnings[4096];
static const uint8_t uid[] = "alice";
static const uint8_t secret[] = "the backup key, 32 bytes long!!";
static const struct ksf_params ksf_id = {KSF_IDENTITY, 0, 0};

static void on_warn(void *arg, size_t realm, const char *msg)
{
	(void)arg;
	(void)realm;
	size_t n = strlen(warnings);
	snprintf(warnings + n, sizeof(warnings) - n, "%s\n", msg);
}

static void setup_realms(size_t n)
{
	memset(realms, 0, sizeof(realms));
	warnings[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		randombytes_buf(realms[i].id, REALM_ID_LEN);
		snprintf(names[i], sizeof(names[i]), "r%zu", i + 1);
		list[i].name = names[i];
		memcpy(list[i].id, realms[i].id, REALM_ID_LEN);
	}
}

/* ---- the fake realm ---- */

static long realm_answer(struct fake *f, const struct realmcore_request *q, struct sv_buf *out)
{
	const char *why = NULL;
	if (!q->post) { /* GET /v1/info */
		struct sv_info info;
		memset(&info, 0, sizeof(info));
		snprintf(info.suite, sizeof(info.suite), "%s", INFO_SUITE);
		info.guess_default = 10;
		info.guess_max = 255;
		randombytes_buf(info.server_pk, sizeof(info.server_pk));
		memcpy(info.vault_id, f->id, REALM_ID_LEN);
		if (f->wrong_id)
			info.vault_id[0] ^= 1;
		info.versions[0] = 1;
		info.versions[1] = 2;
		info.n_versions = 2;
		info.ksf_t = 3;
		info.ksf_m_kib = 65536;
		assert_int_equal(info_encode(&info, out), 0);
		return 200;
	}
	if (f->token)
		return sv_buf_put(out, "token expired", 13) == 0 ? 401 : 500;
	if (strcmp(q->path, REALMCORE_PATH_REGISTER) == 0) {
		struct realm_register_req r;
		assert_int_equal(realm_wire_register_decode(&r, q->body, q->len, &why), 0);
		assert_memory_equal(r.realm_id, f->id, REALM_ID_LEN);
		memcpy(f->version, r.version, REALM_VERSION_LEN);
		f->ksf = r.ksf;
		f->t = r.t;
		f->n = r.n;
		f->index = r.index;
		f->limit = r.guess_limit;
		f->used = 0;
		memcpy(f->k, r.oprf_share, 32);
		memcpy(f->K, r.commitments, (size_t)r.n * E);
		memcpy(f->check, r.unlock_check, 32);
		memcpy(f->tag, r.unlock_tag, 32);
		memcpy(f->s, r.enc_share, 32);
		memcpy(f->smac, r.share_mac, 32);
		memcpy(f->ct, r.ct, r.ct_len);
		f->ct_len = r.ct_len;
		f->registered = 1;
		return 200;
	}
	if (strcmp(q->path, REALMCORE_PATH_DELETE) == 0) {
		struct realm_uid_req r;
		assert_int_equal(realm_wire_uid_decode(&r, q->body, q->len, &why), 0);
		f->registered = 0;
		return 200;
	}
	if (strcmp(q->path, REALMCORE_PATH_RECOVER1) == 0) {
		struct realm_uid_req r;
		assert_int_equal(realm_wire_uid_decode(&r, q->body, q->len, &why), 0);
		if (f->registered != 1)
			return f->registered == 2 ? 410 : 404;
		struct realm_recover1_reply rep = {.version = f->version,
		                                   .ksf = f->ksf,
		                                   .t = f->t,
		                                   .n = f->n,
		                                   .index = f->index,
		                                   .attempts_left = (uint8_t)(f->limit - f->used),
		                                   .unlock_check = f->check,
		                                   .commitments = f->K};
		assert_int_equal(realm_wire_recover1_reply_encode(out, &rep), 0);
		return 200;
	}
	if (strcmp(q->path, REALMCORE_PATH_RECOVER2) == 0) {
		struct realm_recover2_req r;
		uint8_t ev[E], proof[64];
		assert_int_equal(realm_wire_recover2_decode(&r, q->body, q->len, &why), 0);
		f->recover2s++;
		if (f->r2_gone)
			return 410;
		if (f->registered != 1)
			return f->registered == 2 ? 410 : 404;
		if (memcmp(r.version, f->version, REALM_VERSION_LEN) != 0)
			return sv_buf_put(out, "another version", 15) == 0 ? 409 : 500;
		f->used++;
		if (f->used >= f->limit)
			f->registered =
			    2; /* kept in memory for this session only, as the realm does */
		assert_int_equal(
		    realm_evaluate(ev, proof, f->k, f->K + (f->index - 1) * E, r.blinded), 0);
		if (f->bad_eval) /* another element: the proof no longer holds */
			assert_int_equal(realm_commitment(ev, f->k), 0);
		randombytes_buf(f->session, sizeof(f->session));
		f->session_open = 1;
		struct realm_recover2_reply rep = {.session_id = f->session,
		                                   .evaluated = ev,
		                                   .proof = proof,
		                                   .attempts_left = (uint8_t)(f->limit - f->used)};
		assert_int_equal(realm_wire_recover2_reply_encode(out, &rep), 0);
		return 200;
	}
	if (strcmp(q->path, REALMCORE_PATH_RECOVER3) == 0) {
		struct realm_recover3_req r;
		uint8_t rel[REALM_RELEASE_LEN], s[32];
		assert_int_equal(realm_wire_recover3_decode(&r, q->body, q->len, &why), 0);
		if (!f->session_open || memcmp(r.session_id, f->session, REALM_SESSION_LEN) != 0)
			return sv_buf_put(out, "no such session", 15) == 0 ? 409 : 500;
		f->session_open = 0;
		if (realm_tag_check(f->tag, r.session_id, r.tag_proof) != 0 || f->refuse_tag) {
			uint8_t left = (uint8_t)(f->limit - f->used);
			assert_int_equal(sv_buf_put_u8(out, left), 0);
			return 403;
		}
		f->used = 0;
		f->registered = 1;
		memcpy(s, f->s, 32);
		if (f->bad_share) {
			s[0] ^= 1;
			s[31] = 0;
		}
		assert_int_equal(realm_release_seal(rel, f->tag, r.session_id, s, f->smac), 0);
		struct realm_recover3_reply rep = {
		    .release = rel, .ct = f->ct, .ct_len = f->ct_len};
		assert_int_equal(realm_wire_recover3_reply_encode(out, &rep), 0);
		return 200;
	}
	fail_msg("unexpected path %s", q->path);
	return 500;
}

/* Runs the core to its end against realms[]; replies are handed back in reverse order of the
 * requests of each round when reverse is set. */
static enum realmcore_result run(struct realmcore *rc, int reverse)
{
	struct realmcore_request q[REALM_MAX];
	struct sv_buf out;
	assert_int_equal(sv_buf_init(&out, REALMCORE_REPLY_MAX), 0);
	for (int guard = 0; !realmcore_done(rc); guard++) {
		size_t k = 0;
		assert_true(guard < 100);
		while (k < REALM_MAX && realmcore_next(rc, &q[k]))
			k++;
		assert_true(k > 0); /* not done, so something must be ready */
		for (size_t j = 0; j < k; j++) {
			const struct realmcore_request *r = &q[reverse ? k - 1 - j : j];
			struct fake *f = &realms[r->realm];
			sv_buf_reset(&out);
			if (f->down) {
				assert_int_equal(
				    realmcore_transport_error(rc, r->realm, "Connection refused"),
				    0);
				continue;
			}
			long status = realm_answer(f, r, &out);
			assert_int_equal(realmcore_reply(rc, r->realm, status, sv_buf_ptr(&out),
			                                 sv_buf_remaining(&out)),
			                 0);
		}
	}
	sv_buf_free(&out);
	return realmcore_result(rc);
}

static struct realmcore *make(enum realmcore_op op, size_t n, const char *pw, unsigned t,
                              unsigned min_realms, unsigned g)
{
	struct realmcore *rc = NULL;
	char why[256];
	struct realmcore_params p = {.op = op,
	                             .realms = list,
	                             .n = n,
	                             .uid = uid,
	                             .uid_len = sizeof(uid) - 1,
	                             .password = (const uint8_t *)pw,
	                             .password_len = pw ? strlen(pw) : 0,
	                             .secret = secret,
	                             .secret_len = sizeof(secret),
	                             .threshold = t,
	                             .min_realms = min_realms,
	                             .guess_limit = g,
	                             .ksf = ksf_id,
	                             .warn = on_warn};
	assert_int_equal(realmcore_new(&rc, &p, why, sizeof(why)), 0);
	return rc;
}

static void do_register(size_t n, unsigned t, unsigned g)
{
	struct realmcore *rc = make(REALMCORE_REGISTER, n, "hunter2", t, 0, g);
	assert_int_equal(run(rc, 0), REALMCORE_OK);
	assert_int_equal(realmcore_succeeded(rc), n);
	realmcore_free(rc);
}

/* Recovers; on success checks the secret. Returns the result. */
static enum realmcore_result do_recover(size_t n, const char *pw, int reverse, int *left, char *err,
                                        size_t err_len)
{
	struct realmcore *rc = make(REALMCORE_RECOVER, n, pw, 0, 0, 0);
	enum realmcore_result res = run(rc, reverse);
	if (res == REALMCORE_OK) {
		uint8_t *s = NULL;
		size_t len = 0;
		assert_int_equal(realmcore_take_secret(rc, &s, &len), 0);
		assert_int_equal(len, sizeof(secret));
		assert_memory_equal(s, secret, len);
		sodium_free(s);
	}
	if (left != NULL)
		*left = realmcore_attempts_left(rc);
	if (err != NULL)
		snprintf(err, err_len, "%s", realmcore_error(rc));
	realmcore_free(rc);
	return res;
}

static void test_register_bodies(void **state)
{
	(void)state;
	setup_realms(3);
	do_register(3, 2, 7);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(realms[i].registered, 1);
		assert_int_equal(realms[i].index, i + 1);
		assert_int_equal(realms[i].t, 2);
		assert_int_equal(realms[i].n, 3);
		assert_int_equal(realms[i].limit, 7);
		assert_memory_equal(realms[i].version, realms[0].version, REALM_VERSION_LEN);
		assert_memory_equal(realms[i].K, realms[0].K, 3 * E);
		assert_memory_equal(realms[i].ct, realms[0].ct, realms[0].ct_len);
	}
	/* each realm got its own shares and tag */
	assert_memory_not_equal(realms[0].k, realms[1].k, 32);
	assert_memory_not_equal(realms[0].s, realms[1].s, 32);
	assert_memory_not_equal(realms[0].tag, realms[1].tag, 32);
	assert_int_equal(realms[0].ct_len, REALM_SEALED_LEN(sizeof(secret)));
}

static void test_register_checks_vault_id(void **state)
{
	(void)state;
	setup_realms(3);
	realms[1].wrong_id = 1;
	struct realmcore *rc = make(REALMCORE_REGISTER, 3, "pw", 2, 0, 5);
	assert_int_equal(run(rc, 0), REALMCORE_FAILED);
	assert_non_null(strstr(realmcore_error(rc), "realm r2 is the vault"));
	realmcore_free(rc);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(realms[i].registered, 0); /* nothing was registered */
}

static void test_register_min_realms(void **state)
{
	(void)state;
	setup_realms(3);
	realms[2].down = 1;
	/* default R = n: one realm down fails before anything is sent */
	struct realmcore *rc = make(REALMCORE_REGISTER, 3, "pw", 2, 0, 5);
	assert_int_equal(run(rc, 0), REALMCORE_FAILED);
	assert_non_null(strstr(realmcore_error(rc), "r3 (no answer"));
	assert_non_null(strstr(realmcore_error(rc), "nothing was registered"));
	realmcore_free(rc);
	assert_int_equal(realms[0].registered, 0);
	/* R = 2: registered at 2 of 3, with a warning naming r3 */
	rc = make(REALMCORE_REGISTER, 3, "pw", 2, 2, 5);
	assert_int_equal(run(rc, 0), REALMCORE_OK);
	assert_int_equal(realmcore_succeeded(rc), 2);
	assert_non_null(strstr(warnings, "realm r3: not registered"));
	realmcore_free(rc);
	/* and it recovers from r1 + r2 */
	realms[2].down = 0;
	realms[2].registered = 0;
	assert_int_equal(do_recover(3, "pw", 0, NULL, NULL, 0), REALMCORE_OK);
}

static void test_recover_pairs(void **state)
{
	(void)state;
	setup_realms(3);
	do_register(3, 2, 7);
	/* all three up: the core asks two */
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, NULL, 0), REALMCORE_OK);
	/* realms 1 + 2 */
	realms[2].down = 1;
	assert_int_equal(do_recover(3, "hunter2", 1, NULL, NULL, 0), REALMCORE_OK);
	assert_non_null(strstr(warnings, "realm r3: no answer"));
	realms[2].down = 0;
	/* realms 2 + 3 */
	realms[0].down = 1;
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, NULL, 0), REALMCORE_OK);
	realms[0].down = 0;
	/* every counter was reset by recover3 */
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(realms[i].used, 0);
}

static void test_recover_most_attempts_left(void **state)
{
	(void)state;
	setup_realms(3);
	do_register(3, 2, 7);
	realms[0].used = 3;
	realms[1].used = 1;
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, NULL, 0), REALMCORE_OK);
	/* r2 and r3 had the most left: r1 was not asked */
	assert_int_equal(realms[0].recover2s, 0);
	assert_int_equal(realms[1].recover2s, 1);
	assert_int_equal(realms[2].recover2s, 1);
	assert_int_equal(realms[0].used, 3); /* untouched */
}

static void test_recover_bad_evaluation_excluded(void **state)
{
	(void)state;
	setup_realms(3);
	do_register(3, 2, 7);
	realms[0].bad_eval = 1;
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, NULL, 0), REALMCORE_OK);
	assert_non_null(strstr(warnings, "realm r1: its evaluation proof failed; excluded"));
	assert_int_equal(realms[2].recover2s, 1); /* the next member was asked */
	assert_int_equal(realms[0].used, 1);      /* r1's guess stays charged */
	/* two of three lying: not enough */
	realms[1].bad_eval = 1;
	char err[REALMCORE_ERR_MAX];
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, err, sizeof(err)), REALMCORE_FAILED);
	assert_non_null(strstr(err, "recovery needs 2 realms, only 1 answered; missing: "));
	assert_non_null(strstr(err, "r1 (its evaluation proof failed)"));
	assert_non_null(strstr(err, "r2 (its evaluation proof failed)"));
}

static void test_recover_stale_version_ignored(void **state)
{
	(void)state;
	setup_realms(3);
	do_register(3, 2, 7);
	struct fake old = realms[2];
	do_register(3, 2, 7); /* a re-registration ... */
	realms[2] = old;      /* ... that r3 missed */
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, NULL, 0), REALMCORE_OK);
	assert_non_null(strstr(warnings, "realm r3: holds another registration (stale or foreign "
	                                 "version); ignored"));
	assert_int_equal(realms[2].recover2s, 0);
}

static void test_recover_wrong_password(void **state)
{
	(void)state;
	int left = -1;
	char err[REALMCORE_ERR_MAX];
	setup_realms(3);
	do_register(3, 2, 7);
	realms[0].used = 2; /* r1: 5 left, r2 and r3: 7 */
	realms[1].used = 1; /* r2: 6 */
	assert_int_equal(do_recover(3, "hunter3", 0, &left, err, sizeof(err)),
	                 REALMCORE_WRONG_PASSWORD);
	/* r3 (7 left) and r2 (6 left) were used, each charged one: min is 5 */
	assert_int_equal(left, 5);
	assert_string_equal(err, "wrong password; attempts left: 5");
	assert_int_equal(realms[1].used, 2);
	assert_int_equal(realms[2].used, 1);
	/* no recover3 was sent: the sessions are still open */
	assert_true(realms[1].session_open && realms[2].session_open);
	/* the right password resets the realms it uses */
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, NULL, 0), REALMCORE_OK);
}

static void test_recover_locked(void **state)
{
	(void)state;
	char err[REALMCORE_ERR_MAX];
	setup_realms(3);
	do_register(3, 2, 2);
	/* three wrong guesses, each at the two realms with the most left, use every limit */
	for (int k = 0; k < 3; k++)
		assert_int_equal(do_recover(3, "x", 0, NULL, NULL, 0), REALMCORE_WRONG_PASSWORD);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(realms[i].registered, 2);
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, err, sizeof(err)), REALMCORE_LOCKED);
	assert_non_null(strstr(err, "HTTP 410"));
	/* two destroyed of three (t = 2): locked as well */
	setup_realms(3);
	do_register(3, 2, 5);
	realms[0].registered = 2;
	realms[2].registered = 2;
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, err, sizeof(err)), REALMCORE_LOCKED);
	/* one destroyed, one down: not locked, but not enough */
	setup_realms(3);
	do_register(3, 2, 5);
	realms[0].registered = 2;
	realms[1].down = 1;
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, err, sizeof(err)), REALMCORE_FAILED);
	assert_non_null(strstr(err, "recovery needs 2 realms, only 1 answered; missing: r1 ("));
	assert_non_null(strstr(err, "r2 (no answer: Connection refused)"));
	/* 410 at recover2 (destroyed since recover1): excluded, the next member is used */
	setup_realms(3);
	do_register(3, 2, 5);
	realms[0].r2_gone = 1;
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, NULL, 0), REALMCORE_OK);
	assert_non_null(strstr(warnings, "realm r1: destroyed the registration"));
	assert_int_equal(realms[2].recover2s, 1);
}

static void test_recover_share_mac_failure(void **state)
{
	(void)state;
	setup_realms(3);
	do_register(3, 2, 7);
	realms[1].bad_share = 1;
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, NULL, 0), REALMCORE_OK);
	assert_non_null(strstr(warnings, "realm r2: its share fails its MAC; excluded"));
	assert_int_equal(realms[2].recover2s, 1);
	/* a realm answering 403 to the right tag proof is named too */
	setup_realms(3);
	do_register(3, 2, 7);
	realms[0].refuse_tag = 1;
	assert_int_equal(do_recover(3, "hunter2", 1, NULL, NULL, 0), REALMCORE_OK);
	assert_non_null(strstr(warnings, "realm r1: refused the right tag proof (HTTP 403)"));
}

static void test_recover_token_refused(void **state)
{
	(void)state;
	char err[REALMCORE_ERR_MAX];
	setup_realms(3);
	do_register(3, 2, 7);
	realms[0].token = 1;
	/* one refusal: recovered through the two others */
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, NULL, 0), REALMCORE_OK);
	realms[1].token = 1;
	assert_int_equal(do_recover(3, "hunter2", 0, NULL, err, sizeof(err)),
	                 REALMCORE_TOKEN_REFUSED);
	assert_non_null(strstr(err, "the vault refused the access token: realm r1"));
}

/* a realm the driver left out (failed attestation) is never asked, and decides the result when
 * the operation fails for want of it */
static void test_excluded_realm(void **state)
{
	(void)state;
	setup_realms(3);
	struct realmcore *rc = make(REALMCORE_REGISTER, 3, "pw", 2, 0, 5);
	realmcore_exclude(rc, 1, REALMCORE_KIND_UNVERIFIED, "failed attestation: ek-chain: no");
	assert_int_equal(run(rc, 0), REALMCORE_UNVERIFIED);
	assert_non_null(strstr(realmcore_error(rc), "realm r2: failed attestation: ek-chain"));
	realmcore_free(rc);
	assert_int_equal(realms[0].registered, 0);
	rc = make(REALMCORE_REGISTER, 3, "pw", 2, 2, 5);
	realmcore_exclude(rc, 1, REALMCORE_KIND_UNVERIFIED, "failed attestation: ek-chain: no");
	assert_int_equal(run(rc, 0), REALMCORE_OK);
	realmcore_free(rc);
	assert_int_equal(realms[1].registered, 0);
	assert_int_equal(realms[0].registered, 1);
	/* every realm excluded: the core ends without a request */
	rc = make(REALMCORE_DELETE, 3, NULL, 0, 0, 0);
	for (size_t i = 0; i < 3; i++)
		realmcore_exclude(rc, i, REALMCORE_KIND_TOKEN,
		                  "refused the access token (no file)");
	struct realmcore_request q;
	assert_int_equal(realmcore_next(rc, &q), 0);
	assert_true(realmcore_done(rc));
	assert_int_equal(realmcore_result(rc), REALMCORE_TOKEN_REFUSED);
	realmcore_free(rc);
	/* a recovery with r1 excluded and r3 down: r2 + r4 recover; r1, whom the driver named,
	 * is not named again, r3 (failed at recover1) is */
	setup_realms(4);
	do_register(4, 2, 7);
	warnings[0] = '\0';
	realms[2].down = 1;
	rc = make(REALMCORE_RECOVER, 4, "hunter2", 0, 0, 0);
	realmcore_exclude(rc, 0, REALMCORE_KIND_UNVERIFIED, "failed attestation: server-key: no");
	assert_int_equal(run(rc, 0), REALMCORE_OK);
	realmcore_free(rc);
	assert_null(strstr(warnings, "realm r1"));
	assert_non_null(strstr(warnings, "realm r3: no answer"));
	assert_int_equal(realms[0].recover2s, 0);
	assert_int_equal(realms[0].used, 0);
}

static void test_recover_nothing_registered(void **state)
{
	(void)state;
	char err[REALMCORE_ERR_MAX];
	setup_realms(2);
	assert_int_equal(do_recover(2, "pw", 0, NULL, err, sizeof(err)), REALMCORE_FAILED);
	assert_non_null(strstr(err, "r1 (holds no registration for this user (HTTP 404))"));
}

static void test_delete(void **state)
{
	(void)state;
	setup_realms(3);
	do_register(3, 2, 7);
	realms[1].down = 1;
	struct realmcore *rc = make(REALMCORE_DELETE, 3, NULL, 0, 0, 0);
	assert_int_equal(run(rc, 0), REALMCORE_FAILED);
	assert_int_equal(realmcore_succeeded(rc), 2);
	assert_non_null(
	    strstr(realmcore_error(rc), "deleted at 2 of 3 realms; not deleted at: r2"));
	realmcore_free(rc);
	assert_int_equal(realms[0].registered, 0);
	assert_int_equal(realms[1].registered, 1);
	realms[1].down = 0;
	rc = make(REALMCORE_DELETE, 3, NULL, 0, 0, 0);
	assert_int_equal(run(rc, 1), REALMCORE_OK);
	realmcore_free(rc);
	assert_int_equal(realms[1].registered, 0);
}

static void test_params_and_order(void **state)
{
	(void)state;
	struct realmcore *rc = NULL;
	char why[256];
	setup_realms(3);
	struct realmcore_params p = {.op = REALMCORE_REGISTER,
	                             .realms = list,
	                             .n = 3,
	                             .uid = uid,
	                             .uid_len = 5,
	                             .password = (const uint8_t *)"pw",
	                             .password_len = 2,
	                             .secret = secret,
	                             .secret_len = sizeof(secret),
	                             .threshold = 2,
	                             .min_realms = 1, /* below t */
	                             .guess_limit = 5,
	                             .ksf = ksf_id};
	assert_int_equal(realmcore_new(&rc, &p, why, sizeof(why)), SV_ERR_RANGE);
	assert_null(rc);
	p.min_realms = 0;
	p.threshold = 4;
	assert_int_equal(realmcore_new(&rc, &p, why, sizeof(why)), SV_ERR_RANGE);
	p.threshold = 2;
	memcpy(list[1].id, list[0].id, REALM_ID_LEN);
	assert_int_equal(realmcore_new(&rc, &p, why, sizeof(why)), SV_ERR_INVALID);
	setup_realms(3);
	assert_int_equal(realmcore_new(&rc, &p, why, sizeof(why)), 0);
	/* a reply with no request outstanding is refused */
	assert_int_equal(realmcore_reply(rc, 0, 200, NULL, 0), SV_ERR_PROTOCOL);
	struct realmcore_request q;
	assert_int_equal(realmcore_next(rc, &q), 1);
	assert_int_equal(realmcore_reply(rc, 1, 200, NULL, 0), SV_ERR_PROTOCOL);
	assert_int_equal(realmcore_reply(rc, 9, 200, NULL, 0), SV_ERR_PROTOCOL);
	realmcore_free(rc);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_register_bodies),
	    cmocka_unit_test(test_register_checks_vault_id),
	    cmocka_unit_test(test_register_min_realms),
	    cmocka_unit_test(test_recover_pairs),
	    cmocka_unit_test(test_recover_most_attempts_left),
	    cmocka_unit_test(test_recover_bad_evaluation_excluded),
	    cmocka_unit_test(test_recover_stale_version_ignored),
	    cmocka_unit_test(test_recover_wrong_password),
	    cmocka_unit_test(test_recover_locked),
	    cmocka_unit_test(test_recover_share_mac_failure),
	    cmocka_unit_test(test_recover_token_refused),
	    cmocka_unit_test(test_excluded_realm),
	    cmocka_unit_test(test_recover_nothing_registered),
	    cmocka_unit_test(test_delete),
	    cmocka_unit_test(test_params_and_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
