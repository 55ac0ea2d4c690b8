/*
 * Fuzzes the client-side OPAQUE decoders and processing: RegistrationResponse (through
 * opaque_client_registration_finalize) and KE2 (through opaque_client_ke3), raw or as XOR
 * mutations of valid messages (first input byte selects). Invariants: no crash or sanitizer
 * report, and any KE2 other than the server's is rejected (a forged KE2 never yields a KE3).
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
	uint8_t msg[OPAQUE_KE2_LEN], rec[OPAQUE_RECORD_LEN], ek[64], sk[64], ke3[64];
	struct opaque_client_state c;
	int mutate, r;

	if (!ready) {
		fuzz_world_init(&w);
		ready = 1;
	}
	if (size < 1)
		return 0;
	mutate = data[0] & 2;
	if (data[0] & 1) { /* KE2 */
		data++;
		size--;
		r = opaque_ke2_check(data, size);
		if (size != OPAQUE_KE2_LEN && r == 0)
			abort();
		if (size != OPAQUE_KE2_LEN && !mutate)
			return 0;
		if (mutate)
			fuzz_xor(msg, w.ke2, sizeof w.ke2, data, size);
		else
			memcpy(msg, data, size);
		c = w.login_state;
		r = opaque_client_ke3(ke3, sk, ek, NULL, &c, fuzz_pw, sizeof fuzz_pw - 1, msg,
		                      &w.params, &w.ksf);
		if ((r == 0) != fuzz_is_unchanged(msg, w.ke2, sizeof w.ke2))
			abort();
		if (r == 0 && memcmp(ke3, w.ke3, sizeof ke3) != 0)
			abort();
	} else { /* RegistrationResponse */
		data++;
		size--;
		r = opaque_registration_response_check(data, size);
		if (size != OPAQUE_REGISTRATION_RESPONSE_LEN && r == 0)
			abort();
		if (size != OPAQUE_REGISTRATION_RESPONSE_LEN && !mutate)
			return 0;
		if (mutate)
			fuzz_xor(msg, w.resp, sizeof w.resp, data, size);
		else
			memcpy(msg, data, size);
		r = opaque_registration_response_check(msg, sizeof w.resp);
		c = w.reg_state;
		if (opaque_client_registration_finalize(rec, ek, &c, fuzz_pw, sizeof fuzz_pw - 1,
		                                        msg, &w.params, &w.ksf) != 0 &&
		    r == 0)
			abort();
	}
	return 0;
}
