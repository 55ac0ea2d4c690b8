/*
 * The realm side of threshold realms: docs/realms.md ("Messages") is the contract; enclave/realm.h
 * has the record layout and how guesses are charged.
 */
#include "enclave/realm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "common/msg.h"
#include "common/recordkey.h"
#include "crypto/realm_wire.h"
#include "enclave/access.h"
#include "enclave/audit.h"
#include "enclave/idlimit.h"
#include "enclave/session.h"
#include "enclave/store.h"
#include "enclave/token.h"
#include "enclave/vault.h"

/* ---- the record (realm.h) ---- */

#define REC_FORMAT    1
#define REC_OFF_SHAPE 1 /* t, n, index */
#define REC_OFF_VER   4
#define REC_OFF_KSF   (REC_OFF_VER + REALM_VERSION_LEN)
#define REC_OFF_SHARE 32
#define REC_OFF_CHECK (REC_OFF_SHARE + REALM_SCALAR_LEN)
#define REC_OFF_TAG   (REC_OFF_CHECK + REALM_KEY_LEN)
#define REC_OFF_ENC   (REC_OFF_TAG + REALM_KEY_LEN)
#define REC_OFF_MAC   (REC_OFF_ENC + REALM_SCALAR_LEN)

_Static_assert(REC_OFF_KSF + KSF_PARAMS_LEN <= REC_OFF_SHARE, "record header overlaps k_i");
_Static_assert(REC_OFF_MAC + REALM_KEY_LEN == STORE_RECORD_LEN, "a realm record fills a record");
_Static_assert(REALM_MAX *REALM_ELEMENT_LEN + REALM_CT_MAX <= STORE_BLOB_MAX,
               "commitments and ciphertext fit a blob");

/* A record as read from the store (pointers into the store's view or a rescue copy). */
struct rec {
	const uint8_t *raw; /* STORE_RECORD_LEN */
	uint8_t t, n, index;
	struct ksf_params ksf;
	const uint8_t *commitments; /* n * 32 */
	const uint8_t *ct;
	size_t ct_len;
};

/* 0, or SV_ERR_STATE for bytes that are not a realm record (a corrupt or foreign record). */
static int rec_parse(struct rec *r, const uint8_t *raw, const uint8_t *blob, size_t blob_len)
{
	memset(r, 0, sizeof(*r));
	if (raw == NULL || raw[0] != REC_FORMAT)
		return SV_ERR_STATE;
	r->raw = raw;
	r->t = raw[REC_OFF_SHAPE];
	r->n = raw[REC_OFF_SHAPE + 1];
	r->index = raw[REC_OFF_SHAPE + 2];
	if (r->t < 1 || r->t > r->n || r->n > REALM_MAX || r->index < 1 || r->index > r->n ||
	    ksf_params_decode(&r->ksf, raw + REC_OFF_KSF, KSF_PARAMS_LEN) != 0)
		return SV_ERR_STATE;
	size_t cl = (size_t)r->n * REALM_ELEMENT_LEN;
	if (blob == NULL || blob_len < cl + REALM_CT_MIN || blob_len - cl > REALM_CT_MAX)
		return SV_ERR_STATE;
	r->commitments = blob;
	r->ct = blob + cl;
	r->ct_len = blob_len - cl;
	return SV_OK;
}

/* ---- the module ---- */

struct realm_counters {
	uint64_t registrations, evaluations, last_guesses, recoveries, proofs_failed, deletions,
	    bad_requests, not_found, destroyed, stale, out_of_order, busy;
};

struct realm_srv {
	struct vault *vault;
	struct vault_shared sh;
	uint8_t id[REALM_ID_LEN];
	uint8_t *rec;  /* sodium_malloc'd scratch: a record being built (secrets) */
	uint8_t *blob; /* STORE_BLOB_MAX: commitments and ciphertext being built */
	const uint8_t *tok;
	size_t tok_len;
	struct realm_counters c;
};

int realm_srv_new(struct realm_srv **out, struct vault *v, const uint8_t realm_id[REALM_ID_LEN])
{
	struct realm_srv *r;
	*out = NULL;
	if (v == NULL || sodium_init() < 0)
		return SV_ERR_INTERNAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return SV_ERR_NOMEM;
	r->vault = v;
	vault_shared(v, &r->sh);
	memcpy(r->id, realm_id, REALM_ID_LEN);
	r->rec = sodium_malloc(STORE_RECORD_LEN);
	r->blob = malloc(STORE_BLOB_MAX);
	if (r->rec == NULL || r->blob == NULL) {
		realm_srv_free(r);
		return SV_ERR_NOMEM;
	}
	*out = r;
	return SV_OK;
}

void realm_srv_free(struct realm_srv *r)
{
	if (r == NULL)
		return;
	if (r->rec != NULL)
		sodium_free(r->rec);
	free(r->blob);
	free(r);
}

/* ---- replies ---- */

static int reply_bad(struct realm_srv *r, struct sv_buf *reply, const char *route, const char *why)
{
	char msg[256];
	r->c.bad_requests++;
	snprintf(msg, sizeof(msg), "%s: %s", route, why != NULL ? why : "malformed request");
	return msg_reply_text(reply, SV_STATUS_BAD_REQUEST, msg);
}

static int reply_busy(struct realm_srv *r, struct sv_buf *reply)
{
	r->c.busy++;
	return msg_reply_text(
	    reply, SV_STATUS_BUSY,
	    "the realm is busy (its pending-session table is full, or its NV-write "
	    "budget allows no forced flush now): this request changed nothing (no "
	    "guess was charged), try again later");
}

static int reply_not_found(struct realm_srv *r, struct sv_buf *reply)
{
	r->c.not_found++;
	return msg_reply(reply, SV_STATUS_NOT_FOUND, NULL, 0);
}

static int reply_destroyed(struct realm_srv *r, struct sv_buf *reply)
{
	r->c.destroyed++;
	return msg_reply(reply, SV_STATUS_LOCKED, NULL, 0);
}

static int reply_out_of_order(struct realm_srv *r, struct sv_buf *reply, const char *text)
{
	r->c.out_of_order++;
	return msg_reply_text(reply, SV_STATUS_OUT_OF_ORDER, text);
}

/* 500 for a record this module cannot read (a corrupt store would have been refused at start:
 * this is a record put under a realm key by something else). Nothing changes. */
static int reply_unreadable(struct sv_buf *reply)
{
	return msg_reply_text(reply, SV_STATUS_INTERNAL,
	                      "the realm record of this identifier is not readable; delete it and "
	                      "register again");
}

/* ---- helpers ---- */

/* The access check and the realm record key of the request's uid: 1 and key[0..*key_len), or 0
 * with the refusal in reply (nothing changed). */
static int realm_key(struct realm_srv *r, unsigned all, unsigned any, const uint8_t *uid,
                     size_t uid_len, uint8_t key[static STORE_ID_MAX], size_t *key_len,
                     const char *route, struct sv_buf *reply)
{
	uint8_t v1[STORE_ID_MAX];
	size_t v1_len = 0;
	const char *why = NULL;
	int st = access_request(r->sh.access, r->tok, r->tok_len, all, any, uid, uid_len, v1,
	                        &v1_len, &why);
	if (st == SV_STATUS_BAD_REQUEST) {
		(void)reply_bad(r, reply, route, why);
		return 0;
	}
	if (st != SV_OK) {
		(void)msg_reply_text(reply, (uint8_t)st, why);
		return 0;
	}
	if (record_key_realm(v1, v1_len, key, STORE_ID_MAX, key_len) != 0) {
		(void)reply_bad(r, reply, route,
		                "the identifier is too long for a realm record: its record key "
		                "(tenant name and identifier) may have at most 254 bytes");
		return 0;
	}
	return 1;
}

static void record_hash(uint8_t out[SESSION_RECORD_HASH_LEN], const uint8_t *record)
{
	(void)crypto_generichash(out, SESSION_RECORD_HASH_LEN, record, STORE_RECORD_LEN, NULL, 0);
}

/* The audit record of a change just staged for the realm record key (enclave/audit.h): always
 * one of the realm kinds (AUDIT_REALM_*, common/audit.h), so that the trail tells a realm's
 * share from a /v1 record. */
static int audit(uint8_t kind, const uint8_t *key, size_t key_len, unsigned left, unsigned limit,
                 int restored, int at_write)
{
	struct audit_note n = {.kind = kind,
	                       .attempts_left = (uint8_t)left,
	                       .guess_limit = (uint8_t)limit,
	                       .restored = (uint8_t)(restored != 0),
	                       .at_write = at_write};
	return audit_note(&n, key, key_len);
}

static void hex(char *out, const uint8_t *in, size_t n)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- register ---- */

static int handle_register(struct realm_srv *r, const uint8_t *req, size_t len,
                           struct sv_buf *reply)
{
	static const char route[] = "realm/register";
	struct realm_register_req q;
	struct store_user_view u;
	uint8_t key[STORE_ID_MAX];
	size_t key_len = 0;
	const char *why = NULL;
	unsigned limit;
	int err;

	if (realm_wire_register_decode(&q, req, len, &why) != 0)
		return reply_bad(r, reply, route, why);
	if (sodium_memcmp(q.realm_id, r->id, REALM_ID_LEN) != 0) {
		char msg[160], want[2 * REALM_ID_LEN + 1], mine[2 * REALM_ID_LEN + 1];
		hex(want, q.realm_id, REALM_ID_LEN);
		hex(mine, r->id, REALM_ID_LEN);
		snprintf(msg, sizeof(msg), "this registration is for realm %s; this realm is %s",
		         want, mine);
		return reply_bad(r, reply, route, msg);
	}
	limit = q.guess_limit == 0 ? r->sh.pol->default_guess_limit : q.guess_limit;
	if (limit < 1 || limit > r->sh.pol->max_guess_limit)
		return reply_bad(r, reply, route,
		                 "guess limit above this realm's max-guess-limit (see its policy)");
	if (!realm_key(r, TOKEN_SCOPE_REGISTER, 0, q.uid, q.uid_len, key, &key_len, route, reply))
		return SV_OK;
	err = store_lookup(r->sh.store, key, key_len, &u);
	if (err != 0 && err != SV_ERR_NOTFOUND)
		return err;
	if (err == SV_ERR_NOTFOUND && r->sh.max_users != 0 &&
	    store_records(r->sh.store) >= r->sh.max_users)
		return msg_reply_text(reply, SV_STATUS_FULL,
		                      "the realm is full: it holds as many records as its operator "
		                      "allows (max-users); this registration changed nothing");

	uint8_t *rec = r->rec;
	size_t cl = (size_t)q.n * REALM_ELEMENT_LEN;
	memset(rec, 0, STORE_RECORD_LEN);
	rec[0] = REC_FORMAT;
	rec[REC_OFF_SHAPE] = q.t;
	rec[REC_OFF_SHAPE + 1] = q.n;
	rec[REC_OFF_SHAPE + 2] = q.index;
	memcpy(rec + REC_OFF_VER, q.version, REALM_VERSION_LEN);
	if ((err = ksf_params_encode(rec + REC_OFF_KSF, &q.ksf)) != 0)
		return err; /* the decoder checked the profile */
	memcpy(rec + REC_OFF_SHARE, q.oprf_share, REALM_SCALAR_LEN);
	memcpy(rec + REC_OFF_CHECK, q.unlock_check, REALM_KEY_LEN);
	memcpy(rec + REC_OFF_TAG, q.unlock_tag, REALM_KEY_LEN);
	memcpy(rec + REC_OFF_ENC, q.enc_share, REALM_SCALAR_LEN);
	memcpy(rec + REC_OFF_MAC, q.share_mac, REALM_KEY_LEN);
	memcpy(r->blob, q.commitments, cl);
	memcpy(r->blob + cl, q.ct, q.ct_len);
	err = store_put_user(r->sh.store, key, key_len, rec, r->blob, cl + q.ct_len, limit);
	sodium_memzero(rec, STORE_RECORD_LEN);
	if (err == SV_ERR_BUSY)
		return reply_busy(r, reply);
	if (err != 0)
		return err;
	if ((err = audit(AUDIT_REALM_REGISTER, key, key_len, 0, limit, 0, 0)) != 0)
		return err;
	/* a last-guess copy of the record this one replaces must never come back */
	vault_drop_rescues(r->vault, key, key_len);
	r->c.registrations++;
	return msg_reply(reply, SV_STATUS_OK, NULL, 0);
}

/* ---- recover1, status, delete: the identifier only ---- */

static int handle_recover1(struct realm_srv *r, const uint8_t *req, size_t len,
                           struct sv_buf *reply)
{
	static const char route[] = "realm/recover1";
	struct realm_uid_req q;
	struct store_user_view u;
	struct rec rc;
	uint8_t key[STORE_ID_MAX];
	size_t key_len = 0;
	const char *why = NULL;
	int err;

	if (realm_wire_uid_decode(&q, req, len, &why) != 0)
		return reply_bad(r, reply, route, why);
	if (!realm_key(r, TOKEN_SCOPE_RECOVER, 0, q.uid, q.uid_len, key, &key_len, route, reply))
		return SV_OK;
	err = store_lookup(r->sh.store, key, key_len, &u);
	if (err == SV_ERR_NOTFOUND)
		return reply_not_found(r, reply);
	if (err != 0)
		return err;
	if (u.destroyed)
		return reply_destroyed(r, reply);
	if (rec_parse(&rc, u.record, u.blob, u.blob_len) != 0)
		return reply_unreadable(reply);
	struct realm_recover1_reply a = {.version = rc.raw + REC_OFF_VER,
	                                 .ksf = rc.ksf,
	                                 .t = rc.t,
	                                 .n = rc.n,
	                                 .index = rc.index,
	                                 .attempts_left = (uint8_t)(u.guess_limit - u.guesses_used),
	                                 .unlock_check = rc.raw + REC_OFF_CHECK,
	                                 .commitments = rc.commitments};
	sv_buf_reset(reply);
	if ((err = sv_buf_put_u8(reply, SV_STATUS_OK)) != 0)
		return err;
	return realm_wire_recover1_reply_encode(reply, &a);
}

static int handle_status(struct realm_srv *r, const uint8_t *req, size_t len, struct sv_buf *reply)
{
	static const char route[] = "realm/status";
	struct realm_uid_req q;
	struct store_user_view u;
	struct rec rc;
	struct realm_status_reply a = {.state = REALM_STATE_NONE};
	uint8_t key[STORE_ID_MAX];
	size_t key_len = 0;
	const char *why = NULL;
	int err;

	if (realm_wire_uid_decode(&q, req, len, &why) != 0)
		return reply_bad(r, reply, route, why);
	/* a token of any scope may look */
	if (!realm_key(r, 0, TOKEN_SCOPE_ALL, q.uid, q.uid_len, key, &key_len, route, reply))
		return SV_OK;
	err = store_lookup(r->sh.store, key, key_len, &u);
	if (err != 0 && err != SV_ERR_NOTFOUND)
		return err;
	if (err == 0 && u.destroyed) {
		a.state = REALM_STATE_DESTROYED;
	} else if (err == 0) {
		if (rec_parse(&rc, u.record, u.blob, u.blob_len) != 0)
			return reply_unreadable(reply);
		a = (struct realm_status_reply){.state = REALM_STATE_REGISTERED,
		                                .version = rc.raw + REC_OFF_VER,
		                                .t = rc.t,
		                                .n = rc.n,
		                                .index = rc.index,
		                                .guess_limit = (uint8_t)u.guess_limit,
		                                .attempts_left =
		                                    (uint8_t)(u.guess_limit - u.guesses_used)};
	}
	sv_buf_reset(reply);
	if ((err = sv_buf_put_u8(reply, SV_STATUS_OK)) != 0)
		return err;
	return realm_wire_status_reply_encode(reply, &a);
}

static int handle_delete(struct realm_srv *r, const uint8_t *req, size_t len, struct sv_buf *reply)
{
	static const char route[] = "realm/delete";
	struct realm_uid_req q;
	uint8_t key[STORE_ID_MAX];
	size_t key_len = 0;
	const char *why = NULL;
	int err;

	if (realm_wire_uid_decode(&q, req, len, &why) != 0)
		return reply_bad(r, reply, route, why);
	if (!realm_key(r, TOKEN_SCOPE_DELETE, 0, q.uid, q.uid_len, key, &key_len, route, reply))
		return SV_OK;
	err = store_delete_user(r->sh.store, key, key_len);
	if (err == SV_ERR_BUSY)
		return reply_busy(r,
		                  reply); /* nothing deleted: a pending last guess keeps its copy */
	if (err != 0 && err != SV_ERR_NOTFOUND)
		return err;
	/* a pending last guess's copy must never bring the deleted record back */
	vault_drop_rescues(r->vault, key, key_len);
	if (err == SV_ERR_NOTFOUND)
		return msg_reply(reply, SV_STATUS_OK, NULL, 0); /* idempotent: nothing to stage */
	if ((err = audit(AUDIT_REALM_DELETED, key, key_len, 0, 0, 0, 0)) != 0)
		return err;
	r->c.deletions++;
	return msg_reply(reply, SV_STATUS_OK, NULL, 0);
}

/* ---- recover2: charge one guess, evaluate with proof ---- */

/* 429: the identifier is over its rate. Body: u32 seconds (Retry-After), then a text. */
static int reply_too_many(struct realm_srv *r, struct sv_buf *reply, unsigned retry_s)
{
	char msg[256];
	uint8_t secs[4] = {(uint8_t)(retry_s >> 24), (uint8_t)(retry_s >> 16),
	                   (uint8_t)(retry_s >> 8), (uint8_t)retry_s};
	int n = snprintf(msg, sizeof(msg),
	                 "realm/recover2: too many recoveries for this identifier (this realm "
	                 "allows %u a minute, %u at once); nothing was charged: retry in %u s",
	                 r->sh.pol->login_rate_per_id, r->sh.pol->login_burst_per_id, retry_s);
	int err = msg_reply(reply, SV_STATUS_TOO_MANY, secs, sizeof(secs));
	if (err == 0 && n > 0)
		err = sv_buf_put(reply, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
	return err;
}

static int handle_recover2(struct realm_srv *r, const uint8_t *req, size_t len, uint64_t now_ms,
                           struct sv_buf *reply)
{
	static const char route[] = "realm/recover2";
	struct realm_recover2_req q;
	struct store_user_view u;
	struct rec rc;
	struct session *s = NULL;
	struct session_rescue *rs = NULL;
	uint8_t key[STORE_ID_MAX], out[REALM_RECOVER2_REPLY_LEN];
	size_t key_len = 0, rate_slot;
	const char *why = NULL;
	unsigned retry_s, left = 0, limit;
	int err;

	if (realm_wire_recover2_decode(&q, req, len, &why) != 0)
		return reply_bad(r, reply, route, why);
	if (!realm_key(r, TOKEN_SCOPE_RECOVER, 0, q.uid, q.uid_len, key, &key_len, route, reply))
		return SV_OK;
	/* the per-identifier rate, after the token and before anything is charged */
	const struct idlimit_who who = {.id = key, .id_len = key_len};
	if (idlimit_check(r->sh.idl, &who, now_ms, &rate_slot, &retry_s) != 0)
		return reply_too_many(r, reply, retry_s);
	err = store_lookup(r->sh.store, key, key_len, &u);
	if (err == SV_ERR_NOTFOUND)
		return reply_not_found(r, reply);
	if (err != 0)
		return err;
	if (u.destroyed)
		return reply_destroyed(r, reply);
	if (rec_parse(&rc, u.record, u.blob, u.blob_len) != 0)
		return reply_unreadable(reply);
	if (sodium_memcmp(rc.raw + REC_OFF_VER, q.version, REALM_VERSION_LEN) != 0) {
		r->c.stale++;
		return msg_reply_text(
		    reply, SV_STATUS_OUT_OF_ORDER,
		    "realm/recover2: this realm holds another registration version "
		    "for this identifier (stale or newer); nothing was charged");
	}
	limit = u.guess_limit;
	/* the last allowed guess needs a rescue slot for the copy its charge destroys */
	if (session_open(r->sh.sessions, now_ms, &s) != 0 ||
	    (u.guesses_used + 1 >= limit &&
	     !session_rescue_available(r->sh.sessions, key, key_len))) {
		if (s != NULL)
			session_close(r->sh.sessions, s);
		return reply_busy(r, reply);
	}
	s->phase = SESSION_REALM;
	s->id_len = (uint8_t)key_len;
	memcpy(s->id, key, key_len);
	record_hash(s->record_hash, u.record);
	/* the evaluation before the charge (as KE2 before it at login/start): an error leaves
	 * nothing staged. It leaves only after the caller's commit. */
	err =
	    realm_evaluate(out + REALM_SESSION_LEN, out + REALM_SESSION_LEN + REALM_ELEMENT_LEN,
	                   rc.raw + REC_OFF_SHARE,
	                   rc.commitments + (size_t)(rc.index - 1) * REALM_ELEMENT_LEN, q.blinded);
	if (err != 0) {
		session_close(r->sh.sessions, s);
		if (err == SV_ERR_CRYPTO)
			return reply_bad(r, reply, route, "the blinded element is not valid");
		return err;
	}
	if (u.guesses_used + 1 >= limit) {
		if ((err = session_rescue_attach(r->sh.sessions, s, &rs)) != 0)
			goto fail;
		memcpy(rs->record, u.record, STORE_RECORD_LEN);
		memcpy(rs->blob, u.blob, u.blob_len);
		rs->blob_len = (uint16_t)u.blob_len;
		rs->guess_limit = (uint8_t)limit;
	}
	/* Durable before the reply leaves: the caller commits, then sends. */
	if ((err = store_charge_guess(r->sh.store, key, key_len, &left)) != 0)
		goto fail;
	if ((err = audit(AUDIT_REALM_GUESS, key, key_len, left, limit, 0, 0)) != 0 ||
	    (left == 0 && (err = audit(AUDIT_REALM_DESTROYED, key, key_len, 0, limit, 0, 0)) != 0))
		return err;
	if (left == 0)
		r->c.last_guesses++;
	r->c.evaluations++;
	idlimit_charge(r->sh.idl, &who, rate_slot, now_ms);
	s->attempts_left = (uint8_t)left;
	memcpy(out, s->sid, SESSION_ID_LEN);
	out[REALM_RECOVER2_REPLY_LEN - 1] = (uint8_t)left;
	err = msg_reply(reply, SV_STATUS_OK, out, sizeof(out));
	sodium_memzero(out, sizeof(out));
	return err;
fail:
	session_close(r->sh.sessions, s);
	if (err == SV_ERR_BUSY)
		return reply_busy(r, reply);
	if (err == SV_ERR_LOCKED)
		return reply_destroyed(r, reply);
	return err;
}

/* ---- recover3: prove the tag, reset, release ---- */

static int handle_recover3(struct realm_srv *r, const uint8_t *req, size_t len, uint64_t now_ms,
                           struct sv_buf *reply)
{
	static const char route[] = "realm/recover3";
	struct realm_recover3_req q;
	struct store_user_view u;
	struct rec rc;
	struct session *s;
	struct session_rescue *rs;
	uint8_t h[SESSION_RECORD_HASH_LEN], release[REALM_RELEASE_LEN];
	const char *why = NULL;
	int restore = 0, err;

	if (realm_wire_recover3_decode(&q, req, len, &why) != 0)
		return reply_bad(r, reply, route, why);
	s = session_find(r->sh.sessions, q.session_id, now_ms);
	if (s == NULL || s->phase != SESSION_REALM)
		return reply_out_of_order(
		    r, reply,
		    session_other_run(r->sh.sessions, q.session_id)
		        ? "realm/recover3: this session began before the realm restarted and ended "
		          "with that run (its guess stays charged): start again with recover2"
		        : "realm/recover3: unknown, expired or used session: start again with "
		          "recover2");
	/* the token must be for the user whose session this is; refused, the session stays */
	uint8_t v1[STORE_ID_MAX];
	size_t v1_len = (size_t)s->id_len - 1;
	memcpy(v1, s->id + 1, v1_len);
	err = access_request(r->sh.access, r->tok, r->tok_len, TOKEN_SCOPE_RECOVER, 0, NULL, 0, v1,
	                     &v1_len, &why);
	if (err != SV_OK)
		return msg_reply_text(reply, (uint8_t)err, why);
	/* From here the session is consumed whatever the answer. */
	rs = session_rescue_of(r->sh.sessions, s);
	err = store_lookup(r->sh.store, s->id, s->id_len, &u);
	if (err != 0 && err != SV_ERR_NOTFOUND) {
		session_close(r->sh.sessions, s);
		return err;
	}
	if (err == 0 && !u.destroyed) {
		record_hash(h, u.record);
		if (sodium_memcmp(h, s->record_hash, sizeof(h)) != 0)
			err = SV_ERR_NOTFOUND; /* replaced since recover2 */
		else
			err = rec_parse(&rc, u.record, u.blob, u.blob_len);
	} else if (err == 0 && rs != NULL) {
		restore = 1; /* this session's own last guess destroyed it */
		err = rec_parse(&rc, rs->record, rs->blob, rs->blob_len);
	} else if (err == 0) {
		session_close(r->sh.sessions, s);
		return reply_destroyed(r, reply);
	}
	if (err != 0) {
		session_close(r->sh.sessions, s);
		if (err == SV_ERR_STATE)
			return reply_unreadable(reply);
		return reply_out_of_order(
		    r, reply,
		    "realm/recover3: the registration was replaced or deleted "
		    "since recover2: start again with recover1");
	}
	if (realm_tag_check(rc.raw + REC_OFF_TAG, s->sid, q.tag_proof) != 0) {
		uint8_t left = s->attempts_left;
		session_close(r->sh.sessions, s);
		r->c.proofs_failed++;
		if (left == 0)
			return msg_reply(reply, SV_STATUS_LOCKED, NULL, 0);
		return msg_reply(reply, SV_STATUS_AUTH_FAILED, &left, 1);
	}
	/* The answer first (only into the reply buffer: it leaves after the commit), while the
	 * record's bytes are still where the view points. */
	if ((err = realm_release_seal(release, rc.raw + REC_OFF_TAG, s->sid, rc.raw + REC_OFF_ENC,
	                              rc.raw + REC_OFF_MAC)) != 0)
		goto out;
	struct realm_recover3_reply a = {.release = release, .ct = rc.ct, .ct_len = rc.ct_len};
	sv_buf_reset(reply);
	if ((err = sv_buf_put_u8(reply, SV_STATUS_OK)) != 0 ||
	    (err = realm_wire_recover3_reply_encode(reply, &a)) != 0)
		goto out;
	if (restore) {
		/* the user's own last guess was right: the record must come back even when the
		 * NV-write budget is short (as at /v1 login/finish) */
		store_set_flush_allowed(r->sh.store, 1);
		err = store_put_user(r->sh.store, s->id, s->id_len, rs->record, rs->blob,
		                     rs->blob_len, rs->guess_limit);
	} else {
		err = store_reset_guesses(r->sh.store, s->id, s->id_len);
	}
	if (err == SV_ERR_BUSY) {
		err = reply_busy(r, reply); /* nothing staged; the guess stays charged */
		goto out;
	}
	if (err == 0)
		err = audit(AUDIT_REALM_RECOVERED, s->id, s->id_len, 0, 0, restore, !restore);
	if (err == 0)
		r->c.recoveries++;
out:
	sodium_memzero(release, sizeof(release));
	session_close(r->sh.sessions, s);
	return err;
}

/* ---- the module's entry points ---- */

int realm_srv_handle(struct realm_srv *r, uint16_t type, const uint8_t *tok, size_t tok_len,
                     const uint8_t *req, size_t req_len, uint64_t now_ms, struct sv_buf *reply)
{
	int err;
	r->tok = tok;
	r->tok_len = tok_len;
	switch (type) {
	case SV_MSG_REALM_REGISTER: err = handle_register(r, req, req_len, reply); break;
	case SV_MSG_REALM_RECOVER1: err = handle_recover1(r, req, req_len, reply); break;
	case SV_MSG_REALM_RECOVER2: err = handle_recover2(r, req, req_len, now_ms, reply); break;
	case SV_MSG_REALM_RECOVER3: err = handle_recover3(r, req, req_len, now_ms, reply); break;
	case SV_MSG_REALM_DELETE: err = handle_delete(r, req, req_len, reply); break;
	case SV_MSG_REALM_STATUS: err = handle_status(r, req, req_len, reply); break;
	default: err = reply_bad(r, reply, "request", "not a realm request type"); break;
	}
	r->tok = NULL;
	r->tok_len = 0;
	return err;
}

int realm_srv_metrics(const struct realm_srv *r, struct sv_buf *out)
{
	const struct {
		const char *name, *help;
		uint64_t value;
	} m[] = {
	    {"registrations_total", "Realm registrations acknowledged.", r->c.registrations},
	    {"evaluations_total", "recover2 evaluations, each charged one guess.",
	     r->c.evaluations},
	    {"last_guesses_total", "recover2 charges that used a registration's last guess.",
	     r->c.last_guesses},
	    {"recoveries_total", "recover3 releases after a right tag proof.", r->c.recoveries},
	    {"proofs_failed_total", "recover3 tag proofs that were wrong (403 or 410).",
	     r->c.proofs_failed},
	    {"deletions_total", "Realm records deleted by their user.", r->c.deletions},
	    {"bad_requests_total", "Malformed /v2/realm/ requests.", r->c.bad_requests},
	    {"not_found_total", "recover1 and recover2 for identifiers with no record (404).",
	     r->c.not_found},
	    {"destroyed_total", "Requests for destroyed records (410).", r->c.destroyed},
	    {"stale_versions_total", "recover2 naming another registration version (409).",
	     r->c.stale},
	    {"out_of_order_total",
	     "recover3 for unknown, expired or used sessions, or replaced records (409).",
	     r->c.out_of_order},
	    {"busy_total", "Realm requests answered busy, changing nothing.", r->c.busy},
	};
	char line[512];
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		int n = snprintf(line, sizeof(line),
		                 "# HELP sealvault_realm_%s %s\n# TYPE sealvault_realm_%s counter\n"
		                 "sealvault_realm_%s %llu\n",
		                 m[i].name, m[i].help, m[i].name, m[i].name,
		                 (unsigned long long)m[i].value);
		if (n < 0 || (size_t)n >= sizeof(line))
			return SV_ERR_INTERNAL;
		int err = sv_buf_put(out, line, (size_t)n);
		if (err != 0)
			return err;
	}
	return SV_OK;
}
