/* Unit tests for common/adminmsg: the payloads of sealvault-admin's online status and delete. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/adminmsg.h"
#include "common/buf.h"
#include "common/err.h"

static struct adminmsg_status sample(void)
{
	struct adminmsg_status s;
	memset(&s, 0, sizeof(s));
	strcpy(s.state_dir, "/var/lib/sealvault");
	for (int i = 0; i < ADMINMSG_PK_LEN; i++)
		s.server_pk[i] = (uint8_t)(i + 1);
	s.nv_index = 0x01005356;
	s.pcr_mask = 0x800080;
	s.seal = 2;
	s.orderly_mask = 255;
	s.unclean_index = 0x01015356;
	s.init_time = 1764000000;
	s.durable = 1280;
	s.unclean_boots = 3;
	s.unclean_year = 1;
	s.unclean_year_all = 2;
	s.counter = 1283;
	s.journal_head = 1283;
	s.snapshot_counter = 256;
	s.journal_bytes = 1919;
	s.tail_bytes = 0;
	s.users = 0xffffffffffffffffull;
	s.destroyed = 1;
	s.nv_writes = 13;
	s.active_slot = 'b';
	s.power_cut = 1;
	s.roll_forward = 0;
	return s;
}

static void test_status_round_trip(void **state)
{
	static struct adminmsg_status s, d;
	struct sv_buf b;
	s = sample();
	assert_int_equal(sv_buf_init(&b, 8192), 0);
	assert_int_equal(adminmsg_status_encode(&s, &b), 0);
	assert_int_equal(b.len, ADMINMSG_STATUS_FIXED + strlen(s.state_dir));
	assert_int_equal(adminmsg_status_decode(b.data, b.len, &d), 0);
	assert_memory_equal(&s, &d, sizeof(s));
	/* an empty directory and the longest one */
	s.state_dir[0] = '\0';
	sv_buf_reset(&b);
	assert_int_equal(adminmsg_status_encode(&s, &b), 0);
	assert_int_equal(b.len, ADMINMSG_STATUS_FIXED);
	assert_int_equal(adminmsg_status_decode(b.data, b.len, &d), 0);
	assert_string_equal(d.state_dir, "");
	memset(s.state_dir, 'x', ADMINMSG_DIR_MAX);
	s.state_dir[ADMINMSG_DIR_MAX] = '\0';
	sv_buf_reset(&b);
	assert_int_equal(adminmsg_status_encode(&s, &b), 0);
	assert_int_equal(adminmsg_status_decode(b.data, b.len, &d), 0);
	assert_int_equal(strlen(d.state_dir), ADMINMSG_DIR_MAX);
	sv_buf_free(&b);
}

static void test_status_refused(void **state)
{
	static struct adminmsg_status s, d, before;
	static uint8_t p[ADMINMSG_STATUS_FIXED + ADMINMSG_DIR_MAX + 2];
	struct sv_buf b;
	s = sample();
	assert_int_equal(sv_buf_init(&b, sizeof(p)), 0);
	/* fields outside their values are not encoded (and b is left as it was) */
	s.active_slot = 'c';
	assert_int_equal(adminmsg_status_encode(&s, &b), SV_ERR_INVALID);
	assert_int_equal(b.len, 0);
	s = sample();
	s.roll_forward = 2;
	assert_int_equal(adminmsg_status_encode(&s, &b), SV_ERR_INVALID);
	s = sample();
	assert_int_equal(adminmsg_status_encode(&s, &b), 0);
	size_t n = b.len;
	memcpy(p, b.data, n);
	memset(&d, 0x5a, sizeof(d));
	before = d;
	/* hostile lengths: 0, 1, one short, one long (trailing byte), the maximum, NULL */
	assert_int_equal(adminmsg_status_decode(p, 0, &d), SV_ERR_INVALID);
	assert_int_equal(adminmsg_status_decode(p, 1, &d), SV_ERR_INVALID);
	assert_int_equal(adminmsg_status_decode(p, n - 1, &d), SV_ERR_INVALID);
	p[n] = 0;
	assert_int_equal(adminmsg_status_decode(p, n + 1, &d), SV_ERR_INVALID);
	assert_int_equal(adminmsg_status_decode(p, sizeof(p), &d), SV_ERR_INVALID);
	assert_int_equal(adminmsg_status_decode(NULL, n, &d), SV_ERR_INVALID);
	/* a directory length past the payload, or over the cap (0xffff) */
	p[0] = 0xff;
	p[1] = 0xff;
	assert_int_equal(adminmsg_status_decode(p, n, &d), SV_ERR_INVALID);
	p[0] = 0;
	p[1] = (uint8_t)strlen(s.state_dir);
	/* a NUL inside the directory */
	p[3] = 0;
	assert_int_equal(adminmsg_status_decode(p, n, &d), SV_ERR_INVALID);
	p[3] = (uint8_t)s.state_dir[1];
	/* the slot and the two flags */
	p[n - 3] = 'z';
	assert_int_equal(adminmsg_status_decode(p, n, &d), SV_ERR_INVALID);
	p[n - 3] = 'a';
	p[n - 1] = 2;
	assert_int_equal(adminmsg_status_decode(p, n, &d), SV_ERR_INVALID);
	p[n - 1] = 0;
	assert_memory_equal(&d, &before, sizeof(d)); /* untouched by every failure */
	assert_int_equal(adminmsg_status_decode(p, n, &d), 0);
	assert_int_equal(d.active_slot, 'a');
	sv_buf_free(&b);
}

static void test_delete_check(void **state)
{
	uint8_t id[ADMINMSG_ID_MAX + 1];
	memset(id, 'u', sizeof(id));
	assert_int_equal(adminmsg_delete_check(id, 0), SV_ERR_RANGE);
	assert_int_equal(adminmsg_delete_check(id, 1), 0);
	assert_int_equal(adminmsg_delete_check(id, ADMINMSG_ID_MAX), 0);
	assert_int_equal(adminmsg_delete_check(id, ADMINMSG_ID_MAX + 1), SV_ERR_RANGE);
	assert_int_equal(adminmsg_delete_check(id, 0xffffffffu), SV_ERR_RANGE);
	assert_int_equal(adminmsg_delete_check(NULL, 3), SV_ERR_RANGE);
}

static void test_reply(void **state)
{
	struct sv_buf b;
	enum adminmsg_code code = ADMINMSG_FAILED;
	const uint8_t *body = NULL;
	size_t n = 0;
	static char long_text[ADMINMSG_TEXT_MAX + 50];
	assert_int_equal(sv_buf_init(&b, 2 * ADMINMSG_TEXT_MAX), 0);
	/* OK with an empty body (a delete) and with a body (a status) */
	assert_int_equal(adminmsg_reply_encode(&b, ADMINMSG_OK, NULL, 0), 0);
	assert_int_equal(adminmsg_reply_decode(b.data, b.len, &code, &body, &n), 0);
	assert_int_equal(code, ADMINMSG_OK);
	assert_int_equal(n, 0);
	assert_int_equal(adminmsg_reply_encode(&b, ADMINMSG_OK, "\0\1\2", 3), 0);
	assert_int_equal(adminmsg_reply_decode(b.data, b.len, &code, &body, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(body, "\0\1\2", 3);
	/* a refusal carries a text, cut to the cap */
	assert_int_equal(adminmsg_reply_encode(&b, ADMINMSG_DENIED, "no", 2), 0);
	assert_int_equal(adminmsg_reply_decode(b.data, b.len, &code, &body, &n), 0);
	assert_int_equal(code, ADMINMSG_DENIED);
	assert_memory_equal(body, "no", 2);
	memset(long_text, 'x', sizeof(long_text));
	assert_int_equal(adminmsg_reply_encode(&b, ADMINMSG_FAILED, long_text, sizeof(long_text)),
	                 0);
	assert_int_equal(b.len, 1 + ADMINMSG_TEXT_MAX);
	assert_int_equal(adminmsg_reply_decode(b.data, b.len, &code, &body, &n), 0);
	assert_int_equal(n, ADMINMSG_TEXT_MAX);
	/* no empty text, no NUL in it, no unknown code */
	assert_int_equal(adminmsg_reply_encode(&b, ADMINMSG_BUSY, "", 0), SV_ERR_INVALID);
	assert_int_equal(adminmsg_reply_encode(&b, ADMINMSG_BUSY, "a\0b", 3), SV_ERR_INVALID);
	assert_int_equal(adminmsg_reply_encode(&b, (enum adminmsg_code)6, "x", 1), SV_ERR_INVALID);
	sv_buf_free(&b);

	static uint8_t p[2 + ADMINMSG_TEXT_MAX];
	memset(p, 'x', sizeof(p));
	code = ADMINMSG_OK;
	p[0] = ADMINMSG_NOTFOUND;
	assert_int_equal(adminmsg_reply_decode(p, 0, &code, &body, &n), SV_ERR_INVALID);
	assert_int_equal(adminmsg_reply_decode(p, 1, &code, &body, &n), SV_ERR_INVALID);
	assert_int_equal(adminmsg_reply_decode(p, sizeof(p), &code, &body, &n), SV_ERR_INVALID);
	assert_int_equal(adminmsg_reply_decode(p, sizeof(p) - 1, &code, &body, &n), 0);
	p[0] = ADMINMSG_CODE_MAX + 1;
	assert_int_equal(adminmsg_reply_decode(p, 5, &code, &body, &n), SV_ERR_INVALID);
	p[0] = 0xff;
	assert_int_equal(adminmsg_reply_decode(p, 5, &code, &body, &n), SV_ERR_INVALID);
	p[0] = ADMINMSG_BAD;
	p[2] = 0;
	assert_int_equal(adminmsg_reply_decode(p, 5, &code, &body, &n), SV_ERR_INVALID);
	assert_int_equal(adminmsg_reply_decode(NULL, 5, &code, &body, &n), SV_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_round_trip),
	    cmocka_unit_test(test_status_refused),
	    cmocka_unit_test(test_delete_check),
	    cmocka_unit_test(test_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
