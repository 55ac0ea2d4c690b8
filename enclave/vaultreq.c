/* Request body decoders (docs/protocol.md, "HTTP API"): bounds-checked, no trailing bytes. */
#include "enclave/vaultreq.h"

#include <string.h>

#include "common/buf.h"
#include "common/err.h"

static int get_version(struct sv_buf *b, const char **why)
{
	uint8_t v;
	if (sv_buf_get_u8(b, &v) != 0)
		return sv_fail(why, "empty request body: expected version byte 1", SV_ERR_INVALID);
	if (v != VAULTREQ_VERSION)
		return sv_fail(why, "unsupported protocol version: this vault speaks version 1",
		               SV_ERR_INVALID);
	return SV_OK;
}

static int get_id(struct sv_buf *b, const uint8_t **id, size_t *id_len, const char **why)
{
	uint16_t n;
	if (sv_buf_get_u16(b, &n) != 0)
		return sv_fail(why, "truncated body: identifier length missing", SV_ERR_INVALID);
	if (n < VAULTREQ_ID_MIN || n > VAULTREQ_ID_MAX)
		return sv_fail(why, "identifier length must be 1..255 bytes", SV_ERR_RANGE);
	if (sv_buf_get_ref(b, n, id) != 0)
		return sv_fail(why, "truncated body: identifier shorter than its declared length",
		               SV_ERR_INVALID);
	*id_len = n;
	return SV_OK;
}

static int get_fixed(struct sv_buf *b, size_t n, const uint8_t **p, const char **why,
                     const char *reason)
{
	if (sv_buf_get_ref(b, n, p) != 0)
		return sv_fail(why, reason, SV_ERR_INVALID);
	return SV_OK;
}

static int get_blob(struct sv_buf *b, const uint8_t **blob, size_t *blob_len, const char **why)
{
	uint16_t n;
	if (sv_buf_get_u16(b, &n) != 0)
		return sv_fail(why, "truncated body: blob length missing", SV_ERR_INVALID);
	if (n < VAULTREQ_BLOB_MIN || n > VAULTREQ_BLOB_MAX)
		return sv_fail(why, "backup-key blob must be 1..512 bytes", SV_ERR_RANGE);
	if (sv_buf_get_ref(b, n, blob) != 0)
		return sv_fail(why, "truncated body: blob shorter than its declared length",
		               SV_ERR_INVALID);
	*blob_len = n;
	return SV_OK;
}

static int end(const struct sv_buf *b, const char **why)
{
	if (sv_buf_expect_end(b) != 0)
		return sv_fail(why, "trailing bytes after the last field", SV_ERR_INVALID);
	return SV_OK;
}

int vaultreq_parse_register_start(struct vaultreq_register_start *out, const uint8_t *body,
                                  size_t len, const char **why)
{
	struct vaultreq_register_start r = {0};
	struct sv_buf b;
	int err;

	memset(out, 0, sizeof(*out));
	sv_buf_from(&b, body, len);
	if ((err = get_version(&b, why)) != 0 || (err = get_id(&b, &r.id, &r.id_len, why)) != 0 ||
	    (err = get_fixed(&b, VAULTREQ_REG_REQUEST_LEN, &r.request, why,
	                     "truncated body: RegistrationRequest must be 32 bytes")) != 0 ||
	    (err = end(&b, why)) != 0)
		return err;
	*out = r;
	return SV_OK;
}

int vaultreq_parse_register_finish(struct vaultreq_register_finish *out, const uint8_t *body,
                                   size_t len, const char **why)
{
	struct vaultreq_register_finish r = {0};
	struct sv_buf b;
	int err;

	memset(out, 0, sizeof(*out));
	sv_buf_from(&b, body, len);
	if ((err = get_version(&b, why)) != 0 || (err = get_id(&b, &r.id, &r.id_len, why)) != 0 ||
	    (err = get_fixed(&b, VAULTREQ_RECORD_LEN, &r.record, why,
	                     "truncated body: RegistrationRecord must be 192 bytes")) != 0)
		return err;
	if (sv_buf_get_u8(&b, &r.guess_limit) != 0)
		return sv_fail(why, "truncated body: guess limit missing", SV_ERR_INVALID);
	if ((err = get_blob(&b, &r.blob, &r.blob_len, why)) != 0 || (err = end(&b, why)) != 0)
		return err;
	*out = r;
	return SV_OK;
}

int vaultreq_parse_login_start(struct vaultreq_login_start *out, const uint8_t *body, size_t len,
                               const char **why)
{
	struct vaultreq_login_start r = {0};
	struct sv_buf b;
	int err;

	memset(out, 0, sizeof(*out));
	sv_buf_from(&b, body, len);
	if ((err = get_version(&b, why)) != 0 || (err = get_id(&b, &r.id, &r.id_len, why)) != 0 ||
	    (err = get_fixed(&b, VAULTREQ_KE1_LEN, &r.ke1, why,
	                     "truncated body: KE1 must be 96 bytes")) != 0 ||
	    (err = end(&b, why)) != 0)
		return err;
	*out = r;
	return SV_OK;
}

int vaultreq_parse_login_finish(struct vaultreq_login_finish *out, const uint8_t *body, size_t len,
                                const char **why)
{
	struct vaultreq_login_finish r = {0};
	struct sv_buf b;
	int err;

	memset(out, 0, sizeof(*out));
	sv_buf_from(&b, body, len);
	if ((err = get_version(&b, why)) != 0 ||
	    (err = get_fixed(&b, VAULTREQ_SESSION_ID_LEN, &r.session_id, why,
	                     "truncated body: session id must be 16 bytes")) != 0 ||
	    (err = get_fixed(&b, VAULTREQ_KE3_LEN, &r.ke3, why,
	                     "truncated body: KE3 must be 64 bytes")) != 0)
		return err;
	if (sv_buf_get_u8(&b, &r.op) != 0)
		return sv_fail(why, "truncated body: operation byte missing", SV_ERR_INVALID);
	switch (r.op) {
	case VAULTREQ_OP_RECOVER:
	case VAULTREQ_OP_DELETE: break;
	case VAULTREQ_OP_CHANGE:
		r.payload_len = VAULTREQ_REG_REQUEST_LEN;
		if ((err = get_fixed(&b, r.payload_len, &r.payload, why,
		                     "truncated body: change-password needs a 32-byte "
		                     "RegistrationRequest")) != 0)
			return err;
		break;
	default:
		return sv_fail(
		    why, "unknown operation: use 1 (recover), 2 (delete) or 3 (change-password)",
		    SV_ERR_INVALID);
	}
	if ((err = get_fixed(&b, VAULTREQ_MAC_LEN, &r.mac, why,
	                     "truncated body: operation MAC must be 64 bytes")) != 0 ||
	    (err = end(&b, why)) != 0)
		return err;
	*out = r;
	return SV_OK;
}

int vaultreq_parse_change_finish(struct vaultreq_change_finish *out, const uint8_t *body,
                                 size_t len, const char **why)
{
	struct vaultreq_change_finish r = {0};
	struct sv_buf b;
	int err;

	memset(out, 0, sizeof(*out));
	sv_buf_from(&b, body, len);
	if ((err = get_version(&b, why)) != 0 ||
	    (err = get_fixed(&b, VAULTREQ_SESSION_ID_LEN, &r.session_id, why,
	                     "truncated body: session id must be 16 bytes")) != 0 ||
	    (err = get_fixed(&b, VAULTREQ_RECORD_LEN, &r.record, why,
	                     "truncated body: RegistrationRecord must be 192 bytes")) != 0)
		return err;
	if (sv_buf_get_u8(&b, &r.guess_limit) != 0)
		return sv_fail(why, "truncated body: guess limit missing", SV_ERR_INVALID);
	if ((err = get_blob(&b, &r.blob, &r.blob_len, why)) != 0)
		return err;
	r.macced_len = b.off;
	if ((err = get_fixed(&b, VAULTREQ_MAC_LEN, &r.mac, why,
	                     "truncated body: MAC must be 64 bytes")) != 0 ||
	    (err = end(&b, why)) != 0)
		return err;
	*out = r;
	return SV_OK;
}
