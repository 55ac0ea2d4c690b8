/* Unit tests for enclave/tcti-fd.c on a socketpair standing in for the TPM: a response that comes
 * in pieces is put together; a caller's short timeout gives TRY_AGAIN and keeps the command; a
 * TPM that never answers runs into the command's deadline, which calls the hook once with the
 * command code, fails the receive and leaves the context dead (a late answer is never handed to
 * the next command); hostile response sizes are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <tss2/tss2_tcti.h>

#include "common/err.h"
#include "enclave/tcti-fd.h"

static int tpm_end; /* the fake TPM's end of the socketpair */
static size_t hook_calls;
static uint32_t hook_cc;
static unsigned hook_ms;

static void hook(void *arg, uint32_t cc, unsigned ms)
{
	assert_ptr_equal(arg, &hook_calls);
	hook_calls++;
	hook_cc = cc;
	hook_ms = ms;
}

static TSS2_TCTI_CONTEXT *open_pair(unsigned timeout_ms)
{
	int sv[2];
	TSS2_TCTI_CONTEXT *ctx = NULL;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	tpm_end = sv[1];
	assert_int_equal(tcti_fd_new(&ctx, sv[0]), SV_OK);
	tcti_fd_set_timeout(ctx, timeout_ms, hook, &hook_calls);
	hook_calls = 0;
	hook_cc = 0;
	return ctx;
}

static void close_pair(TSS2_TCTI_CONTEXT *ctx)
{
	tcti_fd_free(ctx);
	close(tpm_end);
}

/* A 12-byte command with code cc, read back on the TPM's end. */
static void send_cmd(TSS2_TCTI_CONTEXT *ctx, uint32_t cc)
{
	uint8_t cmd[12] = {0x80,
	                   0x01,
	                   0,
	                   0,
	                   0,
	                   12,
	                   (uint8_t)(cc >> 24),
	                   (uint8_t)(cc >> 16),
	                   (uint8_t)(cc >> 8),
	                   (uint8_t)cc,
	                   0xaa,
	                   0xbb};
	uint8_t got[12];
	assert_int_equal(Tss2_Tcti_Transmit(ctx, sizeof(cmd), cmd), TSS2_RC_SUCCESS);
	assert_int_equal(read(tpm_end, got, sizeof(got)), sizeof(got));
	assert_memory_equal(got, cmd, sizeof(cmd));
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const uint8_t answer[14] = {0x80, 0x01, 0, 0, 0, 14, 0, 0, 0, 0, 1, 2, 3, 4};

static void test_answer_in_pieces(void **state)
{
	TSS2_TCTI_CONTEXT *ctx = open_pair(2000);
	send_cmd(ctx, TPM2_CC_NV_Increment);
	assert_int_equal(write(tpm_end, answer, 3), 3);
	assert_int_equal(write(tpm_end, answer + 3, sizeof(answer) - 3), sizeof(answer) - 3);
	uint8_t resp[64];
	size_t len = 0;
	assert_int_equal(Tss2_Tcti_Receive(ctx, &len, NULL, TSS2_TCTI_TIMEOUT_BLOCK),
	                 TSS2_RC_SUCCESS);
	assert_int_equal(len, sizeof(answer));
	len = sizeof(resp);
	assert_int_equal(Tss2_Tcti_Receive(ctx, &len, resp, TSS2_TCTI_TIMEOUT_BLOCK),
	                 TSS2_RC_SUCCESS);
	assert_int_equal(len, sizeof(answer));
	assert_memory_equal(resp, answer, sizeof(answer));
	assert_int_equal(hook_calls, 0);
	close_pair(ctx);
}

/* The caller's own timeout, shorter than the deadline, still means "try again". */
static void test_caller_timeout_is_try_again(void **state)
{
	TSS2_TCTI_CONTEXT *ctx = open_pair(5000);
	send_cmd(ctx, TPM2_CC_NV_Read);
	uint8_t resp[64];
	size_t len = sizeof(resp);
	assert_int_equal(Tss2_Tcti_Receive(ctx, &len, resp, 20), TSS2_TCTI_RC_TRY_AGAIN);
	assert_int_equal(write(tpm_end, answer, sizeof(answer)), sizeof(answer));
	len = sizeof(resp);
	assert_int_equal(Tss2_Tcti_Receive(ctx, &len, resp, 20), TSS2_RC_SUCCESS);
	assert_int_equal(len, sizeof(answer));
	assert_int_equal(hook_calls, 0);
	close_pair(ctx);
}

/* The TPM never answers: the blocking receive ends at the deadline, not before and not much
 * after; the hook names the command; the context is dead afterwards, even once the late answer
 * has arrived. */
static void test_hung_tpm(void **state)
{
	TSS2_TCTI_CONTEXT *ctx = open_pair(300);
	send_cmd(ctx, TPM2_CC_NV_Increment);
	uint8_t resp[64];
	size_t len = sizeof(resp);
	uint64_t t0 = now_ms();
	assert_int_equal(Tss2_Tcti_Receive(ctx, &len, resp, TSS2_TCTI_TIMEOUT_BLOCK),
	                 TSS2_TCTI_RC_IO_ERROR);
	uint64_t took = now_ms() - t0;
	assert_true(took >= 280 && took < 3000);
	assert_int_equal(hook_calls, 1);
	assert_int_equal(hook_cc, TPM2_CC_NV_Increment);
	assert_int_equal(hook_ms, 300);
	assert_string_equal(tcti_fd_cc_name(hook_cc), "TPM2_CC_NV_Increment");
	/* the answer comes late: nobody may take it */
	assert_int_equal(write(tpm_end, answer, sizeof(answer)), sizeof(answer));
	len = sizeof(resp);
	assert_int_equal(Tss2_Tcti_Receive(ctx, &len, resp, TSS2_TCTI_TIMEOUT_BLOCK),
	                 TSS2_TCTI_RC_IO_ERROR);
	uint8_t cmd[10] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x7b};
	assert_int_equal(Tss2_Tcti_Transmit(ctx, sizeof(cmd), cmd), TSS2_TCTI_RC_IO_ERROR);
	assert_int_equal(hook_calls, 1);
	close_pair(ctx);
}

/* Half an answer and then silence is a hang too, even with a caller's short timeout. */
static void test_half_answer_then_silence(void **state)
{
	TSS2_TCTI_CONTEXT *ctx = open_pair(200);
	send_cmd(ctx, 0x12345);
	assert_int_equal(write(tpm_end, answer, 6), 6);
	uint8_t resp[64];
	size_t len = sizeof(resp);
	TSS2_RC rc;
	int tries = 0;
	while ((rc = Tss2_Tcti_Receive(ctx, &len, resp, 50)) == TSS2_TCTI_RC_TRY_AGAIN)
		tries++;
	assert_int_equal(rc, TSS2_TCTI_RC_IO_ERROR);
	assert_true(tries < 10);
	assert_int_equal(hook_calls, 1);
	assert_int_equal(hook_cc, 0x12345);
	assert_null(tcti_fd_cc_name(0x12345));
	close_pair(ctx);
}

/* The TPM's end closes after half an answer (a dropped swtpm socket): the hook is called once
 * with 0 ms (lost, not hung) and the context refuses every later command. */
static void test_lost_connection(void **state)
{
	TSS2_TCTI_CONTEXT *ctx = open_pair(5000);
	send_cmd(ctx, TPM2_CC_NV_Increment);
	assert_int_equal(write(tpm_end, answer, 4), 4);
	close(tpm_end);
	tpm_end = -1;
	uint8_t resp[64];
	size_t len = sizeof(resp);
	uint64_t t0 = now_ms();
	assert_int_equal(Tss2_Tcti_Receive(ctx, &len, resp, TSS2_TCTI_TIMEOUT_BLOCK),
	                 TSS2_TCTI_RC_IO_ERROR);
	assert_true(now_ms() - t0 < 2000); /* at once, not at the deadline */
	assert_int_equal(hook_calls, 1);
	assert_int_equal(hook_ms, 0);
	assert_int_equal(hook_cc, TPM2_CC_NV_Increment);
	uint8_t cmd[10] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x7b};
	assert_int_equal(Tss2_Tcti_Transmit(ctx, sizeof(cmd), cmd), TSS2_TCTI_RC_IO_ERROR);
	assert_int_equal(hook_calls, 1);
	tcti_fd_free(ctx);
}

/* Response sizes below a header or above the buffer are refused; timeouts are clamped. */
static void test_hostile_sizes(void **state)
{
	const uint32_t sizes[] = {0, 1, 9, 4097, 0xffffffffu};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		TSS2_TCTI_CONTEXT *ctx = open_pair(0);             /* clamped to 1 ms... */
		tcti_fd_set_timeout(ctx, 2000, hook, &hook_calls); /* ...then set for real */
		send_cmd(ctx, TPM2_CC_GetRandom);
		uint8_t bad[10] = {0x80,
		                   0x01,
		                   (uint8_t)(sizes[i] >> 24),
		                   (uint8_t)(sizes[i] >> 16),
		                   (uint8_t)(sizes[i] >> 8),
		                   (uint8_t)sizes[i]};
		assert_int_equal(write(tpm_end, bad, sizeof(bad)), sizeof(bad));
		uint8_t resp[64];
		size_t len = sizeof(resp);
		assert_int_equal(Tss2_Tcti_Receive(ctx, &len, resp, TSS2_TCTI_TIMEOUT_BLOCK),
		                 TSS2_TCTI_RC_MALFORMED_RESPONSE);
		assert_int_equal(hook_calls, 0);
		close_pair(ctx);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_answer_in_pieces),
	    cmocka_unit_test(test_caller_timeout_is_try_again),
	    cmocka_unit_test(test_hung_tpm),
	    cmocka_unit_test(test_half_answer_then_silence),
	    cmocka_unit_test(test_lost_connection),
	    cmocka_unit_test(test_hostile_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
