#include "client/makecred.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "client/tpmobj.h"
#include "common/err.h"

void client_makecred_kdfa(const uint8_t *key, size_t key_len, const char *label,
                          const uint8_t *ctx_u, size_t u_len, const uint8_t *ctx_v, size_t v_len,
                          uint8_t *out, size_t bits)
{
	size_t want = bits / 8;
	uint8_t block[32], be[4];
	for (uint32_t i = 1; want > 0; i++) {
		crypto_auth_hmacsha256_state st;
		crypto_auth_hmacsha256_init(&st, key, key_len);
		be[0] = (uint8_t)(i >> 24), be[1] = (uint8_t)(i >> 16), be[2] = (uint8_t)(i >> 8);
		be[3] = (uint8_t)i;
		crypto_auth_hmacsha256_update(&st, be, 4);
		/* the label with its terminating NUL */
		crypto_auth_hmacsha256_update(&st, (const uint8_t *)label, strlen(label) + 1);
		if (u_len)
			crypto_auth_hmacsha256_update(&st, ctx_u, u_len);
		if (v_len)
			crypto_auth_hmacsha256_update(&st, ctx_v, v_len);
		be[0] = (uint8_t)(bits >> 24), be[1] = (uint8_t)(bits >> 16);
		be[2] = (uint8_t)(bits >> 8), be[3] = (uint8_t)bits;
		crypto_auth_hmacsha256_update(&st, be, 4);
		crypto_auth_hmacsha256_final(&st, block);
		size_t n = want < sizeof(block) ? want : sizeof(block);
		memcpy(out, block, n);
		out += n;
		want -= n;
		sodium_memzero(&st, sizeof(st));
	}
	sodium_memzero(block, sizeof(block));
}

/* RSA-OAEP (SHA-256, label "IDENTITY\0") of the seed under the EK: Part 1 §24.4 / Annex B.10.3. */
static int encrypt_seed(const TPM2B_PUBLIC *ek, const uint8_t seed[static 32], uint8_t *out,
                        size_t *out_len)
{
	EVP_PKEY *key = NULL;
	EVP_PKEY_CTX *pc = NULL;
	unsigned char *label = NULL;
	int r = client_tpmobj_rsa_key(&key, ek);
	if (r != SV_OK)
		return r;
	r = SV_ERR_CRYPTO;
	label = OPENSSL_malloc(9);
	if (label == NULL)
		goto out;
	memcpy(label, "IDENTITY", 9);
	pc = EVP_PKEY_CTX_new(key, NULL);
	if (pc == NULL || EVP_PKEY_encrypt_init(pc) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set0_rsa_oaep_label(pc, label, 9) <= 0)
		goto out;
	label = NULL; /* owned by pc */
	if (EVP_PKEY_encrypt(pc, out, out_len, seed, 32) <= 0)
		goto out;
	r = SV_OK;
out:
	OPENSSL_free(label);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(key);
	return r;
}

static int aes128_cfb(const uint8_t key[static 16], const uint8_t *in, size_t len, uint8_t *out)
{
	static const uint8_t iv[16];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n1 = 0, n2 = 0, ok;
	ok = c != NULL && EVP_EncryptInit_ex(c, EVP_aes_128_cfb128(), NULL, key, iv) == 1 &&
	     EVP_EncryptUpdate(c, out, &n1, in, (int)len) == 1 &&
	     EVP_EncryptFinal_ex(c, out + n1, &n2) == 1 && (size_t)(n1 + n2) == len;
	EVP_CIPHER_CTX_free(c);
	return ok ? SV_OK : SV_ERR_CRYPTO;
}

int client_makecred(struct sv_buf *body, const TPM2B_PUBLIC *ek,
                    const uint8_t ak_name[static ATTEST_NAME_LEN], const uint8_t *cred,
                    size_t cred_len, const uint8_t seed[static 32])
{
	uint8_t sym[16], hmac_key[32], plain[2 + CLIENT_MAKECRED_CRED_MAX];
	uint8_t enc[2 + CLIENT_MAKECRED_CRED_MAX], outer[32], secret[512];
	size_t secret_len = sizeof(secret);
	crypto_auth_hmacsha256_state st;
	int r = SV_ERR_RANGE;

	memset(&st, 0, sizeof(st));
	if (cred_len == 0 || cred_len > CLIENT_MAKECRED_CRED_MAX ||
	    ek->publicArea.nameAlg != TPM2_ALG_SHA256 ||
	    ek->publicArea.parameters.rsaDetail.symmetric.keyBits.aes != 128)
		return SV_ERR_RANGE;
	if ((r = encrypt_seed(ek, seed, secret, &secret_len)) != SV_OK)
		goto out;
	/* Part 1 §24.4: the symmetric key binds the credential to the object's name. */
	client_makecred_kdfa(seed, 32, "STORAGE", ak_name, ATTEST_NAME_LEN, NULL, 0, sym, 128);
	client_makecred_kdfa(seed, 32, "INTEGRITY", NULL, 0, NULL, 0, hmac_key, 256);
	size_t plain_len = 2 + cred_len;
	plain[0] = (uint8_t)(cred_len >> 8);
	plain[1] = (uint8_t)cred_len;
	memcpy(plain + 2, cred, cred_len);
	if ((r = aes128_cfb(sym, plain, plain_len, enc)) != SV_OK)
		goto out;
	crypto_auth_hmacsha256_init(&st, hmac_key, sizeof(hmac_key));
	crypto_auth_hmacsha256_update(&st, enc, plain_len);
	crypto_auth_hmacsha256_update(&st, ak_name, ATTEST_NAME_LEN);
	crypto_auth_hmacsha256_final(&st, outer);
	/* TPM2B_ID_OBJECT = size | TPM2B_DIGEST(outer HMAC) | encIdentity */
	size_t idobj_len = 2 + sizeof(outer) + plain_len;
	if ((r = sv_buf_put_u8(body, CLIENT_MAKECRED_BODY_VERSION)) != 0 ||
	    (r = sv_buf_put_u16(body, (uint16_t)(2 + idobj_len))) != 0 ||
	    (r = sv_buf_put_u16(body, (uint16_t)idobj_len)) != 0 ||
	    (r = sv_buf_put_str16(body, outer, sizeof(outer))) != 0 ||
	    (r = sv_buf_put(body, enc, plain_len)) != 0 ||
	    (r = sv_buf_put_u16(body, (uint16_t)(2 + secret_len))) != 0 ||
	    (r = sv_buf_put_str16(body, secret, secret_len)) != 0)
		goto out;
	r = SV_OK;
out:
	sodium_memzero(sym, sizeof(sym));
	sodium_memzero(hmac_key, sizeof(hmac_key));
	sodium_memzero(plain, sizeof(plain));
	sodium_memzero(&st, sizeof(st));
	return r;
}
