/*
 * The seccomp allowlists of the two processes, as reviewed tables (policy/seccomp.c). Both filters
 * kill the whole process on anything not listed (SCMP_ACT_KILL_PROCESS, also for a foreign
 * architecture), set PR_SET_NO_NEW_PRIVS first, and fail closed: if the filter cannot be built or
 * loaded the caller must exit.
 *
 * Descriptor arguments are pinned where the process knows its descriptors at install time: the
 * enclave may read and write only the descriptors open when its filter is installed (the IPC
 * socket, the TPM connection, the state files, stderr); the broker may accept only on its listener.
 */
#ifndef SV_POLICY_SECCOMP_H
#define SV_POLICY_SECCOMP_H

#include <stddef.h>

#define POLICY_SECCOMP_MAX_FDS 64

/* Descriptors the enclave may use after lock-down. */
struct policy_seccomp_enclave {
	int fds[POLICY_SECCOMP_MAX_FDS];
	size_t n_fds;
	int audit_fd; /* the audit link, on which only write is allowed (not in fds); 0: none */
};

/* Descriptors the broker must be told about. */
struct policy_seccomp_broker {
	int listen_fd;  /* accept4 is allowed on this descriptor ... */
	int metrics_fd; /* ... and on this one (-1: none), the metrics listener */
	int log_fds[2]; /* boot and IMA log (-1: none): pread64 is allowed on these only */
};

/* Fills cfg->fds with every descriptor currently open in this process (from /proc/self/fd),
 * and sets cfg->audit_fd to 0 (none).
 * Call after all set-up and before policy_seccomp_enclave_install(). SV_ERR_RANGE if more than
 * POLICY_SECCOMP_MAX_FDS are open, SV_ERR_IO if /proc is unreadable. */
int policy_seccomp_open_fds(struct policy_seccomp_enclave *cfg, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* Build and load the filters. 0 on success; otherwise a negative SV_ERR_* and a one-line reason in
 * why; the process must then exit (fail closed). */
int policy_seccomp_enclave_install(const struct policy_seccomp_enclave *cfg, char *why,
                                   size_t why_len) __attribute__((warn_unused_result));
int policy_seccomp_broker_install(const struct policy_seccomp_broker *cfg, char *why,
                                  size_t why_len) __attribute__((warn_unused_result));

/* Test hook, shared by both processes (who: "enclave" or "broker"): when the environment variable
 * SV_TEST_SANDBOX is set to "socket", "execve" or "openat[:PATH]", optionally prefixed by "who:"
 * to aim at one process only, make that system call now (after the filter is in place), which
 * must kill the process with SIGSYS. Returns normally only if the variable is unset or
 * names nothing known (then it says so on stderr), or if the call was not stopped by the filter,
 * in which case it reports that on stderr and the caller exits with status 1. */
int policy_seccomp_test_hook(const char *who);

#endif
