/*
 * The client of threshold realms (docs/realms.md, "What the client does") as an I/O-free state
 * machine: register, recover and delete across n realms. The core never touches the network, a
 * file or stdio, and keeps no global state; a driver (client/realmnet.c over libcurl, or a test
 * with realms in memory) moves bytes:
 *
 *     realmcore_new(&rc, &params, ...);
 *     while (!realmcore_done(rc)) {
 *             while (realmcore_next(rc, &req))      -- send req.body to realm req.realm
 *                     ...;
 *             ... as each exchange ends:
 *             realmcore_reply(rc, realm, http_status, body, len);   or
 *             realmcore_transport_error(rc, realm, "why");
 *     }
 *     realmcore_result(rc), realmcore_error(rc), realmcore_take_secret(rc, ...)
 *
 * At most one request per realm is outstanding; requests may complete in any order. The core
 * reports every realm it leaves out as a warning through the params' warn callback (a sentence
 * starting "realm NAME: ..."), and its final failure as one sentence (realmcore_error). Secrets
 * (password, shares, keys, the recovered secret, request bodies carrying shares) live in
 * sodium_malloc'd memory and are wiped when no longer needed and by realmcore_free.
 */
#ifndef SV_CLIENT_REALMCORE_H
#define SV_CLIENT_REALMCORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/ksf.h"
#include "crypto/realm.h"

#define REALMCORE_WUR __attribute__((warn_unused_result))

/* the longest reply body a driver needs to accept (GET /v1/info is the longest) */
#define REALMCORE_REPLY_MAX 16384
#define REALMCORE_ERR_MAX   2048

/* the routes of docs/realms.md ("Messages"), fixed with the realm side */
#define REALMCORE_PATH_INFO     "/v1/info"
#define REALMCORE_PATH_REGISTER "/v2/realm/register"
#define REALMCORE_PATH_RECOVER1 "/v2/realm/recover1"
#define REALMCORE_PATH_RECOVER2 "/v2/realm/recover2"
#define REALMCORE_PATH_RECOVER3 "/v2/realm/recover3"
#define REALMCORE_PATH_DELETE   "/v2/realm/delete"

enum realmcore_op {
	REALMCORE_REGISTER = 1,
	REALMCORE_RECOVER = 2,
	REALMCORE_DELETE = 3,
};

enum realmcore_result {
	REALMCORE_RUNNING = 0,
	REALMCORE_OK,
	REALMCORE_WRONG_PASSWORD, /* recover: the unlock check failed; attempts_left says more */
	REALMCORE_LOCKED,         /* recover: too few realms still hold the registration (410) */
	REALMCORE_FAILED,         /* not enough realms, or a refusal; realmcore_error says why */
	REALMCORE_TOKEN_REFUSED,  /* FAILED, and a realm missing refused its access token */
	REALMCORE_UNVERIFIED,     /* FAILED, and a realm missing failed attestation */
};

/* Why a realm was left out before the core ran (realmcore_exclude). */
enum realmcore_kind {
	REALMCORE_KIND_OTHER = 0,
	REALMCORE_KIND_TOKEN,      /* its access token was refused (or could not be read) */
	REALMCORE_KIND_UNVERIFIED, /* it failed attestation */
};

struct realmcore_realm {
	const char *name; /* used in every message about the realm (copied) */
	uint8_t id[REALM_ID_LEN];
};

/* Called with each warning: realm is the realm's position (0-based) in params.realms, message
 * a sentence starting "realm NAME: ". */
typedef void (*realmcore_warn_fn)(void *arg, size_t realm, const char *message);

struct realmcore_params {
	enum realmcore_op op;
	const struct realmcore_realm *realms; /* 1..REALM_MAX, in the order of the realm list */
	size_t n;
	const uint8_t *uid; /* 1..REALM_UID_MAX bytes */
	size_t uid_len;
	/* register and recover (copied into sodium_malloc'd memory) */
	const uint8_t *password;
	size_t password_len;
	/* register: the secret (1..REALM_SECRET_MAX bytes, copied), the threshold t (1..n), the
	 * registration threshold min_realms (t..n; 0 = n), the per-realm guess limit (1..255,
	 * realm_guess_limit) and the KSF profile to stretch with */
	const uint8_t *secret;
	size_t secret_len;
	unsigned threshold; /* recover: the smallest threshold accepted (0 = any) */
	unsigned min_realms;
	unsigned guess_limit;
	struct ksf_params ksf;
	realmcore_warn_fn warn; /* may be NULL */
	void *warn_arg;
};

/* One request to send. body stays valid until the reply for that realm is handed back (or the
 * core freed); an empty body with post = 0 is a GET. */
struct realmcore_request {
	size_t realm;
	int post;
	const char *path;
	const uint8_t *body;
	size_t len;
};

struct realmcore;

/* Checks params (SV_ERR_RANGE / SV_ERR_INVALID with a sentence in why) and makes the state. */
REALMCORE_WUR int realmcore_new(struct realmcore **out, const struct realmcore_params *p, char *why,
                                size_t why_len);
void realmcore_free(struct realmcore *rc);

/* Leaves realm out before the first realmcore_next (a failed attestation, an unreadable token
 * file): it counts as failed with reason why. The caller tells the user; the core's warnings do
 * not name the realm again where they would only repeat why (a recovery's "not used"). */
void realmcore_exclude(struct realmcore *rc, size_t realm, enum realmcore_kind kind,
                       const char *why);

/* 1 and the next request to send, or 0 when none is ready now (wait for replies). */
REALMCORE_WUR int realmcore_next(struct realmcore *rc, struct realmcore_request *req);

/* The answer of realm to its outstanding request: HTTP status and body. Returns 0, or a negative
 * SV_ERR_* for a call out of order (no request outstanding for realm). */
REALMCORE_WUR int realmcore_reply(struct realmcore *rc, size_t realm, long status,
                                  const uint8_t *body, size_t len);
/* The outstanding request of realm got no answer (connect, TLS, timeout): why says so. */
REALMCORE_WUR int realmcore_transport_error(struct realmcore *rc, size_t realm, const char *why);

/* 1 once the operation ended (no request outstanding, none left to send). */
int realmcore_done(const struct realmcore *rc);
enum realmcore_result realmcore_result(const struct realmcore *rc);
/* The failure as one sentence ("" on success). */
const char *realmcore_error(const struct realmcore *rc);
/* recover: the attempts left reported by the realms used (the minimum), or -1. */
int realmcore_attempts_left(const struct realmcore *rc);
/* register, delete: how many realms answered 200. recover: how many released a good share. */
size_t realmcore_succeeded(const struct realmcore *rc);
/* recover, REALMCORE_OK: hands over the secret (sodium_malloc'd; free with sodium_free). */
REALMCORE_WUR int realmcore_take_secret(struct realmcore *rc, uint8_t **secret, size_t *len);

#endif
