/*
 * The single-vault step machine of vaultcore.h: OPAQUE from crypto/, the bodies of wire.c, the
 * backup-key blob of blob.c, and the meaning of every answer of docs/protocol.md ("Replies").
 *
 * The steps of each operation (-> a request, <- its 200 answer):
 *   register  -> register/start  <- RegistrationResponse; finalize, seal the secret
 *             -> register/finish <- empty
 *   recover   -> login/start (KE1) <- session id, KE2, attempts left; KE3
 *             -> login/finish (KE3, op recover) <- the sealed blob; open it
 *   delete    -> login/start, login/finish (op delete) <- empty
 *   change    the recover steps (the secret must be re-sealed under the new password), then
 *             -> login/start, login/finish (op change, a new RegistrationRequest)
 *                <- RegistrationResponse; finalize with the new password, seal the secret
 *             -> change-password/finish <- empty
 * A wrong password still sends its login/finish (random KE3 bytes), so that the vault records
 * the failure at once and answers with the authoritative attempts left.
 */
#include "client/vaultcore.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/attest.h"
#include "client/blob.h"
#include "client/wire.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/msg.h"

enum step {
	STEP_REG_START = 1,
	STEP_REG_FINISH,
	STEP_LOGIN_START,
	STEP_LOGIN_FINISH,
	STEP_CHANGE_FINISH,
	STEP_DONE,
};

/* SECRET: everything one operation holds and derives; sodium_malloc'd, wiped on free. */
struct core_secrets {
	struct opaque_client_state st;
	struct opaque_client_state reg; /* register, change: the new registration's blind */
	uint8_t session_key[OPAQUE_SESSION_KEY_LEN];
	uint8_t export_key[OPAQUE_EXPORT_KEY_LEN];
	struct client_wire_keys keys;
	uint8_t blob[CLIENT_BLOB_MAX];
	size_t blob_len;
	uint8_t secret[CLIENT_SECRET_MAX]; /* register: the input; recover, change: recovered */
	size_t secret_len;
	uint8_t record[OPAQUE_RECORD_LEN];
	uint8_t response[OPAQUE_REGISTRATION_RESPONSE_LEN];
	uint8_t password[SV_PASSWORD_MAX_LEN];
	size_t password_len;
	uint8_t new_password[SV_PASSWORD_MAX_LEN];
	size_t new_password_len;
};

struct vaultcore {
	enum vaultcore_op op;
	enum step step;
	int change_login; /* change: 0 while recovering the secret, 1 for the change login */
	int wrong;        /* the KE3 of this login failed: a wrong password (or another vault) */
	uint8_t login_op; /* CLIENT_WIRE_OP_* of the login/finish being sent */
	const char *what; /* the operation's name in messages */
	struct core_secrets *s;
	uint8_t user[SV_USER_MAX_LEN];
	size_t user_len;
	uint8_t context[VAULTCORE_CONTEXT_MAX];
	size_t context_len;
	struct ksf_params ksf;
	int pin_server_key, have_server_key, token_results;
	uint8_t server_key[OPAQUE_PK_LEN];
	unsigned max_attempts;
	uint8_t session_id[CLIENT_WIRE_SESSION_ID_LEN];
	struct sv_buf req;
	enum sv_result result;
	int attempts_left;
	const char *failed_check;
	char err[512];
};

static void finish(struct vaultcore *c, enum sv_result res, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The operation is over with res; fmt (NULL for SV_RESULT_OK) says why. */
static void finish(struct vaultcore *c, enum sv_result res, const char *fmt, ...)
{
	c->step = STEP_DONE;
	c->result = res;
	c->err[0] = '\0';
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err, sizeof(c->err), fmt, ap);
		va_end(ap);
	}
	sv_buf_reset(&c->req);
}

static void internal(struct vaultcore *c, const char *what, int err)
{
	finish(c, SV_RESULT_ERROR, "%s: %s", what, sv_strerror(err));
}

static void bad_reply(struct vaultcore *c)
{
	finish(c, SV_RESULT_ERROR,
	       "%s: the server's answer is malformed; client and server versions may differ",
	       c->what);
}

static struct opaque_params params(const struct vaultcore *c)
{
	struct opaque_params p = {.context = c->context, .context_len = c->context_len};
	return p;
}

/* The reason text of an answer, if the server sent printable ASCII. */
static const char *reply_text(const uint8_t *p, size_t len, char *buf, size_t n)
{
	while (len > 0 && p[len - 1] == '\n') /* the broker's own answers end in one */
		len--;
	if (len == 0 || len >= n)
		return "no reason given";
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return "no reason given";
	memcpy(buf, p, len);
	buf[len] = '\0';
	return buf;
}

/*
 * Every answer but 200 ends the operation with its meaning; returns 1 for a 200 (go on), 0
 * otherwise. register_step: a 409 means "already registered" rather than "out of order".
 */
static int answered(struct vaultcore *c, long status, const uint8_t *body, size_t len,
                    int register_step)
{
	char text[300];
	const char *what = c->what;
	uint8_t left;
	/* 401, or a 403 whose body is a reason rather than the one byte of attempts left: the
	 * vault refused the access token (RFC 6750; the body is its error_description) */
	if (status == 401 || (status == 403 && len > 1)) {
		finish(c, c->token_results ? SV_RESULT_TOKEN_REFUSED : SV_RESULT_ERROR,
		       "the vault refused the access token: %s",
		       reply_text(body, len, text, sizeof(text)));
		return 0;
	}
	switch (status) {
	case 200: return 1;
	case 403:
		if (client_wire_parse_auth_failed(&left, body, len) == 0)
			c->attempts_left = left;
		finish(c, SV_RESULT_WRONG_PASSWORD,
		       "%s: wrong password or unknown user (or a KSF profile or context other than "
		       "the one used at registration)",
		       what);
		break;
	case 410:
		finish(c, SV_RESULT_LOCKED,
		       "%s: too many wrong guesses; the server destroyed this record for good",
		       what);
		break;
	case 409:
		if (register_step)
			finish(
			    c, SV_RESULT_EXISTS,
			    "%s: this user is already registered; recover, change the password or "
			    "delete it instead",
			    what);
		else
			finish(c, SV_RESULT_ERROR,
			       "%s: the server refused the step as out of order (%s); try again",
			       what, reply_text(body, len, text, sizeof(text)));
		break;
	case 429:
		finish(c, SV_RESULT_BUSY, "%s: the vault limits the rate (HTTP 429: %s)", what,
		       reply_text(body, len, text, sizeof(text)));
		break;
	case 503:
		finish(c, SV_RESULT_BUSY, "%s: the server is busy (HTTP %ld: %s); retry later",
		       what, status, reply_text(body, len, text, sizeof(text)));
		break;
	case 507:
		finish(c, SV_RESULT_FULL,
		       "%s: the vault is full and registers no new users (HTTP 507: %s); nothing "
		       "was stored: ask its operator, or use another vault",
		       what, reply_text(body, len, text, sizeof(text)));
		break;
	case 400:
		finish(c, SV_RESULT_ERROR,
		       "%s: the server rejected the request (%s); client and server versions may "
		       "differ",
		       what, reply_text(body, len, text, sizeof(text)));
		break;
	case 404:
	case 405:
	case 415:
		finish(c, SV_RESULT_ERROR,
		       "%s: HTTP %ld; is --server the base URL of a sealvault server?", what,
		       status);
		break;
	case 500:
		finish(c, SV_RESULT_ERROR,
		       "%s: the server failed internally (HTTP 500); its log says why", what);
		break;
	default: finish(c, SV_RESULT_ERROR, "%s: unexpected HTTP status %ld", what, status);
	}
	return 0;
}

/* The OPAQUE server key the protocol just authenticated must be the attested one. */
static int server_key_ok(struct vaultcore *c, const uint8_t pk[OPAQUE_PK_LEN])
{
	if (!c->pin_server_key)
		return 1;
	if (c->have_server_key && sodium_memcmp(pk, c->server_key, OPAQUE_PK_LEN) == 0)
		return 1;
	c->failed_check = CLIENT_ATTEST_SERVER_KEY;
	finish(c, SV_RESULT_UNVERIFIED,
	       "%s: the server used another OPAQUE key than the attested vault's; it is not the "
	       "verified vault (nothing more was sent)",
	       CLIENT_ATTEST_SERVER_KEY);
	return 0;
}

/* register/change: finalize the new registration with the server's response into s->record and
 * s->export_key under password pw, then seal s->secret into s->blob. */
static int finalize_registration(struct vaultcore *c, const uint8_t *pw, size_t pw_len)
{
	struct core_secrets *s = c->s;
	struct opaque_params p = params(c);
	int r = opaque_client_registration_finalize(s->record, s->export_key, &s->reg, pw, pw_len,
	                                            s->response, &p, &c->ksf);
	if (r == SV_ERR_NOMEM) {
		finish(c, SV_RESULT_ERROR,
		       "Argon2id could not get %u KiB of memory; use a smaller KSF profile",
		       c->ksf.m_kib);
		return -1;
	}
	if (r != 0) {
		finish(c, SV_RESULT_ERROR,
		       "the server's registration response is invalid (%s); is this the right "
		       "server?",
		       sv_strerror(r));
		return -1;
	}
	r = client_blob_seal(s->blob, &s->blob_len, s->secret, s->secret_len, s->export_key,
	                     &c->ksf, c->user, c->user_len);
	if (r != 0) {
		internal(c, "sealing the backup key", r);
		return -1;
	}
	return 0;
}

/* Builds the login/start of a login whose login/finish will carry op. */
static void login_begin(struct vaultcore *c, uint8_t op)
{
	struct core_secrets *s = c->s;
	uint8_t ke1[OPAQUE_KE1_LEN];
	c->login_op = op;
	c->wrong = 0;
	int r = opaque_client_ke1(ke1, &s->st, s->password, s->password_len);
	if (r == 0)
		r = client_wire_login_start(&c->req, c->user, c->user_len, ke1);
	if (r != 0) {
		internal(c, "building the login request", r);
		return;
	}
	c->step = STEP_LOGIN_START;
}

/* <- login/start: KE2. Computes KE3 and builds the login/finish. */
static void on_login_start(struct vaultcore *c, const uint8_t *body, size_t len)
{
	struct core_secrets *s = c->s;
	uint8_t ke2[OPAQUE_KE2_LEN], ke3[OPAQUE_KE3_LEN], server_pk[OPAQUE_PK_LEN];
	uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN];
	const uint8_t *payload = NULL;
	size_t payload_len = 0;
	struct opaque_params p = params(c);
	uint8_t left;

	if (client_wire_parse_login_start(c->session_id, ke2, &left, body, len) != 0) {
		bad_reply(c);
		return;
	}
	c->attempts_left = left;
	int r = opaque_client_ke3(ke3, s->session_key, s->export_key, server_pk, &s->st,
	                          s->password, s->password_len, ke2, &p, &c->ksf);
	if (r == SV_ERR_NOMEM) {
		finish(c, SV_RESULT_ERROR,
		       "Argon2id could not get %u KiB of memory; use a smaller KSF profile",
		       c->ksf.m_kib);
		return;
	}
	c->wrong = r != 0;
	if (!c->wrong && !server_key_ok(c, server_pk))
		goto out;
	uint8_t op = c->login_op;
	if (c->wrong) {
		/* Not our password (or not our server): spend the charged guess visibly. */
		randombytes_buf(ke3, sizeof(ke3));
		randombytes_buf(&s->keys, sizeof(s->keys));
		op = CLIENT_WIRE_OP_RECOVER;
	} else if (client_wire_keys_derive(&s->keys, s->session_key) != 0) {
		internal(c, "deriving the session keys", SV_ERR_CRYPTO);
		goto out;
	} else if (op == CLIENT_WIRE_OP_CHANGE) {
		/* the new password's registration request rides on the change login's KE3 */
		r = opaque_client_registration_request(request, &s->reg, s->new_password,
		                                       s->new_password_len);
		if (r != 0) {
			internal(c, "building the new registration", r);
			goto out;
		}
		payload = request;
		payload_len = sizeof(request);
	}
	r = client_wire_login_finish(&c->req, &s->keys, c->session_id, ke3, op, payload,
	                             payload_len);
	if (r != 0) {
		internal(c, "building the login proof", r);
		goto out;
	}
	c->step = STEP_LOGIN_FINISH;
out:
	sodium_memzero(ke3, sizeof(ke3));
	sodium_memzero(request, sizeof(request));
}

/* <- login/finish, a 200: what the op released. */
static void on_login_finish(struct vaultcore *c, const uint8_t *body, size_t len)
{
	struct core_secrets *s = c->s;
	struct ksf_params used;
	if (c->wrong) {
		finish(
		    c, SV_RESULT_ERROR,
		    "%s: the server accepted a proof we know to be wrong; this is not a sealvault "
		    "server you can trust",
		    c->what);
		return;
	}
	switch (c->login_op) {
	case CLIENT_WIRE_OP_DELETE:
		if (client_wire_parse_empty(body, len) != 0)
			bad_reply(c);
		else
			finish(c, SV_RESULT_OK, NULL);
		return;
	case CLIENT_WIRE_OP_CHANGE:
		if (client_wire_parse_change(s->response, body, len) != 0) {
			bad_reply(c);
			return;
		}
		if (finalize_registration(c, s->new_password, s->new_password_len) != 0)
			return;
		int r = client_wire_change_finish(&c->req, &s->keys, c->session_id, s->record,
		                                  (uint8_t)c->max_attempts, s->blob, s->blob_len);
		if (r != 0) {
			internal(c, "building the new record", r);
			return;
		}
		c->step = STEP_CHANGE_FINISH;
		return;
	default: break;
	}
	/* recover (also the first half of change) */
	if (client_wire_parse_recover(s->blob, sizeof(s->blob), &s->blob_len, &s->keys,
	                              c->session_id, body, len) != 0) {
		bad_reply(c);
		return;
	}
	int r = client_blob_open(s->secret, &s->secret_len, &used, s->blob, s->blob_len,
	                         s->export_key, c->user, c->user_len);
	if (r != 0) {
		finish(c, SV_RESULT_ERROR,
		       "recover: the stored backup key does not open with this password (%s); it "
		       "was stored by an incompatible client or altered",
		       sv_strerror(r));
		return;
	}
	if (c->op == VAULTCORE_CHANGE && !c->change_login) {
		c->change_login = 1;
		c->what = "change-password";
		opaque_client_state_wipe(&s->st);
		login_begin(c, CLIENT_WIRE_OP_CHANGE);
		return;
	}
	finish(c, SV_RESULT_OK, NULL);
}

void vaultcore_reply(struct vaultcore *c, long status, const uint8_t *body, size_t len)
{
	struct core_secrets *s = c->s;
	enum step step = c->step;
	if (body == NULL)
		len = 0;
	sv_buf_reset(&c->req);
	switch (step) {
	case STEP_REG_START:
		if (!answered(c, status, body, len, 1))
			return;
		if (client_wire_parse_register_start(s->response, body, len) != 0) {
			bad_reply(c);
			return;
		}
		/* RegistrationResponse = evaluated_message | server_public_key */
		if (!server_key_ok(c,
		                   s->response + OPAQUE_REGISTRATION_RESPONSE_LEN - OPAQUE_PK_LEN))
			return;
		if (finalize_registration(c, s->password, s->password_len) != 0)
			return;
		int r = client_wire_register_finish(&c->req, c->user, c->user_len, s->record,
		                                    (uint8_t)c->max_attempts, s->blob, s->blob_len);
		if (r != 0) {
			internal(c, "building the registration record", r);
			return;
		}
		c->step = STEP_REG_FINISH;
		return;
	case STEP_LOGIN_START:
		if (answered(c, status, body, len, 0))
			on_login_start(c, body, len);
		return;
	case STEP_LOGIN_FINISH:
		if (answered(c, status, body, len, 0)) {
			on_login_finish(c, body, len);
		} else if (c->wrong && c->result == SV_RESULT_ERROR) {
			finish(
			    c, SV_RESULT_WRONG_PASSWORD,
			    "%s: wrong password or unknown user (or a KSF profile or context other "
			    "than the one used at registration)",
			    c->what);
		}
		return;
	case STEP_REG_FINISH:
	case STEP_CHANGE_FINISH:
		if (!answered(c, status, body, len, step == STEP_REG_FINISH))
			return;
		if (client_wire_parse_empty(body, len) != 0)
			bad_reply(c);
		else
			finish(c, SV_RESULT_OK, NULL);
		return;
	case STEP_DONE: return;
	}
}

int vaultcore_next(struct vaultcore *c, struct vaultcore_request *rq)
{
	uint16_t type;
	switch (c->step) {
	case STEP_REG_START: type = SV_MSG_REGISTER_START; break;
	case STEP_REG_FINISH: type = SV_MSG_REGISTER_FINISH; break;
	case STEP_LOGIN_START: type = SV_MSG_LOGIN_START; break;
	case STEP_LOGIN_FINISH: type = SV_MSG_LOGIN_FINISH; break;
	case STEP_CHANGE_FINISH: type = SV_MSG_CHANGE_FINISH; break;
	default: return 0;
	}
	rq->type = type;
	rq->path = msg_path(type);
	rq->body = sv_buf_ptr(&c->req);
	rq->len = sv_buf_remaining(&c->req);
	return 1;
}

void vaultcore_abort(struct vaultcore *c, enum sv_result res, const char *msg)
{
	finish(c, res, "%s", msg != NULL ? msg : "the request could not be sent");
}

/* The bounds of the inputs, in the order the library always checked them. */
static int inputs_ok(struct vaultcore *c, const struct vaultcore_input *in)
{
	const char *bound = NULL;
	if (c->op == VAULTCORE_CHANGE &&
	    (in->new_password_len == 0 || in->new_password_len > SV_PASSWORD_MAX_LEN))
		bound = "password";
	else if (in->user_len == 0 || in->user_len > SV_USER_MAX_LEN) {
		finish(c, SV_RESULT_ERROR, "the user id must be 1 to %d bytes", SV_USER_MAX_LEN);
		return 0;
	} else if (in->password_len == 0 || in->password_len > SV_PASSWORD_MAX_LEN)
		bound = "password";
	if (bound != NULL) {
		finish(c, SV_RESULT_ERROR, "the password must be 1 to %d bytes",
		       SV_PASSWORD_MAX_LEN);
		return 0;
	}
	if (c->op == VAULTCORE_REGISTER &&
	    (in->secret_len == 0 || in->secret_len > SV_SECRET_MAX_LEN)) {
		finish(c, SV_RESULT_ERROR, "the secret must be 1 to %d bytes", SV_SECRET_MAX_LEN);
		return 0;
	}
	if ((c->op == VAULTCORE_REGISTER || c->op == VAULTCORE_CHANGE) &&
	    in->max_attempts > SV_MAX_ATTEMPTS_MAX) {
		finish(c, SV_RESULT_ERROR, "the guess limit must be 1 to %d (0: server default)",
		       SV_MAX_ATTEMPTS_MAX);
		return 0;
	}
	return 1;
}

_Static_assert(SV_SECRET_MAX_LEN <= CLIENT_SECRET_MAX, "the secret fits the blob");
_Static_assert(SV_USER_MAX_LEN <= CLIENT_USER_MAX, "the identifier fits the blob's AD");

int vaultcore_new(struct vaultcore **out, enum vaultcore_op op, const struct vaultcore_params *p,
                  const struct vaultcore_input *in)
{
	static const char *const names[] = {[VAULTCORE_REGISTER] = "register",
	                                    [VAULTCORE_RECOVER] = "recover",
	                                    [VAULTCORE_DELETE] = "delete",
	                                    [VAULTCORE_CHANGE] = "change-password"};
	*out = NULL;
	if (op < VAULTCORE_REGISTER || op > VAULTCORE_CHANGE || p == NULL || in == NULL ||
	    p->context_len > VAULTCORE_CONTEXT_MAX || (p->context == NULL && p->context_len > 0))
		return SV_ERR_INVALID;
	if (sodium_init() < 0)
		return SV_ERR_INTERNAL;
	struct vaultcore *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return SV_ERR_NOMEM;
	c->s = sodium_malloc(sizeof(*c->s));
	if (c->s == NULL || sv_buf_init(&c->req, CLIENT_WIRE_BODY_MAX) != 0) {
		vaultcore_free(c);
		return SV_ERR_NOMEM;
	}
	sodium_memzero(c->s, sizeof(*c->s));
	c->op = op;
	/* change-password's first login recovers the secret, and says so in its messages */
	c->what = names[op == VAULTCORE_CHANGE ? VAULTCORE_RECOVER : op];
	c->attempts_left = -1;
	c->result = SV_RESULT_ERROR;
	c->ksf = p->ksf;
	c->pin_server_key = p->pin_server_key;
	c->token_results = p->token_results;
	if (p->server_key != NULL) {
		memcpy(c->server_key, p->server_key, OPAQUE_PK_LEN);
		c->have_server_key = 1;
	}
	if (p->context_len > 0)
		memcpy(c->context, p->context, p->context_len);
	c->context_len = p->context_len;
	*out = c;
	if (!inputs_ok(c, in))
		return SV_OK; /* over already, with the bound in the message */
	struct core_secrets *s = c->s;
	memcpy(c->user, in->user, in->user_len);
	c->user_len = in->user_len;
	memcpy(s->password, in->password, in->password_len);
	s->password_len = in->password_len;
	if (op == VAULTCORE_CHANGE) {
		memcpy(s->new_password, in->new_password, in->new_password_len);
		s->new_password_len = in->new_password_len;
	}
	if (op == VAULTCORE_REGISTER) {
		memcpy(s->secret, in->secret, in->secret_len);
		s->secret_len = in->secret_len;
	}
	c->max_attempts = in->max_attempts;
	if (op == VAULTCORE_REGISTER) {
		uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN];
		int r = opaque_client_registration_request(request, &s->reg, s->password,
		                                           s->password_len);
		if (r == 0)
			r = client_wire_register_start(&c->req, c->user, c->user_len, request);
		if (r != 0)
			internal(c, "building the registration request", r);
		else
			c->step = STEP_REG_START;
		return SV_OK;
	}
	login_begin(c, op == VAULTCORE_DELETE ? CLIENT_WIRE_OP_DELETE : CLIENT_WIRE_OP_RECOVER);
	return SV_OK;
}

void vaultcore_free(struct vaultcore *c)
{
	if (c == NULL)
		return;
	if (c->s != NULL) {
		opaque_client_state_wipe(&c->s->st);
		opaque_client_state_wipe(&c->s->reg);
		sodium_free(c->s); /* wipes the whole allocation */
	}
	sv_buf_free(&c->req);
	sodium_memzero(c->session_id, sizeof(c->session_id));
	free(c);
}

int vaultcore_done(const struct vaultcore *c)
{
	return c->step == STEP_DONE || c->step == 0;
}

enum sv_result vaultcore_result(const struct vaultcore *c)
{
	return vaultcore_done(c) ? c->result : SV_RESULT_ERROR;
}

const char *vaultcore_error(const struct vaultcore *c)
{
	if (!vaultcore_done(c))
		return "the operation is not over";
	return c->err;
}

int vaultcore_attempts_left(const struct vaultcore *c)
{
	return c->attempts_left;
}

const char *vaultcore_failed_check(const struct vaultcore *c)
{
	return c->failed_check;
}

int vaultcore_secret(const struct vaultcore *c, const uint8_t **secret, size_t *secret_len)
{
	*secret = NULL;
	*secret_len = 0;
	if (c->op != VAULTCORE_RECOVER || c->step != STEP_DONE || c->result != SV_RESULT_OK)
		return SV_ERR_PROTOCOL;
	*secret = c->s->secret;
	*secret_len = c->s->secret_len;
	return SV_OK;
}
