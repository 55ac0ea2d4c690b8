/* Unit tests for enclave/audit: what goes on the audit link and when (the key and start-up record
 * first; a reset's record once written, the others once anchored; sequence numbers), and that a
 * reader slower than the vault loses nothing: the vault waits (sealvaultd reading slowly). */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/sockios.h>
#include <sodium.h>

#include "common/audit.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"
#include "enclave/audit.h"

#define CAP  4096
#define MANY 3000

static int sv[2]; /* sv[0]: the enclave's end (audit_open), sv[1]: sealvaultd's */
static uint8_t key[AUDIT_KEY_LEN];

/* The next record on sealvaultd's end; 0 when none is waiting. */
static int next(struct audit_record *r)
{
	static uint8_t buf[SV_FRAME_BUF_LEN];
	struct sv_frame f;
	memset(r, 0, sizeof(*r));
	int e = frame_recv(sv[1], buf, &f);
	if (e == SV_ERR_BUSY)
		return 0;
	assert_int_equal(e, SV_OK);
	assert_int_equal(f.type, SV_MSG_AUDIT);
	assert_int_equal(f.req_id, 0);
	assert_int_equal(audit_decode(f.payload, f.len, r), SV_OK);
	return 1;
}

static int setup(void **state)
{
	char why[200];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	/* a small buffer, so that a slow reader fills it after a few records */
	int small = 4096;
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	assert_int_equal(audit_open(sv[0], CAP, why, sizeof(why)), SV_OK);
	memset(key, 0x42, sizeof(key));
	return 0;
}

static void test_open_refuses_non_socket(void **state)
{
	char why[200];
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(audit_open(p[1], 4, why, sizeof(why)), SV_ERR_CONFIG);
	assert_non_null(strstr(why, "SOCK_SEQPACKET"));
	close(p[0]);
	close(p[1]);
}

static void test_start(void **state)
{
	struct audit_record start = {.kind = AUDIT_STARTUP, .counter = 7, .users = 2},
	                    pen = {.kind = AUDIT_PENALTY, .counter = 7, .users = 2}, r;
	audit_started(key, &start, &pen);
	assert_true(next(&r));
	assert_int_equal(r.kind, AUDIT_KEY);
	assert_memory_equal(r.key, key, sizeof(key));
	assert_true(next(&r));
	assert_int_equal(r.kind, AUDIT_STARTUP);
	assert_int_equal(r.seq, 1);
	assert_int_equal(r.users, 2);
	assert_true(next(&r));
	assert_int_equal(r.kind, AUDIT_PENALTY);
	assert_int_equal(r.seq, 2);
	assert_false(next(&r));
}

/* A frame with a charge, a reset and a destroy: the reset's record leaves at the write, the
 * others at the anchor, each with the frame's counter and the identifier's keyed hash. */
static void test_written_then_anchored(void **state)
{
	struct audit_note guess = {.kind = AUDIT_GUESS,
	                           .attempts_left = 0,
	                           .guess_limit = 3,
	                           .known = 1},
	                  destroyed = {.kind = AUDIT_DESTROYED, .guess_limit = 3},
	                  reset = {.kind = AUDIT_RECOVERED, .at_write = 1};
	struct audit_record r;
	uint8_t h[AUDIT_ID_HASH_LEN];
	assert_int_equal(audit_note(&guess, (const uint8_t *)"bob", 3), SV_OK);
	assert_int_equal(audit_note(&reset, (const uint8_t *)"alice", 5), SV_OK);
	assert_int_equal(audit_note(&destroyed, (const uint8_t *)"bob", 3), SV_OK);
	assert_false(next(&r)); /* nothing before the frame is durable */
	audit_written(100);
	assert_true(next(&r));
	assert_int_equal(r.kind, AUDIT_RECOVERED);
	assert_int_equal(r.counter, 100);
	audit_id_hash(h, key, (const uint8_t *)"alice", 5);
	assert_memory_equal(r.id_hash, h, sizeof(h));
	assert_false(next(&r));
	/* noted while the anchor runs: the next frame's */
	struct audit_note later = {.kind = AUDIT_DELETED};
	assert_int_equal(audit_note(&later, (const uint8_t *)"carol", 5), SV_OK);
	audit_anchored();
	assert_true(next(&r));
	assert_int_equal(r.kind, AUDIT_GUESS);
	assert_int_equal(r.attempts_left, 0);
	assert_int_equal(r.counter, 100);
	uint64_t seq = r.seq;
	audit_id_hash(h, key, (const uint8_t *)"bob", 3);
	assert_memory_equal(r.id_hash, h, sizeof(h));
	assert_true(next(&r));
	assert_int_equal(r.kind, AUDIT_DESTROYED);
	assert_int_equal(r.seq, seq + 1);
	assert_false(next(&r));
	audit_written(101);
	assert_false(next(&r));
	audit_anchored();
	assert_true(next(&r));
	assert_int_equal(r.kind, AUDIT_DELETED);
	assert_int_equal(r.counter, 101);
	assert_false(next(&r));
}

/* Realm changes (enclave/realm.c) go out as the realm kinds, on the same schedule: a realm
 * recovery's reset at the write, a realm guess and its destruction at the anchor; the hash is of
 * the realm record key (0x01 | the /v1 record key), not of the /v1 identifier. */
static void test_realm_kinds(void **state)
{
	static const uint8_t realm_key[] = {0x01, 'b', 'o', 'b'};
	struct audit_note guess = {.kind = AUDIT_REALM_GUESS, .attempts_left = 0, .guess_limit = 2},
	                  destroyed = {.kind = AUDIT_REALM_DESTROYED, .guess_limit = 2},
	                  released = {.kind = AUDIT_REALM_RECOVERED, .at_write = 1};
	struct audit_record r;
	uint8_t h[AUDIT_ID_HASH_LEN], v1[AUDIT_ID_HASH_LEN];
	audit_id_hash(h, key, realm_key, sizeof(realm_key));
	audit_id_hash(v1, key, (const uint8_t *)"bob", 3);
	assert_memory_not_equal(h, v1, sizeof(h));
	assert_int_equal(audit_note(&guess, realm_key, sizeof(realm_key)), SV_OK);
	assert_int_equal(audit_note(&destroyed, realm_key, sizeof(realm_key)), SV_OK);
	assert_int_equal(audit_note(&released, realm_key, sizeof(realm_key)), SV_OK);
	assert_false(next(&r));
	audit_written(150);
	assert_true(next(&r));
	assert_int_equal(r.kind, AUDIT_REALM_RECOVERED);
	assert_int_equal(r.counter, 150);
	assert_memory_equal(r.id_hash, h, sizeof(h));
	assert_false(next(&r));
	audit_anchored();
	assert_true(next(&r));
	assert_int_equal(r.kind, AUDIT_REALM_GUESS);
	assert_int_equal(r.attempts_left, 0);
	assert_int_equal(r.guess_limit, 2);
	assert_int_equal(r.known, 0); /* not a realm kind's field */
	assert_memory_equal(r.id_hash, h, sizeof(h));
	assert_true(next(&r));
	assert_int_equal(r.kind, AUDIT_REALM_DESTROYED);
	assert_false(next(&r));
}

static void *anchor_many(void *arg)
{
	(void)arg;
	audit_anchored();
	return NULL;
}

static int queued(void)
{
	int n = 0;
	assert_int_equal(ioctl(sv[1], SIOCINQ, &n), 0);
	return n;
}

/* sealvaultd does not read while MANY records are due: the vault waits at a full socket, and once
 * sealvaultd reads, every record arrives, in order, none lost. */
static void test_slow_reader_loses_nothing(void **state)
{
	struct audit_note n = {.kind = AUDIT_DELETED};
	struct audit_record r;
	uint64_t sent0, waits0, us, sent, waits;
	audit_stats(&sent0, &waits0, &us);
	for (int i = 0; i < MANY; i++)
		assert_int_equal(audit_note(&n, (const uint8_t *)"x", 1), SV_OK);
	audit_written(200);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, anchor_many, NULL), 0);
	/* until the socket is full: what is queued stops growing while records are still due */
	int last = -1, same = 0;
	while (same < 20) {
		int q = queued();
		same = q == last && q > 0 ? same + 1 : 0;
		last = q;
		usleep(2000);
	}
	uint64_t first = 0, got = 0;
	while (got < MANY) {
		if (!next(&r)) {
			usleep(100);
			continue;
		}
		assert_int_equal(r.kind, AUDIT_DELETED);
		if (got == 0)
			first = r.seq;
		assert_int_equal(r.seq, first + got);
		got++;
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_false(next(&r));
	audit_stats(&sent, &waits, &us);
	assert_int_equal(sent - sent0, MANY);
	assert_true(waits > waits0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_refuses_non_socket),   cmocka_unit_test(test_start),
	    cmocka_unit_test(test_written_then_anchored),     cmocka_unit_test(test_realm_kinds),
	    cmocka_unit_test(test_slow_reader_loses_nothing),
	};
	if (sodium_init() < 0)
		return 1;
	/* audit_open is once per process: the tests share the link, in order */
	return cmocka_run_group_tests(tests, setup, NULL);
}
