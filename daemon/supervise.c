/*
 * The enclave's end of the socketpair stays open here for as long as the broker runs. That is what
 * lets the enclave restart alone: the broker never sees the link end, and sealvaultd speaks for
 * the dead enclave on its end (common/msg.h):
 *
 *   1. the enclave exits with SV_EXIT_TPM_UNAVAILABLE (a TPM command timed out, the connection
 *      to the TPM ended, or NV writes were throttled at start);
 *   2. sealvaultd writes SV_MSG_ENCLAVE_GONE on the enclave's end; the broker answers every
 *      request in flight 503 ("the vault restarted ... it may have taken effect"), refuses new
 *      ones 503 ("the vault is restarting") and answers SV_MSG_GONE_SEEN;
 *   3. sealvaultd reads the enclave's end up to SV_MSG_GONE_SEEN, discarding the requests the
 *      dead enclave never read (every one was answered in 2), so the next enclave starts on an
 *      empty link;
 *   4. after the back-off (RESTART_FIRST_S, doubling to RESTART_MAX_S, starting over once an
 *      enclave has run RESTART_HEALTHY_S) it starts the enclave again on the same end; the new
 *      enclave sends SV_MSG_READY once it serves, and the broker forwards requests again.
 *
 * Nothing acknowledged is lost on the way: the dead enclave answered nothing it had not anchored,
 * and the next one judges the NV counter against the journal before it serves. A login begun
 * before the restart gets 503 at its KE3 (enclave/session.h: the ids carry their run).
 *
 * SIGTERM or SIGINT is a graceful stop: on_stop (daemon/drain.c) lets the pending logins finish
 * before both children are stopped; during the back-off no enclave runs, so it stops at once.
 * SIGHUP is a reload (main.c), also during the back-off: it concerns the broker only and goes to
 * it on a control pair of its own, never on the enclave's end, which only the enclave reads while
 * it runs. SIGIO says the broker wrote on that pair (SV_MSG_SERVING: the enclave serves, which
 * main.c passes on to systemd as READY=1).
 */
#include "daemon/supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"

#define RESTART_FIRST_S   1     /* back-off before the first restart after a TPM failure */
#define RESTART_MAX_S     60    /* ... doubling up to this */
#define RESTART_HEALTHY_S 300   /* an enclave that ran this long starts the back-off over */
#define HANDOVER_MS       10000 /* the broker's SV_MSG_GONE_SEEN must come within this */

/* In the child: move fds to 3 (and 4, ...), close everything else, drop privileges, exec. */
static void start_child(struct child *c, const sigset_t *oldmask)
{
	int hi[CHILD_FDS], n = 0;
	/* up to the last descriptor; a -1 before it is a hole: that number is closed */
	for (int i = 0; i < CHILD_FDS; i++)
		if (c->fds[i] >= 0)
			n = i + 1;
	for (int i = 0; i < n; i++)
		if (c->fds[i] >= 0 && (hi[i] = fcntl(c->fds[i], F_DUPFD_CLOEXEC, 64)) < 0)
			goto fail;
	for (int i = 0; i < n; i++)
		if (c->fds[i] >= 0 ? dup2(hi[i], 3 + i) != 3 + i
		                   : close(3 + i) != 0 && errno != EBADF)
			goto fail;
	if (close_range(3 + (unsigned)n, ~0U, 0) != 0)
		goto fail;
	if (c->pw != NULL) {
		if (initgroups(c->pw->pw_name, c->pw->pw_gid) != 0 ||
		    setresgid(c->pw->pw_gid, c->pw->pw_gid, c->pw->pw_gid) != 0 ||
		    setresuid(c->pw->pw_uid, c->pw->pw_uid, c->pw->pw_uid) != 0 || setuid(0) == 0) {
			fprintf(stderr, "sealvaultd: cannot switch %s to user %s: %s\n", c->name,
			        c->pw->pw_name, strerror(errno));
			_exit(1);
		}
	}
	/* the child should not outlive the supervisor */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
		goto fail;
	/* A reload is sealvaultd's: a SIGHUP that reaches a child too (systemctl kill -s HUP, a
	 * pkill) must not stop it. The disposition survives exec. */
	if (signal(SIGHUP, SIG_IGN) == SIG_ERR)
		goto fail;
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	execv(c->argv[0], c->argv);
fail:
	fprintf(stderr, "sealvaultd: cannot start %s (%s): %s\n", c->name, c->argv[0],
	        strerror(errno));
	_exit(1);
}

static int spawn(struct child *c, const sigset_t *old)
{
	c->pid = fork();
	if (c->pid < 0) {
		fprintf(stderr, "sealvaultd: cannot start %s: fork: %s\n", c->name,
		        strerror(errno));
		c->pid = 0;
		return -1;
	}
	if (c->pid == 0)
		start_child(c, old);
	return 0;
}

void supervise_describe(const struct child *c, int status)
{
	if (WIFEXITED(status))
		fprintf(stderr, "sealvaultd: %s (pid %d) exited with status %d\n", c->name,
		        (int)c->pid, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		fprintf(stderr, "sealvaultd: %s (pid %d) was killed by signal %d (%s)%s\n", c->name,
		        (int)c->pid, WTERMSIG(status), strsignal(WTERMSIG(status)),
		        WTERMSIG(status) == SIGSYS ? ": it made a system call outside its seccomp "
		                                     "allowlist (policy/seccomp.c)"
		                                   : "");
}

/* Stops the children still running: SIGTERM, then SIGKILL after a grace period. */
static void stop_all(struct child *kids, size_t n, const sigset_t *set)
{
	for (size_t i = 0; i < n; i++)
		if (kids[i].pid > 0)
			kill(kids[i].pid, SIGTERM);
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 5;
	for (;;) {
		int left = 0;
		for (size_t i = 0; i < n; i++) {
			if (kids[i].pid > 0 && waitpid(kids[i].pid, NULL, WNOHANG) == kids[i].pid)
				kids[i].pid = 0;
			left |= kids[i].pid > 0;
		}
		if (!left)
			return;
		struct timespec now, wait = {0, 100 * 1000 * 1000};
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec >= deadline.tv_sec) {
			for (size_t i = 0; i < n; i++)
				if (kids[i].pid > 0) {
					fprintf(stderr, "sealvaultd: %s did not stop; killing it\n",
					        kids[i].name);
					kill(kids[i].pid, SIGKILL);
					waitpid(kids[i].pid, NULL, 0);
					kids[i].pid = 0;
				}
			return;
		}
		sigtimedwait(set, NULL, &wait);
	}
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Steps 2 and 3 of the header: 0 once the broker confirmed, -1 (with a message) otherwise. */
static int handover(int efd)
{
	static uint8_t buf[SV_FRAME_BUF_LEN];
	uint64_t end = mono_ms() + HANDOVER_MS;
	int sent = 0, r;
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= end) {
			fprintf(stderr,
			        "sealvaultd: the broker did not confirm the enclave's restart "
			        "within %d s\n",
			        HANDOVER_MS / 1000);
			return -1;
		}
		if (!sent) {
			r = frame_send(efd, SV_MSG_ENCLAVE_GONE, 0, NULL, 0);
			if (r == 0)
				sent = 1;
			else if (r != SV_ERR_BUSY)
				goto broken;
		}
		struct pollfd p = {.fd = efd, .events = sent ? POLLIN : POLLIN | POLLOUT};
		if (poll(&p, 1, (int)(end - now)) < 0 && errno != EINTR)
			goto broken;
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		/* everything before GONE_SEEN: requests the dead enclave never read */
		struct sv_frame f;
		while ((r = frame_recv(efd, buf, &f)) == 0) {
			int seen = f.type == SV_MSG_GONE_SEEN;
			memset(buf, 0, SV_FRAME_HDR_LEN + f.len); /* requests may carry KE3s */
			if (seen && sent)
				return 0;
		}
		if (r != SV_ERR_BUSY)
			goto broken;
	}
broken:
	fprintf(stderr,
	        "sealvaultd: the link to the broker failed while restarting the enclave "
	        "(%s)\n",
	        sv_strerror(r));
	return -1;
}

/* The back-off of step 4, waiting for nothing but a stop signal, SIGHUP (a reload, which
 * concerns the broker only) or the broker's end: 0 when it is over, 1 when a stop signal came,
 * -1 when the broker ended. */
static int back_off(unsigned s, struct child *broker, const sigset_t *set,
                    supervise_reload_fn on_reload, supervise_control_fn on_control)
{
	uint64_t end = mono_ms() + (uint64_t)s * 1000u;
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= end)
			return 0;
		uint64_t left = end - now;
		struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
		int sig = sigtimedwait(set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			return 1;
		if (sig == SIGHUP)
			on_reload();
		if (sig == SIGIO)
			on_control();
		int st;
		if (sig == SIGCHLD && waitpid(broker->pid, &st, WNOHANG) == broker->pid) {
			supervise_describe(broker, st);
			broker->pid = 0;
			return -1;
		}
	}
}

int supervise(struct child kids[2], const sigset_t *set, const sigset_t *old,
              supervise_restart_fn on_restart, supervise_reload_fn on_reload,
              supervise_control_fn on_control, supervise_stop_fn on_stop)
{
	struct child *enclave = &kids[0], *broker = &kids[1];
	int efd = enclave->fds[0];
	unsigned long restarts = 0;
	unsigned delay_s = RESTART_FIRST_S;
	uint64_t started_ms = mono_ms();

	if (spawn(enclave, old) != 0 || spawn(broker, old) != 0) {
		stop_all(kids, 2, set);
		return 1;
	}
	/* the broker's ends (of the enclave's pair and of the control pair); the enclave's stays
	 * open here */
	for (int i = 0; i < CHILD_FDS; i++)
		if (broker->own_fds & (1u << i) && broker->fds[i] >= 0) {
			close(broker->fds[i]);
			broker->fds[i] = -1;
		}
	fprintf(stderr,
	        "sealvaultd: started sealvault-enclave (pid %d) and sealvault-broker (pid %d)\n",
	        (int)enclave->pid, (int)broker->pid);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(set, &si);
		if (sig < 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT) {
			fprintf(stderr, "sealvaultd: %s; stopping\n", strsignal(sig));
			int r = on_stop != NULL ? on_stop(kids, set) : 0;
			stop_all(kids, 2, set);
			return r;
		}
		if (sig == SIGHUP) {
			on_reload();
			continue;
		}
		if (sig == SIGIO) {
			on_control();
			continue;
		}
		int st;
		if (broker->pid > 0 && waitpid(broker->pid, &st, WNOHANG) == broker->pid) {
			supervise_describe(broker, st);
			broker->pid = 0;
			stop_all(kids, 2, set);
			fprintf(stderr,
			        "sealvaultd: stopped sealvault-enclave; exiting so that the "
			        "pair is restarted\n");
			return 1;
		}
		if (enclave->pid <= 0 || waitpid(enclave->pid, &st, WNOHANG) != enclave->pid)
			continue;
		supervise_describe(enclave, st);
		enclave->pid = 0;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != SV_EXIT_TPM_UNAVAILABLE ||
		    handover(efd) != 0) {
			stop_all(kids, 2, set);
			fprintf(stderr, "sealvaultd: stopped sealvault-broker; exiting so that the "
			                "pair is restarted\n");
			return 1;
		}
		if (mono_ms() - started_ms >= RESTART_HEALTHY_S * 1000u)
			delay_s = RESTART_FIRST_S;
		restarts++;
		fprintf(
		    stderr,
		    "sealvaultd: the enclave stopped because the TPM is unavailable; restarting "
		    "it in %u s (restart %lu); the broker answers 503 meanwhile\n",
		    delay_s, restarts);
		int b = back_off(delay_s, broker, set, on_reload, on_control);
		if (b != 0) {
			stop_all(kids, 2, set);
			fprintf(stderr,
			        b > 0 ? "sealvaultd: stopping instead of restarting\n"
			              : "sealvaultd: exiting so that the pair is restarted\n");
			return b > 0 ? 0 : 1;
		}
		delay_s = delay_s * 2 > RESTART_MAX_S ? RESTART_MAX_S : delay_s * 2;
		on_restart(restarts);
		started_ms = mono_ms();
		if (spawn(enclave, old) != 0) {
			stop_all(kids, 2, set);
			return 1;
		}
		fprintf(
		    stderr,
		    "sealvaultd: started sealvault-enclave (pid %d) again; sealvault-broker (pid "
		    "%d) kept its connections\n",
		    (int)enclave->pid, (int)broker->pid);
	}
}
