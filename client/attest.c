#include "client/attest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <tss2/tss2_mu.h>

#include "client/eventlog.h"
#include "client/imalog.h"
#include "client/makecred.h"
#include "client/tpmobj.h"
#include "common/err.h"

#define AK_ATTRS                                                                                   \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |        \
	 TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)

/* Everything the checks derive, kept between them. */
struct run {
	struct client_attest_result *res;
	const struct client_expect *exp;
	const struct client_evidence *ev;
	TPM2B_PUBLIC ek, ak, id, k;
	uint8_t ek_name[ATTEST_NAME_LEN], ak_name[ATTEST_NAME_LEN], id_name[ATTEST_NAME_LEN];
	uint8_t k_name[ATTEST_NAME_LEN];
	EVP_PKEY *ak_key, *id_key, *k_key;
	TPMS_ATTEST quote, certify;
	uint32_t quote_mask;
	size_t boot_events, ima_entries;
};

static int failed(struct run *c, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failed(struct run *c, const char *check, const char *fmt, ...)
{
	va_list ap;
	c->res->check = check;
	va_start(ap, fmt);
	vsnprintf(c->res->reason, sizeof(c->res->reason), fmt, ap);
	va_end(ap);
	return SV_ERR_AUTH;
}

/* The quoted values of the PCRs in mask, lowest first (attest_pcr_digest's layout). */
static void compact(uint32_t mask, const uint8_t by_pcr[ATTEST_PCR_COUNT][ATTEST_HASH_LEN],
                    uint8_t out[ATTEST_PCR_COUNT][ATTEST_HASH_LEN])
{
	unsigned n = 0;
	for (unsigned i = 0; i < ATTEST_PCR_COUNT; i++)
		if (mask & (1u << i))
			memcpy(out[n++], by_pcr[i], ATTEST_HASH_LEN);
}

static int eq(const uint8_t *a, const uint8_t *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

static int check_ek_chain(struct run *c, const char *const *extra, size_t n_extra)
{
	const char *pems[CLIENT_EXPECT_CA_MAX * 2];
	size_t n = 0;
	char why[512];
	if (client_tpmobj_public(&c->ek, c->ek_name, c->ev->ek_public.data, c->ev->ek_public.len))
		return failed(c, CLIENT_ATTEST_EK_CHAIN, "ek_public is not a TPM2B_PUBLIC");
	if (client_tpmobj_ek_template(&c->ek, why, sizeof(why)) != SV_OK)
		return failed(c, CLIENT_ATTEST_EK_CHAIN, "%s", why);
	for (size_t i = 0; i < c->exp->n_ca && n < CLIENT_EXPECT_CA_MAX; i++)
		pems[n++] = c->exp->ca[i];
	for (size_t i = 0; i < n_extra && n < CLIENT_EXPECT_CA_MAX * 2; i++)
		pems[n++] = extra[i];
	int r = client_tpmobj_ek_chain(c->ev->ek_cert, c->ev->ek_cert_len, pems, n, &c->ek, why,
	                               sizeof(why));
	if (r == SV_ERR_NOMEM)
		return r;
	if (r != SV_OK)
		return failed(c, CLIENT_ATTEST_EK_CHAIN, "%s", why);
	return SV_OK;
}

static int check_ak_binding(struct run *c, client_attest_activate_fn activate, void *arg)
{
	const TPMT_PUBLIC *a = &c->ak.publicArea;
	uint8_t cred[CLIENT_ATTEST_CRED_LEN], seed[32], answer[CLIENT_ATTEST_ANSWER_MAX];
	size_t answer_len = 0;
	struct sv_buf body;
	char why[400] = "";
	int r;

	if (client_tpmobj_public(&c->ak, c->ak_name, c->ev->ak_public.data, c->ev->ak_public.len))
		return failed(c, CLIENT_ATTEST_AK_BINDING, "ak_public is not a TPM2B_PUBLIC");
	if (a->type != TPM2_ALG_ECC || a->nameAlg != TPM2_ALG_SHA256 ||
	    (a->objectAttributes & AK_ATTRS) != AK_ATTRS ||
	    (a->objectAttributes & TPMA_OBJECT_DECRYPT) ||
	    a->parameters.eccDetail.scheme.scheme != TPM2_ALG_ECDSA ||
	    a->parameters.eccDetail.scheme.details.ecdsa.hashAlg != TPM2_ALG_SHA256 ||
	    client_tpmobj_ecc_key(&c->ak_key, &c->ak) != SV_OK)
		return failed(
		    c, CLIENT_ATTEST_AK_BINDING,
		    "the AK is not a restricted, fixedTPM ECDSA P-256 signing key, so its "
		    "quotes need not come from a TPM");
	randombytes_buf(cred, sizeof(cred));
	randombytes_buf(seed, sizeof(seed));
	if ((r = sv_buf_init(&body, 1024)) != 0)
		return r;
	r = client_makecred(&body, &c->ek, c->ak_name, cred, sizeof(cred), seed);
	sodium_memzero(seed, sizeof(seed));
	if (r != SV_OK) {
		sv_buf_free(&body);
		return failed(c, CLIENT_ATTEST_AK_BINDING,
		              "cannot make a credential for this EK (%s)", sv_strerror(r));
	}
	r = activate(arg, body.data, body.len, answer, &answer_len, why, sizeof(why));
	sv_buf_free(&body);
	if (r == SV_ERR_AUTH)
		return failed(c, CLIENT_ATTEST_AK_BINDING,
		              "the server's TPM could not activate a credential made for this EK "
		              "and AK (%s): the AK is not a key of the TPM whose EK was shown",
		              why);
	if (r != SV_OK) {
		snprintf(c->res->reason, sizeof(c->res->reason), "credential activation: %s", why);
		return r;
	}
	if (answer_len != sizeof(cred) || !eq(answer, cred, sizeof(cred)))
		return failed(c, CLIENT_ATTEST_AK_BINDING,
		              "the server answered the credential challenge wrongly: the AK is not "
		              "a key of the TPM whose EK was shown");
	return SV_OK;
}

/* A TPMS_ATTEST signed by the AK: magic, type and signature. */
static int ak_signed(struct run *c, TPMS_ATTEST *at, const struct client_evidence_bin *body,
                     const struct client_evidence_bin *sig, TPM2_ST type, const char *check,
                     const char *what)
{
	uint8_t digest[32];
	if (client_tpmobj_attest(at, body->data, body->len) != SV_OK)
		return failed(c, check, "the %s is not a TPMS_ATTEST", what);
	if (at->magic != TPM2_GENERATED_VALUE || at->type != type)
		return failed(c, check, "the %s is not a TPM-generated %s structure", what,
		              type == TPM2_ST_ATTEST_QUOTE ? "quote" : "certify");
	crypto_hash_sha256(digest, body->data, body->len);
	int r = client_tpmobj_verify(c->ak_key, digest, sig->data, sig->len);
	if (r == SV_ERR_NOMEM || r == SV_ERR_INTERNAL)
		return r;
	if (r != SV_OK)
		return failed(c, check, "the %s's signature is not the AK's (%s)", what,
		              r == SV_ERR_INVALID ? "not an ECDSA-SHA256 TPMT_SIGNATURE"
		                                  : "it does not verify");
	return SV_OK;
}

static int check_quote_pcrs(struct run *c)
{
	uint8_t sel[64], vals[ATTEST_PCR_COUNT][ATTEST_HASH_LEN], digest[32];
	size_t off = 0;
	uint32_t want = c->exp->boot_pcrs | (1u << ATTEST_PCR_IMA);
	const TPMS_QUOTE_INFO *q = &c->quote.attested.quote;
	char list[100];

	if (Tss2_MU_TPML_PCR_SELECTION_Marshal(&q->pcrSelect, sel, sizeof(sel), &off) != 0 ||
	    attest_pcrsel_parse(sel, off, &c->quote_mask) != SV_OK)
		return failed(c, CLIENT_ATTEST_QUOTE_PCRS,
		              "the quote does not select PCRs of the SHA-256 bank only");
	if (c->quote_mask != want) {
		if (attest_pcrs_format(want, list, sizeof(list)) != SV_OK)
			list[0] = '\0';
		return failed(c, CLIENT_ATTEST_QUOTE_PCRS,
		              "the quote covers other PCRs than the expected boot selection and 10 "
		              "(%s)",
		              list);
	}
	if (c->ev->quote_pcrs != want)
		return failed(c, CLIENT_ATTEST_QUOTE_PCRS,
		              "quote.pcrs lists other PCRs than the quote selects");
	compact(want, c->ev->quote_values, vals);
	attest_pcr_digest(want, (const uint8_t(*)[ATTEST_HASH_LEN])vals, digest);
	if (q->pcrDigest.size != 32 || !eq(q->pcrDigest.buffer, digest, 32))
		return failed(c, CLIENT_ATTEST_QUOTE_PCRS,
		              "the PCR values sent do not hash to the quoted PCR digest");
	return SV_OK;
}

static int check_boot_pcrs(struct run *c)
{
	struct client_eventlog_replay rp;
	char why[300];
	const struct client_evidence *ev = c->ev;
	if (ev->event_log == NULL && !c->exp->has_boot_values)
		return failed(c, CLIENT_ATTEST_BOOT_PCRS,
		              "the server sent no boot event log and the expect file has no "
		              "boot_pcr_values: nothing says what booted");
	if (ev->event_log != NULL) {
		if (client_eventlog_replay(&rp, ev->event_log, ev->event_log_len, why,
		                           sizeof(why)) != SV_OK)
			return failed(c, CLIENT_ATTEST_BOOT_PCRS, "%s", why);
		for (unsigned i = 0; i < ATTEST_PCR_COUNT; i++)
			if ((c->exp->boot_pcrs & (1u << i)) &&
			    !eq(rp.pcr[i], ev->quote_values[i], ATTEST_HASH_LEN))
				return failed(c, CLIENT_ATTEST_BOOT_PCRS,
				              "PCR %u does not replay from the boot event log: the "
				              "log is not the record of this boot",
				              i);
		c->boot_events = rp.events;
	}
	if (c->exp->has_boot_values)
		for (unsigned i = 0; i < ATTEST_PCR_COUNT; i++)
			if ((c->exp->boot_pcrs & (1u << i)) &&
			    !eq(c->exp->boot_values[i], ev->quote_values[i], ATTEST_HASH_LEN))
				return failed(c, CLIENT_ATTEST_BOOT_PCRS,
				              "PCR %u differs from boot_pcr_values of the expect "
				              "file: the host booted other firmware or boot loader",
				              i);
	return SV_OK;
}

static int allow_cb(void *arg, const uint8_t sha256[32], const char *path)
{
	return client_expect_allowed(arg, sha256, path);
}

static int check_ima(struct run *c)
{
	struct client_imalog_result ir;
	char why[512];
	if (c->ev->ima_log == NULL)
		return failed(c, CLIENT_ATTEST_IMA,
		              "the server sent no IMA log, so nothing shows what ran on the host "
		              "(boot it with IMA: ima_policy=tcb ima_hash=sha256)");
	static const uint8_t zero[ATTEST_HASH_LEN];
	if (eq(c->ev->quote_values[ATTEST_PCR_IMA], zero, ATTEST_HASH_LEN))
		return failed(c, CLIENT_ATTEST_IMA,
		              "PCR 10 is zero: IMA does not run on the host, so nothing shows what "
		              "ran there (boot it with ima_policy=tcb ima_hash=sha256)");
	int r = client_imalog_check(&ir, c->ev->ima_log, c->ev->ima_log_len,
	                            c->ev->quote_values[ATTEST_PCR_IMA], allow_cb, (void *)c->exp,
	                            why, sizeof(why));
	if (r != SV_OK)
		return failed(c, CLIENT_ATTEST_IMA, "%s", why);
	c->ima_entries = ir.entries;
	return SV_OK;
}

static int check_identity_cert(struct run *c)
{
	uint8_t init_id[ATTEST_HASH_LEN];
	const TPMS_CERTIFY_INFO *ci = &c->certify.attested.certify;
	if (client_tpmobj_public(&c->id, c->id_name, c->ev->id_public.data, c->ev->id_public.len))
		return failed(c, CLIENT_ATTEST_ID_CERT, "identity.public is not a TPM2B_PUBLIC");
	int r = ak_signed(c, &c->certify, &c->ev->certify_attest, &c->ev->certify_signature,
	                  TPM2_ST_ATTEST_CERTIFY, CLIENT_ATTEST_ID_CERT, "identity certification");
	if (r != SV_OK)
		return r;
	if (ci->name.size != ATTEST_NAME_LEN || !eq(ci->name.name, c->id_name, ATTEST_NAME_LEN))
		return failed(c, CLIENT_ATTEST_ID_CERT,
		              "the AK certified another key than the identity key shown");
	attest_init_identity(c->ek_name, c->ak_name, c->id_name, init_id);
	if (c->certify.extraData.size != ATTEST_HASH_LEN ||
	    !eq(c->certify.extraData.buffer, init_id, ATTEST_HASH_LEN))
		return failed(c, CLIENT_ATTEST_ID_CERT,
		              "the certification was not made for this EK, AK and identity key "
		              "(qualifyingData is not init_identity)");
	return SV_OK;
}

static int check_identity_policy(struct run *c)
{
	const TPMT_PUBLIC *t = &c->id.publicArea;
	uint8_t want[ATTEST_HASH_LEN], ahash[ATTEST_HASH_LEN];
	uint8_t vals[ATTEST_PCR_COUNT][ATTEST_HASH_LEN];
	TPMA_OBJECT need = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                   TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_SIGN_ENCRYPT |
	                   TPMA_OBJECT_ADMINWITHPOLICY;
	if (t->type != TPM2_ALG_ECC || t->nameAlg != TPM2_ALG_SHA256 ||
	    (t->objectAttributes & need) != need ||
	    client_tpmobj_ecc_key(&c->id_key, &c->id) != SV_OK)
		return failed(c, CLIENT_ATTEST_ID_POLICY,
		              "the identity key is not a fixedTPM ECDSA P-256 signing key whose "
		              "admin role needs its policy");
	if (t->objectAttributes & TPMA_OBJECT_USERWITHAUTH)
		return failed(c, CLIENT_ATTEST_ID_POLICY,
		              "the identity key has userWithAuth set: it signs with a password "
		              "instead of only through its boot-state policy");
	if (client_tpmobj_public(&c->k, c->k_name, c->ev->policy_key.data, c->ev->policy_key.len) ||
	    client_tpmobj_ecc_key(&c->k_key, &c->k) != SV_OK)
		return failed(c, CLIENT_ATTEST_ID_POLICY,
		              "identity.policy_key is not an ECC P-256 TPM2B_PUBLIC");
	attest_policy_authorize(c->k_name, want);
	if (t->authPolicy.size != ATTEST_HASH_LEN || !eq(t->authPolicy.buffer, want, 32))
		return failed(c, CLIENT_ATTEST_ID_POLICY,
		              "the identity key's policy is not PolicyAuthorize(policy key): it "
		              "does not require the boot PCRs");
	compact(c->exp->boot_pcrs, c->ev->quote_values, vals);
	attest_policy_pcr(c->exp->boot_pcrs, (const uint8_t(*)[ATTEST_HASH_LEN])vals, want);
	if (!eq(c->ev->approved_policy, want, ATTEST_HASH_LEN))
		return failed(c, CLIENT_ATTEST_ID_POLICY,
		              "the approved policy is not PolicyPCR over the expected boot PCRs "
		              "with their quoted values: the identity key cannot sign in this boot "
		              "state (run sealvault-admin authorize-pcrs after a firmware change)");
	attest_policy_ahash(c->ev->approved_policy, ahash);
	int r = client_tpmobj_verify(c->k_key, ahash, c->ev->policy_signature.data,
	                             c->ev->policy_signature.len);
	if (r == SV_ERR_NOMEM || r == SV_ERR_INTERNAL)
		return r;
	if (r != SV_OK)
		return failed(c, CLIENT_ATTEST_ID_POLICY,
		              "the approved policy is not signed by the policy key");
	return SV_OK;
}

static int check_statement(struct run *c)
{
	uint8_t digest[32], init_id[ATTEST_HASH_LEN];
	crypto_hash_sha256(digest, c->ev->statement, ATTEST_STMT_LEN);
	int r = client_tpmobj_verify(c->id_key, digest, c->ev->statement_signature.data,
	                             c->ev->statement_signature.len);
	if (r == SV_ERR_NOMEM || r == SV_ERR_INTERNAL)
		return r;
	if (r != SV_OK)
		return failed(c, CLIENT_ATTEST_STMT_SIGNATURE,
		              "the statement is not signed by the identity key");
	if (attest_stmt_decode(&c->res->stmt, c->ev->statement, ATTEST_STMT_LEN) != SV_OK)
		return failed(c, CLIENT_ATTEST_STMT_SIGNATURE,
		              "the signed statement is not a sealvault-stmt-1 statement");
	attest_init_identity(c->ek_name, c->ak_name, c->id_name, init_id);
	if (!eq(c->res->stmt.init_identity, init_id, ATTEST_HASH_LEN))
		return failed(c, CLIENT_ATTEST_STMT_SIGNATURE,
		              "the statement names another TPM identity (init_identity) than the "
		              "EK, AK and identity key shown");
	return SV_OK;
}

static void hex8(char out[17], const uint8_t *p)
{
	sodium_bin2hex(out, 17, p, 8);
}

static int run_checks(struct run *c, const char *const *extra, size_t n_extra, const uint8_t *nonce,
                      size_t nonce_len, client_attest_activate_fn activate, void *arg)
{
	int r;
	if ((r = check_ek_chain(c, extra, n_extra)) != SV_OK ||
	    (r = check_ak_binding(c, activate, arg)) != SV_OK ||
	    (r = ak_signed(c, &c->quote, &c->ev->quote_attest, &c->ev->quote_signature,
	                   TPM2_ST_ATTEST_QUOTE, CLIENT_ATTEST_QUOTE_SIGNATURE, "quote")) != SV_OK)
		return r;
	if (nonce == NULL || c->quote.extraData.size != nonce_len ||
	    !eq(c->quote.extraData.buffer, nonce, nonce_len))
		return failed(c, CLIENT_ATTEST_NONCE,
		              "the quote was made for another nonce: it is old (replayed) or for "
		              "someone else");
	if ((r = check_quote_pcrs(c)) != SV_OK || (r = check_boot_pcrs(c)) != SV_OK ||
	    (r = check_ima(c)) != SV_OK || (r = check_identity_cert(c)) != SV_OK ||
	    (r = check_identity_policy(c)) != SV_OK || (r = check_statement(c)) != SV_OK)
		return r;
	const struct attest_stmt *s = &c->res->stmt;
	if (c->exp->has_server_key && !eq(s->server_public_key, c->exp->server_key, 32))
		return failed(c, CLIENT_ATTEST_SERVER_KEY,
		              "the vault's OPAQUE server key is not the expect file's "
		              "server_public_key: this is another vault");
	if (!eq(s->policy_hash, c->exp->policy_hash, 32))
		return failed(c, CLIENT_ATTEST_POLICY_HASH,
		              "the vault runs another policy (guess limits, budgets) than the "
		              "expect file's policy_hash");
	if (!eq(s->build_hash, c->exp->build_hash, 32))
		return failed(c, CLIENT_ATTEST_BUILD_HASH,
		              "the vault runs other sealvault binaries than the expect file's "
		              "build_hash");
	char key[17], pol[17], build[17], pcrs[100];
	hex8(key, s->server_public_key);
	hex8(pol, s->policy_hash);
	hex8(build, s->build_hash);
	if (attest_pcrs_format(c->exp->boot_pcrs, pcrs, sizeof(pcrs)) != SV_OK)
		pcrs[0] = '\0';
	snprintf(c->res->summary, sizeof(c->res->summary),
	         "genuine TPM (EK certificate chains to the TPM CA), boot PCRs %s %s, IMA %zu "
	         "entries allowed, server key %s..., policy %s..., build %s...",
	         pcrs, c->ev->event_log ? "replayed from the event log" : "as expected",
	         c->ima_entries, key, pol, build);
	return SV_OK;
}

int client_attest_verify(struct client_attest_result *res, const struct client_expect *exp,
                         const char *const *extra_ca, size_t n_extra,
                         const struct client_evidence *ev, const uint8_t *nonce, size_t nonce_len,
                         client_attest_activate_fn activate, void *arg)
{
	struct run *c = calloc(1, sizeof(*c));
	memset(res, 0, sizeof(*res));
	if (c == NULL) {
		snprintf(res->reason, sizeof(res->reason), "out of memory");
		return SV_ERR_NOMEM;
	}
	c->res = res;
	c->exp = exp;
	c->ev = ev;
	int r = run_checks(c, extra_ca, n_extra, nonce, nonce_len, activate, arg);
	if (r != SV_OK && res->check == NULL && res->reason[0] == '\0')
		snprintf(res->reason, sizeof(res->reason), "verification stopped: %s",
		         sv_strerror(r));
	if (r != SV_OK)
		memset(&res->stmt, 0, sizeof(res->stmt));
	EVP_PKEY_free(c->ak_key);
	EVP_PKEY_free(c->id_key);
	EVP_PKEY_free(c->k_key);
	free(c);
	return r;
}
