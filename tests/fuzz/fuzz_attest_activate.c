/*
 * Fuzz target for the attestation decoders: the POST /v1/attestation/activate body
 * (attest_activate_decode: v=1, u16 length + TPM2B_ID_OBJECT, u16 length +
 * TPM2B_ENCRYPTED_SECRET) and the two evidence files of the state directory. The input is tried
 * raw and also wrapped into a well-formed frame (as the ID object, then as the secret) so that
 * short runs get past the outer lengths into the TSS unmarshalling.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "enclave/approval.h"
#include "enclave/attest.h"
#include "enclave/evidence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *body, size_t len)
{
	const uint8_t *id, *secret;
	size_t id_len, secret_len;
	if (attest_activate_decode(body, len, &id, &id_len, &secret, &secret_len) != SV_OK)
		return;
	/* accepted: both parts lie inside the body and the lengths add up exactly */
	if (id < body || secret < body || id + id_len > body + len ||
	    secret + secret_len > body + len || 1 + 2 + id_len + 2 + secret_len != len)
		abort();
}

static size_t wrap(uint8_t *out, const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t o = 0;
	out[o++] = 1;
	out[o++] = (uint8_t)(an >> 8);
	out[o++] = (uint8_t)an;
	memcpy(out + o, a, an);
	o += an;
	out[o++] = (uint8_t)(bn >> 8);
	out[o++] = (uint8_t)bn;
	memcpy(out + o, b, bn);
	return o + bn;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct attest_state st;
	static struct attest_policy pol;
	static struct approval_vault vault;
	/* a valid TPM2B of 4 bytes, the other half of the wrapped frames */
	static const uint8_t ok4[] = {0x00, 0x04, 1, 2, 3, 4};
	check(data, size);
	if (size <= 1024) {
		uint8_t *buf = malloc(size + sizeof(ok4) + 5);
		if (buf == NULL)
			abort();
		check(buf, wrap(buf, data, size, ok4, sizeof(ok4)));
		check(buf, wrap(buf, ok4, sizeof(ok4), data, size));
		free(buf);
	}
	(void)evidence_decode_state(data, size, &st);
	(void)evidence_decode_policy(data, size, &pol);
	(void)approval_vault_decode(data, size, &vault);
	return 0;
}
