/*
 * libsealvault: the public API of sealvault.h over the OPAQUE core (crypto/), the request and
 * reply bodies (wire.c), the backup-key blob (blob.c) and libcurl (http.c).
 */
#include "client/sealvault.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/attest.h"
#include "client/blob.h"
#include "client/evidence.h"
#include "client/expect.h"
#include "client/http.h"
#include "client/info.h"
#include "client/svinternal.h"
#include "client/vaultsteps.h"
#include "client/wire.h"
#include "common/err.h"
#include "common/msg.h"
#include "crypto/opaque.h"

#define CONTEXT_MAX 1024

_Static_assert(CONTEXT_MAX <= INFO_CONTEXT_MAX, "a context that /v1/info cannot carry");
_Static_assert(INFO_KSF_T == SV_KSF_DEFAULT_T && INFO_KSF_M_KIB == SV_KSF_DEFAULT_M_KIB,
               "the vault recommends the library's default KSF profile");
_Static_assert(SV_PROTOCOL_VERSION == CLIENT_WIRE_VERSION, "one wire version");

struct sv_ctx {
	struct client_http *http;
	uint8_t *context;
	size_t context_len;
	struct ksf_params ksf;
	struct sv_buf req;
	struct sv_buf rep;
	char err[768];
	/* attestation (sv_ctx_set_expect): when expect is set, every operation verifies first */
	struct client_expect *expect;
	struct client_expect extra_ca; /* only .ca is used: the --tpm-ca PEM texts */
	const char *failed_check;      /* the check that failed last, or NULL */
	int op_depth;                  /* > 0 inside an operation that already verified */
	int attested;                  /* attested_key holds the verified statement's key */
	int info_checked;              /* GET /v1/info agreed with the context (or had no answer) */
	uint8_t attested_key[OPAQUE_PK_LEN];
	/* the access token of the *_token call running now (the caller's memory), or NULL */
	const char *token;
	int token_api; /* 1 inside a *_token call: a refused token is SV_RESULT_TOKEN_REFUSED */
};

static enum sv_result fail(struct sv_ctx *ctx, enum sv_result res, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum sv_result fail(struct sv_ctx *ctx, enum sv_result res, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
	va_end(ap);
	return res;
}

const char *sv_result_str(enum sv_result r)
{
	switch (r) {
	case SV_RESULT_OK: return "ok";
	case SV_RESULT_WRONG_PASSWORD: return "wrong password or unknown user";
	case SV_RESULT_LOCKED: return "locked out: the record was destroyed";
	case SV_RESULT_EXISTS: return "already registered";
	case SV_RESULT_BUSY: return "server busy";
	case SV_RESULT_ERROR: return "error";
	case SV_RESULT_UNVERIFIED: return "attestation verification failed";
	case SV_RESULT_TOKEN_REFUSED: return "the vault refused the access token";
	case SV_RESULT_FULL: return "vault full: it accepts no new users";
	}
	return "unknown result";
}

int sv_ctx_new(struct sv_ctx **out, const char *server_url)
{
	struct sv_ctx *ctx = NULL;
	*out = NULL;
	/* https only, with a host: TLS is what authenticates the server. */
	if (server_url == NULL || strncmp(server_url, "https://", 8) != 0 ||
	    server_url[8] == '\0' || server_url[8] == '/' || sodium_init() < 0)
		return -1;
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return -1;
	ctx->ksf.type = KSF_ARGON2ID;
	ctx->ksf.t = SV_KSF_DEFAULT_T;
	ctx->ksf.m_kib = SV_KSF_DEFAULT_M_KIB;
	if (client_http_new(&ctx->http, server_url) != 0 ||
	    sv_ctx_set_context(ctx, (const uint8_t *)SV_DEFAULT_CONTEXT,
	                       sizeof(SV_DEFAULT_CONTEXT) - 1) != 0 ||
	    sv_buf_init(&ctx->req, CLIENT_WIRE_BODY_MAX) != 0 ||
	    sv_buf_init(&ctx->rep, CLIENT_WIRE_REPLY_MAX) != 0) {
		sv_ctx_free(ctx);
		return -1;
	}
	*out = ctx;
	return 0;
}

void sv_ctx_free(struct sv_ctx *ctx)
{
	if (ctx == NULL)
		return;
	client_http_free(ctx->http);
	if (ctx->expect != NULL)
		client_expect_clear(ctx->expect);
	free(ctx->expect);
	client_expect_clear(&ctx->extra_ca);
	free(ctx->context);
	sv_buf_free(&ctx->req);
	sv_buf_free(&ctx->rep);
	free(ctx);
}

int sv_ctx_set_cacert(struct sv_ctx *ctx, const char *path)
{
	return client_http_set_cacert(ctx->http, path) == 0 ? 0 : -1;
}

int sv_ctx_set_context(struct sv_ctx *ctx, const uint8_t *context, size_t len)
{
	if (len > CONTEXT_MAX)
		return -1;
	uint8_t *c = malloc(len ? len : 1);
	if (c == NULL)
		return -1;
	if (len)
		memcpy(c, context, len);
	free(ctx->context);
	ctx->context = c;
	ctx->context_len = len;
	ctx->info_checked = 0; /* compare the new context with the vault's before its first guess */
	return 0;
}

int sv_ctx_set_ksf(struct sv_ctx *ctx, uint32_t t, uint32_t m_kib)
{
	struct ksf_params k = {.type = KSF_ARGON2ID, .t = t, .m_kib = m_kib};
	if (t < SV_KSF_MIN_T || m_kib < SV_KSF_MIN_M_KIB || m_kib > SV_KSF_MAX_M_KIB ||
	    ksf_params_check(&k) != 0)
		return -1;
	ctx->ksf = k;
	return 0;
}

void sv_ctx_set_timeout(struct sv_ctx *ctx, unsigned seconds)
{
	client_http_set_timeout(ctx->http, seconds);
}

const char *sv_ctx_error(const struct sv_ctx *ctx)
{
	return ctx->err;
}

/* ---- attestation (docs/attestation.md) ---- */

int sv_ctx_set_expect(struct sv_ctx *ctx, const char *path)
{
	struct client_expect *e = NULL;
	ctx->err[0] = '\0';
	if (path != NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL) {
			fail(ctx, SV_RESULT_ERROR, "out of memory");
			return -1;
		}
		if (client_expect_load(e, path, ctx->err, sizeof(ctx->err)) != SV_OK) {
			free(e);
			return -1;
		}
	}
	if (ctx->expect != NULL)
		client_expect_clear(ctx->expect);
	free(ctx->expect);
	ctx->expect = e;
	return 0;
}

int sv_ctx_set_tpm_ca(struct sv_ctx *ctx, const char *path)
{
	ctx->err[0] = '\0';
	return client_expect_add_ca_file(&ctx->extra_ca, path, ctx->err, sizeof(ctx->err)) == SV_OK
	           ? 0
	           : -1;
}

const char *sv_ctx_failed_check(const struct sv_ctx *ctx)
{
	return ctx->failed_check;
}

/* GET /v1/attestation?nonce=HEX into reply. */
static enum sv_result fetch_evidence(struct sv_ctx *ctx, const uint8_t *nonce, size_t nonce_len,
                                     struct sv_buf *reply)
{
	char path[64 + 2 * CLIENT_EVIDENCE_NONCE_MAX], text[300];
	long status = 0;
	size_t n = (size_t)snprintf(path, sizeof(path), "%s?nonce=", msg_path(SV_MSG_ATTESTATION));
	sodium_bin2hex(path + n, sizeof(path) - n, nonce, nonce_len);
	if (client_http_get(ctx->http, path, &status, reply, ctx->err, sizeof(ctx->err)) != 0) {
		size_t l = strlen(ctx->err);
		snprintf(ctx->err + l, sizeof(ctx->err) - l,
		         " (check --server, that sealvaultd runs, and --cacert)");
		return SV_RESULT_ERROR;
	}
	switch (status) {
	case 200: return SV_RESULT_OK;
	case 400: {
		/* reply_text reads ctx->rep; the evidence buffer is separate */
		size_t len =
		    sv_buf_remaining(reply) < sizeof(text) - 1 ? sv_buf_remaining(reply) : 0;
		memcpy(text, sv_buf_ptr(reply), len);
		text[len] = '\0';
		for (size_t i = 0; i < len; i++)
			if (text[i] < 0x20 || text[i] > 0x7e)
				text[i] = '?';
		return fail(ctx, SV_RESULT_ERROR,
		            "attestation: the server refused the request (%s); does it run a "
		            "sealvault with attestation (sealvault-admin init after issue 6)?",
		            len ? text : "no reason given");
	}
	case 429:
	case 503:
		return fail(ctx, SV_RESULT_BUSY,
		            "attestation: the server is busy (HTTP %ld); retry later", status);
	default:
		return fail(ctx, SV_RESULT_ERROR,
		            "attestation: HTTP %ld; is --server the base URL of a sealvault server "
		            "with attestation?",
		            status);
	}
}

/* The live credential activation of check 2 (client_attest_activate_fn). */
static int activate(void *arg, const uint8_t *body, size_t len,
                    uint8_t answer[CLIENT_ATTEST_ANSWER_MAX], size_t *answer_len, char *why,
                    size_t why_len)
{
	struct sv_ctx *ctx = arg;
	struct sv_buf rep;
	long status = 0;
	int r = sv_buf_init(&rep, 1024);
	if (r != 0)
		return r;
	r = client_http_post(ctx->http, msg_path(SV_MSG_ACTIVATE), body, len, &status, &rep, why,
	                     why_len);
	if (r != 0)
		goto out;
	size_t n = sv_buf_remaining(&rep);
	if (status == 200 && n >= 1 && n <= CLIENT_ATTEST_ANSWER_MAX) {
		memcpy(answer, sv_buf_ptr(&rep), n);
		*answer_len = n;
		r = SV_OK;
	} else if (status == 200) {
		snprintf(why, why_len, "the answer is %zu bytes, not 1 to %d", n,
		         CLIENT_ATTEST_ANSWER_MAX);
		r = SV_ERR_AUTH;
	} else if (status == 403) {
		snprintf(why, why_len, "HTTP 403");
		r = SV_ERR_AUTH;
	} else {
		snprintf(why, why_len,
		         "POST /v1/attestation/activate answered HTTP %ld; client and server "
		         "versions may differ",
		         status);
		r = SV_ERR_PROTOCOL;
	}
out:
	sv_buf_free(&rep);
	return r;
}

/* Verifies evidence (fetched live for a fresh nonce when json is NULL); on success remembers
 * the attested OPAQUE server key for the operation that follows. */
static enum sv_result verify(struct sv_ctx *ctx, const uint8_t *nonce, size_t nonce_len,
                             const char *json, size_t json_len, char *summary, size_t summary_len)
{
	uint8_t fresh[32];
	struct sv_buf reply = {0};
	struct client_evidence *ev = NULL;
	struct client_attest_result *res = NULL;
	char why[512];
	enum sv_result out = SV_RESULT_ERROR;

	ctx->failed_check = NULL;
	ctx->attested = 0;
	if (summary != NULL && summary_len > 0)
		summary[0] = '\0';
	if (ctx->expect == NULL)
		return fail(ctx, SV_RESULT_ERROR,
		            "no expected values to verify against: set an expect file "
		            "(sv_ctx_set_expect, --expect FILE)");
	if ((json != NULL) != (nonce != NULL) ||
	    (nonce != NULL &&
	     (nonce_len < CLIENT_EVIDENCE_NONCE_MIN || nonce_len > CLIENT_EVIDENCE_NONCE_MAX)))
		return fail(ctx, SV_RESULT_ERROR,
		            "saved evidence needs the nonce it was fetched for (8 to 64 bytes)");
	ev = calloc(1, sizeof(*ev));
	res = calloc(1, sizeof(*res));
	if (ev == NULL || res == NULL) {
		out = fail(ctx, SV_RESULT_ERROR, "out of memory");
		goto out;
	}
	if (json == NULL) {
		randombytes_buf(fresh, sizeof(fresh));
		nonce = fresh;
		nonce_len = sizeof(fresh);
		if (sv_buf_init(&reply, CLIENT_EVIDENCE_JSON_MAX) != 0) {
			out = fail(ctx, SV_RESULT_ERROR, "out of memory");
			goto out;
		}
		if ((out = fetch_evidence(ctx, nonce, nonce_len, &reply)) != SV_RESULT_OK)
			goto out;
		json = (const char *)sv_buf_ptr(&reply);
		json_len = sv_buf_remaining(&reply);
	}
	if (client_evidence_decode(ev, json, json_len, why, sizeof(why)) != SV_OK) {
		out = fail(ctx, SV_RESULT_ERROR, "the attestation evidence is malformed: %s", why);
		goto out;
	}
	int r = client_attest_verify(res, ctx->expect, (const char *const *)ctx->extra_ca.ca,
	                             ctx->extra_ca.n_ca, ev, nonce, nonce_len, activate, ctx);
	if (r == SV_OK) {
		memcpy(ctx->attested_key, res->stmt.server_public_key, OPAQUE_PK_LEN);
		ctx->attested = 1;
		if (summary != NULL && summary_len > 0)
			snprintf(summary, summary_len, "%s", res->summary);
		out = SV_RESULT_OK;
	} else if (res->check != NULL) {
		ctx->failed_check = res->check;
		out = fail(ctx, SV_RESULT_UNVERIFIED, "%s: %s", res->check, res->reason);
	} else {
		out = fail(ctx, SV_RESULT_ERROR, "attestation: %s", res->reason);
	}
out:
	if (ev != NULL)
		client_evidence_clear(ev);
	free(ev);
	free(res);
	sv_buf_free(&reply);
	return out;
}

enum sv_result sv_verify(struct sv_ctx *ctx, const uint8_t *nonce, size_t nonce_len,
                         const char *evidence_json, size_t evidence_len, char *summary,
                         size_t summary_len)
{
	ctx->err[0] = '\0';
	enum sv_result r =
	    verify(ctx, nonce, nonce_len, evidence_json, evidence_len, summary, summary_len);
	ctx->attested = 0; /* a standalone verification vouches for no later operation */
	return r;
}

/* For the realm client (client/librealms.c, client/svinternal.h): verifies the vault like
 * sv_verify and hands out the vault id of the attested OPAQUE key. */
enum sv_result client_verify_vault_id(struct sv_ctx *ctx, uint8_t vault_id[INFO_VAULT_ID_LEN])
{
	ctx->err[0] = '\0';
	enum sv_result r = verify(ctx, NULL, 0, NULL, 0, NULL, 0);
	if (r == SV_RESULT_OK)
		info_vault_id(vault_id, ctx->attested_key);
	ctx->attested = 0;
	return r;
}

/*
 * GET /v1/info, once per context (docs/protocol.md "Vault information"): a vault with another
 * OPAQUE suite, context or wire version would charge a guess for a login that cannot succeed, so
 * the client stops here and names the mismatch. A vault without the endpoint (404: one older than
 * it) is talked to as before.
 */
static enum sv_result check_info(struct sv_ctx *ctx)
{
	struct sv_info info;
	struct sv_buf reply = {0};
	char why[512];
	long status = 0;
	enum sv_result res;
	if (ctx->info_checked)
		return SV_RESULT_OK;
	if (sv_buf_init(&reply, INFO_JSON_MAX) != 0)
		return fail(ctx, SV_RESULT_ERROR, "out of memory");
	if (client_http_get(ctx->http, msg_path(SV_MSG_INFO), &status, &reply, ctx->err,
	                    sizeof(ctx->err)) != 0) {
		size_t n = strlen(ctx->err);
		snprintf(ctx->err + n, sizeof(ctx->err) - n,
		         " (check --server, that sealvaultd runs, and --cacert)");
		res = SV_RESULT_ERROR;
		goto out;
	}
	switch (status) {
	case 200: break;
	case 404: /* no /v1/info: a vault older than this client */
		ctx->info_checked = 1;
		res = SV_RESULT_OK;
		goto out;
	case 429:
	case 503:
		res = fail(ctx, SV_RESULT_BUSY,
		           "GET /v1/info: the server is busy (HTTP %ld); retry later", status);
		goto out;
	default:
		res =
		    fail(ctx, SV_RESULT_ERROR,
		         "GET /v1/info: HTTP %ld; is --server the base URL of a sealvault server?",
		         status);
		goto out;
	}
	if (client_info_decode(&info, (const char *)sv_buf_ptr(&reply), sv_buf_remaining(&reply),
	                       why, sizeof(why)) != SV_OK) {
		res = fail(ctx, SV_RESULT_ERROR,
		           "GET /v1/info: the server's description is malformed (%s); client and "
		           "server versions may differ",
		           why);
		goto out;
	}
	if (client_info_check(&info, ctx->context, ctx->context_len, SV_PROTOCOL_VERSION, why,
	                      sizeof(why)) != SV_OK) {
		res = fail(ctx, SV_RESULT_ERROR, "%s; no guess was spent", why);
		goto out;
	}
	ctx->info_checked = 1;
	res = SV_RESULT_OK;
out:
	sv_buf_free(&reply);
	return res;
}

/* At the start of an operation (once for an operation made of others, like change-password):
 * with an expect file, verify the server first; then compare its /v1/info with this context. */
static enum sv_result gate(struct sv_ctx *ctx)
{
	enum sv_result res;
	ctx->failed_check = NULL;
	if (ctx->op_depth > 0)
		return SV_RESULT_OK;
	if (ctx->expect != NULL && (res = verify(ctx, NULL, 0, NULL, 0, NULL, 0)) != SV_RESULT_OK)
		return res;
	if ((res = check_info(ctx)) != SV_RESULT_OK)
		ctx->attested = 0;
	return res;
}

/* The OPAQUE server key the protocol just authenticated must be the attested one. */
static enum sv_result check_server_key(struct sv_ctx *ctx, const uint8_t pk[OPAQUE_PK_LEN])
{
	if (ctx->expect == NULL)
		return SV_RESULT_OK;
	if (!ctx->attested || sodium_memcmp(pk, ctx->attested_key, OPAQUE_PK_LEN) != 0) {
		ctx->failed_check = CLIENT_ATTEST_SERVER_KEY;
		return fail(ctx, SV_RESULT_UNVERIFIED,
		            "%s: the server used another OPAQUE key than the attested vault's; it "
		            "is not the verified vault (nothing more was sent)",
		            CLIENT_ATTEST_SERVER_KEY);
	}
	return SV_RESULT_OK;
}

void sv_secret_free(uint8_t *secret, size_t secret_len)
{
	if (secret != NULL)
		sodium_free(secret);
	(void)secret_len; /* sodium_free wipes the whole allocation */
}

static struct opaque_params params(const struct sv_ctx *ctx)
{
	struct opaque_params p = {.context = ctx->context, .context_len = ctx->context_len};
	return p;
}

/* Reason text of a 400, 409, 429, 503 or 507 answer, if the server sent printable ASCII. */
static const char *reply_text(struct sv_ctx *ctx, char *buf, size_t n)
{
	size_t len = sv_buf_remaining(&ctx->rep);
	const uint8_t *p = sv_buf_ptr(&ctx->rep);
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
 * POSTs ctx->req to the route of request type (common/msgtable.h). Returns SV_RESULT_OK for a 200
 * answer (the body in ctx->rep) and maps every other answer to a result with a message. what names
 * the step for messages.
 */
static enum sv_result exchange(struct sv_ctx *ctx, uint16_t type, const char *what,
                               int *attempts_left, int register_step)
{
	char text[300];
	long status = 0;
	/* every vault request carries the access token (docs/tokens.md); nothing else does */
	client_http_set_bearer(ctx->http, ctx->token);
	int r = client_http_post(ctx->http, msg_path(type), ctx->req.data, ctx->req.len, &status,
	                         &ctx->rep, ctx->err, sizeof(ctx->err));
	client_http_set_bearer(ctx->http, NULL);
	if (r != 0) {
		size_t n = strlen(ctx->err);
		snprintf(ctx->err + n, sizeof(ctx->err) - n,
		         " (check --server, that sealvaultd runs, and --cacert)");
		return SV_RESULT_ERROR;
	}
	uint8_t left;
	/* 401, or a 403 whose body is a reason rather than the one byte of attempts left: the
	 * vault refused the access token (RFC 6750; the body is its error_description) */
	if (status == 401 || (status == 403 && sv_buf_remaining(&ctx->rep) > 1))
		return fail(ctx, ctx->token_api ? SV_RESULT_TOKEN_REFUSED : SV_RESULT_ERROR,
		            "the vault refused the access token: %s",
		            reply_text(ctx, text, sizeof(text)));
	switch (status) {
	case 200: return SV_RESULT_OK;
	case 403:
		if (client_wire_parse_auth_failed(&left, sv_buf_ptr(&ctx->rep),
		                                  sv_buf_remaining(&ctx->rep)) == 0 &&
		    attempts_left != NULL)
			*attempts_left = left;
		return fail(ctx, SV_RESULT_WRONG_PASSWORD,
		            "%s: wrong password or unknown user (or a KSF profile or context "
		            "other than the one used at registration)",
		            what);
	case 410:
		return fail(ctx, SV_RESULT_LOCKED,
		            "%s: too many wrong guesses; the server destroyed this record for good",
		            what);
	case 409:
		if (register_step)
			return fail(ctx, SV_RESULT_EXISTS,
			            "%s: this user is already registered; recover, change the "
			            "password or delete it instead",
			            what);
		return fail(ctx, SV_RESULT_ERROR,
		            "%s: the server refused the step as out of order (%s); try again", what,
		            reply_text(ctx, text, sizeof(text)));
	case 429:
		return fail(ctx, SV_RESULT_BUSY, "%s: the vault limits the rate (HTTP 429: %s)",
		            what, reply_text(ctx, text, sizeof(text)));
	case 503:
		return fail(ctx, SV_RESULT_BUSY,
		            "%s: the server is busy (HTTP %ld: %s); retry later", what, status,
		            reply_text(ctx, text, sizeof(text)));
	case 507:
		return fail(ctx, SV_RESULT_FULL,
		            "%s: the vault is full and registers no new users (HTTP 507: %s); "
		            "nothing was stored: ask its operator, or use another vault",
		            what, reply_text(ctx, text, sizeof(text)));
	case 400:
		return fail(ctx, SV_RESULT_ERROR,
		            "%s: the server rejected the request (%s); client and server versions "
		            "may differ",
		            what, reply_text(ctx, text, sizeof(text)));
	case 404:
	case 405:
	case 415:
		return fail(ctx, SV_RESULT_ERROR,
		            "%s: HTTP %ld; is --server the base URL of a sealvault server?", what,
		            status);
	case 500:
		return fail(ctx, SV_RESULT_ERROR,
		            "%s: the server failed internally (HTTP 500); its log says why", what);
	default: return fail(ctx, SV_RESULT_ERROR, "%s: unexpected HTTP status %ld", what, status);
	}
}

static enum sv_result check_user(struct sv_ctx *ctx, const char *user, size_t *len)
{
	*len = user ? strlen(user) : 0;
	if (*len == 0 || *len > SV_USER_MAX_LEN)
		return fail(ctx, SV_RESULT_ERROR, "the user id must be 1 to %d bytes",
		            SV_USER_MAX_LEN);
	return SV_RESULT_OK;
}

static enum sv_result check_password(struct sv_ctx *ctx, size_t len)
{
	if (len == 0 || len > SV_PASSWORD_MAX_LEN)
		return fail(ctx, SV_RESULT_ERROR, "the password must be 1 to %d bytes",
		            SV_PASSWORD_MAX_LEN);
	return SV_RESULT_OK;
}

/* The user and password bounds, checked before anything is sent (even GET /v1/info). */
static enum sv_result check_inputs(struct sv_ctx *ctx, const char *user, size_t password_len)
{
	size_t ulen;
	enum sv_result res = check_user(ctx, user, &ulen);
	return res != SV_RESULT_OK ? res : check_password(ctx, password_len);
}

static enum sv_result bad_reply(struct sv_ctx *ctx, const char *what)
{
	return fail(ctx, SV_RESULT_ERROR,
	            "%s: the server's answer is malformed; client and server versions may differ",
	            what);
}

static enum sv_result internal(struct sv_ctx *ctx, const char *what, int err)
{
	return fail(ctx, SV_RESULT_ERROR, "%s: %s", what, sv_strerror(err));
}

/*
 * The registration's finishing step shared by register and change-password (vaultsteps.c): its
 * failures as messages.
 */
static enum sv_result finish_failed(struct sv_ctx *ctx, int r, const char *what)
{
	if (r == SV_ERR_NOMEM && what == NULL)
		return fail(ctx, SV_RESULT_ERROR,
		            "Argon2id could not get %u KiB of memory; use a smaller KSF profile",
		            ctx->ksf.m_kib);
	if (what == NULL)
		return fail(ctx, SV_RESULT_ERROR,
		            "the server's registration response is invalid (%s); is this the "
		            "right server?",
		            sv_strerror(r));
	return internal(ctx, what, r);
}

/* The blocking calls below are the I/O-free steps of vaultsteps.c with one exchange between
 * each. */
enum sv_result sv_register(struct sv_ctx *ctx, const char *user, const uint8_t *password,
                           size_t password_len, const uint8_t *secret, size_t secret_len,
                           unsigned max_attempts)
{
	struct vaultsteps *s = NULL;
	struct opaque_params p = params(ctx);
	const char *what = NULL;
	size_t ulen;
	enum sv_result res;

	ctx->err[0] = '\0';
	if ((res = check_user(ctx, user, &ulen)) != SV_RESULT_OK ||
	    (res = check_password(ctx, password_len)) != SV_RESULT_OK)
		return res;
	if (secret_len == 0 || secret_len > SV_SECRET_MAX_LEN)
		return fail(ctx, SV_RESULT_ERROR, "the secret must be 1 to %d bytes",
		            SV_SECRET_MAX_LEN);
	if (max_attempts > SV_MAX_ATTEMPTS_MAX)
		return fail(ctx, SV_RESULT_ERROR,
		            "the guess limit must be 1 to %d (0: server default)",
		            SV_MAX_ATTEMPTS_MAX);
	if ((res = gate(ctx)) != SV_RESULT_OK)
		return res;
	s = sodium_malloc(sizeof(*s));
	if (s == NULL)
		return fail(ctx, SV_RESULT_ERROR, "out of memory");
	memset(s, 0, sizeof(*s));
	const uint8_t *u = (const uint8_t *)user;
	int r = vaultsteps_register_start(s, &ctx->req, u, ulen, password, password_len);
	if (r != 0) {
		res = internal(ctx, "building the registration request", r);
		goto out;
	}
	res = exchange(ctx, SV_MSG_REGISTER_START, "register", NULL, 1);
	if (res != SV_RESULT_OK)
		goto out;
	if (vaultsteps_register_reply(s, sv_buf_ptr(&ctx->rep), sv_buf_remaining(&ctx->rep)) != 0) {
		res = bad_reply(ctx, "register");
		goto out;
	}
	res = check_server_key(ctx, s->server_pk);
	if (res != SV_RESULT_OK)
		goto out;
	r = vaultsteps_register_finish(s, &ctx->req, u, ulen, password, password_len, secret,
	                               secret_len, &p, &ctx->ksf, (uint8_t)max_attempts, &what);
	if (r != 0) {
		res = finish_failed(ctx, r, what);
		goto out;
	}
	res = exchange(ctx, SV_MSG_REGISTER_FINISH, "register", NULL, 1);
	if (res == SV_RESULT_OK &&
	    client_wire_parse_empty(sv_buf_ptr(&ctx->rep), sv_buf_remaining(&ctx->rep)) != 0)
		res = bad_reply(ctx, "register");
out:
	vaultsteps_wipe(s);
	sodium_free(s);
	sv_buf_reset(&ctx->req);
	sv_buf_reset(&ctx->rep);
	ctx->attested = 0;
	return res;
}

/*
 * One login: KE1 -> KE2 (a guess is charged) -> KE3 with op. On SV_RESULT_OK the op's 200 reply
 * body is in ctx->rep and s holds the session keys and export key. A wrong password still sends
 * a KE3 (random bytes) so that the server records the failure at once and answers with the
 * authoritative attempts left.
 */
static enum sv_result login(struct sv_ctx *ctx, struct vaultsteps *s, const char *user,
                            const uint8_t *pw, size_t pw_len, uint8_t op, const uint8_t *payload,
                            size_t payload_len, const char *what, int *attempts_left)
{
	struct opaque_params p = params(ctx);
	size_t ulen;
	enum sv_result res;

	if ((res = check_user(ctx, user, &ulen)) != SV_RESULT_OK ||
	    (res = check_password(ctx, pw_len)) != SV_RESULT_OK)
		return res;
	int r = vaultsteps_login_start(s, &ctx->req, (const uint8_t *)user, ulen, pw, pw_len);
	if (r != 0)
		return internal(ctx, "building the login request", r);
	res = exchange(ctx, SV_MSG_LOGIN_START, what, attempts_left, 0);
	if (res != SV_RESULT_OK)
		return res;
	r = vaultsteps_login_ke2(s, sv_buf_ptr(&ctx->rep), sv_buf_remaining(&ctx->rep), pw, pw_len,
	                         &p, &ctx->ksf, attempts_left);
	if (r == SV_ERR_NOMEM)
		return fail(ctx, SV_RESULT_ERROR,
		            "Argon2id could not get %u KiB of memory; use a smaller KSF profile",
		            ctx->ksf.m_kib);
	if (r != 0)
		return bad_reply(ctx, what);
	int wrong = s->wrong;
	if (!wrong && (res = check_server_key(ctx, s->server_pk)) != SV_RESULT_OK) {
		sodium_memzero(s->ke3, sizeof(s->ke3));
		return res;
	}
	r = vaultsteps_login_finish(s, &ctx->req, op, payload, payload_len);
	if (r == SV_ERR_CRYPTO)
		return internal(ctx, "deriving the session keys", r);
	if (r != 0)
		return internal(ctx, "building the login proof", r);
	res = exchange(ctx, SV_MSG_LOGIN_FINISH, what, attempts_left, 0);
	if (wrong && res == SV_RESULT_OK)
		res = fail(ctx, SV_RESULT_ERROR,
		           "%s: the server accepted a proof we know to be wrong; this is not a "
		           "sealvault server you can trust",
		           what);
	else if (wrong && res == SV_RESULT_ERROR)
		res = fail(ctx, SV_RESULT_WRONG_PASSWORD,
		           "%s: wrong password or unknown user (or a KSF profile or context other "
		           "than the one used at registration)",
		           what);
	return res;
}

enum sv_result sv_recover(struct sv_ctx *ctx, const char *user, const uint8_t *password,
                          size_t password_len, uint8_t **secret, size_t *secret_len,
                          int *attempts_left)
{
	struct vaultsteps *s = NULL;
	enum sv_result res;
	struct ksf_params used;
	const char *what = NULL;

	ctx->err[0] = '\0';
	*secret = NULL;
	*secret_len = 0;
	if (attempts_left != NULL)
		*attempts_left = -1;
	if ((res = check_inputs(ctx, user, password_len)) != SV_RESULT_OK ||
	    (res = gate(ctx)) != SV_RESULT_OK)
		return res;
	s = sodium_malloc(sizeof(*s));
	if (s == NULL)
		return fail(ctx, SV_RESULT_ERROR, "out of memory");
	memset(s, 0, sizeof(*s));
	res = login(ctx, s, user, password, password_len, CLIENT_WIRE_OP_RECOVER, NULL, 0,
	            "recover", attempts_left);
	if (res != SV_RESULT_OK)
		goto out;
	int r = vaultsteps_recover_open(s, sv_buf_ptr(&ctx->rep), sv_buf_remaining(&ctx->rep),
	                                (const uint8_t *)user, strlen(user), &used, &what);
	if (r != 0 && what == NULL) {
		res = bad_reply(ctx, "recover");
		goto out;
	}
	if (r != 0) {
		res = fail(ctx, SV_RESULT_ERROR,
		           "recover: the stored backup key does not open with this password (%s); "
		           "it was stored by an incompatible client or altered",
		           sv_strerror(r));
		goto out;
	}
	uint8_t *out = sodium_malloc(s->secret_len);
	if (out == NULL) {
		res = fail(ctx, SV_RESULT_ERROR, "out of memory");
		goto out;
	}
	memcpy(out, s->secret, s->secret_len);
	*secret = out;
	*secret_len = s->secret_len;
	res = SV_RESULT_OK;
out:
	vaultsteps_wipe(s);
	sodium_free(s);
	sv_buf_reset(&ctx->req);
	sv_buf_reset(&ctx->rep);
	if (ctx->op_depth == 0)
		ctx->attested = 0;
	return res;
}

enum sv_result sv_delete(struct sv_ctx *ctx, const char *user, const uint8_t *password,
                         size_t password_len, int *attempts_left)
{
	struct vaultsteps *s = NULL;
	enum sv_result res;

	ctx->err[0] = '\0';
	if (attempts_left != NULL)
		*attempts_left = -1;
	if ((res = check_inputs(ctx, user, password_len)) != SV_RESULT_OK ||
	    (res = gate(ctx)) != SV_RESULT_OK)
		return res;
	s = sodium_malloc(sizeof(*s));
	if (s == NULL)
		return fail(ctx, SV_RESULT_ERROR, "out of memory");
	memset(s, 0, sizeof(*s));
	res = login(ctx, s, user, password, password_len, CLIENT_WIRE_OP_DELETE, NULL, 0, "delete",
	            attempts_left);
	if (res == SV_RESULT_OK &&
	    client_wire_parse_empty(sv_buf_ptr(&ctx->rep), sv_buf_remaining(&ctx->rep)) != 0)
		res = bad_reply(ctx, "delete");
	vaultsteps_wipe(s);
	sodium_free(s);
	sv_buf_reset(&ctx->req);
	sv_buf_reset(&ctx->rep);
	ctx->attested = 0;
	return res;
}

enum sv_result sv_change_password(struct sv_ctx *ctx, const char *user, const uint8_t *old_password,
                                  size_t old_len, const uint8_t *new_password, size_t new_len,
                                  unsigned max_attempts, int *attempts_left)
{
	struct vaultsteps *s = NULL;
	uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN];
	uint8_t *secret = NULL;
	size_t secret_len = 0;
	const char *what = NULL;
	enum sv_result res;

	if (attempts_left != NULL)
		*attempts_left = -1;
	ctx->err[0] = '\0';
	if ((res = check_password(ctx, new_len)) != SV_RESULT_OK ||
	    (res = check_inputs(ctx, user, old_len)) != SV_RESULT_OK)
		return res;
	if (max_attempts > SV_MAX_ATTEMPTS_MAX)
		return fail(ctx, SV_RESULT_ERROR,
		            "the guess limit must be 1 to %d (0: server default)",
		            SV_MAX_ATTEMPTS_MAX);
	if ((res = gate(ctx)) != SV_RESULT_OK)
		return res;
	/* The secret must be re-sealed under the new password's export key: fetch it first. */
	ctx->op_depth++;
	res = sv_recover(ctx, user, old_password, old_len, &secret, &secret_len, attempts_left);
	if (res != SV_RESULT_OK)
		goto out;
	s = sodium_malloc(sizeof(*s));
	if (s == NULL) {
		res = fail(ctx, SV_RESULT_ERROR, "out of memory");
		goto out;
	}
	memset(s, 0, sizeof(*s));
	int r = vaultsteps_change_request(s, request, new_password, new_len);
	if (r != 0) {
		res = internal(ctx, "building the new registration", r);
		goto out;
	}
	res = login(ctx, s, user, old_password, old_len, CLIENT_WIRE_OP_CHANGE, request,
	            sizeof(request), "change-password", attempts_left);
	if (res != SV_RESULT_OK)
		goto out;
	if (vaultsteps_change_reply(s, sv_buf_ptr(&ctx->rep), sv_buf_remaining(&ctx->rep)) != 0) {
		res = bad_reply(ctx, "change-password");
		goto out;
	}
	struct opaque_params p = params(ctx);
	r = vaultsteps_change_finish(s, &ctx->req, (const uint8_t *)user, strlen(user),
	                             new_password, new_len, secret, secret_len, &p, &ctx->ksf,
	                             (uint8_t)max_attempts, &what);
	if (r != 0) {
		res = finish_failed(ctx, r, what);
		goto out;
	}
	res = exchange(ctx, SV_MSG_CHANGE_FINISH, "change-password", attempts_left, 0);
	if (res == SV_RESULT_OK &&
	    client_wire_parse_empty(sv_buf_ptr(&ctx->rep), sv_buf_remaining(&ctx->rep)) != 0)
		res = bad_reply(ctx, "change-password");
out:
	if (s != NULL) {
		vaultsteps_wipe(s);
		sodium_free(s);
	}
	sv_secret_free(secret, secret_len);
	sv_buf_reset(&ctx->req);
	sv_buf_reset(&ctx->rep);
	ctx->op_depth--;
	ctx->attested = 0;
	return res;
}

/* ---- the same operations with an access token (since 0.3.0) ---- */

/* Checks the token's form (what the broker would refuse anyway) and lends it to ctx for one
 * call (NULL: no token, but a refusal is still SV_RESULT_TOKEN_REFUSED): SV_RESULT_OK, or
 * SV_RESULT_ERROR with a message. */
static enum sv_result token_begin(struct sv_ctx *ctx, const char *token)
{
	static const char b64token[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                               "0123456789-._~+/=";
	ctx->err[0] = '\0';
	size_t n = token != NULL ? strlen(token) : 0;
	if (token != NULL && n == 0)
		return fail(ctx, SV_RESULT_ERROR, "the access token is empty");
	if (n > SV_TOKEN_MAX_LEN || strspn(token != NULL ? token : "", b64token) != n)
		return fail(ctx, SV_RESULT_ERROR,
		            "the access token is not a JWT (at most %d characters of base64url and "
		            "'.')",
		            SV_TOKEN_MAX_LEN);
	ctx->token = token;
	ctx->token_api = 1;
	return SV_RESULT_OK;
}

static enum sv_result token_end(struct sv_ctx *ctx, enum sv_result res)
{
	ctx->token = NULL;
	ctx->token_api = 0;
	return res;
}

enum sv_result sv_register_token(struct sv_ctx *ctx, const char *token, const char *user,
                                 const uint8_t *password, size_t password_len,
                                 const uint8_t *secret, size_t secret_len, unsigned max_attempts)
{
	enum sv_result res = token_begin(ctx, token);
	if (res != SV_RESULT_OK)
		return res;
	return token_end(
	    ctx, sv_register(ctx, user, password, password_len, secret, secret_len, max_attempts));
}

enum sv_result sv_recover_token(struct sv_ctx *ctx, const char *token, const char *user,
                                const uint8_t *password, size_t password_len, uint8_t **secret,
                                size_t *secret_len, int *attempts_left)
{
	*secret = NULL;
	*secret_len = 0;
	if (attempts_left != NULL)
		*attempts_left = -1;
	enum sv_result res = token_begin(ctx, token);
	if (res != SV_RESULT_OK)
		return res;
	return token_end(
	    ctx, sv_recover(ctx, user, password, password_len, secret, secret_len, attempts_left));
}

enum sv_result sv_delete_token(struct sv_ctx *ctx, const char *token, const char *user,
                               const uint8_t *password, size_t password_len, int *attempts_left)
{
	if (attempts_left != NULL)
		*attempts_left = -1;
	enum sv_result res = token_begin(ctx, token);
	if (res != SV_RESULT_OK)
		return res;
	return token_end(ctx, sv_delete(ctx, user, password, password_len, attempts_left));
}

enum sv_result sv_change_password_token(struct sv_ctx *ctx, const char *token, const char *user,
                                        const uint8_t *old_password, size_t old_len,
                                        const uint8_t *new_password, size_t new_len,
                                        unsigned max_attempts, int *attempts_left)
{
	if (attempts_left != NULL)
		*attempts_left = -1;
	enum sv_result res = token_begin(ctx, token);
	if (res != SV_RESULT_OK)
		return res;
	return token_end(ctx, sv_change_password(ctx, user, old_password, old_len, new_password,
	                                         new_len, max_attempts, attempts_left));
}

int sv_generate_code(char code[SV_CODE_LEN + 1])
{
	/* Crockford's base32 alphabet: no I, L, O, U. 5 bits per symbol, 25 symbols = 125 bits. */
	static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	if (sodium_init() < 0)
		return -1;
	size_t o = 0;
	for (int i = 0; i < 25; i++) {
		if (i > 0 && i % 5 == 0)
			code[o++] = '-';
		code[o++] = alphabet[randombytes_uniform(32)];
	}
	code[o] = '\0';
	return 0;
}
