#include "enclave/attestsrv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/msg.h"
#include "enclave/attest.h"
#include "enclave/evidence.h"

struct attestsrv {
	struct tpm *tpm;
	struct attest_state st;
	struct attest_policy pol;
	uint8_t stmt[ATTEST_STMT_LEN];
	struct attest_blob stmt_sig;
	struct attest_ek ek; /* held loaded for activation */
};

int attestsrv_open(struct attestsrv **out, struct tpm *t, const char *state_dir,
                   const char *const bins[static ATTEST_NBINARIES],
                   const uint8_t server_pk[static ATTEST_HASH_LEN],
                   const uint8_t policy_hash[static ATTEST_HASH_LEN], char *why, size_t why_len)
{
	struct attestsrv *a = calloc(1, sizeof(*a));
	struct attest_stmt s;
	int r;
	if (a == NULL)
		return SV_ERR_NOMEM;
	a->tpm = t;
	int held = 0;
	r = evidence_load(state_dir, &a->st, &a->pol, why, why_len);
	if (r == SV_ERR_NOTFOUND)
		r = SV_ERR_STATE;
	if (r != SV_OK)
		goto out;
	if ((r = attest_check_ek(t, &a->st, &a->ek, why, why_len)) != SV_OK)
		goto out;
	held = 1;
	if ((r = attest_build_hash_paths(bins, s.build_hash)) != SV_OK) {
		snprintf(
		    why, why_len,
		    "cannot hash the sealvault binaries for the attestation statement (%s, %s, "
		    "%s)",
		    bins[0], bins[1], bins[2]);
		goto out;
	}
	memcpy(s.server_public_key, server_pk, ATTEST_HASH_LEN);
	memcpy(s.policy_hash, policy_hash, ATTEST_HASH_LEN);
	memcpy(s.init_identity, a->st.init_identity, ATTEST_HASH_LEN);
	attest_stmt_encode(a->stmt, &s);
	r = attest_sign_statement(t, &a->st, &a->pol, a->stmt, &a->stmt_sig);
	if (r == SV_ERR_STATE)
		snprintf(
		    why, why_len,
		    "the boot PCRs do not hold the values of the approved policy (another boot "
		    "state, e.g. after a firmware upgrade): the identity key cannot sign; if "
		    "this boot state is trusted, run sealvault-admin authorize-pcrs");
	else if (r != SV_OK)
		snprintf(why, why_len, "the identity key could not sign the attestation statement");
out:
	if (r != SV_OK) {
		if (held)
			attest_ek_release(t, &a->ek);
		free(a);
		return r;
	}
	*out = a;
	return SV_OK;
}

void attestsrv_free(struct attestsrv *a)
{
	if (a == NULL)
		return;
	attest_ek_release(a->tpm, &a->ek);
	free(a);
}

int attestsrv_evidence(struct attestsrv *a, const uint8_t *nonce, size_t nonce_len,
                       struct sv_buf *out)
{
	struct attest_quote *q = malloc(sizeof(*q));
	int r;
	if (q == NULL)
		return SV_ERR_NOMEM;
	if (nonce_len < ATTEST_NONCE_MIN || nonce_len > ATTEST_NONCE_MAX)
		r = SV_ERR_INVALID;
	else if ((r = attest_quote(a->tpm, &a->st, a->pol.boot_pcrs, nonce, nonce_len, q)) == SV_OK)
		r = evidence_json(&a->st, &a->pol, q, nonce, nonce_len, a->stmt, &a->stmt_sig, out);
	free(q);
	return r;
}

int attestsrv_handle(void *arg, uint16_t type, const uint8_t *req, size_t len, struct sv_buf *reply)
{
	struct attestsrv *a = arg;
	int r;
	if (type == SV_MSG_ATTESTATION) {
		if (len < ATTEST_NONCE_MIN || len > ATTEST_NONCE_MAX)
			return msg_reply_text(reply, SV_STATUS_BAD_REQUEST,
			                      "attestation: the nonce must be 8 to 64 bytes");
		if ((r = sv_buf_put_u8(reply, SV_STATUS_OK)) != SV_OK)
			return r;
		r = attestsrv_evidence(a, req, len, reply);
		if (r == SV_OK)
			return SV_OK;
		sv_buf_reset(reply);
		return msg_reply_text(
		    reply, SV_STATUS_INTERNAL,
		    "attestation: the TPM did not produce a quote; see the vault's "
		    "log");
	}
	if (type == SV_MSG_ACTIVATE) {
		uint8_t cred[ATTEST_CRED_MAX];
		size_t n = 0;
		r = attest_activate(a->tpm, &a->st, &a->ek, req, len, cred, &n);
		if (r == SV_ERR_INVALID)
			return msg_reply_text(
			    reply, SV_STATUS_BAD_REQUEST,
			    "attestation/activate: malformed body (v=1, u16 length + "
			    "TPM2B_ID_OBJECT, u16 length + TPM2B_ENCRYPTED_SECRET)");
		if (r == SV_ERR_AUTH)
			return msg_reply_text(
			    reply, SV_STATUS_AUTH_FAILED,
			    "attestation/activate: the TPM refused the credential (not "
			    "made for this TPM's EK and attestation key)");
		if (r != SV_OK)
			return msg_reply_text(reply, SV_STATUS_INTERNAL,
			                      "attestation/activate: TPM failure");
		if ((r = sv_buf_put_u8(reply, SV_STATUS_OK)) != SV_OK)
			return r;
		return sv_buf_put(reply, cred, n);
	}
	return msg_reply_text(reply, SV_STATUS_BAD_REQUEST, "not an attestation request type");
}
