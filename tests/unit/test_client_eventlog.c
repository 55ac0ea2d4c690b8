/*
 * client/eventlog.c: the TCG crypto-agile event log parser and SHA-256 replay. Logs are built
 * here byte by byte (independently of the parser); replay results are compared with PCR values
 * computed directly; every truncation, hostile length and wrong header is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "client/eventlog.h"
#include "common/err.h"

#define EV_NO_ACTION 3
#define EV_SEPARATOR 4
#define EV_ACTION    5

struct log {
	uint8_t b[8192];
	size_t n;
	size_t boundaries[64]; /* offsets where a complete log ends */
	size_t nb;
};

static void u32(struct log *l, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		l->b[l->n++] = (uint8_t)(v >> (8 * i));
}
static void u16(struct log *l, uint16_t v)
{
	l->b[l->n++] = (uint8_t)v;
	l->b[l->n++] = (uint8_t)(v >> 8);
}
static void bytes(struct log *l, const void *p, size_t n)
{
	memcpy(l->b + l->n, p, n);
	l->n += n;
}

/* Spec ID Event03 header listing SHA-1 (20) and SHA-256 (32). */
static void header(struct log *l)
{
	uint8_t zero[20] = {0};
	u32(l, 0);
	u32(l, EV_NO_ACTION);
	bytes(l, zero, 20);
	u32(l, 16 + 4 + 4 + 4 + 2 * 4 + 1);
	bytes(l, "Spec ID Event03", 16);
	u32(l, 0);                            /* platform class */
	bytes(l, (uint8_t[]){0, 2, 0, 2}, 4); /* minor, major, errata, uintn */
	u32(l, 2);
	u16(l, 0x0004), u16(l, 20);
	u16(l, 0x000b), u16(l, 32);
	l->b[l->n++] = 0; /* vendor info size */
	l->boundaries[l->nb++] = l->n;
}

static void event(struct log *l, uint32_t pcr, uint32_t type, const uint8_t sha256[32],
                  const void *data, uint32_t len)
{
	uint8_t sha1[20];
	memset(sha1, 0x11, sizeof(sha1));
	u32(l, pcr);
	u32(l, type);
	u32(l, 2);
	u16(l, 0x0004);
	bytes(l, sha1, 20);
	u16(l, 0x000b);
	bytes(l, sha256, 32);
	u32(l, len);
	bytes(l, data, len);
	l->boundaries[l->nb++] = l->n;
}

static void extend(uint8_t pcr[32], const uint8_t d[32])
{
	uint8_t buf[64];
	memcpy(buf, pcr, 32);
	memcpy(buf + 32, d, 32);
	crypto_hash_sha256(pcr, buf, 64);
}

/* A log with events on PCRs 0, 4 and 7, a StartupLocality and an ignored EV_NO_ACTION. */
static void sample(struct log *l, uint8_t want[24][32])
{
	uint8_t d[32];
	memset(l, 0, sizeof(*l));
	memset(want, 0, 24 * 32);
	header(l);
	uint8_t loc[17] = "StartupLocality";
	loc[16] = 3;
	memset(d, 0, 32);
	event(l, 0, EV_NO_ACTION, d, loc, sizeof(loc));
	want[0][31] = 3;
	for (int i = 0; i < 6; i++) {
		uint32_t pcr = i % 3 == 0 ? 0 : i % 3 == 1 ? 4 : 7;
		crypto_hash_sha256(d, (const uint8_t *)&i, sizeof(i));
		event(l, pcr, EV_ACTION, d, "data", 4);
		extend(want[pcr], d);
	}
	memset(d, 0xee, 32); /* not extended: EV_NO_ACTION */
	event(l, 4, EV_NO_ACTION, d, "x", 1);
}

static void test_replay(void **state)
{
	struct log l;
	uint8_t want[24][32];
	struct client_eventlog_replay rp;
	char why[256];
	sample(&l, want);
	assert_int_equal(client_eventlog_replay(&rp, l.b, l.n, why, sizeof(why)), SV_OK);
	assert_memory_equal(rp.pcr, want, sizeof(want));
	assert_int_equal(rp.extended, (1u << 0) | (1u << 4) | (1u << 7));
	assert_int_equal(rp.events, 8);
}

static void test_every_truncation(void **state)
{
	struct log l;
	uint8_t want[24][32];
	struct client_eventlog_replay rp;
	char why[256];
	sample(&l, want);
	for (size_t n = 0; n < l.n; n++) {
		int boundary = 0;
		for (size_t k = 0; k < l.nb; k++)
			boundary |= l.boundaries[k] == n;
		int r = client_eventlog_replay(&rp, l.b, n, why, sizeof(why));
		if (boundary) {
			assert_int_equal(r, SV_OK);
		} else {
			assert_int_equal(r, SV_ERR_INVALID);
			assert_non_null(strstr(why, "event log"));
		}
	}
}

/* Rewrites the little-endian u32 at off and expects a refusal mentioning text. */
static void refused_u32(size_t off, uint32_t v, const char *text)
{
	struct log l;
	uint8_t want[24][32];
	struct client_eventlog_replay rp;
	char why[256];
	sample(&l, want);
	for (int i = 0; i < 4; i++)
		l.b[off + (size_t)i] = (uint8_t)(v >> (8 * i));
	assert_int_equal(client_eventlog_replay(&rp, l.b, l.n, why, sizeof(why)), SV_ERR_INVALID);
	assert_non_null(strstr(why, text));
}

static void test_hostile_header(void **state)
{
	refused_u32(0, 1, "not the Spec ID header");             /* PCR index of the header */
	refused_u32(4, 1, "not the Spec ID header");             /* its type */
	refused_u32(28, 0xffffffffu, "runs past the end");       /* its size */
	refused_u32(28, 0, "not \"Spec ID Event03\"");           /* empty header */
	refused_u32(32, 0x78657053u, "not \"Spec ID Event03\""); /* "Spex" */
	refused_u32(32 + 24, 0, "0 or too many algorithms");
	refused_u32(32 + 24, 0xffffffffu, "0 or too many algorithms");
	refused_u32(32 + 24, 3, "truncated digest size list");
	/* SHA-256 declared 20 bytes long */
	refused_u32(32 + 32, 0x0014000b, "digest size in the header is wrong");
	/* the same algorithm twice */
	refused_u32(32 + 32, 0x00140004, "listed twice");
}

static void test_hostile_event(void **state)
{
	size_t ev = 32 + 16 + 4 + 4 + 4 + 8 + 1; /* first event after the header */
	refused_u32(ev, 24, "PCR index out of range");
	refused_u32(ev, 0xffffffffu, "PCR index out of range");
	refused_u32(ev + 8, 0, "digest count");
	refused_u32(ev + 8, 3, "digest count");
	refused_u32(ev + 8, 0xffffffffu, "digest count");
	refused_u32(ev + 12, 0x0000000c, "does not list"); /* SHA-384 id where SHA-1 was */
	refused_u32(ev + 12 + 2 + 20 + 2 + 32, 0xffffffffu, "runs past the end");
	refused_u32(ev + 12 + 2 + 20 + 2 + 32, 0x7fffffffu, "runs past the end");
}

static void test_not_agile(void **state)
{
	struct client_eventlog_replay rp;
	char why[256];
	uint8_t none[1] = {0};
	assert_int_equal(client_eventlog_replay(&rp, none, 0, why, sizeof(why)), SV_ERR_INVALID);
	assert_int_equal(client_eventlog_replay(&rp, NULL, 0, why, sizeof(why)), SV_ERR_INVALID);
	assert_int_equal(
	    client_eventlog_replay(&rp, none, CLIENT_EVENTLOG_MAX + 1, why, sizeof(why)),
	    SV_ERR_INVALID);
	assert_non_null(strstr(why, "16 MiB"));
}

/* A log listing SHA-1 only has nothing to replay the SHA-256 bank from. */
static void test_no_sha256(void **state)
{
	struct log l;
	uint8_t want[24][32];
	struct client_eventlog_replay rp;
	char why[256];
	sample(&l, want);
	l.b[32 + 24] = 1; /* one algorithm: SHA-1; the SHA-256 entry becomes vendor data junk */
	assert_int_equal(client_eventlog_replay(&rp, l.b, l.n, why, sizeof(why)), SV_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_replay),         cmocka_unit_test(test_every_truncation),
	    cmocka_unit_test(test_hostile_header), cmocka_unit_test(test_hostile_event),
	    cmocka_unit_test(test_not_agile),      cmocka_unit_test(test_no_sha256),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
