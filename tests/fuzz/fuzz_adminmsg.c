/*
 * libFuzzer target for the admin payload decoders (common/adminmsg.c), which sealvault-admin runs
 * on what comes from the admin socket and sealvaultd on what comes from the enclave: any input
 * decodes or is refused without reading outside it (ASan); a decoded status re-encodes to the
 * same bytes, and a decoded reply points inside the input. With the first byte's top bit set,
 * the rest overwrites a valid status built at start-up (at an offset chosen by the next byte),
 * so that short runs get past the length checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/adminmsg.h"
#include "common/buf.h"
#include "common/err.h"

static uint8_t valid[ADMINMSG_STATUS_FIXED + 32];
static size_t valid_len;
static uint8_t shaped[sizeof(valid)];

static void check(const uint8_t *p, size_t n)
{
	static struct adminmsg_status s;
	struct sv_buf b;
	enum adminmsg_code code;
	const uint8_t *body;
	size_t bl;
	if (adminmsg_reply_decode(p, n, &code, &body, &bl) == 0 &&
	    (body != p + 1 || bl != n - 1 || (unsigned)code > ADMINMSG_CODE_MAX))
		abort();
	if (adminmsg_status_decode(p, n, &s) != 0)
		return;
	if (sv_buf_init(&b, n) != 0)
		abort();
	if (adminmsg_status_encode(&s, &b) != 0 || b.len != n || memcmp(b.data, p, n) != 0)
		abort();
	sv_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (valid_len == 0) {
		static struct adminmsg_status s = {
		    .state_dir = "/var/lib/sealvault", .active_slot = 'a', .users = 2};
		struct sv_buf b;
		if (sv_buf_init(&b, sizeof(valid)) != 0 || adminmsg_status_encode(&s, &b) != 0)
			abort();
		valid_len = b.len;
		memcpy(valid, b.data, b.len);
		sv_buf_free(&b);
	}
	check(data, size);
	if (size < 2 || !(data[0] & 0x80))
		return 0;
	size_t off = data[1] % valid_len, n = size - 2;
	memcpy(shaped, valid, valid_len);
	if (n > valid_len - off)
		n = valid_len - off;
	memcpy(shaped + off, data + 2, n);
	check(shaped, valid_len);
	return 0;
}
