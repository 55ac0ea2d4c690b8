/*
 * sealvaultd's admin socket: `sealvault-admin status` and `delete` while the vault runs
 * (sealvaultd(8), "ADMIN SOCKET"). A SOCK_SEQPACKET unix socket (admin-socket in
 * sealvault.conf(5), default /run/sealvault/admin.sock), mode 0660, group sealvault-admin. Each
 * connection carries one request frame and gets one SV_MSG_ADMIN_REPLY (common/adminmsg.h).
 * sealvaultd checks the caller with SO_PEERCRED (root, sealvaultd's own user, or a member of
 * group sealvault-admin), checks the request, and relays it on the admin pair to the enclave,
 * whose end is the enclave's fd 5: never on the broker's link, which an attacker who took the
 * broker over controls (docs/threat-model.md, "Online admin").
 */
#ifndef SV_DAEMON_ADMINSOCK_H
#define SV_DAEMON_ADMINSOCK_H

#include <sys/types.h>

#define ADMINSOCK_GROUP "sealvault-admin"

/* Creates the admin pair and listens on path ("none": no admin socket) with O_ASYNC, so that a
 * connection raises SIGIO. *enclave_end: the enclave's end of the pair (kept open here across
 * the enclave's restarts), or -1 without a socket. enclave_pid: the enclave's pid as supervise
 * keeps it (0 while it is being restarted: requests are then answered busy at once). When the
 * socket cannot be created at the default path (explicit 0: not root, no /run/sealvault)
 * sealvaultd goes on without one and says so; otherwise that is an error. 0, or -1 with a
 * message on stderr. */
int adminsock_start(const char *path, int explicit, const pid_t *enclave_pid, int *enclave_end);

/* SIGIO: accepts and answers every connection waiting. Blocks for at most the enclave's answer
 * time (ADMINSOCK_ANSWER_MS) per request. */
void adminsock_readable(void);

/* Before the enclave is started again: drops the requests the ended one never read, so that the
 * next one does not act on a request whose caller was already told it timed out. */
void adminsock_enclave_gone(void);

/* At exit: removes the socket file. */
void adminsock_stop(void);

#endif
