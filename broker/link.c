#include "broker/link.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "common/drain.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"

struct slot {
	uint32_t id; /* generation << 16 | index; 0 when free */
	link_reply_cb cb;
	void *arg;
};

/* An encoded frame waiting for room in the socket buffer. */
struct queued {
	struct queued *next;
	size_t len;
	uint8_t data[];
};

struct link {
	int fd;
	struct event *rd, *wr;
	struct slot *slots;
	unsigned cap, inflight, next;
	uint16_t gen;
	struct queued *head, *tail;
	link_fatal_cb on_fatal;
	void *fatal_arg;
	int dead;
	int down;               /* the enclave ended; no request is sent until SV_MSG_READY */
	unsigned long restarts; /* SV_MSG_ENCLAVE_GONE frames seen */
	link_ready_cb on_ready;
	void *ready_arg;
	link_drain_cb on_drain;
	void *drain_arg;
	uint8_t rbuf[SV_FRAME_BUF_LEN];
};

static void die(struct link *l, const char *why)
{
	if (l->dead)
		return;
	l->dead = 1;
	event_del(l->rd);
	event_del(l->wr);
	l->on_fatal(l->fatal_arg, why);
}

/* Writes queued frames until the socket is full; 0 or SV_ERR_IO. */
static int flush(struct link *l)
{
	while (l->head != NULL) {
		struct queued *q = l->head;
		ssize_t w = write(l->fd, q->data, q->len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return event_add(l->wr, NULL) == 0 ? SV_OK : SV_ERR_IO;
		if (w < 0 || (size_t)w != q->len)
			return SV_ERR_IO;
		l->head = q->next;
		if (l->head == NULL)
			l->tail = NULL;
		sodium_memzero(q->data, q->len);
		free(q);
	}
	event_del(l->wr);
	return SV_OK;
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct link *l = arg;
	if (flush(l) != 0)
		die(l, "writing to the enclave failed; the enclave is gone");
}

/* Queues one frame of request id 0 for the enclave's end (GONE_SEEN, DRAIN_ENCLAVE) and writes
 * what the socket takes; 0, or -1 after die(). */
static int send_id0(struct link *l, uint16_t type, const uint8_t *payload, size_t len)
{
	struct queued *q = malloc(sizeof(*q) + SV_FRAME_HDR_LEN + len);
	if (q == NULL ||
	    frame_encode(q->data, SV_FRAME_HDR_LEN + len, type, 0, payload, len, &q->len) != 0) {
		free(q);
		die(l, "cannot queue a frame for the enclave's end (out of memory)");
		return -1;
	}
	q->next = NULL;
	if (l->tail != NULL)
		l->tail->next = q;
	else
		l->head = q;
	l->tail = q;
	if (l->head == q && flush(l) != 0) {
		die(l, "writing to the enclave's end failed");
		return -1;
	}
	return 0;
}

/* sealvaultd says the enclave ended (it restarts it on the same end of the socketpair): the
 * requests it never answered, and those still queued here, are answered busy now; nothing is
 * sent until the next enclave says SV_MSG_READY; SV_MSG_GONE_SEEN tells sealvaultd that every
 * request it finds before it on the enclave's end has been answered. */
static void enclave_gone(struct link *l)
{
	static const char text[] = "the vault restarted while handling this request; retry in a "
	                           "second (it may have taken effect)\n";
	uint8_t reply[sizeof(text)];
	reply[0] = SV_STATUS_BUSY;
	memcpy(reply + 1, text, sizeof(text) - 1);
	while (l->head != NULL) {
		struct queued *q = l->head;
		l->head = q->next;
		sodium_memzero(q->data, q->len);
		free(q);
	}
	l->tail = NULL;
	event_del(l->wr);
	unsigned answered = 0;
	for (unsigned i = 0; i < l->cap; i++) {
		struct slot *s = &l->slots[i];
		if (s->id == 0)
			continue;
		link_reply_cb cb = s->cb;
		void *cbarg = s->arg;
		memset(s, 0, sizeof(*s));
		l->inflight--;
		answered++;
		cb(cbarg, reply, sizeof(reply));
	}
	l->down = 1;
	l->restarts++;
	fprintf(stderr,
	        "sealvault-broker: the enclave ended; answered the %u requests in flight 503 and "
	        "answering 503 until sealvaultd has started it again\n",
	        answered);
	(void)send_id0(l, SV_MSG_GONE_SEEN, NULL, 0);
}

static void enclave_ready(struct link *l)
{
	if (l->down) { /* not the first start: there requests were already being sent */
		l->down = 0;
		fprintf(stderr, "sealvault-broker: the enclave serves again\n");
	}
	if (l->on_ready != NULL)
		l->on_ready(l->ready_arg);
}

void link_on_ready(struct link *l, link_ready_cb cb, void *arg)
{
	l->on_ready = cb;
	l->ready_arg = arg;
}

void link_on_drain(struct link *l, link_drain_cb cb, void *arg)
{
	l->on_drain = cb;
	l->drain_arg = arg;
}

int link_drain(struct link *l, unsigned timeout_s)
{
	uint8_t p[DRAIN_REQUEST_LEN];
	if (l->dead)
		return SV_ERR_IO;
	if (drain_request_encode(p, timeout_s) != 0)
		return SV_ERR_RANGE;
	return send_id0(l, SV_MSG_DRAIN_ENCLAVE, p, sizeof(p)) == 0 ? SV_OK : SV_ERR_IO;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct link *l = arg;
	char why[160];
	for (int n = 0; n < 256 && !l->dead; n++) {
		struct sv_frame f;
		int r = frame_recv(l->fd, l->rbuf, &f);
		if (r == SV_ERR_BUSY)
			return;
		if (r == SV_ERR_IO) {
			die(l, errno == 0 ? "the enclave closed the link"
			                  : "reading from the enclave failed");
			return;
		}
		if (r != 0) {
			snprintf(why, sizeof(why), "malformed frame from the enclave (%s)",
			         sv_strerror(r));
			die(l, why);
			return;
		}
		if (f.type == SV_MSG_ENCLAVE_GONE || f.type == SV_MSG_READY) {
			if (f.req_id != 0 || f.len != 0) {
				snprintf(why, sizeof(why),
				         "malformed control frame from the enclave's end (type %u)",
				         f.type);
				die(l, why);
				return;
			}
			if (f.type == SV_MSG_ENCLAVE_GONE)
				enclave_gone(l);
			else
				enclave_ready(l);
			continue;
		}
		if (f.type == SV_MSG_DRAIN_STATUS) {
			struct drain_report rep;
			if (f.req_id != 0 || drain_report_decode(f.payload, f.len, &rep) != 0) {
				die(l, "malformed drain status from the enclave");
				return;
			}
			if (l->on_drain != NULL)
				l->on_drain(l->drain_arg, &rep);
			continue;
		}
		struct slot *s = &l->slots[f.req_id & 0xffff];
		if (f.type != SV_MSG_REPLY || f.len < 1 || (f.req_id & 0xffff) >= l->cap ||
		    s->id != f.req_id || f.req_id == 0) {
			snprintf(why, sizeof(why),
			         "unexpected frame from the enclave (type %u, id %u, %zu bytes)",
			         f.type, f.req_id, f.len);
			die(l, why);
			return;
		}
		link_reply_cb cb = s->cb;
		void *cbarg = s->arg;
		memset(s, 0, sizeof(*s));
		l->inflight--;
		cb(cbarg, f.payload, f.len);
		sodium_memzero(l->rbuf, SV_FRAME_HDR_LEN + f.len);
	}
}

int link_new(struct link **out, struct event_base *base, int fd, unsigned max_inflight,
             link_fatal_cb on_fatal, void *fatal_arg)
{
	struct link *l = NULL;
	int r = SV_ERR_NOMEM;
	if (max_inflight < 1 || max_inflight > LINK_INFLIGHT_MAX)
		return SV_ERR_RANGE;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return SV_ERR_IO;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		goto out;
	l->fd = fd;
	l->cap = max_inflight;
	l->gen = 1;
	l->on_fatal = on_fatal;
	l->fatal_arg = fatal_arg;
	if ((l->slots = calloc(max_inflight, sizeof(*l->slots))) == NULL)
		goto out;
	l->rd = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, l);
	l->wr = event_new(base, fd, EV_WRITE | EV_PERSIST, on_writable, l);
	if (l->rd == NULL || l->wr == NULL)
		goto out;
	if (event_add(l->rd, NULL) != 0) {
		r = SV_ERR_IO;
		goto out;
	}
	*out = l;
	l = NULL;
	r = SV_OK;
out:
	link_free(l);
	return r;
}

void link_free(struct link *l)
{
	if (l == NULL)
		return;
	if (l->rd != NULL)
		event_free(l->rd);
	if (l->wr != NULL)
		event_free(l->wr);
	while (l->head != NULL) {
		struct queued *q = l->head;
		l->head = q->next;
		sodium_memzero(q->data, q->len);
		free(q);
	}
	free(l->slots);
	sodium_memzero(l->rbuf, sizeof(l->rbuf));
	free(l);
}

int link_request(struct link *l, uint16_t type, const uint8_t *payload, size_t len,
                 link_reply_cb cb, void *arg)
{
	if (l->dead)
		return SV_ERR_IO;
	if (l->down)
		return SV_ERR_BUSY;
	if (len > SV_FRAME_MAX)
		return SV_ERR_RANGE;
	if (l->inflight >= l->cap)
		return SV_ERR_BUSY;
	/* find a free slot, round robin */
	unsigned idx = l->next;
	while (l->slots[idx].id != 0)
		idx = (idx + 1) % l->cap;
	l->next = (idx + 1) % l->cap;
	if (++l->gen == 0)
		l->gen = 1;
	uint32_t id = ((uint32_t)l->gen << 16) | idx;

	struct queued *q = malloc(sizeof(*q) + SV_FRAME_HDR_LEN + len);
	if (q == NULL)
		return SV_ERR_NOMEM;
	int r = frame_encode(q->data, SV_FRAME_HDR_LEN + len, type, id, payload, len, &q->len);
	if (r != 0) {
		free(q);
		return r;
	}
	q->next = NULL;
	if (l->tail != NULL)
		l->tail->next = q;
	else
		l->head = q;
	l->tail = q;
	l->slots[idx] = (struct slot){.id = id, .cb = cb, .arg = arg};
	l->inflight++;
	/* a write error shows up as the end of the link on the read side too, but say it now */
	if (l->head == q && flush(l) != 0)
		die(l, "writing to the enclave failed; the enclave is gone");
	return SV_OK;
}

unsigned link_inflight(const struct link *l)
{
	return l->inflight;
}

int link_down(const struct link *l)
{
	return l->down;
}

unsigned long link_restarts(const struct link *l)
{
	return l->restarts;
}
