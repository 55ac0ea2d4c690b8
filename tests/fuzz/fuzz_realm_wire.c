/*
 * Fuzzes the /v2/realm/ body decoders (crypto/realm_wire.c): the register, uid, recover2 and
 * recover3 requests a realm decodes and the recover1, recover2, recover3 and status replies a
 * client decodes. Input: selector(1) | length delta(1, signed) | bytes XORed into a valid body of
 * the selected kind (built at start-up), whose length is changed by the delta; the raw input
 * after the selector is decoded too. Invariants: no crash, and whatever a decoder accepts
 * re-encodes to exactly the bytes it was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "crypto/realm.h"
#include "crypto/realm_wire.h"

#define KINDS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t valid[KINDS][REALM_WIRE_MAX];
static size_t valid_len[KINDS];

static void keep(int kind, struct sv_buf *b, int ret)
{
	if (ret != 0 || b->len > REALM_WIRE_MAX)
		abort();
	memcpy(valid[kind], sv_buf_ptr(b), b->len);
	valid_len[kind] = b->len;
	sv_buf_reset(b);
}

static void init(void)
{
	static uint8_t share[32] = {7}, coms[3 * 32], fill[REALM_CT_MAX], el[32];
	static const uint8_t uid[] = "fuzz-user";
	struct sv_buf b;

	if (sodium_init() < 0 || sv_buf_init(&b, REALM_WIRE_MAX) != 0)
		abort();
	memset(fill, 0x5c, sizeof fill);
	for (int i = 0; i < 3; i++)
		if (realm_commitment(coms + 32 * i, share) != 0)
			abort();
	memcpy(el, coms, 32);
	struct realm_register_req reg = {
	    uid,  sizeof uid - 1, fill, fill, {KSF_IDENTITY, 0, 0}, 2, 3, 2, 10, share, coms, fill,
	    fill, share,          fill, fill, REALM_SEALED_LEN(32)};
	struct realm_uid_req u = {uid, sizeof uid - 1};
	struct realm_recover1_reply r1 = {fill, {KSF_ARGON2ID, 3, 65536}, 2, 3, 1, 5, fill, coms};
	struct realm_recover2_req r2 = {uid, sizeof uid - 1, fill, el};
	struct realm_recover2_reply p2 = {fill, el, fill, 4};
	struct realm_recover3_req r3 = {fill, fill};
	struct realm_recover3_reply p3 = {fill, fill, REALM_SEALED_LEN(32)};
	struct realm_status_reply st = {REALM_STATE_REGISTERED, fill, 2, 3, 3, 10, 9};

	keep(0, &b, realm_wire_register_encode(&b, &reg));
	keep(1, &b, realm_wire_uid_encode(&b, &u));
	keep(2, &b, realm_wire_recover1_reply_encode(&b, &r1));
	keep(3, &b, realm_wire_recover2_encode(&b, &r2));
	keep(4, &b, realm_wire_recover2_reply_encode(&b, &p2));
	keep(5, &b, realm_wire_recover3_encode(&b, &r3));
	keep(6, &b, realm_wire_recover3_reply_encode(&b, &p3));
	keep(7, &b, realm_wire_status_reply_encode(&b, &st));
	sv_buf_free(&b);
}

/* Decodes in as kind; if accepted, re-encodes and demands the same bytes. */
static void check(int kind, const uint8_t *in, size_t len)
{
	struct sv_buf b;
	const char *why = NULL;
	int ret;

	if (sv_buf_init(&b, REALM_WIRE_MAX) != 0)
		abort();
	switch (kind) {
	case 0: {
		struct realm_register_req r;

		if ((ret = realm_wire_register_decode(&r, in, len, &why)) == 0)
			ret = realm_wire_register_encode(&b, &r) == 0 ? 0 : -100;
		break;
	}
	case 1: {
		struct realm_uid_req r;

		if ((ret = realm_wire_uid_decode(&r, in, len, &why)) == 0)
			ret = realm_wire_uid_encode(&b, &r) == 0 ? 0 : -100;
		break;
	}
	case 2: {
		struct realm_recover1_reply r;

		if ((ret = realm_wire_recover1_reply_decode(&r, in, len, &why)) == 0)
			ret = realm_wire_recover1_reply_encode(&b, &r) == 0 ? 0 : -100;
		break;
	}
	case 3: {
		struct realm_recover2_req r;

		if ((ret = realm_wire_recover2_decode(&r, in, len, &why)) == 0)
			ret = realm_wire_recover2_encode(&b, &r) == 0 ? 0 : -100;
		break;
	}
	case 4: {
		struct realm_recover2_reply r;

		if ((ret = realm_wire_recover2_reply_decode(&r, in, len, &why)) == 0)
			ret = realm_wire_recover2_reply_encode(&b, &r) == 0 ? 0 : -100;
		break;
	}
	case 5: {
		struct realm_recover3_req r;

		if ((ret = realm_wire_recover3_decode(&r, in, len, &why)) == 0)
			ret = realm_wire_recover3_encode(&b, &r) == 0 ? 0 : -100;
		break;
	}
	case 6: {
		struct realm_recover3_reply r;

		if ((ret = realm_wire_recover3_reply_decode(&r, in, len, &why)) == 0)
			ret = realm_wire_recover3_reply_encode(&b, &r) == 0 ? 0 : -100;
		break;
	}
	default: {
		struct realm_status_reply r;

		if ((ret = realm_wire_status_reply_decode(&r, in, len, &why)) == 0)
			ret = realm_wire_status_reply_encode(&b, &r) == 0 ? 0 : -100;
		break;
	}
	}
	if (ret == -100 || (ret == 0 && (b.len != len || memcmp(sv_buf_ptr(&b), in, len) != 0)))
		abort(); /* accepted but does not re-encode to itself */
	if (ret != 0 && why == NULL)
		abort(); /* every refusal says why */
	sv_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	static uint8_t body[REALM_WIRE_MAX + 128];
	int kind, delta;
	size_t len;

	if (!ready) {
		init();
		ready = 1;
	}
	if (size < 2)
		return 0;
	kind = data[0] % KINDS;
	check(kind, data + 1, size - 1);
	delta = (int8_t)data[1];
	len = valid_len[kind];
	if (delta < 0 && (size_t)-delta > len)
		len = 0;
	else
		len = (size_t)((long)len + delta);
	if (len > sizeof body)
		len = sizeof body;
	memset(body, 0, sizeof body);
	memcpy(body, valid[kind], valid_len[kind] < len ? valid_len[kind] : len);
	for (size_t i = 0; i + 2 < size && i < len; i++)
		body[i] ^= data[i + 2];
	check(kind, body, len);
	return 0;
}
