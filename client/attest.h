/*
 * The attestation verifier: the 13 checks of docs/attestation.md, in order, over decoded
 * evidence and an expected-values file. The first check that fails stops verification and is
 * named in the result with a reason a person can act on. The live AK binding (check 2) needs the
 * server: the caller supplies the POST /v1/attestation/activate exchange.
 */
#ifndef SV_CLIENT_ATTEST_H
#define SV_CLIENT_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include "client/evidence.h"
#include "client/expect.h"
#include "common/attest_stmt.h"

/* Stable check names, in the order they run. */
#define CLIENT_ATTEST_EK_CHAIN        "ek-chain"
#define CLIENT_ATTEST_AK_BINDING      "ak-binding"
#define CLIENT_ATTEST_QUOTE_SIGNATURE "quote-signature"
#define CLIENT_ATTEST_NONCE           "nonce"
#define CLIENT_ATTEST_QUOTE_PCRS      "quote-pcrs"
#define CLIENT_ATTEST_BOOT_PCRS       "boot-pcrs"
#define CLIENT_ATTEST_IMA             "ima"
#define CLIENT_ATTEST_ID_CERT         "identity-certification"
#define CLIENT_ATTEST_ID_POLICY       "identity-policy"
#define CLIENT_ATTEST_STMT_SIGNATURE  "statement-signature"
#define CLIENT_ATTEST_SERVER_KEY      "server-key"
#define CLIENT_ATTEST_POLICY_HASH     "policy-hash"
#define CLIENT_ATTEST_BUILD_HASH      "build-hash"

#define CLIENT_ATTEST_CRED_LEN   32
#define CLIENT_ATTEST_ANSWER_MAX 64

/*
 * POSTs body to /v1/attestation/activate. 0 with the answer (the decrypted credential);
 * SV_ERR_AUTH when the server's TPM refused it (HTTP 403); any other negative value for a
 * transport or server failure (then verification stops as an error, not a failed check). why
 * says what happened.
 */
typedef int (*client_attest_activate_fn)(void *arg, const uint8_t *body, size_t len,
                                         uint8_t answer[CLIENT_ATTEST_ANSWER_MAX],
                                         size_t *answer_len, char *why, size_t why_len);

struct client_attest_result {
	const char *check;       /* NULL when every check passed, else the failed check's name */
	char reason[640];        /* why it failed (or why verification could not run) */
	char summary[384];       /* one line on success */
	struct attest_stmt stmt; /* the verified statement (valid on success) */
};

/*
 * Runs the checks. extra_ca: PEM texts trusted besides the expect file's tpm_ca. nonce: what the
 * evidence must be fresh for. Returns 0 when all pass; SV_ERR_AUTH when a check failed
 * (res->check names it); another negative SV_ERR_* when the activation exchange failed
 * (res->check is NULL, res->reason says why).
 */
int client_attest_verify(struct client_attest_result *res, const struct client_expect *exp,
                         const char *const *extra_ca, size_t n_extra,
                         const struct client_evidence *ev, const uint8_t *nonce, size_t nonce_len,
                         client_attest_activate_fn activate, void *arg)
    __attribute__((warn_unused_result));

#endif
