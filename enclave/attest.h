/*
 * Attestation on the TPM (issue 6; layouts in docs/attestation.md): the endorsement key (EK), the
 * attestation key (AK, restricted signing, bound to the EK by credential activation), the vault
 * identity key (fixedTPM signing key whose authPolicy is PolicyAuthorize(K), certified by the AK),
 * the approved PCR policy signed by the policy authorization key K, the statement signature at
 * every enclave start, quotes and credential activation.
 *
 * swtpm without a resource manager has three object slots and the storage primary holds one:
 * every function loads what it needs and flushes it before returning.
 */
#ifndef SV_ENCLAVE_ATTEST_H
#define SV_ENCLAVE_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/attest_stmt.h"
#include "common/buf.h"

#define ATTEST_BLOB_MAX   1024 /* one marshalled TPM2B_PUBLIC / TPM2B_PRIVATE / TPMS_ATTEST */
#define ATTEST_CERT_MAX   4096 /* EK certificate (DER) */
#define ATTEST_NONCE_MIN  8
#define ATTEST_NONCE_MAX  64
#define ATTEST_CRED_MAX   64 /* credential bytes activate answers */
#define ATTEST_EK_HANDLE  0x81010001u
#define ATTEST_EK_CERT_NV 0x01c00002u

struct tpm;

struct attest_blob {
	size_t len;
	uint8_t data[ATTEST_BLOB_MAX];
};

/* What init provisions (state file attest.bin). */
struct attest_state {
	struct attest_blob ek_public; /* TPM2B_PUBLIC */
	size_t ek_cert_len;           /* 0: the TPM has no EK certificate */
	uint8_t ek_cert[ATTEST_CERT_MAX];
	struct attest_blob ak_public, ak_private;
	struct attest_blob id_public, id_private;
	struct attest_blob certify_attest;    /* TPMS_ATTEST (no size field) */
	struct attest_blob certify_signature; /* TPMT_SIGNATURE */
	struct attest_blob policy_key;        /* TPM2B_PUBLIC of K */
	uint8_t ek_name[ATTEST_NAME_LEN], ak_name[ATTEST_NAME_LEN], id_name[ATTEST_NAME_LEN];
	uint8_t init_identity[ATTEST_HASH_LEN];
};

/* The approved boot policy (state file attest-policy.bin; replaced by authorize-pcrs). */
struct attest_policy {
	uint32_t boot_pcrs;
	uint8_t values[ATTEST_PCR_COUNT][ATTEST_HASH_LEN]; /* in index order, count = popcount */
	uint8_t approved[ATTEST_HASH_LEN];                 /* PolicyPCR(boot_pcrs, values) */
	struct attest_blob signature;                      /* TPMT_SIGNATURE by K over aHash */
};

/* A quote over boot_pcrs | PCR 10 and the PCR values it covers. */
struct attest_quote {
	struct attest_blob attest;    /* TPMS_ATTEST */
	struct attest_blob signature; /* TPMT_SIGNATURE */
	uint32_t pcrs;
	uint8_t values[ATTEST_PCR_COUNT][ATTEST_HASH_LEN];
};

/* Opaque to this header: an OpenSSL EVP_PKEY (ECC P-256) of K. */
struct evp_pkey_st;

/*
 * init: EK (persistent 0x81010001 when it matches the L-1 template, else CreatePrimary), its
 * certificate (absent: *warn set), AK and identity key under the storage primary, AK<->EK checked
 * by MakeCredential + ActivateCredential on this TPM, the certification, the approved policy for
 * the current values of boot_pcrs signed by K, and one statement signature as a self-test.
 */
/* The SHA-256 values of the PCRs in mask, in index order (values[0] is the lowest PCR of mask).
 * SV_ERR_TPM when the TPM refuses or has no SHA-256 bank. */
int attest_pcr_read(struct tpm *t, uint32_t mask, uint8_t values[][ATTEST_HASH_LEN])
    __attribute__((warn_unused_result));

int attest_provision(struct tpm *t, uint32_t boot_pcrs, struct evp_pkey_st *k,
                     struct attest_state *st, struct attest_policy *pol, int *warn_no_cert,
                     char *why, size_t why_len) __attribute__((warn_unused_result));
/* A new approved policy for the current values of boot_pcrs, signed by K (authorize-pcrs). K must
 * be the key whose public part init stored. */
int attest_authorize(struct tpm *t, uint32_t boot_pcrs, struct evp_pkey_st *k,
                     const struct attest_state *st, struct attest_policy *pol, char *why,
                     size_t why_len) __attribute__((warn_unused_result));
/* The same for any PCR selection and policyRef (ref_len bytes, may be 0): the vault key's
 * approval (enclave/approval.h) is one for the vault's PCRs and ATTEST_REF_VAULT_KEY. */
int attest_approve(struct tpm *t, uint32_t pcrs, const uint8_t *ref, size_t ref_len,
                   struct evp_pkey_st *k, const struct attest_state *st, struct attest_policy *pol,
                   char *why, size_t why_len) __attribute__((warn_unused_result));
/* The EK held loaded for attest_activate: creating it (no persistent EK) takes an RSA key
 * generation, far too slow to repeat per request on a hardware TPM. */
struct attest_ek {
	uint32_t handle; /* ESYS_TR */
	int transient;   /* created (flush at release) rather than persistent */
};
/* Loads the EK and compares its name with init's: SV_ERR_STATE (reason in why) when it differs.
 * With keep non-NULL the EK stays loaded (one of swtpm's three object slots) until
 * attest_ek_release; otherwise it is released at once. */
int attest_check_ek(struct tpm *t, const struct attest_state *st, struct attest_ek *keep, char *why,
                    size_t why_len) __attribute__((warn_unused_result));
void attest_ek_release(struct tpm *t, struct attest_ek *ek);
/* TPM2_Sign by the identity key over SHA-256(stmt) in the PolicyPCR -> PolicyAuthorize session.
 * SV_ERR_STATE when the boot PCRs do not satisfy the approved policy. */
int attest_sign_statement(struct tpm *t, const struct attest_state *st,
                          const struct attest_policy *pol, const uint8_t stmt[ATTEST_STMT_LEN],
                          struct attest_blob *sig) __attribute__((warn_unused_result));
int attest_quote(struct tpm *t, const struct attest_state *st, uint32_t boot_pcrs,
                 const uint8_t *nonce, size_t nonce_len, struct attest_quote *q)
    __attribute__((warn_unused_result));
/* The activate request body: v=1 | u16 len | TPM2B_ID_OBJECT | u16 len | TPM2B_ENCRYPTED_SECRET.
 * id/secret point to marshalled TPM2B structures inside body. SV_ERR_INVALID when malformed. */
int attest_activate_decode(const uint8_t *body, size_t len, const uint8_t **id, size_t *id_len,
                           const uint8_t **secret, size_t *secret_len)
    __attribute__((warn_unused_result));
/* ActivateCredential(AK, EK). SV_ERR_INVALID: malformed body; SV_ERR_AUTH: the TPM refused. */
int attest_activate(struct tpm *t, const struct attest_state *st, const struct attest_ek *ek,
                    const uint8_t *body, size_t len, uint8_t out[ATTEST_CRED_MAX], size_t *out_len)
    __attribute__((warn_unused_result));

#endif
