/* Unit tests for enclave/dispatch: the table of permitted requests, the vault hand-off, HEALTH and
 * STATS. The vault and the store are replaced through --wrap (see enclave/build.mk). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"
#include "enclave/dispatch.h"
#include "enclave/drain.h"
#include "enclave/realm.h"
#include "enclave/store.h"
#include "enclave/tpm.h"
#include "enclave/vault.h"

int __wrap_vault_handle_token(struct vault *v, uint16_t type, const uint8_t *tok, size_t tok_len,
                              const uint8_t *req, size_t req_len, uint64_t now_ms,
                              struct sv_buf *reply);
int __wrap_vault_metrics(const struct vault *v, struct sv_buf *out);
void __wrap_store_get_stats(const struct store *s, struct store_stats *out);
void __wrap_tpm_get_stats(const struct tpm *t, struct tpm_stats *out);
int __wrap_realm_srv_handle(struct realm_srv *r, uint16_t type, const uint8_t *tok, size_t tok_len,
                            const uint8_t *req, size_t req_len, uint64_t now_ms,
                            struct sv_buf *reply);
int __wrap_realm_srv_metrics(const struct realm_srv *r, struct sv_buf *out);

static int handle_result; /* what the fake vault_handle returns */
static int handle_empty;  /* 1: it writes nothing */
static uint16_t seen_type;
static size_t seen_len;
static char seen_tok[16];
static size_t metrics_fill; /* bytes of filler the fake vault_metrics appends */

int __wrap_vault_handle_token(struct vault *v, uint16_t type, const uint8_t *tok, size_t tok_len,
                              const uint8_t *req, size_t req_len, uint64_t now_ms,
                              struct sv_buf *reply)
{
	assert_true(tok_len < sizeof(seen_tok));
	memset(seen_tok, 0, sizeof(seen_tok));
	if (tok_len > 0)
		memcpy(seen_tok, tok, tok_len);
	seen_type = type;
	seen_len = req_len;
	if (handle_result != 0)
		return handle_result;
	if (handle_empty)
		return 0;
	assert_int_equal(sv_buf_put_u8(reply, SV_STATUS_OK), 0);
	return sv_buf_put(reply, req, req_len);
}

int __wrap_vault_metrics(const struct vault *v, struct sv_buf *out)
{
	static const char line[] = "sealvault_vault_login_starts_total 7\n";
	int r = sv_buf_put(out, line, sizeof(line) - 1);
	for (size_t i = 0; r == 0 && i < metrics_fill; i++)
		r = sv_buf_put_u8(out, '#');
	return r;
}

void __wrap_store_get_stats(const struct store *s, struct store_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->nv_writes = 42;
	out->users = 3;
	out->destroyed = 1;
}

void __wrap_tpm_get_stats(const struct tpm *t, struct tpm_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->retries = 17;
	out->gave_up = 1;
	out->backoff_ns = 2500000000ull;
	out->nv_write_recovery_ms = 250;
}

static struct sv_frame frame(uint16_t type, const char *payload, size_t len)
{
	struct sv_frame f = {.version = SV_IPC_VERSION,
	                     .type = type,
	                     .req_id = 9,
	                     .payload = (const uint8_t *)payload,
	                     .len = len};
	return f;
}

static void test_table(void **state)
{
	const uint16_t ok[] = {
	    SV_MSG_REGISTER_START, SV_MSG_REGISTER_FINISH, SV_MSG_LOGIN_START, SV_MSG_LOGIN_FINISH,
	    SV_MSG_CHANGE_FINISH,  SV_MSG_ATTESTATION,     SV_MSG_ACTIVATE,    SV_MSG_INFO,
	    SV_MSG_STATS,          SV_MSG_HEALTH};
	/* the admin frames (MSG_F_ADMIN) come only on the admin pair (enclave/adminsrv.c): the
	 * broker's link refuses them like any other type without a route */
	const uint16_t bad[] = {0,
	                        15,
	                        31,
	                        34,
	                        SV_MSG_REPLY,
	                        SV_MSG_ADMIN_STATUS,
	                        SV_MSG_ADMIN_DELETE,
	                        SV_MSG_ADMIN_REPLY,
	                        0xffff};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_true(dispatch_permitted(ok[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(dispatch_permitted(bad[i]));
	/* exactly the requests of common/msgtable.h, no more */
	for (uint32_t t = 0; t <= 0xffff; t++)
		assert_int_equal(dispatch_permitted((uint16_t)t),
		                 (msg_flags((uint16_t)t) & MSG_F_REQUEST) != 0);
	for (uint32_t t = 0; t <= 0xffff; t++)
		if (msg_flags((uint16_t)t) & MSG_F_ADMIN)
			assert_false(dispatch_permitted((uint16_t)t));

	struct dispatch *d;
	struct sv_buf reply;
	assert_int_equal(dispatch_new(&d, NULL, NULL), 0);
	assert_int_equal(sv_buf_init(&reply, SV_FRAME_MAX), 0);
	struct sv_frame f = frame(SV_MSG_REPLY, "", 0);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), SV_ERR_PROTOCOL);
	f = frame(99, "", 0);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), SV_ERR_PROTOCOL);
	sv_buf_free(&reply);
	dispatch_free(d);
}

static void test_vault_handoff(void **state)
{
	struct dispatch *d;
	struct sv_buf reply;
	assert_int_equal(dispatch_new(&d, NULL, NULL), 0);
	assert_int_equal(sv_buf_init(&reply, SV_FRAME_MAX), 0);
	handle_result = handle_empty = 0;
	/* the token in front of the body (common/msg.h MSG_F_TOKEN) goes to the vault apart */
	struct sv_frame f = frame(SV_MSG_LOGIN_START, "\0\2tkabc", 7);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(seen_type, SV_MSG_LOGIN_START);
	assert_int_equal(seen_len, 3);
	assert_string_equal(seen_tok, "tk");
	assert_int_equal(reply.len, 4);
	assert_memory_equal(reply.data, "\0abc", 4);
	/* a payload shorter than its token prefix: 400, the vault never sees it */
	seen_type = 0;
	f = frame(SV_MSG_LOGIN_START, "\0\5tk", 4);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(seen_type, 0);
	assert_int_equal(reply.data[0], SV_STATUS_BAD_REQUEST);
	f = frame(SV_MSG_LOGIN_START, "x", 1);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(seen_type, 0);
	assert_int_equal(reply.data[0], SV_STATUS_BAD_REQUEST);
	/* the reply buffer is reset for every request */
	f = frame(SV_MSG_REGISTER_START, "\0\0z", 3);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(reply.len, 2);
	/* a vault that answers nothing is a bug, an internal error stops the process */
	handle_empty = 1;
	assert_int_equal(dispatch_request(d, &f, 0, &reply), SV_ERR_INTERNAL);
	handle_empty = 0;
	handle_result = SV_ERR_NOMEM;
	assert_int_equal(dispatch_request(d, &f, 0, &reply), SV_ERR_NOMEM);
	handle_result = 0;
	sv_buf_free(&reply);
	dispatch_free(d);
}

static uint16_t realm_type;
static char realm_tok[16];

int __wrap_realm_srv_handle(struct realm_srv *r, uint16_t type, const uint8_t *tok, size_t tok_len,
                            const uint8_t *req, size_t req_len, uint64_t now_ms,
                            struct sv_buf *reply)
{
	assert_true(tok_len < sizeof(realm_tok));
	memset(realm_tok, 0, sizeof(realm_tok));
	if (tok_len > 0)
		memcpy(realm_tok, tok, tok_len);
	realm_type = type;
	assert_int_equal(sv_buf_put_u8(reply, SV_STATUS_OK), 0);
	return sv_buf_put(reply, req, req_len);
}

int __wrap_realm_srv_metrics(const struct realm_srv *r, struct sv_buf *out)
{
	static const char line[] = "sealvault_realm_evaluations_total 3\n";
	return sv_buf_put(out, line, sizeof(line) - 1);
}

/* The /v2/realm/ rows go to the realm side with their token apart, never to the vault; without
 * a realm side they are answered 500. */
static void test_realm_handoff(void **state)
{
	struct dispatch *d;
	struct sv_buf reply;
	static const uint16_t types[] = {SV_MSG_REALM_REGISTER, SV_MSG_REALM_RECOVER1,
	                                 SV_MSG_REALM_RECOVER2, SV_MSG_REALM_RECOVER3,
	                                 SV_MSG_REALM_DELETE,   SV_MSG_REALM_STATUS};
	assert_int_equal(dispatch_new(&d, NULL, NULL), 0);
	assert_int_equal(sv_buf_init(&reply, SV_FRAME_MAX), 0);
	handle_result = handle_empty = 0;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct sv_frame f = frame(types[i], "\0\2tk\2x", 6);
		seen_type = realm_type = 0;
		assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
		assert_int_equal(reply.data[0], SV_STATUS_INTERNAL);
		assert_int_equal(realm_type, 0);
		dispatch_set_realm(d, (struct realm_srv *)&reply); /* any non-NULL handle */
		assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
		assert_int_equal(realm_type, types[i]);
		assert_int_equal(seen_type, 0);
		assert_string_equal(realm_tok, "tk");
		assert_int_equal(reply.len, 3);
		assert_memory_equal(reply.data, "\0\2x", 3);
		dispatch_set_realm(d, NULL);
	}
	sv_buf_free(&reply);
	dispatch_free(d);
}

static uint16_t attest_type;
static size_t attest_len;

static int fake_attest(void *arg, uint16_t type, const uint8_t *req, size_t len,
                       struct sv_buf *reply)
{
	attest_type = type;
	attest_len = len;
	*(int *)arg += 1;
	return sv_buf_put_u8(reply, SV_STATUS_OK);
}

/* The attestation types go to the hook, never to the vault; without a hook they get a 500. */
static void test_attest_hook(void **state)
{
	struct dispatch *d;
	struct sv_buf reply;
	int calls = 0;
	assert_int_equal(dispatch_new(&d, NULL, NULL), 0);
	assert_int_equal(sv_buf_init(&reply, SV_FRAME_MAX), 0);
	seen_type = 0;
	struct sv_frame f = frame(SV_MSG_ATTESTATION, "01234567", 8);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(reply.data[0], SV_STATUS_INTERNAL);
	dispatch_set_attest(d, fake_attest, &calls);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(attest_type, SV_MSG_ATTESTATION);
	assert_int_equal(attest_len, 8);
	assert_int_equal(reply.len, 1);
	assert_int_equal(reply.data[0], SV_STATUS_OK);
	f = frame(SV_MSG_ACTIVATE, "x", 1);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(attest_type, SV_MSG_ACTIVATE);
	assert_int_equal(calls, 2);
	assert_int_equal(seen_type, 0); /* vault_handle never saw them */
	sv_buf_free(&reply);
	dispatch_free(d);
}

static void test_health_and_stats(void **state)
{
	struct dispatch *d;
	struct sv_buf reply;
	assert_int_equal(dispatch_new(&d, NULL, NULL), 0);
	assert_int_equal(sv_buf_init(&reply, SV_FRAME_MAX), 0);
	struct sv_frame f = frame(SV_MSG_HEALTH, "", 0);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(reply.len, 1);
	assert_int_equal(reply.data[0], SV_STATUS_OK);
	f = frame(SV_MSG_HEALTH, "x", 1);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(reply.data[0], SV_STATUS_BAD_REQUEST);

	dispatch_note_commit(d, 1500, 10);
	dispatch_note_commit(d, 30000, 5);
	metrics_fill = 0;
	f = frame(SV_MSG_STATS, "", 0);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(reply.data[0], SV_STATUS_OK);
	assert_int_equal(sv_buf_put_u8(&reply, 0), 0); /* terminate for strstr */
	const char *text = (const char *)reply.data + 1;
	assert_non_null(strstr(text, "sealvault_vault_login_starts_total 7\n"));
	assert_non_null(strstr(text, "sealvault_nv_writes_total 42\n"));
	assert_non_null(strstr(text, "sealvault_users 3\n"));
	assert_non_null(strstr(text, "sealvault_users_destroyed 1\n"));
	assert_non_null(strstr(text, "sealvault_commit_duration_seconds_bucket{le=\"0.001\"} 0\n"));
	assert_non_null(strstr(text, "sealvault_commit_duration_seconds_bucket{le=\"0.002\"} 1\n"));
	assert_non_null(strstr(text, "sealvault_commit_duration_seconds_bucket{le=\"0.05\"} 2\n"));
	assert_non_null(strstr(text, "sealvault_commit_duration_seconds_count 2\n"));
	assert_non_null(strstr(text, "sealvault_commit_requests_total 15\n"));
	/* requests counted: 2 HEALTH + this STATS */
	assert_non_null(strstr(text, "sealvault_enclave_requests_total 3\n"));
	f = frame(SV_MSG_STATS, "x", 1);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(reply.len, 1);
	assert_int_equal(reply.data[0], SV_STATUS_BAD_REQUEST);
	/* text that cannot fit a frame: an honest INTERNAL, not half the text */
	metrics_fill = SV_FRAME_MAX - 100;
	f = frame(SV_MSG_STATS, "", 0);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(reply.len, 1);
	assert_int_equal(reply.data[0], SV_STATUS_INTERNAL);
	sv_buf_free(&reply);
	dispatch_free(d);
}

/* Throttling (the serve loop owes an NV increment): health says busy while it lasts, the TPM's
 * and sealvaultd's counters and the throttled time reach /metrics. */
static void test_throttled(void **state)
{
	struct dispatch *d;
	struct sv_buf reply;
	int fake_tpm;
	assert_int_equal(dispatch_new(&d, NULL, NULL), 0);
	assert_int_equal(sv_buf_init(&reply, SV_FRAME_MAX), 0);
	dispatch_set_tpm(d, (struct tpm *)&fake_tpm, 4, 3);
	dispatch_set_throttled(d, 1, 10000000); /* at 10 s */
	dispatch_note_throttled_replies(d, 5);
	struct sv_frame f = frame(SV_MSG_HEALTH, "", 0);
	assert_int_equal(dispatch_request(d, &f, 12000, &reply), 0);
	assert_int_equal(reply.len, 1);
	assert_int_equal(reply.data[0], SV_STATUS_BUSY);
	metrics_fill = 0;
	f = frame(SV_MSG_STATS, "", 0);
	assert_int_equal(dispatch_request(d, &f, 12500, &reply), 0); /* 2.5 s into it */
	assert_int_equal(reply.data[0], SV_STATUS_OK);
	assert_int_equal(sv_buf_put_u8(&reply, 0), 0);
	const char *text = (const char *)reply.data + 1;
	assert_non_null(strstr(text, "\nsealvault_tpm_retries_total 17\n"));
	assert_non_null(strstr(text, "\nsealvault_tpm_backoff_seconds_total 2.500\n"));
	assert_non_null(strstr(text, "\nsealvault_tpm_retry_budget_exhausted_total 1\n"));
	assert_non_null(strstr(text, "\nsealvault_tpm_throttled 1\n"));
	assert_non_null(strstr(text, "\nsealvault_tpm_throttled_seconds_total 2.500\n"));
	assert_non_null(strstr(text, "\nsealvault_tpm_throttled_replies_total 5\n"));
	assert_non_null(strstr(text, "\nsealvault_tpm_nv_write_recovery_seconds 0.250\n"));
	assert_non_null(strstr(text, "\nsealvault_tpm_timeouts_total 3\n"));
	assert_non_null(strstr(text, "\nsealvault_enclave_restarts_total 4\n"));
	/* paid at 14 s: healthy again, 4 s counted, and no more after that */
	dispatch_set_throttled(d, 0, 14000000);
	f = frame(SV_MSG_HEALTH, "", 0);
	assert_int_equal(dispatch_request(d, &f, 15000, &reply), 0);
	assert_int_equal(reply.data[0], SV_STATUS_OK);
	f = frame(SV_MSG_STATS, "", 0);
	assert_int_equal(dispatch_request(d, &f, 99000, &reply), 0);
	assert_int_equal(sv_buf_put_u8(&reply, 0), 0);
	text = (const char *)reply.data + 1;
	assert_non_null(strstr(text, "\nsealvault_tpm_throttled 0\n"));
	assert_non_null(strstr(text, "\nsealvault_tpm_throttled_seconds_total 4.000\n"));
	sv_buf_free(&reply);
	dispatch_free(d);
}

/* GET /v1/info: the bytes main set, as they are, to an empty request only; 500 before they are
 * set; never the vault. */
static void test_info(void **state)
{
	static const char json[] = "{\"suite\":\"x\"}";
	struct dispatch *d;
	struct sv_buf reply;
	assert_int_equal(dispatch_new(&d, NULL, NULL), 0);
	assert_int_equal(sv_buf_init(&reply, SV_FRAME_MAX), 0);
	seen_type = 0;
	struct sv_frame f = frame(SV_MSG_INFO, "", 0);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(reply.data[0], SV_STATUS_INTERNAL);
	assert_int_equal(dispatch_set_info(d, (const uint8_t *)json, sizeof(json) - 1), 0);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(reply.len, sizeof(json));
	assert_int_equal(reply.data[0], SV_STATUS_OK);
	assert_memory_equal(reply.data + 1, json, sizeof(json) - 1);
	f = frame(SV_MSG_INFO, "x", 1);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(reply.len, 1);
	assert_int_equal(reply.data[0], SV_STATUS_BAD_REQUEST);
	assert_int_equal(seen_type, 0);
	sv_buf_free(&reply);
	dispatch_free(d);
}

/* A drain (enclave/drain.h): login/start refused 503 before the vault sees it, whatever its body;
 * login/finish and registration still reach the vault; /healthz 503. */
static void test_drain_gate(void **state)
{
	struct dispatch *d;
	struct sv_buf reply;
	struct drain dr = {0};
	uint8_t req[DRAIN_REQUEST_LEN];
	assert_int_equal(dispatch_new(&d, NULL, NULL), 0);
	assert_int_equal(sv_buf_init(&reply, SV_FRAME_MAX), 0);
	dispatch_set_drain(d, &dr);
	handle_result = 0;
	handle_empty = 0;
	seen_type = 0;
	struct sv_frame f = frame(SV_MSG_LOGIN_START, "\0\0ke1", 5);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(seen_type, SV_MSG_LOGIN_START); /* no drain yet */
	assert_int_equal(drain_request_encode(req, 30), 0);
	assert_int_equal(drain_begin(&dr, req, sizeof(req), 1000), 0);
	seen_type = 0;
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(seen_type, 0);
	assert_int_equal(reply.data[0], SV_STATUS_BUSY);
	assert_int_equal(dr.refused, 1);
	const uint16_t served[] = {SV_MSG_LOGIN_FINISH, SV_MSG_CHANGE_FINISH, SV_MSG_REGISTER_START,
	                           SV_MSG_REGISTER_FINISH};
	for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++) {
		f = frame(served[i], "\0\0x", 3);
		assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
		assert_int_equal(seen_type, served[i]);
		assert_int_equal(reply.data[0], SV_STATUS_OK);
	}
	f = frame(SV_MSG_HEALTH, "", 0);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), 0);
	assert_int_equal(reply.data[0], SV_STATUS_BUSY);
	/* not a request type: still the table's protocol error, not a drain answer */
	f = frame(SV_MSG_REPLY, "", 0);
	assert_int_equal(dispatch_request(d, &f, 0, &reply), SV_ERR_PROTOCOL);
	sv_buf_free(&reply);
	dispatch_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_vault_handoff),
	    cmocka_unit_test(test_realm_handoff),
	    cmocka_unit_test(test_attest_hook),
	    cmocka_unit_test(test_health_and_stats),
	    cmocka_unit_test(test_throttled),
	    cmocka_unit_test(test_info),
	    cmocka_unit_test(test_drain_gate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
