/* libFuzzer target: the change_finish request body decoder (enclave/vaultreq.c). Invariants: no
 * crash or out-of-bounds read (ASan/UBSan), every accepted body re-encodes to exactly the input (so
 * no trailing or skipped byte is accepted), and a refusal leaves the output zeroed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/vaultreq.h"
#include "tests/fuzz/fuzz_vault.h"

static void check(const uint8_t *data, size_t size)
{
	struct vaultreq_change_finish r;
	const char *why = NULL;

	if (fuzz_vault_refused(vaultreq_parse_change_finish(&r, data, size, &why), &r, sizeof(r),
	                       why))
		return;
	fuzz_vault_put(r.session_id, VAULTREQ_SESSION_ID_LEN);
	fuzz_vault_put(r.record, VAULTREQ_RECORD_LEN);
	fuzz_vault_put_u8(r.guess_limit);
	fuzz_vault_put_u16(r.blob_len);
	fuzz_vault_put(r.blob, r.blob_len);
	if (r.macced_len != fuzz_vault_n)
		abort();
	fuzz_vault_put(r.mac, VAULTREQ_MAC_LEN);
	fuzz_vault_same(data, size);
}

FUZZ_VAULT_ENTRY(SV_MSG_CHANGE_FINISH)
