/* The NV counter's own salted HMAC session (see tpmsess.h; TPM 2.0 Part 1 §11.4.10, §19.6). */
#include "enclave/tpmsess.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_sys.h>

#include "common/err.h"

#define H_LEN    32 /* SHA-256: the session's hash and the primary key's name algorithm */
#define P256_LEN 32

struct tpmsess {
	TPMI_SH_AUTH_SESSION handle;
	uint8_t key[H_LEN]; /* sessionKey; the counter's auth value is empty */
	TPM2B_NONCE nonce_tpm;
};

static void put32(uint8_t o[4], uint32_t v)
{
	o[0] = (uint8_t)(v >> 24);
	o[1] = (uint8_t)(v >> 16);
	o[2] = (uint8_t)(v >> 8);
	o[3] = (uint8_t)v;
}

/* z = x-coordinate of ECDH(fresh P-256 key, peer); eph = the fresh public point. */
static int ecdh_p256(const TPMS_ECC_POINT *peer, uint8_t z[P256_LEN], TPMS_ECC_POINT *eph)
{
	EVP_PKEY *mine = NULL, *theirs = NULL;
	EVP_PKEY_CTX *fc = NULL, *dc = NULL;
	uint8_t pt[1 + 2 * P256_LEN];
	size_t len = 0, zlen = P256_LEN;
	char group[] = "P-256";
	int r = SV_ERR_CRYPTO;

	if (peer->x.size != P256_LEN || peer->y.size != P256_LEN)
		return SV_ERR_TPM;
	pt[0] = 4; /* uncompressed */
	memcpy(pt + 1, peer->x.buffer, P256_LEN);
	memcpy(pt + 1 + P256_LEN, peer->y.buffer, P256_LEN);
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
	    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)),
	    OSSL_PARAM_construct_end(),
	};
	if ((fc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(fc) != 1 ||
	    EVP_PKEY_fromdata(fc, &theirs, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	if ((mine = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group)) == NULL ||
	    EVP_PKEY_get_octet_string_param(mine, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
	                                    sizeof(pt), &len) != 1 ||
	    len != sizeof(pt) || pt[0] != 4)
		goto out;
	/* derive_set_peer checks that the peer point is on the curve */
	if ((dc = EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL)) == NULL ||
	    EVP_PKEY_derive_init(dc) != 1 || EVP_PKEY_derive_set_peer(dc, theirs) != 1 ||
	    EVP_PKEY_derive(dc, z, &zlen) != 1 || zlen != P256_LEN)
		goto out;
	eph->x.size = eph->y.size = P256_LEN;
	memcpy(eph->x.buffer, pt + 1, P256_LEN);
	memcpy(eph->y.buffer, pt + 1 + P256_LEN, P256_LEN);
	r = SV_OK;
out:
	EVP_PKEY_CTX_free(dc);
	EVP_PKEY_CTX_free(fc);
	EVP_PKEY_free(mine);
	EVP_PKEY_free(theirs);
	return r;
}

/* KDFe(SHA-256, Z, "SECRET", PartyUInfo, PartyVInfo, 256): one block. */
static void kdfe_secret(uint8_t out[H_LEN], const uint8_t z[P256_LEN], const TPM2B_ECC_PARAMETER *u,
                        const TPM2B_ECC_PARAMETER *v)
{
	static const uint8_t use[] = "SECRET"; /* with its terminating zero */
	crypto_hash_sha256_state st;
	uint8_t ctr[4];

	put32(ctr, 1);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, ctr, sizeof(ctr));
	crypto_hash_sha256_update(&st, z, P256_LEN);
	crypto_hash_sha256_update(&st, use, sizeof(use));
	crypto_hash_sha256_update(&st, u->buffer, u->size);
	crypto_hash_sha256_update(&st, v->buffer, v->size);
	crypto_hash_sha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

/* KDFa(SHA-256, key, "ATH", contextU, contextV, 256): one block. */
static void kdfa_ath(uint8_t out[H_LEN], const uint8_t key[H_LEN], const TPM2B_NONCE *u,
                     const TPM2B_NONCE *v)
{
	static const uint8_t label[] = "ATH"; /* with its terminating zero */
	crypto_auth_hmacsha256_state st;
	uint8_t ctr[4], bits[4];

	put32(ctr, 1);
	put32(bits, 8 * H_LEN);
	crypto_auth_hmacsha256_init(&st, key, H_LEN);
	crypto_auth_hmacsha256_update(&st, ctr, sizeof(ctr));
	crypto_auth_hmacsha256_update(&st, label, sizeof(label));
	crypto_auth_hmacsha256_update(&st, u->buffer, u->size);
	crypto_auth_hmacsha256_update(&st, v->buffer, v->size);
	crypto_auth_hmacsha256_update(&st, bits, sizeof(bits));
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

int tpmsess_start(struct tpmsess **out, ESYS_CONTEXT *ctx, ESYS_TR primary,
                  const TPMS_ECC_POINT *pub)
{
	TSS2_SYS_CONTEXT *sys = NULL;
	TPM2_HANDLE key_handle;
	TPMS_ECC_POINT eph = {0};
	TPM2B_ENCRYPTED_SECRET salt_enc = {0};
	TPM2B_NONCE nonce_caller = {.size = H_LEN};
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
	uint8_t z[P256_LEN], salt[H_LEN];
	size_t off = 0;
	struct tpmsess *s;
	int r;

	*out = NULL;
	if ((s = sodium_malloc(sizeof(*s))) == NULL)
		return SV_ERR_NOMEM;
	memset(s, 0, sizeof(*s));
	r = SV_ERR_TPM;
	if (Esys_GetSysContext(ctx, &sys) != TSS2_RC_SUCCESS || sys == NULL ||
	    Esys_TR_GetTpmHandle(ctx, primary, &key_handle) != TSS2_RC_SUCCESS)
		goto out;
	if ((r = ecdh_p256(pub, z, &eph)) != SV_OK)
		goto out;
	kdfe_secret(salt, z, &eph.x, &pub->x);
	r = SV_ERR_TPM;
	if (Tss2_MU_TPMS_ECC_POINT_Marshal(&eph, salt_enc.secret, sizeof(salt_enc.secret), &off) !=
	    TSS2_RC_SUCCESS)
		goto out;
	salt_enc.size = (UINT16)off;
	randombytes_buf(nonce_caller.buffer, nonce_caller.size);
	if (Tss2_Sys_StartAuthSession(sys, key_handle, TPM2_RH_NULL, NULL, &nonce_caller, &salt_enc,
	                              TPM2_SE_HMAC, &sym, TPM2_ALG_SHA256, &s->handle,
	                              &s->nonce_tpm, NULL) != TSS2_RC_SUCCESS ||
	    s->nonce_tpm.size != H_LEN)
		goto out;
	/* sessionKey = KDFa(authHash, bind.authValue | salt, "ATH", nonceTPM, nonceCaller); no
	 * bind */
	kdfa_ath(s->key, salt, &s->nonce_tpm, &nonce_caller);
	*out = s;
	s = NULL;
	r = SV_OK;
out:
	sodium_memzero(z, sizeof(z));
	sodium_memzero(salt, sizeof(salt));
	if (s != NULL) {
		if (s->handle != 0)
			(void)Tss2_Sys_FlushContext(sys, s->handle);
		sodium_free(s);
	}
	return r;
}

/* HMAC(sessionKey, pHash | newer | older | attributes) */
static void session_hmac(uint8_t out[H_LEN], const struct tpmsess *s, const uint8_t p_hash[H_LEN],
                         const TPM2B_NONCE *newer, const TPM2B_NONCE *older, TPMA_SESSION attrs)
{
	crypto_auth_hmacsha256_state st;
	uint8_t a = attrs;

	crypto_auth_hmacsha256_init(&st, s->key, H_LEN);
	crypto_auth_hmacsha256_update(&st, p_hash, H_LEN);
	crypto_auth_hmacsha256_update(&st, newer->buffer, newer->size);
	crypto_auth_hmacsha256_update(&st, older->buffer, older->size);
	crypto_auth_hmacsha256_update(&st, &a, 1);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

TSS2_RC tpmsess_nv_increment(struct tpmsess *s, ESYS_CONTEXT *ctx, ESYS_TR nv)
{
	static const TPMA_SESSION attrs = TPMA_SESSION_CONTINUESESSION;
	TSS2_SYS_CONTEXT *sys = NULL;
	TPM2_HANDLE h;
	TPM2B_NAME *name = NULL;
	TSS2L_SYS_AUTH_COMMAND cmd = {.count = 1};
	TSS2L_SYS_AUTH_RESPONSE rsp = {0};
	crypto_hash_sha256_state st;
	uint8_t cc[4], rc0[4] = {0}, cp_hash[H_LEN], rp_hash[H_LEN], want[H_LEN];
	TSS2_RC rc;

	if ((rc = Esys_GetSysContext(ctx, &sys)) != TSS2_RC_SUCCESS ||
	    (rc = Esys_TR_GetTpmHandle(ctx, nv, &h)) != TSS2_RC_SUCCESS ||
	    (rc = Esys_TR_GetName(ctx, nv, &name)) != TSS2_RC_SUCCESS)
		goto out;
	put32(cc, TPM2_CC_NV_Increment);
	/* cpHash = H(commandCode | name(authHandle) | name(nvIndex)); no parameters */
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, cc, sizeof(cc));
	crypto_hash_sha256_update(&st, name->name, name->size);
	crypto_hash_sha256_update(&st, name->name, name->size);
	crypto_hash_sha256_final(&st, cp_hash);
	cmd.auths[0].sessionHandle = s->handle;
	cmd.auths[0].sessionAttributes = attrs;
	cmd.auths[0].nonce.size = H_LEN;
	randombytes_buf(cmd.auths[0].nonce.buffer, H_LEN);
	cmd.auths[0].hmac.size = H_LEN;
	session_hmac(cmd.auths[0].hmac.buffer, s, cp_hash, &cmd.auths[0].nonce, &s->nonce_tpm,
	             attrs);
	rc = Tss2_Sys_NV_Increment(sys, h, h, &cmd, &rsp);
	if (rc != TSS2_RC_SUCCESS)
		goto out; /* an error answer carries no session area; the nonces stay */
	/* rpHash = H(responseCode | commandCode); no response parameters */
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, rc0, sizeof(rc0));
	crypto_hash_sha256_update(&st, cc, sizeof(cc));
	crypto_hash_sha256_final(&st, rp_hash);
	rc = TSS2_ESYS_RC_RSP_AUTH_FAILED;
	if (rsp.count != 1 || rsp.auths[0].nonce.size != H_LEN || rsp.auths[0].hmac.size != H_LEN ||
	    rsp.auths[0].sessionAttributes != attrs)
		goto out;
	session_hmac(want, s, rp_hash, &rsp.auths[0].nonce, &cmd.auths[0].nonce, attrs);
	if (sodium_memcmp(want, rsp.auths[0].hmac.buffer, H_LEN) != 0)
		goto out;
	s->nonce_tpm = rsp.auths[0].nonce;
	rc = TSS2_RC_SUCCESS;
out:
	Esys_Free(name);
	sodium_memzero(want, sizeof(want));
	sodium_memzero(&cmd, sizeof(cmd));
	return rc;
}

void tpmsess_close(struct tpmsess *s, ESYS_CONTEXT *ctx)
{
	TSS2_SYS_CONTEXT *sys = NULL;

	if (s == NULL)
		return;
	if (ctx != NULL && Esys_GetSysContext(ctx, &sys) == TSS2_RC_SUCCESS && sys != NULL)
		(void)Tss2_Sys_FlushContext(sys, s->handle);
	sodium_free(s); /* sodium_free wipes */
}
