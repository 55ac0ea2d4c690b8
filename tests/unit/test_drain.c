/* Unit tests for common/drain (the drain payloads: hostile lengths and values) and enclave/drain
 * (what is refused while draining, and when DRAIN_BEGUN and DRAIN_OVER are due). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/drain.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"
#include "enclave/drain.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void test_request_roundtrip(void **state)
{
	uint8_t p[DRAIN_REQUEST_LEN];
	unsigned t = 77;
	const unsigned good[] = {1, 60, DRAIN_TIMEOUT_MAX_S};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(drain_request_encode(p, good[i]), 0);
		assert_int_equal(drain_request_decode(p, sizeof(p), &t), 0);
		assert_int_equal(t, good[i]);
	}
	assert_int_equal(drain_request_encode(p, 60), 0);
	assert_memory_equal(p, "\x00\x00\x00\x3c", 4);
	/* out of bounds: nothing written */
	memset(p, 0xaa, sizeof(p));
	assert_int_equal(drain_request_encode(p, 0), SV_ERR_RANGE);
	assert_int_equal(drain_request_encode(p, DRAIN_TIMEOUT_MAX_S + 1), SV_ERR_RANGE);
	assert_int_equal(drain_request_encode(p, 0xffffffffu), SV_ERR_RANGE);
	assert_memory_equal(p, "\xaa\xaa\xaa\xaa", 4);
}

static void test_request_hostile(void **state)
{
	uint8_t p[DRAIN_REQUEST_LEN + 1] = {0, 0, 0, 5, 0};
	unsigned t = 77;
	const size_t lens[] = {
	    0, 1, DRAIN_REQUEST_LEN - 1, DRAIN_REQUEST_LEN + 1, SV_FRAME_MAX, (size_t)0xffffffffu};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		assert_int_equal(drain_request_decode(p, lens[i], &t), SV_ERR_INVALID);
	assert_int_equal(drain_request_decode(NULL, DRAIN_REQUEST_LEN, &t), SV_ERR_INVALID);
	const uint32_t bad[] = {0, DRAIN_TIMEOUT_MAX_S + 1, 0x7fffffffu, 0xffffffffu};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put32(p, bad[i]);
		assert_int_equal(drain_request_decode(p, DRAIN_REQUEST_LEN, &t), SV_ERR_RANGE);
	}
	assert_int_equal(t, 77); /* untouched on every failure */
}

static void test_report_roundtrip(void **state)
{
	uint8_t p[DRAIN_REPORT_LEN];
	struct drain_report in = {.phase = DRAIN_OVER, .pending = 0x01020304u, .last_guesses = 2};
	struct drain_report out = {0};
	assert_int_equal(drain_report_encode(p, &in), 0);
	assert_memory_equal(p, "\x01\x01\x02\x03\x04\x00\x00\x00\x02", DRAIN_REPORT_LEN);
	assert_int_equal(drain_report_decode(p, sizeof(p), &out), 0);
	assert_int_equal(out.phase, DRAIN_OVER);
	assert_int_equal(out.pending, 0x01020304u);
	assert_int_equal(out.last_guesses, 2);
	in = (struct drain_report){
	    .phase = DRAIN_BEGUN, .pending = 0xffffffffu, .last_guesses = 0xffffffffu};
	assert_int_equal(drain_report_encode(p, &in), 0);
	assert_int_equal(drain_report_decode(p, sizeof(p), &out), 0);
	assert_int_equal(out.phase, DRAIN_BEGUN);
	assert_int_equal(out.last_guesses, 0xffffffffu);
	/* an unknown phase, more last guesses than logins: refused, nothing written */
	memset(p, 0xaa, sizeof(p));
	in = (struct drain_report){.phase = 2};
	assert_int_equal(drain_report_encode(p, &in), SV_ERR_RANGE);
	in = (struct drain_report){.phase = DRAIN_OVER, .pending = 1, .last_guesses = 2};
	assert_int_equal(drain_report_encode(p, &in), SV_ERR_RANGE);
	assert_int_equal(p[0], 0xaa);
}

static void test_report_hostile(void **state)
{
	uint8_t p[DRAIN_REPORT_LEN + 1] = {0};
	struct drain_report out = {.phase = 9, .pending = 9, .last_guesses = 9};
	const size_t lens[] = {
	    0, 1, DRAIN_REPORT_LEN - 1, DRAIN_REPORT_LEN + 1, SV_FRAME_MAX, (size_t)0xffffffffu};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		assert_int_equal(drain_report_decode(p, lens[i], &out), SV_ERR_INVALID);
	assert_int_equal(drain_report_decode(NULL, DRAIN_REPORT_LEN, &out), SV_ERR_INVALID);
	p[0] = 2;
	assert_int_equal(drain_report_decode(p, DRAIN_REPORT_LEN, &out), SV_ERR_RANGE);
	p[0] = 0xff;
	assert_int_equal(drain_report_decode(p, DRAIN_REPORT_LEN, &out), SV_ERR_RANGE);
	p[0] = DRAIN_OVER;
	put32(p + 1, 1);
	put32(p + 5, 2);
	assert_int_equal(drain_report_decode(p, DRAIN_REPORT_LEN, &out), SV_ERR_RANGE);
	assert_int_equal(out.phase, 9);
	assert_int_equal(out.pending, 9);
}

/* Only login/start and realm recover2 (each would charge a guess and open a pending session) are
 * refused, only while draining; the refusal is a 503 with the text. */
static void test_refuses(void **state)
{
	struct drain d = {0};
	struct sv_buf reply;
	uint8_t req[DRAIN_REQUEST_LEN];
	assert_int_equal(sv_buf_init(&reply, 1024), 0);
	for (uint32_t t = 0; t <= 0xffff; t++)
		assert_false(drain_refuses(&d, (uint16_t)t));
	assert_int_equal(drain_request_encode(req, 10), 0);
	assert_int_equal(drain_begin(&d, req, sizeof(req), 5000), 0);
	assert_true(d.on);
	assert_int_equal(d.deadline_ms, 15000);
	for (uint32_t t = 0; t <= 0xffff; t++)
		assert_int_equal(drain_refuses(&d, (uint16_t)t),
		                 t == SV_MSG_LOGIN_START || t == SV_MSG_REALM_RECOVER2);
	assert_int_equal(drain_refuse(&d, &reply), 0);
	assert_int_equal(reply.data[0], SV_STATUS_BUSY);
	assert_int_equal(sv_buf_put_u8(&reply, 0), 0);
	assert_non_null(strstr((const char *)reply.data + 1, "the vault is shutting down; retry in "
	                                                     "a few seconds"));
	assert_int_equal(d.refused, 1);
	sv_buf_free(&reply);
}

/* A request that does not decode is refused and changes nothing; a second one keeps the first
 * deadline. */
static void test_begin_bad(void **state)
{
	struct drain d = {0};
	uint8_t req[DRAIN_REQUEST_LEN] = {0, 0, 0, 0};
	assert_int_equal(drain_begin(&d, req, sizeof(req), 0), SV_ERR_RANGE);
	assert_int_equal(drain_begin(&d, req, 3, 0), SV_ERR_INVALID);
	assert_int_equal(drain_begin(&d, NULL, 0, 0), SV_ERR_INVALID);
	assert_false(d.on);
	assert_int_equal(drain_request_encode(req, 5), 0);
	assert_int_equal(drain_begin(&d, req, sizeof(req), 1000), 0);
	assert_int_equal(drain_request_encode(req, 60), 0);
	assert_int_equal(drain_begin(&d, req, sizeof(req), 2000), 0);
	assert_int_equal(d.deadline_ms, 6000);
}

static struct drain_report due(struct drain *d, uint64_t now, size_t pending, size_t last, int *is)
{
	uint8_t p[DRAIN_REPORT_LEN];
	struct drain_report r = {.phase = 0xee};
	*is = drain_due(d, now, pending, last, p);
	if (*is)
		assert_int_equal(drain_report_decode(p, sizeof(p), &r), 0);
	return r;
}

/* Nothing before a drain; BEGUN once with the counts; OVER once when the table is empty or the
 * deadline passed, whichever first; nothing after. */
static void test_due(void **state)
{
	struct drain d = {0};
	uint8_t req[DRAIN_REQUEST_LEN];
	int is;
	due(&d, 0, 3, 1, &is);
	assert_false(is);
	assert_int_equal(drain_request_encode(req, 10), 0);
	assert_int_equal(drain_begin(&d, req, sizeof(req), 1000), 0);
	struct drain_report r = due(&d, 1000, 3, 1, &is);
	assert_true(is);
	assert_int_equal(r.phase, DRAIN_BEGUN);
	assert_int_equal(r.pending, 3);
	assert_int_equal(r.last_guesses, 1);
	due(&d, 2000, 3, 1, &is);
	assert_false(is);
	due(&d, 10999, 1, 1, &is);
	assert_false(is);
	/* the deadline, logins still pending: OVER with what is left */
	r = due(&d, 11000, 1, 1, &is);
	assert_true(is);
	assert_int_equal(r.phase, DRAIN_OVER);
	assert_int_equal(r.pending, 1);
	assert_int_equal(r.last_guesses, 1);
	due(&d, 11001, 0, 0, &is);
	assert_false(is);
	due(&d, 99999, 0, 0, &is);
	assert_false(is);

	/* an empty table ends it before the deadline, right after BEGUN */
	struct drain e = {0};
	assert_int_equal(drain_begin(&e, req, sizeof(req), 0), 0);
	r = due(&e, 0, 0, 0, &is);
	assert_true(is);
	assert_int_equal(r.phase, DRAIN_BEGUN);
	r = due(&e, 0, 0, 0, &is);
	assert_true(is);
	assert_int_equal(r.phase, DRAIN_OVER);
	assert_int_equal(r.pending, 0);
	/* counts that do not fit are clamped, never reported inconsistent */
	struct drain g = {0};
	assert_int_equal(drain_begin(&g, req, sizeof(req), 0), 0);
	r = due(&g, 0, 2, 5, &is);
	assert_true(is);
	assert_int_equal(r.last_guesses, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_roundtrip),
	    cmocka_unit_test(test_request_hostile),
	    cmocka_unit_test(test_report_roundtrip),
	    cmocka_unit_test(test_report_hostile),
	    cmocka_unit_test(test_refuses),
	    cmocka_unit_test(test_begin_bad),
	    cmocka_unit_test(test_due),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
