/* libFuzzer target: the register_finish request body decoder (enclave/vaultreq.c). Invariants: no
 * crash or out-of-bounds read (ASan/UBSan), every accepted body re-encodes to exactly the input (so
 * no trailing or skipped byte is accepted), and a refusal leaves the output zeroed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/vaultreq.h"
#include "tests/fuzz/fuzz_vault.h"

static void check(const uint8_t *data, size_t size)
{
	struct vaultreq_register_finish r;
	const char *why = NULL;

	if (fuzz_vault_refused(vaultreq_parse_register_finish(&r, data, size, &why), &r, sizeof(r),
	                       why))
		return;
	if (r.blob_len < VAULTREQ_BLOB_MIN || r.blob_len > VAULTREQ_BLOB_MAX)
		abort();
	fuzz_vault_put_u16(r.id_len);
	fuzz_vault_put(r.id, r.id_len);
	fuzz_vault_put(r.record, VAULTREQ_RECORD_LEN);
	fuzz_vault_put_u8(r.guess_limit);
	fuzz_vault_put_u16(r.blob_len);
	fuzz_vault_put(r.blob, r.blob_len);
	fuzz_vault_same(data, size);
}

FUZZ_VAULT_ENTRY(SV_MSG_REGISTER_FINISH)
