/*
 * The single-vault operations (OPAQUE register and login, docs/protocol.md) as I/O-free steps,
 * in the style of the realm core (client/realmcore.h): each step turns the state and the last
 * 200 reply body into the next request body, so that any transport can drive them. The
 * blocking calls of sealvault.h (libsealvault.c) are these steps with one HTTPS exchange
 * between each, plus the checks that need the network (GET /v1/info, attestation) and the
 * mapping of non-200 answers.
 *
 *   register:        register_start -> POST /v1/register/start -> register_finish
 *                    -> POST /v1/register/finish (empty 200)
 *   login (recover, delete, change-password):
 *                    login_start -> POST /v1/login/start -> login_ke2 -> login_finish
 *                    -> POST /v1/login/finish -> recover_open (recover) or change_finish
 *                    (change-password, then POST /v1/change-password/finish)
 *
 * After register_finish's parse and login_ke2, server_pk holds the OPAQUE server key the step
 * authenticated (for the caller's attestation check). Every step returns 0 or a negative
 * SV_ERR_*: SV_ERR_INVALID for a malformed reply, SV_ERR_NOMEM when Argon2id cannot get its
 * memory. Steps that do more than one thing set *what to the part that failed ("sealing the
 * backup key", ...) or to NULL when OPAQUE itself refused the server's answer.
 */
#ifndef SV_CLIENT_VAULTSTEPS_H
#define SV_CLIENT_VAULTSTEPS_H

#include <stddef.h>
#include <stdint.h>

#include "client/blob.h"
#include "client/wire.h"
#include "common/buf.h"
#include "crypto/ksf.h"
#include "crypto/opaque.h"

#define VAULTSTEPS_WUR __attribute__((warn_unused_result))

/* SECRET: everything one operation derives; keep it in sodium_malloc'd memory and end with
 * vaultsteps_wipe. */
struct vaultsteps {
	struct opaque_client_state st;  /* login */
	struct opaque_client_state reg; /* registration (register, change-password's new one) */
	uint8_t session_key[OPAQUE_SESSION_KEY_LEN];
	uint8_t export_key[OPAQUE_EXPORT_KEY_LEN];
	struct client_wire_keys keys;
	uint8_t session_id[CLIENT_WIRE_SESSION_ID_LEN];
	uint8_t blob[CLIENT_BLOB_MAX];
	size_t blob_len;
	uint8_t secret[CLIENT_SECRET_MAX];
	size_t secret_len;
	uint8_t record[OPAQUE_RECORD_LEN];
	uint8_t response[OPAQUE_REGISTRATION_RESPONSE_LEN];
	uint8_t server_pk[OPAQUE_PK_LEN]; /* what the last step authenticated */
	uint8_t ke3[OPAQUE_KE3_LEN];
	int wrong; /* login_ke2: the password (or server) is not the registered one */
};

void vaultsteps_wipe(struct vaultsteps *s);

/* register: the body of POST /v1/register/start into req. */
VAULTSTEPS_WUR int vaultsteps_register_start(struct vaultsteps *s, struct sv_buf *req,
                                             const uint8_t *user, size_t user_len,
                                             const uint8_t *pw, size_t pw_len);
/* register: the 200 reply of register/start (server_pk set on success). */
VAULTSTEPS_WUR int vaultsteps_register_reply(struct vaultsteps *s, const uint8_t *body, size_t len);
/* register: finalizes (s->response) and seals secret; the body of POST /v1/register/finish. */
VAULTSTEPS_WUR int
vaultsteps_register_finish(struct vaultsteps *s, struct sv_buf *req, const uint8_t *user,
                           size_t user_len, const uint8_t *pw, size_t pw_len, const uint8_t *secret,
                           size_t secret_len, const struct opaque_params *p,
                           const struct ksf_params *ksf, uint8_t guess_limit, const char **what);

/* login: the body of POST /v1/login/start. */
VAULTSTEPS_WUR int vaultsteps_login_start(struct vaultsteps *s, struct sv_buf *req,
                                          const uint8_t *user, size_t user_len, const uint8_t *pw,
                                          size_t pw_len);
/* login: the 200 reply of login/start: KE2 checked and KE3 made; *attempts_left from the
 * reply. A password that does not open the envelope sets s->wrong (and returns 0: the login
 * still finishes, with random bytes, so that the vault records the failure at once). */
VAULTSTEPS_WUR int vaultsteps_login_ke2(struct vaultsteps *s, const uint8_t *body, size_t len,
                                        const uint8_t *pw, size_t pw_len,
                                        const struct opaque_params *p, const struct ksf_params *ksf,
                                        int *attempts_left);
/* login: the body of POST /v1/login/finish with op (CLIENT_WIRE_OP_*) and its payload; with
 * s->wrong, random bytes and OP_RECOVER. */
VAULTSTEPS_WUR int vaultsteps_login_finish(struct vaultsteps *s, struct sv_buf *req, uint8_t op,
                                           const uint8_t *payload, size_t payload_len);
/* recover: opens the 200 reply of login/finish into s->secret (the profile in *used). On
 * failure *what is NULL for a malformed reply, "blob" when the stored blob does not open. */
VAULTSTEPS_WUR int vaultsteps_recover_open(struct vaultsteps *s, const uint8_t *body, size_t len,
                                           const uint8_t *user, size_t user_len,
                                           struct ksf_params *used, const char **what);
/* change-password: the new registration's request (s->reg) for login_finish's payload. */
VAULTSTEPS_WUR int vaultsteps_change_request(struct vaultsteps *s,
                                             uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN],
                                             const uint8_t *new_pw, size_t new_len);
/* change-password: the 200 reply of login/finish (the new RegistrationResponse). */
VAULTSTEPS_WUR int vaultsteps_change_reply(struct vaultsteps *s, const uint8_t *body, size_t len);
/* change-password: finalizes the new registration, seals secret under it, and writes the body
 * of POST /v1/change-password/finish. */
VAULTSTEPS_WUR int
vaultsteps_change_finish(struct vaultsteps *s, struct sv_buf *req, const uint8_t *user,
                         size_t user_len, const uint8_t *new_pw, size_t new_len,
                         const uint8_t *secret, size_t secret_len, const struct opaque_params *p,
                         const struct ksf_params *ksf, uint8_t guess_limit, const char **what);

#endif
