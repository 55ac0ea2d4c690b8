/* libFuzzer target: the login_finish request body decoder (enclave/vaultreq.c). Invariants: no
 * crash or out-of-bounds read (ASan/UBSan), every accepted body re-encodes to exactly the input (so
 * no trailing or skipped byte is accepted), and a refusal leaves the output zeroed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/vaultreq.h"
#include "tests/fuzz/fuzz_vault.h"

static void check(const uint8_t *data, size_t size)
{
	struct vaultreq_login_finish r;
	const char *why = NULL;

	if (fuzz_vault_refused(vaultreq_parse_login_finish(&r, data, size, &why), &r, sizeof(r),
	                       why))
		return;
	if (r.op < VAULTREQ_OP_RECOVER || r.op > VAULTREQ_OP_CHANGE ||
	    (r.op == VAULTREQ_OP_CHANGE) != (r.payload_len == VAULTREQ_REG_REQUEST_LEN))
		abort();
	fuzz_vault_put(r.session_id, VAULTREQ_SESSION_ID_LEN);
	fuzz_vault_put(r.ke3, VAULTREQ_KE3_LEN);
	fuzz_vault_put_u8(r.op);
	fuzz_vault_put(r.payload, r.payload_len);
	fuzz_vault_put(r.mac, VAULTREQ_MAC_LEN);
	fuzz_vault_same(data, size);
}

FUZZ_VAULT_ENTRY(SV_MSG_LOGIN_FINISH)
