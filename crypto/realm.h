/*
 * Threshold realms (docs/realms.md): the cryptography of a secret split across n realms with
 * threshold t, Juicebox style, on ristretto255 and RFC 9497.
 *
 *   - Shamir sharing of a ristretto255 scalar, t of n (1 <= t <= n <= REALM_MAX), share index
 *     1..n, and Lagrange coefficients at 0 for any set of distinct indices.
 *   - A realm's evaluation: RFC 9497 BlindEvaluate with its share of the OPRF key plus a VOPRF
 *     DLEQ proof against its public share commitment (share * G).
 *   - The client's check of each proof and combination of t evaluations by Lagrange
 *     interpolation in the exponent; the result is the RFC 9497 OPRF (mode 0) evaluation under
 *     the combined key, finalized with oprf_finalize.
 *   - The derivations: password -> access key and encryption-key seed (KSF), the registration
 *     hash, the unlock check, per-realm unlock tags and share MACs, the secret's key from the
 *     seed and the shared encryption scalar, the secret's AEAD, and the per-session tag proof and
 *     sealed release between a realm and the client.
 *
 * Pure functions: no I/O, no global state. Secrets (shares, keys, seeds) are the caller's; keep
 * them in sodium_malloc'd memory. Every function returns 0 or a negative SV_ERR_* and writes no
 * partial output on failure (outputs are wiped). Functions with a `_det` suffix take their
 * randomness as arguments, for test vectors; the others draw it from the system RNG.
 */
#ifndef SV_CRYPTO_REALM_H
#define SV_CRYPTO_REALM_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/ksf.h"

#define REALM_MAX           16 /* realms per registration (n) */
#define REALM_SCALAR_LEN    32
#define REALM_ELEMENT_LEN   32
#define REALM_PROOF_LEN     64 /* RFC 9497 proof c | s */
#define REALM_ID_LEN        16 /* a realm is named by its vault_id (GET /v1/info) */
#define REALM_VERSION_LEN   16 /* random per registration */
#define REALM_SESSION_LEN   16 /* chosen by the realm at recover2 */
#define REALM_UID_MAX       255
#define REALM_PASSWORD_MAX  1024
#define REALM_ACCESS_LEN    64 /* the OPRF input */
#define REALM_OUTPUT_LEN    64 /* the OPRF output (RFC 9497 Nh) */
#define REALM_SEED_LEN      32 /* encryption-key seed */
#define REALM_HASH_LEN      64 /* registration hash */
#define REALM_PRK_LEN       64 /* unlock PRK, from the OPRF output */
#define REALM_KEY_LEN       32 /* unlock check, tag, tag proof, share MAC, secret key */
#define REALM_NONCE_LEN     24 /* XChaCha20-Poly1305 */
#define REALM_TAG_LEN       16 /* its tag */
#define REALM_SECRET_MAX    256
#define REALM_SEALED_LEN(n) (REALM_NONCE_LEN + (n) + REALM_TAG_LEN)
/* a realm's release: nonce | AEAD(share | share_mac) */
#define REALM_RELEASE_LEN REALM_SEALED_LEN(REALM_SCALAR_LEN + REALM_KEY_LEN)

#define REALM_WUR __attribute__((warn_unused_result))

/* ---- Shamir sharing over the ristretto255 scalar field ---- */

struct realm_share {
	uint8_t index; /* 1..REALM_MAX: the x coordinate */
	uint8_t value[REALM_SCALAR_LEN];
};

/* Splits secret (a reduced scalar) into n shares, any t of which determine it: share i is
 * f(i) for f(x) = secret + c_1 x + ... + c_{t-1} x^{t-1} with random coefficients (kept in
 * sodium_malloc'd memory and wiped). shares has n entries; SV_ERR_RANGE unless
 * 1 <= t <= n <= REALM_MAX, SV_ERR_CRYPTO for a non-canonical secret. */
int realm_shamir_split(struct realm_share *shares, const uint8_t secret[REALM_SCALAR_LEN],
                       unsigned t, unsigned n) REALM_WUR;
/* The same with the coefficients c_1..c_{t-1} given (packed, (t-1) * 32 bytes, reduced). */
int realm_shamir_split_det(struct realm_share *shares, const uint8_t secret[REALM_SCALAR_LEN],
                           unsigned t, unsigned n, const uint8_t *coeffs) REALM_WUR;

/* lambda = prod_{j != which} x_j / (x_j - x_which): the Lagrange coefficient at 0 of the
 * which-th of count distinct indices (each 1..REALM_MAX). SV_ERR_INVALID for a repeated or
 * out-of-range index. */
int realm_lagrange(uint8_t lambda[REALM_SCALAR_LEN], const uint8_t *indices, size_t count,
                   size_t which) REALM_WUR;

/* secret = sum lambda_i * share_i over count (>= 1) shares with distinct indices. With fewer
 * shares than the threshold the result is some scalar unrelated to the secret: nothing here can
 * tell, the caller must know t. */
int realm_shamir_combine(uint8_t secret[REALM_SCALAR_LEN], const struct realm_share *shares,
                         size_t count) REALM_WUR;

/* ---- The threshold OPRF ---- */

/* commitment = share * G, the public share commitment a realm proves against. */
int realm_commitment(uint8_t commitment[REALM_ELEMENT_LEN],
                     const uint8_t share[REALM_SCALAR_LEN]) REALM_WUR;

/* A realm's recover2 work: evaluated = share * blinded (RFC 9497 BlindEvaluate) and a VOPRF
 * DLEQ proof (RFC 9497 §2.2, context mode 1) that log_G(commitment) = log_blinded(evaluated). */
int realm_evaluate(uint8_t evaluated[REALM_ELEMENT_LEN], uint8_t proof[REALM_PROOF_LEN],
                   const uint8_t share[REALM_SCALAR_LEN],
                   const uint8_t commitment[REALM_ELEMENT_LEN],
                   const uint8_t blinded[REALM_ELEMENT_LEN]) REALM_WUR;
int realm_evaluate_det(uint8_t evaluated[REALM_ELEMENT_LEN], uint8_t proof[REALM_PROOF_LEN],
                       const uint8_t share[REALM_SCALAR_LEN],
                       const uint8_t commitment[REALM_ELEMENT_LEN],
                       const uint8_t blinded[REALM_ELEMENT_LEN],
                       const uint8_t r[REALM_SCALAR_LEN]) REALM_WUR;

/* One realm's answer as the client holds it. */
struct realm_evaluation {
	uint8_t index;                         /* the realm's share index */
	uint8_t commitment[REALM_ELEMENT_LEN]; /* from the agreed registration */
	uint8_t evaluated[REALM_ELEMENT_LEN];  /* from the realm */
	uint8_t proof[REALM_PROOF_LEN];        /* from the realm */
};

/* Checks one evaluation's proof: 0, SV_ERR_AUTH (the proof is wrong) or SV_ERR_CRYPTO (an
 * encoding is not a valid element). */
int realm_verify(const struct realm_evaluation *ev,
                 const uint8_t blinded[REALM_ELEMENT_LEN]) REALM_WUR;

/* Checks every proof, then combined = sum lambda_i * evaluated_i (Lagrange in the exponent),
 * which is k * blinded for the combined key k when the count evaluations come from at least t
 * shares. On a failed proof *bad is set to the position (0..count-1) of the first realm whose
 * evaluation is wrong and SV_ERR_AUTH (or SV_ERR_CRYPTO) returned; *bad is count otherwise.
 * Repeated indices: SV_ERR_INVALID. Pass the result to oprf_finalize. */
int realm_combine(uint8_t combined[REALM_ELEMENT_LEN], size_t *bad,
                  const uint8_t blinded[REALM_ELEMENT_LEN], const struct realm_evaluation *evs,
                  size_t count) REALM_WUR;

/* ---- Derivations (docs/realms.md, "Derivations") ---- */

/* The password's stretch: ksf_in = HKDF-Expand(HKDF-Extract(version, password), label | uid),
 * stretched = KSF(ksf_in), access_key and enc_seed expanded from it. */
int realm_stretch(uint8_t access_key[REALM_ACCESS_LEN], uint8_t enc_seed[REALM_SEED_LEN],
                  const uint8_t *password, size_t password_len,
                  const uint8_t version[REALM_VERSION_LEN], const uint8_t *uid, size_t uid_len,
                  const struct ksf_params *ksf) REALM_WUR;

/* The registration hash: SHA-512 over the label, version, KSF profile, t, n, uid and the n
 * share commitments (packed). It binds every derived key to one registration. */
int realm_registration_hash(uint8_t out[REALM_HASH_LEN], const uint8_t version[REALM_VERSION_LEN],
                            const struct ksf_params *ksf, unsigned t, unsigned n,
                            const uint8_t *uid, size_t uid_len,
                            const uint8_t *commitments) REALM_WUR;

/* unlock_prk = HKDF-Extract(reg_hash, oprf_output). */
void realm_unlock_prk(uint8_t prk[REALM_PRK_LEN], const uint8_t oprf_output[REALM_OUTPUT_LEN],
                      const uint8_t reg_hash[REALM_HASH_LEN]);

/* The unlock check every realm stores and returns: the client compares it (constant time) to
 * tell a wrong password from a misbehaving realm before sending any tag. */
int realm_unlock_check(uint8_t out[REALM_KEY_LEN], const uint8_t prk[REALM_PRK_LEN]) REALM_WUR;

/* Realm index's unlock tag, bound to its realm id. */
int realm_unlock_tag(uint8_t tag[REALM_KEY_LEN], const uint8_t prk[REALM_PRK_LEN],
                     const uint8_t realm_id[REALM_ID_LEN], unsigned index) REALM_WUR;

/* The MAC a realm stores beside its encryption-key share so that the client can tell a wrong
 * share from that realm: HMAC(prk, label | realm_id | index | share), first 32 bytes. */
int realm_share_mac(uint8_t mac[REALM_KEY_LEN], const uint8_t prk[REALM_PRK_LEN],
                    const uint8_t realm_id[REALM_ID_LEN], unsigned index,
                    const uint8_t share[REALM_SCALAR_LEN]) REALM_WUR;

/* key = HKDF-Expand(HKDF-Extract(reg_hash, enc_seed | enc_scalar), label, 32): without t shares
 * of enc_scalar the key is unknown even to whoever knows the password. */
int realm_secret_key(uint8_t key[REALM_KEY_LEN], const uint8_t enc_seed[REALM_SEED_LEN],
                     const uint8_t enc_scalar[REALM_SCALAR_LEN],
                     const uint8_t reg_hash[REALM_HASH_LEN]) REALM_WUR;

/* The secret's AEAD: out = nonce | XChaCha20-Poly1305(key, nonce, secret, ad = reg_hash),
 * REALM_SEALED_LEN(secret_len) bytes; secret_len 1..REALM_SECRET_MAX. */
int realm_secret_seal(uint8_t *out, const uint8_t key[REALM_KEY_LEN],
                      const uint8_t reg_hash[REALM_HASH_LEN], const uint8_t *secret,
                      size_t secret_len) REALM_WUR;
int realm_secret_seal_det(uint8_t *out, const uint8_t key[REALM_KEY_LEN],
                          const uint8_t reg_hash[REALM_HASH_LEN], const uint8_t *secret,
                          size_t secret_len, const uint8_t nonce[REALM_NONCE_LEN]) REALM_WUR;
/* Opens what realm_secret_seal wrote (in_len = REALM_SEALED_LEN(secret_len)); secret must hold
 * in_len - REALM_SEALED_LEN(0) bytes. SV_ERR_AUTH on a wrong key or altered bytes. */
int realm_secret_open(uint8_t *secret, size_t *secret_len, const uint8_t key[REALM_KEY_LEN],
                      const uint8_t reg_hash[REALM_HASH_LEN], const uint8_t *in,
                      size_t in_len) REALM_WUR;

/* recover3: the client proves it holds the tag without sending it:
 * proof = HMAC(tag, label | session_id), first 32 bytes. The realm checks with
 * realm_tag_check (constant time): 0 or SV_ERR_AUTH. */
int realm_tag_proof(uint8_t proof[REALM_KEY_LEN], const uint8_t tag[REALM_KEY_LEN],
                    const uint8_t session_id[REALM_SESSION_LEN]) REALM_WUR;
int realm_tag_check(const uint8_t tag[REALM_KEY_LEN], const uint8_t session_id[REALM_SESSION_LEN],
                    const uint8_t proof[REALM_KEY_LEN]) REALM_WUR;

/* The realm's release after a good tag proof: share and share_mac sealed under
 * HKDF-Expand(tag, label | session_id, 32), so that only that session's client can read them. */
int realm_release_seal(uint8_t out[REALM_RELEASE_LEN], const uint8_t tag[REALM_KEY_LEN],
                       const uint8_t session_id[REALM_SESSION_LEN],
                       const uint8_t share[REALM_SCALAR_LEN],
                       const uint8_t share_mac[REALM_KEY_LEN]) REALM_WUR;
int realm_release_seal_det(uint8_t out[REALM_RELEASE_LEN], const uint8_t tag[REALM_KEY_LEN],
                           const uint8_t session_id[REALM_SESSION_LEN],
                           const uint8_t share[REALM_SCALAR_LEN],
                           const uint8_t share_mac[REALM_KEY_LEN],
                           const uint8_t nonce[REALM_NONCE_LEN]) REALM_WUR;
int realm_release_open(uint8_t share[REALM_SCALAR_LEN], uint8_t share_mac[REALM_KEY_LEN],
                       const uint8_t tag[REALM_KEY_LEN],
                       const uint8_t session_id[REALM_SESSION_LEN],
                       const uint8_t in[REALM_RELEASE_LEN]) REALM_WUR;

/* ---- Guess budget ---- */

/* The most guesses an attacker gets through any mix of realms: floor(n * per_realm / t). */
unsigned realm_guess_bound(unsigned per_realm, unsigned t, unsigned n);
/* The per-realm limit G for a desired total: the largest G <= 255 with
 * floor(n * G / t) <= total. SV_ERR_RANGE if that G would be 0 (total < n / t) or t, n are out
 * of bounds; *per_realm is untouched on failure. */
int realm_guess_limit(unsigned *per_realm, unsigned total, unsigned t, unsigned n) REALM_WUR;

#endif
