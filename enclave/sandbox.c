#include "enclave/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "policy/seccomp.h"

int sandbox_harden(char *why, size_t why_len)
{
	/* A non-dumpable process writes no core file and cannot be ptraced or have its memory read
	 * through /proc by its own user. RLIMIT_CORE is left to the unit (LimitCORE=0): the
	 * packaged unit forbids setrlimit. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		snprintf(why, why_len, "prctl(PR_SET_DUMPABLE, 0) failed: %s", strerror(errno));
		return SV_ERR_INTERNAL;
	}
	return SV_OK;
}

int sandbox_check_ipc(int fd, char *why, size_t why_len)
{
	int type = 0, domain = 0;
	socklen_t tl = sizeof(type), dl = sizeof(domain);
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) != 0 || type != SOCK_SEQPACKET ||
	    domain != AF_UNIX || getpeername(fd, (struct sockaddr *)&peer, &pl) != 0) {
		snprintf(
		    why, why_len,
		    "descriptor %d is not a connected AF_UNIX SOCK_SEQPACKET socket; start the "
		    "enclave through sealvaultd",
		    fd);
		return SV_ERR_CONFIG;
	}
	return SV_OK;
}

int sandbox_close_inherited(int audit_link, int *admin_fd, char *why, size_t why_len)
{
	char ignored[8];
	_Static_assert(SANDBOX_ADMIN_FD == SANDBOX_IPC_FD + 2 &&
	                   SANDBOX_AUDIT_FD == SANDBOX_IPC_FD + 1,
	               "the descriptors closed below");
	*admin_fd = sandbox_check_ipc(SANDBOX_ADMIN_FD, ignored, sizeof(ignored)) == 0
	                ? SANDBOX_ADMIN_FD
	                : -1;
	if ((!audit_link && close_range(SANDBOX_AUDIT_FD, SANDBOX_AUDIT_FD, 0) != 0) ||
	    (*admin_fd < 0 && close_range(SANDBOX_ADMIN_FD, SANDBOX_ADMIN_FD, 0) != 0) ||
	    close_range(SANDBOX_ADMIN_FD + 1, ~0U, 0) != 0) {
		snprintf(why, why_len, "close_range failed: %s", strerror(errno));
		return SV_ERR_IO;
	}
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0) {
		snprintf(why, why_len, "cannot point stdin/stdout at /dev/null: %s",
		         strerror(errno));
		if (null >= 0)
			close(null);
		return SV_ERR_IO;
	}
	if (null > STDOUT_FILENO)
		close(null);
	return SV_OK;
}

int sandbox_lockdown(int audit_link, char *why, size_t why_len)
{
	/* glibc reads /etc/localtime on first use; a message with a time stamp after the filter
	 * would otherwise be fatal */
	tzset();
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);

	struct policy_seccomp_enclave cfg;
	int r = policy_seccomp_open_fds(&cfg, why, why_len);
	if (r != 0)
		return r;
	if (audit_link) {
		/* the audit link is written, never read, seeked or truncated */
		size_t n = 0;
		for (size_t i = 0; i < cfg.n_fds; i++)
			if (cfg.fds[i] != SANDBOX_AUDIT_FD)
				cfg.fds[n++] = cfg.fds[i];
		cfg.n_fds = n;
		cfg.audit_fd = SANDBOX_AUDIT_FD;
	}
	return policy_seccomp_enclave_install(&cfg, why, why_len);
}
