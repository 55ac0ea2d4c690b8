/*
 * Attestation evidence at rest and on the wire. At rest, two files in the state directory:
 *   attest.bin         what init provisioned (EK public and certificate, AK and identity key
 *                      blobs, the certification, K's public key); written once
 *   attest-policy.bin  the approved boot policy (selection, PCR values, digest, K's signature);
 *                      replaced atomically by `sealvault-admin authorize-pcrs`
 * Neither holds a secret: the private blobs are encrypted by the TPM under the storage primary.
 * On the wire: the evidence JSON of docs/attestation.md (without the two logs, which the broker
 * or sealvault-admin adds).
 */
#ifndef SV_ENCLAVE_EVIDENCE_H
#define SV_ENCLAVE_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "enclave/attest.h"

#define EVIDENCE_FN_STATE  "attest.bin"
#define EVIDENCE_FN_POLICY "attest-policy.bin"

/* Writes attest.bin (refused when it exists) and attest-policy.bin into dir, 0600, fsynced. */
int evidence_save(const char *dir, const struct attest_state *st, const struct attest_policy *pol,
                  char *why, size_t why_len) __attribute__((warn_unused_result));
/* Replaces attest-policy.bin atomically (write, fsync, rename, fsync the directory). */
int evidence_save_policy(const char *dir, const struct attest_policy *pol, char *why,
                         size_t why_len) __attribute__((warn_unused_result));
/* Removes both files (init's clean-up after a later failure). */
void evidence_remove(const char *dir);
/* Reads and checks both files: names recomputed from the public areas, init_identity, and the
 * approved digest against the stored PCR values. SV_ERR_NOTFOUND when attest.bin is missing. */
int evidence_load(const char *dir, struct attest_state *st, struct attest_policy *pol, char *why,
                  size_t why_len) __attribute__((warn_unused_result));
/* Decoders of the two file formats (fuzzed; exact length, no trailing bytes). */
int evidence_decode_state(const uint8_t *p, size_t len, struct attest_state *st)
    __attribute__((warn_unused_result));
int evidence_decode_policy(const uint8_t *p, size_t len, struct attest_policy *pol)
    __attribute__((warn_unused_result));

/* The evidence JSON text (no event_log / ima_log) appended to out. */
int evidence_json(const struct attest_state *st, const struct attest_policy *pol,
                  const struct attest_quote *q, const uint8_t *nonce, size_t nonce_len,
                  const uint8_t stmt[ATTEST_STMT_LEN], const struct attest_blob *stmt_sig,
                  struct sv_buf *out) __attribute__((warn_unused_result));

#endif
