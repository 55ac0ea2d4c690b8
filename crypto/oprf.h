/*
 * RFC 9497 oblivious PRFs over ristretto255 with SHA-512 (suite "ristretto255-SHA512"), in all
 * three modes: OPRF (mode 0), VOPRF (mode 1, DLEQ proof against the server key) and POPRF (mode 2,
 * public input "info" tweaks the key). Proofs cover a batch of n >= 1 evaluations.
 *
 * Elements and scalars are their 32-byte canonical encodings. Every function that takes an
 * element from outside rejects non-canonical encodings and the identity (SV_ERR_CRYPTO); every
 * scalar from outside must be reduced and non-zero. Functions with a `_det` suffix take their
 * randomness as arguments (for test vectors); the others draw from the system RNG.
 *
 * Batched arrays are packed: n elements are n * OPRF_ELEMENT_LEN consecutive bytes.
 * Secrets (sk, blinds) are the caller's; keep them in sodium_malloc'd memory or wipe them.
 */
#ifndef SV_CRYPTO_OPRF_H
#define SV_CRYPTO_OPRF_H

#include <stddef.h>
#include <stdint.h>

#define OPRF_MODE_OPRF  0
#define OPRF_MODE_VOPRF 1
#define OPRF_MODE_POPRF 2

#define OPRF_ELEMENT_LEN 32 /* Noe */
#define OPRF_SCALAR_LEN  32 /* Ns */
#define OPRF_PROOF_LEN   64 /* c | s */
#define OPRF_OUTPUT_LEN  64 /* Nh */
#define OPRF_SEED_LEN    32 /* DeriveKeyPair seed */
#define OPRF_INPUT_MAX   65535
#define OPRF_INFO_MAX    65535
#define OPRF_BATCH_MAX   1024

#define OPRF_WUR __attribute__((warn_unused_result))

/* RFC 9497 §3.2.1 DeriveKeyPair(seed, info) for the given mode; pk may be NULL. */
int oprf_derive_keypair(uint8_t sk[OPRF_SCALAR_LEN], uint8_t *pk, int mode,
                        const uint8_t seed[OPRF_SEED_LEN], const uint8_t *info,
                        size_t info_len) OPRF_WUR;

/* A fresh random key pair (non-zero scalar); pk may be NULL. */
int oprf_generate_keypair(uint8_t sk[OPRF_SCALAR_LEN], uint8_t *pk) OPRF_WUR;

/* Blind(input): blinded = blind * HashToGroup(input) under the mode's context string. The
 * random variant writes the blind it drew; the _det variant takes it (reduced, non-zero). */
int oprf_blind(uint8_t blind[OPRF_SCALAR_LEN], uint8_t blinded[OPRF_ELEMENT_LEN], int mode,
               const uint8_t *input, size_t input_len) OPRF_WUR;
int oprf_blind_det(uint8_t blinded[OPRF_ELEMENT_LEN], int mode,
                   const uint8_t blind[OPRF_SCALAR_LEN], const uint8_t *input,
                   size_t input_len) OPRF_WUR;

/* OPRF mode: evaluated = sk * blinded. */
int oprf_blind_evaluate(uint8_t evaluated[OPRF_ELEMENT_LEN], const uint8_t sk[OPRF_SCALAR_LEN],
                        const uint8_t blinded[OPRF_ELEMENT_LEN]) OPRF_WUR;

/* OPRF and VOPRF Finalize of one evaluation (VOPRF callers verify the proof first with
 * oprf_voprf_verify): out = Hash(len|input|len|blind^-1 * evaluated|"Finalize"). */
int oprf_finalize(uint8_t out[OPRF_OUTPUT_LEN], const uint8_t *input, size_t input_len,
                  const uint8_t blind[OPRF_SCALAR_LEN],
                  const uint8_t evaluated[OPRF_ELEMENT_LEN]) OPRF_WUR;

/* VOPRF BlindEvaluateBatch: evaluates n blinded elements with sk and proves it against pk.
 * r is the proof randomness for _det (reduced, non-zero). */
int oprf_voprf_evaluate(uint8_t *evaluated, uint8_t proof[OPRF_PROOF_LEN],
                        const uint8_t sk[OPRF_SCALAR_LEN], const uint8_t pk[OPRF_ELEMENT_LEN],
                        const uint8_t *blinded, size_t n) OPRF_WUR;
int oprf_voprf_evaluate_det(uint8_t *evaluated, uint8_t proof[OPRF_PROOF_LEN],
                            const uint8_t sk[OPRF_SCALAR_LEN], const uint8_t pk[OPRF_ELEMENT_LEN],
                            const uint8_t *blinded, size_t n,
                            const uint8_t r[OPRF_SCALAR_LEN]) OPRF_WUR;

/* VOPRF client side: checks the batch proof over (blinded, evaluated) against pk. 0 or
 * SV_ERR_AUTH (proof wrong) / SV_ERR_CRYPTO (bad encoding). */
int oprf_voprf_verify(const uint8_t pk[OPRF_ELEMENT_LEN], const uint8_t *blinded,
                      const uint8_t *evaluated, size_t n,
                      const uint8_t proof[OPRF_PROOF_LEN]) OPRF_WUR;

/* POPRF client: tweaked = G * HashToScalar("Info"|len|info) + pk (checked not to be the
 * identity). Done once per info; needed by verify. */
int oprf_poprf_tweak(uint8_t tweaked[OPRF_ELEMENT_LEN], const uint8_t pk[OPRF_ELEMENT_LEN],
                     const uint8_t *info, size_t info_len) OPRF_WUR;

/* POPRF BlindEvaluateBatch: evaluated_i = (sk + m)^-1 * blinded_i, with a batch proof against
 * the tweaked key. SV_ERR_CRYPTO if sk + m == 0 (the RFC's InverseError). */
int oprf_poprf_evaluate(uint8_t *evaluated, uint8_t proof[OPRF_PROOF_LEN],
                        const uint8_t sk[OPRF_SCALAR_LEN], const uint8_t *blinded, size_t n,
                        const uint8_t *info, size_t info_len) OPRF_WUR;
int oprf_poprf_evaluate_det(uint8_t *evaluated, uint8_t proof[OPRF_PROOF_LEN],
                            const uint8_t sk[OPRF_SCALAR_LEN], const uint8_t *blinded, size_t n,
                            const uint8_t *info, size_t info_len,
                            const uint8_t r[OPRF_SCALAR_LEN]) OPRF_WUR;

/* POPRF client side: checks the proof against the tweaked key (from oprf_poprf_tweak). */
int oprf_poprf_verify(const uint8_t tweaked[OPRF_ELEMENT_LEN], const uint8_t *blinded,
                      const uint8_t *evaluated, size_t n,
                      const uint8_t proof[OPRF_PROOF_LEN]) OPRF_WUR;

/* POPRF Finalize of one evaluation: Hash(len|input|len|info|len|blind^-1*evaluated|"Finalize"). */
int oprf_poprf_finalize(uint8_t out[OPRF_OUTPUT_LEN], const uint8_t *input, size_t input_len,
                        const uint8_t *info, size_t info_len, const uint8_t blind[OPRF_SCALAR_LEN],
                        const uint8_t evaluated[OPRF_ELEMENT_LEN]) OPRF_WUR;

/* Server-side full evaluation without blinding (RFC 9497 Evaluate), for OPRF/VOPRF (info
 * ignored, pass NULL/0) and POPRF. */
int oprf_evaluate(uint8_t out[OPRF_OUTPUT_LEN], int mode, const uint8_t sk[OPRF_SCALAR_LEN],
                  const uint8_t *input, size_t input_len, const uint8_t *info,
                  size_t info_len) OPRF_WUR;

/* Decodes an element: exactly OPRF_ELEMENT_LEN bytes, canonical, not the identity. */
int oprf_element_check(const uint8_t *in, size_t len) OPRF_WUR;
/* Decodes a scalar: exactly OPRF_SCALAR_LEN bytes, canonical (< L), non-zero. */
int oprf_scalar_check(const uint8_t *in, size_t len) OPRF_WUR;

#endif
