#include "daemon/drain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "common/drain.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"
#include "policy/vault.h"

/* The drain in progress, for drain_heard (called from main.c's control reader). */
static struct {
	int running;
	int over; /* the enclave's DRAIN_OVER came */
	const struct drain_hooks *h;
} state;

int drain_timeout_of(const char *drain_value, const char *login_timeout_value, unsigned *out,
                     char *why, size_t why_len)
{
	if (drain_value != NULL) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(drain_value, &end, 10);
		if (errno != 0 || *drain_value < '0' || *drain_value > '9' || *end != '\0' ||
		    v > DRAIN_TIMEOUT_MAX_S) {
			snprintf(
			    why, why_len,
			    "drain-timeout-s must be a number of seconds in 0..%d, not '%.40s'",
			    DRAIN_TIMEOUT_MAX_S, drain_value);
			return SV_ERR_CONFIG;
		}
		*out = (unsigned)v;
		return SV_OK;
	}
	struct sv_vault_policy p;
	policy_vault_defaults(&p);
	if (login_timeout_value != NULL &&
	    policy_vault_set(&p, "login-timeout-s", login_timeout_value, why, why_len) != 0)
		return SV_ERR_CONFIG;
	*out = p.login_timeout_s;
	return SV_OK;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void tell(const char *state_line)
{
	if (state.h != NULL && state.h->notify != NULL)
		state.h->notify(state_line);
}

void drain_heard(const uint8_t *payload, size_t len)
{
	struct drain_report r;
	char line[160];
	if (drain_report_decode(payload, len, &r) != 0) {
		fprintf(stderr, "sealvaultd: malformed drain report from the broker; ignored\n");
		return;
	}
	if (!state.running || state.over) {
		fprintf(stderr, "sealvaultd: a drain report while no drain runs; ignored\n");
		return;
	}
	if (r.phase == DRAIN_BEGUN) {
		fprintf(stderr,
		        "sealvaultd: the enclave refuses new logins; %u pending logins (%u on a "
		        "last guess) may still finish\n",
		        (unsigned)r.pending, (unsigned)r.last_guesses);
		snprintf(line, sizeof(line),
		         "STATUS=stopping: waiting for %u pending logins (at most %u s)",
		         (unsigned)r.pending, state.h->timeout_s);
		tell(line);
		return;
	}
	state.over = 1;
	if (r.pending == 0)
		fprintf(stderr, "sealvaultd: every pending login has finished; stopping both "
		                "processes\n");
	else
		fprintf(stderr,
		        "sealvaultd: drain-timeout-s passed with %u logins unfinished; %u of them "
		        "held a last guess, whose record stays destroyed (sealvaultd(8), "
		        "\"Stopping\"); stopping both processes\n",
		        (unsigned)r.pending, (unsigned)r.last_guesses);
}

/* A child that ended during the drain: described and reaped; 1 if one did. */
static int child_ended(struct child kids[2])
{
	for (int i = 0; i < 2; i++) {
		int st;
		if (kids[i].pid > 0 && waitpid(kids[i].pid, &st, WNOHANG) == kids[i].pid) {
			supervise_describe(&kids[i], st);
			kids[i].pid = 0;
			return 1;
		}
	}
	return 0;
}

int drain_run(const struct drain_hooks *h, struct child kids[2], const sigset_t *set)
{
	uint8_t p[DRAIN_REQUEST_LEN];
	char line[120];
	int r;
	if (h->timeout_s == 0) {
		fprintf(stderr, "sealvaultd: drain-timeout-s is 0: stopping both processes now\n");
		return 0;
	}
	if (kids[0].pid <= 0 || kids[1].pid <= 0) {
		fprintf(stderr, "sealvaultd: the enclave is not running, so no login is pending: "
		                "stopping now\n");
		return 0;
	}
	if ((r = drain_request_encode(p, h->timeout_s)) != 0 ||
	    (r = frame_send(h->ctl_fd, SV_MSG_DRAIN, 0, p, sizeof(p))) != 0) {
		fprintf(stderr,
		        "sealvaultd: cannot ask the broker for a drain (%s); stopping both "
		        "processes now\n",
		        sv_strerror(r));
		return 0;
	}
	state.running = 1;
	state.over = 0;
	state.h = h;
	fprintf(stderr,
	        "sealvaultd: stopping: new logins are refused; pending logins may finish within "
	        "%u s (drain-timeout-s); a second SIGTERM or SIGINT stops at once\n",
	        h->timeout_s);
	snprintf(line, sizeof(line),
	         "STOPPING=1\nSTATUS=stopping: pending logins may finish (at most %u s)",
	         h->timeout_s);
	tell(line);
	uint64_t end = mono_ms() + ((uint64_t)h->timeout_s + DRAIN_MARGIN_S) * 1000u;
	int result = 0;
	while (!state.over) {
		uint64_t now = mono_ms();
		if (now >= end) {
			fprintf(
			    stderr,
			    "sealvaultd: the enclave did not report the end of the drain within "
			    "%u s; stopping both processes now\n",
			    h->timeout_s + DRAIN_MARGIN_S);
			break;
		}
		uint64_t left = end - now;
		struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
		siginfo_t si;
		int sig = sigtimedwait(set, &si, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			fprintf(
			    stderr,
			    "sealvaultd: %s again: stopping both processes now; the logins still "
			    "pending end with them\n",
			    strsignal(sig));
			break;
		}
		if (sig == SIGHUP)
			fprintf(stderr, "sealvaultd: SIGHUP ignored: sealvault is stopping\n");
		if (sig == SIGIO && h->on_control != NULL)
			h->on_control();
		if (sig == SIGCHLD && child_ended(kids)) {
			fprintf(stderr,
			        "sealvaultd: a process ended during the drain; stopping the "
			        "other one\n");
			result = 1;
			break;
		}
	}
	state.running = 0;
	state.h = NULL;
	return result;
}
