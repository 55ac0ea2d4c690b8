#include "client/jfield.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"

static int bad(char *why, size_t why_len, const char *name, const char *what)
{
	snprintf(why, why_len, "member \"%s\": %s", name, what);
	return SV_ERR_INVALID;
}

int client_jfield_parse(json_object **out, const char *text, size_t len, size_t max_depth,
                        char *why, size_t why_len)
{
	*out = NULL;
	if (len > INT32_MAX) {
		snprintf(why, why_len, "the JSON text is too long");
		return SV_ERR_RANGE;
	}
	json_tokener *tok = json_tokener_new_ex((int)max_depth);
	if (tok == NULL)
		return SV_ERR_NOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	json_object *o = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error err = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (o == NULL || err != json_tokener_success) {
		json_object_put(o);
		snprintf(why, why_len, "not valid JSON: %s",
		         err == json_tokener_continue ? "the text ends early"
		                                      : json_tokener_error_desc(err));
		return SV_ERR_INVALID;
	}
	for (size_t i = used; i < len; i++)
		if (text[i] != ' ' && text[i] != '\n' && text[i] != '\r' && text[i] != '\t') {
			json_object_put(o);
			snprintf(why, why_len, "bytes after the JSON object");
			return SV_ERR_INVALID;
		}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		snprintf(why, why_len, "the JSON text is not an object");
		return SV_ERR_INVALID;
	}
	*out = o;
	return SV_OK;
}

int client_jfield_absent(json_object *o, const char *name)
{
	json_object *v = NULL;
	return !json_object_object_get_ex(o, name, &v) || v == NULL;
}

static int member(json_object *o, const char *name, json_type type, json_object **out, char *why,
                  size_t why_len)
{
	*out = NULL;
	if (!json_object_object_get_ex(o, name, out) || *out == NULL)
		return bad(why, why_len, name, "missing");
	if (!json_object_is_type(*out, type))
		return bad(why, why_len, name, "wrong type");
	return SV_OK;
}

int client_jfield_obj(json_object *o, const char *name, json_object **out, char *why,
                      size_t why_len)
{
	return member(o, name, json_type_object, out, why, why_len);
}

int client_jfield_str(json_object *o, const char *name, const char **s, size_t *len, char *why,
                      size_t why_len)
{
	json_object *v;
	int r = member(o, name, json_type_string, &v, why, why_len);
	if (r != SV_OK)
		return r;
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	return SV_OK;
}

int client_jfield_version(json_object *o, int want, char *why, size_t why_len)
{
	json_object *v;
	int r = member(o, "version", json_type_int, &v, why, why_len);
	if (r != SV_OK)
		return r;
	if (json_object_get_int64(v) != want)
		return bad(why, why_len, "version", "unsupported version (this client reads 1)");
	return SV_OK;
}

static int hex_into(const char *s, size_t n, uint8_t *out, size_t max, size_t *got)
{
	const char *end = NULL;
	if (n % 2 != 0 || n / 2 > max)
		return -1;
	if (sodium_hex2bin(out, max, s, n, NULL, got, &end) != 0 || end != s + n || *got != n / 2)
		return -1;
	return 0;
}

int client_jfield_hex(json_object *o, const char *name, uint8_t *out, size_t n_min, size_t n_max,
                      size_t *got, char *why, size_t why_len)
{
	const char *s;
	size_t n, dummy;
	int r = client_jfield_str(o, name, &s, &n, why, why_len);
	if (r != SV_OK)
		return r;
	if (got == NULL)
		got = &dummy;
	if (hex_into(s, n, out, n_max, got) != 0 || *got < n_min)
		return bad(why, why_len, name, "not hex of the right length");
	return SV_OK;
}

static int b64_into(const char *s, size_t n, uint8_t *out, size_t max, size_t *got)
{
	const char *end = NULL;
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > max + 2)
		return -1;
	if (sodium_base642bin(out, max, s, n, NULL, got, &end, sodium_base64_VARIANT_ORIGINAL) !=
	        0 ||
	    end != s + n || *got == 0)
		return -1;
	return 0;
}

int client_jfield_b64(json_object *o, const char *name, uint8_t *out, size_t max, size_t *got,
                      char *why, size_t why_len)
{
	const char *s;
	size_t n;
	int r = client_jfield_str(o, name, &s, &n, why, why_len);
	if (r != SV_OK)
		return r;
	if (b64_into(s, n, out, max, got) != 0)
		return bad(why, why_len, name, "not base64 (with padding) of an allowed length");
	return SV_OK;
}

int client_jfield_b64_alloc(json_object *o, const char *name, uint8_t **out, size_t max,
                            size_t *got, char *why, size_t why_len)
{
	const char *s;
	size_t n;
	*out = NULL;
	int r = client_jfield_str(o, name, &s, &n, why, why_len);
	if (r != SV_OK)
		return r;
	size_t cap = n / 4 * 3;
	if (cap == 0 || cap > max + 2)
		return bad(why, why_len, name, "empty or too long");
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		return SV_ERR_NOMEM;
	if (b64_into(s, n, buf, cap < max ? cap : max, got) != 0) {
		free(buf);
		return bad(why, why_len, name, "not base64 (with padding) of an allowed length");
	}
	*out = buf;
	return SV_OK;
}

int client_jfield_pcr_list(json_object *o, const char *name, uint32_t *mask, char *why,
                           size_t why_len)
{
	json_object *a;
	int r = member(o, name, json_type_array, &a, why, why_len);
	if (r != SV_OK)
		return r;
	size_t n = json_object_array_length(a);
	int64_t last = -1;
	*mask = 0;
	if (n == 0 || n > CLIENT_JFIELD_PCRS)
		return bad(why, why_len, name, "must list 1 to 24 PCRs");
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(a, i);
		if (!json_object_is_type(v, json_type_int))
			return bad(why, why_len, name, "a PCR number is not an integer");
		int64_t p = json_object_get_int64(v);
		if (p < 0 || p >= CLIENT_JFIELD_PCRS || p <= last)
			return bad(why, why_len, name,
			           "PCR numbers must be 0-23, increasing, without repeats");
		last = p;
		*mask |= 1u << p;
	}
	return SV_OK;
}

int client_jfield_pcr_map(json_object *o, const char *name, uint32_t *mask,
                          uint8_t values[CLIENT_JFIELD_PCRS][32], char *why, size_t why_len)
{
	json_object *m;
	int r = member(o, name, json_type_object, &m, why, why_len);
	if (r != SV_OK)
		return r;
	*mask = 0;
	json_object_object_foreach(m, key, val)
	{
		size_t kl = strlen(key), got = 0;
		unsigned p = 0;
		if (kl == 0 || kl > 2 || (kl == 2 && key[0] == '0'))
			return bad(why, why_len, name, "a key is not a PCR number");
		for (size_t i = 0; i < kl; i++) {
			if (key[i] < '0' || key[i] > '9')
				return bad(why, why_len, name, "a key is not a PCR number");
			p = p * 10 + (unsigned)(key[i] - '0');
		}
		if (p >= CLIENT_JFIELD_PCRS || (*mask & (1u << p)))
			return bad(why, why_len, name, "a PCR number is out of range or repeated");
		if (!json_object_is_type(val, json_type_string) ||
		    hex_into(json_object_get_string(val), (size_t)json_object_get_string_len(val),
		             values[p], 32, &got) != 0 ||
		    got != 32)
			return bad(why, why_len, name, "a PCR value is not 64 hex digits");
		*mask |= 1u << p;
	}
	if (*mask == 0)
		return bad(why, why_len, name, "lists no PCR");
	return SV_OK;
}
