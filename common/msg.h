/*
 * The messages the broker carries between HTTPS and the enclave. The broker maps an HTTP route to
 * a request type and copies the body as an opaque payload; it never parses a payload. The enclave
 * answers every request with one SV_MSG_REPLY whose payload starts with a status byte.
 *
 * The messages themselves (numbers, routes, metric labels, flags) are the rows of SV_MSG_TABLE in
 * common/msgtable.h, the contract between broker/, enclave/ and client/: change them there only.
 *
 * Enclave restarts (SV_MSG_GONE_SEEN, SV_MSG_ENCLAVE_GONE, SV_MSG_READY: MSG_F_CONTROL, payload
 * empty, request id 0). sealvaultd holds the enclave's end of the socketpair across a restart
 * (after SV_EXIT_TPM_UNAVAILABLE), so the broker and its clients' connections stay up: it writes
 * SV_MSG_ENCLAVE_GONE on that end when the enclave has ended; the broker answers every request in
 * flight 503, sends no request until SV_MSG_READY, and sends SV_MSG_GONE_SEEN, which sealvaultd
 * reads (discarding the requests queued before it, all answered) before it starts the next
 * enclave on the same end.
 */
#ifndef SV_COMMON_MSG_H
#define SV_COMMON_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/msgtable.h"

#define SV_IPC_VERSION 1

enum sv_msg_type {
#define SV_MSG_ENUM_ROUTE(name, num, method, path, ep, handler, flags) SV_MSG_##name = num,
#define SV_MSG_ENUM_FRAME(name, num, flags)                            SV_MSG_##name = num,
	SV_MSG_TABLE(SV_MSG_ENUM_ROUTE, SV_MSG_ENUM_FRAME)
#undef SV_MSG_ENUM_ROUTE
#undef SV_MSG_ENUM_FRAME
};

/* The MSG_F_* flags of a type's row; 0 for a type that is not in the table. */
unsigned msg_flags(uint16_t type);

/* A request's HTTP route path ("/v1/login/start"); NULL for a type without one. */
const char *msg_path(uint16_t type);

/* A request's endpoint label in the broker's /metrics ("login_start"); NULL without a route. */
const char *msg_endpoint(uint16_t type);

/* First byte of every SV_MSG_REPLY payload; the broker maps it to an HTTP status. */
enum sv_status {
	SV_STATUS_OK = 0,           /* 200 */
	SV_STATUS_BAD_REQUEST = 1,  /* 400: malformed body; nothing changed */
	SV_STATUS_AUTH_FAILED = 2,  /* 403: wrong password / bad KE3; attempts left in body */
	SV_STATUS_LOCKED = 3,       /* 410: record destroyed after too many guesses */
	SV_STATUS_CONFLICT = 4,     /* 409: identifier already registered */
	SV_STATUS_OUT_OF_ORDER = 5, /* 409: unknown or expired session, replayed KE3 */
	SV_STATUS_BUSY = 6,         /* 503: too many pending logins, NV budget exhausted */
	SV_STATUS_INTERNAL = 7,     /* 500 */
	SV_STATUS_FULL = 8,         /* 507: the vault holds max-users records; nothing changed */
	/* 401 with WWW-Authenticate: Bearer error="invalid_token", error_description=<body>: no,
	 * a malformed, expired, wrongly signed or wrongly addressed access token; nothing changed
	 */
	SV_STATUS_UNAUTHORIZED = 9,
	/* 403 with WWW-Authenticate: Bearer error="insufficient_scope": the token's scope does not
	 * cover the operation; nothing changed */
	SV_STATUS_FORBIDDEN = 10,
	/* 429: over the per-identifier login rate; nothing charged. Body: u32 big-endian seconds
	 * until the identifier may start a login again (the broker's Retry-After), then a text. */
	SV_STATUS_TOO_MANY = 11,
	/* 404: no record for this identifier (/v2/realm/ recover1 and recover2); empty body */
	SV_STATUS_NOT_FOUND = 12,
};

/* The access token in front of an MSG_F_TOKEN request's payload (docs/protocol.md):
 *
 *   u16 token length (0..MSG_TOKEN_MAX, big-endian) | token (ASCII) | the request body
 *
 * Length 0: the HTTP request had no Authorization header. The broker copies the token of
 * "Authorization: Bearer <token>" and never interprets it; the enclave verifies it. */
#define MSG_TOKEN_MAX 4096 /* bytes: enclave/token.h TOKEN_MAX_LEN */

/* Splits an MSG_F_TOKEN payload into token and body (references into payload): SV_OK, or
 * SV_ERR_INVALID for a payload shorter than its length prefix or a length over MSG_TOKEN_MAX. */
int msg_token_split(const uint8_t *payload, size_t len, const uint8_t **tok, size_t *tok_len,
                    const uint8_t **body, size_t *body_len) __attribute__((warn_unused_result));

/* Writes the 2-byte length prefix of a token of tok_len bytes (<= MSG_TOKEN_MAX). */
void msg_token_prefix(uint8_t out[static 2], size_t tok_len);

/* The payload of an SV_MSG_REPLY, into reply (reset first): u8 status (enum sv_status) | body
 * (len 0: none). msg_reply_text: the body is text, a reason for the client. SV_OK, or sv_buf's
 * error when reply has no room. */
int msg_reply(struct sv_buf *reply, uint8_t status, const void *body, size_t len);
int msg_reply_text(struct sv_buf *reply, uint8_t status, const char *text);

#endif
