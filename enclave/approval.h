/*
 * Policies approved by the policy key K (TPM2_PolicyAuthorize, docs/attestation.md): a PolicyPCR
 * over a PCR selection at given values, its digest and K's signature (struct attest_policy), and
 * the small files they live in. Two objects are authorized this way: the vault identity key (the
 * boot policy in attest-policy.bin, enclave/evidence.h; empty policyRef) and, for a vault
 * initialised with --pcrs, the sealed vault key (vault-policy.bin here; policyRef
 * ATTEST_REF_VAULT_KEY, so that neither key's approvals authorize the other).
 *
 *   body              pcrs u32 | values (32 bytes each, index order) | approved(32) |
 *                     signature str16 (TPMT_SIGNATURE)
 *   vault-policy.bin  "SVVKPOL1" | body | K str16 (TPM2B_PUBLIC)
 *
 * Nothing here is secret, and nothing here is trusted: the TPM checks K's signature and that the
 * PCRs hold the approved values before it unseals or signs. A forged or stale file only makes it
 * refuse. Every decoder bounds-checks and rejects trailing bytes.
 */
#ifndef SV_ENCLAVE_APPROVAL_H
#define SV_ENCLAVE_APPROVAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "enclave/attest.h"

#define APPROVAL_FN_VAULT "vault-policy.bin"
#define APPROVAL_FILE_MAX (16 * ATTEST_BLOB_MAX + ATTEST_CERT_MAX)

struct tpm_approval;

/* The vault key's approval: K's public area and a PolicyPCR over the vault's PCRs (pol.boot_pcrs
 * holds the selection) signed for ATTEST_REF_VAULT_KEY. */
struct approval_vault {
	struct attest_blob key;
	struct attest_policy pol;
};

/* A str16 into out (at most ATTEST_BLOB_MAX bytes). */
int approval_get_blob(struct sv_buf *b, struct attest_blob *out)
    __attribute__((warn_unused_result));
/* The body; decode checks that `approved` is PolicyPCR(pcrs, values) and leaves b after it. */
int approval_encode(const struct attest_policy *pol, struct sv_buf *b)
    __attribute__((warn_unused_result));
int approval_decode(struct sv_buf *b, struct attest_policy *pol)
    __attribute__((warn_unused_result));

int approval_vault_encode(const struct approval_vault *v, struct sv_buf *b)
    __attribute__((warn_unused_result));
/* Exact length; SV_ERR_INVALID when malformed. */
int approval_vault_decode(const uint8_t *p, size_t len, struct approval_vault *v)
    __attribute__((warn_unused_result));
/* The sealed vault key's authPolicy: PolicyAuthorize(name of K, ATTEST_REF_VAULT_KEY).
 * SV_ERR_INVALID when key is not a TPM2B_PUBLIC with nameAlg SHA-256. */
int approval_vault_policy(const struct attest_blob *key, uint8_t out[ATTEST_HASH_LEN])
    __attribute__((warn_unused_result));
/* What tpm_unseal takes; a points into v. */
void approval_vault_tpm(const struct approval_vault *v, struct tpm_approval *a);

/* Reads vault-policy.bin from the directory dfd (named dir in messages). SV_ERR_NOTFOUND when it
 * does not exist, SV_ERR_INVALID when it does not decode; why says which. */
int approval_vault_load(int dfd, const char *dir, struct approval_vault *v, char *why,
                        size_t why_len) __attribute__((warn_unused_result));
/* Replaces vault-policy.bin atomically (approval_replace). */
int approval_vault_save(int dfd, const char *dir, const struct approval_vault *v, char *why,
                        size_t why_len) __attribute__((warn_unused_result));

/* File I/O for these files (and attest.bin): write a new file (excl: O_EXCL, else O_TRUNC) and
 * fsync it; replace one atomically (NAME.new, fsync, the owner of the old file or else of the
 * directory, rename, fsync the directory); read one whole (at most max bytes; SV_ERR_NOTFOUND when
 * absent). */
int approval_write(int dfd, const char *dir, const char *name, const struct sv_buf *b, int excl,
                   char *why, size_t why_len) __attribute__((warn_unused_result));
int approval_replace(int dfd, const char *dir, const char *name, const struct sv_buf *b, char *why,
                     size_t why_len) __attribute__((warn_unused_result));
int approval_read(int dfd, const char *dir, const char *name, uint8_t *buf, size_t max, size_t *len,
                  char *why, size_t why_len) __attribute__((warn_unused_result));

#endif
