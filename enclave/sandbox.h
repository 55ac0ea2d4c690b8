/*
 * The enclave's confinement, in the order main.c applies it: not dumpable from the first
 * instruction, fd 3 checked to be the broker link, inherited descriptors closed, and after all
 * set-up (TPM, state, vault) the seccomp filter of policy/seccomp.c pinned to exactly the
 * descriptors then open. Every failure is fatal for the caller (fail closed, invariant I4).
 */
#ifndef SV_ENCLAVE_SANDBOX_H
#define SV_ENCLAVE_SANDBOX_H

#include <stddef.h>

#define SANDBOX_IPC_FD   3
#define SANDBOX_AUDIT_FD 4 /* the audit link to sealvaultd (--audit-link) */
/* sealvaultd's admin pair (sealvault-admin status/delete while the vault runs,
 * enclave/adminsrv.h) */
#define SANDBOX_ADMIN_FD 5

/* PR_SET_DUMPABLE 0: no core dumps, no ptrace or /proc/PID/mem by the same user. */
int sandbox_harden(char *why, size_t why_len) __attribute__((warn_unused_result));

/* Checks that fd is a connected AF_UNIX SOCK_SEQPACKET socket. */
int sandbox_check_ipc(int fd, char *why, size_t why_len) __attribute__((warn_unused_result));

/* Closes every inherited descriptor above SANDBOX_IPC_FD but SANDBOX_AUDIT_FD with audit_link and
 * SANDBOX_ADMIN_FD when that is a
 * connected AF_UNIX SOCK_SEQPACKET socket (*admin_fd gets it, else -1: the vault then serves
 * without online admin), and points stdin and stdout at /dev/null, so that only descriptors the
 * enclave opens itself survive to the filter. */
int sandbox_close_inherited(int audit_link, int *admin_fd, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* Loads what libc loads lazily (time zone), lists the open descriptors and installs the
 * kill-by-default filter pinned to them; with audit_link, SANDBOX_AUDIT_FD gets write only. */
int sandbox_lockdown(int audit_link, char *why, size_t why_len) __attribute__((warn_unused_result));

#endif
