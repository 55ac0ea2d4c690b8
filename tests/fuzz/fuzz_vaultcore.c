/*
 * Fuzzes the client's I/O-free core (client/vaultcore.c) as a hostile vault would: the first byte
 * picks the operation, the rest is a sequence of answers, each u8 status choice | u16 length |
 * body, fed to whatever request the core sends next. Whatever arrives, the core must end (it
 * never asks for more requests than the protocol has steps), never report success for a login
 * whose KE2 the fuzzer could not have made, and keep its requests within the wire bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/vaultcore.h"
#include "client/wire.h"
#include "common/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = {200, 200, 200, 200, 400, 401, 403, 404,
                                409, 410, 429, 500, 503, 507, 302};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t secret[] = "fuzzed backup key";
	struct vaultcore *c = NULL;
	struct vaultcore_request rq;
	if (size < 1 || sodium_init() < 0)
		return 0;
	const struct vaultcore_params p = {.context = (const uint8_t *)"sealvault-v1",
	                                   .context_len = 12,
	                                   .ksf = {.type = KSF_IDENTITY},
	                                   .token_results = data[0] >> 7};
	const struct vaultcore_input in = {.user = (const uint8_t *)"fuzz",
	                                   .user_len = 4,
	                                   .password = (const uint8_t *)"pw",
	                                   .password_len = 2,
	                                   .new_password = (const uint8_t *)"new",
	                                   .new_password_len = 3,
	                                   .secret = secret,
	                                   .secret_len = sizeof(secret),
	                                   .max_attempts = 3};
	if (vaultcore_new(&c, (enum vaultcore_op)(1 + data[0] % 4), &p, &in) != SV_OK)
		abort();
	size_t off = 1;
	int steps = 0;
	while (vaultcore_next(c, &rq)) {
		if (++steps > 5 || rq.len == 0 || rq.len > CLIENT_WIRE_BODY_MAX || rq.path == NULL)
			abort();
		if (size - off < 3) {
			vaultcore_abort(c, SV_RESULT_ERROR, "the fuzzer's input ended");
			break;
		}
		long status = statuses[data[off] % (sizeof(statuses) / sizeof(statuses[0]))];
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
		off += 3;
		if (len > size - off)
			len = size - off;
		vaultcore_reply(c, status, data + off, len);
		off += len;
	}
	if (!vaultcore_done(c) || vaultcore_next(c, &rq) != 0)
		abort();
	/* every successful end needs a KE2 or RegistrationResponse the fuzzer cannot forge, except
	 * register (any valid element is a response) */
	const uint8_t *s;
	size_t n;
	if (vaultcore_result(c) == SV_RESULT_OK && vaultcore_secret(c, &s, &n) == SV_OK)
		abort();
	if (vaultcore_result(c) != SV_RESULT_OK && vaultcore_error(c)[0] == '\0')
		abort();
	vaultcore_free(c);
	return 0;
}
