/*
 * libFuzzer target for the ima-ng ascii log parser and PCR 10 replay (client/imalog.c): any
 * input is judged or refused, nothing is read outside it (ASan). Tried raw and as the path of a
 * well-formed first line (whose hashes are then wrong, or right when the input begins with a
 * NUL and the rest becomes the path of an entry built with its true template hash).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/imalog.h"
#include "common/err.h"

static int allow(void *arg, const uint8_t sha[32], const char *path)
{
	return (sha[0] & 1) == 0 && path[0] == '/';
}

static char buf[2 * CLIENT_IMALOG_PATH_MAX + 512];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client_imalog_result res;
	uint8_t pcr[32], t[CLIENT_IMALOG_PATH_MAX + 64], th[32], two[64];
	char why[512], hex[65];
	int r;

	if (sodium_init() < 0)
		abort();
	memset(pcr, 0, sizeof(pcr));
	if (size >= 32)
		memcpy(pcr, data, 32);
	r = client_imalog_check(&res, (const char *)data, size, pcr, allow, NULL, why, sizeof(why));
	if (r != SV_OK && r != SV_ERR_INVALID && r != SV_ERR_AUTH)
		abort();
	if (size < 1 || size > CLIENT_IMALOG_PATH_MAX)
		return 0;
	/* one entry whose template hash is right: the path is the input after its first byte */
	size_t pl = size - 1, o = 0;
	uint8_t file[32];
	memset(file, data[0], sizeof(file));
	t[o++] = 40, t[o++] = 0, t[o++] = 0, t[o++] = 0;
	memcpy(t + o, "sha256:", 8), o += 8;
	memcpy(t + o, file, 32), o += 32;
	t[o++] = (uint8_t)(pl + 1), t[o++] = (uint8_t)((pl + 1) >> 8), t[o++] = 0, t[o++] = 0;
	memcpy(t + o, data + 1, pl), o += pl;
	t[o++] = 0;
	crypto_hash_sha256(th, t, o);
	sodium_bin2hex(hex, sizeof(hex), th, 32);
	int n = snprintf(buf, sizeof(buf), "10 %s ima-ng sha256:", hex);
	sodium_bin2hex(buf + n, 65, file, 32);
	n += 64;
	buf[n++] = ' ';
	memcpy(buf + n, data + 1, pl);
	n += (int)pl;
	buf[n++] = '\n';
	memset(two, 0, 32);
	memcpy(two + 32, th, 32);
	crypto_hash_sha256(pcr, two, 64);
	r = client_imalog_check(&res, buf, (size_t)n, pcr, allow, NULL, why, sizeof(why));
	if (r != SV_OK && r != SV_ERR_INVALID && r != SV_ERR_AUTH)
		abort();
	return 0;
}
