/*
 * Hashing to ristretto255 (RFC 9380 expand_message_xmd with SHA-512; RFC 9496 one-way map) and
 * the group helpers RFC 9497 needs: HashToGroup, HashToScalar, element and scalar checks.
 * Messages are given as a list of parts so that callers need not concatenate transcripts.
 */
#ifndef SV_CRYPTO_H2C_H
#define SV_CRYPTO_H2C_H

#include <stddef.h>
#include <stdint.h>

#define H2C_ELEMENT_LEN 32
#define H2C_SCALAR_LEN  32
#define H2C_XMD_MAX     (255 * 64) /* ell <= 255 blocks of SHA-512 */
#define H2C_DST_MAX     255        /* longer DSTs are hashed as RFC 9380 §5.3.3 says */

struct h2c_part {
	const uint8_t *p;
	size_t n;
};

/* RFC 9380 §5.3.1 expand_message_xmd(SHA-512): out_len uniform bytes (1..H2C_XMD_MAX) from the
 * concatenation of the nparts parts and dst. SV_ERR_RANGE for an out_len it cannot produce. */
int h2c_expand_xmd_sha512(uint8_t *out, size_t out_len, const struct h2c_part *parts, size_t nparts,
                          const uint8_t *dst, size_t dst_len) __attribute__((warn_unused_result));

/* HashToGroup: xmd to 64 bytes then the ristretto255 one-way map. */
int h2c_hash_to_group(uint8_t out[H2C_ELEMENT_LEN], const struct h2c_part *parts, size_t nparts,
                      const uint8_t *dst, size_t dst_len) __attribute__((warn_unused_result));

/* HashToScalar: xmd to 64 bytes then reduction mod L. */
int h2c_hash_to_scalar(uint8_t out[H2C_SCALAR_LEN], const struct h2c_part *parts, size_t nparts,
                       const uint8_t *dst, size_t dst_len) __attribute__((warn_unused_result));

/* 0 if in is a canonical encoding of a ristretto255 element other than the identity, else
 * SV_ERR_CRYPTO. libsodium 1.0.18's is_valid_point accepts the identity and ignores bit 255
 * (so it accepts two spellings of every element); this accepts neither. */
int h2c_element_check(const uint8_t in[H2C_ELEMENT_LEN]) __attribute__((warn_unused_result));

/* 0 if in is a canonical (< L) non-zero scalar, else SV_ERR_CRYPTO. Constant time in the value. */
int h2c_scalar_check(const uint8_t in[H2C_SCALAR_LEN]) __attribute__((warn_unused_result));

#endif
