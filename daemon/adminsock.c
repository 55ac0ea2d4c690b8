#include "daemon/adminsock.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/adminmsg.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"

#define ADMINSOCK_REQUEST_MS 2000  /* a caller's request must come within this */
#define ADMINSOCK_ANSWER_MS  10000 /* the enclave's answer must come within this */
#define ADMINSOCK_GROUPS_MAX 1024  /* supplementary groups looked at per caller */

static struct {
	int listen_fd;    /* -1: no admin socket */
	int pair;         /* sealvaultd's end of the admin pair */
	int enclave;      /* the enclave's end (its fd 5), held across restarts */
	gid_t gid;        /* group sealvault-admin, or (gid_t)-1 */
	const pid_t *pid; /* the enclave's, 0 while it is restarted */
	uint32_t seq;     /* request ids on the pair */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} as = {-1, -1, -1, (gid_t)-1, NULL, 0, ""};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Binds and listens on path; the socket or -1 with why. */
static int listen_at(const char *path, char *why, size_t why_len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	if (*path != '/' || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, why_len, "the path must be absolute and shorter than %zu bytes",
		         sizeof(sa.sun_path));
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, why_len, "socket: %s", strerror(errno));
		return -1;
	}
	/* a socket left by an earlier run is replaced; one that answers is another sealvaultd's */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			snprintf(why, why_len, "another sealvaultd listens on it");
			close(fd);
			return -1;
		}
		close(fd);
		(void)unlink(path);
		if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0) {
			snprintf(why, why_len, "socket: %s", strerror(errno));
			return -1;
		}
	}
	/* mode and group before listen(2): nobody connects while they are still wrong. Root
	 * gives it to group sealvault-admin (the unit makes sealvaultd a member, so no CAP_CHOWN
	 * is needed); without that group only root (and sealvaultd's user) can connect. */
	mode_t mode = geteuid() == 0 && as.gid != (gid_t)-1 ? 0660 : 0600;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(why, why_len, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	if (mode == 0660 && chown(path, (uid_t)-1, as.gid) != 0) {
		fprintf(stderr,
		        "sealvaultd: warning: cannot give the admin socket %s to group %s (%s; the "
		        "unit's SupplementaryGroups=%s does that): only root can use it\n",
		        path, ADMINSOCK_GROUP, strerror(errno), ADMINSOCK_GROUP);
		mode = 0600;
	}
	if (chmod(path, mode) != 0 || listen(fd, 16) != 0 || fcntl(fd, F_SETOWN, getpid()) != 0 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK | O_ASYNC) != 0)
		goto fail;
	return fd;
fail: /* after bind: the file is this socket's */
	snprintf(why, why_len, "%s", strerror(errno));
	close(fd);
	(void)unlink(path);
	return -1;
}

int adminsock_start(const char *path, int explicit, const pid_t *enclave_pid, int *enclave_end)
{
	char why[256];
	int sv[2];
	*enclave_end = -1;
	if (strcmp(path, "none") == 0)
		return 0;
	struct group *g = getgrnam(ADMINSOCK_GROUP);
	as.gid = g != NULL ? g->gr_gid : (gid_t)-1;
	if ((as.listen_fd = listen_at(path, why, sizeof(why))) < 0) {
		fprintf(stderr, "sealvaultd: %s: cannot create the admin socket %s: %s%s\n",
		        explicit ? "error" : "warning", path, why,
		        explicit ? " (admin-socket in sealvault.conf; none disables it)"
		                 : "; sealvault-admin status and delete work only with the vault "
		                   "stopped (set admin-socket in sealvault.conf)");
		return explicit ? -1 : 0;
	}
	snprintf(as.path, sizeof(as.path), "%s", path);
	if (geteuid() == 0 && as.gid == (gid_t)-1)
		fprintf(stderr,
		        "sealvaultd: warning: no group %s: only root can use the admin socket %s\n",
		        ADMINSOCK_GROUP, path);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
	    fcntl(sv[0], F_SETFL, O_NONBLOCK) != 0) {
		perror("sealvaultd: socketpair");
		return -1;
	}
	as.pair = sv[0];
	as.enclave = sv[1];
	as.pid = enclave_pid;
	*enclave_end = sv[1];
	return 0;
}

/* 1 when the peer may use the socket: root, sealvaultd's own user, or a member of the group. */
static int allowed(const struct ucred *c)
{
	static gid_t groups[ADMINSOCK_GROUPS_MAX];
	if (c->uid == 0 || c->uid == geteuid())
		return 1;
	if (as.gid == (gid_t)-1)
		return 0;
	struct passwd *pw = getpwuid(c->uid);
	int n = ADMINSOCK_GROUPS_MAX;
	if (pw == NULL || getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return 0;
	for (int i = 0; i < n; i++)
		if (groups[i] == as.gid)
			return 1;
	return 0;
}

/* frame_send for the caller's socket: a caller that has gone must not raise SIGPIPE here. */
static int send_to(int c, uint32_t id, const uint8_t *payload, size_t len)
{
	static uint8_t out[SV_FRAME_HDR_LEN + SV_FRAME_MAX];
	size_t n;
	if (frame_encode(out, sizeof(out), SV_MSG_ADMIN_REPLY, id, payload, len, &n) != 0)
		return -1;
	ssize_t w;
	do {
		w = send(c, out, n, MSG_NOSIGNAL);
	} while (w < 0 && errno == EINTR);
	return w == (ssize_t)n ? 0 : -1;
}

static void answer(int c, uint32_t id, enum adminmsg_code code, const char *text)
{
	struct sv_buf b;
	if (sv_buf_init(&b, 1 + ADMINMSG_TEXT_MAX) != 0)
		return;
	if (adminmsg_reply_encode(&b, code, text, strlen(text)) == 0)
		(void)send_to(c, id, b.data, b.len);
	sv_buf_free(&b);
}

/* Waits until fd is readable (1) or the monotonic time end, in ms, has come (0). */
static int readable(int fd, uint64_t end)
{
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= end)
			return 0;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)(end - now));
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 0;
	}
}

/* Sends the request to the enclave and relays its reply to c; 0 when relayed. */
static int relay(int c, const struct sv_frame *req, const char **outcome)
{
	static uint8_t buf[SV_FRAME_BUF_LEN];
	struct sv_frame f;
	enum adminmsg_code code;
	const uint8_t *body;
	size_t bl;
	uint32_t id = ++as.seq;
	/* replies to earlier requests that timed out */
	while (frame_recv(as.pair, buf, &f) == 0)
		;
	if (*as.pid <= 0) {
		*outcome = "the enclave is being restarted";
		answer(c, req->req_id, ADMINMSG_BUSY,
		       "the vault is restarting (the TPM was unavailable); nothing was done, try "
		       "again in a few seconds");
		return -1;
	}
	if (frame_send(as.pair, req->type, id, req->payload, req->len) != 0) {
		*outcome = "the vault's admin link is full";
		answer(c, req->req_id, ADMINMSG_BUSY,
		       "the vault is not reading admin requests now (is it restarting?); try "
		       "again later");
		return -1;
	}
	uint64_t end = mono_ms() + ADMINSOCK_ANSWER_MS;
	while (readable(as.pair, end)) {
		int r = frame_recv(as.pair, buf, &f);
		if (r == SV_ERR_BUSY)
			continue;
		if (r != 0 || f.type != SV_MSG_ADMIN_REPLY ||
		    adminmsg_reply_decode(f.payload, f.len, &code, &body, &bl) != 0) {
			*outcome = "malformed reply from the enclave";
			answer(c, req->req_id, ADMINMSG_FAILED,
			       "the vault sent a malformed answer (see sealvaultd's log)");
			return -1;
		}
		if (f.req_id != id)
			continue;
		*outcome = code == ADMINMSG_OK ? "done" : "refused by the vault";
		return send_to(c, req->req_id, f.payload, f.len);
	}
	*outcome = "the enclave did not answer in time";
	answer(c, req->req_id, ADMINMSG_FAILED,
	       "the vault did not answer within 10 s (restarting, or the TPM is slow); a "
	       "deletion may still take effect: check with sealvault-admin status");
	return -1;
}

/* One connection: who, what, and the enclave's answer. The request is read before anything is
 * answered, even a refusal: a socket closed with unread data would reset the caller's end and
 * lose the answer. */
static void serve_one(int c)
{
	static uint8_t buf[SV_FRAME_BUF_LEN];
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	struct sv_frame f;
	const char *outcome = "malformed request";
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0 || cl != sizeof(cr))
		return;
	int r = readable(c, mono_ms() + ADMINSOCK_REQUEST_MS) ? frame_recv(c, buf, &f) : SV_ERR_IO;
	uint32_t id = r == 0 ? f.req_id : 0;
	const char *what = r != 0                          ? "?"
	                   : f.type == SV_MSG_ADMIN_STATUS ? "status"
	                   : f.type == SV_MSG_ADMIN_DELETE ? "delete"
	                                                   : "?";
	if (!allowed(&cr)) {
		char text[160];
		snprintf(text, sizeof(text),
		         "permission denied: uid %u is neither root nor in group %s", cr.uid,
		         ADMINSOCK_GROUP);
		fprintf(stderr, "sealvaultd: admin socket: refused uid %u (pid %d): %s\n", cr.uid,
		        (int)cr.pid, what);
		answer(c, id, ADMINMSG_DENIED, text);
	} else {
		if (r != 0 || (f.type == SV_MSG_ADMIN_STATUS && f.len != 0) ||
		    (f.type == SV_MSG_ADMIN_DELETE &&
		     adminmsg_delete_check(f.payload, f.len) != 0) ||
		    (f.type != SV_MSG_ADMIN_STATUS && f.type != SV_MSG_ADMIN_DELETE))
			answer(c, id, ADMINMSG_BAD,
			       "not a well-formed sealvault-admin request; nothing was done");
		else
			(void)relay(c, &f, &outcome);
		/* never the identifier: it names a user */
		fprintf(stderr, "sealvaultd: admin socket: uid %u (pid %d): %s: %s\n", cr.uid,
		        (int)cr.pid, what, outcome);
	}
	if (r == 0)
		memset(buf, 0, SV_FRAME_HDR_LEN + f.len);
}

void adminsock_readable(void)
{
	if (as.listen_fd < 0)
		return;
	for (;;) {
		int c = accept4(as.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN: none left (or a transient error: the next SIGIO) */
		}
		serve_one(c);
		close(c);
	}
}

void adminsock_enclave_gone(void)
{
	static uint8_t buf[SV_FRAME_BUF_LEN];
	struct sv_frame f;
	if (as.enclave < 0)
		return;
	int fl = fcntl(as.enclave, F_GETFL);
	if (fl < 0 || fcntl(as.enclave, F_SETFL, fl | O_NONBLOCK) != 0)
		return;
	while (frame_recv(as.enclave, buf, &f) == 0)
		memset(buf, 0, SV_FRAME_HDR_LEN + f.len);
}

void adminsock_stop(void)
{
	if (as.listen_fd >= 0 && as.path[0] != '\0')
		(void)unlink(as.path);
}
