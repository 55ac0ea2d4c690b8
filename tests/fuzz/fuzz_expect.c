/*
 * libFuzzer target for the expected-values file decoder (client/expect.c): any input decodes
 * or is refused, without leaks; a decoded file re-encodes and decodes to the same values. Tried
 * raw and spliced into a valid file built at start-up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/expect.h"
#include "common/err.h"

#define Z "0000000000000000000000000000000000000000000000000000000000000000"
static const char valid[] =
    "{\"version\":1,\"build_hash\":\"" Z "\",\"binaries\":{\"sealvaultd\":\"" Z
    "\",\"sealvault-enclave\":\"" Z "\",\"sealvault-broker\":\"" Z "\"},\"policy_hash\":\"" Z
    "\",\"boot_pcrs\":[0,1,2,7],\"boot_pcr_values\":{\"0\":\"" Z "\",\"1\":\"" Z "\",\"2\":\"" Z
    "\",\"7\":\"" Z "\"},\"ima_allow\":[{\"sha256\":\"" Z "\",\"path\":\"/usr/bin/x\"},"
    "{\"sha256\":\"" Z "\"}],\"server_public_key\":\"" Z "\",\"tpm_ca\":[\"-----BEGIN "
    "CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"]}";

static char buf[sizeof(valid) + 4096];

static void one(const char *p, size_t n)
{
	struct client_expect e, d;
	char why[256], *text = NULL;
	if (client_expect_decode(&e, p, n, why, sizeof(why)) != SV_OK)
		return;
	if (client_expect_encode(&e, &text) != SV_OK ||
	    client_expect_decode(&d, text, strlen(text), why, sizeof(why)) != SV_OK ||
	    memcmp(d.build_hash, e.build_hash, 32) != 0 || d.boot_pcrs != e.boot_pcrs ||
	    d.n_allow != e.n_allow || d.n_ca != e.n_ca || d.has_server_key != e.has_server_key)
		abort();
	client_expect_clear(&d);
	client_expect_clear(&e);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int checked;
	if (!checked) {
		struct client_expect e;
		char why[256];
		if (client_expect_decode(&e, valid, sizeof(valid) - 1, why, sizeof(why)) != SV_OK) {
			fprintf(stderr, "fuzz_expect: seed refused: %s\n", why);
			abort();
		}
		client_expect_clear(&e);
		checked = 1;
	}
	one((const char *)data, size);
	if (size < 2 || size - 2 > 4096)
		return 0;
	size_t off = ((size_t)data[0] << 8 | data[1]) % (sizeof(valid) - 1);
	size_t n = size - 2, rest = sizeof(valid) - 1 - off;
	size_t keep = (size_t)data[1] % 8;
	if (keep > rest)
		keep = rest;
	memcpy(buf, valid, off);
	memcpy(buf + off, data + 2, n);
	memcpy(buf + off + n, valid + off + keep, rest - keep);
	one(buf, off + n + rest - keep);
	return 0;
}
