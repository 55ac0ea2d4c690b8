/*
 * libFuzzer target for the SV_MSG_AUDIT payload decoder (common/audit.c), which sealvaultd runs on
 * what the enclave sends on the audit pair: any payload either decodes to a record whose
 * re-encoding is byte-identical to the input and whose journal fields and stderr line can be
 * built, or is rejected; nothing is read outside the payload (ASan). With the first byte's top
 * bit set, the rest is prefixed with a valid version and a kind chosen by the next byte, so that
 * short runs get past the version and kind checks to the fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/audit.h"
#include "common/err.h"

static uint8_t shaped[AUDIT_PAYLOAD_MAX + 2];

static void check(const uint8_t *p, size_t n)
{
	struct audit_record r;
	uint8_t again[AUDIT_PAYLOAD_MAX];
	size_t w = 0;
	if (audit_decode(p, n, &r) != SV_OK)
		return;
	if (audit_encode(&r, again, &w) != SV_OK || w != n || memcmp(again, p, n) != 0)
		abort();
	if (r.kind == AUDIT_KEY)
		return;
	struct audit_fields f;
	char line[AUDIT_LINE_MAX];
	if (audit_fields(&r, &f) < 4 || audit_line(&r, line) != SV_OK ||
	    strlen(line) >= AUDIT_LINE_MAX)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size);
	if (size < 2 || !(data[0] & 0x80) || size - 2 > AUDIT_PAYLOAD_MAX)
		return 0;
	shaped[0] = AUDIT_VERSION;
	shaped[1] = (uint8_t)(data[1] % AUDIT_KINDS);
	memcpy(shaped + 2, data + 2, size - 2);
	check(shaped, size);
	return 0;
}
