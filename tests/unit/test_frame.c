/* Unit tests for common/frame: header layout, hostile lengths, versions, types, and real
 * SOCK_SEQPACKET datagrams (oversized, empty, end of stream). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"

static uint8_t big[SV_FRAME_BUF_LEN + 16];

static void hdr(uint8_t *p, uint16_t ver, uint16_t type, uint32_t len, uint32_t id)
{
	p[0] = (uint8_t)(ver >> 8), p[1] = (uint8_t)ver;
	p[2] = (uint8_t)(type >> 8), p[3] = (uint8_t)type;
	p[4] = (uint8_t)(len >> 24), p[5] = (uint8_t)(len >> 16), p[6] = (uint8_t)(len >> 8);
	p[7] = (uint8_t)len;
	p[8] = (uint8_t)(id >> 24), p[9] = (uint8_t)(id >> 16), p[10] = (uint8_t)(id >> 8);
	p[11] = (uint8_t)id;
}

static void test_round_trip(void **state)
{
	uint8_t out[64];
	size_t n = 0;
	assert_int_equal(frame_encode(out, sizeof(out), SV_MSG_LOGIN_START, 0x01020304,
	                              (const uint8_t *)"abc", 3, &n),
	                 0);
	assert_int_equal(n, SV_FRAME_HDR_LEN + 3);
	static const uint8_t want[] = {0, 1, 0, 3, 0, 0, 0, 3, 1, 2, 3, 4, 'a', 'b', 'c'};
	assert_memory_equal(out, want, sizeof(want));
	struct sv_frame f;
	assert_int_equal(frame_decode(out, n, &f), 0);
	assert_int_equal(f.version, SV_IPC_VERSION);
	assert_int_equal(f.type, SV_MSG_LOGIN_START);
	assert_int_equal(f.req_id, 0x01020304);
	assert_int_equal(f.len, 3);
	assert_memory_equal(f.payload, "abc", 3);
}

static void test_encode_bounds(void **state)
{
	size_t n = 0;
	uint8_t *payload = calloc(1, SV_FRAME_MAX + 1);
	assert_non_null(payload);
	assert_int_equal(frame_encode(big, sizeof(big), SV_MSG_REPLY, 1, payload, SV_FRAME_MAX, &n),
	                 0);
	assert_int_equal(n, SV_FRAME_HDR_LEN + SV_FRAME_MAX);
	assert_int_equal(
	    frame_encode(big, sizeof(big), SV_MSG_REPLY, 1, payload, SV_FRAME_MAX + 1, &n),
	    SV_ERR_RANGE);
	assert_int_equal(frame_encode(big, sizeof(big), SV_MSG_REPLY, 1, payload, SIZE_MAX, &n),
	                 SV_ERR_RANGE);
	assert_int_equal(frame_encode(big, SV_FRAME_HDR_LEN + 4, SV_MSG_REPLY, 1, payload, 5, &n),
	                 SV_ERR_RANGE);
	assert_int_equal(frame_encode(big, 11, SV_MSG_REPLY, 1, payload, 0, &n), SV_ERR_RANGE);
	assert_int_equal(frame_encode(big, sizeof(big), 999, 1, payload, 0, &n), SV_ERR_INVALID);
	assert_int_equal(frame_encode(big, sizeof(big), SV_MSG_REPLY, 1, NULL, 4, &n),
	                 SV_ERR_INVALID);
	assert_int_equal(frame_encode(big, sizeof(big), SV_MSG_HEALTH, 7, NULL, 0, &n), 0);
	assert_int_equal(n, SV_FRAME_HDR_LEN);
	free(payload);
}

static void test_decode_hostile_lengths(void **state)
{
	struct sv_frame f;
	memset(&f, 0x5a, sizeof(f));
	const uint32_t lens[] = {1, SV_FRAME_MAX, SV_FRAME_MAX + 1, 0xffffffffu};
	memset(big, 0, sizeof(big));
	/* header claims more than the datagram holds */
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		hdr(big, SV_IPC_VERSION, SV_MSG_LOGIN_START, lens[i], 9);
		int r = frame_decode(big, SV_FRAME_HDR_LEN, &f);
		assert_true(r == SV_ERR_INVALID || r == SV_ERR_RANGE);
	}
	/* header claims 0, datagram carries one byte: trailing byte */
	hdr(big, SV_IPC_VERSION, SV_MSG_LOGIN_START, 0, 9);
	assert_int_equal(frame_decode(big, SV_FRAME_HDR_LEN + 1, &f), SV_ERR_INVALID);
	/* header claims 1, datagram carries 2 */
	hdr(big, SV_IPC_VERSION, SV_MSG_LOGIN_START, 1, 9);
	assert_int_equal(frame_decode(big, SV_FRAME_HDR_LEN + 2, &f), SV_ERR_INVALID);
	/* maximum is fine, maximum + 1 is not even with a matching header */
	hdr(big, SV_IPC_VERSION, SV_MSG_REPLY, SV_FRAME_MAX, 9);
	assert_int_equal(frame_decode(big, SV_FRAME_HDR_LEN + SV_FRAME_MAX, &f), 0);
	assert_int_equal(f.len, SV_FRAME_MAX);
	hdr(big, SV_IPC_VERSION, SV_MSG_REPLY, SV_FRAME_MAX + 1, 9);
	assert_int_equal(frame_decode(big, SV_FRAME_HDR_LEN + SV_FRAME_MAX + 1, &f), SV_ERR_RANGE);
	/* every header prefix is too short */
	for (size_t n = 0; n < SV_FRAME_HDR_LEN; n++)
		assert_int_equal(frame_decode(big, n, &f), SV_ERR_INVALID);
}

static void test_decode_version_and_type(void **state)
{
	struct sv_frame f;
	uint8_t m[SV_FRAME_HDR_LEN];
	hdr(m, 0, SV_MSG_HEALTH, 0, 1);
	assert_int_equal(frame_decode(m, sizeof(m), &f), SV_ERR_PROTOCOL);
	hdr(m, SV_IPC_VERSION + 1, SV_MSG_HEALTH, 0, 1);
	assert_int_equal(frame_decode(m, sizeof(m), &f), SV_ERR_PROTOCOL);
	const uint16_t bad[] = {0, 15, 31, 39, 63, 127, 0xffff};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hdr(m, SV_IPC_VERSION, bad[i], 0, 1);
		assert_int_equal(frame_decode(m, sizeof(m), &f), SV_ERR_PROTOCOL);
		assert_false(frame_type_known(bad[i]));
	}
	/* the restart, reload, readiness and drain control frames (common/msg.h) are known types */
	const uint16_t control[] = {SV_MSG_GONE_SEEN,   SV_MSG_ENCLAVE_GONE,  SV_MSG_READY,
	                            SV_MSG_RELOAD,      SV_MSG_RELOADED,      SV_MSG_SERVING,
	                            SV_MSG_DRAIN,       SV_MSG_DRAIN_ENCLAVE, SV_MSG_DRAIN_STATUS,
	                            SV_MSG_DRAIN_REPORT};
	for (size_t i = 0; i < sizeof(control) / sizeof(control[0]); i++)
		assert_true(frame_type_known(control[i]));
	hdr(m, SV_IPC_VERSION, SV_MSG_STATS, 0, 0xffffffffu);
	assert_int_equal(frame_decode(m, sizeof(m), &f), 0);
	assert_int_equal(f.req_id, 0xffffffffu);
	assert_int_equal(f.len, 0);
}

static void test_socketpair(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	static uint8_t buf[SV_FRAME_BUF_LEN];
	struct sv_frame f;

	assert_int_equal(frame_send(sv[0], SV_MSG_REGISTER_START, 42, (const uint8_t *)"xy", 2), 0);
	assert_int_equal(frame_recv(sv[1], buf, &f), 0);
	assert_int_equal(f.type, SV_MSG_REGISTER_START);
	assert_int_equal(f.req_id, 42);
	assert_int_equal(f.len, 2);
	assert_memory_equal(f.payload, "xy", 2);

	/* an oversized datagram (consistent header) is caught although read() truncates it */
	hdr(big, SV_IPC_VERSION, SV_MSG_REPLY, SV_FRAME_MAX + 8, 3);
	assert_int_equal(write(sv[0], big, SV_FRAME_HDR_LEN + SV_FRAME_MAX + 8),
	                 SV_FRAME_HDR_LEN + SV_FRAME_MAX + 8);
	assert_int_equal(frame_recv(sv[1], buf, &f), SV_ERR_RANGE);

	/* nothing to read on a non-blocking socket */
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(frame_recv(sv[1], buf, &f), SV_ERR_BUSY);

	/* sending an invalid frame sends nothing */
	assert_int_equal(frame_send(sv[0], 1000, 1, NULL, 0), SV_ERR_INVALID);
	assert_int_equal(frame_recv(sv[1], buf, &f), SV_ERR_BUSY);

	/* end of stream */
	close(sv[0]);
	assert_int_equal(frame_recv(sv[1], buf, &f), SV_ERR_IO);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_encode_bounds),
	    cmocka_unit_test(test_decode_hostile_lengths),
	    cmocka_unit_test(test_decode_version_and_type),
	    cmocka_unit_test(test_socketpair),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
