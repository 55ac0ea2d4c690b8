/*
 * Decoders for the client request bodies of docs/protocol.md ("HTTP API"). Pure functions: they
 * take the bytes of one body and fill a struct whose pointers point into those bytes (no copy, no
 * allocation), so the same code is unit-tested with hostile lengths and fuzzed without a TPM.
 *
 * Every decoder checks the version byte, every length against its bound, and rejects trailing
 * bytes. On failure it returns SV_ERR_INVALID or SV_ERR_RANGE, leaves *out zeroed and, when why
 * is not NULL, points *why at a static one-line English reason meant for the client.
 */
#ifndef SV_ENCLAVE_VAULTREQ_H
#define SV_ENCLAVE_VAULTREQ_H

#include <stddef.h>
#include <stdint.h>

#define VAULTREQ_VERSION         1
#define VAULTREQ_ID_MIN          1
#define VAULTREQ_ID_MAX          255
#define VAULTREQ_SESSION_ID_LEN  16
#define VAULTREQ_REG_REQUEST_LEN 32  /* OPAQUE RegistrationRequest */
#define VAULTREQ_RECORD_LEN      192 /* OPAQUE RegistrationRecord */
#define VAULTREQ_KE1_LEN         96
#define VAULTREQ_KE3_LEN         64
#define VAULTREQ_MAC_LEN         64 /* HMAC-SHA512 */
#define VAULTREQ_BLOB_MIN        1
#define VAULTREQ_BLOB_MAX        512

/* login/finish operations */
#define VAULTREQ_OP_RECOVER 1
#define VAULTREQ_OP_DELETE  2
#define VAULTREQ_OP_CHANGE  3

/* The largest request body any decoder accepts (register/finish with a 255-byte identifier and
 * a 512-byte blob); a broker may refuse longer bodies without forwarding them. */
#define VAULTREQ_BODY_MAX                                                                          \
	(1 + 2 + VAULTREQ_ID_MAX + VAULTREQ_RECORD_LEN + 1 + 2 + VAULTREQ_BLOB_MAX)

#define VAULTREQ_WUR __attribute__((warn_unused_result))

/* register/start: v | id | RegistrationRequest */
struct vaultreq_register_start {
	const uint8_t *id;
	size_t id_len;
	const uint8_t *request; /* VAULTREQ_REG_REQUEST_LEN */
};

/* register/finish: v | id | RegistrationRecord | guess_limit | blob */
struct vaultreq_register_finish {
	const uint8_t *id;
	size_t id_len;
	const uint8_t *record; /* VAULTREQ_RECORD_LEN */
	uint8_t guess_limit;   /* 0 = policy default */
	const uint8_t *blob;
	size_t blob_len;
};

/* login/start: v | id | KE1 */
struct vaultreq_login_start {
	const uint8_t *id;
	size_t id_len;
	const uint8_t *ke1; /* VAULTREQ_KE1_LEN */
};

/* login/finish: v | session_id | KE3 | op | op payload | op_mac */
struct vaultreq_login_finish {
	const uint8_t *session_id; /* VAULTREQ_SESSION_ID_LEN */
	const uint8_t *ke3;        /* VAULTREQ_KE3_LEN */
	uint8_t op;                /* VAULTREQ_OP_* */
	const uint8_t *payload;    /* op == CHANGE: RegistrationRequest; otherwise NULL */
	size_t payload_len;
	const uint8_t *mac; /* VAULTREQ_MAC_LEN, over session_id | op | op payload */
};

/* change-password/finish: v | session_id | RegistrationRecord | guess_limit | blob | mac */
struct vaultreq_change_finish {
	const uint8_t *session_id;
	const uint8_t *record;
	uint8_t guess_limit;
	const uint8_t *blob;
	size_t blob_len;
	const uint8_t *mac;
	size_t macced_len; /* the mac covers the body's first macced_len bytes */
};

int vaultreq_parse_register_start(struct vaultreq_register_start *out, const uint8_t *body,
                                  size_t len, const char **why) VAULTREQ_WUR;
int vaultreq_parse_register_finish(struct vaultreq_register_finish *out, const uint8_t *body,
                                   size_t len, const char **why) VAULTREQ_WUR;
int vaultreq_parse_login_start(struct vaultreq_login_start *out, const uint8_t *body, size_t len,
                               const char **why) VAULTREQ_WUR;
int vaultreq_parse_login_finish(struct vaultreq_login_finish *out, const uint8_t *body, size_t len,
                                const char **why) VAULTREQ_WUR;
int vaultreq_parse_change_finish(struct vaultreq_change_finish *out, const uint8_t *body,
                                 size_t len, const char **why) VAULTREQ_WUR;

#endif
