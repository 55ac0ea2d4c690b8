#include "client/info.h"

#include <stdio.h>
#include <string.h>

#include "client/jfield.h"
#include "common/err.h"

#define INFO_DEPTH 4

/* An integer member within lo..hi. */
static int int_in(json_object *o, const char *name, int64_t lo, int64_t hi, int64_t *v, char *why,
                  size_t why_len)
{
	json_object *m = NULL;
	if (!json_object_object_get_ex(o, name, &m) || m == NULL ||
	    !json_object_is_type(m, json_type_int)) {
		snprintf(why, why_len, "member \"%s\": missing or not an integer", name);
		return SV_ERR_INVALID;
	}
	*v = json_object_get_int64(m);
	if (*v < lo || *v > hi) {
		snprintf(why, why_len, "member \"%s\": out of bounds", name);
		return SV_ERR_INVALID;
	}
	return SV_OK;
}

static int versions(struct sv_info *out, json_object *root, char *why, size_t why_len)
{
	json_object *a = NULL;
	if (!json_object_object_get_ex(root, "protocol_versions", &a) || a == NULL ||
	    !json_object_is_type(a, json_type_array) || json_object_array_length(a) < 1 ||
	    json_object_array_length(a) > INFO_VERSIONS_MAX) {
		snprintf(why, why_len,
		         "member \"protocol_versions\": not an array of 1 to %d versions",
		         INFO_VERSIONS_MAX);
		return SV_ERR_INVALID;
	}
	out->n_versions = json_object_array_length(a);
	for (size_t i = 0; i < out->n_versions; i++) {
		json_object *v = json_object_array_get_idx(a, i);
		int64_t n = v != NULL && json_object_is_type(v, json_type_int)
		                ? json_object_get_int64(v)
		                : -1;
		if (n < 1 || n > 255) {
			snprintf(why, why_len,
			         "member \"protocol_versions\": a version is not 1 to 255");
			return SV_ERR_INVALID;
		}
		out->versions[i] = (uint8_t)n;
	}
	return SV_OK;
}

static int ksf(struct sv_info *out, json_object *root, char *why, size_t why_len)
{
	json_object *k;
	const char *type;
	size_t type_len;
	int64_t t, m;
	int r = client_jfield_obj(root, "ksf", &k, why, why_len);
	if (r == SV_OK)
		r = client_jfield_str(k, "type", &type, &type_len, why, why_len);
	if (r != SV_OK)
		return r;
	out->ksf_t = out->ksf_m_kib = 0;
	if (type_len != 8 || memcmp(type, "argon2id", 8) != 0)
		return SV_OK; /* advice this client cannot follow, not an error */
	if ((r = int_in(k, "t", 1, UINT32_MAX, &t, why, why_len)) != SV_OK ||
	    (r = int_in(k, "m_kib", 1, UINT32_MAX, &m, why, why_len)) != SV_OK)
		return r;
	out->ksf_t = (uint32_t)t;
	out->ksf_m_kib = (uint32_t)m;
	return SV_OK;
}

int client_info_decode(struct sv_info *out, const char *json, size_t len, char *why, size_t why_len)
{
	json_object *root = NULL, *limit;
	const char *suite;
	size_t suite_len;
	int64_t def, max;
	memset(out, 0, sizeof(*out));
	if (len > INFO_JSON_MAX) {
		snprintf(why, why_len, "the document is longer than %d bytes", INFO_JSON_MAX);
		return SV_ERR_INVALID;
	}
	int r = client_jfield_parse(&root, json, len, INFO_DEPTH, why, why_len);
	if (r != SV_OK)
		return r == SV_ERR_NOMEM ? r : SV_ERR_INVALID;
	r = client_jfield_str(root, "suite", &suite, &suite_len, why, why_len);
	if (r == SV_OK && (suite_len == 0 || suite_len > INFO_SUITE_MAX ||
	                   memchr(suite, '\0', suite_len) != NULL)) {
		snprintf(why, why_len, "member \"suite\": empty or too long");
		r = SV_ERR_INVALID;
	}
	if (r == SV_OK) {
		memcpy(out->suite, suite, suite_len);
		r = client_jfield_hex(root, "context_hex", out->context, 0, INFO_CONTEXT_MAX,
		                      &out->context_len, why, why_len);
	}
	if (r == SV_OK)
		r = client_jfield_obj(root, "guess_limit", &limit, why, why_len);
	if (r == SV_OK && (r = int_in(limit, "default", 1, 255, &def, why, why_len)) == SV_OK &&
	    (r = int_in(limit, "max", 1, 255, &max, why, why_len)) == SV_OK) {
		out->guess_default = (unsigned)def;
		out->guess_max = (unsigned)max;
	}
	if (r == SV_OK)
		r = client_jfield_hex(root, "server_public_key", out->server_pk, INFO_PK_LEN,
		                      INFO_PK_LEN, NULL, why, why_len);
	if (r == SV_OK)
		r = client_jfield_hex(root, "vault_id", out->vault_id, INFO_VAULT_ID_LEN,
		                      INFO_VAULT_ID_LEN, NULL, why, why_len);
	if (r == SV_OK)
		r = versions(out, root, why, why_len);
	if (r == SV_OK)
		r = ksf(out, root, why, why_len);
	json_object_put(root);
	if (r != SV_OK) {
		memset(out, 0, sizeof(*out));
		return SV_ERR_INVALID;
	}
	return SV_OK;
}

/* A context for a message: the text when printable (quoted), else its hex. */
static void show(char *dst, size_t n, const uint8_t *c, size_t len)
{
	size_t printable = 1;
	for (size_t i = 0; i < len; i++)
		printable &= c[i] >= 0x20 && c[i] <= 0x7e && c[i] != '\'';
	if (printable && len <= 200) {
		snprintf(dst, n, "'%.*s'", (int)len, (const char *)c);
		return;
	}
	size_t o = (size_t)snprintf(dst, n, "hex ");
	for (size_t i = 0; i < len && o + 3 < n && i < 64; i++)
		o += (size_t)snprintf(dst + o, n - o, "%02x", c[i]);
	if (len > 64 && o + 4 < n)
		snprintf(dst + o, n - o, "...");
}

int client_info_check(const struct sv_info *info, const uint8_t *context, size_t context_len,
                      unsigned version, char *why, size_t why_len)
{
	if (strcmp(info->suite, INFO_SUITE) != 0) {
		snprintf(why, why_len,
		         "the server's OPAQUE suite is '%s', this client uses '%s' (this client "
		         "cannot use this server)",
		         info->suite, INFO_SUITE);
		return SV_ERR_CONFIG;
	}
	if (info->context_len != context_len ||
	    (context_len > 0 && memcmp(info->context, context, context_len) != 0)) {
		char theirs[240], ours[240];
		show(theirs, sizeof(theirs), info->context, info->context_len);
		show(ours, sizeof(ours), context, context_len);
		snprintf(why, why_len,
		         "the server's OPAQUE context is %s, this client uses %s (set --context to "
		         "the server's)",
		         theirs, ours);
		return SV_ERR_CONFIG;
	}
	for (size_t i = 0; i < info->n_versions; i++)
		if (info->versions[i] == version)
			return SV_OK;
	char list[64];
	size_t o = 0;
	list[0] = '\0';
	for (size_t i = 0; i < info->n_versions && o + 6 < sizeof(list); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%u", i ? ", " : "",
		                      info->versions[i]);
	snprintf(why, why_len,
	         "the server speaks protocol version(s) %s, this client speaks %u (update the "
	         "older of the two)",
	         list, version);
	return SV_ERR_CONFIG;
}
