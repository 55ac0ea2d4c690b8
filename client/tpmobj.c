#include "client/tpmobj.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_mu.h>

#include "common/err.h"

/* TCG EK Credential Profile 2.3, template L-1: PolicySecret(TPM_RH_ENDORSEMENT). */
static const uint8_t ek_policy_l1[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};
#define EK_ATTRS                                                                                   \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |        \
	 TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)

int client_tpmobj_public(TPM2B_PUBLIC *pub, uint8_t name[static ATTEST_NAME_LEN], const uint8_t *p,
                         size_t len)
{
	size_t off = 0;
	memset(pub, 0, sizeof(*pub));
	if (p == NULL || len < 2 || Tss2_MU_TPM2B_PUBLIC_Unmarshal(p, len, &off, pub) != 0 ||
	    off != len)
		return SV_ERR_INVALID;
	return attest_name_from_public(p, len, name);
}

int client_tpmobj_attest(TPMS_ATTEST *at, const uint8_t *p, size_t len)
{
	size_t off = 0;
	memset(at, 0, sizeof(*at));
	if (p == NULL || len == 0 || Tss2_MU_TPMS_ATTEST_Unmarshal(p, len, &off, at) != 0 ||
	    off != len)
		return SV_ERR_INVALID;
	return SV_OK;
}

int client_tpmobj_ek_template(const TPM2B_PUBLIC *pub, char *why, size_t why_len)
{
	const TPMT_PUBLIC *t = &pub->publicArea;
	const char *bad = NULL;
	if (t->type != TPM2_ALG_RSA)
		bad = "it is not an RSA key (only RSA EKs are supported)";
	else if (t->nameAlg != TPM2_ALG_SHA256)
		bad = "its name algorithm is not SHA-256";
	else if (t->objectAttributes != EK_ATTRS)
		bad = "its attributes differ from the template's";
	else if (t->authPolicy.size != sizeof(ek_policy_l1) ||
	         memcmp(t->authPolicy.buffer, ek_policy_l1, sizeof(ek_policy_l1)) != 0)
		bad = "its policy is not PolicySecret(endorsement)";
	else if (t->parameters.rsaDetail.symmetric.algorithm != TPM2_ALG_AES ||
	         t->parameters.rsaDetail.symmetric.keyBits.aes != 128 ||
	         t->parameters.rsaDetail.symmetric.mode.aes != TPM2_ALG_CFB)
		bad = "its symmetric algorithm is not AES-128-CFB";
	else if (t->parameters.rsaDetail.scheme.scheme != TPM2_ALG_NULL)
		bad = "it has a scheme";
	else if (t->parameters.rsaDetail.keyBits != 2048 || t->unique.rsa.size != 256)
		bad = "it is not a 2048-bit key";
	else if (t->parameters.rsaDetail.exponent != 0)
		bad = "its exponent is not the default (65537)";
	if (bad == NULL)
		return SV_OK;
	snprintf(why, why_len, "ek_public is not the TCG template L-1 EK: %s", bad);
	return SV_ERR_INVALID;
}

int client_tpmobj_ecc_key(EVP_PKEY **out, const TPM2B_PUBLIC *pub)
{
	const TPMT_PUBLIC *t = &pub->publicArea;
	uint8_t point[65];
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pc = NULL;
	int r = SV_ERR_INVALID;

	*out = NULL;
	if (t->type != TPM2_ALG_ECC || t->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 ||
	    t->unique.ecc.x.size != 32 || t->unique.ecc.y.size != 32)
		return SV_ERR_INVALID;
	point[0] = 0x04;
	memcpy(point + 1, t->unique.ecc.x.buffer, 32);
	memcpy(point + 33, t->unique.ecc.y.buffer, 32);
	bld = OSSL_PARAM_BLD_new();
	if (bld == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
		r = SV_ERR_NOMEM;
		goto out;
	}
	pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (pc == NULL || EVP_PKEY_fromdata_init(pc) <= 0 ||
	    EVP_PKEY_fromdata(pc, out, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out; /* not a point on the curve */
	r = SV_OK;
out:
	EVP_PKEY_CTX_free(pc);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

int client_tpmobj_rsa_key(EVP_PKEY **out, const TPM2B_PUBLIC *pub)
{
	const TPMT_PUBLIC *t = &pub->publicArea;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pc = NULL;
	BIGNUM *n = NULL, *e = NULL;
	int r = SV_ERR_NOMEM;

	*out = NULL;
	if (t->type != TPM2_ALG_RSA || t->unique.rsa.size == 0)
		return SV_ERR_INVALID;
	uint32_t exp = t->parameters.rsaDetail.exponent ? t->parameters.rsaDetail.exponent : 65537;
	n = BN_bin2bn(t->unique.rsa.buffer, t->unique.rsa.size, NULL);
	e = BN_new();
	bld = OSSL_PARAM_BLD_new();
	if (n == NULL || e == NULL || bld == NULL || !BN_set_word(e, exp) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	r = SV_ERR_INVALID;
	pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (pc == NULL || EVP_PKEY_fromdata_init(pc) <= 0 ||
	    EVP_PKEY_fromdata(pc, out, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	r = SV_OK;
out:
	EVP_PKEY_CTX_free(pc);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return r;
}

int client_tpmobj_verify(EVP_PKEY *key, const uint8_t digest[static 32], const uint8_t *sig,
                         size_t sig_len)
{
	TPMT_SIGNATURE s;
	size_t off = 0;
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	EVP_PKEY_CTX *vc = NULL;
	uint8_t *der = NULL;
	int r = SV_ERR_INVALID;

	memset(&s, 0, sizeof(s));
	if (sig == NULL || sig_len == 0 ||
	    Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, sig_len, &off, &s) != 0 || off != sig_len ||
	    s.sigAlg != TPM2_ALG_ECDSA || s.signature.ecdsa.hash != TPM2_ALG_SHA256 ||
	    s.signature.ecdsa.signatureR.size == 0 || s.signature.ecdsa.signatureS.size == 0)
		return SV_ERR_INVALID;
	es = ECDSA_SIG_new();
	br =
	    BN_bin2bn(s.signature.ecdsa.signatureR.buffer, s.signature.ecdsa.signatureR.size, NULL);
	bs =
	    BN_bin2bn(s.signature.ecdsa.signatureS.buffer, s.signature.ecdsa.signatureS.size, NULL);
	if (es == NULL || br == NULL || bs == NULL || !ECDSA_SIG_set0(es, br, bs)) {
		r = SV_ERR_NOMEM;
		goto out;
	}
	br = bs = NULL; /* owned by es now */
	int der_len = i2d_ECDSA_SIG(es, &der);
	if (der_len <= 0) {
		r = SV_ERR_NOMEM;
		goto out;
	}
	vc = EVP_PKEY_CTX_new(key, NULL);
	if (vc == NULL || EVP_PKEY_verify_init(vc) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(vc, EVP_sha256()) <= 0) {
		r = SV_ERR_INTERNAL;
		goto out;
	}
	r = EVP_PKEY_verify(vc, der, (size_t)der_len, digest, 32) == 1 ? SV_OK : SV_ERR_AUTH;
out:
	EVP_PKEY_CTX_free(vc);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	BN_free(br);
	BN_free(bs);
	return r;
}

/* Adds every certificate of one PEM text: self-signed ones to store, the others to chain. */
static int add_pem(X509_STORE *store, STACK_OF(X509) * chain, const char *pem, size_t *n)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x;
	if (bio == NULL)
		return SV_ERR_NOMEM;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		int self = X509_check_issued(x, x) == X509_V_OK;
		int ok = self ? X509_STORE_add_cert(store, x) : sk_X509_push(chain, x) > 0;
		if (self)
			X509_free(x);
		if (!ok) {
			if (!self)
				X509_free(x);
			BIO_free(bio);
			return SV_ERR_NOMEM;
		}
		(*n)++;
	}
	ERR_clear_error(); /* the end of the text ends the loop with a "no start line" error */
	BIO_free(bio);
	return SV_OK;
}

int client_tpmobj_ek_chain(const uint8_t *der, size_t der_len, const char *const *pems,
                           size_t npems, const TPM2B_PUBLIC *ek, char *why, size_t why_len)
{
	X509_STORE *store = X509_STORE_new();
	STACK_OF(X509) *chain = sk_X509_new_null();
	X509_STORE_CTX *vc = NULL;
	X509 *cert = NULL;
	EVP_PKEY *ekkey = NULL, *certkey = NULL;
	const uint8_t *p = der;
	size_t ncerts = 0;
	int r = SV_ERR_NOMEM;

	if (store == NULL || chain == NULL)
		goto out;
	for (size_t i = 0; i < npems; i++)
		if ((r = add_pem(store, chain, pems[i], &ncerts)) != SV_OK)
			goto out;
	r = SV_ERR_AUTH;
	if (ncerts == 0) {
		snprintf(why, why_len,
		         "no TPM CA certificate to check the EK certificate against; give the TPM "
		         "manufacturer's CA bundle with --tpm-ca FILE or in the expect file");
		goto out;
	}
	if (der == NULL || der_len == 0) {
		snprintf(
		    why, why_len,
		    "the server sent no EK certificate (its TPM has none in NV 0x01c00002), so "
		    "nothing shows that its TPM is genuine");
		goto out;
	}
	if (der_len > 65536 || (cert = d2i_X509(NULL, &p, (long)der_len)) == NULL ||
	    p != der + der_len) {
		snprintf(why, why_len, "the EK certificate is not one DER X.509 certificate");
		goto out;
	}
	vc = X509_STORE_CTX_new();
	if (vc == NULL || !X509_STORE_CTX_init(vc, store, cert, chain)) {
		r = SV_ERR_NOMEM;
		goto out;
	}
	if (X509_verify_cert(vc) != 1) {
		int e = X509_STORE_CTX_get_error(vc);
		char subj[256] = "";
		X509_NAME_oneline(X509_get_issuer_name(cert), subj, sizeof(subj));
		snprintf(why, why_len,
		         "the EK certificate (issuer %s) does not chain to the TPM CA bundle: %s; "
		         "is this TPM from a manufacturer in --tpm-ca?",
		         subj, X509_verify_cert_error_string(e));
		goto out;
	}
	if ((certkey = X509_get0_pubkey(cert)) == NULL || client_tpmobj_rsa_key(&ekkey, ek) != 0 ||
	    EVP_PKEY_eq(certkey, ekkey) != 1) {
		snprintf(why, why_len,
		         "the EK certificate is valid but certifies another key than ek_public");
		goto out;
	}
	r = SV_OK;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(vc);
	X509_free(cert);
	EVP_PKEY_free(ekkey);
	sk_X509_pop_free(chain, X509_free);
	X509_STORE_free(store);
	return r;
}
