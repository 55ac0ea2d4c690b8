/*
 * sealvaultd's side of a graceful stop (sealvaultd(8), "Stopping"). On the first SIGTERM or
 * SIGINT, drain_run asks the broker for a drain on the control pair (SV_MSG_DRAIN with
 * drain-timeout-s); the broker passes it to the enclave, which refuses new login/starts from then
 * on, lets the pending logins finish and reports back (common/drain.h), through the broker, as
 * SV_MSG_DRAIN_REPORT: main.c's control reader hands each one to drain_heard. drain_run returns
 * when the enclave says the drain is over, when a second stop signal comes (stop now), when a
 * child ends, or when drain-timeout-s + DRAIN_MARGIN_S have passed without that report (a broker
 * or enclave that does not answer cannot hold the stop up longer); the caller then stops both
 * children as before. SIGHUP is not acted on meanwhile (the service is stopping).
 */
#ifndef SV_DAEMON_DRAIN_H
#define SV_DAEMON_DRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/supervise.h"

/* sealvaultd waits this much longer than the enclave's own timeout for its last report. */
#define DRAIN_MARGIN_S 5

struct drain_hooks {
	int ctl_fd;         /* sealvaultd's end of the control pair with the broker */
	unsigned timeout_s; /* drain-timeout-s; 0: no drain, stop at once */
	/* reads the control pair (SIGIO): main.c's control reader, which calls drain_heard */
	void (*on_control)(void);
	/* tells systemd a state line (sd_notify), or NULL */
	void (*notify)(const char *state);
};

/* The drain-timeout-s setting from its value (NULL: unset) and login-timeout-s's (NULL: the
 * policy's default): the drain's value when set (0..DRAIN_TIMEOUT_MAX_S), else login-timeout-s.
 * 0 with *out set, or SV_ERR_CONFIG with a reason in why. */
int drain_timeout_of(const char *drain_value, const char *login_timeout_value, unsigned *out,
                     char *why, size_t why_len) __attribute__((warn_unused_result));

/* The drain, as in the header comment; set: the signals blocked for sigwaitinfo. Returns 0 when
 * the children may be stopped now as asked, 1 when one of them ended on its own meanwhile (the
 * exit status sealvaultd should give). */
int drain_run(const struct drain_hooks *h, struct child kids[2], const sigset_t *set);

/* An SV_MSG_DRAIN_REPORT payload from the broker: logged, and remembered when a drain runs
 * (ignored otherwise: the broker is not trusted to start or end one). */
void drain_heard(const uint8_t *payload, size_t len);

#endif
