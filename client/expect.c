#include "client/expect.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "client/jfield.h"
#include "common/err.h"

#define DEPTH 6

/* The whole file at path into a NUL-terminated malloc'd buffer of at most max bytes. */
static int read_file(const char *path, size_t max, char **out, size_t *len, char *why,
                     size_t why_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0, cap = 4096;
	char *buf = NULL;
	int r = SV_ERR_IO;

	*out = NULL;
	if (fd < 0) {
		snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
		return SV_ERR_IO;
	}
	for (;;) {
		if (n + 1 >= cap) {
			if (cap > max) {
				snprintf(why, why_len, "%s is larger than %zu bytes", path, max);
				r = SV_ERR_RANGE;
				goto out;
			}
			cap *= 2;
		}
		char *nb = realloc(buf, cap);
		if (nb == NULL) {
			r = SV_ERR_NOMEM;
			goto out;
		}
		buf = nb;
		ssize_t got = read(fd, buf + n, cap - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(why, why_len, "reading %s: %s", path, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	if (n > max) {
		snprintf(why, why_len, "%s is larger than %zu bytes", path, max);
		r = SV_ERR_RANGE;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	r = SV_OK;
out:
	free(buf);
	close(fd);
	return r;
}

static int cmp_allow(const void *a, const void *b)
{
	const struct client_expect_allow *x = a, *y = b;
	return memcmp(x->sha256, y->sha256, ATTEST_HASH_LEN);
}

static int push_allow(struct client_expect *e, const uint8_t sha[32], const char *path, size_t plen)
{
	if (e->n_allow >= CLIENT_EXPECT_ALLOW_MAX)
		return SV_ERR_RANGE;
	struct client_expect_allow *a = realloc(e->allow, (e->n_allow + 1) * sizeof(*a));
	if (a == NULL)
		return SV_ERR_NOMEM;
	e->allow = a;
	a += e->n_allow;
	memcpy(a->sha256, sha, ATTEST_HASH_LEN);
	a->path = NULL;
	if (plen > 0 && (a->path = strndup(path, plen)) == NULL)
		return SV_ERR_NOMEM;
	e->n_allow++;
	return SV_OK;
}

static int push_ca(struct client_expect *e, const char *pem, size_t len)
{
	if (e->n_ca >= CLIENT_EXPECT_CA_MAX || len > CLIENT_EXPECT_PEM_MAX)
		return SV_ERR_RANGE;
	if (strstr(pem, "-----BEGIN CERTIFICATE-----") == NULL || strlen(pem) != len)
		return SV_ERR_INVALID;
	char **c = realloc(e->ca, (e->n_ca + 1) * sizeof(*c));
	if (c == NULL)
		return SV_ERR_NOMEM;
	e->ca = c;
	if ((c[e->n_ca] = strndup(pem, len)) == NULL)
		return SV_ERR_NOMEM;
	e->n_ca++;
	return SV_OK;
}

static int decode_allow(struct client_expect *e, json_object *root, char *why, size_t why_len)
{
	json_object *a;
	if (client_jfield_absent(root, "ima_allow"))
		return SV_OK;
	if (!json_object_object_get_ex(root, "ima_allow", &a) ||
	    !json_object_is_type(a, json_type_array)) {
		snprintf(why, why_len, "member \"ima_allow\": not an array");
		return SV_ERR_INVALID;
	}
	size_t n = json_object_array_length(a);
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(a, i);
		uint8_t sha[32];
		const char *path = NULL;
		size_t plen = 0;
		int r;
		if (!json_object_is_type(it, json_type_object) ||
		    client_jfield_hex(it, "sha256", sha, 32, 32, NULL, why, why_len) != SV_OK ||
		    (!client_jfield_absent(it, "path") &&
		     (client_jfield_str(it, "path", &path, &plen, why, why_len) != SV_OK ||
		      plen == 0 || plen > 4096 || memchr(path, '\0', plen) != NULL))) {
			snprintf(
			    why, why_len,
			    "member \"ima_allow\": entry %zu is not {\"sha256\": \"<64 hex>\", "
			    "\"path\": \"/absolute/path\"}",
			    i + 1);
			return SV_ERR_INVALID;
		}
		if ((r = push_allow(e, sha, path, plen)) != SV_OK) {
			snprintf(why, why_len, "member \"ima_allow\": more than %d entries",
			         CLIENT_EXPECT_ALLOW_MAX);
			return r;
		}
	}
	return SV_OK;
}

static int decode_ca(struct client_expect *e, json_object *root, char *why, size_t why_len)
{
	json_object *a;
	if (client_jfield_absent(root, "tpm_ca"))
		return SV_OK;
	if (!json_object_object_get_ex(root, "tpm_ca", &a) ||
	    !json_object_is_type(a, json_type_array)) {
		snprintf(why, why_len, "member \"tpm_ca\": not an array");
		return SV_ERR_INVALID;
	}
	size_t n = json_object_array_length(a);
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(a, i);
		if (!json_object_is_type(it, json_type_string) ||
		    push_ca(e, json_object_get_string(it),
		            (size_t)json_object_get_string_len(it)) != SV_OK) {
			snprintf(why, why_len,
			         "member \"tpm_ca\": entry %zu is not a PEM certificate text (or "
			         "there are more than %d)",
			         i + 1, CLIENT_EXPECT_CA_MAX);
			return SV_ERR_INVALID;
		}
	}
	return SV_OK;
}

static int decode(struct client_expect *e, json_object *root, char *why, size_t why_len)
{
	json_object *bins;
	uint32_t vmask = 0;
	int r;
	if ((r = client_jfield_version(root, 1, why, why_len)) != SV_OK ||
	    (r = client_jfield_hex(root, "build_hash", e->build_hash, 32, 32, NULL, why,
	                           why_len)) != SV_OK ||
	    (r = client_jfield_obj(root, "binaries", &bins, why, why_len)) != SV_OK)
		return r;
	for (int i = 0; i < ATTEST_NBINARIES; i++)
		if ((r = client_jfield_hex(bins, attest_binary_names[i], e->binaries[i], 32, 32,
		                           NULL, why, why_len)) != SV_OK)
			return r;
	if ((r = client_jfield_hex(root, "policy_hash", e->policy_hash, 32, 32, NULL, why,
	                           why_len)) != SV_OK ||
	    (r = client_jfield_pcr_list(root, "boot_pcrs", &e->boot_pcrs, why, why_len)) != SV_OK)
		return r;
	if (!client_jfield_absent(root, "boot_pcr_values")) {
		if ((r = client_jfield_pcr_map(root, "boot_pcr_values", &vmask, e->boot_values, why,
		                               why_len)) != SV_OK)
			return r;
		if (vmask != e->boot_pcrs) {
			snprintf(why, why_len,
			         "member \"boot_pcr_values\": must give exactly the PCRs of "
			         "boot_pcrs");
			return SV_ERR_INVALID;
		}
		e->has_boot_values = 1;
	}
	if (!client_jfield_absent(root, "server_public_key")) {
		if ((r = client_jfield_hex(root, "server_public_key", e->server_key, 32, 32, NULL,
		                           why, why_len)) != SV_OK)
			return r;
		e->has_server_key = 1;
	}
	if ((r = decode_allow(e, root, why, why_len)) != SV_OK ||
	    (r = decode_ca(e, root, why, why_len)) != SV_OK)
		return r;
	if (e->n_allow > 1)
		qsort(e->allow, e->n_allow, sizeof(*e->allow), cmp_allow);
	return SV_OK;
}

int client_expect_decode(struct client_expect *e, const char *json, size_t len, char *why,
                         size_t why_len)
{
	json_object *root = NULL;
	memset(e, 0, sizeof(*e));
	if (len > CLIENT_EXPECT_FILE_MAX) {
		snprintf(why, why_len, "larger than %u bytes", CLIENT_EXPECT_FILE_MAX);
		return SV_ERR_RANGE;
	}
	int r = client_jfield_parse(&root, json, len, DEPTH, why, why_len);
	if (r == SV_OK)
		r = decode(e, root, why, why_len);
	json_object_put(root);
	if (r != SV_OK)
		client_expect_clear(e);
	return r;
}

int client_expect_load(struct client_expect *e, const char *path, char *why, size_t why_len)
{
	char *text = NULL, inner[400];
	size_t len = 0;
	memset(e, 0, sizeof(*e));
	int r = read_file(path, CLIENT_EXPECT_FILE_MAX, &text, &len, why, why_len);
	if (r != SV_OK)
		return r;
	r = client_expect_decode(e, text, len, inner, sizeof(inner));
	if (r != SV_OK)
		snprintf(why, why_len, "expect file %s: %s", path, inner);
	free(text);
	return r;
}

void client_expect_clear(struct client_expect *e)
{
	for (size_t i = 0; i < e->n_allow; i++)
		free(e->allow[i].path);
	for (size_t i = 0; i < e->n_ca; i++)
		free(e->ca[i]);
	free(e->allow);
	free(e->ca);
	memset(e, 0, sizeof(*e));
}

int client_expect_add_ca_file(struct client_expect *e, const char *path, char *why, size_t why_len)
{
	char *text = NULL;
	size_t len = 0;
	int r = read_file(path, CLIENT_EXPECT_PEM_MAX, &text, &len, why, why_len);
	if (r != SV_OK)
		return r;
	r = push_ca(e, text, len);
	if (r != SV_OK)
		snprintf(why, why_len,
		         "%s: not a PEM file with a certificate (or more than %d CA files)", path,
		         CLIENT_EXPECT_CA_MAX);
	free(text);
	return r;
}

int client_expect_add_allow_file(struct client_expect *e, const char *path, char *why,
                                 size_t why_len)
{
	char *text = NULL;
	size_t len = 0, lineno = 0;
	int r = read_file(path, CLIENT_EXPECT_FILE_MAX, &text, &len, why, why_len);
	if (r != SV_OK)
		return r;
	for (char *line = text; line < text + len;) {
		char *nl = memchr(line, '\n', (size_t)(text + len - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
		uint8_t sha[32];
		size_t got = 0;
		lineno++;
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (n > 0 && line[0] != '#') {
			/* one space, or sha256sum's two spaces or space and '*' */
			size_t p = 64;
			while (p < n && p < 66 && line[p] == ' ')
				p++;
			if (p < n && line[p] == '*' && p == 65)
				p++;
			if (n < 66 || line[64] != ' ' ||
			    sodium_hex2bin(sha, 32, line, 64, NULL, &got, NULL) != 0 || got != 32 ||
			    p >= n || line[p] != '/' || memchr(line, '\0', n) != NULL) {
				snprintf(why, why_len,
				         "%s line %zu: want '<sha256 hex> /absolute/path'", path,
				         lineno);
				r = SV_ERR_INVALID;
				break;
			}
			if ((r = push_allow(e, sha, line + p, n - p)) != SV_OK) {
				snprintf(why, why_len, "%s: too many entries", path);
				break;
			}
		}
		line += n + 1;
	}
	free(text);
	if (r == SV_OK && e->n_allow > 1)
		qsort(e->allow, e->n_allow, sizeof(*e->allow), cmp_allow);
	return r;
}

int client_expect_allowed(const struct client_expect *e, const uint8_t sha256[static 32],
                          const char *path)
{
	for (int i = 0; i < ATTEST_NBINARIES; i++)
		if (memcmp(e->binaries[i], sha256, ATTEST_HASH_LEN) == 0)
			return 1;
	if (e->n_allow == 0)
		return 0;
	/* first entry with this hash, then every entry with it */
	size_t lo = 0, hi = e->n_allow;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(e->allow[mid].sha256, sha256, ATTEST_HASH_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < e->n_allow && memcmp(e->allow[lo].sha256, sha256, ATTEST_HASH_LEN) == 0; lo++)
		if (e->allow[lo].path == NULL || strcmp(e->allow[lo].path, path) == 0)
			return 1;
	return 0;
}

static json_object *hexstr(const uint8_t *p, size_t n)
{
	char h[2 * 64 + 1];
	sodium_bin2hex(h, sizeof(h), p, n);
	return json_object_new_string(h);
}

static int add(json_object *o, const char *k, json_object *v)
{
	if (v == NULL)
		return SV_ERR_NOMEM;
	if (json_object_object_add(o, k, v) != 0) {
		json_object_put(v);
		return SV_ERR_NOMEM;
	}
	return SV_OK;
}

static int encode(const struct client_expect *e, json_object *root)
{
	json_object *bins = json_object_new_object(), *pcrs = json_object_new_array();
	int r;
	if ((r = add(root, "version", json_object_new_int(1))) != SV_OK ||
	    (r = add(root, "build_hash", hexstr(e->build_hash, 32))) != SV_OK ||
	    (r = add(root, "binaries", bins)) != SV_OK) {
		json_object_put(pcrs);
		return r;
	}
	for (int i = 0; i < ATTEST_NBINARIES; i++)
		if ((r = add(bins, attest_binary_names[i], hexstr(e->binaries[i], 32))) != SV_OK) {
			json_object_put(pcrs);
			return r;
		}
	if ((r = add(root, "policy_hash", hexstr(e->policy_hash, 32))) != SV_OK ||
	    (r = add(root, "boot_pcrs", pcrs)) != SV_OK)
		return r;
	for (int i = 0; i < ATTEST_PCR_COUNT; i++)
		if ((e->boot_pcrs & (1u << i)) &&
		    json_object_array_add(pcrs, json_object_new_int(i)) != 0)
			return SV_ERR_NOMEM;
	if (e->has_boot_values) {
		json_object *v = json_object_new_object();
		if ((r = add(root, "boot_pcr_values", v)) != SV_OK)
			return r;
		for (int i = 0; i < ATTEST_PCR_COUNT; i++) {
			char k[4];
			snprintf(k, sizeof(k), "%d", i);
			if ((e->boot_pcrs & (1u << i)) &&
			    (r = add(v, k, hexstr(e->boot_values[i], 32))) != SV_OK)
				return r;
		}
	}
	if (e->n_allow > 0) {
		json_object *a = json_object_new_array();
		if ((r = add(root, "ima_allow", a)) != SV_OK)
			return r;
		for (size_t i = 0; i < e->n_allow; i++) {
			json_object *it = json_object_new_object();
			if (it == NULL || json_object_array_add(a, it) != 0) {
				json_object_put(it);
				return SV_ERR_NOMEM;
			}
			if ((r = add(it, "sha256", hexstr(e->allow[i].sha256, 32))) != SV_OK ||
			    (e->allow[i].path != NULL &&
			     (r = add(it, "path", json_object_new_string(e->allow[i].path))) !=
			         SV_OK))
				return r;
		}
	}
	if (e->has_server_key &&
	    (r = add(root, "server_public_key", hexstr(e->server_key, 32))) != SV_OK)
		return r;
	if (e->n_ca > 0) {
		json_object *a = json_object_new_array();
		if ((r = add(root, "tpm_ca", a)) != SV_OK)
			return r;
		for (size_t i = 0; i < e->n_ca; i++) {
			json_object *s = json_object_new_string(e->ca[i]);
			if (s == NULL || json_object_array_add(a, s) != 0) {
				json_object_put(s);
				return SV_ERR_NOMEM;
			}
		}
	}
	return SV_OK;
}

int client_expect_encode(const struct client_expect *e, char **out)
{
	json_object *root = json_object_new_object();
	*out = NULL;
	if (root == NULL)
		return SV_ERR_NOMEM;
	int r = encode(e, root);
	if (r == SV_OK) {
		const char *s = json_object_to_json_string_ext(
		    root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		              JSON_C_TO_STRING_NOSLASHESCAPE);
		size_t n = s ? strlen(s) : 0;
		char *t = s ? malloc(n + 2) : NULL;
		if (t == NULL) {
			r = SV_ERR_NOMEM;
		} else {
			memcpy(t, s, n);
			t[n] = '\n';
			t[n + 1] = '\0';
			*out = t;
		}
	}
	json_object_put(root);
	return r;
}
