/*
 * Attestation keys and operations on ESYS, on top of enclave/tpm.c's context, storage primary and
 * salted session. Error paths: every TSS2_RC is checked, one out: label flushes what was loaded.
 */
#include "enclave/attest.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include "common/err.h"
#include "enclave/tpm.h"

#define TPM_CC_POLICY_COMMAND_CODE 0x0000016cu

struct ctx {
	ESYS_CONTEXT *e;
	ESYS_TR primary, session;
};

static void get_ctx(struct tpm *t, struct ctx *c)
{
	uint32_t p, s;
	c->e = tpm_esys(t, &p, &s);
	c->primary = p;
	c->session = s;
}

static void flush(struct ctx *c, ESYS_TR *h)
{
	if (*h != ESYS_TR_NONE)
		(void)Esys_FlushContext(c->e, *h);
	*h = ESYS_TR_NONE;
}

static int plain_session(struct ctx *c)
{
	return Esys_TRSess_SetAttributes(c->e, c->session, TPMA_SESSION_CONTINUESESSION, 0xff) ==
	               TSS2_RC_SUCCESS
	           ? SV_OK
	           : SV_ERR_TPM;
}

/* TCG EK Credential Profile, template L-1 (RSA 2048, PolicySecret(ENDORSEMENT)). */
static const TPM2B_PUBLIC ek_template = {
    .publicArea =
        {
            .type = TPM2_ALG_RSA,
            .nameAlg = TPM2_ALG_SHA256,
            .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
                                TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT,
            .authPolicy = {.size = 32, .buffer = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8,
                                                  0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
                                                  0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
                                                  0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa}},
            .parameters.rsaDetail = {.symmetric = {.algorithm = TPM2_ALG_AES,
                                                   .keyBits.aes = 128,
                                                   .mode.aes = TPM2_ALG_CFB},
                                     .scheme = {.scheme = TPM2_ALG_NULL},
                                     .keyBits = 2048,
                                     .exponent = 0},
            .unique.rsa = {.size = 256},
        },
};

static const TPMT_SIG_SCHEME ecdsa_sha256 = {.scheme = TPM2_ALG_ECDSA,
                                             .details.ecdsa.hashAlg = TPM2_ALG_SHA256};

static void ecc_template(TPM2B_PUBLIC *p, TPMA_OBJECT attrs)
{
	memset(p, 0, sizeof(*p));
	p->publicArea.type = TPM2_ALG_ECC;
	p->publicArea.nameAlg = TPM2_ALG_SHA256;
	p->publicArea.objectAttributes = attrs;
	p->publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	p->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	p->publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	p->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	p->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

static int blob_public(const TPM2B_PUBLIC *p, struct attest_blob *b);

/* Equal in everything but the key itself (compared as marshalled bytes). */
static int ek_matches_template(const TPM2B_PUBLIC *p)
{
	TPM2B_PUBLIC a = *p;
	struct attest_blob x, y;
	a.publicArea.unique = ek_template.publicArea.unique;
	return blob_public(&a, &x) == SV_OK && blob_public(&ek_template, &y) == SV_OK &&
	       x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
}

static int blob_public(const TPM2B_PUBLIC *p, struct attest_blob *b)
{
	size_t off = 0;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(p, b->data, sizeof(b->data), &off) != TSS2_RC_SUCCESS)
		return SV_ERR_RANGE;
	b->len = off;
	return SV_OK;
}

static int unblob_public(const struct attest_blob *b, TPM2B_PUBLIC *p)
{
	size_t off = 0;
	memset(p, 0, sizeof(*p));
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(b->data, b->len, &off, p) != TSS2_RC_SUCCESS ||
	    off != b->len)
		return SV_ERR_INVALID;
	return SV_OK;
}

static int blob_signature(const TPMT_SIGNATURE *s, struct attest_blob *b)
{
	size_t off = 0;
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(s, b->data, sizeof(b->data), &off) != TSS2_RC_SUCCESS)
		return SV_ERR_RANGE;
	b->len = off;
	return SV_OK;
}

/* The EK: persistent when it matches L-1, else created (transient; *h must be flushed then). */
static int ek_load(struct ctx *c, ESYS_TR *h, int *transient, TPM2B_PUBLIC *pub,
                   uint8_t name[ATTEST_NAME_LEN])
{
	TPM2B_PUBLIC *out = NULL;
	TPM2B_NAME *n = NULL;
	ESYS_TR p = ESYS_TR_NONE;
	int r = SV_ERR_TPM;
	*h = ESYS_TR_NONE;
	*transient = 0;
	if (Esys_TR_FromTPMPublic(c->e, ATTEST_EK_HANDLE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                          &p) == TSS2_RC_SUCCESS) {
		if (Esys_ReadPublic(c->e, p, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &out, &n,
		                    NULL) == TSS2_RC_SUCCESS &&
		    ek_matches_template(out)) {
			*h = p;
			goto named;
		}
		Esys_Free(out);
		Esys_Free(n);
		out = NULL;
		n = NULL;
		(void)Esys_TR_Close(c->e, &p);
	}
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION none = {0};
	if (Esys_CreatePrimary(c->e, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                       ESYS_TR_NONE, &sens, &ek_template, &outside, &none, h, &out, NULL,
	                       NULL, NULL) != TSS2_RC_SUCCESS) {
		*h = ESYS_TR_NONE;
		goto out;
	}
	*transient = 1;
	if (Esys_TR_GetName(c->e, *h, &n) != TSS2_RC_SUCCESS)
		goto out;
named:
	if (n->size != ATTEST_NAME_LEN)
		goto out;
	memcpy(name, n->name, ATTEST_NAME_LEN);
	*pub = *out;
	r = SV_OK;
out:
	if (r != SV_OK && *transient)
		flush(c, h);
	Esys_Free(out);
	Esys_Free(n);
	return r;
}

static void ek_release(struct ctx *c, ESYS_TR *h, int transient)
{
	if (transient)
		flush(c, h);
	else if (*h != ESYS_TR_NONE)
		(void)Esys_TR_Close(c->e, h);
	*h = ESYS_TR_NONE;
}

/* The EK certificate from NV 0x01c00002, read in chunks; *len = 0 when the index is absent. */
static int ek_cert_read(struct ctx *c, uint8_t *cert, size_t max, size_t *len)
{
	ESYS_TR nv = ESYS_TR_NONE;
	TPM2B_NV_PUBLIC *np = NULL;
	int r = SV_OK;
	*len = 0;
	if (Esys_TR_FromTPMPublic(c->e, ATTEST_EK_CERT_NV, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                          &nv) != TSS2_RC_SUCCESS)
		return SV_OK;
	r = SV_ERR_TPM;
	if (Esys_NV_ReadPublic(c->e, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &np, NULL) !=
	    TSS2_RC_SUCCESS)
		goto out;
	size_t size = np->nvPublic.dataSize;
	if (size == 0 || size > max) {
		r = SV_ERR_RANGE;
		goto out;
	}
	for (size_t off = 0; off < size;) {
		TPM2B_MAX_NV_BUFFER *d = NULL;
		UINT16 chunk = (UINT16)(size - off > 512 ? 512 : size - off);
		if (Esys_NV_Read(c->e, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		                 ESYS_TR_NONE, chunk, (UINT16)off, &d) != TSS2_RC_SUCCESS)
			goto out;
		if (d->size != chunk) {
			Esys_Free(d);
			goto out;
		}
		memcpy(cert + off, d->buffer, chunk);
		off += chunk;
		Esys_Free(d);
	}
	*len = size;
	r = SV_OK;
out:
	Esys_Free(np);
	(void)Esys_TR_Close(c->e, &nv);
	return r;
}

static int load_key(struct ctx *c, const struct attest_blob *pub, const struct attest_blob *priv,
                    ESYS_TR *h)
{
	TPM2B_PUBLIC p;
	TPM2B_PRIVATE k = {0};
	size_t off = 0;
	*h = ESYS_TR_NONE;
	if (unblob_public(pub, &p) != SV_OK ||
	    Tss2_MU_TPM2B_PRIVATE_Unmarshal(priv->data, priv->len, &off, &k) != TSS2_RC_SUCCESS ||
	    off != priv->len)
		return SV_ERR_INVALID;
	if (plain_session(c) != SV_OK || Esys_Load(c->e, c->primary, c->session, ESYS_TR_NONE,
	                                           ESYS_TR_NONE, &k, &p, h) != TSS2_RC_SUCCESS) {
		*h = ESYS_TR_NONE;
		return SV_ERR_TPM;
	}
	return SV_OK;
}

static int create_key(struct ctx *c, const TPM2B_PUBLIC *tmpl, struct attest_blob *pub,
                      struct attest_blob *priv, uint8_t name[ATTEST_NAME_LEN])
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION none = {0};
	TPM2B_PRIVATE *k = NULL;
	TPM2B_PUBLIC *p = NULL;
	int r = SV_ERR_TPM;
	size_t off = 0;
	if (plain_session(c) != SV_OK ||
	    Esys_Create(c->e, c->primary, c->session, ESYS_TR_NONE, ESYS_TR_NONE, &sens, tmpl,
	                &outside, &none, &k, &p, NULL, NULL, NULL) != TSS2_RC_SUCCESS)
		goto out;
	r = SV_ERR_RANGE;
	if (blob_public(p, pub) != SV_OK ||
	    Tss2_MU_TPM2B_PRIVATE_Marshal(k, priv->data, sizeof(priv->data), &off) !=
	        TSS2_RC_SUCCESS)
		goto out;
	priv->len = off;
	r = attest_name_from_public(pub->data, pub->len, name);
out:
	Esys_Free(k);
	Esys_Free(p);
	return r;
}

/* PCR values of mask (SHA-256 bank) in index order; PCR_Read answers at most 8 per call. */
static int pcr_read(struct ctx *c, uint32_t mask, uint8_t values[][ATTEST_HASH_LEN])
{
	uint32_t left = mask;
	while (left != 0) {
		TPML_PCR_SELECTION in = {.count = 1}, *sel = NULL;
		TPML_DIGEST *d = NULL;
		UINT32 counter;
		in.pcrSelections[0].hash = TPM2_ALG_SHA256;
		in.pcrSelections[0].sizeofSelect = 3;
		for (int i = 0; i < 3; i++)
			in.pcrSelections[0].pcrSelect[i] = (uint8_t)(left >> (8 * i));
		if (Esys_PCR_Read(c->e, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &in, &counter,
		                  &sel, &d) != TSS2_RC_SUCCESS)
			return SV_ERR_TPM;
		uint32_t got = 0;
		if (sel->count == 1 && sel->pcrSelections[0].hash == TPM2_ALG_SHA256)
			for (int i = 0; i < 3; i++)
				got |= (uint32_t)sel->pcrSelections[0].pcrSelect[i] << (8 * i);
		int ok = got != 0 && (got & ~left) == 0 && attest_pcrs_count(got) == d->count;
		for (uint32_t i = 0, k = 0; ok && i < ATTEST_PCR_COUNT; i++) {
			if (!(got & (1u << i)))
				continue;
			if (d->digests[k].size != ATTEST_HASH_LEN) {
				ok = 0;
				break;
			}
			unsigned idx = attest_pcrs_count(mask & ((1u << i) - 1));
			memcpy(values[idx], d->digests[k++].buffer, ATTEST_HASH_LEN);
		}
		Esys_Free(sel);
		Esys_Free(d);
		if (!ok)
			return SV_ERR_TPM;
		left &= ~got;
	}
	return SV_OK;
}

int attest_pcr_read(struct tpm *t, uint32_t mask, uint8_t values[][ATTEST_HASH_LEN])
{
	struct ctx c;
	get_ctx(t, &c);
	return pcr_read(&c, mask, values);
}

/* K's public area as the TPM sees it after LoadExternal: ECC P-256, sign, ECDSA-SHA256. */
static int k_public(EVP_PKEY *k, TPM2B_PUBLIC *p)
{
	unsigned char *pt = NULL;
	size_t n = EVP_PKEY_get1_encoded_public_key(k, &pt);
	int r = SV_ERR_CRYPTO;
	char group[32];
	if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
	                                   NULL) != 1 ||
	    strcmp(group, "prime256v1") != 0 || n != 65 || pt[0] != 0x04)
		goto out;
	ecc_template(p, TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_USERWITHAUTH);
	p->publicArea.unique.ecc.x.size = 32;
	memcpy(p->publicArea.unique.ecc.x.buffer, pt + 1, 32);
	p->publicArea.unique.ecc.y.size = 32;
	memcpy(p->publicArea.unique.ecc.y.buffer, pt + 33, 32);
	r = SV_OK;
out:
	OPENSSL_free(pt);
	return r;
}

/* ECDSA-SHA256 by K over a 32-byte digest, as a TPMT_SIGNATURE. */
static int k_sign(EVP_PKEY *k, const uint8_t digest[ATTEST_HASH_LEN], TPMT_SIGNATURE *sig)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(k, NULL);
	unsigned char der[80];
	size_t der_len = sizeof(der);
	ECDSA_SIG *es = NULL;
	int r = SV_ERR_CRYPTO;
	if (pc == NULL || EVP_PKEY_sign_init(pc) != 1 ||
	    EVP_PKEY_sign(pc, der, &der_len, digest, ATTEST_HASH_LEN) != 1)
		goto out;
	const unsigned char *q = der;
	if ((es = d2i_ECDSA_SIG(NULL, &q, (long)der_len)) == NULL)
		goto out;
	memset(sig, 0, sizeof(*sig));
	sig->sigAlg = TPM2_ALG_ECDSA;
	sig->signature.ecdsa.hash = TPM2_ALG_SHA256;
	sig->signature.ecdsa.signatureR.size = 32;
	sig->signature.ecdsa.signatureS.size = 32;
	if (BN_bn2binpad(ECDSA_SIG_get0_r(es), sig->signature.ecdsa.signatureR.buffer, 32) != 32 ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig->signature.ecdsa.signatureS.buffer, 32) != 32)
		goto out;
	r = SV_OK;
out:
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(pc);
	return r;
}

/* A policy session on the identity key: [PolicyPCR(pcrs) | PolicyCommandCode(cc)] then
 * PolicyAuthorize(approved, K) with K's signature (marshalled TPMT_SIGNATURE) checked by the
 * TPM; the identity key's policyRef is empty. */
static int identity_session(struct tpm *t, const struct attest_blob *kpub, uint32_t pcrs,
                            TPM2_CC cc, const uint8_t approved[ATTEST_HASH_LEN],
                            const struct attest_blob *ksig, ESYS_TR *sess)
{
	struct tpm_approval a = {.pcrs = pcrs,
	                         .approved = approved,
	                         .key = kpub->data,
	                         .key_len = kpub->len,
	                         .sig = ksig->data,
	                         .sig_len = ksig->len};
	uint32_t h = ESYS_TR_NONE;
	int r = tpm_policy_session(t, &a, cc, 0, &h);
	*sess = h;
	return r;
}

int attest_sign_statement(struct tpm *t, const struct attest_state *st,
                          const struct attest_policy *pol, const uint8_t stmt[ATTEST_STMT_LEN],
                          struct attest_blob *sig)
{
	struct ctx c;
	ESYS_TR id = ESYS_TR_NONE, sess = ESYS_TR_NONE;
	TPMT_SIGNATURE *out = NULL;
	int r;
	get_ctx(t, &c);
	if ((r = identity_session(t, &st->policy_key, pol->boot_pcrs, 0, pol->approved,
	                          &pol->signature, &sess)) != SV_OK ||
	    (r = load_key(&c, &st->id_public, &st->id_private, &id)) != SV_OK)
		goto out;
	TPM2B_DIGEST digest = {.size = ATTEST_HASH_LEN};
	TPMT_TK_HASHCHECK none = {.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL};
	crypto_hash_sha256(digest.buffer, stmt, ATTEST_STMT_LEN);
	r = SV_ERR_TPM;
	if (Esys_Sign(c.e, id, sess, ESYS_TR_NONE, ESYS_TR_NONE, &digest, &ecdsa_sha256, &none,
	              &out) != TSS2_RC_SUCCESS)
		goto out;
	r = blob_signature(out, sig);
out:
	flush(&c, &sess);
	flush(&c, &id);
	Esys_Free(out);
	return r;
}

int attest_approve(struct tpm *t, uint32_t pcrs, const uint8_t *ref, size_t ref_len, EVP_PKEY *k,
                   const struct attest_state *st, struct attest_policy *pol, char *why,
                   size_t why_len)
{
	struct ctx c;
	TPM2B_PUBLIC kp;
	struct attest_blob kb;
	TPMT_SIGNATURE sig;
	uint8_t ahash[ATTEST_HASH_LEN];
	get_ctx(t, &c);
	if (k_public(k, &kp) != SV_OK || blob_public(&kp, &kb) != SV_OK) {
		snprintf(why, why_len, "the policy key is not an ECC P-256 key");
		return SV_ERR_CONFIG;
	}
	if (kb.len != st->policy_key.len || memcmp(kb.data, st->policy_key.data, kb.len) != 0) {
		snprintf(why, why_len,
		         "the policy key is not the one this vault was initialised with (its "
		         "public key is in the state directory); use the file init wrote");
		return SV_ERR_CONFIG;
	}
	memset(pol, 0, sizeof(*pol));
	pol->boot_pcrs = pcrs;
	if (pcr_read(&c, pcrs, pol->values) != SV_OK) {
		snprintf(why, why_len,
		         "cannot read the PCRs to approve (SHA-256 bank) from the TPM");
		return SV_ERR_TPM;
	}
	attest_policy_pcr(pcrs, (const uint8_t(*)[ATTEST_HASH_LEN])pol->values, pol->approved);
	attest_policy_ahash_ref(pol->approved, ref, ref_len, ahash);
	if (k_sign(k, ahash, &sig) != SV_OK || blob_signature(&sig, &pol->signature) != SV_OK) {
		snprintf(why, why_len, "cannot sign the approved policy with the policy key");
		return SV_ERR_CRYPTO;
	}
	return SV_OK;
}

int attest_authorize(struct tpm *t, uint32_t boot_pcrs, EVP_PKEY *k, const struct attest_state *st,
                     struct attest_policy *pol, char *why, size_t why_len)
{
	return attest_approve(t, boot_pcrs, NULL, 0, k, st, pol, why, why_len);
}

void attest_ek_release(struct tpm *t, struct attest_ek *ek)
{
	struct ctx c;
	ESYS_TR h = ek->handle;
	get_ctx(t, &c);
	ek_release(&c, &h, ek->transient);
	ek->handle = ESYS_TR_NONE;
	ek->transient = 0;
}

int attest_check_ek(struct tpm *t, const struct attest_state *st, struct attest_ek *keep, char *why,
                    size_t why_len)
{
	struct ctx c;
	ESYS_TR ek;
	int transient;
	TPM2B_PUBLIC pub;
	uint8_t name[ATTEST_NAME_LEN];
	get_ctx(t, &c);
	if (ek_load(&c, &ek, &transient, &pub, name) != SV_OK) {
		snprintf(why, why_len, "cannot read the TPM's endorsement key");
		return SV_ERR_TPM;
	}
	int same = memcmp(name, st->ek_name, ATTEST_NAME_LEN) == 0;
	if (keep != NULL && same) {
		keep->handle = ek;
		keep->transient = transient;
	} else {
		ek_release(&c, &ek, transient);
	}
	if (!same) {
		snprintf(why, why_len,
		         "the TPM's endorsement key is not the one of init (another TPM, or the "
		         "vault was copied to another machine); run the vault on the machine it "
		         "was initialised on");
		return SV_ERR_STATE;
	}
	return SV_OK;
}

/* MakeCredential on this TPM with the EK's public part, ActivateCredential with AK + EK. */
static int activate_blobs(struct ctx *c, ESYS_TR ak, ESYS_TR ek, const TPM2B_ID_OBJECT *idobj,
                          const TPM2B_ENCRYPTED_SECRET *secret, TPM2B_DIGEST **cred)
{
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
	ESYS_TR sess = ESYS_TR_NONE;
	int r = SV_ERR_TPM;
	if (Esys_StartAuthSession(c->e, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                          ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256,
	                          &sess) != TSS2_RC_SUCCESS)
		return SV_ERR_TPM;
	if (Esys_PolicySecret(c->e, ESYS_TR_RH_ENDORSEMENT, sess, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                      ESYS_TR_NONE, NULL, NULL, NULL, 0, NULL, NULL) != TSS2_RC_SUCCESS)
		goto out;
	TSS2_RC rc = Esys_ActivateCredential(c->e, ak, ek, ESYS_TR_PASSWORD, sess, ESYS_TR_NONE,
	                                     idobj, secret, cred);
	if (rc == TSS2_RC_SUCCESS)
		r = SV_OK;
	else if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER)
		r = SV_ERR_AUTH;
out:
	flush(c, &sess);
	return r;
}

int attest_provision(struct tpm *t, uint32_t boot_pcrs, EVP_PKEY *k, struct attest_state *st,
                     struct attest_policy *pol, int *warn_no_cert, char *why, size_t why_len)
{
	struct ctx c;
	ESYS_TR ek = ESYS_TR_NONE, ak = ESYS_TR_NONE, id = ESYS_TR_NONE, sess = ESYS_TR_NONE;
	int ek_transient = 0, r;
	TPM2B_PUBLIC ekpub, kp, tmpl;
	TPM2B_ATTEST *cinfo = NULL;
	TPMT_SIGNATURE *csig = NULL;
	TPM2B_ID_OBJECT *idobj = NULL;
	TPM2B_ENCRYPTED_SECRET *secret = NULL;
	TPM2B_DIGEST *cred = NULL;
	get_ctx(t, &c);
	memset(st, 0, sizeof(*st));
	*warn_no_cert = 0;

	snprintf(why, why_len, "cannot create or read the TPM's endorsement key (RSA, L-1)");
	if ((r = ek_load(&c, &ek, &ek_transient, &ekpub, st->ek_name)) != SV_OK ||
	    (r = blob_public(&ekpub, &st->ek_public)) != SV_OK)
		goto out;
	snprintf(why, why_len, "cannot read the EK certificate (NV 0x%08x)", ATTEST_EK_CERT_NV);
	if ((r = ek_cert_read(&c, st->ek_cert, sizeof(st->ek_cert), &st->ek_cert_len)) != SV_OK)
		goto out;
	*warn_no_cert = st->ek_cert_len == 0;
	/* three slots on swtpm: the primary, the EK (kept: creating it is the slow part) and the
	 * AK below; Create loads nothing */

	snprintf(why, why_len, "the policy key is not an ECC P-256 key");
	if ((r = k_public(k, &kp)) != SV_OK || (r = blob_public(&kp, &st->policy_key)) != SV_OK)
		goto out;
	uint8_t kname[ATTEST_NAME_LEN];
	if ((r = attest_name_from_public(st->policy_key.data, st->policy_key.len, kname)) != SV_OK)
		goto out;

	snprintf(why, why_len, "cannot create the attestation key under the storage primary");
	ecc_template(&tmpl, TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
	                        TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                        TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH);
	if ((r = create_key(&c, &tmpl, &st->ak_public, &st->ak_private, st->ak_name)) != SV_OK)
		goto out;
	snprintf(why, why_len, "cannot create the vault identity key under the storage primary");
	ecc_template(&tmpl, TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
	                        TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
	                        TPMA_OBJECT_ADMINWITHPOLICY);
	tmpl.publicArea.authPolicy.size = ATTEST_HASH_LEN;
	attest_policy_authorize(kname, tmpl.publicArea.authPolicy.buffer);
	if ((r = create_key(&c, &tmpl, &st->id_public, &st->id_private, st->id_name)) != SV_OK)
		goto out;
	attest_init_identity(st->ek_name, st->ak_name, st->id_name, st->init_identity);

	/* AK <-> EK: a credential made for (EK, AK name) must come back through this TPM. */
	snprintf(why, why_len, "the attestation key does not activate a credential with the EK");
	r = SV_ERR_TPM;
	if (load_key(&c, &st->ak_public, &st->ak_private, &ak) != SV_OK)
		goto out;
	TPM2B_DIGEST want = {.size = 32};
	TPM2B_NAME akname = {.size = ATTEST_NAME_LEN};
	randombytes_buf(want.buffer, want.size);
	memcpy(akname.name, st->ak_name, ATTEST_NAME_LEN);
	if (Esys_MakeCredential(c.e, ek, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &want, &akname,
	                        &idobj, &secret) != TSS2_RC_SUCCESS ||
	    activate_blobs(&c, ak, ek, idobj, secret, &cred) != SV_OK || cred->size != want.size ||
	    sodium_memcmp(cred->buffer, want.buffer, want.size) != 0)
		goto out;
	ek_release(&c, &ek, ek_transient);
	flush(&c, &ak);

	/* Certification by the AK; the identity key's ADMIN role takes a K-approved
	 * PolicyCommandCode(Certify) (signed here, used once, not stored). */
	snprintf(why, why_len, "the attestation key cannot certify the identity key");
	uint8_t ccpol[ATTEST_HASH_LEN], ahash[ATTEST_HASH_LEN];
	{
		crypto_hash_sha256_state hs;
		uint8_t zero[ATTEST_HASH_LEN] = {0};
		uint8_t buf[8] = {TPM_CC_POLICY_COMMAND_CODE >> 24,
		                  (TPM_CC_POLICY_COMMAND_CODE >> 16) & 0xff,
		                  (TPM_CC_POLICY_COMMAND_CODE >> 8) & 0xff,
		                  TPM_CC_POLICY_COMMAND_CODE & 0xff,
		                  TPM2_CC_Certify >> 24,
		                  (TPM2_CC_Certify >> 16) & 0xff,
		                  (TPM2_CC_Certify >> 8) & 0xff,
		                  TPM2_CC_Certify & 0xff};
		crypto_hash_sha256_init(&hs);
		crypto_hash_sha256_update(&hs, zero, sizeof(zero));
		crypto_hash_sha256_update(&hs, buf, sizeof(buf));
		crypto_hash_sha256_final(&hs, ccpol);
	}
	TPMT_SIGNATURE ccsig;
	struct attest_blob ccblob;
	attest_policy_ahash(ccpol, ahash);
	/* K is loaded and flushed inside identity_session: start it before the two keys */
	if ((r = k_sign(k, ahash, &ccsig)) != SV_OK ||
	    (r = blob_signature(&ccsig, &ccblob)) != SV_OK ||
	    (r = identity_session(t, &st->policy_key, 0, TPM2_CC_Certify, ccpol, &ccblob, &sess)) !=
	        SV_OK ||
	    (r = load_key(&c, &st->id_public, &st->id_private, &id)) != SV_OK ||
	    (r = load_key(&c, &st->ak_public, &st->ak_private, &ak)) != SV_OK)
		goto out;
	TPM2B_DATA qual = {.size = ATTEST_HASH_LEN};
	memcpy(qual.buffer, st->init_identity, ATTEST_HASH_LEN);
	r = SV_ERR_TPM;
	if (Esys_Certify(c.e, id, ak, sess, ESYS_TR_PASSWORD, ESYS_TR_NONE, &qual, &ecdsa_sha256,
	                 &cinfo, &csig) != TSS2_RC_SUCCESS)
		goto out;
	if (cinfo->size > sizeof(st->certify_attest.data) ||
	    blob_signature(csig, &st->certify_signature) != SV_OK)
		goto out;
	memcpy(st->certify_attest.data, cinfo->attestationData, cinfo->size);
	st->certify_attest.len = cinfo->size;
	flush(&c, &id);
	flush(&c, &ak);

	if ((r = attest_authorize(t, boot_pcrs, k, st, pol, why, why_len)) != SV_OK)
		goto out;
	/* self-test: the identity key signs in the approved boot state */
	snprintf(why, why_len, "the identity key does not sign under the approved PCR policy");
	uint8_t stmt[ATTEST_STMT_LEN] = {0};
	struct attest_blob sig;
	r = attest_sign_statement(t, st, pol, stmt, &sig);
out:
	flush(&c, &sess);
	flush(&c, &id);
	flush(&c, &ak);
	ek_release(&c, &ek, ek_transient);
	Esys_Free(cinfo);
	Esys_Free(csig);
	Esys_Free(idobj);
	Esys_Free(secret);
	Esys_Free(cred);
	if (r == SV_OK)
		why[0] = '\0';
	return r;
}

int attest_quote(struct tpm *t, const struct attest_state *st, uint32_t boot_pcrs,
                 const uint8_t *nonce, size_t nonce_len, struct attest_quote *q)
{
	struct ctx c;
	ESYS_TR ak = ESYS_TR_NONE;
	int r;
	get_ctx(t, &c);
	if (nonce_len < ATTEST_NONCE_MIN || nonce_len > ATTEST_NONCE_MAX)
		return SV_ERR_INVALID;
	memset(q, 0, sizeof(*q));
	q->pcrs = boot_pcrs | (1u << ATTEST_PCR_IMA);
	if ((r = load_key(&c, &st->ak_public, &st->ak_private, &ak)) != SV_OK)
		return r;
	TPM2B_DATA qual = {.size = (UINT16)nonce_len};
	memcpy(qual.buffer, nonce, nonce_len);
	TPML_PCR_SELECTION sel = {.count = 1};
	sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel.pcrSelections[0].sizeofSelect = 3;
	for (int i = 0; i < 3; i++)
		sel.pcrSelections[0].pcrSelect[i] = (uint8_t)(q->pcrs >> (8 * i));
	/* PCR 10 may be extended between the quote and the read: retry until they agree. */
	r = SV_ERR_TPM;
	for (int attempt = 0; attempt < 5 && r == SV_ERR_TPM; attempt++) {
		TPM2B_ATTEST *a = NULL;
		TPMT_SIGNATURE *s = NULL;
		TPMS_ATTEST parsed;
		size_t off = 0;
		uint8_t dig[ATTEST_HASH_LEN];
		if (Esys_Quote(c.e, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qual,
		               &ecdsa_sha256, &sel, &a, &s) != TSS2_RC_SUCCESS ||
		    pcr_read(&c, q->pcrs, q->values) != SV_OK ||
		    Tss2_MU_TPMS_ATTEST_Unmarshal(a->attestationData, a->size, &off, &parsed) !=
		        TSS2_RC_SUCCESS ||
		    a->size > sizeof(q->attest.data) || blob_signature(s, &q->signature) != SV_OK) {
			Esys_Free(a);
			Esys_Free(s);
			break;
		}
		attest_pcr_digest(q->pcrs, (const uint8_t(*)[ATTEST_HASH_LEN])q->values, dig);
		if (parsed.attested.quote.pcrDigest.size == ATTEST_HASH_LEN &&
		    memcmp(parsed.attested.quote.pcrDigest.buffer, dig, ATTEST_HASH_LEN) == 0) {
			memcpy(q->attest.data, a->attestationData, a->size);
			q->attest.len = a->size;
			r = SV_OK;
		}
		Esys_Free(a);
		Esys_Free(s);
	}
	flush(&c, &ak);
	return r;
}

int attest_activate_decode(const uint8_t *body, size_t len, const uint8_t **id, size_t *id_len,
                           const uint8_t **secret, size_t *secret_len)
{
	struct sv_buf b;
	uint8_t v;
	TPM2B_ID_OBJECT io;
	TPM2B_ENCRYPTED_SECRET es;
	size_t off;
	sv_buf_from(&b, body, len);
	if (sv_buf_get_u8(&b, &v) != SV_OK || v != 1 ||
	    sv_buf_get_str16(&b, sizeof(TPM2B_ID_OBJECT), id, id_len) != SV_OK ||
	    sv_buf_get_str16(&b, sizeof(TPM2B_ENCRYPTED_SECRET), secret, secret_len) != SV_OK ||
	    sv_buf_expect_end(&b) != SV_OK)
		return SV_ERR_INVALID;
	off = 0;
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(*id, *id_len, &off, &io) != TSS2_RC_SUCCESS ||
	    off != *id_len || io.size == 0)
		return SV_ERR_INVALID;
	off = 0;
	if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(*secret, *secret_len, &off, &es) !=
	        TSS2_RC_SUCCESS ||
	    off != *secret_len || es.size == 0)
		return SV_ERR_INVALID;
	return SV_OK;
}

int attest_activate(struct tpm *t, const struct attest_state *st, const struct attest_ek *held,
                    const uint8_t *body, size_t len, uint8_t out[ATTEST_CRED_MAX], size_t *out_len)
{
	struct ctx c;
	const uint8_t *idp, *sp;
	size_t idl, sl, off = 0;
	TPM2B_ID_OBJECT io;
	TPM2B_ENCRYPTED_SECRET es;
	TPM2B_DIGEST *cred = NULL;
	ESYS_TR ak = ESYS_TR_NONE;
	int r;
	get_ctx(t, &c);
	if ((r = attest_activate_decode(body, len, &idp, &idl, &sp, &sl)) != SV_OK)
		return r;
	(void)Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(idp, idl, &off, &io);
	off = 0;
	(void)Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(sp, sl, &off, &es);
	if ((r = load_key(&c, &st->ak_public, &st->ak_private, &ak)) != SV_OK)
		goto out;
	if ((r = activate_blobs(&c, ak, held->handle, &io, &es, &cred)) != SV_OK)
		goto out;
	if (cred->size == 0 || cred->size > ATTEST_CRED_MAX) {
		r = SV_ERR_AUTH;
		goto out;
	}
	memcpy(out, cred->buffer, cred->size);
	*out_len = cred->size;
out:
	flush(&c, &ak);
	Esys_Free(cred);
	return r;
}
