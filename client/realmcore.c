#include "client/realmcore.h"
#include "client/realmcore_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/info.h"
#include "common/buf.h"
#include "common/err.h"
#include "crypto/oprf.h"
#include "crypto/realm_wire.h"

void rcore_warnf(struct realmcore *rc, size_t i, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	if (rc->warn == NULL)
		return;
	int n = snprintf(msg, sizeof(msg), "realm %s: ", rc->r[i].name);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	rc->warn(rc->warn_arg, i, msg);
}

void rcore_set_err(struct realmcore *rc, enum realmcore_result res, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rc->err, sizeof(rc->err), fmt, ap);
	va_end(ap);
	rc->result = res;
	rc->phase = PH_DONE;
}

void rcore_append(char *buf, size_t cap, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;
	if (n + 1 >= cap)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, cap - n, fmt, ap);
	va_end(ap);
}

void rcore_fail_realm(struct realmcore *rc, size_t i, enum fkind kind, const char *fmt, ...)
{
	va_list ap;
	struct rrealm *r = &rc->r[i];
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	r->st = RS_FAILED;
	r->kind = kind;
	r->good = 0;
	r->ok = 0;
}

/* The printable text of an error reply (400, 409, 503...), or "no reason given". */
static void reply_text(char *out, size_t cap, const uint8_t *body, size_t len)
{
	while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r'))
		len--;
	if (len == 0 || len >= cap) {
		snprintf(out, cap, "no reason given");
		return;
	}
	for (size_t i = 0; i < len; i++)
		out[i] = body[i] >= 0x20 && body[i] <= 0x7e ? (char)body[i] : '?';
	out[len] = '\0';
}

/* A non-200 answer as a reason; the kind says what it means. */
enum fkind rcore_describe(char *why, size_t cap, long status, const uint8_t *body, size_t len)
{
	char text[200];
	reply_text(text, sizeof(text), body, len);
	if (status == 401 || (status == 403 && len > 1)) {
		snprintf(why, cap, "refused the access token (HTTP %ld: %s)", status, text);
		return FK_TOKEN;
	}
	switch (status) {
	case 404:
		snprintf(why, cap, "holds no registration for this user (HTTP 404)");
		return FK_NOTFOUND;
	case 410:
		snprintf(why, cap,
		         "destroyed the registration after too many wrong guesses (HTTP 410)");
		return FK_LOCKED;
	case 400: snprintf(why, cap, "rejected the request (HTTP 400: %s)", text); break;
	case 409: snprintf(why, cap, "refused the step (HTTP 409: %s)", text); break;
	case 429:
	case 503: snprintf(why, cap, "is busy (HTTP %ld: %s)", status, text); break;
	case 507: snprintf(why, cap, "is full and takes no new users (HTTP 507)"); break;
	case 405:
	case 415:
		snprintf(why, cap,
		         "does not serve realm requests (HTTP %ld); is it a sealvault with "
		         "threshold realms?",
		         status);
		break;
	case 500: snprintf(why, cap, "failed internally (HTTP 500)"); break;
	default: snprintf(why, cap, "answered HTTP %ld", status); break;
	}
	return FK_OTHER;
}

/* ---- setup ---- */

int realmcore_new(struct realmcore **out, const struct realmcore_params *p, char *why,
                  size_t why_len)
{
	struct realmcore *rc = NULL;
	*out = NULL;
#define BAD(...)                                                                                   \
	do {                                                                                       \
		snprintf(why, why_len, __VA_ARGS__);                                               \
		return SV_ERR_RANGE;                                                               \
	} while (0)
	if (p->n < 1 || p->n > REALM_MAX || p->realms == NULL)
		BAD("a realm list holds 1 to %d realms", REALM_MAX);
	if (p->uid == NULL || p->uid_len < 1 || p->uid_len > REALM_UID_MAX)
		BAD("the user id must be 1 to %d bytes", REALM_UID_MAX);
	if (p->op != REALMCORE_REGISTER && p->op != REALMCORE_RECOVER && p->op != REALMCORE_DELETE)
		BAD("unknown operation");
	if (p->op != REALMCORE_DELETE &&
	    (p->password == NULL || p->password_len < 1 || p->password_len > REALM_PASSWORD_MAX))
		BAD("the password must be 1 to %d bytes", REALM_PASSWORD_MAX);
	if (p->threshold > p->n)
		BAD("the threshold must be 1 to %zu (the number of realms)", p->n);
	if (p->op == REALMCORE_REGISTER) {
		if (p->secret == NULL || p->secret_len < 1 || p->secret_len > REALM_SECRET_MAX)
			BAD("the secret must be 1 to %d bytes", REALM_SECRET_MAX);
		if (p->threshold < 1)
			BAD("registering needs a threshold from 1 to %zu", p->n);
		if (p->min_realms != 0 && (p->min_realms < p->threshold || p->min_realms > p->n))
			BAD("the registration threshold must be %u to %zu (at least the threshold, "
			    "at "
			    "most the number of realms)",
			    p->threshold, p->n);
		if (p->guess_limit < 1 || p->guess_limit > 255)
			BAD("the guess limit per realm must be 1 to 255");
		if (ksf_params_check(&p->ksf) != 0)
			BAD("the KSF profile is not one this client can run");
	}
#undef BAD
	for (size_t i = 0; i < p->n; i++)
		for (size_t j = 0; j < i; j++)
			if (memcmp(p->realms[i].id, p->realms[j].id, REALM_ID_LEN) == 0) {
				snprintf(why, why_len, "two realms of the list have the same id");
				return SV_ERR_INVALID;
			}
	rc = calloc(1, sizeof(*rc));
	if (rc == NULL)
		goto nomem;
	rc->s = sodium_malloc(sizeof(*rc->s));
	if (rc->s == NULL || sv_buf_init(&rc->scratch, REALM_WIRE_MAX) != 0)
		goto nomem;
	memset(rc->s, 0, sizeof(*rc->s));
	rc->op = p->op;
	rc->n = p->n;
	for (size_t i = 0; i < p->n; i++) {
		const char *nm = p->realms[i].name != NULL ? p->realms[i].name : "?";
		snprintf(rc->r[i].name, sizeof(rc->r[i].name), "%s", nm);
		memcpy(rc->r[i].id, p->realms[i].id, REALM_ID_LEN);
	}
	memcpy(rc->uid, p->uid, p->uid_len);
	rc->uid_len = p->uid_len;
	if (p->op != REALMCORE_DELETE) {
		memcpy(rc->s->password, p->password, p->password_len);
		rc->password_len = p->password_len;
	}
	if (p->op == REALMCORE_REGISTER) {
		memcpy(rc->s->secret, p->secret, p->secret_len);
		rc->secret_len = p->secret_len;
	}
	rc->threshold = p->threshold;
	rc->min_realms = p->min_realms ? p->min_realms : (unsigned)p->n;
	rc->guess_limit = p->guess_limit;
	rc->ksf = p->ksf;
	rc->warn = p->warn;
	rc->warn_arg = p->warn_arg;
	rc->group = -1;
	rc->attempts_left = -1;
	rc->result = REALMCORE_RUNNING;
	rc->phase = p->op == REALMCORE_REGISTER  ? PH_INFO
	            : p->op == REALMCORE_RECOVER ? PH_R1
	                                         : PH_DELETE;
	*out = rc;
	return SV_OK;
nomem:
	snprintf(why, why_len, "out of memory");
	realmcore_free(rc);
	return SV_ERR_NOMEM;
}

void realmcore_free(struct realmcore *rc)
{
	if (rc == NULL)
		return;
	if (rc->s != NULL)
		sodium_free(rc->s); /* wipes */
	if (rc->out != NULL)
		sodium_free(rc->out);
	sv_buf_free(&rc->scratch);
	sodium_memzero(rc, sizeof(*rc));
	free(rc);
}

void realmcore_exclude(struct realmcore *rc, size_t realm, enum realmcore_kind kind,
                       const char *why)
{
	if (realm >= rc->n || rc->r[realm].st != RS_IDLE)
		return;
	rc->r[realm].excluded = 1;
	rcore_fail_realm(rc, realm,
	                 kind == REALMCORE_KIND_TOKEN        ? FK_TOKEN
	                 : kind == REALMCORE_KIND_UNVERIFIED ? FK_UNVERIFIED
	                                                     : FK_OTHER,
	                 "%s", why);
}

/* ---- requests ---- */

/* Takes the encoded scratch buffer as realm i's next request. */
int rcore_queue(struct realmcore *rc, size_t i, const char *path, int post)
{
	struct rrealm *r = &rc->r[i];
	size_t len = sv_buf_remaining(&rc->scratch);
	if (len > REALM_WIRE_MAX)
		return SV_ERR_INTERNAL;
	if (len > 0)
		memcpy(rc->s->body[i], sv_buf_ptr(&rc->scratch), len);
	sv_buf_reset(&rc->scratch);
	r->body_len = len;
	r->path = path;
	r->post = post;
	r->st = RS_QUEUED;
	return SV_OK;
}

int rcore_queue_uid(struct realmcore *rc, size_t i, const char *path)
{
	struct realm_uid_req q = {.uid = rc->uid, .uid_len = rc->uid_len};
	int e = realm_wire_uid_encode(&rc->scratch, &q);
	return e != 0 ? e : rcore_queue(rc, i, path, 1);
}

static void start(struct realmcore *rc);
static void advance(struct realmcore *rc);

int realmcore_next(struct realmcore *rc, struct realmcore_request *req)
{
	if (!rc->started) {
		rc->started = 1;
		start(rc);
		advance(rc); /* every realm excluded: the operation ends here */
	}
	if (rc->phase == PH_DONE)
		return 0; /* nothing more goes out once the outcome is known */
	for (size_t i = 0; i < rc->n; i++) {
		struct rrealm *r = &rc->r[i];
		if (r->st != RS_QUEUED)
			continue;
		r->st = RS_PENDING;
		rc->pending++;
		req->realm = i;
		req->post = r->post;
		req->path = r->path;
		req->body = r->body_len ? rc->s->body[i] : NULL;
		req->len = r->body_len;
		return 1;
	}
	return 0;
}

int realmcore_done(const struct realmcore *rc)
{
	return rc->phase == PH_DONE && rc->pending == 0;
}

enum realmcore_result realmcore_result(const struct realmcore *rc)
{
	return rc->phase == PH_DONE ? rc->result : REALMCORE_RUNNING;
}

const char *realmcore_error(const struct realmcore *rc)
{
	return rc->err;
}

int realmcore_attempts_left(const struct realmcore *rc)
{
	return rc->attempts_left;
}

size_t realmcore_succeeded(const struct realmcore *rc)
{
	return rc->succeeded;
}

int realmcore_take_secret(struct realmcore *rc, uint8_t **secret, size_t *len)
{
	if (rc->result != REALMCORE_OK || rc->out == NULL)
		return SV_ERR_PROTOCOL;
	*secret = rc->out;
	*len = rc->out_len;
	rc->out = NULL;
	rc->out_len = 0;
	return SV_OK;
}

/* ---- failures: lists of realms and the final sentence ---- */

/* ", NAME (reason)" for every failed realm into buf. */
size_t rcore_list_failed(const struct realmcore *rc, char *buf, size_t cap)
{
	size_t k = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < rc->n; i++) {
		if (rc->r[i].st != RS_FAILED)
			continue;
		rcore_append(buf, cap, "%s%s (%s)", k ? ", " : "", rc->r[i].name, rc->r[i].why);
		k++;
	}
	return k;
}

/* The result of a failed operation: a refused token or attestation among the realms missing
 * decides the kind (exit 5 or 4), the sentence is prefixed to name that realm. */
void rcore_finish_failed(struct realmcore *rc, const char *sentence)
{
	for (size_t i = 0; i < rc->n; i++) {
		const struct rrealm *r = &rc->r[i];
		if (r->st == RS_FAILED && r->kind == FK_TOKEN) {
			static const char pre[] = "refused the access token ";
			const char *why = r->why;
			if (strncmp(why, pre, sizeof(pre) - 1) == 0)
				why += sizeof(pre) - 1;
			rcore_set_err(rc, REALMCORE_TOKEN_REFUSED,
			              "the vault refused the access token: realm %s %s; %s",
			              r->name, why, sentence);
			return;
		}
	}
	for (size_t i = 0; i < rc->n; i++) {
		const struct rrealm *r = &rc->r[i];
		if (r->st == RS_FAILED && r->kind == FK_UNVERIFIED) {
			rcore_set_err(rc, REALMCORE_UNVERIFIED, "realm %s: %s; %s", r->name, r->why,
			              sentence);
			return;
		}
	}
	rcore_set_err(rc, REALMCORE_FAILED, "%s", sentence);
}

/* ---- register ---- */

static void info_reply(struct realmcore *rc, size_t i, long status, const uint8_t *body, size_t len)
{
	struct sv_info *info;
	char why[256], want[2 * REALM_ID_LEN + 1], got[2 * REALM_ID_LEN + 1];
	if (status != 200) {
		char reason[WHY_LEN];
		enum fkind k = rcore_describe(reason, sizeof(reason), status, body, len);
		rcore_fail_realm(rc, i, k, "GET /v1/info: %s", reason);
		return;
	}
	info = calloc(1, sizeof(*info));
	if (info == NULL) {
		rcore_fail_realm(rc, i, FK_OTHER, "out of memory");
		return;
	}
	if (client_info_decode(info, (const char *)body, len, why, sizeof(why)) != SV_OK) {
		rcore_fail_realm(rc, i, FK_OTHER,
		                 "GET /v1/info is malformed (%s); is it a sealvault?", why);
	} else if (memcmp(info->vault_id, rc->r[i].id, REALM_ID_LEN) != 0) {
		sodium_bin2hex(want, sizeof(want), rc->r[i].id, REALM_ID_LEN);
		sodium_bin2hex(got, sizeof(got), info->vault_id, REALM_ID_LEN);
		rcore_set_err(
		    rc, REALMCORE_FAILED,
		    "realm %s is the vault %s, not %s as the realm list says; nothing was "
		    "registered: fix the list's \"id\" or \"url\"",
		    rc->r[i].name, got, want);
	} else {
		rc->r[i].ok = 1;
		rc->r[i].st = RS_IDLE;
	}
	free(info);
}

/* Everything of docs/realms.md "Register" step 2, then a register body per reachable realm. */
struct regwork {
	uint8_t k[REALM_SCALAR_LEN], s[REALM_SCALAR_LEN], y[REALM_OUTPUT_LEN];
	uint8_t key[REALM_KEY_LEN], check[REALM_KEY_LEN], mac[REALM_KEY_LEN];
	struct realm_share ks[REALM_MAX], ss[REALM_MAX];
	uint8_t ct[REALM_CT_MAX];
};

static int build_registration(struct realmcore *rc)
{
	struct secrets *s = rc->s;
	struct regwork *w = sodium_malloc(sizeof(*w));
	uint8_t version[REALM_VERSION_LEN], com[REALM_MAX * REALM_ELEMENT_LEN];
	unsigned n = (unsigned)rc->n, t = rc->threshold;
	size_t ct_len = REALM_SEALED_LEN(rc->secret_len);
	int e;
	if (w == NULL)
		return SV_ERR_NOMEM;
	randombytes_buf(version, sizeof(version));
	if ((e = realm_stretch(s->access, s->seed, s->password, rc->password_len, version, rc->uid,
	                       rc->uid_len, &rc->ksf)) != 0 ||
	    (e = oprf_generate_keypair(w->k, NULL)) != 0 ||
	    (e = realm_shamir_split(w->ks, w->k, t, n)) != 0)
		goto out;
	for (unsigned i = 0; i < n; i++)
		if ((e = realm_commitment(com + i * REALM_ELEMENT_LEN, w->ks[i].value)) != 0)
			goto out;
	if ((e = realm_registration_hash(rc->reg_hash, version, &rc->ksf, t, n, rc->uid,
	                                 rc->uid_len, com)) != 0 ||
	    (e = oprf_evaluate(w->y, OPRF_MODE_OPRF, w->k, s->access, sizeof(s->access), NULL,
	                       0)) != 0)
		goto out;
	realm_unlock_prk(s->prk, w->y, rc->reg_hash);
	if ((e = realm_unlock_check(w->check, s->prk)) != 0)
		goto out;
	crypto_core_ristretto255_scalar_random(w->s);
	if ((e = realm_shamir_split(w->ss, w->s, t, n)) != 0 ||
	    (e = realm_secret_key(w->key, s->seed, w->s, rc->reg_hash)) != 0 ||
	    (e = realm_secret_seal(w->ct, w->key, rc->reg_hash, s->secret, rc->secret_len)) != 0)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		if (!rc->r[i].ok)
			continue; /* unreachable: nothing to send */
		if ((e = realm_unlock_tag(s->tag[i], s->prk, rc->r[i].id, i + 1)) != 0 ||
		    (e = realm_share_mac(w->mac, s->prk, rc->r[i].id, i + 1, w->ss[i].value)) != 0)
			goto out;
		struct realm_register_req q = {
		    .uid = rc->uid,
		    .uid_len = rc->uid_len,
		    .realm_id = rc->r[i].id,
		    .version = version,
		    .ksf = rc->ksf,
		    .t = (uint8_t)t,
		    .n = (uint8_t)n,
		    .index = (uint8_t)(i + 1),
		    .guess_limit = (uint8_t)rc->guess_limit,
		    .oprf_share = w->ks[i].value,
		    .commitments = com,
		    .unlock_check = w->check,
		    .unlock_tag = s->tag[i],
		    .enc_share = w->ss[i].value,
		    .share_mac = w->mac,
		    .ct = w->ct,
		    .ct_len = ct_len,
		};
		if ((e = realm_wire_register_encode(&rc->scratch, &q)) != 0 ||
		    (e = rcore_queue(rc, i, REALMCORE_PATH_REGISTER, 1)) != 0)
			goto out;
	}
out:
	sv_buf_reset(&rc->scratch);
	sodium_free(w); /* k, s, y, the key and every share */
	sodium_memzero(s->prk, sizeof(s->prk));
	sodium_memzero(s->access, sizeof(s->access));
	sodium_memzero(s->seed, sizeof(s->seed));
	sodium_memzero(s->tag, sizeof(s->tag));
	sodium_memzero(s->password, sizeof(s->password));
	sodium_memzero(s->secret, sizeof(s->secret));
	return e;
}

static void after_info(struct realmcore *rc)
{
	char list[1200];
	size_t reach = 0;
	for (size_t i = 0; i < rc->n; i++)
		reach += rc->r[i].ok;
	if (reach < rc->min_realms) {
		char sentence[1600];
		rcore_list_failed(rc, list, sizeof(list));
		snprintf(sentence, sizeof(sentence),
		         "registration needs %u realms, only %zu of %zu answered; missing: %s; "
		         "nothing was registered",
		         rc->min_realms, reach, rc->n, list);
		rcore_finish_failed(rc, sentence);
		return;
	}
	int e = build_registration(rc);
	if (e == SV_ERR_NOMEM) {
		rcore_set_err(rc, REALMCORE_FAILED,
		              "out of memory (Argon2id needs %u KiB; use a smaller KSF profile)",
		              rc->ksf.m_kib);
		return;
	}
	if (e != 0) {
		rcore_set_err(rc, REALMCORE_FAILED, "building the registration: %s",
		              sv_strerror(e));
		return;
	}
	for (size_t i = 0; i < rc->n; i++)
		if (rc->r[i].ok) /* from now on, ok means "registered" */
			rc->r[i].ok = 0;
	rc->phase = PH_REGISTER;
}

static void after_register(struct realmcore *rc)
{
	char list[1200], sentence[1800];
	size_t k = 0;
	for (size_t i = 0; i < rc->n; i++)
		k += rc->r[i].ok;
	rc->succeeded = k;
	rcore_list_failed(rc, list, sizeof(list));
	if (k >= rc->min_realms) {
		for (size_t i = 0; i < rc->n; i++)
			if (rc->r[i].st == RS_FAILED)
				rcore_warnf(
				    rc, i,
				    "not registered (%s); run the registration again later so "
				    "that it holds the new one",
				    rc->r[i].why);
		rc->result = REALMCORE_OK;
		rc->phase = PH_DONE;
		return;
	}
	if (k >= rc->threshold)
		snprintf(
		    sentence, sizeof(sentence),
		    "registered at only %zu of %zu realms, %u wanted; failed: %s; the secret "
		    "is recoverable from those %zu, but run the registration again so that the "
		    "others hold it too",
		    k, rc->n, rc->min_realms, list, k);
	else
		snprintf(sentence, sizeof(sentence),
		         "registered at only %zu of %zu realms, %u wanted; failed: %s; the new "
		         "registration is not recoverable and the previous one may be damaged at "
		         "the realms that took the new one: run the registration again (a fresh "
		         "one replaces everything)",
		         k, rc->n, rc->min_realms, list);
	rcore_finish_failed(rc, sentence);
}

/* ---- delete ---- */

static void after_delete(struct realmcore *rc)
{
	char list[1200], sentence[1600];
	size_t k = 0;
	for (size_t i = 0; i < rc->n; i++)
		k += rc->r[i].ok;
	rc->succeeded = k;
	if (k == rc->n) {
		rc->result = REALMCORE_OK;
		rc->phase = PH_DONE;
		return;
	}
	rcore_list_failed(rc, list, sizeof(list));
	snprintf(sentence, sizeof(sentence),
	         "deleted at %zu of %zu realms; not deleted at: %s; run delete again", k, rc->n,
	         list);
	rcore_finish_failed(rc, sentence);
}

/* ---- replies ---- */

/* Moves the operation on once nothing is outstanding or queued. */
static void advance(struct realmcore *rc)
{
	for (int round = 0; round < 4 && rc->phase != PH_DONE && rc->pending == 0; round++) {
		for (size_t i = 0; i < rc->n; i++)
			if (rc->r[i].st == RS_QUEUED)
				return;
		switch (rc->phase) {
		case PH_INFO: after_info(rc); break;
		case PH_REGISTER: after_register(rc); break;
		case PH_R1: rcore_after_recover1(rc); break;
		case PH_R23: rcore_after_recover23(rc); break;
		case PH_DELETE: after_delete(rc); break;
		case PH_DONE: break;
		}
	}
}

/* Queues the first step's request to every realm not excluded. */
static void start(struct realmcore *rc)
{
	for (size_t i = 0; i < rc->n; i++) {
		if (rc->r[i].st != RS_IDLE)
			continue;
		int e = 0;
		switch (rc->phase) {
		case PH_INFO:
			sv_buf_reset(&rc->scratch);
			e = rcore_queue(rc, i, REALMCORE_PATH_INFO, 0);
			break;
		case PH_R1: e = rcore_queue_uid(rc, i, REALMCORE_PATH_RECOVER1); break;
		case PH_DELETE: e = rcore_queue_uid(rc, i, REALMCORE_PATH_DELETE); break;
		default: break;
		}
		if (e != 0)
			rcore_fail_realm(rc, i, FK_OTHER, "building its request failed");
	}
}

static int handle(struct realmcore *rc, size_t realm, long status, const uint8_t *body, size_t len,
                  const char *transport)
{
	if (realm >= rc->n || rc->r[realm].st != RS_PENDING || rc->pending == 0)
		return SV_ERR_PROTOCOL;
	struct rrealm *r = &rc->r[realm];
	const char *path = r->path;
	rc->pending--;
	r->st = RS_IDLE;
	sodium_memzero(rc->s->body[realm], r->body_len); /* the request went out */
	r->body_len = 0;
	if (rc->phase == PH_DONE) /* a late answer after the end (e.g. a mismatched vault id) */
		return SV_OK;
	if (transport != NULL) {
		rcore_fail_realm(rc, realm, FK_NOANSWER, "no answer: %s", transport);
		if (rc->phase == PH_R23)
			rcore_warnf(rc, realm, "no answer (%s); excluded", transport);
	} else if (strcmp(path, REALMCORE_PATH_INFO) == 0) {
		info_reply(rc, realm, status, body, len);
	} else if (strcmp(path, REALMCORE_PATH_REGISTER) == 0 ||
	           strcmp(path, REALMCORE_PATH_DELETE) == 0) {
		if (status == 200 && len == 0) {
			r->ok = 1;
		} else if (status == 200) {
			rcore_fail_realm(rc, realm, FK_OTHER, "its answer is not empty");
		} else {
			char reason[WHY_LEN];
			enum fkind k = rcore_describe(reason, sizeof(reason), status, body, len);
			rcore_fail_realm(rc, realm, k, "%s", reason);
		}
	} else if (strcmp(path, REALMCORE_PATH_RECOVER1) == 0) {
		rcore_recover1_reply(rc, realm, status, body, len);
	} else if (strcmp(path, REALMCORE_PATH_RECOVER2) == 0) {
		rcore_recover2_reply(rc, realm, status, body, len);
	} else if (strcmp(path, REALMCORE_PATH_RECOVER3) == 0) {
		rcore_recover3_reply(rc, realm, status, body, len);
	}
	/* a group member lost during recover2/3: ask the next one */
	if (rc->phase == PH_R23 && r->st == RS_FAILED)
		(void)rcore_fallback(rc);
	advance(rc);
	return SV_OK;
}

int realmcore_reply(struct realmcore *rc, size_t realm, long status, const uint8_t *body,
                    size_t len)
{
	static const uint8_t empty[1];
	return handle(rc, realm, status, body != NULL ? body : empty, body != NULL ? len : 0, NULL);
}

int realmcore_transport_error(struct realmcore *rc, size_t realm, const char *why)
{
	return handle(rc, realm, 0, NULL, 0, why != NULL && why[0] ? why : "transport error");
}
