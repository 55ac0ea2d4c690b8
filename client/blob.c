#include "client/blob.h"

#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "crypto/hkdf.h"

#define BLOB_KEY_INFO "sealvault backup-key blob v1"
#define BLOB_AD_MAX   (CLIENT_BLOB_HEADER_LEN + 2 + CLIENT_USER_MAX)

static int derive_key(uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES],
                      const uint8_t export_key[OPAQUE_EXPORT_KEY_LEN])
{
	return hkdf_sha512_expand(key, crypto_aead_xchacha20poly1305_ietf_KEYBYTES, export_key,
	                          OPAQUE_EXPORT_KEY_LEN, (const uint8_t *)BLOB_KEY_INFO,
	                          sizeof(BLOB_KEY_INFO) - 1, NULL, 0);
}

/* ad = header | u16 user_len | user */
static size_t make_ad(uint8_t ad[BLOB_AD_MAX], const uint8_t header[CLIENT_BLOB_HEADER_LEN],
                      const uint8_t *user, size_t user_len)
{
	memcpy(ad, header, CLIENT_BLOB_HEADER_LEN);
	ad[CLIENT_BLOB_HEADER_LEN] = (uint8_t)(user_len >> 8);
	ad[CLIENT_BLOB_HEADER_LEN + 1] = (uint8_t)user_len;
	memcpy(ad + CLIENT_BLOB_HEADER_LEN + 2, user, user_len);
	return CLIENT_BLOB_HEADER_LEN + 2 + user_len;
}

int client_blob_seal(uint8_t *blob, size_t *blob_len, const uint8_t *secret, size_t secret_len,
                     const uint8_t export_key[OPAQUE_EXPORT_KEY_LEN], const struct ksf_params *ksf,
                     const uint8_t *user, size_t user_len)
{
	uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	uint8_t ad[BLOB_AD_MAX];
	int r;

	if (secret_len == 0 || secret_len > CLIENT_SECRET_MAX || user_len == 0 ||
	    user_len > CLIENT_USER_MAX)
		return SV_ERR_RANGE;
	blob[0] = CLIENT_BLOB_VERSION;
	r = ksf_params_encode(blob + 1, ksf);
	if (r != 0)
		goto out;
	r = derive_key(key, export_key);
	if (r != 0)
		goto out;
	uint8_t *nonce = blob + CLIENT_BLOB_HEADER_LEN;
	randombytes_buf(nonce, CLIENT_BLOB_NONCE_LEN);
	size_t ad_len = make_ad(ad, blob, user, user_len);
	unsigned long long ct_len;
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + CLIENT_BLOB_NONCE_LEN, &ct_len,
	                                               secret, secret_len, ad, ad_len, NULL, nonce,
	                                               key) != 0) {
		r = SV_ERR_CRYPTO;
		goto out;
	}
	*blob_len = CLIENT_BLOB_HEADER_LEN + CLIENT_BLOB_NONCE_LEN + (size_t)ct_len;
	r = SV_OK;
out:
	sodium_memzero(key, sizeof(key));
	if (r != 0)
		sodium_memzero(blob, CLIENT_BLOB_HEADER_LEN);
	return r;
}

int client_blob_open(uint8_t *secret, size_t *secret_len, struct ksf_params *ksf,
                     const uint8_t *blob, size_t blob_len,
                     const uint8_t export_key[OPAQUE_EXPORT_KEY_LEN], const uint8_t *user,
                     size_t user_len)
{
	uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	uint8_t ad[BLOB_AD_MAX];
	struct ksf_params prof;
	int r;

	if (user_len == 0 || user_len > CLIENT_USER_MAX)
		return SV_ERR_RANGE;
	if (blob_len <= CLIENT_BLOB_OVERHEAD || blob_len > CLIENT_BLOB_MAX ||
	    blob[0] != CLIENT_BLOB_VERSION)
		return SV_ERR_INVALID;
	r = ksf_params_decode(&prof, blob + 1, KSF_PARAMS_LEN);
	if (r != 0)
		return SV_ERR_INVALID;
	r = derive_key(key, export_key);
	if (r != 0)
		goto out;
	const uint8_t *nonce = blob + CLIENT_BLOB_HEADER_LEN;
	size_t ad_len = make_ad(ad, blob, user, user_len);
	unsigned long long pt_len;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	        secret, &pt_len, NULL, nonce + CLIENT_BLOB_NONCE_LEN,
	        blob_len - CLIENT_BLOB_HEADER_LEN - CLIENT_BLOB_NONCE_LEN, ad, ad_len, nonce,
	        key) != 0) {
		r = SV_ERR_AUTH;
		goto out;
	}
	*secret_len = (size_t)pt_len;
	if (ksf != NULL)
		*ksf = prof;
	r = SV_OK;
out:
	sodium_memzero(key, sizeof(key));
	return r;
}
