/*
 * Shared by the vault request-body fuzz targets (fuzz_vault_*.c): builds a VALID body of each
 * request type, shaped by the fuzzer's bytes (identifier and blob lengths, a few byte flips, a
 * small length change), so that short runs reach past the length checks and exercise the accept
 * path as well as every near miss, without a committed seed corpus.
 */
#ifndef SV_TESTS_FUZZ_VAULT_H
#define SV_TESTS_FUZZ_VAULT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/msg.h"
#include "enclave/vaultreq.h"

#define FUZZ_VAULT_BUF (VAULTREQ_BODY_MAX + 16)

static size_t fuzz_vault_put16(uint8_t *b, size_t n, size_t v)
{
	b[n] = (uint8_t)(v >> 8);
	b[n + 1] = (uint8_t)v;
	return n + 2;
}

/* A valid body of the given SV_MSG_* type in out (FUZZ_VAULT_BUF bytes), then mutated by data:
 * data[0] picks the identifier length, data[1..2] the blob length, data[3] the operation, data[4]
 * a length change of -8..+7, and the rest are (position, xor) pairs. Returns the length. */
static size_t fuzz_vault_body(uint8_t *out, uint16_t type, const uint8_t *data, size_t size)
{
	uint8_t p[5] = {0};
	memcpy(p, data, size < 5 ? size : 5);
	size_t id_len = 1 + p[0] % VAULTREQ_ID_MAX;
	size_t blob_len = 1 + (((size_t)p[1] << 8) | p[2]) % VAULTREQ_BLOB_MAX;
	uint8_t op = (uint8_t)(1 + p[3] % 3);
	size_t n = 0;

	memset(out, 0x5a, FUZZ_VAULT_BUF);
	out[n++] = VAULTREQ_VERSION;
	switch (type) {
	case SV_MSG_REGISTER_START:
	case SV_MSG_LOGIN_START:
		n = fuzz_vault_put16(out, n, id_len) + id_len;
		n += type == SV_MSG_REGISTER_START ? VAULTREQ_REG_REQUEST_LEN : VAULTREQ_KE1_LEN;
		break;
	case SV_MSG_REGISTER_FINISH:
		n = fuzz_vault_put16(out, n, id_len) + id_len + VAULTREQ_RECORD_LEN;
		out[n++] = 3;
		n = fuzz_vault_put16(out, n, blob_len) + blob_len;
		break;
	case SV_MSG_LOGIN_FINISH:
		n += VAULTREQ_SESSION_ID_LEN + VAULTREQ_KE3_LEN;
		out[n++] = op;
		n += (op == VAULTREQ_OP_CHANGE ? VAULTREQ_REG_REQUEST_LEN : 0) + VAULTREQ_MAC_LEN;
		break;
	default: /* SV_MSG_CHANGE_FINISH */
		n += VAULTREQ_SESSION_ID_LEN + VAULTREQ_RECORD_LEN;
		out[n++] = 0;
		n = fuzz_vault_put16(out, n, blob_len) + blob_len + VAULTREQ_MAC_LEN;
		break;
	}
	int delta = (int)(p[4] & 0x0f) - 8;
	if (size < 5)
		delta = 0;
	if (delta < 0 && (size_t)-delta <= n)
		n -= (size_t)-delta;
	else if (delta > 0 && n + (size_t)delta <= FUZZ_VAULT_BUF)
		n += (size_t)delta;
	for (size_t i = 5; i + 1 < size; i += 2)
		out[((size_t)data[i] * 4) % n] ^= data[i + 1];
	return n;
}

/* ---- Re-encoding an accepted body: it must give back exactly the input (so the decoder accepts
 * no trailing or skipped byte). ---- */

static uint8_t fuzz_vault_out[FUZZ_VAULT_BUF + 64] __attribute__((unused));
static size_t fuzz_vault_n __attribute__((unused));

static inline void fuzz_vault_put(const void *p, size_t len)
{
	if (fuzz_vault_n + len > sizeof(fuzz_vault_out))
		abort();
	if (len > 0)
		memcpy(fuzz_vault_out + fuzz_vault_n, p, len);
	fuzz_vault_n += len;
}

static inline void fuzz_vault_put_u8(uint8_t v)
{
	fuzz_vault_put(&v, 1);
}

static inline void fuzz_vault_put_u16(size_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	fuzz_vault_put(b, 2);
}

/* After a decoder call returning rc: 1 when it refused, having checked the refusal contract (a
 * reason, and the output struct of r_len bytes left zeroed); 0 when it accepted, with the
 * re-encoder reset and the version byte put. */
static inline int fuzz_vault_refused(int rc, const void *r, size_t r_len, const char *why)
{
	if (rc != 0) {
		const uint8_t *b = r;
		if (why == NULL)
			abort();
		for (size_t i = 0; i < r_len; i++)
			if (b[i] != 0)
				abort();
		return 1;
	}
	fuzz_vault_n = 0;
	fuzz_vault_put_u8(VAULTREQ_VERSION);
	return 0;
}

/* Aborts unless the re-encoding equals the accepted input. */
static inline void fuzz_vault_same(const uint8_t *data, size_t size)
{
	if (fuzz_vault_n != size || memcmp(fuzz_vault_out, data, size) != 0)
		abort();
}

/* The entry point of a target whose static check(data, size) tests one body: the raw fuzzer input,
 * then a valid body of the given type shaped by it. */
#define FUZZ_VAULT_ENTRY(type)                                                                     \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);                              \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                               \
	{                                                                                          \
		static uint8_t body[FUZZ_VAULT_BUF];                                               \
		check(data, size);                                                                 \
		check(body, fuzz_vault_body(body, (type), data, size));                            \
		return 0;                                                                          \
	}

#endif
