/* Unit tests for common/msg (the message table of common/msgtable.h and its lookups). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"

/*
 * The contract the table carries, written out by hand: wire numbers, HTTP routes and the
 * endpoint="..." labels of /metrics, on which clients, tests and dashboards depend. A new row needs
 * no change here; changing or reusing one of these rows does, and should be a conscious act.
 */
static const struct {
	uint16_t type;
	unsigned number;
	const char *path, *endpoint;
	unsigned flags;
} pinned[] = {
    {SV_MSG_REGISTER_START, 1, "/v1/register/start", "register_start",
     MSG_F_REQUEST | MSG_F_VAULT | MSG_F_TOKEN},
    {SV_MSG_REGISTER_FINISH, 2, "/v1/register/finish", "register_finish",
     MSG_F_REQUEST | MSG_F_VAULT | MSG_F_TOKEN},
    {SV_MSG_LOGIN_START, 3, "/v1/login/start", "login_start",
     MSG_F_REQUEST | MSG_F_VAULT | MSG_F_TOKEN},
    {SV_MSG_LOGIN_FINISH, 4, "/v1/login/finish", "login_finish",
     MSG_F_REQUEST | MSG_F_VAULT | MSG_F_TOKEN},
    {SV_MSG_CHANGE_FINISH, 5, "/v1/change-password/finish", "change_password_finish",
     MSG_F_REQUEST | MSG_F_VAULT | MSG_F_TOKEN},
    {SV_MSG_ATTESTATION, 6, "/v1/attestation", "attestation", MSG_F_REQUEST | MSG_F_READONLY},
    {SV_MSG_ACTIVATE, 7, "/v1/attestation/activate", "attestation_activate",
     MSG_F_REQUEST | MSG_F_READONLY},
    {SV_MSG_INFO, 8, "/v1/info", "info", MSG_F_REQUEST | MSG_F_READONLY},
    {SV_MSG_REALM_REGISTER, 9, "/v2/realm/register", "realm_register", MSG_F_REQUEST | MSG_F_TOKEN},
    {SV_MSG_REALM_RECOVER1, 10, "/v2/realm/recover1", "realm_recover1",
     MSG_F_REQUEST | MSG_F_TOKEN | MSG_F_READONLY},
    {SV_MSG_REALM_RECOVER2, 11, "/v2/realm/recover2", "realm_recover2",
     MSG_F_REQUEST | MSG_F_TOKEN},
    {SV_MSG_REALM_RECOVER3, 12, "/v2/realm/recover3", "realm_recover3",
     MSG_F_REQUEST | MSG_F_TOKEN},
    {SV_MSG_REALM_DELETE, 13, "/v2/realm/delete", "realm_delete", MSG_F_REQUEST | MSG_F_TOKEN},
    {SV_MSG_REALM_STATUS, 14, "/v2/realm/status", "realm_status",
     MSG_F_REQUEST | MSG_F_TOKEN | MSG_F_READONLY},
    {SV_MSG_STATS, 32, "/metrics", "metrics",
     MSG_F_REQUEST | MSG_F_READONLY | MSG_F_HOUSEKEEPING | MSG_F_PRIVATE},
    {SV_MSG_HEALTH, 33, "/healthz", "healthz", MSG_F_REQUEST | MSG_F_READONLY | MSG_F_HOUSEKEEPING},
    {SV_MSG_GONE_SEEN, 34, NULL, NULL, MSG_F_CONTROL},
    {SV_MSG_RELOADED, 35, NULL, NULL, MSG_F_RELOAD},
    {SV_MSG_SERVING, 36, NULL, NULL, MSG_F_RELOAD},
    {SV_MSG_DRAIN_ENCLAVE, 37, NULL, NULL, MSG_F_DRAIN},
    {SV_MSG_DRAIN_REPORT, 38, NULL, NULL, MSG_F_RELOAD},
    {SV_MSG_REPLY, 64, NULL, NULL, 0},
    {SV_MSG_ENCLAVE_GONE, 65, NULL, NULL, MSG_F_CONTROL},
    {SV_MSG_READY, 66, NULL, NULL, MSG_F_CONTROL},
    {SV_MSG_RELOAD, 67, NULL, NULL, MSG_F_RELOAD},
    {SV_MSG_AUDIT, 70, NULL, NULL, MSG_F_AUDIT},
    {SV_MSG_DRAIN, 68, NULL, NULL, MSG_F_RELOAD},
    {SV_MSG_DRAIN_STATUS, 69, NULL, NULL, MSG_F_DRAIN},
    {SV_MSG_ADMIN_STATUS, 40, NULL, NULL, MSG_F_ADMIN},
    {SV_MSG_ADMIN_DELETE, 41, NULL, NULL, MSG_F_ADMIN},
    {SV_MSG_ADMIN_REPLY, 72, NULL, NULL, MSG_F_ADMIN},
};

static void assert_str_or_null(const char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else
		assert_string_equal(got, want);
}

static void test_pinned(void **state)
{
	for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++) {
		assert_int_equal(pinned[i].type, pinned[i].number);
		assert_true(frame_type_known(pinned[i].type));
		assert_int_equal(msg_flags(pinned[i].type), pinned[i].flags);
		assert_str_or_null(msg_path(pinned[i].type), pinned[i].path);
		assert_str_or_null(msg_endpoint(pinned[i].type), pinned[i].endpoint);
	}
}

/* The status byte of SV_MSG_REPLY is wire contract too (the broker maps it to HTTP). */
static void test_status_pinned(void **state)
{
	assert_int_equal(SV_STATUS_OK, 0);
	assert_int_equal(SV_STATUS_BAD_REQUEST, 1);
	assert_int_equal(SV_STATUS_AUTH_FAILED, 2);
	assert_int_equal(SV_STATUS_LOCKED, 3);
	assert_int_equal(SV_STATUS_CONFLICT, 4);
	assert_int_equal(SV_STATUS_OUT_OF_ORDER, 5);
	assert_int_equal(SV_STATUS_BUSY, 6);
	assert_int_equal(SV_STATUS_INTERNAL, 7);
	assert_int_equal(SV_STATUS_FULL, 8);
	assert_int_equal(SV_STATUS_UNAUTHORIZED, 9);
	assert_int_equal(SV_STATUS_FORBIDDEN, 10);
	assert_int_equal(SV_STATUS_TOO_MANY, 11);
	assert_int_equal(SV_STATUS_NOT_FOUND, 12);
}

/* What every row, present or future, must satisfy. */
static void test_rows_consistent(void **state)
{
	const char *paths[64] = {0}, *endpoints[64] = {0};
	size_t n = 0;
	for (uint32_t t = 0; t <= 0xffff; t++) {
		uint16_t type = (uint16_t)t;
		unsigned fl = msg_flags(type);
		const char *path = msg_path(type), *ep = msg_endpoint(type);
		if (!frame_type_known(type)) {
			assert_int_equal(fl, 0);
			assert_null(path);
			assert_null(ep);
			continue;
		}
		assert_int_not_equal(type, 0);
		if (!(fl & MSG_F_REQUEST)) {
			/* a frame without a route */
			assert_null(path);
			assert_null(ep);
			assert_int_equal(fl & (MSG_F_VAULT | MSG_F_READONLY | MSG_F_HOUSEKEEPING |
			                       MSG_F_PRIVATE | MSG_F_TOKEN),
			                 0);
			/* a drain frame rides on the enclave's link, nowhere else */
			assert_false((fl & MSG_F_DRAIN) && (fl & (MSG_F_CONTROL | MSG_F_RELOAD)));
			/* admin frames: only the numbers reserved for them, and no other flag */
			if (fl & MSG_F_ADMIN) {
				assert_int_equal(fl, MSG_F_ADMIN);
				assert_true((type >= 40 && type <= 47) ||
				            (type >= 72 && type <= 75));
			}
			continue;
		}
		/* a request: towards the enclave's end, with one route and one label of its own */
		assert_true(type < 64);
		assert_int_equal(fl & (MSG_F_CONTROL | MSG_F_ADMIN), 0);
		assert_false((fl & MSG_F_VAULT) && (fl & (MSG_F_READONLY | MSG_F_HOUSEKEEPING)));
		/* every account request carries the token (issue 13): the /v1 ones (MSG_F_VAULT)
		 * and the /v2/realm/ ones; never a housekeeping probe */
		assert_false((fl & MSG_F_VAULT) && !(fl & MSG_F_TOKEN));
		assert_false((fl & MSG_F_TOKEN) && (fl & MSG_F_HOUSEKEEPING));
		assert_int_equal(!!(fl & MSG_F_TOKEN),
		                 (fl & MSG_F_VAULT) ||
		                     (path != NULL && strncmp(path, "/v2/realm/", 10) == 0));
		assert_false((fl & MSG_F_HOUSEKEEPING) && !(fl & MSG_F_READONLY));
		/* a private route (the metrics listener only) is a read-only probe, never a
		 * client request */
		assert_false((fl & MSG_F_PRIVATE) && !(fl & MSG_F_HOUSEKEEPING));
		assert_non_null(path);
		assert_non_null(ep);
		assert_int_equal(path[0], '/');
		assert_null(strpbrk(path, "?# "));
		assert_true(ep[0] != '\0' &&
		            strspn(ep, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(ep));
		assert_string_not_equal(ep, "other"); /* the broker's label for unknown routes */
		assert_true(n < sizeof(paths) / sizeof(paths[0]));
		for (size_t i = 0; i < n; i++) {
			assert_string_not_equal(paths[i], path);
			assert_string_not_equal(endpoints[i], ep);
		}
		paths[n] = path;
		endpoints[n++] = ep;
	}
	assert_true(n >= 10);
}

/* The token prefix of an MSG_F_TOKEN payload: lengths 0, 1, max, max+1, 0xffff; short input. */
static void test_token_split(void **state)
{
	static uint8_t p[2 + MSG_TOKEN_MAX + 8];
	const uint8_t *tok, *body;
	size_t tl, bl;
	memset(p, 'a', sizeof(p));
	assert_int_equal(msg_token_split(p, 0, &tok, &tl, &body, &bl), SV_ERR_INVALID);
	assert_int_equal(msg_token_split(p, 1, &tok, &tl, &body, &bl), SV_ERR_INVALID);
	msg_token_prefix(p, 0);
	assert_int_equal(msg_token_split(p, 2, &tok, &tl, &body, &bl), SV_OK);
	assert_int_equal(tl, 0);
	assert_int_equal(bl, 0);
	msg_token_prefix(p, 1);
	assert_int_equal(msg_token_split(p, 2, &tok, &tl, &body, &bl), SV_ERR_INVALID);
	assert_int_equal(msg_token_split(p, 5, &tok, &tl, &body, &bl), SV_OK);
	assert_int_equal(tl, 1);
	assert_ptr_equal(tok, p + 2);
	assert_ptr_equal(body, p + 3);
	assert_int_equal(bl, 2);
	msg_token_prefix(p, MSG_TOKEN_MAX);
	assert_int_equal(msg_token_split(p, 2 + MSG_TOKEN_MAX, &tok, &tl, &body, &bl), SV_OK);
	assert_int_equal(tl, MSG_TOKEN_MAX);
	assert_int_equal(bl, 0);
	msg_token_prefix(p, MSG_TOKEN_MAX + 1);
	assert_int_equal(msg_token_split(p, sizeof(p), &tok, &tl, &body, &bl), SV_ERR_INVALID);
	p[0] = p[1] = 0xff;
	assert_int_equal(msg_token_split(p, sizeof(p), &tok, &tl, &body, &bl), SV_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_token_split),
	    cmocka_unit_test(test_pinned),
	    cmocka_unit_test(test_rows_consistent),
	    cmocka_unit_test(test_status_pinned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
