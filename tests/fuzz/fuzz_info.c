/*
 * libFuzzer target for the GET /v1/info decoder (client/info.c): any input decodes or is
 * refused, without leaks; a decoded document re-encodes (common/info.c) and decodes to the same
 * values. Tried raw and spliced into a valid document built at start-up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/info.h"
#include "common/err.h"

#define K "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
static const char valid[] =
    "{\"suite\":\"OPAQUE-3DH-ristretto255-SHA512\",\"context\":\"sealvault-v1\","
    "\"context_hex\":\"7365616c7661756c742d7631\",\"guess_limit\":{\"default\":10,\"max\":20},"
    "\"server_public_key\":\"" K "\",\"vault_id\":\"00112233445566778899aabbccddeeff\","
    "\"protocol_versions\":[1,2],\"ksf\":{\"type\":\"argon2id\",\"t\":3,\"m_kib\":65536,"
    "\"p\":1}}";

static char buf[sizeof(valid) + 4096];

static void one(const char *p, size_t n)
{
	struct sv_info a, b;
	struct sv_buf text;
	char why[256];
	if (client_info_decode(&a, p, n, why, sizeof(why)) != SV_OK)
		return;
	(void)client_info_check(&a, (const uint8_t *)"sealvault-v1", 12, 1, why, sizeof(why));
	if (sv_buf_init(&text, INFO_JSON_MAX) != SV_OK)
		abort();
	/* an unknown KSF decodes as 0/0, which the encoder writes as argon2id 0/0: skip those */
	if (a.ksf_t != 0 &&
	    (info_encode(&a, &text) != SV_OK ||
	     client_info_decode(&b, (const char *)text.data, text.len, why, sizeof(why)) != SV_OK ||
	     memcmp(&a, &b, sizeof(a)) != 0))
		abort();
	sv_buf_free(&text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int checked;
	if (!checked) {
		struct sv_info a;
		char why[256];
		if (client_info_decode(&a, valid, sizeof(valid) - 1, why, sizeof(why)) != SV_OK) {
			fprintf(stderr, "fuzz_info: seed refused: %s\n", why);
			abort();
		}
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
