/*
 * client/makecred.c and client/tpmobj.c: a software MakeCredential is undone here with the RSA
 * private key, as TPM2_ActivateCredential does it (Part 1 §24): OAEP with label "IDENTITY",
 * KDFa "INTEGRITY" for the outer HMAC over encIdentity || name, KDFa "STORAGE" bound to the name
 * for AES-128-CFB. The EK template check accepts the L-1 template and refuses each deviation.
 * (That a real TPM activates it is tests/integration/attest.sh's ak-binding step.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "client/makecred.h"
#include "client/tpmobj.h"
#include "common/buf.h"
#include "common/err.h"

static EVP_PKEY *rsa;
static TPM2B_PUBLIC ek;

static const uint8_t policy_l1[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};

static int setup(void **state)
{
	BIGNUM *n = NULL;
	rsa = EVP_RSA_gen(2048);
	assert_non_null(rsa);
	assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	memset(&ek, 0, sizeof(ek));
	TPMT_PUBLIC *t = &ek.publicArea;
	t->type = TPM2_ALG_RSA;
	t->nameAlg = TPM2_ALG_SHA256;
	t->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
	                      TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	t->authPolicy.size = 32;
	memcpy(t->authPolicy.buffer, policy_l1, 32);
	t->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
	t->parameters.rsaDetail.symmetric.keyBits.aes = 128;
	t->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	t->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	t->parameters.rsaDetail.keyBits = 2048;
	t->unique.rsa.size = 256;
	assert_int_equal(BN_bn2binpad(n, t->unique.rsa.buffer, 256), 256);
	BN_free(n);
	return 0;
}

static int teardown(void **state)
{
	EVP_PKEY_free(rsa);
	return 0;
}

/* ActivateCredential in software; returns the credential length or -1. */
static int activate(const uint8_t *body, size_t len, const uint8_t name[34], uint8_t cred[64])
{
	struct sv_buf b;
	uint16_t l1, l2, idlen, hlen, slen;
	const uint8_t *hmac, *secret;
	uint8_t v, seed[512], sym[16], hk[32], mac[32], plain[64];
	size_t seed_len = sizeof(seed);
	sv_buf_from(&b, body, len);
	if (sv_buf_get_u8(&b, &v) || v != 1 || sv_buf_get_u16(&b, &l1) ||
	    sv_buf_get_u16(&b, &idlen) || l1 != idlen + 2 || sv_buf_get_u16(&b, &hlen) ||
	    hlen != 32 || sv_buf_get_ref(&b, 32, &hmac))
		return -1;
	size_t enc_len = (size_t)idlen - 34;
	const uint8_t *enc;
	if (enc_len > sizeof(plain) || sv_buf_get_ref(&b, enc_len, &enc) ||
	    sv_buf_get_u16(&b, &l2) || sv_buf_get_u16(&b, &slen) || l2 != slen + 2 ||
	    sv_buf_get_ref(&b, slen, &secret) || sv_buf_expect_end(&b))
		return -1;
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(rsa, NULL);
	unsigned char *label = OPENSSL_malloc(9);
	memcpy(label, "IDENTITY", 9);
	if (EVP_PKEY_decrypt_init(pc) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set0_rsa_oaep_label(pc, label, 9) <= 0 ||
	    EVP_PKEY_decrypt(pc, seed, &seed_len, secret, slen) <= 0 || seed_len != 32) {
		EVP_PKEY_CTX_free(pc);
		return -1;
	}
	EVP_PKEY_CTX_free(pc);
	client_makecred_kdfa(seed, 32, "INTEGRITY", NULL, 0, NULL, 0, hk, 256);
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, hk, 32);
	crypto_auth_hmacsha256_update(&st, enc, enc_len);
	crypto_auth_hmacsha256_update(&st, name, 34);
	crypto_auth_hmacsha256_final(&st, mac);
	if (memcmp(mac, hmac, 32) != 0)
		return -1;
	client_makecred_kdfa(seed, 32, "STORAGE", name, 34, NULL, 0, sym, 128);
	static const uint8_t iv[16];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n1 = 0, n2 = 0;
	assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_128_cfb128(), NULL, sym, iv), 1);
	assert_int_equal(EVP_DecryptUpdate(c, plain, &n1, enc, (int)enc_len), 1);
	assert_int_equal(EVP_DecryptFinal_ex(c, plain + n1, &n2), 1);
	EVP_CIPHER_CTX_free(c);
	size_t clen = (size_t)plain[0] << 8 | plain[1];
	if (clen + 2 != enc_len)
		return -1;
	memcpy(cred, plain + 2, clen);
	return (int)clen;
}

static void test_round_trip(void **state)
{
	uint8_t name[34], other[34], cred[32], seed[32], got[64];
	struct sv_buf body;
	name[0] = 0x00, name[1] = 0x0b;
	randombytes_buf(name + 2, 32);
	memcpy(other, name, 34);
	other[33] ^= 1;
	randombytes_buf(cred, sizeof(cred));
	randombytes_buf(seed, sizeof(seed));
	assert_int_equal(sv_buf_init(&body, 1024), 0);
	assert_int_equal(client_makecred(&body, &ek, name, cred, sizeof(cred), seed), SV_OK);
	/* 1 + 2 + (2 + 2 + 32 + 34) + 2 + (2 + 256) */
	assert_int_equal(body.len, 1 + 2 + 70 + 2 + 258);
	assert_int_equal(activate(body.data, body.len, name, got), 32);
	assert_memory_equal(got, cred, 32);
	/* bound to the object's name: another name fails the outer HMAC */
	assert_int_equal(activate(body.data, body.len, other, got), -1);
	/* a fresh seed each time: two bodies differ */
	struct sv_buf again;
	assert_int_equal(sv_buf_init(&again, 1024), 0);
	randombytes_buf(seed, sizeof(seed));
	assert_int_equal(client_makecred(&again, &ek, name, cred, sizeof(cred), seed), SV_OK);
	assert_memory_not_equal(again.data, body.data, 40);
	/* credential bounds */
	sv_buf_reset(&again);
	assert_int_equal(client_makecred(&again, &ek, name, cred, 0, seed), SV_ERR_RANGE);
	assert_int_equal(client_makecred(&again, &ek, name, got, 33, seed), SV_ERR_RANGE);
	sv_buf_free(&again);
	sv_buf_free(&body);
}

/* KDFa output for a fixed input, from the Part 1 §11.4.10.2 definition computed here:
 * HMAC-SHA256(key, 00000001 || "STORAGE" 00 || context || 00000080). */
static void test_kdfa_definition(void **state)
{
	uint8_t key[32], ctx[34], out[16], want[32], msg[4 + 8 + 34 + 4];
	memset(key, 7, sizeof(key));
	memset(ctx, 9, sizeof(ctx));
	size_t o = 0;
	memcpy(msg + o, "\x00\x00\x00\x01", 4), o += 4;
	memcpy(msg + o, "STORAGE", 8), o += 8;
	memcpy(msg + o, ctx, 34), o += 34;
	memcpy(msg + o, "\x00\x00\x00\x80", 4), o += 4;
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, key, 32);
	crypto_auth_hmacsha256_update(&st, msg, o);
	crypto_auth_hmacsha256_final(&st, want);
	client_makecred_kdfa(key, 32, "STORAGE", ctx, 34, NULL, 0, out, 128);
	assert_memory_equal(out, want, 16);
}

static void test_ek_template(void **state)
{
	char why[256];
	assert_int_equal(client_tpmobj_ek_template(&ek, why, sizeof(why)), SV_OK);
	TPM2B_PUBLIC bad = ek;
	bad.publicArea.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
	assert_int_equal(client_tpmobj_ek_template(&bad, why, sizeof(why)), SV_ERR_INVALID);
	assert_non_null(strstr(why, "attributes"));
	bad = ek;
	bad.publicArea.authPolicy.buffer[0] ^= 1;
	assert_int_equal(client_tpmobj_ek_template(&bad, why, sizeof(why)), SV_ERR_INVALID);
	assert_non_null(strstr(why, "PolicySecret"));
	bad = ek;
	bad.publicArea.parameters.rsaDetail.exponent = 3;
	assert_int_equal(client_tpmobj_ek_template(&bad, why, sizeof(why)), SV_ERR_INVALID);
	bad = ek;
	bad.publicArea.type = TPM2_ALG_ECC;
	assert_int_equal(client_tpmobj_ek_template(&bad, why, sizeof(why)), SV_ERR_INVALID);
	assert_non_null(strstr(why, "only RSA"));
	bad = ek;
	bad.publicArea.unique.rsa.size = 128;
	assert_int_equal(client_tpmobj_ek_template(&bad, why, sizeof(why)), SV_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_kdfa_definition),
	    cmocka_unit_test(test_ek_template),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
