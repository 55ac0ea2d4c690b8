/*
 * Fuzzes the server-side OPAQUE decoders and processing: RegistrationRequest, RegistrationRecord,
 * KE1 (through opaque_server_ke2) and KE3 (through opaque_server_finish). The first input byte
 * selects the message and whether the rest is the message itself or XORed into a valid one.
 * Invariants: no crash or sanitizer report; a mutated KE3 is never accepted; a decoder that
 * accepts a message implies the processing function does not fail on its elements.
 */
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_world w;
	static int ready;
	uint8_t msg[OPAQUE_KE2_LEN], out[OPAQUE_KE2_LEN], key[64];
	struct opaque_server_state st;
	int which, mutate, r;

	if (!ready) {
		fuzz_world_init(&w);
		ready = 1;
	}
	if (size < 1)
		return 0;
	which = data[0] & 3;
	mutate = data[0] & 4;
	data++;
	size--;
	switch (which) {
	case 0: /* RegistrationRequest */
		r = opaque_registration_request_check(data, size);
		if (size != OPAQUE_REGISTRATION_REQUEST_LEN && r == 0)
			abort();
		if (size == OPAQUE_REGISTRATION_REQUEST_LEN || mutate) {
			if (mutate)
				fuzz_xor(msg, w.req, sizeof w.req, data, size);
			else
				memcpy(msg, data, size);
			r = opaque_registration_request_check(msg, sizeof w.req);
			if (opaque_server_registration_response(out, msg, w.key.pk, w.oprf_seed,
			                                        fuzz_id, sizeof fuzz_id - 1) != 0 &&
			    r == 0)
				abort();
		}
		break;
	case 1: /* RegistrationRecord */
		r = opaque_record_check(data, size);
		if (size != OPAQUE_RECORD_LEN && r == 0)
			abort();
		break;
	case 2: /* KE1 */
		r = opaque_ke1_check(data, size);
		if (size != OPAQUE_KE1_LEN && r == 0)
			abort();
		if (size == OPAQUE_KE1_LEN || mutate) {
			if (mutate)
				fuzz_xor(msg, w.ke1, sizeof w.ke1, data, size);
			else
				memcpy(msg, data, size);
			r = opaque_ke1_check(msg, sizeof w.ke1);
			if (opaque_server_ke2(out, &st, msg, w.record, fuzz_id, sizeof fuzz_id - 1,
			                      w.oprf_seed, &w.key, &w.params) != 0 &&
			    r == 0)
				abort();
		}
		break;
	case 3: /* KE3 */
		r = opaque_ke3_check(data, size);
		if ((size == OPAQUE_KE3_LEN) != (r == 0))
			abort();
		if (size == OPAQUE_KE3_LEN || mutate) {
			if (mutate)
				fuzz_xor(msg, w.ke3, sizeof w.ke3, data, size);
			else
				memcpy(msg, data, size);
			st = w.server_state;
			r = opaque_server_finish(key, &st, msg);
			if ((r == 0) != fuzz_is_unchanged(msg, w.ke3, sizeof w.ke3))
				abort();
		}
		break;
	}
	return 0;
}
