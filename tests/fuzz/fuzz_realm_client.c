/*
 * Fuzzes the realm client's reply handling (client/realmcore.c) and the realm list reader
 * (client/realmlist.c).
 *
 * Input: mode(1) | rest. Mode 0: rest is a realm list file (JSON) for realmlist_parse. Otherwise
 * the core runs a recovery (mode odd) or a delete (mode even) against three realms in memory that
 * hold one registration (made at start-up through the core itself, Identity KSF), and the rest
 * of the input mutates their answers: for each request, one control byte picks the genuine
 * answer, a byte of it XORed, another status with a cut body, a transport error, or a body of
 * raw input bytes. Invariants: no crash, the core ends within a bounded number of rounds, and a
 * recovery that reports success returns exactly the registered secret.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/realmcore.h"
#include "client/realmlist.h"
#include "common/buf.h"
#include "common/info.h"
#include "crypto/realm.h"
#include "crypto/realm_wire.h"

#define N 3
#define E 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t uid[] = "fuzz-user";
static const uint8_t pw[] = "fuzz password";
static const uint8_t secret[] = "the secret the fuzzer must never alter";
static struct realmcore_realm realms[N];
static const char *const names[N] = {"a", "b", "c"};
static uint8_t reg_body[N][REALM_WIRE_MAX];
static size_t reg_len[N];
static struct realm_register_req reg[N];
static uint8_t session[N][REALM_SESSION_LEN];

static void die(const char *what)
{
	fprintf(stderr, "fuzz_realm_client set-up failed: %s\n", what);
	abort();
}

static void info_json(struct sv_buf *out, size_t i)
{
	struct sv_info info;
	memset(&info, 0, sizeof(info));
	snprintf(info.suite, sizeof(info.suite), "%s", INFO_SUITE);
	info.guess_default = 10;
	info.guess_max = 255;
	info.server_pk[0] = 1;
	memcpy(info.vault_id, realms[i].id, REALM_ID_LEN);
	info.versions[0] = 1;
	info.n_versions = 1;
	info.ksf_t = 3;
	info.ksf_m_kib = 65536;
	if (info_encode(&info, out) != 0)
		die("info_encode");
}

/* The genuine answer of realm i to q, from the registration it holds. */
static long answer(size_t i, const struct realmcore_request *q, struct sv_buf *out)
{
	const struct realm_register_req *r = &reg[i];
	if (!q->post) {
		info_json(out, i);
		return 200;
	}
	if (strcmp(q->path, REALMCORE_PATH_REGISTER) == 0) {
		if (q->len > REALM_WIRE_MAX)
			die("register body");
		memcpy(reg_body[i], q->body, q->len);
		reg_len[i] = q->len;
		return 200;
	}
	if (strcmp(q->path, REALMCORE_PATH_DELETE) == 0)
		return 200;
	if (strcmp(q->path, REALMCORE_PATH_RECOVER1) == 0) {
		struct realm_recover1_reply rep = {.version = r->version,
		                                   .ksf = r->ksf,
		                                   .t = r->t,
		                                   .n = r->n,
		                                   .index = r->index,
		                                   .attempts_left = 5,
		                                   .unlock_check = r->unlock_check,
		                                   .commitments = r->commitments};
		return realm_wire_recover1_reply_encode(out, &rep) == 0 ? 200 : 500;
	}
	if (strcmp(q->path, REALMCORE_PATH_RECOVER2) == 0) {
		struct realm_recover2_req req;
		uint8_t ev[E], proof[REALM_PROOF_LEN];
		if (realm_wire_recover2_decode(&req, q->body, q->len, NULL) != 0)
			die("the core sent a malformed recover2");
		if (realm_evaluate(ev, proof, r->oprf_share, r->commitments + (r->index - 1) * E,
		                   req.blinded) != 0)
			return 500;
		randombytes_buf(session[i], REALM_SESSION_LEN);
		struct realm_recover2_reply rep = {
		    .session_id = session[i], .evaluated = ev, .proof = proof, .attempts_left = 4};
		return realm_wire_recover2_reply_encode(out, &rep) == 0 ? 200 : 500;
	}
	if (strcmp(q->path, REALMCORE_PATH_RECOVER3) == 0) {
		struct realm_recover3_req req;
		uint8_t rel[REALM_RELEASE_LEN];
		if (realm_wire_recover3_decode(&req, q->body, q->len, NULL) != 0)
			die("the core sent a malformed recover3");
		if (realm_tag_check(r->unlock_tag, req.session_id, req.tag_proof) != 0)
			return sv_buf_put_u8(out, 3) == 0 ? 403 : 500;
		if (realm_release_seal(rel, r->unlock_tag, req.session_id, r->enc_share,
		                       r->share_mac) != 0)
			return 500;
		struct realm_recover3_reply rep = {
		    .release = rel, .ct = r->ct, .ct_len = r->ct_len};
		return realm_wire_recover3_reply_encode(out, &rep) == 0 ? 200 : 500;
	}
	return 404;
}

struct input {
	const uint8_t *p;
	size_t n;
};

static int take(struct input *in, uint8_t *b)
{
	if (in->n == 0)
		return 0;
	*b = *in->p++;
	in->n--;
	return 1;
}

static void run(struct realmcore *rc, struct input *in)
{
	static const long statuses[] = {200, 400, 401, 403, 404, 409, 410, 429, 500, 503, 507, 302};
	struct sv_buf out;
	if (sv_buf_init(&out, REALMCORE_REPLY_MAX) != 0)
		die("sv_buf_init");
	for (int round = 0; !realmcore_done(rc); round++) {
		struct realmcore_request q[N];
		size_t k = 0;
		if (round > 64)
			die("the core does not end");
		while (k < N && realmcore_next(rc, &q[k]))
			k++;
		if (k == 0)
			die("the core waits for nothing");
		for (size_t j = 0; j < k; j++) {
			uint8_t c = 0, x = 0, y = 0;
			size_t i = q[j].realm;
			sv_buf_reset(&out);
			long status = answer(i, &q[j], &out);
			(void)take(in, &c);
			switch (c % 6) {
			case 0: break;
			case 1: /* one byte XORed */
				if (take(in, &x) && take(in, &y) && out.len > 0)
					out.data[x % out.len] ^= y ? y : 1;
				break;
			case 2: /* another status, the body cut */
				if (take(in, &x) && take(in, &y)) {
					status =
					    statuses[x % (sizeof(statuses) / sizeof(statuses[0]))];
					if (out.len > y)
						out.len = y;
				}
				break;
			case 3:
				if (realmcore_transport_error(rc, i, "fuzzed") != 0)
					die("transport_error refused");
				continue;
			case 4: /* raw input as the body */
				if (take(in, &x)) {
					size_t len = x < in->n ? x : in->n;
					sv_buf_reset(&out);
					if (len > 0 && sv_buf_put(&out, in->p, len) != 0)
						die("sv_buf_put");
					in->p += len;
					in->n -= len;
				}
				break;
			case 5: /* the body one byte short */
				if (out.len > 0)
					out.len--;
				break;
			}
			if (realmcore_reply(rc, i, status, out.len ? out.data : NULL, out.len) != 0)
				die("reply refused");
		}
	}
	sv_buf_free(&out);
}

static struct realmcore *make(enum realmcore_op op)
{
	struct realmcore *rc = NULL;
	char why[256];
	struct realmcore_params p = {.op = op,
	                             .realms = realms,
	                             .n = N,
	                             .uid = uid,
	                             .uid_len = sizeof(uid) - 1,
	                             .password = pw,
	                             .password_len = sizeof(pw) - 1,
	                             .secret = secret,
	                             .secret_len = sizeof(secret),
	                             .threshold = 2,
	                             .guess_limit = 5,
	                             .ksf = {KSF_IDENTITY, 0, 0}};
	if (realmcore_new(&rc, &p, why, sizeof(why)) != 0)
		die(why);
	return rc;
}

static void init(void)
{
	struct input none = {0};
	if (sodium_init() < 0)
		die("sodium_init");
	for (size_t i = 0; i < N; i++) {
		realms[i].name = names[i];
		memset(realms[i].id, (int)(i + 1), REALM_ID_LEN);
	}
	struct realmcore *rc = make(REALMCORE_REGISTER);
	run(rc, &none);
	if (realmcore_result(rc) != REALMCORE_OK)
		die(realmcore_error(rc));
	realmcore_free(rc);
	for (size_t i = 0; i < N; i++)
		if (realm_wire_register_decode(&reg[i], reg_body[i], reg_len[i], NULL) != 0)
			die("register body decode");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		init();
		ready = 1;
	}
	if (size < 1)
		return 0;
	if (data[0] == 0) {
		struct realmlist l;
		char why[256];
		if (realmlist_parse(&l, (const char *)data + 1, size - 1, "/d", why, sizeof(why)) ==
		    0) {
			if (l.n < 1 || l.n > REALM_MAX || l.threshold > l.n)
				abort();
			realmlist_clear(&l);
		}
		return 0;
	}
	struct input in = {data + 1, size - 1};
	struct realmcore *rc = make(data[0] & 1 ? REALMCORE_RECOVER : REALMCORE_DELETE);
	run(rc, &in);
	if (realmcore_result(rc) == REALMCORE_OK && (data[0] & 1)) {
		uint8_t *s = NULL;
		size_t len = 0;
		if (realmcore_take_secret(rc, &s, &len) != 0 || len != sizeof(secret) ||
		    memcmp(s, secret, len) != 0)
			abort(); /* a wrong secret accepted */
		sodium_free(s);
	}
	realmcore_free(rc);
	return 0;
}
