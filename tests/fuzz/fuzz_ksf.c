/* Fuzzes the KSF profile decoder: whatever it accepts must re-encode to the same bytes and
 * pass ksf_params_check; it must never accept a wrong length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ksf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ksf_params p;
	uint8_t enc[KSF_PARAMS_LEN];

	if (ksf_params_decode(&p, data, size) != 0)
		return 0;
	if (size != KSF_PARAMS_LEN || ksf_params_check(&p) != 0 ||
	    ksf_params_encode(enc, &p) != 0 || memcmp(enc, data, KSF_PARAMS_LEN) != 0)
		abort();
	return 0;
}
