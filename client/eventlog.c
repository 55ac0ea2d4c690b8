#include "client/eventlog.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"

#define EV_NO_ACTION     0x00000003u
#define ALG_SHA1         0x0004
#define ALG_SHA256       0x000b
#define MAX_ALGS         16
#define MAX_DIGEST       64
#define SPEC_ID          "Spec ID Event03"
#define STARTUP_LOCALITY "StartupLocality"

/* A little-endian reader over the log: every get checks bounds and fails without moving. */
struct rd {
	const uint8_t *p;
	size_t len, off;
};

static int get(struct rd *r, size_t n, const uint8_t **out)
{
	/* r->p is never NULL (client_eventlog_replay refuses a NULL log); the static analyzer
	 * forgets that when r goes through header(), hence the check (make check-analyze) */
	if (r->p == NULL || n > r->len - r->off)
		return -1;
	*out = r->p + r->off;
	r->off += n;
	return 0;
}

static int get_u32(struct rd *r, uint32_t *v)
{
	const uint8_t *p;
	if (get(r, 4, &p) != 0)
		return -1;
	*v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	return 0;
}

static int get_u16(struct rd *r, uint16_t *v)
{
	const uint8_t *p;
	if (get(r, 2, &p) != 0)
		return -1;
	*v = (uint16_t)(p[0] | p[1] << 8);
	return 0;
}

struct algs {
	uint32_t n;
	uint16_t id[MAX_ALGS];
	uint16_t size[MAX_ALGS];
};

static int fail(char *why, size_t why_len, size_t off, const char *what)
{
	snprintf(why, why_len, "event log, offset %zu: %s", off, what);
	return SV_ERR_INVALID;
}

/* The first record: TCG_PCClientPCREvent (SHA-1 format) with a TCG_EfiSpecIDEvent. */
static int header(struct rd *r, struct algs *a, char *why, size_t why_len)
{
	uint32_t pcr, type, size, platform, n;
	const uint8_t *digest, *ev, *sig, *ver;
	if (get_u32(r, &pcr) != 0 || get_u32(r, &type) != 0 || get(r, 20, &digest) != 0 ||
	    get_u32(r, &size) != 0)
		return fail(why, why_len, 0, "shorter than its header");
	if (pcr != 0 || type != EV_NO_ACTION)
		return fail(why, why_len, 0,
		            "the first event is not the Spec ID header (not a crypto-agile log)");
	if (get(r, size, &ev) != 0)
		return fail(why, why_len, 32, "the header runs past the end of the log");
	struct rd h = {.p = ev, .len = size};
	if (get(&h, 16, &sig) != 0 || memcmp(sig, SPEC_ID, 16) != 0)
		return fail(why, why_len, 32,
		            "the header is not \"Spec ID Event03\" (a SHA-1-only log is not "
		            "supported)");
	if (get_u32(&h, &platform) != 0 || get(&h, 4, &ver) != 0 || get_u32(&h, &n) != 0)
		return fail(why, why_len, 32, "truncated Spec ID header");
	if (ver[1] != 2)
		return fail(why, why_len, 32, "the Spec ID header's major version is not 2");
	if (n == 0 || n > MAX_ALGS)
		return fail(why, why_len, 32, "the Spec ID header lists 0 or too many algorithms");
	a->n = n;
	for (uint32_t i = 0; i < n; i++) {
		if (get_u16(&h, &a->id[i]) != 0 || get_u16(&h, &a->size[i]) != 0)
			return fail(why, why_len, 32, "truncated digest size list");
		if (a->size[i] == 0 || a->size[i] > MAX_DIGEST ||
		    (a->id[i] == ALG_SHA256 && a->size[i] != 32) ||
		    (a->id[i] == ALG_SHA1 && a->size[i] != 20))
			return fail(why, why_len, 32, "a digest size in the header is wrong");
		for (uint32_t j = 0; j < i; j++)
			if (a->id[j] == a->id[i])
				return fail(why, why_len, 32, "an algorithm is listed twice");
	}
	const uint8_t *vlen, *vendor;
	if (get(&h, 1, &vlen) != 0 || get(&h, vlen[0], &vendor) != 0 || h.off != h.len)
		return fail(why, why_len, 32, "the header's vendor data does not fill it exactly");
	return SV_OK;
}

static int find_alg(const struct algs *a, uint16_t id)
{
	for (uint32_t i = 0; i < a->n; i++)
		if (a->id[i] == id)
			return (int)i;
	return -1;
}

int client_eventlog_replay(struct client_eventlog_replay *out, const uint8_t *log, size_t len,
                           char *why, size_t why_len)
{
	struct rd r = {.p = log, .len = len};
	struct algs a;
	int rc;

	memset(out, 0, sizeof(*out));
	if (log == NULL || len > CLIENT_EVENTLOG_MAX)
		return fail(why, why_len, 0, "missing or larger than 16 MiB");
	if ((rc = header(&r, &a, why, why_len)) != SV_OK)
		return rc;
	if (find_alg(&a, ALG_SHA256) < 0)
		return fail(why, why_len, 32, "the log has no SHA-256 digests");
	while (r.off < r.len) {
		size_t at = r.off;
		uint32_t pcr, type, count, size;
		const uint8_t *sha256 = NULL, *data;
		if (get_u32(&r, &pcr) != 0 || get_u32(&r, &type) != 0 || get_u32(&r, &count) != 0)
			return fail(why, why_len, at, "truncated event");
		if (pcr >= CLIENT_EVENTLOG_PCRS)
			return fail(why, why_len, at, "PCR index out of range (0-23)");
		if (count == 0 || count > a.n)
			return fail(why, why_len, at, "digest count differs from the header's");
		for (uint32_t i = 0; i < count; i++) {
			uint16_t alg;
			const uint8_t *d;
			int k;
			if (get_u16(&r, &alg) != 0)
				return fail(why, why_len, at, "truncated digest list");
			if ((k = find_alg(&a, alg)) < 0)
				return fail(why, why_len, at,
				            "a digest algorithm the header does not list");
			if (get(&r, a.size[k], &d) != 0)
				return fail(why, why_len, at, "truncated digest");
			if (alg == ALG_SHA256) {
				if (sha256 != NULL)
					return fail(why, why_len, at, "two SHA-256 digests");
				sha256 = d;
			}
		}
		if (get_u32(&r, &size) != 0 || get(&r, size, &data) != 0)
			return fail(why, why_len, at,
			            "the event data runs past the end of the log");
		out->events++;
		if (type == EV_NO_ACTION) {
			/* TCG PFP §10.4.5.3: the locality the firmware started from (H-CRTM: 4). */
			if (pcr == 0 && size == sizeof(STARTUP_LOCALITY) + 1 &&
			    memcmp(data, STARTUP_LOCALITY, sizeof(STARTUP_LOCALITY)) == 0) {
				if (out->extended & 1u)
					return fail(why, why_len, at,
					            "StartupLocality after PCR 0 was extended");
				memset(out->pcr[0], 0, 32);
				out->pcr[0][31] = data[sizeof(STARTUP_LOCALITY)];
			}
			continue;
		}
		if (sha256 == NULL)
			return fail(why, why_len, at,
			            "an extending event without a SHA-256 digest");
		crypto_hash_sha256_state st;
		crypto_hash_sha256_init(&st);
		crypto_hash_sha256_update(&st, out->pcr[pcr], 32);
		crypto_hash_sha256_update(&st, sha256, 32);
		crypto_hash_sha256_final(&st, out->pcr[pcr]);
		out->extended |= 1u << pcr;
	}
	return SV_OK;
}
