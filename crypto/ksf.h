/*
 * Key stretching functions (KSF) for OPAQUE (RFC 9807 §4.3, Stretch), client side only.
 *
 * Two profiles: Identity (conformance tests only: Stretch(x) = x) and Argon2id with one lane
 * (p = 1, the only parallelism libsodium 1.0.18 offers), version 0x13, a 16-byte all-zero salt
 * and 64 bytes of output, with explicit time cost t (passes) and memory cost m (KiB).
 *
 * The profile is public and travels with the registration so that a client can derive again
 * later; its wire encoding is KSF_PARAMS_LEN bytes: type (u8) | t (u32 BE) | m_kib (u32 BE).
 * Identity encodes t = m_kib = 0.
 */
#ifndef SV_CRYPTO_KSF_H
#define SV_CRYPTO_KSF_H

#include <stddef.h>
#include <stdint.h>

#define KSF_IDENTITY 0
#define KSF_ARGON2ID 1

#define KSF_PARAMS_LEN     9  /* encoded profile */
#define KSF_IO_LEN         64 /* Stretch input and output: the OPRF output, Nh bytes */
#define KSF_ARGON2ID_T_MIN 1
#define KSF_ARGON2ID_T_MAX 64
#define KSF_ARGON2ID_M_MIN 8       /* KiB; libsodium's floor */
#define KSF_ARGON2ID_M_MAX 4194304 /* KiB = 4 GiB */

struct ksf_params {
	uint8_t type;   /* KSF_IDENTITY or KSF_ARGON2ID */
	uint32_t t;     /* Argon2id passes; 0 for Identity */
	uint32_t m_kib; /* Argon2id memory in KiB; 0 for Identity */
};

/* 0 if the profile is one we can run (type known, t and m within the bounds above, zero for
 * Identity), SV_ERR_RANGE or SV_ERR_INVALID otherwise. */
int ksf_params_check(const struct ksf_params *p) __attribute__((warn_unused_result));

/* out = Stretch(in) under profile p. SV_ERR_RANGE/INVALID for a bad profile, SV_ERR_NOMEM when
 * Argon2id cannot get its memory. out may alias in. Wipes its temporaries. */
int ksf_stretch(uint8_t out[KSF_IO_LEN], const uint8_t in[KSF_IO_LEN], const struct ksf_params *p)
    __attribute__((warn_unused_result));

/* Writes the KSF_PARAMS_LEN-byte encoding of a valid profile; SV_ERR_* if it is not valid. */
int ksf_params_encode(uint8_t out[KSF_PARAMS_LEN], const struct ksf_params *p)
    __attribute__((warn_unused_result));

/* Parses exactly len bytes (must be KSF_PARAMS_LEN) and checks the profile; nothing written to
 * *p on failure. */
int ksf_params_decode(struct ksf_params *p, const uint8_t *in, size_t len)
    __attribute__((warn_unused_result));

#endif
