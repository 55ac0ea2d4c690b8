/*
 * The enclave's attestation service: at start (before the sandbox) it loads the evidence files,
 * refuses a TPM whose EK is not the one of init, computes build_hash over the three binaries,
 * has the identity key sign the statement and keeps it; afterwards it answers SV_MSG_ATTESTATION
 * (a quote over the nonce and the evidence JSON without the logs) and SV_MSG_ACTIVATE
 * (credential activation with the AK and the EK). sealvault-admin attest uses the same code.
 */
#ifndef SV_ENCLAVE_ATTESTSRV_H
#define SV_ENCLAVE_ATTESTSRV_H

#include <stddef.h>
#include <stdint.h>

#include "common/attest_stmt.h"
#include "common/buf.h"

struct tpm;
struct attestsrv;

/* bins: sealvaultd, sealvault-enclave, sealvault-broker (paths, e.g. /proc/self/exe), hashed in
 * the order of attest_binary_names. SV_ERR_STATE (reason in why) for another TPM, a boot state
 * the approved policy does not cover, or missing evidence. */
int attestsrv_open(struct attestsrv **out, struct tpm *t, const char *state_dir,
                   const char *const bins[static ATTEST_NBINARIES],
                   const uint8_t server_pk[static ATTEST_HASH_LEN],
                   const uint8_t policy_hash[static ATTEST_HASH_LEN], char *why, size_t why_len)
    __attribute__((warn_unused_result));
void attestsrv_free(struct attestsrv *a);

/* The evidence JSON for nonce (8..64 bytes) appended to out. SV_ERR_INVALID for a bad nonce. */
int attestsrv_evidence(struct attestsrv *a, const uint8_t *nonce, size_t nonce_len,
                       struct sv_buf *out) __attribute__((warn_unused_result));

/* Dispatch hook for SV_MSG_ATTESTATION and SV_MSG_ACTIVATE: a complete reply payload (status
 * byte, then the JSON / the credential / a message). Negative only for internal errors. */
int attestsrv_handle(void *a, uint16_t type, const uint8_t *req, size_t len, struct sv_buf *reply)
    __attribute__((warn_unused_result));

#endif
