/* Unit tests for common/audit: the SV_MSG_AUDIT payload, the identifier hash, the journal fields
 * and the stderr line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/audit.h"
#include "common/err.h"

/* A record of each kind with every field its kind carries set to something recognisable. */
static struct audit_record sample(unsigned kind)
{
	struct audit_record r;
	memset(&r, 0, sizeof(r));
	r.kind = (uint8_t)kind;
	unsigned f = audit_kind_fields(kind);
	if (f & AUDIT_F_SEQ)
		r.seq = 0x0102030405060708ull;
	if (f & AUDIT_F_COUNTER)
		r.counter = 4242;
	if (f & AUDIT_F_ID)
		for (size_t i = 0; i < AUDIT_ID_HASH_LEN; i++)
			r.id_hash[i] = (uint8_t)(0xa0 + i);
	if (f & AUDIT_F_LIMIT)
		r.guess_limit = 10;
	if (f & AUDIT_F_LEFT)
		r.attempts_left = 7;
	if (f & AUDIT_F_KNOWN)
		r.known = 1;
	if (f & AUDIT_F_RESTORED)
		r.restored = 1;
	if (f & AUDIT_F_VERDICT)
		r.verdict = AUDIT_ROLL_FORWARD;
	if (f & AUDIT_F_SCHEME)
		r.hybrid = 1;
	if (f & AUDIT_F_PENALTY)
		r.penalty = 1;
	if (f & AUDIT_F_FRAMES)
		r.frames = 12;
	if (f & AUDIT_F_JBYTES)
		r.journal_bytes = 3000;
	if (f & AUDIT_F_TAIL)
		r.tail_bytes = 5;
	if (f & AUDIT_F_USERS)
		r.users = 99;
	if (f & AUDIT_F_UNCLEAN)
		r.unclean_boots = 3;
	if (f & AUDIT_F_OPERATOR)
		r.operator= 1;
	if (f & AUDIT_F_DESTROYED)
		r.destroyed = 1;
	if (f & AUDIT_F_KEY)
		memset(r.key, 0x5a, sizeof(r.key));
	return r;
}

/* The payload length of each kind: the wire contract (docs/protocol.md). */
static const size_t lengths[AUDIT_KINDS] = {
    [AUDIT_KEY] = 2 + 32,
    [AUDIT_STARTUP] = 2 + 8 + 8 + 1 + 1 + 1 + 8 + 8 + 8 + 8,
    [AUDIT_PENALTY] = 2 + 8 + 8 + 8 + 8 + 8,
    [AUDIT_REGISTER] = 2 + 8 + 8 + 16 + 1,
    [AUDIT_GUESS] = 2 + 8 + 8 + 16 + 1 + 1 + 1,
    [AUDIT_DESTROYED] = 2 + 8 + 8 + 16 + 1 + 1,
    [AUDIT_RECOVERED] = 2 + 8 + 8 + 16 + 1,
    [AUDIT_LOGIN_RESET] = 2 + 8 + 8 + 16 + 1,
    [AUDIT_DELETED] = 2 + 8 + 8 + 16 + 1,
    [AUDIT_PASSWORD_CHANGED] = 2 + 8 + 8 + 16 + 1,
    [AUDIT_REALM_REGISTER] = 2 + 8 + 8 + 16 + 1,
    [AUDIT_REALM_GUESS] = 2 + 8 + 8 + 16 + 1 + 1,
    [AUDIT_REALM_DESTROYED] = 2 + 8 + 8 + 16 + 1,
    [AUDIT_REALM_RECOVERED] = 2 + 8 + 8 + 16 + 1,
    [AUDIT_REALM_DELETED] = 2 + 8 + 8 + 16 + 1,
};

static void test_roundtrip_every_kind(void **state)
{
	for (unsigned k = 0; k < AUDIT_KINDS; k++) {
		struct audit_record r = sample(k), d;
		uint8_t p[AUDIT_PAYLOAD_MAX];
		size_t n = 0;
		assert_int_equal(audit_encode(&r, p, &n), SV_OK);
		assert_int_equal(n, lengths[k]);
		assert_true(n <= AUDIT_PAYLOAD_MAX);
		assert_int_equal(p[0], AUDIT_VERSION);
		assert_int_equal(p[1], k);
		memset(&d, 0xee, sizeof(d));
		assert_int_equal(audit_decode(p, n, &d), SV_OK);
		assert_memory_equal(&d, &r, sizeof(r));
	}
}

/* One record byte for byte, so that the wire format cannot drift unnoticed. */
static void test_guess_bytes_pinned(void **state)
{
	struct audit_record r = sample(AUDIT_GUESS);
	uint8_t p[AUDIT_PAYLOAD_MAX];
	size_t n = 0;
	static const uint8_t want[] = {
	    1,    4,                                              /* version, kind */
	    1,    2,    3,    4,    5,    6,    7,    8,          /* seq */
	    0,    0,    0,    0,    0,    0,    0x10, 0x92,       /* counter 4242 */
	    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, /* id hash */
	    0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 7,    10,   /* ..., left, limit */
	    1,                                                    /* known */
	};
	assert_int_equal(audit_encode(&r, p, &n), SV_OK);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(p, want, sizeof(want));
}

/* A realm guess byte for byte: kind 11, and no `known` (a realm charges only registered
 * records), so a /v1 guess's bytes never decode as a realm guess's nor the other way round. */
static void test_realm_guess_bytes_pinned(void **state)
{
	struct audit_record r = sample(AUDIT_REALM_GUESS), d;
	uint8_t p[AUDIT_PAYLOAD_MAX];
	size_t n = 0;
	static const uint8_t want[] = {
	    1,    11,                                             /* version, kind */
	    1,    2,    3,    4,    5,    6,    7,    8,          /* seq */
	    0,    0,    0,    0,    0,    0,    0x10, 0x92,       /* counter 4242 */
	    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, /* id hash */
	    0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 7,    10,   /* ..., left, limit */
	};
	assert_int_equal(AUDIT_REALM_GUESS, 11);
	assert_int_equal(audit_encode(&r, p, &n), SV_OK);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(p, want, sizeof(want));
	p[1] = AUDIT_GUESS; /* one byte short of a /v1 guess */
	assert_int_equal(audit_decode(p, n, &d), SV_ERR_INVALID);
	struct audit_record g = sample(AUDIT_GUESS);
	assert_int_equal(audit_encode(&g, p, &n), SV_OK);
	p[1] = AUDIT_REALM_GUESS; /* one byte long of a realm guess */
	assert_int_equal(audit_decode(p, n, &d), SV_ERR_INVALID);
}

/* Hostile lengths for every kind: 0, 1, one short, one long, the maximum; nothing decodes. */
static void test_lengths_rejected(void **state)
{
	static uint8_t big[0x10000];
	for (unsigned k = 0; k < AUDIT_KINDS; k++) {
		struct audit_record r = sample(k), d, untouched;
		uint8_t p[AUDIT_PAYLOAD_MAX + 1];
		size_t n = 0;
		assert_int_equal(audit_encode(&r, p, &n), SV_OK);
		p[n] = 0;
		memset(&d, 0x77, sizeof(d));
		untouched = d;
		assert_int_not_equal(audit_decode(p, 0, &d), SV_OK);
		assert_int_not_equal(audit_decode(p, 1, &d), SV_OK);
		assert_int_equal(audit_decode(p, n - 1, &d), SV_ERR_INVALID);
		assert_int_equal(audit_decode(p, n + 1, &d), SV_ERR_INVALID);
		memcpy(big, p, n);
		assert_int_equal(audit_decode(big, sizeof(big), &d), SV_ERR_INVALID);
		assert_memory_equal(&d, &untouched, sizeof(d));
	}
}

static void test_version_and_kind_rejected(void **state)
{
	struct audit_record r = sample(AUDIT_DELETED), d;
	uint8_t p[AUDIT_PAYLOAD_MAX];
	size_t n = 0;
	assert_int_equal(audit_encode(&r, p, &n), SV_OK);
	p[0] = 2;
	assert_int_equal(audit_decode(p, n, &d), SV_ERR_PROTOCOL);
	p[0] = AUDIT_VERSION;
	for (unsigned k = AUDIT_KINDS; k <= 0xff; k++) {
		p[1] = (uint8_t)k;
		assert_int_equal(audit_decode(p, n, &d), SV_ERR_PROTOCOL);
	}
	struct audit_record bad = {.kind = AUDIT_KINDS};
	assert_int_equal(audit_encode(&bad, p, &n), SV_ERR_INVALID);
}

/* Booleans other than 0/1, a verdict past "refused", attempts left not below the limit. */
static void test_ranges(void **state)
{
	struct {
		unsigned kind;
		size_t off; /* byte in the payload */
		uint8_t value;
	} bad[] = {
	    {AUDIT_GUESS, 36, 2},                   /* known */
	    {AUDIT_GUESS, 34, 10},                  /* attempts left == limit */
	    {AUDIT_GUESS, 34, 0xff},                /* attempts left > limit */
	    {AUDIT_RECOVERED, 34, 2},               /* restored */
	    {AUDIT_STARTUP, 18, AUDIT_REFUSED + 1}, /* verdict */
	    {AUDIT_STARTUP, 19, 2},                 /* scheme */
	    {AUDIT_STARTUP, 20, 2},                 /* penalty */
	    {AUDIT_DELETED, 34, 2},                 /* by operator */
	    {AUDIT_REALM_GUESS, 34, 10},            /* attempts left == limit */
	    {AUDIT_REALM_RECOVERED, 34, 2},         /* restored */
	    {AUDIT_REALM_DELETED, 34, 2},           /* by operator */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct audit_record r = sample(bad[i].kind), d;
		uint8_t p[AUDIT_PAYLOAD_MAX];
		size_t n = 0;
		assert_int_equal(audit_encode(&r, p, &n), SV_OK);
		assert_int_equal(audit_decode(p, n, &d), SV_OK);
		p[bad[i].off] = bad[i].value;
		assert_int_equal(audit_decode(p, n, &d), SV_ERR_INVALID);
	}
	struct audit_record r = sample(AUDIT_GUESS);
	uint8_t p[AUDIT_PAYLOAD_MAX];
	size_t n = 0;
	r.attempts_left = r.guess_limit;
	assert_int_equal(audit_encode(&r, p, &n), SV_ERR_INVALID);
	r = sample(AUDIT_STARTUP);
	r.verdict = 9;
	assert_int_equal(audit_encode(&r, p, &n), SV_ERR_INVALID);
}

static void test_message_ids(void **state)
{
	assert_null(audit_message_id(AUDIT_KEY));
	assert_null(audit_kind_name(AUDIT_KEY));
	assert_null(audit_message_id(AUDIT_KINDS));
	for (unsigned k = 1; k < AUDIT_KINDS; k++) {
		const char *id = audit_message_id(k);
		assert_non_null(id);
		assert_non_null(audit_kind_name(k));
		assert_int_equal(strlen(id), 32);
		assert_int_equal(strspn(id, "0123456789abcdef"), 32);
		for (unsigned j = 1; j < k; j++) {
			assert_string_not_equal(audit_message_id(j), id);
			assert_string_not_equal(audit_kind_name(j), audit_kind_name(k));
		}
	}
	assert_string_equal(audit_message_id(AUDIT_GUESS), "c74c402f1e3c4e8c83df2890fc67f47c");
	/* the realm kinds: names and MESSAGE_IDs of their own (docs/operations.md lists them) */
	static const struct {
		unsigned kind;
		const char *name, *id;
	} realm[] = {
	    {AUDIT_REALM_REGISTER, "realm-register", "7723956f803543719a6ec89fcef92f09"},
	    {AUDIT_REALM_GUESS, "realm-guess", "d051bd47a6c744d29671bc062f265ac2"},
	    {AUDIT_REALM_DESTROYED, "realm-destroyed", "88f3d38a0ce946879fa77f45878f8955"},
	    {AUDIT_REALM_RECOVERED, "realm-recovered", "7690d79d3bbe48dca218449ef485dc96"},
	    {AUDIT_REALM_DELETED, "realm-deleted", "f8169e4267754a63acbf7595bfb47113"},
	};
	for (size_t i = 0; i < sizeof(realm) / sizeof(realm[0]); i++) {
		assert_string_equal(audit_kind_name(realm[i].kind), realm[i].name);
		assert_string_equal(audit_message_id(realm[i].kind), realm[i].id);
	}
	assert_int_equal(AUDIT_KINDS, 15);
}

static void test_id_hash(void **state)
{
	uint8_t k1[AUDIT_KEY_LEN], k2[AUDIT_KEY_LEN], a[AUDIT_ID_HASH_LEN], b[AUDIT_ID_HASH_LEN],
	    want[AUDIT_ID_HASH_LEN];
	memset(k1, 1, sizeof(k1));
	memset(k2, 2, sizeof(k2));
	audit_id_hash(a, k1, (const uint8_t *)"alice", 5);
	crypto_generichash(want, sizeof(want), (const uint8_t *)"alice", 5, k1, sizeof(k1));
	assert_memory_equal(a, want, sizeof(a));
	audit_id_hash(b, k2, (const uint8_t *)"alice", 5);
	assert_memory_not_equal(a, b, sizeof(a));
	audit_id_hash(b, k1, (const uint8_t *)"alicf", 5);
	assert_memory_not_equal(a, b, sizeof(a));
}

static void test_fields_guess(void **state)
{
	struct audit_record r = sample(AUDIT_GUESS);
	struct audit_fields f;
	assert_int_equal(audit_fields(&r, &f), 10);
	assert_string_equal(f.text[0], "MESSAGE=sealvault audit: guess charged for "
	                               "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf (7 attempts left)");
	assert_string_equal(f.text[1], "PRIORITY=6");
	assert_string_equal(f.text[2], "MESSAGE_ID=c74c402f1e3c4e8c83df2890fc67f47c");
	assert_string_equal(f.text[3], "SEALVAULT_EVENT=guess");
	assert_string_equal(f.text[4], "SEALVAULT_SEQ=72623859790382856");
	assert_string_equal(f.text[5], "SEALVAULT_COUNTER=4242");
	assert_string_equal(f.text[6], "SEALVAULT_ID_HASH=a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
	assert_string_equal(f.text[7], "SEALVAULT_ATTEMPTS_LEFT=7");
	assert_string_equal(f.text[8], "SEALVAULT_GUESS_LIMIT=10");
	assert_string_equal(f.text[9], "SEALVAULT_KNOWN=yes");
}

/* A realm's share released: its own event, MESSAGE_ID and words, the /v1 recovery's fields. */
static void test_fields_realm_recovered(void **state)
{
	struct audit_record r = sample(AUDIT_REALM_RECOVERED);
	struct audit_fields f;
	assert_int_equal(audit_fields(&r, &f), 8);
	assert_string_equal(f.text[0], "MESSAGE=sealvault audit: realm recovery: share released: "
	                               "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf (record restored by its "
	                               "last guess)");
	assert_string_equal(f.text[1], "PRIORITY=6");
	assert_string_equal(f.text[2], "MESSAGE_ID=7690d79d3bbe48dca218449ef485dc96");
	assert_string_equal(f.text[3], "SEALVAULT_EVENT=realm-recovered");
	assert_string_equal(f.text[6], "SEALVAULT_ID_HASH=a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
	assert_string_equal(f.text[7], "SEALVAULT_RESTORED=yes");
	r = sample(AUDIT_REALM_DESTROYED);
	assert_int_equal(audit_priority(&r), LOG_WARNING);
	assert_int_equal(audit_fields(&r, &f), 8);
	assert_string_equal(f.text[7], "SEALVAULT_GUESS_LIMIT=10");
}

static void test_fields_startup(void **state)
{
	struct audit_record r = sample(AUDIT_STARTUP);
	struct audit_fields f;
	assert_int_equal(audit_fields(&r, &f), 13);
	assert_string_equal(f.text[1], "PRIORITY=4"); /* roll forward: a warning */
	assert_string_equal(f.text[6], "SEALVAULT_VERDICT=roll-forward");
	assert_string_equal(f.text[7], "SEALVAULT_COUNTER_SCHEME=hybrid");
	assert_string_equal(f.text[8], "SEALVAULT_PENALTY=yes");
	assert_string_equal(f.text[9], "SEALVAULT_JOURNAL_FRAMES=12");
	r.verdict = AUDIT_CLEAN;
	r.tail_bytes = 0;
	assert_int_equal(audit_priority(&r), LOG_NOTICE);
	r.verdict = AUDIT_REFUSED;
	assert_int_equal(audit_priority(&r), LOG_ERR);
	struct audit_record key = sample(AUDIT_KEY);
	assert_int_equal(audit_fields(&key, &f), SV_ERR_INVALID);
}

static void test_line(void **state)
{
	struct audit_record r = sample(AUDIT_DESTROYED);
	char line[AUDIT_LINE_MAX];
	assert_int_equal(audit_line(&r, line), SV_OK);
	assert_string_equal(line,
	                    "audit: event=destroyed seq=72623859790382856 counter=4242 "
	                    "id_hash=a0a1a2a3a4a5a6a7a8a9aaabacadaeaf guess_limit=10 known=yes");
	r = sample(AUDIT_REALM_GUESS);
	assert_int_equal(audit_line(&r, line), SV_OK);
	assert_string_equal(line, "audit: event=realm-guess seq=72623859790382856 counter=4242 "
	                          "id_hash=a0a1a2a3a4a5a6a7a8a9aaabacadaeaf attempts_left=7 "
	                          "guess_limit=10");
	struct audit_record key = sample(AUDIT_KEY);
	assert_int_equal(audit_line(&key, line), SV_ERR_INVALID);
	/* the longest record, with every number at its maximum, fits */
	r = sample(AUDIT_STARTUP);
	r.seq = r.counter = r.frames = r.journal_bytes = r.tail_bytes = r.users = UINT64_MAX;
	assert_int_equal(audit_line(&r, line), SV_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_every_kind),
	    cmocka_unit_test(test_guess_bytes_pinned),
	    cmocka_unit_test(test_realm_guess_bytes_pinned),
	    cmocka_unit_test(test_lengths_rejected),
	    cmocka_unit_test(test_version_and_kind_rejected),
	    cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_message_ids),
	    cmocka_unit_test(test_id_hash),
	    cmocka_unit_test(test_fields_guess),
	    cmocka_unit_test(test_fields_realm_recovered),
	    cmocka_unit_test(test_fields_startup),
	    cmocka_unit_test(test_line),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
