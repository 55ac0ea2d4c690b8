/*
 * Attestation values both sides compute: the 144-byte statement the vault identity key signs,
 * build_hash over the three sealvault binaries, init_identity over the three TPM names, and the
 * TPM policy digests (PolicyPCR, PolicyAuthorize) and PCR selections computed in software.
 * The layouts are fixed by /work/notes/attest-contract.md and docs/attestation.md. SHA-256 only
 * (libsodium); no TPM library, so the client links it too.
 */
#ifndef SV_COMMON_ATTEST_STMT_H
#define SV_COMMON_ATTEST_STMT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define ATTEST_STMT_MAGIC     "sealvault-stmt-1" /* 16 bytes, no NUL in the statement */
#define ATTEST_STMT_MAGIC_LEN 16
#define ATTEST_HASH_LEN       32
#define ATTEST_STMT_LEN       (ATTEST_STMT_MAGIC_LEN + 4 * ATTEST_HASH_LEN) /* 144 */
#define ATTEST_INIT_MAGIC     "sealvault-init-1"
/* A TPM name with nameAlg SHA-256: 2-byte algorithm id (0x000b) then the 32-byte digest. */
#define ATTEST_NAME_LEN   34
#define ATTEST_ALG_SHA256 0x000b
/* PCR selection: a bit mask over PCRs 0..23 of the SHA-256 bank. */
#define ATTEST_PCR_COUNT    24
#define ATTEST_PCR_IMA      10
#define ATTEST_PCRS_DEFAULT 0xffu /* PCRs 0-7 */
/* TPML_PCR_SELECTION with one SHA-256 entry: count(4) hash(2) sizeofSelect(1) pcrSelect(3). */
#define ATTEST_PCRSEL_LEN 10
#define ATTEST_NBINARIES  3

struct attest_stmt {
	uint8_t server_public_key[ATTEST_HASH_LEN];
	uint8_t policy_hash[ATTEST_HASH_LEN];
	uint8_t build_hash[ATTEST_HASH_LEN];
	uint8_t init_identity[ATTEST_HASH_LEN];
};

/* "sealvaultd", "sealvault-enclave", "sealvault-broker": the order build_hash uses. */
extern const char *const attest_binary_names[ATTEST_NBINARIES];

void attest_stmt_encode(uint8_t out[static ATTEST_STMT_LEN], const struct attest_stmt *s);
/* Exactly ATTEST_STMT_LEN bytes starting with the magic; anything else is SV_ERR_INVALID. */
__attribute__((warn_unused_result)) int attest_stmt_decode(struct attest_stmt *s, const uint8_t *in,
                                                           size_t len);

/* SHA-256 of a whole file read with pread from offset 0 (the descriptor's offset is untouched). */
__attribute__((warn_unused_result)) int attest_file_sha256_fd(int fd,
                                                              uint8_t out[static ATTEST_HASH_LEN]);
/* build_hash from the three per-binary digests, in attest_binary_names order. */
void attest_build_hash_digests(const uint8_t digests[ATTEST_NBINARIES][ATTEST_HASH_LEN],
                               uint8_t out[static ATTEST_HASH_LEN]);
/* build_hash from open descriptors / from paths (sealvaultd, enclave, broker). */
__attribute__((warn_unused_result)) int
attest_build_hash_fds(const int fds[static ATTEST_NBINARIES], uint8_t out[static ATTEST_HASH_LEN]);
__attribute__((warn_unused_result)) int
attest_build_hash_paths(const char *const paths[static ATTEST_NBINARIES],
                        uint8_t out[static ATTEST_HASH_LEN]);

/* SHA-256("sealvault-init-1" || ek_name || ak_name || id_name). */
void attest_init_identity(const uint8_t ek_name[static ATTEST_NAME_LEN],
                          const uint8_t ak_name[static ATTEST_NAME_LEN],
                          const uint8_t id_name[static ATTEST_NAME_LEN],
                          uint8_t out[static ATTEST_HASH_LEN]);
/*
 * The TPM name of an object from its marshalled TPM2B_PUBLIC (2-byte size, then TPMT_PUBLIC):
 * nameAlg || SHA-256(TPMT_PUBLIC). Only nameAlg SHA-256 is accepted; the size field must match.
 */
__attribute__((warn_unused_result)) int
attest_name_from_public(const uint8_t *tpm2b_public, size_t len,
                        uint8_t name[static ATTEST_NAME_LEN]);

/* "0-7", "0,1,2,7", "0-3,10" -> mask; rejects empty items, PCRs >= 24, reversed ranges, junk. */
__attribute__((warn_unused_result)) int attest_pcrs_parse(const char *list, uint32_t *mask);
/* mask -> "0,1,2,3" into out; SV_ERR_RANGE when it does not fit. */
__attribute__((warn_unused_result)) int attest_pcrs_format(uint32_t mask, char *out, size_t outlen);
/* Number of PCRs in mask. */
unsigned attest_pcrs_count(uint32_t mask);
/* Marshalled TPML_PCR_SELECTION (SHA-256 bank) for mask. */
void attest_pcrsel_marshal(uint32_t mask, uint8_t out[static ATTEST_PCRSEL_LEN]);
/* Parses a TPML_PCR_SELECTION that selects only SHA-256 PCRs 0..23 (one entry) into a mask. */
__attribute__((warn_unused_result)) int attest_pcrsel_parse(const uint8_t *in, size_t len,
                                                            uint32_t *mask);

/*
 * SHA-256 over the PCR values in index order (values[i] is the i-th selected PCR, lowest first):
 * the pcrDigest of a quote and of PolicyPCR.
 */
void attest_pcr_digest(uint32_t mask, const uint8_t (*values)[ATTEST_HASH_LEN],
                       uint8_t out[static ATTEST_HASH_LEN]);
/* policyDigest of a session that ran only TPM2_PolicyPCR(mask, digest of values), from zero. */
void attest_policy_pcr(uint32_t mask, const uint8_t (*values)[ATTEST_HASH_LEN],
                       uint8_t out[static ATTEST_HASH_LEN]);
/* policyDigest after TPM2_PolicyAuthorize(keyName, policyRef empty): an object's authPolicy. */
void attest_policy_authorize(const uint8_t key_name[static ATTEST_NAME_LEN],
                             uint8_t out[static ATTEST_HASH_LEN]);
/* aHash that K signs to approve a policy: SHA-256(approvedPolicy || policyRef(empty)). */
void attest_policy_ahash(const uint8_t approved[static ATTEST_HASH_LEN],
                         uint8_t out[static ATTEST_HASH_LEN]);
/* The same with a policyRef (ref_len bytes, may be 0): an approval K signs for one policyRef
 * satisfies only a PolicyAuthorize with that policyRef. The identity key uses the empty one, the
 * sealed vault key ATTEST_REF_VAULT_KEY, so that neither key's approvals work for the other. */
void attest_policy_authorize_ref(const uint8_t key_name[static ATTEST_NAME_LEN], const uint8_t *ref,
                                 size_t ref_len, uint8_t out[static ATTEST_HASH_LEN]);
void attest_policy_ahash_ref(const uint8_t approved[static ATTEST_HASH_LEN], const uint8_t *ref,
                             size_t ref_len, uint8_t out[static ATTEST_HASH_LEN]);
#define ATTEST_REF_VAULT_KEY     "sealvault-vault-key-1" /* policyRef of the vault key, no NUL */
#define ATTEST_REF_VAULT_KEY_LEN 21

#endif
