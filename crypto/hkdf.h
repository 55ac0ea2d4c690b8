/*
 * HMAC-SHA512 and HKDF-SHA512 (RFC 5869) over libsodium's HMAC, which 1.0.18 lacks as a KDF.
 * Keys of any length (crypto_auth_hmacsha512_init hashes long keys as HMAC requires).
 */
#ifndef SV_CRYPTO_HKDF_H
#define SV_CRYPTO_HKDF_H

#include <stddef.h>
#include <stdint.h>

#define HKDF_SHA512_LEN        64
#define HKDF_SHA512_EXPAND_MAX (255 * HKDF_SHA512_LEN)

/* out = HMAC-SHA512(key, msg1 | msg2); msg2 may be NULL with length 0. */
void hkdf_hmac_sha512(uint8_t out[HKDF_SHA512_LEN], const uint8_t *key, size_t key_len,
                      const uint8_t *msg1, size_t len1, const uint8_t *msg2, size_t len2);

/* prk = HKDF-Extract(salt, ikm); an empty salt (NULL, 0) means 64 zero bytes as RFC 5869 says. */
void hkdf_sha512_extract(uint8_t prk[HKDF_SHA512_LEN], const uint8_t *salt, size_t salt_len,
                         const uint8_t *ikm, size_t ikm_len);

/* out = HKDF-Expand(prk, info1 | info2, out_len). SV_ERR_RANGE if out_len is 0 or larger than
 * HKDF_SHA512_EXPAND_MAX. Wipes its temporaries. */
int hkdf_sha512_expand(uint8_t *out, size_t out_len, const uint8_t *prk, size_t prk_len,
                       const uint8_t *info1, size_t len1, const uint8_t *info2, size_t len2)
    __attribute__((warn_unused_result));

#endif
