/*
 * libFuzzer target for the drain payload decoders (common/drain.c), which the enclave, the broker
 * and sealvaultd run on what the next process sends: any payload either decodes to values whose
 * re-encoding is byte-identical to the input, or is rejected; nothing is read outside the payload
 * (ASan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/drain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned t;
	struct drain_report r;
	uint8_t again[DRAIN_REPORT_LEN];
	if (drain_request_decode(data, size, &t) == 0 &&
	    (t < 1 || t > DRAIN_TIMEOUT_MAX_S || drain_request_encode(again, t) != 0 ||
	     size != DRAIN_REQUEST_LEN || memcmp(again, data, size) != 0))
		abort();
	if (drain_report_decode(data, size, &r) == 0 &&
	    (r.last_guesses > r.pending || drain_report_encode(again, &r) != 0 ||
	     size != DRAIN_REPORT_LEN || memcmp(again, data, size) != 0))
		abort();
	return 0;
}
