/*
 * TPM root of trust on tpm2-tss ESYS with an explicit in-tree TCTI (never tctildr, which dlopens).
 * Error paths follow tpm2-tss' goto_if_error style: every TSS2_RC is checked, one out: label.
 */
#include "enclave/tpm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sodium.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include "common/attest_stmt.h"
#include "common/err.h"
#include "enclave/tcti-fd.h"

#define RETRY_FIRST_NS  1000000L   /* 1 ms */
#define RETRY_MAX_NS    256000000L /* 256 ms */
#define RETRY_BUDGET_NS (TPM_RETRY_BUDGET_MS * 1000000LL)
#define RECOVERY_MAX_MS 10000u /* a TPM_PT_NV_WRITE_RECOVERY above this is clamped */

/* tpm_set_timeout: for every tpm_open that follows */
static unsigned timeout_ms = TCTI_FD_TIMEOUT_DEFAULT_MS;
static tpm_timeout_fn timeout_hook;

struct tpm {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *ctx;
	ESYS_TR primary;
	ESYS_TR session;
	ESYS_TR nv;
	uint32_t nv_index; /* the index nv refers to */
	TPM2B_NAME primary_name;
	long long retry_budget_ns; /* tpm_set_retry_budget */
	struct tpm_stats stats;
};

void tpm_set_timeout(unsigned ms, tpm_timeout_fn fn)
{
	timeout_ms = ms;
	timeout_hook = fn;
}

static void on_tcti_timeout(void *arg, uint32_t cc, unsigned ms)
{
	char name[48];
	const char *n = tcti_fd_cc_name(cc);
	if (n == NULL)
		snprintf(name, sizeof(name), "TPM2_CC 0x%x", (unsigned)cc);
	if (timeout_hook != NULL)
		timeout_hook(n != NULL ? n : name, ms);
}

/* TPM_PT_NV_WRITE_RECOVERY: how long the TPM says it needs before it takes the next NV write
 * after TPM_RC_NV_RATE; 0 when it does not say (swtpm). A variable property, read once here. */
static uint32_t nv_write_recovery_ms(struct tpm *t)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = 0;
	uint32_t v = 0;
	if (Esys_GetCapability(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                       TPM2_CAP_TPM_PROPERTIES, TPM2_PT_NV_WRITE_RECOVERY, 1, &more,
	                       &cap) == TSS2_RC_SUCCESS &&
	    cap != NULL && cap->capability == TPM2_CAP_TPM_PROPERTIES &&
	    cap->data.tpmProperties.count >= 1 &&
	    cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_NV_WRITE_RECOVERY)
		v = cap->data.tpmProperties.tpmProperty[0].value;
	Esys_Free(cap);
	return v > RECOVERY_MAX_MS ? RECOVERY_MAX_MS : v;
}

static int esys_err(TSS2_RC rc)
{
	return rc == TSS2_RC_SUCCESS ? SV_OK : SV_ERR_TPM;
}

/* TPM-layer response codes without the layer bits (ESYS passes TPM errors through unchanged). */
static TSS2_RC base_rc(TSS2_RC rc)
{
	return rc & ~(TSS2_RC)TSS2_RC_LAYER_MASK;
}

static int retryable(TSS2_RC rc)
{
	if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER &&
	    (rc & TSS2_RC_LAYER_MASK) != TSS2_RESMGR_TPM_RC_LAYER)
		return 0;
	TSS2_RC b = base_rc(rc);
	return b == TPM2_RC_NV_RATE || b == TPM2_RC_RETRY || b == TPM2_RC_YIELDED ||
	       b == TPM2_RC_NV_UNAVAILABLE || b == TPM2_RC_TESTING;
}

/* The TPM has no free object or session slot (without a resource manager, another client holds
 * them): a temporary shortage, not a refusal. */
static int out_of_memory(TSS2_RC rc)
{
	TSS2_RC b = base_rc(rc);
	return b == TPM2_RC_OBJECT_MEMORY || b == TPM2_RC_SESSION_MEMORY || b == TPM2_RC_MEMORY;
}

static int session_attrs(struct tpm *t, TPMA_SESSION extra)
{
	TSS2_RC rc = Esys_TRSess_SetAttributes(t->ctx, t->session,
	                                       TPMA_SESSION_CONTINUESESSION | extra, 0xff);
	return esys_err(rc);
}

static const TPM2B_PUBLIC primary_template = {
    .publicArea =
        {
            .type = TPM2_ALG_ECC,
            .nameAlg = TPM2_ALG_SHA256,
            .objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
                                TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                TPMA_OBJECT_NODA,
            .parameters.eccDetail =
                {
                    .symmetric = {.algorithm = TPM2_ALG_AES,
                                  .keyBits.aes = 128,
                                  .mode.aes = TPM2_ALG_CFB},
                    .scheme = {.scheme = TPM2_ALG_NULL},
                    .curveID = TPM2_ECC_NIST_P256,
                    .kdf = {.scheme = TPM2_ALG_NULL},
                },
        },
};

/* swtpm has no resource manager: transient objects and sessions of a predecessor that was
 * killed stay loaded and exhaust its three slots. Before ESYS starts, list them with a raw
 * GetCapability and flush them (the kernel's /dev/tpmrm0 does this itself on close). */
static TSS2_RC raw_command(TSS2_TCTI_CONTEXT *tcti, const uint8_t *cmd, size_t len, uint8_t *resp,
                           size_t *resp_len)
{
	TSS2_RC rc = Tss2_Tcti_Transmit(tcti, len, cmd);
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_Tcti_Receive(tcti, resp_len, resp, TSS2_TCTI_TIMEOUT_BLOCK);
	return rc;
}

static void flush_stale(TSS2_TCTI_CONTEXT *tcti)
{
	static const TPM2_HT types[] = {TPM2_HT_TRANSIENT, TPM2_HT_LOADED_SESSION,
	                                TPM2_HT_SAVED_SESSION};
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		uint8_t cmd[22], resp[4096];
		size_t off = 0, rlen = sizeof(resp);
		if (Tss2_MU_TPM2_ST_Marshal(TPM2_ST_NO_SESSIONS, cmd, sizeof(cmd), &off) ||
		    Tss2_MU_UINT32_Marshal(sizeof(cmd), cmd, sizeof(cmd), &off) ||
		    Tss2_MU_TPM2_CC_Marshal(TPM2_CC_GetCapability, cmd, sizeof(cmd), &off) ||
		    Tss2_MU_UINT32_Marshal(TPM2_CAP_HANDLES, cmd, sizeof(cmd), &off) ||
		    Tss2_MU_UINT32_Marshal((uint32_t)types[k] << TPM2_HR_SHIFT, cmd, sizeof(cmd),
		                           &off) ||
		    Tss2_MU_UINT32_Marshal(TPM2_MAX_CAP_HANDLES, cmd, sizeof(cmd), &off))
			return;
		if (raw_command(tcti, cmd, off, resp, &rlen) != TSS2_RC_SUCCESS || rlen < 11)
			return;
		TPMS_CAPABILITY_DATA cap;
		size_t roff = 11; /* header(10) + moreData(1) */
		uint32_t code = (uint32_t)resp[6] << 24 | (uint32_t)resp[7] << 16 |
		                (uint32_t)resp[8] << 8 | resp[9];
		if (code != TPM2_RC_SUCCESS ||
		    Tss2_MU_TPMS_CAPABILITY_DATA_Unmarshal(resp, rlen, &roff, &cap) !=
		        TSS2_RC_SUCCESS ||
		    cap.capability != TPM2_CAP_HANDLES)
			continue;
		for (uint32_t i = 0; i < cap.data.handles.count; i++) {
			uint8_t fl[14];
			size_t foff = 0, flen = sizeof(resp);
			if (Tss2_MU_TPM2_ST_Marshal(TPM2_ST_NO_SESSIONS, fl, sizeof(fl), &foff) ||
			    Tss2_MU_UINT32_Marshal(sizeof(fl), fl, sizeof(fl), &foff) ||
			    Tss2_MU_TPM2_CC_Marshal(TPM2_CC_FlushContext, fl, sizeof(fl), &foff) ||
			    Tss2_MU_UINT32_Marshal(cap.data.handles.handle[i], fl, sizeof(fl),
			                           &foff))
				return;
			(void)raw_command(tcti, fl, foff, resp, &flen);
		}
	}
}

int tpm_open(struct tpm **out, const char *tcti, char *why, size_t why_len)
{
	struct tpm *t = calloc(1, sizeof(*t));
	TPM2B_PUBLIC *pub = NULL;
	TPM2B_NAME *name = NULL;
	TPM2B_DIGEST *rnd = NULL;
	int fd = -1, r = SV_ERR_TPM;
	TSS2_RC rc;
	if (t == NULL)
		return SV_ERR_NOMEM;
	t->primary = t->session = t->nv = ESYS_TR_NONE;
	t->retry_budget_ns = RETRY_BUDGET_NS;
	/* OpenSSL reads openssl.cnf on first use; do it now, before any sandbox. */
	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_ADD_ALL_CIPHERS |
	                            OPENSSL_INIT_ADD_ALL_DIGESTS,
	                        NULL) != 1 ||
	    sodium_init() < 0) {
		snprintf(why, why_len, "TPM: crypto library initialisation failed");
		r = SV_ERR_CRYPTO;
		goto out;
	}
	/* ESYS logs refused commands to stderr; our callers print one line that says what to do.
	 * TSS2_LOG set by the operator (e.g. TSS2_LOG=esys+debug) still wins. */
	(void)setenv("TSS2_LOG", "all+NONE", 0);
	r = tcti_fd_connect(tcti, &fd, why, why_len);
	if (r != SV_OK)
		goto out;
	r = tcti_fd_new(&t->tcti, fd);
	if (r != SV_OK) {
		close(fd);
		goto out;
	}
	/* from the first command on, including the raw ones of flush_stale */
	tcti_fd_set_timeout(t->tcti, timeout_ms, on_tcti_timeout, NULL);
	r = SV_ERR_TPM;
	if (strncmp(tcti, "swtpm:", 6) == 0)
		flush_stale(t->tcti);
	rc = Esys_Initialize(&t->ctx, t->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		snprintf(why, why_len, "TPM: ESYS initialisation failed: %s", Tss2_RC_Decode(rc));
		goto out;
	}
	rc = Esys_Startup(t->ctx, TPM2_SU_CLEAR);
	if (rc != TSS2_RC_SUCCESS && base_rc(rc) != TPM2_RC_INITIALIZE) {
		snprintf(why, why_len, "TPM: Startup failed: %s", Tss2_RC_Decode(rc));
		goto out;
	}
	t->stats.nv_write_recovery_ms = nv_write_recovery_ms(t);
	TPM2B_SENSITIVE_CREATE in_sens = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION pcrs = {0};
	rc = Esys_CreatePrimary(t->ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                        ESYS_TR_NONE, &in_sens, &primary_template, &outside, &pcrs,
	                        &t->primary, &pub, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		snprintf(why, why_len,
		         "TPM: cannot create the primary key: %s (owner hierarchy must have an "
		         "empty auth value)",
		         Tss2_RC_Decode(rc));
		goto out;
	}
	rc = Esys_TR_GetName(t->ctx, t->primary, &name);
	if (rc != TSS2_RC_SUCCESS || name->size > sizeof(t->primary_name.name)) {
		snprintf(why, why_len, "TPM: cannot read the primary key's name");
		goto out;
	}
	t->primary_name = *name;
	TPMT_SYM_DEF sym = {
	    .algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB};
	rc = Esys_StartAuthSession(t->ctx, t->primary, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                           ESYS_TR_NONE, NULL, TPM2_SE_HMAC, &sym, TPM2_ALG_SHA256,
	                           &t->session);
	if (rc != TSS2_RC_SUCCESS) {
		snprintf(why, why_len, "TPM: cannot start the salted session: %s",
		         Tss2_RC_Decode(rc));
		goto out;
	}
	/* Warm-up: one encrypted command runs every crypto path ESYS needs later. */
	if (session_attrs(t, TPMA_SESSION_ENCRYPT) != SV_OK) {
		snprintf(why, why_len, "TPM: cannot set session attributes");
		goto out;
	}
	rc = Esys_GetRandom(t->ctx, t->session, ESYS_TR_NONE, ESYS_TR_NONE, 16, &rnd);
	if (rc != TSS2_RC_SUCCESS) {
		snprintf(why, why_len, "TPM: warm-up command failed: %s", Tss2_RC_Decode(rc));
		goto out;
	}
	*out = t;
	t = NULL;
	r = SV_OK;
out:
	Esys_Free(pub);
	Esys_Free(name);
	if (rnd != NULL)
		sodium_memzero(rnd, sizeof(*rnd));
	Esys_Free(rnd);
	tpm_close(t);
	return r;
}

void tpm_close(struct tpm *t)
{
	if (t == NULL)
		return;
	if (t->ctx != NULL) {
		if (t->session != ESYS_TR_NONE)
			(void)Esys_FlushContext(t->ctx, t->session);
		if (t->primary != ESYS_TR_NONE)
			(void)Esys_FlushContext(t->ctx, t->primary);
		Esys_Finalize(&t->ctx);
	}
	tcti_fd_free(t->tcti);
	free(t);
}

int tpm_primary_name(const struct tpm *t, uint8_t out[TPM_NAME_MAX], size_t *len)
{
	if (t->primary_name.size > TPM_NAME_MAX)
		return SV_ERR_INTERNAL;
	memcpy(out, t->primary_name.name, t->primary_name.size);
	*len = t->primary_name.size;
	return SV_OK;
}

static void pcr_selection(uint32_t mask, TPML_PCR_SELECTION *sel)
{
	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = 3;
	for (int i = 0; i < 3; i++)
		sel->pcrSelections[0].pcrSelect[i] = (uint8_t)(mask >> (8 * i));
}

/* PolicyPCR over the SHA-256 bank's current values of the PCRs in mask, computed in a trial
 * session: the sealed key's authPolicy. */
static int pcr_policy_digest(struct tpm *t, uint32_t mask, TPM2B_DIGEST *out)
{
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
	TPML_PCR_SELECTION sel;
	TPM2B_DIGEST empty = {0}, *d = NULL;
	ESYS_TR trial = ESYS_TR_NONE;
	int r = SV_ERR_TPM;
	pcr_selection(mask, &sel);
	if (Esys_StartAuthSession(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                          ESYS_TR_NONE, NULL, TPM2_SE_TRIAL, &sym, TPM2_ALG_SHA256,
	                          &trial) != TSS2_RC_SUCCESS) {
		trial = ESYS_TR_NONE;
		goto out;
	}
	if (Esys_PolicyPCR(t->ctx, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty, &sel) !=
	        TSS2_RC_SUCCESS ||
	    Esys_PolicyGetDigest(t->ctx, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &d) !=
	        TSS2_RC_SUCCESS)
		goto out;
	*out = *d;
	r = SV_OK;
out:
	if (trial != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->ctx, trial);
	Esys_Free(d);
	return r;
}

/* K's ticket for aHash = SHA-256(approved || ref) from TPM2_VerifySignature, and K's name. K is
 * loaded (owner hierarchy, not NULL: a NULL-hierarchy key gets a NULL ticket PolicyAuthorize
 * refuses) and flushed before returning, so that it holds no object slot afterwards. */
static int verify_approval(struct tpm *t, const struct tpm_approval *a, TPMT_TK_VERIFIED **tk,
                           TPM2B_NAME **kname)
{
	TPM2B_PUBLIC kp = {0};
	TPMT_SIGNATURE sig = {0};
	TPM2B_DIGEST ahash = {.size = TPM_DIGEST_LEN};
	ESYS_TR kh = ESYS_TR_NONE;
	size_t off = 0, soff = 0;
	int r = SV_ERR_TPM;
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(a->key, a->key_len, &off, &kp) != TSS2_RC_SUCCESS ||
	    off != a->key_len ||
	    Tss2_MU_TPMT_SIGNATURE_Unmarshal(a->sig, a->sig_len, &soff, &sig) != TSS2_RC_SUCCESS ||
	    soff != a->sig_len)
		return SV_ERR_INVALID;
	attest_policy_ahash_ref(a->approved, a->ref, a->ref_len, ahash.buffer);
	if (Esys_LoadExternal(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, &kp,
	                      ESYS_TR_RH_OWNER, &kh) != TSS2_RC_SUCCESS)
		return SV_ERR_TPM;
	if (Esys_VerifySignature(t->ctx, kh, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &ahash, &sig,
	                         tk) == TSS2_RC_SUCCESS &&
	    Esys_TR_GetName(t->ctx, kh, kname) == TSS2_RC_SUCCESS)
		r = SV_OK;
	(void)Esys_FlushContext(t->ctx, kh);
	return r;
}

int tpm_policy_session(struct tpm *t, const struct tpm_approval *a, uint32_t cc, int salted,
                       uint32_t *out)
{
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
	TPMT_TK_VERIFIED *tk = NULL;
	TPM2B_NAME *kname = NULL;
	ESYS_TR sess = ESYS_TR_NONE;
	int r;
	*out = ESYS_TR_NONE;
	/* K first: it is loaded and flushed before the session and the caller's object */
	if (a->approved != NULL && (r = verify_approval(t, a, &tk, &kname)) != SV_OK)
		goto out;
	r = SV_ERR_TPM;
	if (salted) /* salted like the HMAC session, so that an unsealed key is encrypted on the bus
	             */
		sym = (TPMT_SYM_DEF){
		    .algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB};
	if (Esys_StartAuthSession(t->ctx, salted ? t->primary : ESYS_TR_NONE, ESYS_TR_NONE,
	                          ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY,
	                          &sym, TPM2_ALG_SHA256, &sess) != TSS2_RC_SUCCESS) {
		sess = ESYS_TR_NONE;
		goto out;
	}
	/* salted: continueSession clear, the TPM ends the session with the command */
	if (salted &&
	    Esys_TRSess_SetAttributes(t->ctx, sess, TPMA_SESSION_ENCRYPT, 0xff) != TSS2_RC_SUCCESS)
		goto out;
	if (a->pcrs != 0) {
		TPM2B_DIGEST empty = {0};
		TPML_PCR_SELECTION sel;
		pcr_selection(a->pcrs, &sel);
		if (Esys_PolicyPCR(t->ctx, sess, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty,
		                   &sel) != TSS2_RC_SUCCESS)
			goto out;
	} else if (Esys_PolicyCommandCode(t->ctx, sess, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                                  cc) != TSS2_RC_SUCCESS) {
		goto out;
	}
	if (a->approved != NULL) {
		TPM2B_DIGEST appr = {.size = TPM_DIGEST_LEN};
		TPM2B_NONCE ref = {.size = (UINT16)a->ref_len};
		if (a->ref_len > sizeof(ref.buffer)) {
			r = SV_ERR_INVALID;
			goto out;
		}
		memcpy(appr.buffer, a->approved, TPM_DIGEST_LEN);
		if (a->ref_len > 0)
			memcpy(ref.buffer, a->ref, a->ref_len);
		TSS2_RC rc = Esys_PolicyAuthorize(t->ctx, sess, ESYS_TR_NONE, ESYS_TR_NONE,
		                                  ESYS_TR_NONE, &appr, &ref, kname, tk);
		/* PolicyPCR passes whatever the values; PolicyAuthorize compares the digest. */
		if (rc != TSS2_RC_SUCCESS) {
			r = a->pcrs != 0 ? SV_ERR_STATE : SV_ERR_TPM;
			goto out;
		}
	}
	*out = sess;
	sess = ESYS_TR_NONE;
	r = SV_OK;
out:
	if (sess != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->ctx, sess);
	Esys_Free(tk);
	Esys_Free(kname);
	return r;
}

int tpm_seal_key(struct tpm *t, uint32_t pcr_mask, const uint8_t *policy,
                 const uint8_t key[TPM_VAULT_KEY_LEN], uint8_t *blob, size_t blob_max,
                 size_t *blob_len)
{
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC *pub = NULL;
	TPM2B_SENSITIVE_CREATE sens = {0};
	int r = SV_ERR_TPM;
	size_t off = 0;
	sens.sensitive.data.size = TPM_VAULT_KEY_LEN;
	memcpy(sens.sensitive.data.buffer, key, TPM_VAULT_KEY_LEN);
	TPM2B_PUBLIC tmpl = {
	    .publicArea =
	        {
	            .type = TPM2_ALG_KEYEDHASH,
	            .nameAlg = TPM2_ALG_SHA256,
	            .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                                TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA,
	            .parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL,
	        },
	};
	if (policy != NULL) {
		/* Policy only, e.g. PolicyAuthorize(K): whatever K approves. */
		tmpl.publicArea.authPolicy.size = TPM_DIGEST_LEN;
		memcpy(tmpl.publicArea.authPolicy.buffer, policy, TPM_DIGEST_LEN);
		tmpl.publicArea.objectAttributes &= ~TPMA_OBJECT_USERWITHAUTH;
	} else if (pcr_mask != 0) {
		/* Policy only: the key unseals only while the selected PCRs hold today's values. */
		if (pcr_policy_digest(t, pcr_mask, &tmpl.publicArea.authPolicy) != SV_OK)
			goto out;
		tmpl.publicArea.objectAttributes &= ~TPMA_OBJECT_USERWITHAUTH;
	}
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION pcrs = {0};
	/* inSensitive travels encrypted (DECRYPT); outPrivate comes back encrypted (ENCRYPT). */
	if (session_attrs(t, TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT) != SV_OK)
		goto out;
	TSS2_RC rc = Esys_Create(t->ctx, t->primary, t->session, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
	                         &tmpl, &outside, &pcrs, &priv, &pub, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		goto out;
	r = SV_ERR_RANGE;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, blob, blob_max, &off) != TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_PRIVATE_Marshal(priv, blob, blob_max, &off) != TSS2_RC_SUCCESS)
		goto out;
	*blob_len = off;
	r = SV_OK;
out:
	sodium_memzero(&sens, sizeof(sens));
	Esys_Free(priv);
	Esys_Free(pub);
	return r;
}

int tpm_seal_new(struct tpm *t, uint32_t pcr_mask, const uint8_t *policy,
                 uint8_t key[TPM_VAULT_KEY_LEN], uint8_t *blob, size_t blob_max, size_t *blob_len)
{
	TPM2B_DIGEST *rnd = NULL;
	int r = SV_ERR_TPM;
	if (session_attrs(t, TPMA_SESSION_ENCRYPT) != SV_OK)
		goto out;
	TSS2_RC rc =
	    Esys_GetRandom(t->ctx, t->session, ESYS_TR_NONE, ESYS_TR_NONE, TPM_VAULT_KEY_LEN, &rnd);
	if (rc != TSS2_RC_SUCCESS || rnd->size != TPM_VAULT_KEY_LEN)
		goto out;
	/* TPM RNG XOR host RNG: as strong as the better of the two. */
	randombytes_buf(key, TPM_VAULT_KEY_LEN);
	for (size_t i = 0; i < TPM_VAULT_KEY_LEN; i++)
		key[i] ^= rnd->buffer[i];
	r = tpm_seal_key(t, pcr_mask, policy, key, blob, blob_max, blob_len);
out:
	if (r != SV_OK)
		sodium_memzero(key, TPM_VAULT_KEY_LEN);
	if (rnd != NULL)
		sodium_memzero(rnd, sizeof(*rnd));
	Esys_Free(rnd);
	return r;
}

int tpm_unseal(struct tpm *t, uint32_t pcr_mask, const struct tpm_approval *approved,
               const uint8_t *blob, size_t blob_len, uint8_t key[TPM_VAULT_KEY_LEN])
{
	TPM2B_PUBLIC pub = {0};
	TPM2B_PRIVATE priv = {0};
	TPM2B_SENSITIVE_DATA *data = NULL;
	ESYS_TR obj = ESYS_TR_NONE, auth = t->session, policy = ESYS_TR_NONE;
	size_t off = 0;
	int r = SV_ERR_INVALID;
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob, blob_len, &off, &pub) != TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob, blob_len, &off, &priv) != TSS2_RC_SUCCESS ||
	    off != blob_len)
		goto out;
	if (approved != NULL || pcr_mask != 0) {
		/* The policy session before the object: K takes an object slot for a moment. */
		struct tpm_approval plain = {.pcrs = pcr_mask};
		uint32_t s = ESYS_TR_NONE;
		if ((r = tpm_policy_session(t, approved != NULL ? approved : &plain, 0, 1, &s)) !=
		    SV_OK)
			goto out;
		policy = auth = s;
	}
	r = SV_ERR_TPM;
	if (session_attrs(t, 0) != SV_OK)
		goto out;
	TSS2_RC rc = Esys_Load(t->ctx, t->primary, t->session, ESYS_TR_NONE, ESYS_TR_NONE, &priv,
	                       &pub, &obj);
	if (rc != TSS2_RC_SUCCESS) {
		obj = ESYS_TR_NONE;
		if (out_of_memory(rc))
			r = SV_ERR_BUSY;
		goto out;
	}
	if (policy == ESYS_TR_NONE && session_attrs(t, TPMA_SESSION_ENCRYPT) != SV_OK)
		goto out;
	if (Esys_Unseal(t->ctx, obj, auth, ESYS_TR_NONE, ESYS_TR_NONE, &data) != TSS2_RC_SUCCESS)
		goto out;
	policy = ESYS_TR_NONE; /* continueSession was clear: the TPM ended it */
	if (data->size != TPM_VAULT_KEY_LEN) {
		r = SV_ERR_INVALID;
		goto out;
	}
	memcpy(key, data->buffer, TPM_VAULT_KEY_LEN);
	r = SV_OK;
out:
	if (policy != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->ctx, policy);
	if (obj != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->ctx, obj);
	if (data != NULL)
		sodium_memzero(data, sizeof(*data));
	Esys_Free(data);
	return r;
}

/* The ChangeAuth-only policy of the counter: PolicyCommandCode(TPM2_CC_NV_ChangeAuth) from the
 * zero digest, computed in software (SHA-256 of 0^32 | TPM2_CC_PolicyCommandCode | code). */
static void change_auth_policy(TPM2B_DIGEST *out)
{
	uint8_t in[TPM2_SHA256_DIGEST_SIZE + 8] = {0};
	size_t off = TPM2_SHA256_DIGEST_SIZE;
	(void)Tss2_MU_TPM2_CC_Marshal(TPM2_CC_PolicyCommandCode, in, sizeof(in), &off);
	(void)Tss2_MU_TPM2_CC_Marshal(TPM2_CC_NV_ChangeAuth, in, sizeof(in), &off);
	out->size = TPM2_SHA256_DIGEST_SIZE;
	crypto_hash_sha256(out->buffer, in, sizeof(in));
}

/* The public area every sealvault counter is defined with (orderly: the hybrid scheme's). */
static void counter_public(uint32_t index, int orderly, TPM2B_NV_PUBLIC *pub)
{
	*pub = (TPM2B_NV_PUBLIC){
	    .nvPublic =
	        {
	            .nvIndex = index,
	            .nameAlg = TPM2_ALG_SHA256,
	            .attributes = (TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | TPMA_NV_AUTHWRITE |
	                          TPMA_NV_AUTHREAD | TPMA_NV_OWNERREAD | TPMA_NV_NO_DA |
	                          (orderly ? TPMA_NV_ORDERLY : 0),
	            .dataSize = 8,
	        },
	};
	change_auth_policy(&pub->nvPublic.authPolicy);
}

/* Forgets the handle of the attached counter (ESYS metadata only). */
static void detach(struct tpm *t)
{
	if (t->nv != ESYS_TR_NONE)
		(void)Esys_TR_Close(t->ctx, &t->nv);
	t->nv = ESYS_TR_NONE;
}

int tpm_counter_define(struct tpm *t, uint32_t index, int orderly)
{
	TPM2B_AUTH auth = {0};
	TPM2B_NV_PUBLIC pub;
	counter_public(index, orderly, &pub);
	ESYS_TR h = ESYS_TR_NONE;
	TSS2_RC rc = Esys_NV_DefineSpace(t->ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                                 ESYS_TR_NONE, &auth, &pub, &h);
	if (base_rc(rc) == TPM2_RC_NV_DEFINED)
		return SV_ERR_EXISTS;
	if (rc != TSS2_RC_SUCCESS)
		return SV_ERR_TPM;
	detach(t);
	t->nv = h;
	t->nv_index = index;
	return SV_OK;
}

int tpm_counter_undefine(struct tpm *t, uint32_t index)
{
	ESYS_TR h = ESYS_TR_NONE;
	if (t->nv != ESYS_TR_NONE && t->nv_index == index)
		h = t->nv;
	else if (Esys_TR_FromTPMPublic(t->ctx, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                               &h) != TSS2_RC_SUCCESS)
		return SV_ERR_NOTFOUND;
	TSS2_RC rc = Esys_NV_UndefineSpace(t->ctx, ESYS_TR_RH_OWNER, h, ESYS_TR_PASSWORD,
	                                   ESYS_TR_NONE, ESYS_TR_NONE);
	if (rc != TSS2_RC_SUCCESS) {
		if (h != t->nv)
			(void)Esys_TR_Close(t->ctx, &h);
		return SV_ERR_TPM;
	}
	if (h == t->nv)
		t->nv = ESYS_TR_NONE;
	return SV_OK;
}

int tpm_counter_probe(struct tpm *t, uint32_t index, int *shape)
{
	ESYS_TR h = ESYS_TR_NONE;
	TPM2B_NV_PUBLIC *pub = NULL, want;
	*shape = TPM_COUNTER_ABSENT;
	TSS2_RC rc =
	    Esys_TR_FromTPMPublic(t->ctx, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &h);
	if (rc != TSS2_RC_SUCCESS)
		return base_rc(rc) == (TPM2_RC_HANDLE | TPM2_RC_1) || base_rc(rc) == TPM2_RC_HANDLE
		           ? SV_OK
		           : SV_ERR_TPM;
	int r = SV_ERR_TPM;
	if (Esys_NV_ReadPublic(t->ctx, h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL) !=
	    TSS2_RC_SUCCESS)
		goto out;
	counter_public(index, 0, &want);
	TPMA_NV attrs = pub->nvPublic.attributes & ~(TPMA_NV)(TPMA_NV_WRITTEN | TPMA_NV_ORDERLY);
	*shape = attrs == want.nvPublic.attributes &&
	                 pub->nvPublic.authPolicy.size == want.nvPublic.authPolicy.size &&
	                 memcmp(pub->nvPublic.authPolicy.buffer, want.nvPublic.authPolicy.buffer,
	                        want.nvPublic.authPolicy.size) == 0
	             ? TPM_COUNTER_SEALVAULT
	             : TPM_COUNTER_OTHER;
	r = SV_OK;
out:
	Esys_Free(pub);
	if (h != t->nv)
		(void)Esys_TR_Close(t->ctx, &h);
	return r;
}

int tpm_counter_attach(struct tpm *t, uint32_t index, uint8_t name[TPM_NAME_MAX], size_t *name_len)
{
	TPM2B_NAME *n = NULL;
	int r = SV_ERR_TPM;
	if (t->nv != ESYS_TR_NONE && t->nv_index != index)
		detach(t);
	if (t->nv == ESYS_TR_NONE) {
		TSS2_RC rc = Esys_TR_FromTPMPublic(t->ctx, index, ESYS_TR_NONE, ESYS_TR_NONE,
		                                   ESYS_TR_NONE, &t->nv);
		if (rc != TSS2_RC_SUCCESS) {
			t->nv = ESYS_TR_NONE;
			return base_rc(rc) == (TPM2_RC_HANDLE | TPM2_RC_1) ||
			               base_rc(rc) == TPM2_RC_HANDLE
			           ? SV_ERR_NOTFOUND
			           : SV_ERR_TPM;
		}
		t->nv_index = index;
	}
	if (Esys_TR_GetName(t->ctx, t->nv, &n) != TSS2_RC_SUCCESS || n->size > TPM_NAME_MAX)
		goto out;
	memcpy(name, n->name, n->size);
	*name_len = n->size;
	r = SV_OK;
out:
	Esys_Free(n);
	return r;
}

/* The TPM refused the authorization itself (wrong auth value: TPM_RC_AUTH_FAIL in an HMAC
 * session, TPM_RC_BAD_AUTH otherwise), whatever session number it names. */
static int auth_refused(TSS2_RC rc)
{
	TSS2_RC b = base_rc(rc);
	if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER &&
	    (rc & TSS2_RC_LAYER_MASK) != TSS2_RESMGR_TPM_RC_LAYER)
		return 0;
	if (!(b & TPM2_RC_FMT1))
		return 0;
	b &= 0x3f | TPM2_RC_FMT1; /* drop the parameter/handle/session number bits */
	return b == TPM2_RC_AUTH_FAIL || b == TPM2_RC_BAD_AUTH;
}

int tpm_counter_set_auth(struct tpm *t, const uint8_t *auth, size_t len)
{
	TPM2B_AUTH a = {.size = (UINT16)len};
	if (t->nv == ESYS_TR_NONE)
		return SV_ERR_INTERNAL;
	if (len > sizeof(a.buffer))
		return SV_ERR_RANGE;
	if (len > 0)
		memcpy(a.buffer, auth, len);
	TSS2_RC rc = Esys_TR_SetAuth(t->ctx, t->nv, &a);
	sodium_memzero(&a, sizeof(a));
	return esys_err(rc);
}

/* NV_Read of the 8-byte counter, authorized by auth in session. */
static int read_counter(struct tpm *t, ESYS_TR auth, ESYS_TR session, uint64_t *value)
{
	TPM2B_MAX_NV_BUFFER *data = NULL;
	int r = SV_ERR_TPM;
	if (t->nv == ESYS_TR_NONE)
		return SV_ERR_INTERNAL;
	TSS2_RC rc =
	    Esys_NV_Read(t->ctx, auth, t->nv, session, ESYS_TR_NONE, ESYS_TR_NONE, 8, 0, &data);
	if (base_rc(rc) == TPM2_RC_NV_UNINITIALIZED)
		return SV_ERR_NOTFOUND;
	if (auth_refused(rc))
		return SV_ERR_AUTH;
	if (rc != TSS2_RC_SUCCESS || data->size != 8)
		goto out;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | data->buffer[i];
	*value = v;
	r = SV_OK;
out:
	Esys_Free(data);
	return r;
}

int tpm_counter_read(struct tpm *t, uint64_t *value)
{
	if (t->nv != ESYS_TR_NONE && session_attrs(t, 0) != SV_OK)
		return SV_ERR_TPM;
	return read_counter(t, t->nv, t->session, value);
}

int tpm_counter_read_owner(struct tpm *t, uint64_t *value)
{
	/* A password session: no session crypto on the host (tpm2-tss 3.2 spends milliseconds of
	 * CPU on each salted command), and the answer is not authenticated (see tpm.h). */
	return read_counter(t, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, value);
}

void tpm_set_retry_budget(struct tpm *t, unsigned ms)
{
	t->retry_budget_ns = (long long)ms * 1000000LL;
}

/* Sleeps before the next try of a command the TPM answered with the transient code rc; 0 once
 * the retry budget is spent (counted in stats.gave_up). After TPM_RC_NV_RATE the sleep is the
 * TPM's own TPM_PT_NV_WRITE_RECOVERY when it reported one; otherwise, and for the other codes,
 * it grows from 1 ms to 256 ms. */
static int backoff(struct tpm *t, TSS2_RC rc, long *delay, long long *waited)
{
	if (*waited >= t->retry_budget_ns) {
		t->stats.gave_up++;
		return 0;
	}
	long d = *delay;
	if (base_rc(rc) == TPM2_RC_NV_RATE && t->stats.nv_write_recovery_ms > 0)
		d = (long)t->stats.nv_write_recovery_ms * 1000000L;
	else
		*delay = *delay * 2 > RETRY_MAX_NS ? RETRY_MAX_NS : *delay * 2;
	t->stats.retries++;
	struct timespec ts = {.tv_sec = d / 1000000000L, .tv_nsec = d % 1000000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	*waited += d;
	t->stats.backoff_ns += (uint64_t)d;
	return 1;
}

int tpm_counter_increment(struct tpm *t)
{
	long delay = RETRY_FIRST_NS;
	long long waited = 0;
	if (t->nv == ESYS_TR_NONE)
		return SV_ERR_INTERNAL;
	if (session_attrs(t, 0) != SV_OK)
		return SV_ERR_TPM;
	for (;;) {
		TSS2_RC rc =
		    Esys_NV_Increment(t->ctx, t->nv, t->nv, t->session, ESYS_TR_NONE, ESYS_TR_NONE);
		if (rc == TSS2_RC_SUCCESS) {
			t->stats.nv_increments++;
			return SV_OK;
		}
		if (auth_refused(rc))
			return SV_ERR_AUTH;
		if (!retryable(rc))
			return SV_ERR_TPM;
		if (!backoff(t, rc, &delay, &waited))
			return SV_ERR_BUSY; /* not executed: every answer was a transient code */
	}
}

/* One NV_ChangeAuth try: a fresh policy session satisfying PolicyCommandCode(NV_ChangeAuth) is
 * the ADMIN authorization; the salted session rides along as the decrypt session, so newAuth
 * crosses the bus encrypted. */
static TSS2_RC change_auth_once(struct tpm *t, const TPM2B_AUTH *auth)
{
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
	ESYS_TR policy = ESYS_TR_NONE;
	TSS2_RC rc = Esys_StartAuthSession(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                                   ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym,
	                                   TPM2_ALG_SHA256, &policy);
	if (rc != TSS2_RC_SUCCESS)
		return rc;
	/* ESYS starts sessions with continueSession set: clear it, so that the TPM closes the
	 * policy session when NV_ChangeAuth succeeds (swtpm has three session slots). */
	rc = Esys_TRSess_SetAttributes(t->ctx, policy, 0, TPMA_SESSION_CONTINUESESSION);
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_PolicyCommandCode(t->ctx, policy, ESYS_TR_NONE, ESYS_TR_NONE,
		                            ESYS_TR_NONE, TPM2_CC_NV_ChangeAuth);
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_NV_ChangeAuth(t->ctx, t->nv, policy, t->session, ESYS_TR_NONE, auth);
	/* On success the TPM closed the policy session (continueSession was clear). */
	if (rc != TSS2_RC_SUCCESS)
		(void)Esys_FlushContext(t->ctx, policy);
	return rc;
}

int tpm_counter_change_auth(struct tpm *t, const uint8_t *auth, size_t len)
{
	long delay = RETRY_FIRST_NS;
	long long waited = 0;
	TPM2B_AUTH a = {.size = (UINT16)len};
	int r = SV_ERR_TPM;
	if (t->nv == ESYS_TR_NONE)
		return SV_ERR_INTERNAL;
	if (len == 0 || len > sizeof(a.buffer))
		return SV_ERR_RANGE;
	memcpy(a.buffer, auth, len);
	if (session_attrs(t, TPMA_SESSION_DECRYPT) != SV_OK)
		goto out;
	for (;;) {
		TSS2_RC rc = change_auth_once(t, &a);
		if (rc == TSS2_RC_SUCCESS) {
			t->stats.nv_change_auths++;
			r = esys_err(Esys_TR_SetAuth(t->ctx, t->nv, &a));
			break;
		}
		if (!retryable(rc))
			break;
		if (!backoff(t, rc, &delay, &waited)) {
			r = SV_ERR_BUSY;
			break;
		}
	}
out:
	sodium_memzero(&a, sizeof(a));
	if (session_attrs(t, 0) != SV_OK && r == SV_OK)
		r = SV_ERR_TPM;
	return r;
}

int tpm_orderly_count(struct tpm *t, uint32_t *max)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = TPM2_NO;
	TSS2_RC rc =
	    Esys_GetCapability(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                       TPM2_CAP_TPM_PROPERTIES, TPM2_PT_ORDERLY_COUNT, 1, &more, &cap);
	int r = SV_ERR_TPM;
	if (rc == TSS2_RC_SUCCESS && cap->capability == TPM2_CAP_TPM_PROPERTIES &&
	    cap->data.tpmProperties.count == 1 &&
	    cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_ORDERLY_COUNT) {
		*max = cap->data.tpmProperties.tpmProperty[0].value;
		r = SV_OK;
	}
	Esys_Free(cap);
	return r;
}

void tpm_get_stats(const struct tpm *t, struct tpm_stats *out)
{
	*out = t->stats;
}

ESYS_CONTEXT *tpm_esys(struct tpm *t, uint32_t *primary, uint32_t *session)
{
	*primary = t->primary;
	*session = t->session;
	return t->ctx;
}
