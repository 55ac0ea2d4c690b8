/* Unit tests for enclave/tpmsess.c against a fake TPM (SAPI and ESYS calls replaced through --wrap)
 * that computes the session with OpenSSL's own KDFs: SSKDF for KDFe (SP 800-56C) and KBKDF in
 * counter mode for KDFa (SP 800-108), HMAC-SHA-256 for the authorisations. The fake checks every
 * command HMAC with the current nonces and signs its answers; a forged or malformed answer must
 * be refused, a TPM error passed through unchanged. The real protocol runs against swtpm in every
 * integration test (the TPM refuses a wrong command HMAC). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <sodium.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_sys.h>

#include "common/err.h"
#include "enclave/tpmsess.h"

TSS2_RC __wrap_Esys_GetSysContext(ESYS_CONTEXT *ctx, TSS2_SYS_CONTEXT **sys);
TSS2_RC __wrap_Esys_TR_GetTpmHandle(ESYS_CONTEXT *ctx, ESYS_TR h, TPM2_HANDLE *out);
TSS2_RC __wrap_Esys_TR_GetName(ESYS_CONTEXT *ctx, ESYS_TR h, TPM2B_NAME **name);
TSS2_RC __wrap_Tss2_Sys_StartAuthSession(TSS2_SYS_CONTEXT *sys, TPMI_DH_OBJECT key,
                                         TPMI_DH_ENTITY bind, TSS2L_SYS_AUTH_COMMAND const *ca,
                                         const TPM2B_NONCE *nonce_caller,
                                         const TPM2B_ENCRYPTED_SECRET *salt, TPM2_SE type,
                                         const TPMT_SYM_DEF *sym, TPMI_ALG_HASH hash,
                                         TPMI_SH_AUTH_SESSION *handle, TPM2B_NONCE *nonce_tpm,
                                         TSS2L_SYS_AUTH_RESPONSE *ra);
TSS2_RC __wrap_Tss2_Sys_NV_Increment(TSS2_SYS_CONTEXT *sys, TPMI_RH_NV_AUTH auth,
                                     TPMI_RH_NV_INDEX nv, TSS2L_SYS_AUTH_COMMAND const *ca,
                                     TSS2L_SYS_AUTH_RESPONSE *ra);
TSS2_RC __wrap_Tss2_Sys_FlushContext(TSS2_SYS_CONTEXT *sys, TPMI_DH_CONTEXT h);

#define PRIMARY_ESYS 0x100
#define PRIMARY_TPM  0x81000001u
#define NV_ESYS      0x300
#define NV_TPM       0x01005356u
#define SESSION      0x02000000u

static int fake_ctx, fake_sys;
static EVP_PKEY *primary; /* the fake TPM's primary key */
static uint8_t session_key[32];
static TPM2B_NONCE nonce_tpm;
static const uint8_t nv_name[34] = {0x00, 0x0b, 1, 2, 3, 4, 5};
/* what the next NV_Increment answer does */
static enum {
	ANSWER_OK,
	ANSWER_BAD_HMAC,
	ANSWER_SHORT_NONCE,
	ANSWER_NO_AUTH,
	ANSWER_NV_RATE,
	ANSWER_ATTRS
} answer;
static int commands_ok, flushed;

TSS2_RC __wrap_Esys_GetSysContext(ESYS_CONTEXT *ctx, TSS2_SYS_CONTEXT **sys)
{
	assert_ptr_equal(ctx, &fake_ctx);
	*sys = (TSS2_SYS_CONTEXT *)&fake_sys;
	return TSS2_RC_SUCCESS;
}
TSS2_RC __wrap_Esys_TR_GetTpmHandle(ESYS_CONTEXT *ctx, ESYS_TR h, TPM2_HANDLE *out)
{
	assert_true(h == PRIMARY_ESYS || h == NV_ESYS);
	*out = h == PRIMARY_ESYS ? PRIMARY_TPM : NV_TPM;
	return TSS2_RC_SUCCESS;
}
TSS2_RC __wrap_Esys_TR_GetName(ESYS_CONTEXT *ctx, ESYS_TR h, TPM2B_NAME **name)
{
	assert_int_equal(h, NV_ESYS);
	*name = calloc(1, sizeof(**name));
	(*name)->size = sizeof(nv_name);
	memcpy((*name)->name, nv_name, sizeof(nv_name));
	return TSS2_RC_SUCCESS;
}

static void kdf(const char *name, OSSL_PARAM *params, uint8_t *out, size_t len)
{
	EVP_KDF *k = EVP_KDF_fetch(NULL, name, NULL);
	EVP_KDF_CTX *c = k != NULL ? EVP_KDF_CTX_new(k) : NULL;
	assert_non_null(c);
	assert_int_equal(EVP_KDF_derive(c, out, len, params), 1);
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(k);
}

static void hmac(uint8_t out[32], const uint8_t *parts[], const size_t lens[], size_t n)
{
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = EVP_MAC_CTX_new(m);
	char digest[] = "SHA256";
	OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	                  OSSL_PARAM_construct_end()};
	size_t len = 0;
	assert_int_equal(EVP_MAC_init(c, session_key, sizeof(session_key), p), 1);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(EVP_MAC_update(c, parts[i], lens[i]), 1);
	assert_int_equal(EVP_MAC_final(c, out, &len, 32), 1);
	assert_int_equal(len, 32);
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
}

static void sha256(uint8_t out[32], const uint8_t *a, size_t na, const uint8_t *b, size_t nb,
                   const uint8_t *c, size_t nc)
{
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestInit_ex(x, EVP_sha256(), NULL), 1);
	EVP_DigestUpdate(x, a, na);
	EVP_DigestUpdate(x, b, nb);
	EVP_DigestUpdate(x, c, nc);
	assert_int_equal(EVP_DigestFinal_ex(x, out, NULL), 1);
	EVP_MD_CTX_free(x);
}

TSS2_RC __wrap_Tss2_Sys_StartAuthSession(TSS2_SYS_CONTEXT *sys, TPMI_DH_OBJECT key,
                                         TPMI_DH_ENTITY bind, TSS2L_SYS_AUTH_COMMAND const *ca,
                                         const TPM2B_NONCE *nonce_caller,
                                         const TPM2B_ENCRYPTED_SECRET *salt, TPM2_SE type,
                                         const TPMT_SYM_DEF *sym, TPMI_ALG_HASH hash,
                                         TPMI_SH_AUTH_SESSION *handle, TPM2B_NONCE *nonce_out,
                                         TSS2L_SYS_AUTH_RESPONSE *ra)
{
	/* salted to the primary, unbound, HMAC, SHA-256 */
	assert_int_equal(key, PRIMARY_TPM);
	assert_int_equal(bind, TPM2_RH_NULL);
	assert_int_equal(type, TPM2_SE_HMAC);
	assert_int_equal(hash, TPM2_ALG_SHA256);
	assert_int_equal(sym->algorithm, TPM2_ALG_NULL);
	assert_true(nonce_caller->size >= 16);
	/* the TPM's side of the salt: ECDH with the primary's private key, then KDFe */
	TPMS_ECC_POINT eph = {0};
	size_t off = 0;
	assert_int_equal(Tss2_MU_TPMS_ECC_POINT_Unmarshal(salt->secret, salt->size, &off, &eph),
	                 TSS2_RC_SUCCESS);
	assert_int_equal(off, salt->size);
	uint8_t pt[65] = {4}, z[32], xy[65], info[7 + 64], seed[32];
	size_t zlen = sizeof(z), n = 0;
	memcpy(pt + 1, eph.x.buffer, 32);
	memcpy(pt + 33, eph.y.buffer, 32);
	char group[] = "P-256";
	OSSL_PARAM pp[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
	                   OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, 65),
	                   OSSL_PARAM_construct_end()};
	EVP_PKEY_CTX *fc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *peer = NULL;
	assert_int_equal(EVP_PKEY_fromdata_init(fc), 1);
	assert_int_equal(EVP_PKEY_fromdata(fc, &peer, EVP_PKEY_PUBLIC_KEY, pp), 1);
	EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new_from_pkey(NULL, primary, NULL);
	assert_int_equal(EVP_PKEY_derive_init(dc), 1);
	assert_int_equal(EVP_PKEY_derive_set_peer(dc, peer), 1);
	assert_int_equal(EVP_PKEY_derive(dc, z, &zlen), 1);
	assert_int_equal(EVP_PKEY_get_octet_string_param(
	                     primary, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, xy, sizeof(xy), &n),
	                 1);
	memcpy(info, "SECRET", 7); /* with the zero */
	memcpy(info + 7, eph.x.buffer, 32);
	memcpy(info + 39, xy + 1, 32);
	char sha[] = "SHA256";
	OSSL_PARAM ks[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, sha, 0),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z, 32),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info)),
	    OSSL_PARAM_construct_end()};
	kdf("SSKDF", ks, seed, sizeof(seed));
	/* sessionKey = KDFa(SHA-256, salt, "ATH", nonceTPM, nonceCaller, 256) */
	nonce_tpm.size = 32;
	randombytes_buf(nonce_tpm.buffer, 32);
	uint8_t ctx[64];
	memcpy(ctx, nonce_tpm.buffer, 32);
	memcpy(ctx + 32, nonce_caller->buffer, nonce_caller->size);
	char mac[] = "HMAC", mode[] = "COUNTER", label[] = "ATH";
	OSSL_PARAM kb[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, mac, 0),
	    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, sha, 0),
	    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, mode, 0),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, seed, 32),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, label, 3),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, ctx, 32 + nonce_caller->size),
	    OSSL_PARAM_construct_end()};
	kdf("KBKDF", kb, session_key, sizeof(session_key));
	EVP_PKEY_CTX_free(fc);
	EVP_PKEY_CTX_free(dc);
	EVP_PKEY_free(peer);
	*handle = SESSION;
	*nonce_out = nonce_tpm;
	return TSS2_RC_SUCCESS;
}

TSS2_RC __wrap_Tss2_Sys_NV_Increment(TSS2_SYS_CONTEXT *sys, TPMI_RH_NV_AUTH auth,
                                     TPMI_RH_NV_INDEX nv, TSS2L_SYS_AUTH_COMMAND const *ca,
                                     TSS2L_SYS_AUTH_RESPONSE *ra)
{
	static const uint8_t cc[4] = {0x00, 0x00, 0x01, 0x34}; /* TPM2_CC_NV_Increment */
	static const uint8_t rc0[4] = {0};
	assert_int_equal(auth, NV_TPM);
	assert_int_equal(nv, NV_TPM);
	assert_int_equal(ca->count, 1);
	const TPMS_AUTH_COMMAND *a = &ca->auths[0];
	assert_int_equal(a->sessionHandle, SESSION);
	assert_int_equal(a->sessionAttributes, TPMA_SESSION_CONTINUESESSION);
	/* the command HMAC, with the nonce of the last answer */
	uint8_t cp[32], want[32], attrs = a->sessionAttributes;
	sha256(cp, cc, 4, nv_name, sizeof(nv_name), nv_name, sizeof(nv_name));
	const uint8_t *parts[] = {cp, a->nonce.buffer, nonce_tpm.buffer, &attrs};
	size_t lens[] = {32, a->nonce.size, nonce_tpm.size, 1};
	hmac(want, parts, lens, 4);
	assert_int_equal(a->hmac.size, 32);
	assert_memory_equal(a->hmac.buffer, want, 32);
	commands_ok++;
	if (answer == ANSWER_NV_RATE)
		return TPM2_RC_NV_RATE; /* no session area, the nonces stay */
	nonce_tpm.size = 32;
	randombytes_buf(nonce_tpm.buffer, 32);
	uint8_t rp[32];
	sha256(rp, rc0, 4, cc, 4, NULL, 0);
	TPMS_AUTH_RESPONSE *r = &ra->auths[0];
	ra->count = answer == ANSWER_NO_AUTH ? 0 : 1;
	r->nonce = nonce_tpm;
	r->sessionAttributes = answer == ANSWER_ATTRS ? 0 : TPMA_SESSION_CONTINUESESSION;
	const uint8_t *rparts[] = {rp, nonce_tpm.buffer, a->nonce.buffer, &attrs};
	size_t rlens[] = {32, 32, a->nonce.size, 1};
	hmac(r->hmac.buffer, rparts, rlens, 4);
	r->hmac.size = 32;
	if (answer == ANSWER_BAD_HMAC)
		r->hmac.buffer[7] ^= 0x01;
	if (answer == ANSWER_SHORT_NONCE)
		r->nonce.size = 16;
	return TSS2_RC_SUCCESS;
}

TSS2_RC __wrap_Tss2_Sys_FlushContext(TSS2_SYS_CONTEXT *sys, TPMI_DH_CONTEXT h)
{
	assert_int_equal(h, SESSION);
	flushed++;
	return TSS2_RC_SUCCESS;
}

static void primary_point(TPMS_ECC_POINT *p)
{
	uint8_t xy[65];
	size_t n = 0;
	assert_int_equal(EVP_PKEY_get_octet_string_param(
	                     primary, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, xy, sizeof(xy), &n),
	                 1);
	assert_int_equal(n, 65);
	p->x.size = p->y.size = 32;
	memcpy(p->x.buffer, xy + 1, 32);
	memcpy(p->y.buffer, xy + 33, 32);
}

static struct tpmsess *start(void)
{
	TPMS_ECC_POINT pub;
	struct tpmsess *s = NULL;
	primary_point(&pub);
	assert_int_equal(tpmsess_start(&s, (ESYS_CONTEXT *)&fake_ctx, PRIMARY_ESYS, &pub), SV_OK);
	assert_non_null(s);
	answer = ANSWER_OK;
	commands_ok = flushed = 0;
	return s;
}

static void test_increments_roll_the_nonces(void **state)
{
	struct tpmsess *s = start();
	for (int i = 0; i < 3; i++)
		assert_int_equal(tpmsess_nv_increment(s, (ESYS_CONTEXT *)&fake_ctx, NV_ESYS),
		                 TSS2_RC_SUCCESS);
	assert_int_equal(commands_ok, 3);
	/* a TPM error passes through; the nonces stay, so the next command still verifies */
	answer = ANSWER_NV_RATE;
	assert_int_equal(tpmsess_nv_increment(s, (ESYS_CONTEXT *)&fake_ctx, NV_ESYS),
	                 TPM2_RC_NV_RATE);
	answer = ANSWER_OK;
	assert_int_equal(tpmsess_nv_increment(s, (ESYS_CONTEXT *)&fake_ctx, NV_ESYS),
	                 TSS2_RC_SUCCESS);
	assert_int_equal(commands_ok, 5);
	tpmsess_close(s, (ESYS_CONTEXT *)&fake_ctx);
	assert_int_equal(flushed, 1);
}

static void test_forged_answers_refused(void **state)
{
	const int bad[] = {ANSWER_BAD_HMAC, ANSWER_SHORT_NONCE, ANSWER_NO_AUTH, ANSWER_ATTRS};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tpmsess *s = start();
		assert_int_equal(tpmsess_nv_increment(s, (ESYS_CONTEXT *)&fake_ctx, NV_ESYS),
		                 TSS2_RC_SUCCESS);
		answer = bad[i];
		assert_int_equal(tpmsess_nv_increment(s, (ESYS_CONTEXT *)&fake_ctx, NV_ESYS),
		                 TSS2_ESYS_RC_RSP_AUTH_FAILED);
		tpmsess_close(s, (ESYS_CONTEXT *)&fake_ctx);
	}
}

static void test_bad_primary_point(void **state)
{
	TPMS_ECC_POINT pub;
	struct tpmsess *s = NULL;
	primary_point(&pub);
	pub.y.buffer[31] ^= 1; /* no longer on the curve */
	assert_int_not_equal(tpmsess_start(&s, (ESYS_CONTEXT *)&fake_ctx, PRIMARY_ESYS, &pub),
	                     SV_OK);
	assert_null(s);
	pub.x.size = 31;
	assert_int_not_equal(tpmsess_start(&s, (ESYS_CONTEXT *)&fake_ctx, PRIMARY_ESYS, &pub),
	                     SV_OK);
	assert_null(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_increments_roll_the_nonces),
	    cmocka_unit_test(test_forged_answers_refused),
	    cmocka_unit_test(test_bad_primary_point),
	};
	if (sodium_init() < 0 || (primary = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL)
		return 1;
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	EVP_PKEY_free(primary);
	return r;
}
