#include "client/evidence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/jfield.h"
#include "common/err.h"

#define DEPTH 8

static int bin(json_object *o, const char *name, struct client_evidence_bin *b, char *why,
               size_t why_len)
{
	return client_jfield_b64(o, name, b->data, sizeof(b->data), &b->len, why, why_len);
}

static int decode_quote(struct client_evidence *ev, json_object *root, char *why, size_t why_len)
{
	json_object *q;
	int r;
	if ((r = client_jfield_obj(root, "quote", &q, why, why_len)) != SV_OK ||
	    (r = bin(q, "attest", &ev->quote_attest, why, why_len)) != SV_OK ||
	    (r = bin(q, "signature", &ev->quote_signature, why, why_len)) != SV_OK ||
	    (r = client_jfield_pcr_map(q, "pcrs", &ev->quote_pcrs, ev->quote_values, why,
	                               why_len)) != SV_OK)
		return r;
	return SV_OK;
}

static int decode_identity(struct client_evidence *ev, json_object *root, char *why, size_t why_len)
{
	json_object *id;
	int r;
	if ((r = client_jfield_obj(root, "identity", &id, why, why_len)) != SV_OK ||
	    (r = bin(id, "public", &ev->id_public, why, why_len)) != SV_OK ||
	    (r = bin(id, "certify_attest", &ev->certify_attest, why, why_len)) != SV_OK ||
	    (r = bin(id, "certify_signature", &ev->certify_signature, why, why_len)) != SV_OK ||
	    (r = bin(id, "policy_key", &ev->policy_key, why, why_len)) != SV_OK ||
	    (r = client_jfield_pcr_list(id, "boot_pcrs", &ev->boot_pcrs, why, why_len)) != SV_OK ||
	    (r = client_jfield_hex(id, "approved_policy", ev->approved_policy, 32, 32, NULL, why,
	                           why_len)) != SV_OK ||
	    (r = client_jfield_pcr_map(id, "approved_pcrs", &ev->approved_pcrs, ev->approved_values,
	                               why, why_len)) != SV_OK ||
	    (r = bin(id, "policy_signature", &ev->policy_signature, why, why_len)) != SV_OK)
		return r;
	return SV_OK;
}

static int decode_statement(struct client_evidence *ev, json_object *root, char *why,
                            size_t why_len)
{
	json_object *st;
	size_t n = 0;
	int r;
	if ((r = client_jfield_obj(root, "statement", &st, why, why_len)) != SV_OK ||
	    (r = client_jfield_b64(st, "body", ev->statement, sizeof(ev->statement), &n, why,
	                           why_len)) != SV_OK ||
	    (r = bin(st, "signature", &ev->statement_signature, why, why_len)) != SV_OK)
		return r;
	if (n != ATTEST_STMT_LEN) {
		snprintf(why, why_len, "member \"body\": the statement is not %d bytes",
		         ATTEST_STMT_LEN);
		return SV_ERR_INVALID;
	}
	return SV_OK;
}

static int decode(struct client_evidence *ev, json_object *root, char *why, size_t why_len)
{
	int r;
	if ((r = client_jfield_version(root, 1, why, why_len)) != SV_OK ||
	    (r = client_jfield_hex(root, "nonce", ev->nonce, CLIENT_EVIDENCE_NONCE_MIN,
	                           CLIENT_EVIDENCE_NONCE_MAX, &ev->nonce_len, why, why_len)) !=
	        SV_OK ||
	    (r = bin(root, "ek_public", &ev->ek_public, why, why_len)) != SV_OK ||
	    (r = bin(root, "ak_public", &ev->ak_public, why, why_len)) != SV_OK)
		return r;
	if (!client_jfield_absent(root, "ek_certificate") &&
	    (r = client_jfield_b64(root, "ek_certificate", ev->ek_cert, sizeof(ev->ek_cert),
	                           &ev->ek_cert_len, why, why_len)) != SV_OK)
		return r;
	if ((r = decode_quote(ev, root, why, why_len)) != SV_OK ||
	    (r = decode_identity(ev, root, why, why_len)) != SV_OK ||
	    (r = decode_statement(ev, root, why, why_len)) != SV_OK)
		return r;
	if (!client_jfield_absent(root, "event_log") &&
	    (r = client_jfield_b64_alloc(root, "event_log", &ev->event_log, CLIENT_EVIDENCE_LOG_MAX,
	                                 &ev->event_log_len, why, why_len)) != SV_OK)
		return r;
	uint8_t *ima = NULL;
	if (!client_jfield_absent(root, "ima_log") &&
	    (r = client_jfield_b64_alloc(root, "ima_log", &ima, CLIENT_EVIDENCE_LOG_MAX,
	                                 &ev->ima_log_len, why, why_len)) != SV_OK)
		return r;
	ev->ima_log = (char *)ima;
	return SV_OK;
}

int client_evidence_decode(struct client_evidence *ev, const char *json, size_t len, char *why,
                           size_t why_len)
{
	json_object *root = NULL;
	memset(ev, 0, sizeof(*ev));
	if (len > CLIENT_EVIDENCE_JSON_MAX) {
		snprintf(why, why_len, "the evidence is larger than %u bytes",
		         CLIENT_EVIDENCE_JSON_MAX);
		return SV_ERR_RANGE;
	}
	int r = client_jfield_parse(&root, json, len, DEPTH, why, why_len);
	if (r == SV_OK)
		r = decode(ev, root, why, why_len);
	json_object_put(root);
	if (r != SV_OK)
		client_evidence_clear(ev);
	return r;
}

void client_evidence_clear(struct client_evidence *ev)
{
	free(ev->event_log);
	free(ev->ima_log);
	ev->event_log = NULL;
	ev->ima_log = NULL;
	ev->event_log_len = ev->ima_log_len = 0;
}
