/*
 * The messages the broker carries between HTTPS and the enclave. The broker maps an HTTP route to
 * a request type and copies the body as an opaque payload; it never parses a payload. The enclave
 * answers every request with one SV_MSG_REPLY whose payload starts with a status byte.
 *
 * This table is the contract between broker/, enclave/ and client/: change it in one place only.
 */
#ifndef SV_COMMON_MSG_H
#define SV_COMMON_MSG_H

#include <stdint.h>

#define SV_IPC_VERSION 1

enum sv_msg_type {
	/* broker -> enclave: client requests (payload = HTTP body, unparsed by the broker) */
	SV_MSG_REGISTER_START = 1,  /* POST /v1/register/start */
	SV_MSG_REGISTER_FINISH = 2, /* POST /v1/register/finish */
	SV_MSG_LOGIN_START = 3,     /* POST /v1/login/start */
	SV_MSG_LOGIN_FINISH = 4,    /* POST /v1/login/finish */
	SV_MSG_CHANGE_FINISH = 5,   /* POST /v1/change-password/finish */
	SV_MSG_ATTESTATION = 6,     /* GET  /v1/attestation?nonce=HEX (payload = nonce bytes) */
	SV_MSG_ACTIVATE = 7,        /* POST /v1/attestation/activate (credential activation) */
	/* broker -> enclave: housekeeping (payload empty) */
	SV_MSG_STATS = 32,  /* counters for GET /metrics; reply body is Prometheus text */
	SV_MSG_HEALTH = 33, /* GET /healthz */
	/* Enclave restarts (payload empty, request id 0). sealvaultd holds the enclave's end of the
	 * socketpair across a restart (after SV_EXIT_TPM_UNAVAILABLE), so the broker and its
	 * clients' connections stay up: it writes SV_MSG_ENCLAVE_GONE on that end when the enclave
	 * has ended; the broker answers every request in flight 503, sends no request until
	 * SV_MSG_READY, and sends SV_MSG_GONE_SEEN, which sealvaultd reads (discarding the requests
	 * queued before it, all answered) before it starts the next enclave on the same end. */
	SV_MSG_GONE_SEEN = 34, /* broker -> sealvaultd */
	/* Reload (SIGHUP), on the control pair between sealvaultd and the broker (broker fd 5),
	 * never on the enclave's link: sealvaultd sends SV_MSG_RELOAD (payload: common/reload.h,
	 * request id = its reload count), the broker applies it and answers SV_MSG_RELOADED with
	 * the same id: u8 0 (applied) or 1 (refused, nothing changed), then a one-line text. */
	SV_MSG_RELOADED = 35, /* broker -> sealvaultd */
	/* enclave -> broker */
	SV_MSG_REPLY = 64,        /* u8 status (enum sv_status), then the body */
	SV_MSG_ENCLAVE_GONE = 65, /* sealvaultd -> broker, on the enclave's end */
	SV_MSG_READY = 66,        /* the enclave serves (sent once, at every start) */
	SV_MSG_RELOAD = 67,       /* sealvaultd -> broker, on the control pair */
};

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
};

#endif
