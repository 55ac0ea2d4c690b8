/* libFuzzer target: the login_start request body decoder (enclave/vaultreq.c). Invariants: no crash
 * or out-of-bounds read (ASan/UBSan), every accepted body re-encodes to exactly the input (so no
 * trailing or skipped byte is accepted), and a refusal leaves the output zeroed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/vaultreq.h"
#include "tests/fuzz/fuzz_vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[VAULTREQ_BODY_MAX + 64];
static size_t n;

static void put(const void *p, size_t len)
{
	if (n + len > sizeof(out))
		abort();
	if (len > 0)
		memcpy(out + n, p, len);
	n += len;
}

static void put_u8(uint8_t v)
{
	put(&v, 1);
}

static void put_u16(size_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put(b, 2);
}

static void check(const uint8_t *data, size_t size)
{
	struct vaultreq_login_start r, zero;
	const char *why = NULL;

	memset(&zero, 0, sizeof(zero));
	if (vaultreq_parse_login_start(&r, data, size, &why) != 0) {
		if (why == NULL || memcmp(&r, &zero, sizeof(r)) != 0)
			abort();
		return;
	}
	n = 0;
	put_u8(VAULTREQ_VERSION);
	if (r.id_len < VAULTREQ_ID_MIN || r.id_len > VAULTREQ_ID_MAX)
		abort();
	put_u16(r.id_len);
	put(r.id, r.id_len);
	put(r.ke1, VAULTREQ_KE1_LEN);
	if (n != size || memcmp(out, data, size) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t body[FUZZ_VAULT_BUF];
	check(data, size);
	check(body, fuzz_vault_body(body, SV_MSG_LOGIN_START, data, size));
	return 0;
}
