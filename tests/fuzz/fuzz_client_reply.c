/*
 * Fuzzes what the client decodes from a server: every reply-body parser of client/wire.c and the
 * backup-key blob (client/blob.c). The first byte picks the decoder; for the two authenticated
 * ones (the sealed recover reply, the blob) the rest of the input is XORed into a valid message
 * built at start-up and its length adopted, so runs get past the length checks into the AEAD.
 * Whatever a decoder accepts must be consistent: an accepted mutation must equal the original.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/blob.h"
#include "client/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
	int ready;
	struct client_wire_keys keys;
	uint8_t sid[CLIENT_WIRE_SESSION_ID_LEN];
	uint8_t export_key[OPAQUE_EXPORT_KEY_LEN];
	uint8_t secret[40];
	uint8_t blob[CLIENT_BLOB_MAX];
	size_t blob_len;
	uint8_t sealed[CLIENT_WIRE_SEAL_NONCE_LEN + CLIENT_BLOB_MAX + CLIENT_WIRE_SEAL_TAG_LEN];
	size_t sealed_len;
} W;

static void setup(void)
{
	const struct ksf_params ksf = {.type = KSF_ARGON2ID, .t = 3, .m_kib = 65536};
	uint8_t sk[OPAQUE_SESSION_KEY_LEN];
	if (sodium_init() < 0)
		abort();
	memset(sk, 7, sizeof(sk));
	memset(W.sid, 9, sizeof(W.sid));
	memset(W.export_key, 11, sizeof(W.export_key));
	memset(W.secret, 13, sizeof(W.secret));
	if (client_wire_keys_derive(&W.keys, sk) != 0 ||
	    client_blob_seal(W.blob, &W.blob_len, W.secret, sizeof(W.secret), W.export_key, &ksf,
	                     (const uint8_t *)"fuzz", 4) != 0)
		abort();
	memset(W.sealed, 5, CLIENT_WIRE_SEAL_NONCE_LEN);
	unsigned long long n;
	crypto_aead_xchacha20poly1305_ietf_encrypt(W.sealed + CLIENT_WIRE_SEAL_NONCE_LEN, &n,
	                                           W.blob, W.blob_len, W.sid, sizeof(W.sid), NULL,
	                                           W.sealed, W.keys.seal_key);
	W.sealed_len = CLIENT_WIRE_SEAL_NONCE_LEN + (size_t)n;
	W.ready = 1;
}

/* msg = valid (cut or zero-extended to len) XOR data. */
static size_t mutate(uint8_t *msg, size_t cap, const uint8_t *valid, size_t valid_len,
                     const uint8_t *data, size_t len)
{
	if (len > cap)
		len = cap;
	memset(msg, 0, cap);
	memcpy(msg, valid, valid_len < len ? valid_len : len);
	for (size_t i = 0; i < len; i++)
		msg[i] ^= data[i];
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t resp[OPAQUE_REGISTRATION_RESPONSE_LEN], sid[16], ke2[OPAQUE_KE2_LEN], left;
	uint8_t out[CLIENT_BLOB_MAX], msg[CLIENT_WIRE_REPLY_MAX];
	size_t out_len, n;
	struct ksf_params ksf;

	if (!W.ready)
		setup();
	if (size == 0)
		return 0;
	const uint8_t *p = data + 1;
	size_t len = size - 1;
	switch (data[0] % 8) {
	case 0: (void)client_wire_parse_register_start(resp, p, len); break;
	case 1: (void)client_wire_parse_login_start(sid, ke2, &left, p, len); break;
	case 2: (void)client_wire_parse_auth_failed(&left, p, len); break;
	case 3: (void)client_wire_parse_change(resp, p, len); break;
	case 4: (void)client_wire_parse_empty(p, len); break;
	case 5:
		n = mutate(msg, sizeof(msg), W.sealed, W.sealed_len, p, len);
		if (client_wire_parse_recover(out, sizeof(out), &out_len, &W.keys, W.sid, msg, n) ==
		        0 &&
		    (n != W.sealed_len || memcmp(msg, W.sealed, n) != 0 || out_len != W.blob_len))
			abort();
		break;
	default:
		n = mutate(msg, CLIENT_BLOB_MAX + 1, W.blob, W.blob_len, p, len);
		if (client_blob_open(out, &out_len, &ksf, msg, n, W.export_key,
		                     (const uint8_t *)"fuzz", 4) == 0 &&
		    (n != W.blob_len || memcmp(msg, W.blob, n) != 0 ||
		     out_len != sizeof(W.secret) || memcmp(out, W.secret, out_len) != 0))
			abort();
		break;
	}
	return 0;
}
