#include "enclave/evidence.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "common/err.h"
#include "enclave/approval.h"

#define MAGIC_STATE  "SVATTST1"
#define MAGIC_POLICY "SVATPOL1"
#define MAGIC_LEN    8
#define FILE_MAX     APPROVAL_FILE_MAX

static int put_blob(struct sv_buf *b, const uint8_t *p, size_t n)
{
	return sv_buf_put_str16(b, p, n);
}

static int encode_state(const struct attest_state *st, struct sv_buf *b)
{
	const struct attest_blob *blobs[] = {
	    &st->ak_public,      &st->ak_private,        &st->id_public, &st->id_private,
	    &st->certify_attest, &st->certify_signature, &st->policy_key};
	int r = sv_buf_put(b, MAGIC_STATE, MAGIC_LEN);
	if (r == SV_OK)
		r = put_blob(b, st->ek_public.data, st->ek_public.len);
	if (r == SV_OK)
		r = put_blob(b, st->ek_cert, st->ek_cert_len);
	for (size_t i = 0; r == SV_OK && i < sizeof(blobs) / sizeof(blobs[0]); i++)
		r = put_blob(b, blobs[i]->data, blobs[i]->len);
	return r;
}

int evidence_decode_state(const uint8_t *p, size_t len, struct attest_state *st)
{
	struct attest_blob *blobs[] = {&st->ak_public,  &st->ak_private,     &st->id_public,
	                               &st->id_private, &st->certify_attest, &st->certify_signature,
	                               &st->policy_key};
	struct sv_buf b;
	uint8_t magic[MAGIC_LEN];
	const uint8_t *cert;
	size_t cert_len;
	memset(st, 0, sizeof(*st));
	sv_buf_from(&b, p, len);
	if (sv_buf_get(&b, magic, MAGIC_LEN) != SV_OK ||
	    memcmp(magic, MAGIC_STATE, MAGIC_LEN) != 0 ||
	    approval_get_blob(&b, &st->ek_public) != SV_OK ||
	    sv_buf_get_str16(&b, ATTEST_CERT_MAX, &cert, &cert_len) != SV_OK)
		return SV_ERR_INVALID;
	memcpy(st->ek_cert, cert, cert_len);
	st->ek_cert_len = cert_len;
	for (size_t i = 0; i < sizeof(blobs) / sizeof(blobs[0]); i++)
		if (approval_get_blob(&b, blobs[i]) != SV_OK)
			return SV_ERR_INVALID;
	if (sv_buf_expect_end(&b) != SV_OK ||
	    attest_name_from_public(st->ek_public.data, st->ek_public.len, st->ek_name) != SV_OK ||
	    attest_name_from_public(st->ak_public.data, st->ak_public.len, st->ak_name) != SV_OK ||
	    attest_name_from_public(st->id_public.data, st->id_public.len, st->id_name) != SV_OK)
		return SV_ERR_INVALID;
	attest_init_identity(st->ek_name, st->ak_name, st->id_name, st->init_identity);
	return SV_OK;
}

static int encode_policy(const struct attest_policy *pol, struct sv_buf *b)
{
	int r = sv_buf_put(b, MAGIC_POLICY, MAGIC_LEN);
	return r == SV_OK ? approval_encode(pol, b) : r;
}

int evidence_decode_policy(const uint8_t *p, size_t len, struct attest_policy *pol)
{
	struct sv_buf b;
	uint8_t magic[MAGIC_LEN];
	memset(pol, 0, sizeof(*pol));
	sv_buf_from(&b, p, len);
	if (sv_buf_get(&b, magic, MAGIC_LEN) != SV_OK ||
	    memcmp(magic, MAGIC_POLICY, MAGIC_LEN) != 0 || approval_decode(&b, pol) != SV_OK ||
	    sv_buf_expect_end(&b) != SV_OK)
		return SV_ERR_INVALID;
	return SV_OK;
}

int evidence_save(const char *dir, const struct attest_state *st, const struct attest_policy *pol,
                  char *why, size_t why_len)
{
	struct sv_buf a, p;
	int dfd = -1, r, created = 0;
	if ((r = sv_buf_init(&a, FILE_MAX)) != SV_OK || (r = sv_buf_init(&p, FILE_MAX)) != SV_OK)
		return r;
	if ((r = encode_state(st, &a)) != SV_OK || (r = encode_policy(pol, &p)) != SV_OK) {
		snprintf(why, why_len, "attestation evidence does not encode: %s", sv_strerror(r));
		goto out;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(why, why_len, "cannot create state directory %s: %s", dir,
		         strerror(errno));
		r = SV_ERR_IO;
		goto out;
	}
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(why, why_len, "cannot open state directory %s: %s", dir, strerror(errno));
		r = SV_ERR_IO;
		goto out;
	}
	if ((r = approval_write(dfd, dir, EVIDENCE_FN_STATE, &a, 1, why, why_len)) != SV_OK)
		goto out;
	created = 1;
	if ((r = approval_write(dfd, dir, EVIDENCE_FN_POLICY, &p, 1, why, why_len)) != SV_OK)
		goto out;
	r = fsync(dfd) == 0 ? SV_OK : SV_ERR_IO;
out:
	if (r != SV_OK && created)
		(void)unlinkat(dfd, EVIDENCE_FN_STATE, 0);
	if (dfd >= 0)
		close(dfd);
	sv_buf_free(&a);
	sv_buf_free(&p);
	return r;
}

int evidence_save_policy(const char *dir, const struct attest_policy *pol, char *why,
                         size_t why_len)
{
	struct sv_buf p;
	int dfd = -1, r;
	if ((r = sv_buf_init(&p, FILE_MAX)) != SV_OK)
		return r;
	if ((r = encode_policy(pol, &p)) != SV_OK)
		goto out;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(why, why_len, "cannot open state directory %s: %s", dir, strerror(errno));
		r = SV_ERR_IO;
		goto out;
	}
	r = approval_replace(dfd, dir, EVIDENCE_FN_POLICY, &p, why, why_len);
out:
	if (dfd >= 0)
		close(dfd);
	sv_buf_free(&p);
	return r;
}

void evidence_remove(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	(void)unlinkat(dfd, EVIDENCE_FN_STATE, 0);
	(void)unlinkat(dfd, EVIDENCE_FN_POLICY, 0);
	close(dfd);
}

int evidence_load(const char *dir, struct attest_state *st, struct attest_policy *pol, char *why,
                  size_t why_len)
{
	uint8_t *buf = malloc(FILE_MAX);
	size_t n;
	int dfd = -1, r = SV_ERR_NOMEM;
	if (buf == NULL)
		goto out;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(why, why_len, "cannot open state directory %s: %s", dir, strerror(errno));
		r = SV_ERR_IO;
		goto out;
	}
	if ((r = approval_read(dfd, dir, EVIDENCE_FN_STATE, buf, FILE_MAX, &n, why, why_len)) !=
	    SV_OK)
		goto out;
	if ((r = evidence_decode_state(buf, n, st)) != SV_OK) {
		snprintf(why, why_len, "%s/%s is damaged (does not decode)", dir,
		         EVIDENCE_FN_STATE);
		goto out;
	}
	if ((r = approval_read(dfd, dir, EVIDENCE_FN_POLICY, buf, FILE_MAX, &n, why, why_len)) !=
	    SV_OK)
		goto out;
	if ((r = evidence_decode_policy(buf, n, pol)) != SV_OK)
		snprintf(why, why_len,
		         "%s/%s is damaged (does not decode, or its digest does not match its "
		         "PCR values); run sealvault-admin authorize-pcrs",
		         dir, EVIDENCE_FN_POLICY);
out:
	if (dfd >= 0)
		close(dfd);
	free(buf);
	return r;
}

/* ---- JSON ---- */

static int add_b64(struct json_object *o, const char *key, const uint8_t *p, size_t n)
{
	size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(cap);
	if (s == NULL)
		return SV_ERR_NOMEM;
	sodium_bin2base64(s, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
	struct json_object *v = json_object_new_string(s);
	free(s);
	if (v == NULL || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return SV_ERR_NOMEM;
	}
	return SV_OK;
}

static int add_hex(struct json_object *o, const char *key, const uint8_t *p, size_t n)
{
	char s[2 * ATTEST_NONCE_MAX + 1];
	if (n > ATTEST_NONCE_MAX)
		return SV_ERR_RANGE;
	sodium_bin2hex(s, sizeof(s), p, n);
	struct json_object *v = json_object_new_string(s);
	if (v == NULL || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return SV_ERR_NOMEM;
	}
	return SV_OK;
}

static int add_obj(struct json_object *o, const char *key, struct json_object *v)
{
	if (v == NULL || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return SV_ERR_NOMEM;
	}
	return SV_OK;
}

static struct json_object *pcr_map(uint32_t mask, const uint8_t values[][ATTEST_HASH_LEN])
{
	struct json_object *m = json_object_new_object();
	for (unsigned i = 0, k = 0; m != NULL && i < ATTEST_PCR_COUNT; i++) {
		if (!(mask & (1u << i)))
			continue;
		char key[4];
		snprintf(key, sizeof(key), "%u", i);
		if (add_hex(m, key, values[k++], ATTEST_HASH_LEN) != SV_OK) {
			json_object_put(m);
			return NULL;
		}
	}
	return m;
}

static struct json_object *pcr_list(uint32_t mask)
{
	struct json_object *a = json_object_new_array();
	for (unsigned i = 0; a != NULL && i < ATTEST_PCR_COUNT; i++)
		if ((mask & (1u << i)) && json_object_array_add(a, json_object_new_int((int)i))) {
			json_object_put(a);
			return NULL;
		}
	return a;
}

int evidence_json(const struct attest_state *st, const struct attest_policy *pol,
                  const struct attest_quote *q, const uint8_t *nonce, size_t nonce_len,
                  const uint8_t stmt_body[ATTEST_STMT_LEN], const struct attest_blob *stmt_sig,
                  struct sv_buf *out)
{
	struct json_object *root = json_object_new_object();
	struct json_object *quote = json_object_new_object();
	struct json_object *ident = json_object_new_object();
	struct json_object *stmt = json_object_new_object();
	struct attest_stmt s;
	int r = SV_ERR_NOMEM;
	if (root == NULL || quote == NULL || ident == NULL || stmt == NULL)
		goto out;
	if ((r = attest_stmt_decode(&s, stmt_body, ATTEST_STMT_LEN)) != SV_OK)
		goto out;
	r = SV_ERR_NOMEM;
	if (json_object_object_add(root, "version", json_object_new_int(1)) != 0 ||
	    add_hex(root, "nonce", nonce, nonce_len) != SV_OK ||
	    add_b64(root, "ek_public", st->ek_public.data, st->ek_public.len) != SV_OK ||
	    (st->ek_cert_len > 0 &&
	     add_b64(root, "ek_certificate", st->ek_cert, st->ek_cert_len) != SV_OK) ||
	    add_b64(root, "ak_public", st->ak_public.data, st->ak_public.len) != SV_OK)
		goto out;
	if (add_b64(quote, "attest", q->attest.data, q->attest.len) != SV_OK ||
	    add_b64(quote, "signature", q->signature.data, q->signature.len) != SV_OK ||
	    add_obj(quote, "pcrs", pcr_map(q->pcrs, q->values)) != SV_OK)
		goto out;
	if (add_b64(ident, "public", st->id_public.data, st->id_public.len) != SV_OK ||
	    add_b64(ident, "certify_attest", st->certify_attest.data, st->certify_attest.len) !=
	        SV_OK ||
	    add_b64(ident, "certify_signature", st->certify_signature.data,
	            st->certify_signature.len) != SV_OK ||
	    add_b64(ident, "policy_key", st->policy_key.data, st->policy_key.len) != SV_OK ||
	    add_obj(ident, "boot_pcrs", pcr_list(pol->boot_pcrs)) != SV_OK ||
	    add_hex(ident, "approved_policy", pol->approved, ATTEST_HASH_LEN) != SV_OK ||
	    add_obj(ident, "approved_pcrs", pcr_map(pol->boot_pcrs, pol->values)) != SV_OK ||
	    add_b64(ident, "policy_signature", pol->signature.data, pol->signature.len) != SV_OK)
		goto out;
	if (add_b64(stmt, "body", stmt_body, ATTEST_STMT_LEN) != SV_OK ||
	    add_b64(stmt, "signature", stmt_sig->data, stmt_sig->len) != SV_OK ||
	    add_hex(stmt, "server_public_key", s.server_public_key, ATTEST_HASH_LEN) != SV_OK ||
	    add_hex(stmt, "policy_hash", s.policy_hash, ATTEST_HASH_LEN) != SV_OK ||
	    add_hex(stmt, "build_hash", s.build_hash, ATTEST_HASH_LEN) != SV_OK ||
	    add_hex(stmt, "init_identity", s.init_identity, ATTEST_HASH_LEN) != SV_OK)
		goto out;
	r = add_obj(root, "quote", quote);
	quote = NULL;
	if (r == SV_OK)
		r = add_obj(root, "identity", ident);
	ident = NULL;
	if (r == SV_OK)
		r = add_obj(root, "statement", stmt);
	stmt = NULL;
	if (r != SV_OK)
		goto out;
	size_t len;
	const char *text = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
	r = text == NULL ? SV_ERR_NOMEM : sv_buf_put(out, text, len);
out:
	json_object_put(root);
	json_object_put(quote);
	json_object_put(ident);
	json_object_put(stmt);
	return r;
}
