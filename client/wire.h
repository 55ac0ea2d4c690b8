/*
 * The client side of the HTTP API (docs/protocol.md "## HTTP API"): request bodies, reply
 * bodies and the keys the session key yields for the op MAC and the released blob. Pure
 * functions over bytes, so they are unit-tested without a server.
 */
#ifndef SV_CLIENT_WIRE_H
#define SV_CLIENT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "crypto/opaque.h"

#define CLIENT_WIRE_VERSION        1
#define CLIENT_WIRE_SESSION_ID_LEN 16
#define CLIENT_WIRE_MAC_LEN        64
#define CLIENT_WIRE_SEAL_NONCE_LEN 24
#define CLIENT_WIRE_SEAL_TAG_LEN   16
#define CLIENT_WIRE_BODY_MAX       1024 /* every request body fits */
#define CLIENT_WIRE_REPLY_MAX      2048 /* longer replies are refused unread */

#define CLIENT_WIRE_OP_RECOVER 1
#define CLIENT_WIRE_OP_DELETE  2
#define CLIENT_WIRE_OP_CHANGE  3

#define CLIENT_WIRE_WUR __attribute__((warn_unused_result))

/* SECRET. The keys one authenticated session yields (derived from the OPAQUE session key). */
struct client_wire_keys {
	uint8_t mac_key[64];  /* op_mac on login/finish and the mac on change-password/finish */
	uint8_t seal_key[32]; /* XChaCha20-Poly1305 key of the blob released by recover */
};

int client_wire_keys_derive(struct client_wire_keys *k,
                            const uint8_t session_key[OPAQUE_SESSION_KEY_LEN]) CLIENT_WIRE_WUR;

/* Request bodies; each resets and fills out (max CLIENT_WIRE_BODY_MAX). */
int client_wire_register_start(struct sv_buf *out, const uint8_t *id, size_t id_len,
                               const uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN])
    CLIENT_WIRE_WUR;
int client_wire_register_finish(struct sv_buf *out, const uint8_t *id, size_t id_len,
                                const uint8_t record[OPAQUE_RECORD_LEN], uint8_t guess_limit,
                                const uint8_t *blob, size_t blob_len) CLIENT_WIRE_WUR;
int client_wire_login_start(struct sv_buf *out, const uint8_t *id, size_t id_len,
                            const uint8_t ke1[OPAQUE_KE1_LEN]) CLIENT_WIRE_WUR;
/* payload: the new RegistrationRequest for OP_CHANGE, NULL/0 otherwise. */
int client_wire_login_finish(struct sv_buf *out, const struct client_wire_keys *k,
                             const uint8_t session_id[CLIENT_WIRE_SESSION_ID_LEN],
                             const uint8_t ke3[OPAQUE_KE3_LEN], uint8_t op, const uint8_t *payload,
                             size_t payload_len) CLIENT_WIRE_WUR;
int client_wire_change_finish(struct sv_buf *out, const struct client_wire_keys *k,
                              const uint8_t session_id[CLIENT_WIRE_SESSION_ID_LEN],
                              const uint8_t record[OPAQUE_RECORD_LEN], uint8_t guess_limit,
                              const uint8_t *blob, size_t blob_len) CLIENT_WIRE_WUR;

/* Reply bodies (of a 200 answer unless said otherwise); all reject wrong lengths. */
int client_wire_parse_register_start(uint8_t response[OPAQUE_REGISTRATION_RESPONSE_LEN],
                                     const uint8_t *body, size_t len) CLIENT_WIRE_WUR;
int client_wire_parse_login_start(uint8_t session_id[CLIENT_WIRE_SESSION_ID_LEN],
                                  uint8_t ke2[OPAQUE_KE2_LEN], uint8_t *attempts_left,
                                  const uint8_t *body, size_t len) CLIENT_WIRE_WUR;
/* 403 body: attempts_left (u8). */
int client_wire_parse_auth_failed(uint8_t *attempts_left, const uint8_t *body,
                                  size_t len) CLIENT_WIRE_WUR;
/* recover: nonce | sealed blob (AD = session_id); writes the blob (room for blob_max bytes). */
int client_wire_parse_recover(uint8_t *blob, size_t blob_max, size_t *blob_len,
                              const struct client_wire_keys *k,
                              const uint8_t session_id[CLIENT_WIRE_SESSION_ID_LEN],
                              const uint8_t *body, size_t len) CLIENT_WIRE_WUR;
/* change: RegistrationResponse (64). */
int client_wire_parse_change(uint8_t response[OPAQUE_REGISTRATION_RESPONSE_LEN],
                             const uint8_t *body, size_t len) CLIENT_WIRE_WUR;
/* delete, register/finish, change-password/finish: an empty body. */
int client_wire_parse_empty(const uint8_t *body, size_t len) CLIENT_WIRE_WUR;

#endif
