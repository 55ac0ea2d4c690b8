/* HMAC-SHA512 and HKDF-SHA512 on libsodium's incremental HMAC. */
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "crypto/hkdf.h"

void hkdf_hmac_sha512(uint8_t out[HKDF_SHA512_LEN], const uint8_t *key, size_t key_len,
                      const uint8_t *msg1, size_t len1, const uint8_t *msg2, size_t len2)
{
	crypto_auth_hmacsha512_state st;

	crypto_auth_hmacsha512_init(&st, key, key_len);
	if (len1 > 0)
		crypto_auth_hmacsha512_update(&st, msg1, len1);
	if (len2 > 0)
		crypto_auth_hmacsha512_update(&st, msg2, len2);
	crypto_auth_hmacsha512_final(&st, out);
	sodium_memzero(&st, sizeof st);
}

void hkdf_sha512_extract(uint8_t prk[HKDF_SHA512_LEN], const uint8_t *salt, size_t salt_len,
                         const uint8_t *ikm, size_t ikm_len)
{
	static const uint8_t zero_salt[HKDF_SHA512_LEN];

	if (salt_len == 0) {
		salt = zero_salt;
		salt_len = sizeof zero_salt;
	}
	hkdf_hmac_sha512(prk, salt, salt_len, ikm, ikm_len, NULL, 0);
}

int hkdf_sha512_expand(uint8_t *out, size_t out_len, const uint8_t *prk, size_t prk_len,
                       const uint8_t *info1, size_t len1, const uint8_t *info2, size_t len2)
{
	crypto_auth_hmacsha512_state base, st;
	uint8_t t[HKDF_SHA512_LEN];
	size_t done = 0, n;
	uint8_t ctr = 0;

	if (out_len == 0 || out_len > HKDF_SHA512_EXPAND_MAX)
		return SV_ERR_RANGE;
	/* The keyed inner/outer state is the same for every block: set it up once. */
	crypto_auth_hmacsha512_init(&base, prk, prk_len);
	while (done < out_len) {
		st = base;
		if (ctr > 0)
			crypto_auth_hmacsha512_update(&st, t, sizeof t);
		if (len1 > 0)
			crypto_auth_hmacsha512_update(&st, info1, len1);
		if (len2 > 0)
			crypto_auth_hmacsha512_update(&st, info2, len2);
		ctr++;
		crypto_auth_hmacsha512_update(&st, &ctr, 1);
		crypto_auth_hmacsha512_final(&st, t);
		n = out_len - done < sizeof t ? out_len - done : sizeof t;
		memcpy(out + done, t, n);
		done += n;
	}
	sodium_memzero(&base, sizeof base);
	sodium_memzero(&st, sizeof st);
	sodium_memzero(t, sizeof t);
	return 0;
}
