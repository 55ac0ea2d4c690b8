/*
 * The enclave's audit records: noted when staged, sent when durable (enclave/audit.h). One per
 * process, like the serve loop's state: the vault and the serve loop both reach it.
 */
#include "enclave/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"

struct queue {
	struct audit_record *r;
	uint8_t *at_write;
	size_t n;
};

static struct {
	int fd; /* the audit link, or -1: stderr */
	int open;
	size_t cap;
	uint8_t key[AUDIT_KEY_LEN]; /* the identifier hash key (not a vault secret: audit.h) */
	uint64_t seq, sent, waits, waited_us;
	struct queue staged, written; /* the next frame's records; the written frame's */
} A = {.fd = -1};

static void __attribute__((noreturn)) link_failed(const char *what)
{
	/* _exit: the TPM thread may be inside ESYS (enclave/serve.c, die) */
	fprintf(stderr,
	        "sealvault-enclave: the audit link to sealvaultd failed (%s); exiting rather than "
	        "change state without an audit record\n",
	        what);
	_exit(1);
}

/* Sends one record: on the link, waiting for room, or as a line on stderr. */
static void send_record(struct audit_record *r)
{
	uint8_t p[AUDIT_PAYLOAD_MAX];
	size_t n = 0;
	if (r->kind != AUDIT_KEY)
		r->seq = ++A.seq;
	if (A.fd < 0) {
		char line[AUDIT_LINE_MAX];
		if (r->kind != AUDIT_KEY && audit_line(r, line) == SV_OK)
			fprintf(stderr, "sealvault-enclave: %s\n", line);
		A.sent += r->kind != AUDIT_KEY;
		return;
	}
	if (audit_encode(r, p, &n) != SV_OK)
		link_failed("a record out of range");
	for (;;) {
		int e = frame_send(A.fd, SV_MSG_AUDIT, 0, p, n);
		if (e == SV_OK)
			break;
		if (e != SV_ERR_BUSY)
			link_failed(sv_strerror(e));
		/* sealvaultd reads slowly: wait for it, never drop the record */
		struct pollfd pf = {.fd = A.fd, .events = POLLOUT};
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (poll(&pf, 1, -1) < 0 && errno != EINTR)
			link_failed(strerror(errno));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		A.waits++;
		A.waited_us += (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
		                          (t1.tv_nsec - t0.tv_nsec) / 1000);
	}
	sodium_memzero(p, sizeof(p));
	A.sent += r->kind != AUDIT_KEY;
}

static int queue_init(struct queue *q, size_t cap)
{
	q->r = calloc(cap, sizeof(*q->r));
	q->at_write = calloc(cap, 1);
	q->n = 0;
	return q->r != NULL && q->at_write != NULL ? SV_OK : SV_ERR_NOMEM;
}

int audit_open(int fd, size_t cap, char *why, size_t why_len)
{
	if (fd >= 0) {
		int type = 0;
		socklen_t tl = sizeof(type);
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int fl = fcntl(fd, F_GETFL);
		/* non-blocking, so that a full socket is seen (and counted) before the wait */
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
		    type != SOCK_SEQPACKET || getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 ||
		    fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
			snprintf(why, why_len,
			         "descriptor %d (--audit-link) is not a connected SOCK_SEQPACKET "
			         "socket; start the enclave through sealvaultd",
			         fd);
			return SV_ERR_CONFIG;
		}
	}
	if (queue_init(&A.staged, cap) != SV_OK || queue_init(&A.written, 2 * cap) != SV_OK) {
		snprintf(why, why_len, "out of memory for %zu audit records", cap);
		return SV_ERR_NOMEM;
	}
	A.fd = fd;
	A.cap = cap;
	A.open = 1;
	return SV_OK;
}

void audit_refused(void)
{
	struct audit_record r = {.kind = AUDIT_STARTUP, .verdict = AUDIT_REFUSED};
	if (A.open)
		send_record(&r);
}

void audit_started(const uint8_t key[static AUDIT_KEY_LEN], struct audit_record *startup,
                   struct audit_record *penalty)
{
	struct audit_record r = {.kind = AUDIT_KEY};
	if (!A.open)
		return;
	memcpy(A.key, key, AUDIT_KEY_LEN);
	memcpy(r.key, key, AUDIT_KEY_LEN);
	send_record(&r);
	sodium_memzero(&r, sizeof(r));
	send_record(startup);
	if (penalty != NULL)
		send_record(penalty);
}

int audit_note(const struct audit_note *n, const uint8_t *id, size_t id_len)
{
	if (!A.open)
		return SV_OK; /* unit tests of the vault */
	if (A.staged.n >= A.cap)
		return SV_ERR_RANGE;
	struct audit_record *r = &A.staged.r[A.staged.n];
	*r = (struct audit_record){.kind = n->kind,
	                           .attempts_left = n->attempts_left,
	                           .guess_limit = n->guess_limit,
	                           .known = n->known,
	                           .restored = n->restored,
	                           .operator= n->operator};
	audit_id_hash(r->id_hash, A.key, id, id_len);
	A.staged.at_write[A.staged.n++] = (uint8_t)(n->at_write != 0);
	return SV_OK;
}

void audit_written(uint64_t counter)
{
	if (!A.open)
		return;
	for (size_t i = 0; i < A.staged.n; i++) {
		struct audit_record *r = &A.staged.r[i];
		r->counter = counter;
		if (A.staged.at_write[i]) {
			send_record(r);
			continue;
		}
		if (A.written.n >= 2 * A.cap)
			link_failed("more records than a frame can carry");
		A.written.r[A.written.n++] = *r;
	}
	A.staged.n = 0;
}

void audit_anchored(void)
{
	for (size_t i = 0; A.open && i < A.written.n; i++)
		send_record(&A.written.r[i]);
	A.written.n = 0;
}

void audit_stats(uint64_t *sent, uint64_t *waits, uint64_t *waited_us)
{
	*sent = A.sent;
	*waits = A.waits;
	*waited_us = A.waited_us;
}
