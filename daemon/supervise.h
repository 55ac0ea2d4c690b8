/*
 * sealvaultd's supervision of its two children (sealvaultd(8), "Restarts"). main.c builds the
 * children's command lines and descriptors; this module starts them, watches them, and restarts
 * the enclave alone when it ended because the TPM is unavailable for now.
 */
#ifndef SV_DAEMON_SUPERVISE_H
#define SV_DAEMON_SUPERVISE_H

#include <pwd.h>
#include <signal.h>
#include <sys/types.h>

#define CHILD_FDS 6

/* One child: its descriptors are placed at 3, 4, ... in order; a -1 leaves that number closed
 * (the enclave's fd 4 is such a hole), and the -1s after the last descriptor end the list. */
struct child {
	const char *name;
	pid_t pid;
	const struct passwd *pw; /* NULL: keep the current user */
	int fds[CHILD_FDS];
	unsigned own_fds; /* bit i: fds[i] is the child's alone, closed here once it runs */
	char **argv;
};

/* Called before each restart of the enclave with the restarts so far (all of them after a TPM
 * failure, since nothing else restarts it), so that its command line can say them. */
typedef void (*supervise_restart_fn)(unsigned long restarts);

/* Called on SIGHUP (sealvaultd(8), "Reload"); it must return within seconds, since the children
 * are not watched meanwhile (their exits wait as pending SIGCHLD). */
typedef void (*supervise_reload_fn)(void);

/* Called on SIGIO: the control pair with the broker has frames to read, or the admin socket a
 * connection (main.c and daemon/adminsock.c set O_ASYNC; SIGIO is in set). Non-blocking reads,
 * except that an admin request waits up to 10 s for the enclave's answer. */
typedef void (*supervise_control_fn)(void);

/* Called on the first SIGTERM or SIGINT while both children run, before they are stopped: the
 * graceful drain (daemon/drain.h). Returns what supervise should return (0, or 1 when a child
 * ended on its own meanwhile). */
typedef int (*supervise_stop_fn)(struct child kids[2], const sigset_t *set);

/* Logs how a child ended (its wait status). */
void supervise_describe(const struct child *c, int status);

/* Starts kids[0] (the enclave, fds[0] = its end of the SOCK_SEQPACKET pair and fds[1] = its end
 * of the audit pair, both of which stay open here for the next enclave after a restart) and kids[1]
 * (the broker, fds[0] = the other end, closed here once it runs, like every descriptor in its
 * own_fds), then supervises them, calling on_reload for every SIGHUP and on_control for every
 * SIGIO, until a stop signal, SIGTERM or SIGINT (on_stop, may be NULL, runs first; returns 0, both
 * stopped), or until either ends other than by the enclave's SV_EXIT_TPM_UNAVAILABLE (returns 1,
 * both stopped: systemd restarts the pair). After SV_EXIT_TPM_UNAVAILABLE the enclave is restarted
 * alone after a back-off, and the broker keeps its clients' connections, answering 503 meanwhile.
 * set: the signals blocked for sigwaitinfo (SIGCHLD, SIGHUP, SIGIO and the stop signals); old: the
 * mask the children get. */
int supervise(struct child kids[2], const sigset_t *set, const sigset_t *old,
              supervise_restart_fn on_restart, supervise_reload_fn on_reload,
              supervise_control_fn on_control, supervise_stop_fn on_stop);

#endif
