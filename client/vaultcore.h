/*
 * The single-vault operations of docs/protocol.md (register, recover, delete, change-password)
 * as an I/O-free step machine, for libsealvault's blocking calls and for language bindings
 * (JS/WASM, Kotlin, Swift) that bring their own transport:
 *
 *     vaultcore_new(&c, op, &params, &input);
 *     while (vaultcore_next(c, &rq))               the next request: route and body
 *         vaultcore_reply(c, status, body, len);   the vault's answer: HTTP status and body
 *     vaultcore_result(c), vaultcore_error(c), vaultcore_attempts_left(c), vaultcore_secret(c)
 *
 * The core holds no global state, opens nothing, reads no clock and prints nothing; it only turns
 * state into request bytes and reply bytes into state. A transport failure is the caller's to
 * report (vaultcore_abort). Every POST carries the caller's access token, if any: that is the
 * transport's business too (the token never changes the bytes here).
 *
 * Inputs are copied into the core at vaultcore_new (secrets into sodium_malloc'd memory, wiped by
 * vaultcore_free), so the caller may wipe its own copies at once.
 */
#ifndef SV_CLIENT_VAULTCORE_H
#define SV_CLIENT_VAULTCORE_H

#include <stddef.h>
#include <stdint.h>

#include "client/sealvault.h"
#include "crypto/ksf.h"
#include "crypto/opaque.h"

#define VAULTCORE_CONTEXT_MAX 1024

enum vaultcore_op {
	VAULTCORE_REGISTER = 1,
	VAULTCORE_RECOVER = 2,
	VAULTCORE_DELETE = 3,
	VAULTCORE_CHANGE = 4, /* change-password: recover the secret, then re-register it */
};

struct vaultcore_params {
	const uint8_t *context; /* the OPAQUE context string, 0..VAULTCORE_CONTEXT_MAX bytes */
	size_t context_len;
	struct ksf_params ksf; /* the profile to stretch with (register, change: the new one) */
	/* 1: the OPAQUE server key the protocol authenticates must be server_key (the attested
	 * vault's); server_key NULL then means "nothing attested" and every operation stops at the
	 * first key it sees. 0: no check. */
	int pin_server_key;
	const uint8_t *server_key; /* [OPAQUE_PK_LEN] */
	/* 1: a refused access token (401, or 403 with a reason) is SV_RESULT_TOKEN_REFUSED;
	 * 0: SV_RESULT_ERROR (the calls without a token, from before 0.3.0) */
	int token_results;
};

struct vaultcore_input {
	const uint8_t *user; /* 1..SV_USER_MAX_LEN bytes */
	size_t user_len;
	const uint8_t *password; /* 1..SV_PASSWORD_MAX_LEN bytes (change: the old one) */
	size_t password_len;
	const uint8_t *new_password; /* change only */
	size_t new_password_len;
	const uint8_t *secret; /* register only: 1..SV_SECRET_MAX_LEN bytes */
	size_t secret_len;
	unsigned
	    max_attempts; /* register, change: 0 (the vault's default) .. SV_MAX_ATTEMPTS_MAX */
};

/* One request to send: POST path (common/msgtable.h) with body[0..len). Valid until the next
 * vaultcore_reply, vaultcore_abort or vaultcore_free. */
struct vaultcore_request {
	uint16_t type; /* SV_MSG_* */
	const char *path;
	const uint8_t *body;
	size_t len;
};

struct vaultcore;

#define VAULTCORE_WUR __attribute__((warn_unused_result))

/* A core for one operation. SV_OK, SV_ERR_NOMEM, or SV_ERR_INVALID for an unknown op or a NULL
 * input. Inputs out of bounds are not an error here: the core is then already over with
 * SV_RESULT_ERROR and a message saying which bound (check vaultcore_done before any other
 * round trip, e.g. an attestation check, so that nothing is sent for bad input). */
int vaultcore_new(struct vaultcore **out, enum vaultcore_op op, const struct vaultcore_params *p,
                  const struct vaultcore_input *in) VAULTCORE_WUR;
void vaultcore_free(struct vaultcore *c);

/* 1 and *rq: send this request next. 0: the operation is over. */
int vaultcore_next(struct vaultcore *c, struct vaultcore_request *rq) VAULTCORE_WUR;
/* The answer to the request vaultcore_next gave: its HTTP status and body. */
void vaultcore_reply(struct vaultcore *c, long status, const uint8_t *body, size_t len);
/* The request could not be carried (connect, TLS, timeout): the operation is over with res
 * and the caller's message. */
void vaultcore_abort(struct vaultcore *c, enum sv_result res, const char *msg);

int vaultcore_done(const struct vaultcore *c);
/* Once over: the result, a message when it is not SV_RESULT_OK ("" otherwise), the attempts
 * left the vault last reported (-1: none), and the attestation check that failed (the
 * server-key check, CLIENT_ATTEST_SERVER_KEY) or NULL. */
enum sv_result vaultcore_result(const struct vaultcore *c);
const char *vaultcore_error(const struct vaultcore *c);
int vaultcore_attempts_left(const struct vaultcore *c);
const char *vaultcore_failed_check(const struct vaultcore *c);
/* recover, once over with SV_RESULT_OK: the secret, in the core's memory (wiped by
 * vaultcore_free). SV_ERR_PROTOCOL for another op or result. */
int vaultcore_secret(const struct vaultcore *c, const uint8_t **secret,
                     size_t *secret_len) VAULTCORE_WUR;

#endif
