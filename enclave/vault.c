/*
 * The vault's request handlers (docs/protocol.md "HTTP API"; guess accounting and what an
 * unauthenticated client learns: docs/threat-model.md).
 *
 * Guess accounting, exactly: a record with limit N allows N guesses, each of which may succeed.
 * login/start charges one guess before KE2 leaves (store_charge_guess, committed by the caller
 * before the reply is sent). The charge that uses the N-th guess destroys the record in the store
 * at once (zeroised, tombstoned); the login holding that last guess keeps a copy of the record and
 * blob in a locked rescue slot, and only a valid KE3 (and op MAC) on that login writes the record
 * back (guesses 0). A bad KE3, expiry or a restart loses the copy: the record is gone for good.
 */
#include "enclave/vault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "common/msg.h"
#include "crypto/hkdf.h"
#include "crypto/opaque.h"
#include "enclave/access.h"
#include "enclave/audit.h"
#include "enclave/idlimit.h"
#include "enclave/phantom.h"
#include "enclave/session.h"
#include "enclave/store.h"
#include "enclave/vaultreq.h"

#define INFO_MAC        "sealvault op mac"
#define INFO_SEAL       "sealvault recover seal"
#define SEAL_KEY_LEN    crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define SEAL_NONCE_LEN  crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEAL_TAG_LEN    crypto_aead_xchacha20poly1305_ietf_ABYTES
#define LOGIN_REPLY_LEN (SESSION_ID_LEN + OPAQUE_KE2_LEN + 1)

struct vault_counters {
	uint64_t registrations, login_starts, logins_ok, logins_failed, last_guesses, recoveries,
	    deletions, password_changes, busy, bad_requests, out_of_order, expired, earlier_run,
	    full;
};

/* The identifier tables of the per-identifier login rate hold twice the pending-login table,
 * at least this many. */
#define IDLIMIT_MIN_ENTRIES 1024

struct vault {
	struct store *store;
	struct sv_vault_policy pol;
	uint8_t *context;
	struct opaque_params params;
	struct opaque_server_key *key; /* sodium_malloc'd */
	uint8_t *fake_record;          /* sodium_malloc'd scratch, STORE_RECORD_LEN */
	struct session_table *sessions;
	struct phantom_table *phantoms;
	struct idlimit *idl; /* the per-identifier login rate */
	struct vault_counters c;
	struct access *access; /* NULL: no check, the identifier is the key (unit tests) */
	const uint8_t *tok;    /* the request's access token, for the duration of vault_handle */
	size_t tok_len;
	uint64_t max_users; /* 0: no limit */
	char max_users_source[16];
};

/* ---- replies ---- */

static int reply_bad(struct vault *v, struct sv_buf *reply, const char *route, const char *why)
{
	char msg[256];
	v->c.bad_requests++;
	snprintf(msg, sizeof(msg), "%s: %s", route, why != NULL ? why : "malformed request");
	return msg_reply_text(reply, SV_STATUS_BAD_REQUEST, msg);
}

static int reply_out_of_order(struct vault *v, struct sv_buf *reply, const char *text)
{
	v->c.out_of_order++;
	return msg_reply_text(reply, SV_STATUS_OUT_OF_ORDER, text);
}

/* A KE3 or change-password/finish for a login begun before the enclave restarted: its state
 * died with that run. 503, not 409: the client did nothing out of order and only has to start
 * again (the guess its KE2 charged stays charged; a correct password repays it). */
static int reply_earlier_run(struct vault *v, struct sv_buf *reply, const char *route)
{
	char msg[256];
	v->c.earlier_run++;
	snprintf(msg, sizeof(msg),
	         "%s: this login began before the vault restarted and its state ended with that "
	         "run; nothing changed here: start again with login/start",
	         route);
	return msg_reply_text(reply, SV_STATUS_BUSY, msg);
}

static int reply_busy(struct vault *v, struct sv_buf *reply)
{
	v->c.busy++;
	return msg_reply_text(
	    reply, SV_STATUS_BUSY,
	    "the vault is busy (its pending-login table is full, or its NV-write budget allows no "
	    "forced flush now): this request changed nothing (no guess was charged), try again "
	    "later");
}

/* 429: the identifier is over its login rate. Body: u32 seconds (Retry-After), then a text. */
static int reply_too_many(struct vault *v, struct sv_buf *reply, unsigned retry_s)
{
	char msg[256];
	uint8_t secs[4] = {(uint8_t)(retry_s >> 24), (uint8_t)(retry_s >> 16),
	                   (uint8_t)(retry_s >> 8), (uint8_t)retry_s};
	int n = snprintf(msg, sizeof(msg),
	                 "login/start: too many logins for this identifier (this vault allows %u "
	                 "a minute, %u at once); nothing was charged: retry in %u s",
	                 v->pol.login_rate_per_id, v->pol.login_burst_per_id, retry_s);
	int err = msg_reply(reply, SV_STATUS_TOO_MANY, secs, sizeof(secs));
	if (err == 0 && n > 0)
		err = sv_buf_put(reply, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
	return err;
}

/* The vault holds max-users records: a new identifier is refused, nothing changes. */
static int reply_full(struct vault *v, struct sv_buf *reply)
{
	v->c.full++;
	return msg_reply_text(reply, SV_STATUS_FULL,
	                      "the vault is full: it holds as many users as its operator allows "
	                      "(max-users); this registration changed nothing; logins, password "
	                      "changes and deletions still work");
}

/* 1 when registering a new identifier would exceed max-users. */
static int vault_full(const struct vault *v)
{
	return v->max_users != 0 && store_records(v->store) >= v->max_users;
}

/* A failed login: 403 with the attempts left, or 410 when none are left (record destroyed). */
static int reply_failed(struct vault *v, struct sv_buf *reply, uint8_t attempts_left)
{
	v->c.logins_failed++;
	if (attempts_left == 0)
		return msg_reply(reply, SV_STATUS_LOCKED, NULL, 0);
	return msg_reply(reply, SV_STATUS_AUTH_FAILED, &attempts_left, 1);
}

/* ---- helpers ---- */

static void record_hash(uint8_t out[SESSION_RECORD_HASH_LEN], const uint8_t *record)
{
	(void)crypto_generichash(out, SESSION_RECORD_HASH_LEN, record, STORE_RECORD_LEN, NULL, 0);
}

static int same_id(const struct session *s, const uint8_t *id, size_t id_len)
{
	return s->id_len == id_len && memcmp(s->id, id, id_len) == 0;
}

static void drop_rescue_for(struct session_table *t, struct session *s, void *arg)
{
	const struct vaultreq_register_start *who = arg; /* only id, id_len are used */
	if (s->rescue != SESSION_NO_RESCUE && same_id(s, who->id, who->id_len))
		session_close(t, s);
}

/* After a new record was put for id: a rescue copy of an older record must never come back. */
void vault_drop_rescues(struct vault *v, const uint8_t *id, size_t id_len)
{
	uint8_t copy[STORE_ID_MAX]; /* id may point into a session that gets closed */
	struct vaultreq_register_start who = {.id = copy, .id_len = id_len};
	if (session_rescue_count(v->sessions) == 0)
		return;
	memcpy(copy, id, id_len);
	session_foreach(v->sessions, drop_rescue_for, &who);
}

/* The audit record of a change just staged for id (enclave/audit.h): sent once it is durable. */
static int audit(uint8_t kind, const uint8_t *id, size_t id_len, unsigned left, unsigned limit,
                 int flag, int at_write)
{
	struct audit_note n = {.kind = kind,
	                       .attempts_left = (uint8_t)left,
	                       .guess_limit = (uint8_t)limit,
	                       .known = (kind == AUDIT_GUESS || kind == AUDIT_DESTROYED) && flag,
	                       .restored =
	                           (kind == AUDIT_RECOVERED || kind == AUDIT_LOGIN_RESET) && flag,
	                       .at_write = at_write};
	return audit_note(&n, id, id_len);
}

/* The access check of the request being handled (enclave/access.h), for an operation that
 * needs the scope bits all and one of any. 1: go on, with the record key of id[0..id_len) in
 * key (or, with id NULL, after checking that the token's user owns the record key key[0..
 * *key_len), a pending login's). 0: refused, the answer is in reply and nothing changed. */
static int access_ok(struct vault *v, unsigned all, unsigned any, const uint8_t *id, size_t id_len,
                     uint8_t key[static STORE_ID_MAX], size_t *key_len, const char *route,
                     struct sv_buf *reply)
{
	const char *why = NULL;
	int st =
	    access_request(v->access, v->tok, v->tok_len, all, any, id, id_len, key, key_len, &why);
	if (st == SV_OK)
		return 1;
	if (st == SV_STATUS_BAD_REQUEST)
		(void)reply_bad(v, reply, route, why);
	else
		(void)msg_reply_text(reply, (uint8_t)st, why);
	return 0;
}

/* 0 for a usable guess limit (0 means the policy default), with *out set. */
static int guess_limit_of(const struct vault *v, uint8_t requested, unsigned *out)
{
	unsigned l = requested == 0 ? v->pol.default_guess_limit : requested;
	if (l < 1 || l > v->pol.max_guess_limit)
		return SV_ERR_RANGE;
	*out = l;
	return SV_OK;
}

static int mac_check(const uint8_t session_key[OPAQUE_SESSION_KEY_LEN], const uint8_t *msg,
                     size_t len, const uint8_t mac[VAULTREQ_MAC_LEN])
{
	uint8_t key[64], want[HKDF_SHA512_LEN];
	int err = hkdf_sha512_expand(key, sizeof(key), session_key, OPAQUE_SESSION_KEY_LEN,
	                             (const uint8_t *)INFO_MAC, sizeof(INFO_MAC) - 1, NULL, 0);
	if (err == 0) {
		hkdf_hmac_sha512(want, key, sizeof(key), msg, len, NULL, 0);
		err = crypto_verify_64(want, mac) == 0 ? SV_OK : SV_ERR_AUTH;
	}
	sodium_memzero(key, sizeof(key));
	sodium_memzero(want, sizeof(want));
	return err;
}

/* Store errors that a client may see as an answer; anything else stops the process. */
static int store_status(int err)
{
	switch (err) {
	case SV_ERR_LOCKED: return SV_STATUS_LOCKED;
	case SV_ERR_EXISTS: return SV_STATUS_CONFLICT;
	case SV_ERR_BUSY: return SV_STATUS_BUSY;
	default: return -1;
	}
}

/* ---- register ---- */

static int handle_register_start(struct vault *v, const uint8_t *req, size_t len,
                                 struct sv_buf *reply)
{
	static const char route[] = "register/start";
	struct vaultreq_register_start r;
	struct store_user_view u;
	uint8_t resp[OPAQUE_REGISTRATION_RESPONSE_LEN];
	uint8_t key[STORE_ID_MAX];
	size_t key_len = 0;
	const char *why = NULL;
	int err;

	if (vaultreq_parse_register_start(&r, req, len, &why) != 0)
		return reply_bad(v, reply, route, why);
	if (!access_ok(v, TOKEN_SCOPE_REGISTER, 0, r.id, r.id_len, key, &key_len, route, reply))
		return SV_OK;
	err = store_lookup(v->store, key, key_len, &u);
	if (err == 0 && !u.destroyed)
		return msg_reply_text(
		    reply, SV_STATUS_CONFLICT,
		    "identifier already registered: log in to change its password");
	if (err != 0 && err != SV_ERR_NOTFOUND)
		return err;
	if (err == SV_ERR_NOTFOUND && vault_full(v))
		return reply_full(v, reply);
	err = opaque_server_registration_response(resp, r.request, v->key->pk,
	                                          store_secrets(v->store)->oprf_seed, key, key_len);
	if (err == SV_ERR_CRYPTO)
		return reply_bad(v, reply, route,
		                 "RegistrationRequest is not a valid group element");
	if (err != 0)
		return err;
	return msg_reply(reply, SV_STATUS_OK, resp, sizeof(resp));
}

static int handle_register_finish(struct vault *v, const uint8_t *req, size_t len,
                                  struct sv_buf *reply)
{
	static const char route[] = "register/finish";
	struct vaultreq_register_finish r;
	struct store_user_view u;
	uint8_t key[STORE_ID_MAX];
	size_t key_len = 0;
	const char *why = NULL;
	unsigned limit;
	int err;

	if (vaultreq_parse_register_finish(&r, req, len, &why) != 0)
		return reply_bad(v, reply, route, why);
	if (!access_ok(v, TOKEN_SCOPE_REGISTER, 0, r.id, r.id_len, key, &key_len, route, reply))
		return SV_OK;
	if (opaque_record_check(r.record, VAULTREQ_RECORD_LEN) != 0)
		return reply_bad(v, reply, route,
		                 "RegistrationRecord carries an invalid client public key");
	if (guess_limit_of(v, r.guess_limit, &limit) != 0)
		return reply_bad(v, reply, route,
		                 "guess limit above this vault's maximum (see its policy)");
	err = store_lookup(v->store, key, key_len, &u);
	if (err == 0 && !u.destroyed)
		return msg_reply_text(
		    reply, SV_STATUS_CONFLICT,
		    "identifier already registered: log in to change its password");
	if (err != 0 && err != SV_ERR_NOTFOUND)
		return err;
	if (err == SV_ERR_NOTFOUND && vault_full(v))
		return reply_full(v, reply);
	err = store_put_user(v->store, key, key_len, r.record, r.blob, r.blob_len, limit);
	if (err != 0)
		return store_status(err) >= 0
		           ? msg_reply(reply, (uint8_t)store_status(err), NULL, 0)
		           : err;
	if ((err = audit(AUDIT_REGISTER, key, key_len, 0, limit, 0, 0)) != 0)
		return err;
	vault_drop_rescues(v, key, key_len);
	phantom_forget(v->phantoms, key, key_len);
	v->c.registrations++;
	return msg_reply(reply, SV_STATUS_OK, NULL, 0);
}

/* ---- login ---- */

static int handle_login_start(struct vault *v, const uint8_t *req, size_t len, uint64_t now_ms,
                              struct sv_buf *reply)
{
	static const char route[] = "login/start";
	const struct store_secrets *sec = store_secrets(v->store);
	struct vaultreq_login_start r;
	struct store_user_view u;
	struct session *s = NULL;
	struct session_rescue *rs = NULL;
	uint8_t out[LOGIN_REPLY_LEN];
	const uint8_t *record;
	uint8_t key[STORE_ID_MAX];
	size_t key_len = 0;
	const char *why = NULL;
	unsigned left, limit, used;
	int known, err;

	if (vaultreq_parse_login_start(&r, req, len, &why) != 0)
		return reply_bad(v, reply, route, why);
	/* a login serves a recovery, a deletion or a password change: a token for any of them may
	 * start one; login/finish checks the operation's own scope */
	if (!access_ok(v, 0, TOKEN_SCOPE_RECOVER | TOKEN_SCOPE_DELETE, r.id, r.id_len, key,
	               &key_len, route, reply))
		return SV_OK;
	/* The per-identifier rate, after the token (a refused token counts against no one) and
	 * before anything is charged; the same for known and unknown identifiers. The record key
	 * names the tenant too in tokens mode (enclave/access.h). */
	const struct idlimit_who who = {
	    .tenant = NULL, .tenant_len = 0, .id = key, .id_len = key_len};
	size_t rate_slot;
	unsigned retry_s;
	if (idlimit_check(v->idl, &who, now_ms, &rate_slot, &retry_s) != 0)
		return reply_too_many(v, reply, retry_s);
	/* The fake record is derived for every identifier, known or not, so that both take the
	 * same time (RFC 9807 §10.9); phantom_used is looked up for both for the same reason. */
	if ((err = opaque_fake_record_derive(v->fake_record, sec->fake_seed, key, key_len)) != 0)
		return err;
	used = phantom_used(v->phantoms, key, key_len);
	uint64_t phantom_at = phantom_charged_at(v->phantoms, key, key_len);
	err = store_lookup(v->store, key, key_len, &u);
	if (err != 0 && err != SV_ERR_NOTFOUND)
		return err;
	known = err == 0;
	if (known) {
		if (u.destroyed)
			return msg_reply(reply, SV_STATUS_LOCKED, NULL, 0);
		record = u.record;
		limit = u.guess_limit;
		used = u.guesses_used;
	} else {
		record = v->fake_record;
		limit = v->pol.default_guess_limit;
		if (used >= limit)
			return msg_reply(reply, SV_STATUS_LOCKED, NULL, 0);
	}
	/* The last allowed guess needs a rescue slot (real users: to keep the record the charge
	 * destroys; unknown ones take one too so that a full pool looks the same for both), within
	 * its tenant's share of the pool (session_rescue_share). */
	if (session_open(v->sessions, now_ms, &s) != 0 ||
	    (used + 1 >= limit && !session_rescue_available(v->sessions, key, key_len))) {
		if (s != NULL)
			session_close(v->sessions, s);
		return reply_busy(v, reply);
	}
	err = opaque_server_ke2(out + SESSION_ID_LEN, &s->ost, r.ke1, record, key, key_len,
	                        sec->oprf_seed, v->key, &v->params);
	if (err != 0) {
		session_close(v->sessions, s);
		if (err == SV_ERR_CRYPTO)
			return reply_bad(v, reply, route, "KE1 carries an invalid group element");
		return err;
	}
	if (!known)
		session_mark_fake(v->sessions, s);
	s->id_len = (uint8_t)key_len;
	memcpy(s->id, key, key_len);
	record_hash(s->record_hash, record);
	if (used + 1 >= limit && (err = session_rescue_attach(v->sessions, s, &rs)) != 0)
		goto fail;
	if (known) {
		if (rs != NULL) {
			memcpy(rs->record, u.record, STORE_RECORD_LEN);
			memcpy(rs->blob, u.blob, u.blob_len);
			rs->blob_len = (uint16_t)u.blob_len;
			rs->guess_limit = (uint8_t)u.guess_limit;
		}
		/* Durable before the reply leaves: the caller commits, then sends. */
		if ((err = store_charge_guess(v->store, key, key_len, &left)) != 0)
			goto fail;
		if ((err = audit(AUDIT_GUESS, key, key_len, left, limit, 1, 0)) != 0 ||
		    (left == 0 &&
		     (err = audit(AUDIT_DESTROYED, key, key_len, 0, limit, 1, 0)) != 0))
			return err;
	} else {
		/* The same commit path as a real charge, so that timing does not tell: a second
		 * guess before the first is on NV forces a flush (or is refused) as for a real
		 * user (store_charge_guess). */
		if ((!store_durable(v->store, phantom_at) &&
		     (err = store_require_flush(v->store)) != 0) ||
		    (err = store_stage_noop(v->store)) != 0)
			goto fail;
		left = limit - phantom_charge(v->phantoms, key, key_len, now_ms);
		phantom_set_charged_at(v->phantoms, key, key_len, store_counter(v->store) + 1);
		/* recorded as a real guess is (and its last one as a destroyed record: to clients
		 * the unknown identifier is locked now), so that the link's timing does not tell */
		if ((err = audit(AUDIT_GUESS, key, key_len, left, limit, 0, 0)) != 0 ||
		    (left == 0 &&
		     (err = audit(AUDIT_DESTROYED, key, key_len, 0, limit, 0, 0)) != 0))
			return err;
	}
	if (left == 0)
		v->c.last_guesses++;
	v->c.login_starts++;
	idlimit_charge(v->idl, &who, rate_slot, now_ms);
	s->attempts_left = (uint8_t)left;
	memcpy(out, s->sid, SESSION_ID_LEN);
	out[LOGIN_REPLY_LEN - 1] = (uint8_t)left;
	return msg_reply(reply, SV_STATUS_OK, out, sizeof(out));
fail:
	session_close(v->sessions, s);
	if (store_status(err) >= 0)
		return store_status(err) == SV_STATUS_BUSY
		           ? reply_busy(v, reply)
		           : msg_reply(reply, (uint8_t)store_status(err), NULL, 0);
	return err;
}

/* The user's record as this authenticated login may use it. 0: current record is the one KE2 came
 * from (*restore = 0), or it was destroyed by this login's own last-guess charge (*restore = 1).
 * Otherwise the SV_STATUS_* to answer. */
static int login_target(struct vault *v, struct session *s, int *restore)
{
	struct store_user_view u;
	uint8_t h[SESSION_RECORD_HASH_LEN];
	int err = store_lookup(v->store, s->id, s->id_len, &u);

	*restore = 0;
	if (err == SV_ERR_NOTFOUND)
		return SV_STATUS_OUT_OF_ORDER;
	if (err != 0)
		return err;
	if (u.destroyed) {
		if (s->rescue == SESSION_NO_RESCUE)
			return SV_STATUS_LOCKED;
		*restore = 1;
		return SV_OK;
	}
	record_hash(h, u.record);
	if (sodium_memcmp(h, s->record_hash, sizeof(h)) != 0)
		return SV_STATUS_OUT_OF_ORDER; /* password changed or re-registered meanwhile */
	return SV_OK;
}

/* Valid KE3 on a login: reset the guesses, or write back the record its charge destroyed. */
static int login_reset(struct vault *v, struct session *s, int restore)
{
	if (!restore)
		return store_reset_guesses(v->store, s->id, s->id_len);
	struct session_rescue *rs = session_rescue_of(v->sessions, s);
	/* The user's own last guess was right: the record must come back even when the NV-write
	 * budget is short, or a user who knows the password is locked out. The forced flush this
	 * costs is bounded by the budgeted charges that led to a last guess. */
	store_set_flush_allowed(v->store, 1);
	return store_put_user(v->store, s->id, s->id_len, rs->record, rs->blob, rs->blob_len,
	                      rs->guess_limit);
}

static int reply_recover(struct vault *v, struct session *s, struct sv_buf *reply)
{
	struct store_user_view u;
	uint8_t key[SEAL_KEY_LEN];
	uint8_t *p;
	int err = store_lookup(v->store, s->id, s->id_len, &u);

	if (err != 0)
		return err == SV_ERR_NOTFOUND ? SV_ERR_INTERNAL : err;
	if (u.blob == NULL)
		return SV_ERR_INTERNAL;
	if ((err = hkdf_sha512_expand(key, sizeof(key), s->ost.session_key, OPAQUE_SESSION_KEY_LEN,
	                              (const uint8_t *)INFO_SEAL, sizeof(INFO_SEAL) - 1, NULL,
	                              0)) != 0)
		goto out;
	sv_buf_reset(reply);
	if ((err = sv_buf_put_u8(reply, SV_STATUS_OK)) != 0 ||
	    (err = sv_buf_reserve(reply, SEAL_NONCE_LEN + u.blob_len + SEAL_TAG_LEN, &p)) != 0)
		goto out;
	randombytes_buf(p, SEAL_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(p + SEAL_NONCE_LEN, NULL, u.blob, u.blob_len,
	                                           s->sid, SESSION_ID_LEN, NULL, p, key);
out:
	sodium_memzero(key, sizeof(key));
	return err;
}

static int handle_login_finish(struct vault *v, const uint8_t *req, size_t len, uint64_t now_ms,
                               struct sv_buf *reply)
{
	static const char route[] = "login/finish";
	const struct store_secrets *sec = store_secrets(v->store);
	struct vaultreq_login_finish r;
	struct session *s;
	uint8_t resp[OPAQUE_REGISTRATION_RESPONSE_LEN];
	uint8_t key[OPAQUE_SESSION_KEY_LEN];
	uint8_t macced[SESSION_ID_LEN + 1 + VAULTREQ_REG_REQUEST_LEN]; /* what op_mac covers */
	const char *why = NULL;
	int restore = 0, ok, err;

	if (vaultreq_parse_login_finish(&r, req, len, &why) != 0)
		return reply_bad(v, reply, route, why);
	/* the operation's scope: a password change registers a new password as well */
	unsigned need = r.op == VAULTREQ_OP_RECOVER  ? TOKEN_SCOPE_RECOVER
	                : r.op == VAULTREQ_OP_DELETE ? TOKEN_SCOPE_DELETE
	                                             : TOKEN_SCOPE_RECOVER | TOKEN_SCOPE_REGISTER;
	s = session_find(v->sessions, r.session_id, now_ms);
	if (s == NULL && session_other_run(v->sessions, r.session_id))
		return reply_earlier_run(v, reply, route);
	if (s == NULL || s->phase != SESSION_KE2_SENT)
		return reply_out_of_order(v, reply,
		                          "unknown, expired or finished login: start again with "
		                          "login/start");
	/* the token must be for the user this login began for (and cover the operation); refused,
	 * the login stays as it was */
	size_t sid_len = s->id_len;
	if (!access_ok(v, need, 0, NULL, 0, s->id, &sid_len, route, reply))
		return SV_OK;
	/* From here the login is consumed whatever happens: one KE3 per KE2. The state's session
	 * key is kept in s->ost for the keys derived from it. */
	memcpy(macced, r.session_id, SESSION_ID_LEN);
	macced[SESSION_ID_LEN] = r.op;
	if (r.payload_len > 0)
		memcpy(macced + SESSION_ID_LEN + 1, r.payload, r.payload_len);
	ok = opaque_server_finish(key, &s->ost, r.ke3) == 0 && !s->fake &&
	     mac_check(key, macced, SESSION_ID_LEN + 1 + r.payload_len, r.mac) == 0;
	memcpy(s->ost.session_key, key, sizeof(key));
	sodium_memzero(key, sizeof(key));
	if (!ok) {
		uint8_t left = s->attempts_left;
		session_close(v->sessions, s);
		return reply_failed(v, reply, left);
	}
	if ((err = login_target(v, s, &restore)) != 0) {
		session_close(v->sessions, s);
		if (err < 0)
			return err;
		if (err == SV_STATUS_LOCKED)
			return msg_reply(reply, SV_STATUS_LOCKED, NULL, 0);
		return reply_out_of_order(v, reply,
		                          "the record changed since login/start (password changed "
		                          "or deleted): log in again");
	}
	if (r.op == VAULTREQ_OP_CHANGE) {
		/* Checked before anything is staged, so a bad element changes nothing. */
		err = opaque_server_registration_response(resp, r.payload, v->key->pk,
		                                          sec->oprf_seed, s->id, s->id_len);
		if (err != 0) {
			session_close(v->sessions, s);
			if (err == SV_ERR_CRYPTO)
				return reply_bad(
				    v, reply, route,
				    "RegistrationRequest is not a valid group element");
			return err;
		}
	}
	v->c.logins_ok++;
	switch (r.op) {
	case VAULTREQ_OP_RECOVER:
		if ((err = login_reset(v, s, restore)) != 0)
			goto fail;
		if ((err = audit(AUDIT_RECOVERED, s->id, s->id_len, 0, 0, restore, !restore)) != 0)
			return err;
		if ((err = reply_recover(v, s, reply)) == 0)
			v->c.recoveries++;
		session_close(v->sessions, s);
		return err;
	case VAULTREQ_OP_DELETE:
		/* A tombstone (this login's own last guess) is removed as well. */
		if ((err = store_delete_user(v->store, s->id, s->id_len)) != 0)
			goto fail;
		if ((err = audit(AUDIT_DELETED, s->id, s->id_len, 0, 0, 0, 0)) != 0)
			return err;
		v->c.deletions++;
		session_close(v->sessions, s);
		return msg_reply(reply, SV_STATUS_OK, NULL, 0);
	default: /* VAULTREQ_OP_CHANGE */
		if ((err = login_reset(v, s, restore)) != 0)
			goto fail;
		if ((err = audit(AUDIT_LOGIN_RESET, s->id, s->id_len, 0, 0, restore, !restore)) !=
		    0)
			return err;
		s->phase = SESSION_CHANGE_READY;
		return msg_reply(reply, SV_STATUS_OK, resp, sizeof(resp));
	}
fail:
	/* The store refused to stage (its pending buffer is full): nothing changed; the client logs
	 * in again. Anything else stops the enclave. */
	session_close(v->sessions, s);
	return err == SV_ERR_BUSY ? reply_busy(v, reply) : err;
}

static int handle_change_finish(struct vault *v, const uint8_t *req, size_t len, uint64_t now_ms,
                                struct sv_buf *reply)
{
	static const char route[] = "change-password/finish";
	struct vaultreq_change_finish r;
	struct session *s;
	const char *why = NULL;
	unsigned limit;
	int restore, err;

	if (vaultreq_parse_change_finish(&r, req, len, &why) != 0)
		return reply_bad(v, reply, route, why);
	s = session_find(v->sessions, r.session_id, now_ms);
	if (s == NULL && session_other_run(v->sessions, r.session_id))
		return reply_earlier_run(v, reply, route);
	if (s == NULL || s->phase != SESSION_CHANGE_READY)
		return reply_out_of_order(v, reply,
		                          "no change-password login pending for this session: "
		                          "log in with operation 3 first");
	/* a password change registers a new password: it needs both scopes */
	size_t sid_len = s->id_len;
	if (!access_ok(v, TOKEN_SCOPE_RECOVER | TOKEN_SCOPE_REGISTER, 0, NULL, 0, s->id, &sid_len,
	               route, reply))
		return SV_OK;
	if (mac_check(s->ost.session_key, req, r.macced_len, r.mac) != 0) {
		/* Not from the client that logged in (the guesses were reset at its KE3). */
		struct store_user_view u;
		uint8_t left = 0;
		err = store_lookup(v->store, s->id, s->id_len, &u);
		if (err == 0 && !u.destroyed)
			left = (uint8_t)(u.guess_limit - u.guesses_used);
		else if (err != 0 && err != SV_ERR_NOTFOUND)
			return err;
		session_close(v->sessions, s);
		return reply_failed(v, reply, left);
	}
	/* Authenticated but malformed: the session stays usable for a corrected request. */
	if (opaque_record_check(r.record, VAULTREQ_RECORD_LEN) != 0)
		return reply_bad(v, reply, route,
		                 "RegistrationRecord carries an invalid client public key");
	if (guess_limit_of(v, r.guess_limit, &limit) != 0)
		return reply_bad(v, reply, route,
		                 "guess limit above this vault's maximum (see its policy)");
	if ((err = login_target(v, s, &restore)) != 0 || restore) {
		session_close(v->sessions, s);
		if (err < 0)
			return err;
		if (err == SV_STATUS_LOCKED || restore)
			return msg_reply(reply, SV_STATUS_LOCKED, NULL, 0);
		return reply_out_of_order(v, reply,
		                          "the record changed since the login: log in again");
	}
	if ((err = store_put_user(v->store, s->id, s->id_len, r.record, r.blob, r.blob_len,
	                          limit)) != 0) {
		session_close(v->sessions, s);
		return err == SV_ERR_BUSY ? reply_busy(v, reply) : err;
	}
	if ((err = audit(AUDIT_PASSWORD_CHANGED, s->id, s->id_len, 0, limit, 0, 0)) != 0)
		return err;
	vault_drop_rescues(v, s->id, s->id_len);
	session_close(v->sessions, s);
	v->c.password_changes++;
	return msg_reply(reply, SV_STATUS_OK, NULL, 0);
}

/* ---- the vault ---- */

int vault_new(struct vault **out, struct store *store, const struct vault_config *cfg)
{
	const struct sv_vault_policy *p = cfg->policy;
	const struct store_secrets *sec;
	struct vault *v = NULL;
	size_t rescue_cap;
	int err = SV_ERR_NOMEM;

	*out = NULL;
	if (p == NULL || store == NULL || (cfg->context == NULL && cfg->context_len != 0) ||
	    cfg->context_len > OPAQUE_CONTEXT_MAX)
		return SV_ERR_CONFIG;
	if (p->max_guess_limit < 1 || p->max_guess_limit > UINT8_MAX ||
	    p->default_guess_limit < 1 || p->default_guess_limit > p->max_guess_limit ||
	    p->pending_login_max < 1 || p->login_timeout_s < 1)
		return SV_ERR_CONFIG;
	if (sodium_init() < 0)
		return SV_ERR_INTERNAL;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		goto out;
	v->store = store;
	v->pol = *p;
	v->access = cfg->access;
	v->max_users = cfg->max_users;
	snprintf(v->max_users_source, sizeof(v->max_users_source), "%s",
	         cfg->max_users_source != NULL ? cfg->max_users_source : "configured");
	if (cfg->context_len > 0) {
		if ((v->context = malloc(cfg->context_len)) == NULL)
			goto out;
		memcpy(v->context, cfg->context, cfg->context_len);
	}
	v->params.context = v->context;
	v->params.context_len = cfg->context_len;
	if ((v->key = sodium_malloc(sizeof(*v->key))) == NULL ||
	    (v->fake_record = sodium_malloc(STORE_RECORD_LEN)) == NULL)
		goto out;
	sec = store_secrets(store);
	if ((err = opaque_server_key_from_sk(v->key, sec->ake_sk)) != 0)
		goto out;
	if (sodium_memcmp(v->key->pk, sec->ake_pk, OPAQUE_PK_LEN) != 0) {
		err = SV_ERR_STATE; /* the stored public key does not belong to the private key */
		goto out;
	}
	/* Last-guess logins are rare; a sixteenth of the table (at least 16) is plenty. */
	rescue_cap = p->pending_login_max / 16 < 16 ? 16 : p->pending_login_max / 16;
	if (rescue_cap > p->pending_login_max)
		rescue_cap = p->pending_login_max;
	if ((err = session_table_new(&v->sessions, p->pending_login_max, rescue_cap,
	                             (uint64_t)p->login_timeout_s * 1000)) != 0 ||
	    (err = phantom_table_new(&v->phantoms, (size_t)p->pending_login_max * 4)) != 0)
		goto out;
	size_t id_entries = IDLIMIT_MIN_ENTRIES;
	while (id_entries < (size_t)p->pending_login_max * 2)
		id_entries *= 2;
	if ((err = idlimit_new(&v->idl, id_entries, p->login_rate_per_id,
	                       p->login_burst_per_id < 1 ? 1 : p->login_burst_per_id)) != 0)
		goto out;
	/* session ids' tags: the same key in every run, so a restart's lost logins are told apart
	 */
	uint8_t tag_key[SESSION_TAG_KEY_LEN];
	static const char label[] = "sealvault session id tag v1";
	crypto_generichash(tag_key, sizeof(tag_key), (const uint8_t *)label, sizeof(label) - 1,
	                   sec->fake_seed, sizeof(sec->fake_seed));
	session_table_set_key(v->sessions, tag_key);
	sodium_memzero(tag_key, sizeof(tag_key));
	*out = v;
	v = NULL;
	err = SV_OK;
out:
	vault_free(v);
	return err;
}

void vault_free(struct vault *v)
{
	if (v == NULL)
		return;
	session_table_free(v->sessions);
	phantom_table_free(v->phantoms);
	idlimit_free(v->idl);
	if (v->key != NULL)
		sodium_free(v->key);
	if (v->fake_record != NULL)
		sodium_free(v->fake_record);
	free(v->context);
	free(v);
}

int vault_handle(struct vault *v, uint16_t type, const uint8_t *req, size_t req_len,
                 uint64_t now_ms, struct sv_buf *reply)
{
	return vault_handle_token(v, type, NULL, 0, req, req_len, now_ms, reply);
}

int vault_handle_token(struct vault *v, uint16_t type, const uint8_t *tok, size_t tok_len,
                       const uint8_t *req, size_t req_len, uint64_t now_ms, struct sv_buf *reply)
{
	int err;

	v->tok = tok;
	v->tok_len = tok_len;
	switch (type) {
	case SV_MSG_REGISTER_START: err = handle_register_start(v, req, req_len, reply); break;
	case SV_MSG_REGISTER_FINISH: err = handle_register_finish(v, req, req_len, reply); break;
	case SV_MSG_LOGIN_START: err = handle_login_start(v, req, req_len, now_ms, reply); break;
	case SV_MSG_LOGIN_FINISH: err = handle_login_finish(v, req, req_len, now_ms, reply); break;
	case SV_MSG_CHANGE_FINISH:
		err = handle_change_finish(v, req, req_len, now_ms, reply);
		break;
	default: err = reply_bad(v, reply, "request", "not a vault request type"); break;
	}
	v->tok = NULL;
	v->tok_len = 0;
	return err;
}

void vault_shared(struct vault *v, struct vault_shared *out)
{
	*out = (struct vault_shared){.store = v->store,
	                             .access = v->access,
	                             .sessions = v->sessions,
	                             .idl = v->idl,
	                             .pol = &v->pol,
	                             .max_users = v->max_users};
}

void vault_expire(struct vault *v, uint64_t now_ms)
{
	v->c.expired += session_expire(v->sessions, now_ms);
}

size_t vault_pending(const struct vault *v, size_t *last_guesses)
{
	*last_guesses = session_rescue_count(v->sessions);
	return session_count(v->sessions);
}

int vault_metrics(const struct vault *v, struct sv_buf *out)
{
	const struct {
		const char *name, *help;
		uint64_t value;
		int gauge;
	} m[] = {
	    {"registrations_total", "Registrations acknowledged.", v->c.registrations, 0},
	    {"login_starts_total", "Guesses charged (KE2 sent), known and unknown identifiers.",
	     v->c.login_starts, 0},
	    {"logins_ok_total", "Logins with a valid KE3 and operation MAC.", v->c.logins_ok, 0},
	    {"logins_failed_total", "Logins with a bad KE3 or MAC.", v->c.logins_failed, 0},
	    {"last_guesses_total", "Logins charged the last allowed guess of an identifier.",
	     v->c.last_guesses, 0},
	    {"recoveries_total", "Backup-key blobs released.", v->c.recoveries, 0},
	    {"deletions_total", "Records deleted by their user.", v->c.deletions, 0},
	    {"password_changes_total", "Password changes acknowledged.", v->c.password_changes, 0},
	    {"busy_total",
	     "Requests answered busy, changing nothing: the pending-login table was full, or a "
	     "forced NV flush did not fit the NV-write budget.",
	     v->c.busy, 0},
	    {"bad_requests_total", "Malformed requests.", v->c.bad_requests, 0},
	    {"out_of_order_total", "Requests for unknown, expired or finished logins.",
	     v->c.out_of_order, 0},
	    {"expired_logins_total", "Pending logins dropped at the timeout.", v->c.expired, 0},
	    {"full_total",
	     "Registrations of new identifiers refused (507) because the vault holds max-users "
	     "records.",
	     v->c.full, 0},
	    {"earlier_run_logins_total",
	     "KE3s and password changes for logins begun before the enclave restarted (answered "
	     "503: start again).",
	     v->c.earlier_run, 0},
	    {"login_rate_limited_total",
	     "login/starts answered 429, changing nothing: the identifier was over "
	     "login-rate-per-id.",
	     idlimit_refused(v->idl), 0},
	    {"login_rate_table_full_total",
	     "login/starts answered 429 because the per-identifier table had no free entry for "
	     "a new identifier.",
	     idlimit_refused_full(v->idl), 0},
	    {"evicted_unknown_logins_total",
	     "Pending logins of unknown identifiers dropped to make room in a full table.",
	     session_evicted(v->sessions), 0},
	    {"pending_logins", "Logins between KE2 and KE3 now.", session_count(v->sessions), 1},
	    {"pending_logins_max", "Capacity of the pending-login table.",
	     session_capacity(v->sessions), 1},
	};
	char line[512];

	if (v->access != NULL) {
		int err = access_metrics(v->access, out);
		if (err != 0)
			return err;
	}
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		int n = snprintf(line, sizeof(line),
		                 "# HELP sealvault_vault_%s %s\n# TYPE sealvault_vault_%s %s\n"
		                 "sealvault_vault_%s %llu\n",
		                 m[i].name, m[i].help, m[i].name, m[i].gauge ? "gauge" : "counter",
		                 m[i].name, (unsigned long long)m[i].value);
		if (n < 0 || (size_t)n >= sizeof(line))
			return SV_ERR_INTERNAL;
		int err = sv_buf_put(out, line, (size_t)n);
		if (err != 0)
			return err;
	}
	int n = snprintf(line, sizeof(line),
	                 "# HELP sealvault_max_users Records (users and tombstones) beyond which "
	                 "registrations of new identifiers are refused (0: no limit); source: "
	                 "configured (max-users) or derived at start from memavailable or cgroup.\n"
	                 "# TYPE sealvault_max_users gauge\n"
	                 "sealvault_max_users{source=\"%s\"} %llu\n",
	                 v->max_users_source, (unsigned long long)v->max_users);
	if (n < 0 || (size_t)n >= sizeof(line))
		return SV_ERR_INTERNAL;
	return sv_buf_put(out, line, (size_t)n);
}
