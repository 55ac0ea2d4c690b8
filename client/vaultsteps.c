#include "client/vaultsteps.h"

#include <string.h>

#include <sodium.h>

#include "common/err.h"

void vaultsteps_wipe(struct vaultsteps *s)
{
	opaque_client_state_wipe(&s->st);
	opaque_client_state_wipe(&s->reg);
	sodium_memzero(s, sizeof(*s));
}

int vaultsteps_register_start(struct vaultsteps *s, struct sv_buf *req, const uint8_t *user,
                              size_t user_len, const uint8_t *pw, size_t pw_len)
{
	uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN];
	int r = opaque_client_registration_request(request, &s->reg, pw, pw_len);
	if (r == 0)
		r = client_wire_register_start(req, user, user_len, request);
	return r;
}

int vaultsteps_register_reply(struct vaultsteps *s, const uint8_t *body, size_t len)
{
	if (client_wire_parse_register_start(s->response, body, len) != 0)
		return SV_ERR_INVALID;
	/* RegistrationResponse = evaluated_message | server_public_key */
	memcpy(s->server_pk, s->response + OPAQUE_REGISTRATION_RESPONSE_LEN - OPAQUE_PK_LEN,
	       OPAQUE_PK_LEN);
	return SV_OK;
}

/* Finalizes s->reg with s->response into s->record and s->export_key, then seals secret. */
static int finalize(struct vaultsteps *s, const uint8_t *user, size_t user_len, const uint8_t *pw,
                    size_t pw_len, const uint8_t *secret, size_t secret_len,
                    const struct opaque_params *p, const struct ksf_params *ksf, const char **what)
{
	*what = NULL;
	int r = opaque_client_registration_finalize(s->record, s->export_key, &s->reg, pw, pw_len,
	                                            s->response, p, ksf);
	if (r != 0)
		return r;
	*what = "sealing the backup key";
	return client_blob_seal(s->blob, &s->blob_len, secret, secret_len, s->export_key, ksf, user,
	                        user_len);
}

int vaultsteps_register_finish(struct vaultsteps *s, struct sv_buf *req, const uint8_t *user,
                               size_t user_len, const uint8_t *pw, size_t pw_len,
                               const uint8_t *secret, size_t secret_len,
                               const struct opaque_params *p, const struct ksf_params *ksf,
                               uint8_t guess_limit, const char **what)
{
	int r = finalize(s, user, user_len, pw, pw_len, secret, secret_len, p, ksf, what);
	if (r != 0)
		return r;
	*what = "building the registration record";
	return client_wire_register_finish(req, user, user_len, s->record, guess_limit, s->blob,
	                                   s->blob_len);
}

int vaultsteps_login_start(struct vaultsteps *s, struct sv_buf *req, const uint8_t *user,
                           size_t user_len, const uint8_t *pw, size_t pw_len)
{
	uint8_t ke1[OPAQUE_KE1_LEN];
	s->wrong = 0;
	int r = opaque_client_ke1(ke1, &s->st, pw, pw_len);
	if (r == 0)
		r = client_wire_login_start(req, user, user_len, ke1);
	return r;
}

int vaultsteps_login_ke2(struct vaultsteps *s, const uint8_t *body, size_t len, const uint8_t *pw,
                         size_t pw_len, const struct opaque_params *p, const struct ksf_params *ksf,
                         int *attempts_left)
{
	uint8_t ke2[OPAQUE_KE2_LEN], left;
	if (client_wire_parse_login_start(s->session_id, ke2, &left, body, len) != 0)
		return SV_ERR_INVALID;
	if (attempts_left != NULL)
		*attempts_left = left;
	int r = opaque_client_ke3(s->ke3, s->session_key, s->export_key, s->server_pk, &s->st, pw,
	                          pw_len, ke2, p, ksf);
	if (r == SV_ERR_NOMEM)
		return r;
	s->wrong = r != 0;
	return SV_OK;
}

int vaultsteps_login_finish(struct vaultsteps *s, struct sv_buf *req, uint8_t op,
                            const uint8_t *payload, size_t payload_len)
{
	uint8_t ke3[OPAQUE_KE3_LEN];
	if (s->wrong) {
		/* Not our password (or not our server): spend the charged guess visibly. */
		randombytes_buf(ke3, sizeof(ke3));
		randombytes_buf(&s->keys, sizeof(s->keys));
		op = CLIENT_WIRE_OP_RECOVER;
		payload = NULL;
		payload_len = 0;
	} else {
		memcpy(ke3, s->ke3, sizeof(ke3));
		if (client_wire_keys_derive(&s->keys, s->session_key) != 0) {
			sodium_memzero(ke3, sizeof(ke3));
			return SV_ERR_CRYPTO;
		}
	}
	sodium_memzero(s->ke3, sizeof(s->ke3));
	int r =
	    client_wire_login_finish(req, &s->keys, s->session_id, ke3, op, payload, payload_len);
	sodium_memzero(ke3, sizeof(ke3));
	return r;
}

int vaultsteps_recover_open(struct vaultsteps *s, const uint8_t *body, size_t len,
                            const uint8_t *user, size_t user_len, struct ksf_params *used,
                            const char **what)
{
	*what = NULL;
	if (client_wire_parse_recover(s->blob, sizeof(s->blob), &s->blob_len, &s->keys,
	                              s->session_id, body, len) != 0)
		return SV_ERR_INVALID;
	*what = "blob";
	return client_blob_open(s->secret, &s->secret_len, used, s->blob, s->blob_len,
	                        s->export_key, user, user_len);
}

int vaultsteps_change_request(struct vaultsteps *s,
                              uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN],
                              const uint8_t *new_pw, size_t new_len)
{
	return opaque_client_registration_request(request, &s->reg, new_pw, new_len);
}

int vaultsteps_change_reply(struct vaultsteps *s, const uint8_t *body, size_t len)
{
	return client_wire_parse_change(s->response, body, len) != 0 ? SV_ERR_INVALID : SV_OK;
}

int vaultsteps_change_finish(struct vaultsteps *s, struct sv_buf *req, const uint8_t *user,
                             size_t user_len, const uint8_t *new_pw, size_t new_len,
                             const uint8_t *secret, size_t secret_len,
                             const struct opaque_params *p, const struct ksf_params *ksf,
                             uint8_t guess_limit, const char **what)
{
	int r = finalize(s, user, user_len, new_pw, new_len, secret, secret_len, p, ksf, what);
	if (r != 0)
		return r;
	*what = "building the new record";
	return client_wire_change_finish(req, &s->keys, s->session_id, s->record, guess_limit,
	                                 s->blob, s->blob_len);
}
