#include "admin/online.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin/admin.h"
#include "common/config.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"
#include "enclave/store.h"

/* sealvaultd waits up to 10 s for the enclave, and the request itself may wait for a commit */
#define ANSWER_MS 15000

/* sealvault.conf: the three keys that say where the vault is; sealvaultd checks the others. */
static int from_config(void *arg, const char *key, const char *value, char *why, size_t why_len)
{
	struct admin_target *t = arg;
	char **slot = strcmp(key, "state-dir") == 0      ? &t->file_dir
	              : strcmp(key, "tpm") == 0          ? &t->file_tcti
	              : strcmp(key, "admin-socket") == 0 ? &t->file_sock
	                                                 : NULL;
	if (slot == NULL)
		return SV_OK;
	if (*value == '\0') {
		snprintf(why, why_len, "%s needs a value", key);
		return SV_ERR_CONFIG;
	}
	free(*slot);
	if ((*slot = strdup(value)) == NULL)
		return SV_ERR_NOMEM;
	return SV_OK;
}

static int read_config(struct admin_target *t)
{
	const char *path = t->config != NULL ? t->config : ADMIN_DEFAULT_CONFIG;
	char why[512];
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		/* no default file, or one this operator may not read: flags and defaults */
		if (t->config == NULL && (errno == ENOENT || errno == EACCES))
			return ADMIN_EX_OK;
		fprintf(stderr, "%s: cannot read the configuration %s: %s\n", ADMIN_PROG, path,
		        strerror(errno));
		return ADMIN_EX_USAGE;
	}
	int r = config_parse_stream(f, path, from_config, t, why, sizeof(why));
	fclose(f);
	if (r != 0) {
		fprintf(stderr, "%s: %s\n", ADMIN_PROG, why);
		return ADMIN_EX_USAGE;
	}
	return ADMIN_EX_OK;
}

/* Connects to path: the socket, or -1 with errno set. */
static int dial(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* One request, one reply on fd: ADMIN_ONLINE_ANSWERED or an exit code after a message. */
static int exchange(int fd, const char *sock, uint16_t type, const uint8_t *payload, size_t len,
                    enum adminmsg_code *code, const uint8_t **body, size_t *body_len)
{
	static uint8_t buf[SV_FRAME_BUF_LEN];
	size_t n;
	struct sv_frame f;
	int r = frame_encode(buf, sizeof(buf), type, 1, payload, len, &n);
	if (r == 0 && send(fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
		r = SV_ERR_IO;
	if (r == 0) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr;
		while ((pr = poll(&p, 1, ANSWER_MS)) < 0 && errno == EINTR)
			;
		r = pr > 0 ? frame_recv(fd, buf, &f) : SV_ERR_BUSY;
	}
	if (r == 0 && (f.type != SV_MSG_ADMIN_REPLY ||
	               adminmsg_reply_decode(f.payload, f.len, code, body, body_len) != 0))
		r = SV_ERR_PROTOCOL;
	if (r != 0) {
		fprintf(stderr, "%s: the admin socket %s %s\n", ADMIN_PROG, sock,
		        r == SV_ERR_BUSY       ? "gave no answer within 15 s"
		        : r == SV_ERR_PROTOCOL ? "sent something that is not an answer"
		                               : "closed the connection without an answer");
		return ADMIN_EX_FAIL;
	}
	return ADMIN_ONLINE_ANSWERED;
}

int admin_online(struct admin_target *t, uint16_t type, const uint8_t *payload, size_t len,
                 enum adminmsg_code *code, const uint8_t **body, size_t *body_len)
{
	char why[512] = "";
	if ((t->dir != NULL || t->tcti != NULL) && t->sock == NULL) {
		if (t->dir != NULL && t->tcti != NULL)
			return ADMIN_ONLINE_OFFLINE;
		fprintf(stderr,
		        "%s: --state-dir and --tpm go together (offline); give neither to ask the "
		        "running vault\n",
		        ADMIN_PROG);
		return ADMIN_EX_USAGE;
	}
	int r = read_config(t);
	if (r != ADMIN_EX_OK)
		return r;
	const char *sock = t->sock ? t->sock : t->file_sock ? t->file_sock : ADMIN_DEFAULT_SOCKET;
	if (t->dir == NULL)
		t->dir = t->file_dir != NULL ? t->file_dir : ADMIN_DEFAULT_DIR;
	if (t->tcti == NULL)
		t->tcti = t->file_tcti != NULL ? t->file_tcti : ADMIN_DEFAULT_TPM;
	if (strcmp(sock, "none") == 0)
		return ADMIN_ONLINE_OFFLINE;
	int fd = dial(sock);
	if (fd >= 0) {
		r = exchange(fd, sock, type, payload, len, code, body, body_len);
		close(fd);
		return r;
	}
	int e = errno;
	if (e == EACCES || e == EPERM) {
		fprintf(stderr,
		        "%s: permission denied on the admin socket %s: run as root or as a member "
		        "of group sealvault-admin\n",
		        ADMIN_PROG, sock);
		return ADMIN_EX_FAIL;
	}
	if (e != ENOENT && e != ECONNREFUSED) {
		fprintf(stderr, "%s: cannot connect to the admin socket %s: %s\n", ADMIN_PROG, sock,
		        strerror(e));
		return ADMIN_EX_FAIL;
	}
	/* nothing listens: offline, unless a vault holds the state directory */
	if (store_check_unlocked(t->dir, why, sizeof(why)) == SV_ERR_BUSY) {
		fprintf(
		    stderr,
		    "%s: the vault in %s is running, but nothing answers on its admin socket %s "
		    "(%s): set admin-socket in sealvault.conf (or --admin-socket) to the one "
		    "sealvaultd uses (a sealvaultd older than this tool has none: restart it), or "
		    "stop the vault to work offline\n",
		    ADMIN_PROG, t->dir, sock, strerror(e));
		return ADMIN_EX_INUSE;
	}
	return ADMIN_ONLINE_OFFLINE;
}

int admin_online_refused(enum adminmsg_code code, const uint8_t *text, size_t len)
{
	fprintf(stderr, "%s: %.*s\n", ADMIN_PROG, (int)len, (const char *)text);
	switch (code) {
	case ADMINMSG_NOTFOUND: return ADMIN_EX_EXISTS;
	case ADMINMSG_BAD: return ADMIN_EX_USAGE;
	default: return ADMIN_EX_FAIL;
	}
}

void admin_target_free(struct admin_target *t)
{
	free(t->file_dir);
	free(t->file_tcti);
	free(t->file_sock);
	t->file_dir = t->file_tcti = t->file_sock = NULL;
}
