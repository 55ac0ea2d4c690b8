/* Unit tests for daemon/drain: the drain-timeout-s setting, and sealvaultd's wait for the drain
 * (the request it sends, the reports it believes, a second stop signal, its own deadline, a child
 * that ends). Signals, the clock, waitpid and the control link are faked through --wrap (see
 * daemon/build.mk). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <sys/types.h>
#include <time.h>

#include <cmocka.h>

#include "common/drain.h"
#include "common/err.h"
#include "common/msg.h"
#include "daemon/drain.h"

int __wrap_frame_send(int fd, uint16_t type, uint32_t req_id, const uint8_t *payload, size_t len);
int __wrap_sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout);
pid_t __wrap_waitpid(pid_t pid, int *status, int options);
int __wrap_clock_gettime(clockid_t clk, struct timespec *ts);

/* the fake world */
static uint64_t now_ms;
static int send_result;
static int sends;
static uint16_t sent_type;
static uint8_t sent[16];
static size_t sent_len;
static int script[8]; /* what sigtimedwait returns, in turn; 0: times out */
/* the set drain_run waits on (sigtimedwait is faked; glibc declares the set nonnull) */
static sigset_t no_signals;
static int nscript, waits;
static pid_t dead_pid; /* waitpid reports this one ended */
static char notified[200];
/* what the fake control reader hears on each SIGIO, in turn */
static struct {
	uint8_t p[DRAIN_REPORT_LEN + 1];
	size_t len;
} heard[4];
static int nheard, reads;

int __wrap_frame_send(int fd, uint16_t type, uint32_t req_id, const uint8_t *payload, size_t len)
{
	sends++;
	sent_type = type;
	assert_int_equal(req_id, 0);
	assert_true(len <= sizeof(sent));
	memcpy(sent, payload, len);
	sent_len = len;
	return send_result;
}

int __wrap_sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
	int sig = waits < nscript ? script[waits] : 0;
	waits++;
	if (sig == 0) {
		now_ms += (uint64_t)timeout->tv_sec * 1000u + (uint64_t)timeout->tv_nsec / 1000000u;
		errno = EAGAIN;
		return -1;
	}
	now_ms += 10;
	return sig;
}

pid_t __wrap_waitpid(pid_t pid, int *status, int options)
{
	if (pid != dead_pid)
		return 0;
	*status = 0;
	return pid;
}

int __wrap_clock_gettime(clockid_t clk, struct timespec *ts)
{
	ts->tv_sec = (time_t)(now_ms / 1000);
	ts->tv_nsec = (long)(now_ms % 1000) * 1000000L;
	return 0;
}

static void fake_control(void)
{
	if (reads < nheard) {
		drain_heard(heard[reads].p, heard[reads].len);
		reads++;
	}
}

static void fake_notify(const char *state)
{
	snprintf(notified, sizeof(notified), "%s", state);
}

static void hear(uint8_t phase, uint32_t pending, uint32_t last)
{
	struct drain_report r = {.phase = phase, .pending = pending, .last_guesses = last};
	assert_int_equal(drain_report_encode(heard[nheard].p, &r), 0);
	heard[nheard++].len = DRAIN_REPORT_LEN;
}

static struct child kids[2];
static const struct drain_hooks hooks = {
    .ctl_fd = 7, .timeout_s = 20, .on_control = fake_control, .notify = fake_notify};

static int reset(void **state)
{
	now_ms = 1000000;
	send_result = 0;
	sends = nscript = waits = nheard = reads = 0;
	sent_type = 0;
	dead_pid = 0;
	notified[0] = '\0';
	memset(kids, 0, sizeof(kids));
	kids[0] = (struct child){.name = "sealvault-enclave", .pid = 100};
	kids[1] = (struct child){.name = "sealvault-broker", .pid = 101};
	return 0;
}

static void test_timeout_setting(void **state)
{
	unsigned t = 99;
	char why[200];
	assert_int_equal(drain_timeout_of(NULL, NULL, &t, why, sizeof(why)), 0);
	assert_int_equal(t, 60); /* login-timeout-s's default */
	assert_int_equal(drain_timeout_of(NULL, "7", &t, why, sizeof(why)), 0);
	assert_int_equal(t, 7);
	assert_int_equal(drain_timeout_of("0", "7", &t, why, sizeof(why)), 0);
	assert_int_equal(t, 0);
	assert_int_equal(drain_timeout_of("3600", NULL, &t, why, sizeof(why)), 0);
	assert_int_equal(t, 3600);
	t = 99;
	const char *bad[] = {"3601", "-1", "", "1x", " 5", "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(drain_timeout_of(bad[i], NULL, &t, why, sizeof(why)),
		                 SV_ERR_CONFIG);
		assert_non_null(strstr(why, "drain-timeout-s"));
	}
	assert_int_equal(drain_timeout_of(NULL, "0", &t, why, sizeof(why)), SV_ERR_CONFIG);
	assert_int_equal(t, 99);
}

/* The request goes out with the timeout; BEGUN is logged and told to systemd, OVER ends it. */
static void test_drained(void **state)
{
	unsigned t;
	script[nscript++] = SIGIO;
	script[nscript++] = SIGIO;
	hear(DRAIN_BEGUN, 2, 1);
	hear(DRAIN_OVER, 0, 0);
	assert_int_equal(drain_run(&hooks, kids, &no_signals), 0);
	assert_int_equal(sends, 1);
	assert_int_equal(sent_type, SV_MSG_DRAIN);
	assert_int_equal(drain_request_decode(sent, sent_len, &t), 0);
	assert_int_equal(t, 20);
	assert_int_equal(waits, 2);
	assert_non_null(strstr(notified, "waiting for 2 pending logins"));
	assert_int_equal(kids[0].pid, 100);
	assert_int_equal(kids[1].pid, 101);
}

/* drain-timeout-s 0, a child already gone, or a control link that takes nothing: stop at once. */
static void test_no_drain(void **state)
{
	struct drain_hooks h = hooks;
	h.timeout_s = 0;
	assert_int_equal(drain_run(&h, kids, &no_signals), 0);
	assert_int_equal(sends, 0);
	kids[0].pid = 0;
	assert_int_equal(drain_run(&hooks, kids, &no_signals), 0);
	assert_int_equal(sends, 0);
	kids[0].pid = 100;
	send_result = SV_ERR_BUSY;
	assert_int_equal(drain_run(&hooks, kids, &no_signals), 0);
	assert_int_equal(sends, 1);
	assert_int_equal(waits, 0);
}

/* A second SIGTERM or SIGINT stops at once; SIGHUP does not. */
static void test_second_signal(void **state)
{
	script[nscript++] = SIGHUP;
	script[nscript++] = SIGINT;
	assert_int_equal(drain_run(&hooks, kids, &no_signals), 0);
	assert_int_equal(waits, 2);
	reset(state);
	script[nscript++] = SIGTERM;
	assert_int_equal(drain_run(&hooks, kids, &no_signals), 0);
	assert_int_equal(waits, 1);
	assert_non_null(strstr(notified, "STOPPING=1"));
}

/* No report at all: sealvaultd gives up at drain-timeout-s + DRAIN_MARGIN_S, not before. */
static void test_deadline(void **state)
{
	uint64_t t0 = now_ms;
	assert_int_equal(drain_run(&hooks, kids, &no_signals), 0);
	assert_true(waits >= 1);
	assert_int_equal(now_ms - t0, (uint64_t)(20 + DRAIN_MARGIN_S) * 1000u);
}

/* Reports outside a drain, and malformed ones, are ignored: a broker cannot end a drain early
 * with them, nor start one. */
static void test_untrusted_reports(void **state)
{
	struct drain_report over = {.phase = DRAIN_OVER};
	uint8_t p[DRAIN_REPORT_LEN];
	assert_int_equal(drain_report_encode(p, &over), 0);
	drain_heard(p, sizeof(p)); /* no drain runs */
	script[nscript++] = SIGIO;
	script[nscript++] = SIGIO;
	script[nscript++] = SIGTERM;
	heard[nheard].len = DRAIN_REPORT_LEN - 1; /* malformed */
	nheard++;
	memset(heard[nheard].p, 0, sizeof(heard[nheard].p));
	heard[nheard].p[0] = 7; /* unknown phase */
	heard[nheard++].len = DRAIN_REPORT_LEN;
	assert_int_equal(drain_run(&hooks, kids, &no_signals), 0);
	assert_int_equal(reads, 2);
	assert_int_equal(waits, 3); /* only the SIGTERM ended it */
	/* and the last drain's end does not carry over to the next */
	reset(state);
	script[nscript++] = SIGIO;
	script[nscript++] = SIGTERM;
	hear(DRAIN_BEGUN, 1, 0);
	assert_int_equal(drain_run(&hooks, kids, &no_signals), 0);
	assert_int_equal(waits, 2);
}

/* A child that ends meanwhile ends the drain with status 1; it is reaped. */
static void test_child_ends(void **state)
{
	script[nscript++] = SIGCHLD; /* nothing ended: spurious */
	script[nscript++] = SIGCHLD;
	assert_int_equal(drain_run(&hooks, kids, &no_signals), 0); /* runs to the deadline */
	reset(state);
	dead_pid = 101;
	script[nscript++] = SIGCHLD;
	assert_int_equal(drain_run(&hooks, kids, &no_signals), 1);
	assert_int_equal(kids[1].pid, 0);
	assert_int_equal(kids[0].pid, 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_timeout_setting, reset),
	    cmocka_unit_test_setup(test_drained, reset),
	    cmocka_unit_test_setup(test_no_drain, reset),
	    cmocka_unit_test_setup(test_second_signal, reset),
	    cmocka_unit_test_setup(test_deadline, reset),
	    cmocka_unit_test_setup(test_untrusted_reports, reset),
	    cmocka_unit_test_setup(test_child_ends, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
