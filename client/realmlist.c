#include "client/realmlist.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "client/jfield.h"
#include "common/err.h"

#define PATH_MAX_LEN 4096

void realmlist_clear(struct realmlist *l)
{
	for (size_t i = 0; i < l->n && i < REALM_MAX; i++) {
		struct realmlist_entry *e = &l->realms[i];
		free(e->name);
		free(e->url);
		free(e->ca);
		free(e->expect);
		free(e->token);
	}
	memset(l, 0, sizeof(*l));
}

static int fail(char *why, size_t why_len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *why, size_t why_len, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return err;
}

/* A string member (NULL when absent and optional); *out is malloc'd. */
static int get_str(json_object *o, const char *key, int required, size_t max, char **out,
                   size_t idx, char *why, size_t why_len)
{
	json_object *v = NULL;
	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL) {
		if (!required)
			return SV_OK;
		return fail(why, why_len, SV_ERR_INVALID, "realms[%zu]: \"%s\" is missing", idx,
		            key);
	}
	if (!json_object_is_type(v, json_type_string))
		return fail(why, why_len, SV_ERR_INVALID, "realms[%zu]: \"%s\" is not a string",
		            idx, key);
	const char *s = json_object_get_string(v);
	size_t len = (size_t)json_object_get_string_len(v);
	if (len == 0 || len > max || memchr(s, '\0', len) != NULL)
		return fail(why, why_len, SV_ERR_INVALID,
		            "realms[%zu]: \"%s\" must be 1 to %zu characters", idx, key, max);
	*out = strdup(s);
	return *out != NULL ? SV_OK : SV_ERR_NOMEM;
}

/* Joins a relative path to dir (in place). */
static int resolve(char **path, const char *dir)
{
	if (*path == NULL || (*path)[0] == '/' || dir == NULL || dir[0] == '\0')
		return SV_OK;
	size_t n = strlen(dir) + 1 + strlen(*path) + 1;
	char *p = malloc(n);
	if (p == NULL)
		return SV_ERR_NOMEM;
	snprintf(p, n, "%s/%s", dir, *path);
	free(*path);
	*path = p;
	return SV_OK;
}

static int parse_entry(struct realmlist_entry *e, json_object *o, size_t idx, const char *dir,
                       char *why, size_t why_len)
{
	static const char *const keys[] = {"name", "url", "ca", "id", "expect", "token"};
	int r;
	if (!json_object_is_type(o, json_type_object))
		return fail(why, why_len, SV_ERR_INVALID, "realms[%zu] is not an object", idx);
	json_object_object_foreach(o, key, val)
	{
		(void)val;
		int known = 0;
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			known |= strcmp(key, keys[k]) == 0;
		if (!known)
			return fail(
			    why, why_len, SV_ERR_INVALID,
			    "realms[%zu]: unknown key \"%s\" (known: name, url, ca, id, expect, "
			    "token)",
			    idx, key);
	}
	if ((r = get_str(o, "url", 1, 2048, &e->url, idx, why, why_len)) != SV_OK ||
	    (r = get_str(o, "ca", 1, PATH_MAX_LEN, &e->ca, idx, why, why_len)) != SV_OK ||
	    (r = get_str(o, "name", 0, REALMLIST_NAME_MAX, &e->name, idx, why, why_len)) != SV_OK ||
	    (r = get_str(o, "expect", 0, PATH_MAX_LEN, &e->expect, idx, why, why_len)) != SV_OK ||
	    (r = get_str(o, "token", 0, PATH_MAX_LEN, &e->token, idx, why, why_len)) != SV_OK)
		return r;
	if (e->url == NULL || e->ca == NULL) /* required: get_str said so otherwise */
		return SV_ERR_INTERNAL;
	if (strncmp(e->url, "https://", 8) != 0 || e->url[8] == '\0' || e->url[8] == '/')
		return fail(why, why_len, SV_ERR_INVALID,
		            "realms[%zu]: \"url\" must be https://host[:port], not '%s'", idx,
		            e->url);
	for (const char *p = e->url; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return fail(why, why_len, SV_ERR_INVALID,
			            "realms[%zu]: \"url\" holds a blank or control character", idx);
	char *idhex = NULL;
	if ((r = get_str(o, "id", 1, 2 * REALM_ID_LEN, &idhex, idx, why, why_len)) != SV_OK)
		return r;
	size_t got = 0;
	const char *end = NULL;
	int ok =
	    strlen(idhex) == 2 * REALM_ID_LEN &&
	    sodium_hex2bin(e->id, sizeof(e->id), idhex, strlen(idhex), NULL, &got, &end) == 0 &&
	    got == REALM_ID_LEN && *end == '\0';
	free(idhex);
	if (!ok)
		return fail(why, why_len, SV_ERR_INVALID,
		            "realms[%zu]: \"id\" must be the realm's vault_id, 32 hex digits "
		            "(sealvault-admin status)",
		            idx);
	if (e->name == NULL && (e->name = strdup(e->url)) == NULL)
		return SV_ERR_NOMEM;
	for (char *p = e->name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return fail(why, why_len, SV_ERR_INVALID,
			            "realms[%zu]: \"name\" holds a control character", idx);
	if ((r = resolve(&e->ca, dir)) != SV_OK || (r = resolve(&e->expect, dir)) != SV_OK ||
	    (r = resolve(&e->token, dir)) != SV_OK)
		return r;
	return SV_OK;
}

static int parse_obj(struct realmlist *out, json_object *top, const char *dir, char *why,
                     size_t why_len)
{
	json_object *arr = NULL, *th = NULL;
	int r;
	json_object_object_foreach(top, key, val)
	{
		(void)val;
		if (strcmp(key, "threshold") != 0 && strcmp(key, "realms") != 0)
			return fail(why, why_len, SV_ERR_INVALID,
			            "unknown key \"%s\" (known: threshold, realms)", key);
	}
	if (!json_object_object_get_ex(top, "realms", &arr) || arr == NULL ||
	    !json_object_is_type(arr, json_type_array))
		return fail(why, why_len, SV_ERR_INVALID,
		            "\"realms\" is missing or not an array of realms");
	size_t n = json_object_array_length(arr);
	if (n < 1 || n > REALM_MAX)
		return fail(why, why_len, SV_ERR_INVALID,
		            "\"realms\" lists %zu realms; it must list 1 to %d", n, REALM_MAX);
	if (json_object_object_get_ex(top, "threshold", &th) && th != NULL) {
		int64_t t = json_object_get_int64(th);
		if (!json_object_is_type(th, json_type_int) || t < 1 || (uint64_t)t > n)
			return fail(
			    why, why_len, SV_ERR_INVALID,
			    "\"threshold\" must be a whole number from 1 to %zu (the number of "
			    "realms)",
			    n);
		out->threshold = (unsigned)t;
	}
	for (size_t i = 0; i < n; i++) {
		out->n = i + 1; /* so that realmlist_clear frees what this entry got */
		r = parse_entry(&out->realms[i], json_object_array_get_idx(arr, i), i + 1, dir, why,
		                why_len);
		if (r != SV_OK) {
			if (r == SV_ERR_NOMEM)
				snprintf(why, why_len, "out of memory");
			return r;
		}
		for (size_t j = 0; j < i; j++)
			if (memcmp(out->realms[j].id, out->realms[i].id, REALM_ID_LEN) == 0)
				return fail(
				    why, why_len, SV_ERR_INVALID,
				    "realms[%zu] and realms[%zu] have the same \"id\"; each "
				    "realm must be another vault",
				    j + 1, i + 1);
	}
	return SV_OK;
}

int realmlist_parse(struct realmlist *out, const char *json, size_t len, const char *dir, char *why,
                    size_t why_len)
{
	json_object *top = NULL;
	memset(out, 0, sizeof(*out));
	if (len > REALMLIST_JSON_MAX)
		return fail(why, why_len, SV_ERR_INVALID, "longer than %d bytes",
		            REALMLIST_JSON_MAX);
	int r = client_jfield_parse(&top, json, len, 8, why, why_len);
	if (r != SV_OK)
		return r;
	r = parse_obj(out, top, dir, why, why_len);
	json_object_put(top);
	if (r != SV_OK)
		realmlist_clear(out);
	return r;
}

int realmlist_load(struct realmlist *out, const char *path, char *why, size_t why_len)
{
	char *buf = NULL, *dir = NULL, inner[512];
	size_t len = 0;
	int r = SV_ERR_IO;
	memset(out, 0, sizeof(*out));
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return fail(why, why_len, SV_ERR_IO, "realm list %s: %s", path, strerror(errno));
	buf = malloc(REALMLIST_JSON_MAX + 1);
	if (buf == NULL) {
		r = fail(why, why_len, SV_ERR_NOMEM, "out of memory");
		goto out;
	}
	len = fread(buf, 1, REALMLIST_JSON_MAX + 1, f);
	if (ferror(f)) {
		r = fail(why, why_len, SV_ERR_IO, "realm list %s: read error", path);
		goto out;
	}
	const char *slash = strrchr(path, '/');
	if (slash != NULL) {
		size_t dl = slash == path ? 1 : (size_t)(slash - path);
		if ((dir = strndup(path, dl)) == NULL) {
			r = fail(why, why_len, SV_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	r = realmlist_parse(out, buf, len, dir, inner, sizeof(inner));
	if (r != SV_OK)
		fail(why, why_len, r, "realm list %s: %s", path, inner);
out:
	fclose(f);
	free(buf);
	free(dir);
	return r;
}
