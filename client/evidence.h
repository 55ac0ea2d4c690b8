/*
 * The evidence JSON of GET /v1/attestation (docs/attestation.md): decoded into fixed-size
 * fields, every length bounded, binary fields standard base64 with padding, hex lower or upper
 * case. Unknown members are ignored; a missing or malformed required member is an error that
 * names it. No cryptographic check happens here (client/attest.c does those).
 */
#ifndef SV_CLIENT_EVIDENCE_H
#define SV_CLIENT_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "common/attest_stmt.h"

#define CLIENT_EVIDENCE_BIN_MAX   1024 /* one marshalled TPM structure */
#define CLIENT_EVIDENCE_CERT_MAX  4096 /* EK certificate, DER */
#define CLIENT_EVIDENCE_NONCE_MIN 8
#define CLIENT_EVIDENCE_NONCE_MAX 64
#define CLIENT_EVIDENCE_LOG_MAX   (16u * 1024 * 1024)
/* The whole JSON text: two logs in base64 plus the rest. */
#define CLIENT_EVIDENCE_JSON_MAX (48u * 1024 * 1024)

struct client_evidence_bin {
	size_t len;
	uint8_t data[CLIENT_EVIDENCE_BIN_MAX];
};

struct client_evidence {
	uint8_t nonce[CLIENT_EVIDENCE_NONCE_MAX];
	size_t nonce_len;
	struct client_evidence_bin ek_public, ak_public;
	uint8_t ek_cert[CLIENT_EVIDENCE_CERT_MAX];
	size_t ek_cert_len; /* 0: absent */
	struct client_evidence_bin quote_attest, quote_signature;
	uint32_t quote_pcrs;                                     /* PCRs listed in quote.pcrs */
	uint8_t quote_values[ATTEST_PCR_COUNT][ATTEST_HASH_LEN]; /* by PCR number */
	struct client_evidence_bin id_public, certify_attest, certify_signature, policy_key;
	uint32_t boot_pcrs;
	uint8_t approved_policy[ATTEST_HASH_LEN];
	uint32_t approved_pcrs;
	uint8_t approved_values[ATTEST_PCR_COUNT][ATTEST_HASH_LEN]; /* by PCR number */
	struct client_evidence_bin policy_signature;
	uint8_t statement[ATTEST_STMT_LEN];
	struct client_evidence_bin statement_signature;
	uint8_t *event_log; /* NULL: absent */
	size_t event_log_len;
	char *ima_log; /* NULL: absent; not NUL-terminated */
	size_t ima_log_len;
};

/* Decodes json (len bytes, no NUL needed) into a zeroed *ev. On failure why names the member. */
int client_evidence_decode(struct client_evidence *ev, const char *json, size_t len, char *why,
                           size_t why_len) __attribute__((warn_unused_result));
/* Frees the logs; ev may be decoded again afterwards. */
void client_evidence_clear(struct client_evidence *ev);

#endif
