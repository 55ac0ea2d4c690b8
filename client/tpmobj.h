/*
 * TPM structures a verifier receives, decoded with libtss2-mu and checked with OpenSSL: public
 * areas (with their names), TPMS_ATTEST, ECDSA TPMT_SIGNATUREs, the EK template (TCG EK
 * Credential Profile, template L-1) and the EK certificate chain. Every decoder wants the exact
 * length: trailing bytes are an error.
 */
#ifndef SV_CLIENT_TPMOBJ_H
#define SV_CLIENT_TPMOBJ_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include "common/attest_stmt.h"

#define CLIENT_TPMOBJ_WUR __attribute__((warn_unused_result))

/* A marshalled TPM2B_PUBLIC (size field included) into *pub, and its TPM name (SHA-256 only). */
CLIENT_TPMOBJ_WUR int client_tpmobj_public(TPM2B_PUBLIC *pub, uint8_t name[static ATTEST_NAME_LEN],
                                           const uint8_t *p, size_t len);
/* A marshalled TPMS_ATTEST (no size field) into *at. */
CLIENT_TPMOBJ_WUR int client_tpmobj_attest(TPMS_ATTEST *at, const uint8_t *p, size_t len);

/* 0 when pub is an RSA-2048 EK made from template L-1 (only unique, the modulus, may differ);
 * otherwise SV_ERR_INVALID with the first difference in why. */
CLIENT_TPMOBJ_WUR int client_tpmobj_ek_template(const TPM2B_PUBLIC *pub, char *why, size_t why_len);

/* An ECC NIST P-256 public area as an OpenSSL key (caller frees with EVP_PKEY_free). */
CLIENT_TPMOBJ_WUR int client_tpmobj_ecc_key(EVP_PKEY **out, const TPM2B_PUBLIC *pub);

/* 0 when sig (a marshalled TPMT_SIGNATURE: ECDSA, SHA-256) is key's signature over digest.
 * SV_ERR_INVALID for a malformed signature or another scheme, SV_ERR_AUTH when it does not
 * verify. */
CLIENT_TPMOBJ_WUR int client_tpmobj_verify(EVP_PKEY *key, const uint8_t digest[static 32],
                                           const uint8_t *sig, size_t sig_len);

/*
 * The EK certificate (DER) chains to one of the CA certificates in pems (PEM texts, each may hold
 * several certificates; self-signed ones are trust anchors, the others intermediates), and its
 * RSA public key equals ek's modulus and exponent. 0, or SV_ERR_AUTH with the reason in why.
 */
CLIENT_TPMOBJ_WUR int client_tpmobj_ek_chain(const uint8_t *der, size_t der_len,
                                             const char *const *pems, size_t npems,
                                             const TPM2B_PUBLIC *ek, char *why, size_t why_len);

/* OpenSSL's RSA public key of an RSA public area (caller frees). */
CLIENT_TPMOBJ_WUR int client_tpmobj_rsa_key(EVP_PKEY **out, const TPM2B_PUBLIC *pub);

#endif
