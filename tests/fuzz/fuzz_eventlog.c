/*
 * libFuzzer target for the TCG crypto-agile event log parser (client/eventlog.c): any input is
 * replayed or refused, nothing is read outside it (ASan). The input is tried raw and behind a
 * valid Spec ID Event03 header (SHA-1 + SHA-256), so short runs reach the event records.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/eventlog.h"
#include "common/err.h"

static const uint8_t header[] =
    {
        0,   0,   0,   0,   3,    0,   0,   0, /* PCR 0, EV_NO_ACTION */
        0,   0,   0,   0,   0,    0,   0,   0,   0,    0,   0,   0,   0,
        0,   0,   0,   0,   0,    0,   0, /* SHA-1 digest */
        37,  0,   0,   0,                 /* event size */
        'S', 'p', 'e', 'c', ' ',  'I', 'D', ' ', 'E',  'v', 'e', 'n', 't',
        '0', '3', 0,   0,   0,    0,   0,   0,   2,    0,   2, /* platform class, version 2.0, uintn
                                                                  2 */
        2,   0,   0,   0,   0x04, 0,   20,  0,   0x0b, 0,   32,  0, /* SHA-1 20, SHA-256 32 */
        0                                                           /* vendor info size */
};

static uint8_t buf[sizeof(header) + 1024 * 1024];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client_eventlog_replay rp;
	char why[256];
	int r = client_eventlog_replay(&rp, data, size, why, sizeof(why));
	if (r != SV_OK && r != SV_ERR_INVALID)
		abort();
	if (size > sizeof(buf) - sizeof(header))
		return 0;
	memcpy(buf, header, sizeof(header));
	memcpy(buf + sizeof(header), data, size);
	r = client_eventlog_replay(&rp, buf, sizeof(header) + size, why, sizeof(why));
	if (r != SV_OK && r != SV_ERR_INVALID)
		abort();
	if (r == SV_OK && size == 0 && (rp.events != 0 || rp.extended != 0))
		abort();
	return 0;
}
