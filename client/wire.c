#include "client/wire.h"

#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "crypto/hkdf.h"

#define INFO_MAC  "sealvault op mac"
#define INFO_SEAL "sealvault recover seal"

int client_wire_keys_derive(struct client_wire_keys *k,
                            const uint8_t session_key[OPAQUE_SESSION_KEY_LEN])
{
	int r =
	    hkdf_sha512_expand(k->mac_key, sizeof(k->mac_key), session_key, OPAQUE_SESSION_KEY_LEN,
	                       (const uint8_t *)INFO_MAC, sizeof(INFO_MAC) - 1, NULL, 0);
	if (r == 0)
		r = hkdf_sha512_expand(k->seal_key, sizeof(k->seal_key), session_key,
		                       OPAQUE_SESSION_KEY_LEN, (const uint8_t *)INFO_SEAL,
		                       sizeof(INFO_SEAL) - 1, NULL, 0);
	if (r != 0)
		sodium_memzero(k, sizeof(*k));
	return r;
}

static int start(struct sv_buf *out)
{
	sv_buf_reset(out);
	out->max = CLIENT_WIRE_BODY_MAX;
	return sv_buf_put_u8(out, CLIENT_WIRE_VERSION);
}

static int put_id(struct sv_buf *out, const uint8_t *id, size_t id_len)
{
	if (id_len == 0 || id_len > 255)
		return SV_ERR_RANGE;
	return sv_buf_put_str16(out, id, id_len);
}

static int put_blob(struct sv_buf *out, const uint8_t *blob, size_t blob_len)
{
	if (blob_len == 0 || blob_len > 512)
		return SV_ERR_RANGE;
	return sv_buf_put_str16(out, blob, blob_len);
}

/* Appends HMAC-SHA512(mac_key, the bytes from off to the end). */
static int put_mac(struct sv_buf *out, const struct client_wire_keys *k, size_t off)
{
	uint8_t mac[CLIENT_WIRE_MAC_LEN];
	hkdf_hmac_sha512(mac, k->mac_key, sizeof(k->mac_key), out->data + off, out->len - off, NULL,
	                 0);
	int r = sv_buf_put(out, mac, sizeof(mac));
	sodium_memzero(mac, sizeof(mac));
	return r;
}

int client_wire_register_start(struct sv_buf *out, const uint8_t *id, size_t id_len,
                               const uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN])
{
	int r = start(out);
	if (r == 0)
		r = put_id(out, id, id_len);
	if (r == 0)
		r = sv_buf_put(out, request, OPAQUE_REGISTRATION_REQUEST_LEN);
	return r;
}

int client_wire_register_finish(struct sv_buf *out, const uint8_t *id, size_t id_len,
                                const uint8_t record[OPAQUE_RECORD_LEN], uint8_t guess_limit,
                                const uint8_t *blob, size_t blob_len)
{
	int r = start(out);
	if (r == 0)
		r = put_id(out, id, id_len);
	if (r == 0)
		r = sv_buf_put(out, record, OPAQUE_RECORD_LEN);
	if (r == 0)
		r = sv_buf_put_u8(out, guess_limit);
	if (r == 0)
		r = put_blob(out, blob, blob_len);
	return r;
}

int client_wire_login_start(struct sv_buf *out, const uint8_t *id, size_t id_len,
                            const uint8_t ke1[OPAQUE_KE1_LEN])
{
	int r = start(out);
	if (r == 0)
		r = put_id(out, id, id_len);
	if (r == 0)
		r = sv_buf_put(out, ke1, OPAQUE_KE1_LEN);
	return r;
}

int client_wire_login_finish(struct sv_buf *out, const struct client_wire_keys *k,
                             const uint8_t session_id[CLIENT_WIRE_SESSION_ID_LEN],
                             const uint8_t ke3[OPAQUE_KE3_LEN], uint8_t op, const uint8_t *payload,
                             size_t payload_len)
{
	if (op < CLIENT_WIRE_OP_RECOVER || op > CLIENT_WIRE_OP_CHANGE)
		return SV_ERR_RANGE;
	if ((op == CLIENT_WIRE_OP_CHANGE) != (payload_len == OPAQUE_REGISTRATION_REQUEST_LEN) ||
	    (op != CLIENT_WIRE_OP_CHANGE && payload_len != 0))
		return SV_ERR_INVALID;
	/* v | session_id | KE3 | op | payload | HMAC(session_id | op | payload) */
	uint8_t macced[CLIENT_WIRE_SESSION_ID_LEN + 1 + OPAQUE_REGISTRATION_REQUEST_LEN];
	uint8_t mac[CLIENT_WIRE_MAC_LEN];
	size_t macced_len = CLIENT_WIRE_SESSION_ID_LEN + 1 + payload_len;
	memcpy(macced, session_id, CLIENT_WIRE_SESSION_ID_LEN);
	macced[CLIENT_WIRE_SESSION_ID_LEN] = op;
	if (payload_len != 0)
		memcpy(macced + CLIENT_WIRE_SESSION_ID_LEN + 1, payload, payload_len);
	hkdf_hmac_sha512(mac, k->mac_key, sizeof(k->mac_key), macced, macced_len, NULL, 0);

	int r = start(out);
	if (r == 0)
		r = sv_buf_put(out, session_id, CLIENT_WIRE_SESSION_ID_LEN);
	if (r == 0)
		r = sv_buf_put(out, ke3, OPAQUE_KE3_LEN);
	if (r == 0)
		r = sv_buf_put_u8(out, op);
	if (r == 0 && payload_len != 0)
		r = sv_buf_put(out, payload, payload_len);
	if (r == 0)
		r = sv_buf_put(out, mac, sizeof(mac));
	sodium_memzero(mac, sizeof(mac));
	return r;
}

int client_wire_change_finish(struct sv_buf *out, const struct client_wire_keys *k,
                              const uint8_t session_id[CLIENT_WIRE_SESSION_ID_LEN],
                              const uint8_t record[OPAQUE_RECORD_LEN], uint8_t guess_limit,
                              const uint8_t *blob, size_t blob_len)
{
	/* v | session_id | record | guess_limit | blob | HMAC(everything before it) */
	int r = start(out);
	if (r == 0)
		r = sv_buf_put(out, session_id, CLIENT_WIRE_SESSION_ID_LEN);
	if (r == 0)
		r = sv_buf_put(out, record, OPAQUE_RECORD_LEN);
	if (r == 0)
		r = sv_buf_put_u8(out, guess_limit);
	if (r == 0)
		r = put_blob(out, blob, blob_len);
	if (r == 0)
		r = put_mac(out, k, 0);
	return r;
}

int client_wire_parse_register_start(uint8_t response[OPAQUE_REGISTRATION_RESPONSE_LEN],
                                     const uint8_t *body, size_t len)
{
	if (len != OPAQUE_REGISTRATION_RESPONSE_LEN)
		return SV_ERR_INVALID;
	memcpy(response, body, len);
	return SV_OK;
}

int client_wire_parse_login_start(uint8_t session_id[CLIENT_WIRE_SESSION_ID_LEN],
                                  uint8_t ke2[OPAQUE_KE2_LEN], uint8_t *attempts_left,
                                  const uint8_t *body, size_t len)
{
	if (len != CLIENT_WIRE_SESSION_ID_LEN + OPAQUE_KE2_LEN + 1)
		return SV_ERR_INVALID;
	memcpy(session_id, body, CLIENT_WIRE_SESSION_ID_LEN);
	memcpy(ke2, body + CLIENT_WIRE_SESSION_ID_LEN, OPAQUE_KE2_LEN);
	*attempts_left = body[len - 1];
	return SV_OK;
}

int client_wire_parse_auth_failed(uint8_t *attempts_left, const uint8_t *body, size_t len)
{
	if (len != 1)
		return SV_ERR_INVALID;
	*attempts_left = body[0];
	return SV_OK;
}

int client_wire_parse_recover(uint8_t *blob, size_t blob_max, size_t *blob_len,
                              const struct client_wire_keys *k,
                              const uint8_t session_id[CLIENT_WIRE_SESSION_ID_LEN],
                              const uint8_t *body, size_t len)
{
	if (len <= CLIENT_WIRE_SEAL_NONCE_LEN + CLIENT_WIRE_SEAL_TAG_LEN)
		return SV_ERR_INVALID;
	size_t ct_len = len - CLIENT_WIRE_SEAL_NONCE_LEN;
	if (ct_len - CLIENT_WIRE_SEAL_TAG_LEN > blob_max)
		return SV_ERR_RANGE;
	unsigned long long pt_len;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	        blob, &pt_len, NULL, body + CLIENT_WIRE_SEAL_NONCE_LEN, ct_len, session_id,
	        CLIENT_WIRE_SESSION_ID_LEN, body, k->seal_key) != 0)
		return SV_ERR_AUTH;
	*blob_len = (size_t)pt_len;
	return SV_OK;
}

int client_wire_parse_change(uint8_t response[OPAQUE_REGISTRATION_RESPONSE_LEN],
                             const uint8_t *body, size_t len)
{
	return client_wire_parse_register_start(response, body, len);
}

int client_wire_parse_empty(const uint8_t *body, size_t len)
{
	(void)body;
	return len == 0 ? SV_OK : SV_ERR_INVALID;
}
