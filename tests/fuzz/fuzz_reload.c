/*
 * libFuzzer target for the SV_MSG_RELOAD payload decoder (common/reload.c), which the broker runs
 * on what sealvaultd sends: any payload either decodes to parts whose re-encoding is
 * byte-identical to the input, or is rejected; nothing is read outside the payload (ASan). With
 * the first byte's top bit set, the rest is wrapped as three well-formed parts around a split
 * chosen by the next bytes, so that short runs get past the length checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/reload.h"

static uint8_t shaped[SV_FRAME_MAX + RELOAD_OVERHEAD];
static uint8_t again[SV_FRAME_MAX + RELOAD_OVERHEAD];

static void check(const uint8_t *p, size_t n)
{
	struct reload_msg m;
	if (reload_decode(p, n, &m) != 0)
		return;
	if (m.settings_len > RELOAD_SETTINGS_MAX || m.cert_len == 0 || m.key_len == 0 ||
	    memchr(m.settings, '\0', m.settings_len) != NULL)
		abort();
	size_t w = 0;
	if (reload_encode(again, sizeof(again), &m, &w) != 0 || w != n || memcmp(again, p, n) != 0)
		abort();
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size);
	if (size < 3 || !(data[0] & 0x80) || size - 3 > SV_FRAME_MAX)
		return 0;
	const uint8_t *rest = data + 3;
	size_t len = size - 3;
	size_t a = len ? data[1] % (len + 1) : 0;
	size_t b = len - a ? a + data[2] % (len - a + 1) : a;
	size_t parts[3] = {a, b - a, len - b};
	uint8_t *q = shaped;
	for (int i = 0; i < 3; i++) {
		put32(q, (uint32_t)parts[i]);
		memcpy(q + 4, rest, parts[i]);
		q += 4 + parts[i];
		rest += parts[i];
	}
	check(shaped, (size_t)(q - shaped));
	return 0;
}
