/* Unit tests for broker/link: request ids, replies out of order, the in-flight cap, a full socket
 * buffer, and every way the enclave side can misbehave (all fatal). Real SOCK_SEQPACKET pair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/link.h"
#include "common/drain.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"

struct got {
	int calls;
	uint8_t reply[64];
	size_t len;
};

static int fatal_calls;
static char fatal_why[200];

static void on_fatal(void *arg, const char *why)
{
	fatal_calls++;
	snprintf(fatal_why, sizeof(fatal_why), "%s", why);
}

static void on_reply(void *arg, const uint8_t *reply, size_t len)
{
	struct got *g = arg;
	g->calls++;
	g->len = len < sizeof(g->reply) ? len : sizeof(g->reply);
	memcpy(g->reply, reply, g->len);
}

static uint8_t peer_buf[SV_FRAME_BUF_LEN];

struct fixture {
	struct event_base *base;
	struct link *l;
	int peer;
};

static void setup(struct fixture *f, unsigned max_inflight)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	f->base = event_base_new();
	assert_non_null(f->base);
	fatal_calls = 0;
	assert_int_equal(link_new(&f->l, f->base, sv[0], max_inflight, on_fatal, NULL), 0);
	f->peer = sv[1];
}

static void teardown(struct fixture *f)
{
	link_free(f->l);
	event_base_free(f->base);
	close(f->peer);
}

static void spin(struct fixture *f)
{
	for (int i = 0; i < 20; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/* Reads one request on the enclave side. */
static struct sv_frame peer_read(struct fixture *f)
{
	struct sv_frame fr;
	assert_int_equal(frame_recv(f->peer, peer_buf, &fr), 0);
	return fr;
}

static void peer_reply(struct fixture *f, uint16_t type, uint32_t id, const char *payload,
                       size_t len)
{
	assert_int_equal(frame_send(f->peer, type, id, (const uint8_t *)payload, len), 0);
}

static void test_round_trip_out_of_order(void **state)
{
	struct fixture f;
	struct got a = {0}, b = {0};
	setup(&f, 2);
	assert_int_equal(
	    link_request(f.l, SV_MSG_LOGIN_START, (const uint8_t *)"A", 1, on_reply, &a), 0);
	assert_int_equal(link_request(f.l, SV_MSG_HEALTH, NULL, 0, on_reply, &b), 0);
	assert_int_equal(link_inflight(f.l), 2);
	/* the cap: a third request waits for nothing, it is refused */
	struct got c = {0};
	assert_int_equal(link_request(f.l, SV_MSG_STATS, NULL, 0, on_reply, &c), SV_ERR_BUSY);
	struct sv_frame r1 = peer_read(&f);
	uint32_t id1 = r1.req_id;
	assert_int_equal(r1.type, SV_MSG_LOGIN_START);
	assert_int_equal(r1.len, 1);
	struct sv_frame r2 = peer_read(&f);
	assert_int_equal(r2.type, SV_MSG_HEALTH);
	assert_int_not_equal(r2.req_id, id1);
	/* answer the second first */
	peer_reply(&f, SV_MSG_REPLY, r2.req_id, "\0health", 7);
	peer_reply(&f, SV_MSG_REPLY, id1, "\2x", 2);
	spin(&f);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(a.len, 2);
	assert_memory_equal(a.reply, "\2x", 2);
	assert_memory_equal(b.reply, "\0health", 7);
	assert_int_equal(link_inflight(f.l), 0);
	assert_int_equal(fatal_calls, 0);
	/* slots are reused with fresh ids */
	assert_int_equal(link_request(f.l, SV_MSG_STATS, NULL, 0, on_reply, &c), 0);
	struct sv_frame r3 = peer_read(&f);
	assert_int_not_equal(r3.req_id, id1);
	assert_int_not_equal(r3.req_id, r2.req_id);
	teardown(&f);
}

static void test_full_socket_buffer(void **state)
{
	struct fixture f;
	enum { N = 40 };
	static struct got g[N];
	static uint8_t big[SV_FRAME_MAX];
	setup(&f, 64);
	memset(g, 0, sizeof(g));
	for (int i = 0; i < N; i++) {
		big[0] = (uint8_t)i;
		assert_int_equal(
		    link_request(f.l, SV_MSG_REGISTER_FINISH, big, sizeof(big), on_reply, &g[i]),
		    0);
	}
	assert_int_equal(
	    link_request(f.l, SV_MSG_REGISTER_FINISH, big, sizeof(big) + 1, on_reply, &g[0]),
	    SV_ERR_RANGE);
	/* the enclave side reads everything, in order, while the loop flushes the queue */
	for (int i = 0; i < N; i++) {
		struct sv_frame fr;
		int r;
		while ((r = frame_recv(f.peer, peer_buf, &fr)) == SV_ERR_BUSY)
			spin(&f);
		assert_int_equal(r, 0);
		assert_int_equal(fr.len, SV_FRAME_MAX);
		assert_int_equal(fr.payload[0], i);
		peer_reply(&f, SV_MSG_REPLY, fr.req_id, "\0", 1);
		spin(&f);
	}
	spin(&f);
	for (int i = 0; i < N; i++)
		assert_int_equal(g[i].calls, 1);
	assert_int_equal(fatal_calls, 0);
	teardown(&f);
}

static void bad_reply(uint16_t type, int id_delta, size_t len, const char *want)
{
	struct fixture f;
	struct got g = {0};
	setup(&f, 4);
	assert_int_equal(
	    link_request(f.l, SV_MSG_LOGIN_START, (const uint8_t *)"A", 1, on_reply, &g), 0);
	struct sv_frame r = peer_read(&f);
	peer_reply(&f, type, r.req_id + (uint32_t)id_delta, "\0abc", len);
	spin(&f);
	assert_int_equal(fatal_calls, 1);
	assert_int_equal(g.calls, 0);
	assert_non_null(strstr(fatal_why, want));
	/* dead: no further requests */
	assert_int_equal(link_request(f.l, SV_MSG_HEALTH, NULL, 0, on_reply, &g), SV_ERR_IO);
	teardown(&f);
}

static void test_misbehaving_enclave(void **state)
{
	bad_reply(SV_MSG_REGISTER_START, 0, 4, "unexpected frame"); /* not a reply */
	bad_reply(SV_MSG_REPLY, 1, 4, "unexpected frame");          /* id not in flight */
	bad_reply(SV_MSG_REPLY, 0x10000, 4, "unexpected frame");    /* stale generation */
	bad_reply(SV_MSG_REPLY, 0, 0, "unexpected frame");          /* no status byte */

	/* a frame that does not decode */
	struct fixture f;
	setup(&f, 4);
	uint8_t junk[5] = {0, 9, 0, 64, 0};
	assert_int_equal(write(f.peer, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	spin(&f);
	assert_int_equal(fatal_calls, 1);
	assert_non_null(strstr(fatal_why, "malformed"));
	teardown(&f);

	/* the enclave goes away */
	setup(&f, 4);
	close(f.peer);
	f.peer = -1;
	spin(&f);
	assert_int_equal(fatal_calls, 1);
	assert_non_null(strstr(fatal_why, "closed"));
	link_free(f.l);
	event_base_free(f.base);
}

/* sealvaultd restarts the enclave on the same end: the requests in flight, sent or still queued,
 * are answered busy once each; nothing is sent until SV_MSG_READY; GONE_SEEN follows every request
 * written before it; late replies for the failed ids are fatal (they cannot come from a live
 * enclave); control frames with an id or a payload are fatal. */
static void test_enclave_restart(void **state)
{
	struct fixture f;
	struct got a = {0}, b = {0}, c = {0};
	setup(&f, 4);
	assert_int_equal(
	    link_request(f.l, SV_MSG_LOGIN_START, (const uint8_t *)"A", 1, on_reply, &a), 0);
	assert_int_equal(link_request(f.l, SV_MSG_HEALTH, NULL, 0, on_reply, &b), 0);
	struct sv_frame r1 = peer_read(&f);
	uint32_t id1 = r1.req_id;
	peer_reply(&f, SV_MSG_ENCLAVE_GONE, 0, NULL, 0);
	spin(&f);
	assert_int_equal(fatal_calls, 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(a.reply[0], SV_STATUS_BUSY);
	assert_int_equal(b.reply[0], SV_STATUS_BUSY);
	assert_non_null(memmem(a.reply, a.len, "restarted", 9));
	assert_int_equal(link_inflight(f.l), 0);
	assert_int_equal(link_down(f.l), 1);
	assert_int_equal(link_restarts(f.l), 1);
	/* the second request (written before) and then GONE_SEEN, nothing else */
	struct sv_frame r2 = peer_read(&f);
	assert_int_equal(r2.type, SV_MSG_HEALTH);
	struct sv_frame seen = peer_read(&f);
	assert_int_equal(seen.type, SV_MSG_GONE_SEEN);
	assert_int_equal(seen.req_id, 0);
	assert_int_equal(seen.len, 0);
	/* refused while down, not queued */
	assert_int_equal(link_request(f.l, SV_MSG_STATS, NULL, 0, on_reply, &c), SV_ERR_BUSY);
	uint8_t tmp[16];
	assert_true(recv(f.peer, tmp, sizeof(tmp), MSG_DONTWAIT) < 0);
	/* the next enclave serves */
	peer_reply(&f, SV_MSG_READY, 0, NULL, 0);
	spin(&f);
	assert_int_equal(link_down(f.l), 0);
	assert_int_equal(link_request(f.l, SV_MSG_STATS, NULL, 0, on_reply, &c), 0);
	assert_int_equal(peer_read(&f).type, SV_MSG_STATS);
	assert_int_equal(fatal_calls, 0);
	/* a reply for an id answered busy at the restart is not taken */
	peer_reply(&f, SV_MSG_REPLY, id1, "\0x", 2);
	spin(&f);
	assert_int_equal(a.calls, 1);
	assert_int_equal(fatal_calls, 1);
	teardown(&f);

	/* a READY at the first start changes nothing */
	setup(&f, 4);
	peer_reply(&f, SV_MSG_READY, 0, NULL, 0);
	spin(&f);
	assert_int_equal(fatal_calls, 0);
	assert_int_equal(link_down(f.l), 0);
	teardown(&f);

	bad_reply(SV_MSG_ENCLAVE_GONE, 7, 0, "malformed control frame");
	bad_reply(SV_MSG_READY, 0, 3, "malformed control frame");
}

static void test_bounds(void **state)
{
	int sv[2];
	struct link *l = NULL;
	struct event_base *base = event_base_new();
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_int_equal(link_new(&l, base, sv[0], 0, on_fatal, NULL), SV_ERR_RANGE);
	assert_int_equal(link_new(&l, base, sv[0], LINK_INFLIGHT_MAX + 1, on_fatal, NULL),
	                 SV_ERR_RANGE);
	assert_int_equal(link_new(&l, base, -1, 4, on_fatal, NULL), SV_ERR_IO);
	close(sv[0]);
	close(sv[1]);
	event_base_free(base);
}

static int drain_calls;
static struct drain_report drain_got;

static void on_drain(void *arg, const struct drain_report *r)
{
	drain_calls++;
	drain_got = *r;
}

/* A drain (common/drain.h): link_drain sends SV_MSG_DRAIN_ENCLAVE with id 0 behind the requests
 * already queued, requests keep flowing, each DRAIN_STATUS reaches the callback, and a malformed
 * one (bad payload, an id) is fatal. */
static void test_drain(void **state)
{
	struct fixture f;
	struct got a = {0};
	uint8_t p[DRAIN_REPORT_LEN];
	unsigned t = 0;
	setup(&f, 4);
	drain_calls = 0;
	link_on_drain(f.l, on_drain, NULL);
	assert_int_equal(link_drain(f.l, 0), SV_ERR_RANGE);
	assert_int_equal(
	    link_request(f.l, SV_MSG_LOGIN_FINISH, (const uint8_t *)"K", 1, on_reply, &a), 0);
	assert_int_equal(link_drain(f.l, 45), 0);
	struct sv_frame r = peer_read(&f);
	assert_int_equal(r.type, SV_MSG_LOGIN_FINISH);
	uint32_t id = r.req_id;
	r = peer_read(&f);
	assert_int_equal(r.type, SV_MSG_DRAIN_ENCLAVE);
	assert_int_equal(r.req_id, 0);
	assert_int_equal(drain_request_decode(r.payload, r.len, &t), 0);
	assert_int_equal(t, 45);
	struct drain_report rep = {.phase = DRAIN_BEGUN, .pending = 3, .last_guesses = 1};
	assert_int_equal(drain_report_encode(p, &rep), 0);
	assert_int_equal(frame_send(f.peer, SV_MSG_DRAIN_STATUS, 0, p, sizeof(p)), 0);
	peer_reply(&f, SV_MSG_REPLY, id, "\0s", 2);
	spin(&f);
	assert_int_equal(drain_calls, 1);
	assert_int_equal(drain_got.phase, DRAIN_BEGUN);
	assert_int_equal(drain_got.pending, 3);
	assert_int_equal(a.calls, 1);
	assert_int_equal(fatal_calls, 0);
	assert_int_equal(frame_send(f.peer, SV_MSG_DRAIN_STATUS, 0, p, sizeof(p) - 1), 0);
	spin(&f);
	assert_int_equal(fatal_calls, 1);
	assert_non_null(strstr(fatal_why, "drain status"));
	assert_int_equal(drain_calls, 1);
	assert_int_equal(link_drain(f.l, 45), SV_ERR_IO);
	teardown(&f);
	setup(&f, 4);
	link_on_drain(f.l, on_drain, NULL);
	assert_int_equal(frame_send(f.peer, SV_MSG_DRAIN_STATUS, 5, p, sizeof(p)), 0);
	spin(&f);
	assert_int_equal(fatal_calls, 1);
	assert_int_equal(drain_calls, 1);
	teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_out_of_order),
	    cmocka_unit_test(test_full_socket_buffer),
	    cmocka_unit_test(test_misbehaving_enclave),
	    cmocka_unit_test(test_enclave_restart),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_drain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
