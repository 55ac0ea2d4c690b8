/* Inside the realm client core (realmcore.c: setup, requests, register, delete, replies;
 * realmcore_recover.c: recover): the state and the helpers both files use. Not an API. */
#ifndef SV_CLIENT_REALMCORE_INT_H
#define SV_CLIENT_REALMCORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "client/realmcore.h"
#include "common/buf.h"
#include "crypto/realm_wire.h"

#define NAME_MAX_LEN 128
#define WHY_LEN      256

enum phase {
	PH_INFO = 1, /* register: GET /v1/info everywhere */
	PH_REGISTER, /* register: POST register everywhere reachable */
	PH_R1,       /* recover1 everywhere */
	PH_R23,      /* recover2 at t group members, then recover3 (with fallbacks) */
	PH_DELETE,
	PH_DONE,
};

/* what a realm is doing or did */
enum rstate {
	RS_IDLE = 0, /* nothing outstanding, not failed */
	RS_QUEUED,   /* a request is ready for realmcore_next */
	RS_PENDING,  /* the request is out */
	RS_FAILED,   /* left out: why says why */
};

enum fkind {
	FK_NONE = 0,
	FK_OTHER,
	FK_TOKEN,
	FK_UNVERIFIED,
	FK_NOTFOUND,
	FK_LOCKED,
	FK_NOANSWER,
	FK_FOREIGN,
};

struct rrealm {
	char name[NAME_MAX_LEN + 1];
	uint8_t id[REALM_ID_LEN];
	enum rstate st;
	enum fkind kind;
	char why[WHY_LEN];
	int excluded;     /* left out by the driver (realmcore_exclude), which said so itself */
	const char *path; /* of the queued or pending request */
	int post;
	size_t body_len; /* the body is in secrets->body[i] */
	int ok;          /* register/delete/info: 200; recover: its share is in */
	/* recover1 */
	int r1;    /* answered 200 with a decodable body */
	int group; /* its group (the first member's position) */
	uint8_t version[REALM_VERSION_LEN];
	struct ksf_params ksf;
	uint8_t t, n, index, attempts1;
	uint8_t unlock_check[REALM_KEY_LEN];
	uint8_t commitments[REALM_MAX * REALM_ELEMENT_LEN];
	/* recover2 */
	int used; /* recover2 was sent to it */
	int good; /* its evaluation's proof holds */
	uint8_t session[REALM_SESSION_LEN];
	uint8_t evaluated[REALM_ELEMENT_LEN];
	uint8_t proof[REALM_PROOF_LEN];
	int attempts2;
};

/* SECRET: sodium_malloc'd, wiped on free */
struct secrets {
	uint8_t password[REALM_PASSWORD_MAX];
	uint8_t secret[REALM_SECRET_MAX];
	uint8_t access[REALM_ACCESS_LEN];
	uint8_t seed[REALM_SEED_LEN];
	uint8_t blind[REALM_SCALAR_LEN];
	uint8_t prk[REALM_PRK_LEN];
	uint8_t tag[REALM_MAX][REALM_KEY_LEN];
	struct realm_share share[REALM_MAX]; /* recover: the released shares of s */
	uint8_t body[REALM_MAX][REALM_WIRE_MAX];
};

struct realmcore {
	enum realmcore_op op;
	enum phase phase;
	enum realmcore_result result;
	size_t n;
	struct rrealm r[REALM_MAX];
	uint8_t uid[REALM_UID_MAX];
	size_t uid_len;
	size_t password_len, secret_len;
	unsigned threshold, min_realms, guess_limit;
	struct ksf_params ksf;
	realmcore_warn_fn warn;
	void *warn_arg;
	struct secrets *s;
	struct sv_buf scratch; /* encoder output, copied into s->body and wiped */
	size_t pending;        /* requests out */
	int started;
	/* recover */
	int group;     /* the chosen group's first member, or -1 */
	unsigned t;    /* the chosen group's threshold */
	int prk_ready; /* the unlock check matched: recover3 may go out */
	uint8_t blinded[REALM_ELEMENT_LEN];
	uint8_t reg_hash[REALM_HASH_LEN];
	int attempts_left;
	size_t succeeded;
	uint8_t *out; /* the recovered secret, sodium_malloc'd */
	size_t out_len;
	char err[REALMCORE_ERR_MAX];
};

/* a warning "realm NAME: ..." through the caller's callback */
void rcore_warnf(struct realmcore *rc, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* the operation ends with res and the sentence */
void rcore_set_err(struct realmcore *rc, enum realmcore_result res, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rcore_append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* realm i is left out, for the reason given */
void rcore_fail_realm(struct realmcore *rc, size_t i, enum fkind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* a non-200 answer as a reason, and what it means */
enum fkind rcore_describe(char *why, size_t cap, long status, const uint8_t *body, size_t len);
/* the scratch buffer as realm i's next request */
int rcore_queue(struct realmcore *rc, size_t i, const char *path, int post);
int rcore_queue_uid(struct realmcore *rc, size_t i, const char *path);
/* ", NAME (reason)" of every failed realm; the failed operation's result and sentence */
size_t rcore_list_failed(const struct realmcore *rc, char *buf, size_t cap);
void rcore_finish_failed(struct realmcore *rc, const char *sentence);

/* recover (realmcore_recover.c) */
void rcore_recover1_reply(struct realmcore *rc, size_t i, long status, const uint8_t *body,
                          size_t len);
void rcore_after_recover1(struct realmcore *rc);
void rcore_recover2_reply(struct realmcore *rc, size_t i, long status, const uint8_t *body,
                          size_t len);
void rcore_recover3_reply(struct realmcore *rc, size_t i, long status, const uint8_t *body,
                          size_t len);
void rcore_after_recover23(struct realmcore *rc);
/* one more group member in place of a failed one; 0 when none is left */
int rcore_fallback(struct realmcore *rc);

#endif
