/*
 * libsealvault's threshold realms (sealvault.h, "Threshold realms"): the realm list
 * (realmlist.c), optional attestation of each realm through the single-vault verifier, the access
 * tokens, and the I/O-free core (realmcore.c) run by the parallel driver (realmnet.c).
 */
#include "client/sealvault.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/realmcore.h"
#include "client/realmlist.h"
#include "client/realmnet.h"
#include "client/svinternal.h"
#include "common/err.h"

#define DEFAULT_TOTAL 10

_Static_assert(SV_REALMS_SECRET_MAX_LEN == REALM_SECRET_MAX, "one secret bound");

struct sv_realms {
	struct realmlist list;
	int loaded;
	unsigned threshold;     /* sv_realms_set_threshold, else 0 */
	char *token[REALM_MAX]; /* sv_realms_set_token: sodium_malloc'd, NUL-terminated */
	struct ksf_params ksf;
	unsigned timeout_s;
	char *tpm_ca;
	sv_realms_warn_fn warn;
	void *warn_arg;
	char err[REALMCORE_ERR_MAX + 256];
};

static enum sv_result fail(struct sv_realms *r, enum sv_result res, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum sv_result fail(struct sv_realms *r, enum sv_result res, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return res;
}

int sv_realms_new(struct sv_realms **out)
{
	*out = NULL;
	if (sodium_init() < 0)
		return -1;
	struct sv_realms *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -1;
	r->ksf.type = KSF_ARGON2ID;
	r->ksf.t = SV_KSF_DEFAULT_T;
	r->ksf.m_kib = SV_KSF_DEFAULT_M_KIB;
	r->timeout_s = 30;
	*out = r;
	return 0;
}

static void free_token(struct sv_realms *r, size_t i)
{
	if (r->token[i] != NULL)
		sodium_free(r->token[i]);
	r->token[i] = NULL;
}

void sv_realms_free(struct sv_realms *r)
{
	if (r == NULL)
		return;
	realmlist_clear(&r->list);
	for (size_t i = 0; i < REALM_MAX; i++)
		free_token(r, i);
	free(r->tpm_ca);
	free(r);
}

int sv_realms_load(struct sv_realms *r, const char *path)
{
	struct realmlist l;
	r->err[0] = '\0';
	if (path == NULL) {
		fail(r, SV_RESULT_ERROR, "no realm list file given");
		return -1;
	}
	if (realmlist_load(&l, path, r->err, sizeof(r->err)) != SV_OK)
		return -1;
	realmlist_clear(&r->list);
	r->list = l;
	r->loaded = 1;
	if (r->threshold > r->list.n)
		r->threshold = 0;
	for (size_t i = 0; i < REALM_MAX; i++)
		free_token(r, i);
	return 0;
}

const char *sv_realms_error(const struct sv_realms *r)
{
	return r->err;
}

unsigned sv_realms_count(const struct sv_realms *r)
{
	return (unsigned)r->list.n;
}

const char *sv_realms_name(const struct sv_realms *r, unsigned i)
{
	return i < r->list.n ? r->list.realms[i].name : NULL;
}

unsigned sv_realms_threshold(const struct sv_realms *r)
{
	return r->threshold ? r->threshold : r->list.threshold;
}

int sv_realms_set_threshold(struct sv_realms *r, unsigned t)
{
	if (t < 1 || t > r->list.n || t > REALM_MAX) {
		fail(r, SV_RESULT_ERROR, "the threshold must be 1 to %zu (the number of realms)",
		     r->list.n);
		return -1;
	}
	r->threshold = t;
	return 0;
}

/* A JWT's characters (what the realm would refuse anyway), 1..SV_TOKEN_MAX_LEN of them. */
static int token_ok(const char *t, size_t n)
{
	static const char b64token[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                               "0123456789-._~+/=";
	return n >= 1 && n <= SV_TOKEN_MAX_LEN && strspn(t, b64token) == n;
}

int sv_realms_set_token(struct sv_realms *r, unsigned i, const char *token)
{
	if (i >= r->list.n) {
		fail(r, SV_RESULT_ERROR, "no realm %u in the list", i);
		return -1;
	}
	if (token != NULL && !token_ok(token, strlen(token))) {
		fail(r, SV_RESULT_ERROR, "the access token is not a JWT");
		return -1;
	}
	free_token(r, i);
	if (token == NULL)
		return 0;
	size_t n = strlen(token);
	if ((r->token[i] = sodium_malloc(n + 1)) == NULL) {
		fail(r, SV_RESULT_ERROR, "out of memory");
		return -1;
	}
	memcpy(r->token[i], token, n + 1);
	return 0;
}

int sv_realms_set_ksf(struct sv_realms *r, uint32_t t, uint32_t m_kib)
{
	struct ksf_params k = {.type = KSF_ARGON2ID, .t = t, .m_kib = m_kib};
	if (t < SV_KSF_MIN_T || m_kib < SV_KSF_MIN_M_KIB || m_kib > SV_KSF_MAX_M_KIB ||
	    ksf_params_check(&k) != 0)
		return -1;
	r->ksf = k;
	return 0;
}

void sv_realms_set_timeout(struct sv_realms *r, unsigned seconds)
{
	r->timeout_s = seconds ? seconds : 1;
}

int sv_realms_set_tpm_ca(struct sv_realms *r, const char *path)
{
	char *c = NULL;
	if (path != NULL && (c = strdup(path)) == NULL)
		return -1;
	free(r->tpm_ca);
	r->tpm_ca = c;
	return 0;
}

void sv_realms_set_warn(struct sv_realms *r, sv_realms_warn_fn fn, void *arg)
{
	r->warn = fn;
	r->warn_arg = arg;
}

int sv_realms_guess_limit(const struct sv_realms *r, unsigned total, unsigned *per_realm,
                          unsigned *bound)
{
	unsigned t = sv_realms_threshold(r), n = (unsigned)r->list.n, g = 0;
	if (total == 0)
		total = DEFAULT_TOTAL;
	if (t == 0 || realm_guess_limit(&g, total, t, n) != 0)
		return -1;
	if (per_realm != NULL)
		*per_realm = g;
	if (bound != NULL)
		*bound = realm_guess_bound(g, t, n);
	return 0;
}

/* ---- one operation ---- */

struct run {
	struct sv_realms *r;
	char *token[REALM_MAX]; /* this operation's tokens (sodium_malloc'd) */
};

static void on_warn(void *arg, size_t realm, const char *message)
{
	struct sv_realms *r = arg;
	(void)realm;
	if (r->warn != NULL)
		r->warn(r->warn_arg, message);
}

/* The token of realm i: set by the caller, else the first line of the list's token file. */
static enum sv_result load_token(struct run *run, size_t i)
{
	struct sv_realms *r = run->r;
	const struct realmlist_entry *e = &r->list.realms[i];
	const char *src = r->token[i];
	size_t n = 0;
	if (src == NULL && e->token == NULL)
		return SV_RESULT_OK;
	if ((run->token[i] = sodium_malloc(SV_TOKEN_MAX_LEN + 1)) == NULL)
		return fail(r, SV_RESULT_ERROR, "out of memory");
	if (src != NULL) {
		memcpy(run->token[i], src, strlen(src) + 1);
		return SV_RESULT_OK;
	}
	FILE *f = fopen(e->token, "re");
	if (f == NULL)
		return fail(r, SV_RESULT_ERROR, "realm %s: cannot open its token file %s: %s",
		            e->name, e->token, strerror(errno));
	setvbuf(f, NULL, _IONBF, 0); /* no stdio copy of the token */
	int c, too_long = 0;
	while ((c = getc(f)) != EOF && c != '\n') {
		if (c == ' ' || c == '\t' || c == '\r')
			continue;
		if (n == SV_TOKEN_MAX_LEN) {
			too_long = 1;
			break;
		}
		run->token[i][n++] = (char)c;
	}
	run->token[i][n] = '\0';
	int err = ferror(f);
	fclose(f);
	if (err || too_long || !token_ok(run->token[i], n))
		return fail(
		    r, SV_RESULT_ERROR,
		    "realm %s: its token file %s does not hold an access token (one line, a "
		    "JWT of at most %d characters)",
		    e->name, e->token, SV_TOKEN_MAX_LEN);
	return SV_RESULT_OK;
}

/* Realm i's attestation (when the list gives an expect file): verified like sv_verify, and the
 * attested vault must be the one the list names. Failures leave the realm out. */
static enum sv_result attest(struct sv_realms *r, struct realmcore *rc, size_t i)
{
	const struct realmlist_entry *e = &r->list.realms[i];
	struct sv_ctx *ctx = NULL;
	uint8_t id[INFO_VAULT_ID_LEN];
	char why[REALMCORE_ERR_MAX];
	enum realmcore_kind kind = REALMCORE_KIND_UNVERIFIED;
	if (e->expect == NULL)
		return SV_RESULT_OK;
	if (sv_ctx_new(&ctx, e->url) != 0)
		return fail(r, SV_RESULT_ERROR, "realm %s: cannot use its URL", e->name);
	sv_ctx_set_timeout(ctx, r->timeout_s);
	if (sv_ctx_set_cacert(ctx, e->ca) != 0 || sv_ctx_set_expect(ctx, e->expect) != 0 ||
	    (r->tpm_ca != NULL && sv_ctx_set_tpm_ca(ctx, r->tpm_ca) != 0)) {
		enum sv_result res = fail(r, SV_RESULT_ERROR, "realm %s: expect file %s: %s",
		                          e->name, e->expect, sv_ctx_error(ctx));
		sv_ctx_free(ctx);
		return res;
	}
	enum sv_result v = client_verify_vault_id(ctx, id);
	if (v == SV_RESULT_OK && memcmp(id, e->id, REALM_ID_LEN) == 0) {
		sv_ctx_free(ctx);
		return SV_RESULT_OK;
	}
	if (v == SV_RESULT_OK)
		snprintf(
		    why, sizeof(why),
		    "failed attestation: the attested vault is not the id the realm list gives");
	else if (v == SV_RESULT_UNVERIFIED)
		snprintf(why, sizeof(why), "failed attestation: %s", sv_ctx_error(ctx));
	else {
		snprintf(why, sizeof(why), "attestation could not run: %s", sv_ctx_error(ctx));
		kind = REALMCORE_KIND_OTHER;
	}
	sv_ctx_free(ctx);
	if (r->warn != NULL) {
		char msg[REALMCORE_ERR_MAX + 200];
		snprintf(msg, sizeof(msg), "realm %s: %s; excluded", e->name, why);
		r->warn(r->warn_arg, msg);
	}
	realmcore_exclude(rc, i, kind, why);
	return SV_RESULT_OK;
}

static enum sv_result map(enum realmcore_result res)
{
	switch (res) {
	case REALMCORE_OK: return SV_RESULT_OK;
	case REALMCORE_WRONG_PASSWORD: return SV_RESULT_WRONG_PASSWORD;
	case REALMCORE_LOCKED: return SV_RESULT_LOCKED;
	case REALMCORE_TOKEN_REFUSED: return SV_RESULT_TOKEN_REFUSED;
	case REALMCORE_UNVERIFIED: return SV_RESULT_UNVERIFIED;
	case REALMCORE_FAILED:
	case REALMCORE_RUNNING: break;
	}
	return SV_RESULT_ERROR;
}

/* Runs one operation of params p (realms, warn filled in here) to its end. */
static enum sv_result operate(struct sv_realms *r, struct realmcore_params *p,
                              struct realmcore **out)
{
	struct realmcore_realm realms[REALM_MAX];
	struct realmnet_realm net[REALM_MAX];
	struct run run = {.r = r};
	struct realmcore *rc = NULL;
	char why[512];
	enum sv_result res = SV_RESULT_ERROR;
	*out = NULL;
	for (size_t i = 0; i < r->list.n; i++) {
		realms[i].name = r->list.realms[i].name;
		memcpy(realms[i].id, r->list.realms[i].id, REALM_ID_LEN);
	}
	p->realms = realms;
	p->n = r->list.n;
	p->warn = on_warn;
	p->warn_arg = r;
	if (realmcore_new(&rc, p, why, sizeof(why)) != SV_OK)
		return fail(r, SV_RESULT_ERROR, "%s", why);
	for (size_t i = 0; i < r->list.n; i++) {
		if ((res = load_token(&run, i)) != SV_RESULT_OK ||
		    (res = attest(r, rc, i)) != SV_RESULT_OK)
			goto out;
		net[i].url = r->list.realms[i].url;
		net[i].cacert = r->list.realms[i].ca;
		net[i].token = run.token[i];
	}
	if (realmnet_run(rc, net, r->list.n, r->timeout_s, why, sizeof(why)) != SV_OK) {
		res = fail(r, SV_RESULT_ERROR, "%s", why);
		goto out;
	}
	res = map(realmcore_result(rc));
	if (res != SV_RESULT_OK)
		fail(r, res, "%s", realmcore_error(rc));
	*out = rc;
	rc = NULL;
out:
	for (size_t i = 0; i < REALM_MAX; i++)
		if (run.token[i] != NULL)
			sodium_free(run.token[i]);
	realmcore_free(rc);
	return res;
}

static enum sv_result check_user(struct sv_realms *r, const char *user, size_t *len)
{
	if (!r->loaded)
		return fail(r, SV_RESULT_ERROR, "no realm list loaded (sv_realms_load)");
	*len = user != NULL ? strlen(user) : 0;
	if (*len == 0 || *len > SV_USER_MAX_LEN)
		return fail(r, SV_RESULT_ERROR, "the user id must be 1 to %d bytes",
		            SV_USER_MAX_LEN);
	return SV_RESULT_OK;
}

enum sv_result sv_realms_register(struct sv_realms *r, const char *user, const uint8_t *password,
                                  size_t password_len, const uint8_t *secret, size_t secret_len,
                                  unsigned total_attempts, unsigned min_realms,
                                  unsigned *registered)
{
	struct realmcore *rc = NULL;
	size_t ulen;
	unsigned g = 0, t = sv_realms_threshold(r);
	enum sv_result res;
	r->err[0] = '\0';
	if (registered != NULL)
		*registered = 0;
	if ((res = check_user(r, user, &ulen)) != SV_RESULT_OK)
		return res;
	if (password_len == 0 || password_len > SV_PASSWORD_MAX_LEN)
		return fail(r, SV_RESULT_ERROR, "the password must be 1 to %d bytes",
		            SV_PASSWORD_MAX_LEN);
	if (secret_len == 0 || secret_len > SV_REALMS_SECRET_MAX_LEN)
		return fail(r, SV_RESULT_ERROR,
		            "the secret must be 1 to %d bytes with realms; store a key, not a file",
		            SV_REALMS_SECRET_MAX_LEN);
	if (t == 0)
		return fail(r, SV_RESULT_ERROR,
		            "registering needs a threshold: \"threshold\" in the realm list or "
		            "--threshold T");
	if (min_realms != 0 && (min_realms < t || min_realms > r->list.n))
		return fail(r, SV_RESULT_ERROR,
		            "the registration threshold must be %u to %zu (at least the threshold, "
		            "at most the number of realms)",
		            t, r->list.n);
	if (total_attempts == 0)
		total_attempts = DEFAULT_TOTAL;
	if (realm_guess_limit(&g, total_attempts, t, (unsigned)r->list.n) != 0)
		return fail(
		    r, SV_RESULT_ERROR,
		    "%u guesses in all cannot be met with %zu realms and threshold %u: every "
		    "realm allows at least one, so the total is at least %zu",
		    total_attempts, r->list.n, t, (r->list.n + t - 1) / t);
	struct realmcore_params p = {.op = REALMCORE_REGISTER,
	                             .uid = (const uint8_t *)user,
	                             .uid_len = ulen,
	                             .password = password,
	                             .password_len = password_len,
	                             .secret = secret,
	                             .secret_len = secret_len,
	                             .threshold = t,
	                             .min_realms = min_realms,
	                             .guess_limit = g,
	                             .ksf = r->ksf};
	res = operate(r, &p, &rc);
	if (rc != NULL && registered != NULL)
		*registered = (unsigned)realmcore_succeeded(rc);
	realmcore_free(rc);
	return res;
}

enum sv_result sv_realms_recover(struct sv_realms *r, const char *user, const uint8_t *password,
                                 size_t password_len, uint8_t **secret, size_t *secret_len,
                                 int *attempts_left)
{
	struct realmcore *rc = NULL;
	size_t ulen;
	enum sv_result res;
	r->err[0] = '\0';
	*secret = NULL;
	*secret_len = 0;
	if (attempts_left != NULL)
		*attempts_left = -1;
	if ((res = check_user(r, user, &ulen)) != SV_RESULT_OK)
		return res;
	if (password_len == 0 || password_len > SV_PASSWORD_MAX_LEN)
		return fail(r, SV_RESULT_ERROR, "the password must be 1 to %d bytes",
		            SV_PASSWORD_MAX_LEN);
	struct realmcore_params p = {.op = REALMCORE_RECOVER,
	                             .uid = (const uint8_t *)user,
	                             .uid_len = ulen,
	                             .password = password,
	                             .password_len = password_len,
	                             .threshold = sv_realms_threshold(r)};
	res = operate(r, &p, &rc);
	if (rc != NULL && attempts_left != NULL)
		*attempts_left = realmcore_attempts_left(rc);
	if (res == SV_RESULT_OK && realmcore_take_secret(rc, secret, secret_len) != SV_OK)
		res = fail(r, SV_RESULT_ERROR, "internal error: no secret after a recovery");
	realmcore_free(rc);
	return res;
}

enum sv_result sv_realms_delete(struct sv_realms *r, const char *user, unsigned *deleted)
{
	struct realmcore *rc = NULL;
	size_t ulen;
	enum sv_result res;
	r->err[0] = '\0';
	if (deleted != NULL)
		*deleted = 0;
	if ((res = check_user(r, user, &ulen)) != SV_RESULT_OK)
		return res;
	struct realmcore_params p = {
	    .op = REALMCORE_DELETE, .uid = (const uint8_t *)user, .uid_len = ulen};
	res = operate(r, &p, &rc);
	if (rc != NULL && deleted != NULL)
		*deleted = (unsigned)realmcore_succeeded(rc);
	realmcore_free(rc);
	return res;
}
