/*
 * libFuzzer target for the IPC frame decoder (common/frame.c): any datagram either decodes to a
 * frame whose re-encoding is byte-identical to the input, or is rejected; nothing is read outside
 * the datagram (ASan). The first input bytes also select a header shape so that short runs get
 * past the version/type/length checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"

static uint8_t msg[SV_FRAME_HDR_LEN + SV_FRAME_MAX + 16];
static uint8_t again[SV_FRAME_HDR_LEN + SV_FRAME_MAX];

static void check(const uint8_t *m, size_t n)
{
	struct sv_frame f;
	if (frame_decode(m, n, &f) != 0)
		return;
	if (f.version != SV_IPC_VERSION || !frame_type_known(f.type) || f.len > SV_FRAME_MAX ||
	    f.len + SV_FRAME_HDR_LEN != n || f.payload != m + SV_FRAME_HDR_LEN)
		abort();
	size_t w = 0;
	if (frame_encode(again, sizeof(again), f.type, f.req_id, f.payload, f.len, &w) != 0 ||
	    w != n || memcmp(again, m, n) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* raw: the input is the datagram */
	check(data, size);
	if (size < 1 || size - 1 > SV_FRAME_MAX)
		return 0;
	/* shaped: a valid header for a known type around the rest, with the length field either
	 * right or perturbed by the selector byte */
	static const uint16_t types[] = {SV_MSG_REGISTER_START,
	                                 SV_MSG_LOGIN_FINISH,
	                                 SV_MSG_STATS,
	                                 SV_MSG_HEALTH,
	                                 SV_MSG_REPLY,
	                                 0,
	                                 0xffff};
	uint8_t sel = data[0];
	size_t len = size - 1;
	uint32_t claimed = (uint32_t)len;
	if (sel & 0x80)
		claimed += (uint32_t)(int8_t)(sel << 1) >> 1;
	uint16_t type = types[sel % (sizeof(types) / sizeof(types[0]))];
	msg[0] = 0;
	msg[1] = (sel & 0x40) ? 2 : SV_IPC_VERSION;
	msg[2] = (uint8_t)(type >> 8);
	msg[3] = (uint8_t)type;
	msg[4] = (uint8_t)(claimed >> 24);
	msg[5] = (uint8_t)(claimed >> 16);
	msg[6] = (uint8_t)(claimed >> 8);
	msg[7] = (uint8_t)claimed;
	memset(msg + 8, sel, 4);
	memcpy(msg + SV_FRAME_HDR_LEN, data + 1, len);
	check(msg, SV_FRAME_HDR_LEN + len);
	return 0;
}
