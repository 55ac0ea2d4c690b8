/*
 * How `sealvault-admin status` and `delete` reach a vault: through the admin socket of a running
 * sealvaultd (daemon/adminsock.h), or offline on the state directory and the TPM as before.
 *
 *   - --state-dir or --tpm without --admin-socket: offline, exactly as before (a directory named
 *     on the command line is never taken for the one a running service serves).
 *   - otherwise the admin socket (--admin-socket, else admin-socket in the configuration, else
 *     /run/sealvault/admin.sock) is tried first; the configuration is --config FILE, else
 *     /etc/sealvault/sealvault.conf when it exists, and gives state-dir, tpm and admin-socket as
 *     sealvaultd reads them (flags win);
 *   - when nothing listens there (no such file, connection refused) and the state directory's
 *     lock is free, the command runs offline on state-dir and tpm; when the lock is held (a vault
 *     runs) it says that the running vault does not answer on that socket, and stops.
 */
#ifndef SV_ADMIN_ONLINE_H
#define SV_ADMIN_ONLINE_H

#include <stddef.h>
#include <stdint.h>

#include "common/adminmsg.h"

#define ADMIN_DEFAULT_CONFIG "/etc/sealvault/sealvault.conf"
#define ADMIN_DEFAULT_SOCKET "/run/sealvault/admin.sock"
#define ADMIN_DEFAULT_DIR    "/var/lib/sealvault"
#define ADMIN_DEFAULT_TPM    "device:/dev/tpmrm0"

struct admin_target {
	const char *config, *dir, *tcti, *sock; /* the flags (NULL: not given) */
	char *file_dir, *file_tcti, *file_sock; /* what the configuration file said */
};

/* The outcome of admin_online. */
#define ADMIN_ONLINE_ANSWERED (-1) /* the running vault answered: *code, *body */
#define ADMIN_ONLINE_OFFLINE  (-2) /* run offline on t->dir and t->tcti (now set) */

/* Resolves t (reading the configuration when the socket is to be tried), then asks the running
 * vault: ADMIN_ONLINE_ANSWERED, ADMIN_ONLINE_OFFLINE, or an exit code after a message on stderr.
 * body points into static storage, valid until the next call. */
int admin_online(struct admin_target *t, uint16_t type, const uint8_t *payload, size_t len,
                 enum adminmsg_code *code, const uint8_t **body, size_t *body_len);

/* A reply other than ADMINMSG_OK: "sealvault-admin: TEXT" on stderr; the exit code. */
int admin_online_refused(enum adminmsg_code code, const uint8_t *text, size_t len);

void admin_target_free(struct admin_target *t);

#endif
