#include "client/imalog.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "common/err.h"

#define SIG_MAX      2048 /* an ima-sig signature (IMA digital signature v2: header + RSA/ECDSA) */
#define TEMPLATE_MAX (4 + 8 + 32 + 4 + CLIENT_IMALOG_PATH_MAX + 1 + 4 + SIG_MAX)

struct entry {
	uint8_t tmpl_hash[32]; /* as logged (20 or 32 bytes used) */
	size_t tmpl_hash_len;
	uint8_t file_hash[32];
	char path[CLIENT_IMALOG_PATH_MAX + 1];
	int ima_sig; /* template ima-sig: a third field, the file's signature */
	size_t sig_len;
	uint8_t sig[SIG_MAX];
};

static int hex(const char *s, size_t n, uint8_t *out, size_t out_len)
{
	size_t bin_len = 0;
	const char *end = NULL;
	if (n != 2 * out_len)
		return -1;
	for (size_t i = 0; i < n; i++) /* lower-case hex only, as the kernel prints it */
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -1;
	if (sodium_hex2bin(out, out_len, s, n, NULL, &bin_len, &end) != 0 || bin_len != out_len)
		return -1;
	return 0;
}

/* Splits one line (without its newline) into an entry. */
static int parse_line(struct entry *e, const char *line, size_t n, const char **what)
{
	const char *p = line, *end = line + n, *sp;
#define FIELD(len_out)                                                                             \
	do {                                                                                       \
		sp = memchr(p, ' ', (size_t)(end - p));                                            \
		if (sp == NULL) {                                                                  \
			*what = "fewer than five fields";                                          \
			return -1;                                                                 \
		}                                                                                  \
		len_out = (size_t)(sp - p);                                                        \
	} while (0)
	size_t l;
	FIELD(l);
	if (l != 2 || memcmp(p, "10", 2) != 0) {
		*what = "not a PCR 10 entry (IMA must measure into PCR 10)";
		return -1;
	}
	p = sp + 1;
	FIELD(l);
	e->tmpl_hash_len = l / 2;
	if ((l != 40 && l != 64) || hex(p, l, e->tmpl_hash, l / 2) != 0) {
		*what = "the template hash is not 40 or 64 hex digits";
		return -1;
	}
	p = sp + 1;
	FIELD(l);
	e->ima_sig = l == 7 && memcmp(p, "ima-sig", 7) == 0;
	if (!e->ima_sig && (l != 6 || memcmp(p, "ima-ng", 6) != 0)) {
		*what = "not an ima-ng or ima-sig entry (set ima_template=ima-ng)";
		return -1;
	}
	p = sp + 1;
	FIELD(l);
	if (l != 7 + 64 || memcmp(p, "sha256:", 7) != 0 || hex(p + 7, 64, e->file_hash, 32) != 0) {
		*what = "the file hash is not sha256:<64 hex> (set ima_hash=sha256)";
		return -1;
	}
	p = sp + 1;
#undef FIELD
	if (e->ima_sig) {
		/* "<path> <signature hex>": the signature (maybe empty) has no spaces, the path may
		 */
		const char *last = NULL;
		for (const char *q = p; q < end; q++)
			if (*q == ' ')
				last = q;
		size_t sl = last ? (size_t)(end - last - 1) : 0;
		if (last == NULL || sl % 2 != 0 || sl / 2 > SIG_MAX ||
		    (sl > 0 && hex(last + 1, sl, e->sig, sl / 2) != 0)) {
			*what = "the ima-sig signature field is not hex of at most 2048 bytes";
			return -1;
		}
		e->sig_len = sl / 2;
		end = last;
	}
	l = (size_t)(end - p);
	if (l == 0 || l > CLIENT_IMALOG_PATH_MAX || memchr(p, '\0', l) != NULL) {
		*what = "the path is empty, too long or contains a NUL";
		return -1;
	}
	memcpy(e->path, p, l);
	e->path[l] = '\0';
	return 0;
}

/* The template data of an entry: d-ng, n-ng (and sig for ima-sig), each with a u32le length. */
static size_t template_data(const struct entry *e, uint8_t out[static TEMPLATE_MAX])
{
	size_t o = 0, plen = strlen(e->path) + 1;
	static const uint8_t dlen[4] = {8 + 32, 0, 0, 0};
	memcpy(out + o, dlen, 4), o += 4;
	memcpy(out + o, "sha256:", 8), o += 8; /* with its NUL */
	memcpy(out + o, e->file_hash, 32), o += 32;
	uint8_t le[4] = {(uint8_t)plen, (uint8_t)(plen >> 8), (uint8_t)(plen >> 16), 0};
	memcpy(out + o, le, 4), o += 4;
	memcpy(out + o, e->path, plen), o += plen;
	if (e->ima_sig) {
		uint8_t sl[4] = {(uint8_t)e->sig_len, (uint8_t)(e->sig_len >> 8), 0, 0};
		memcpy(out + o, sl, 4), o += 4;
		memcpy(out + o, e->sig, e->sig_len), o += e->sig_len;
	}
	return o;
}

static int is_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* The logged template hash equals SHA-1 (40 hex) or SHA-256 (64 hex) of the template data. */
static int template_hash_ok(const struct entry *e, const uint8_t *t, size_t tlen,
                            const uint8_t sha256[static 32])
{
	if (e->tmpl_hash_len == 32)
		return sodium_memcmp(sha256, e->tmpl_hash, 32) == 0;
	uint8_t sha1[20];
	unsigned int n = 0;
	if (EVP_Digest(t, tlen, sha1, &n, EVP_sha1(), NULL) != 1 || n != 20)
		return 0;
	return sodium_memcmp(sha1, e->tmpl_hash, 20) == 0;
}

int client_imalog_check(struct client_imalog_result *res, const char *log, size_t len,
                        const uint8_t pcr10[static 32], client_imalog_allow_fn allow, void *arg,
                        char *why, size_t why_len)
{
	struct entry e;
	uint8_t pcr[32] = {0}, t[TEMPLATE_MAX], d[32];
	size_t lineno = 0, bad_line = 0;
	char bad_path[256] = "";
	int matched = 0; /* the empty prefix does not count: IMA always logs boot_aggregate */
	size_t matched_at = 0;

	memset(res, 0, sizeof(*res));
	if (log == NULL || len > CLIENT_IMALOG_MAX) {
		snprintf(why, why_len, "IMA log missing or larger than 16 MiB");
		return SV_ERR_INVALID;
	}
	for (size_t off = 0; off < len;) {
		const char *line = log + off, *what = NULL;
		const char *nl = memchr(line, '\n', len - off);
		lineno++;
		if (nl == NULL) {
			snprintf(why, why_len, "IMA log line %zu: no end of line", lineno);
			return SV_ERR_INVALID;
		}
		size_t n = (size_t)(nl - line);
		off += n + 1;
		memset(&e, 0, sizeof(e));
		if (parse_line(&e, line, n, &what) != 0) {
			snprintf(why, why_len, "IMA log line %zu: %s", lineno, what);
			return SV_ERR_INVALID;
		}
		size_t tlen = template_data(&e, t);
		int violation = is_zero(e.tmpl_hash, e.tmpl_hash_len);
		if (violation) {
			memset(d, 0xff, sizeof(d));
		} else {
			crypto_hash_sha256(d, t, tlen);
			if (!template_hash_ok(&e, t, tlen, d)) {
				snprintf(why, why_len,
				         "IMA log line %zu: the template hash does not match the "
				         "file hash and path",
				         lineno);
				return SV_ERR_INVALID;
			}
		}
		crypto_hash_sha256_state st;
		crypto_hash_sha256_init(&st);
		crypto_hash_sha256_update(&st, pcr, 32);
		crypto_hash_sha256_update(&st, d, 32);
		crypto_hash_sha256_final(&st, pcr);
		if (matched)
			continue; /* after the attested prefix: counted, not judged */
		int ok = !violation && ((lineno == 1 && strcmp(e.path, "boot_aggregate") == 0) ||
		                        allow(arg, e.file_hash, e.path));
		if (!ok && bad_line == 0) {
			bad_line = lineno;
			snprintf(bad_path, sizeof(bad_path), "%s%s",
			         violation ? "a measurement violation (file changed while "
			                     "measured): "
			                   : "",
			         e.path);
		}
		if (sodium_memcmp(pcr, pcr10, 32) == 0) {
			matched = 1;
			matched_at = lineno;
		}
	}
	res->total = lineno;
	res->entries = matched_at;
	if (!matched) {
		snprintf(why, why_len,
		         "the IMA log (%zu entries) does not replay to the quoted PCR 10; the log "
		         "was altered or is not this host's",
		         lineno);
		return SV_ERR_AUTH;
	}
	if (bad_line != 0) {
		snprintf(
		    why, why_len,
		    "IMA log line %zu: %s ran on the host, and it is neither a sealvault binary "
		    "of the expected build nor in ima_allow",
		    bad_line, bad_path);
		return SV_ERR_AUTH;
	}
	return SV_OK;
}
