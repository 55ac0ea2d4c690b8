/*
 * TPM2_MakeCredential in software (TPM 2.0 Part 1 §24, Part 3 MakeCredential): encrypts a
 * credential so that only the TPM holding the EK, and only for the object named ak_name loaded
 * on it, can recover it with TPM2_ActivateCredential. RSA EKs with SHA-256 names and AES-128-CFB
 * (template L-1) only. The result is the body of POST /v1/attestation/activate.
 */
#ifndef SV_CLIENT_MAKECRED_H
#define SV_CLIENT_MAKECRED_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#include "common/attest_stmt.h"
#include "common/buf.h"

#define CLIENT_MAKECRED_CRED_MAX     32 /* at most the EK name algorithm's digest size */
#define CLIENT_MAKECRED_BODY_VERSION 1

/* KDFa with SHA-256 (Part 1 §11.4.10.2): bits/8 bytes into out; label is NUL-terminated. */
void client_makecred_kdfa(const uint8_t *key, size_t key_len, const char *label,
                          const uint8_t *ctx_u, size_t u_len, const uint8_t *ctx_v, size_t v_len,
                          uint8_t *out, size_t bits);

/*
 * Appends to body: version 1 | u16be len | TPM2B_ID_OBJECT | u16be len | TPM2B_ENCRYPTED_SECRET.
 * seed (32 bytes) is normally random; it is a parameter so tests can compare with a TPM.
 */
int client_makecred(struct sv_buf *body, const TPM2B_PUBLIC *ek,
                    const uint8_t ak_name[static ATTEST_NAME_LEN], const uint8_t *cred,
                    size_t cred_len, const uint8_t seed[static 32])
    __attribute__((warn_unused_result));

#endif
