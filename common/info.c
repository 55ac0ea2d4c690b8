#include "common/info.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "common/err.h"

void info_vault_id(uint8_t out[static INFO_VAULT_ID_LEN], const uint8_t pk[static INFO_PK_LEN])
{
	crypto_hash_sha256_state st;
	uint8_t h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)INFO_VAULT_ID_LABEL,
	                          sizeof(INFO_VAULT_ID_LABEL) - 1);
	crypto_hash_sha256_update(&st, pk, INFO_PK_LEN);
	crypto_hash_sha256_final(&st, h);
	memcpy(out, h, INFO_VAULT_ID_LEN);
}

/* Adds key: v to o, taking v (NULL: out of memory); 0 or -1. */
static int add(struct json_object *o, const char *key, struct json_object *v)
{
	if (v == NULL || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

/* The same, where NULL stands for JSON null. */
static int add_or_null(struct json_object *o, const char *key, struct json_object *v)
{
	if (json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static int add_hex(struct json_object *o, const char *key, const uint8_t *p, size_t n)
{
	char *s = malloc(2 * n + 1);
	if (s == NULL)
		return -1;
	sodium_bin2hex(s, 2 * n + 1, p, n);
	int r = add(o, key, json_object_new_string_len(s, (int)(2 * n)));
	free(s);
	return r;
}

/* The context as text when every byte is printable ASCII (what any config file gives), else
 * JSON null: a reader compares context_hex, the exact bytes. */
static struct json_object *context_text(const struct sv_info *in)
{
	for (size_t i = 0; i < in->context_len; i++)
		if (in->context[i] < 0x20 || in->context[i] > 0x7e)
			return NULL;
	return json_object_new_string_len((const char *)in->context, (int)in->context_len);
}

/* Moves *child into o under key (it is freed on failure either way); 0 or -1. */
static int attach(struct json_object *o, const char *key, struct json_object **child)
{
	struct json_object *v = *child;
	*child = NULL;
	return add(o, key, v);
}

int info_encode(const struct sv_info *in, struct sv_buf *out)
{
	if (in->context_len > INFO_CONTEXT_MAX || in->guess_default < 1 ||
	    in->guess_default > 255 || in->guess_max < 1 || in->guess_max > 255 ||
	    in->n_versions < 1 || in->n_versions > INFO_VERSIONS_MAX ||
	    memchr(in->suite, '\0', sizeof(in->suite)) == NULL || in->suite[0] == '\0')
		return SV_ERR_RANGE;
	struct json_object *root = json_object_new_object();
	struct json_object *limit = json_object_new_object();
	struct json_object *vers = json_object_new_array();
	struct json_object *ksf = json_object_new_object();
	int r = SV_ERR_NOMEM;
	if (root == NULL || limit == NULL || vers == NULL || ksf == NULL)
		goto out;
	for (size_t i = 0; i < in->n_versions; i++)
		if (json_object_array_add(vers, json_object_new_int(in->versions[i])) != 0)
			goto out;
	if (add(limit, "default", json_object_new_int((int)in->guess_default)) != 0 ||
	    add(limit, "max", json_object_new_int((int)in->guess_max)) != 0 ||
	    add(ksf, "type", json_object_new_string("argon2id")) != 0 ||
	    add(ksf, "t", json_object_new_int64(in->ksf_t)) != 0 ||
	    add(ksf, "m_kib", json_object_new_int64(in->ksf_m_kib)) != 0 ||
	    add(ksf, "p", json_object_new_int(1)) != 0)
		goto out;
	if (add(root, "suite", json_object_new_string(in->suite)) != 0 ||
	    add_or_null(root, "context", context_text(in)) != 0 ||
	    add_hex(root, "context_hex", in->context, in->context_len) != 0 ||
	    attach(root, "guess_limit", &limit) != 0 ||
	    add_hex(root, "server_public_key", in->server_pk, INFO_PK_LEN) != 0 ||
	    add_hex(root, "vault_id", in->vault_id, INFO_VAULT_ID_LEN) != 0 ||
	    attach(root, "protocol_versions", &vers) != 0 || attach(root, "ksf", &ksf) != 0)
		goto out;
	size_t len = 0;
	const char *s = json_object_to_json_string_length(
	    root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	r = s == NULL ? SV_ERR_NOMEM : sv_buf_put(out, s, len);
out:
	json_object_put(ksf);
	json_object_put(vers);
	json_object_put(limit);
	json_object_put(root);
	return r;
}
