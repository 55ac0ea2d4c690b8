/* The /v2/realm/ bodies (docs/realms.md, "Wire encodings"): bounds-checked, no trailing bytes. */
#include "crypto/realm_wire.h"

#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "crypto/oprf.h"

static int get_version(struct sv_buf *b, const char **why)
{
	uint8_t v;

	if (sv_buf_get_u8(b, &v) != 0)
		return sv_fail(why, "empty request body: expected version byte 2", SV_ERR_INVALID);
	if (v != REALM_WIRE_VERSION)
		return sv_fail(why, "unsupported protocol version: /v2/ bodies start with byte 2",
		               SV_ERR_INVALID);
	return 0;
}

static int get_uid(struct sv_buf *b, const uint8_t **uid, size_t *uid_len, const char **why)
{
	uint16_t n;

	if (sv_buf_get_u16(b, &n) != 0)
		return sv_fail(why, "truncated body: identifier length missing", SV_ERR_INVALID);
	if (n < 1 || n > REALM_UID_MAX)
		return sv_fail(why, "identifier length must be 1..255 bytes", SV_ERR_RANGE);
	if (sv_buf_get_ref(b, n, uid) != 0)
		return sv_fail(why, "truncated body: identifier shorter than its declared length",
		               SV_ERR_INVALID);
	*uid_len = n;
	return 0;
}

static int get_fixed(struct sv_buf *b, size_t n, const uint8_t **p, const char **why,
                     const char *what)
{
	if (sv_buf_get_ref(b, n, p) != 0)
		return sv_fail(why, what, SV_ERR_INVALID);
	return 0;
}

static int get_element(struct sv_buf *b, const uint8_t **p, const char **why, const char *what)
{
	int ret;

	if ((ret = get_fixed(b, REALM_ELEMENT_LEN, p, why, what)) < 0)
		return ret;
	if (oprf_element_check(*p, REALM_ELEMENT_LEN) < 0)
		return sv_fail(why, "a group element is not a valid ristretto255 encoding",
		               SV_ERR_CRYPTO);
	return 0;
}

static int get_scalar(struct sv_buf *b, const uint8_t **p, const char **why, const char *what)
{
	int ret;

	if ((ret = get_fixed(b, REALM_SCALAR_LEN, p, why, what)) < 0)
		return ret;
	if (oprf_scalar_check(*p, REALM_SCALAR_LEN) < 0)
		return sv_fail(why, "a scalar is zero or not reduced", SV_ERR_CRYPTO);
	return 0;
}

static int get_ksf(struct sv_buf *b, struct ksf_params *ksf, const char **why)
{
	const uint8_t *p;

	if (sv_buf_get_ref(b, KSF_PARAMS_LEN, &p) != 0)
		return sv_fail(why, "truncated body: KSF profile must be 9 bytes", SV_ERR_INVALID);
	if (ksf_params_decode(ksf, p, KSF_PARAMS_LEN) != 0)
		return sv_fail(why, "unknown KSF profile or parameters out of bounds",
		               SV_ERR_RANGE);
	return 0;
}

/* t | n | index, with 1 <= t <= n <= REALM_MAX and 1 <= index <= n */
static int get_shape(struct sv_buf *b, uint8_t *t, uint8_t *n, uint8_t *index, const char **why)
{
	if (sv_buf_get_u8(b, t) != 0 || sv_buf_get_u8(b, n) != 0 || sv_buf_get_u8(b, index) != 0)
		return sv_fail(why, "truncated body: threshold, realm count or index missing",
		               SV_ERR_INVALID);
	if (*n < 1 || *n > REALM_MAX || *t < 1 || *t > *n || *index < 1 || *index > *n)
		return sv_fail(why, "need 1 <= threshold <= realms <= 16 and 1 <= index <= realms",
		               SV_ERR_RANGE);
	return 0;
}

static int get_commitments(struct sv_buf *b, unsigned n, const uint8_t **p, const char **why)
{
	int ret;

	if ((ret = get_fixed(b, (size_t)n * REALM_ELEMENT_LEN, p, why,
	                     "truncated body: fewer share commitments than realms")) < 0)
		return ret;
	for (unsigned i = 0; i < n; i++)
		if (oprf_element_check(*p + i * REALM_ELEMENT_LEN, REALM_ELEMENT_LEN) < 0)
			return sv_fail(why,
			               "a share commitment is not a valid ristretto255 encoding",
			               SV_ERR_CRYPTO);
	return 0;
}

static int get_ct(struct sv_buf *b, const uint8_t **ct, size_t *ct_len, const char **why)
{
	uint16_t n;

	if (sv_buf_get_u16(b, &n) != 0)
		return sv_fail(why, "truncated body: ciphertext length missing", SV_ERR_INVALID);
	if (n < REALM_CT_MIN || n > REALM_CT_MAX)
		return sv_fail(why, "ciphertext must be 41..296 bytes (a 1..256-byte secret)",
		               SV_ERR_RANGE);
	if (sv_buf_get_ref(b, n, ct) != 0)
		return sv_fail(why, "truncated body: ciphertext shorter than its declared length",
		               SV_ERR_INVALID);
	*ct_len = n;
	return 0;
}

static int end(const struct sv_buf *b, const char **why)
{
	if (sv_buf_expect_end(b) != 0)
		return sv_fail(why, "trailing bytes after the last field", SV_ERR_INVALID);
	return 0;
}

/* ---- encoders: the same bounds ---- */

static int put_uid(struct sv_buf *b, const uint8_t *uid, size_t uid_len)
{
	if (uid == NULL || uid_len < 1 || uid_len > REALM_UID_MAX)
		return SV_ERR_RANGE;
	return sv_buf_put_str16(b, uid, uid_len);
}

static int put_shape(struct sv_buf *b, uint8_t t, uint8_t n, uint8_t index)
{
	int ret;

	if (n < 1 || n > REALM_MAX || t < 1 || t > n || index < 1 || index > n)
		return SV_ERR_RANGE;
	if ((ret = sv_buf_put_u8(b, t)) < 0 || (ret = sv_buf_put_u8(b, n)) < 0)
		return ret;
	return sv_buf_put_u8(b, index);
}

static int put_ksf(struct sv_buf *b, const struct ksf_params *ksf)
{
	uint8_t p[KSF_PARAMS_LEN];
	int ret;

	if ((ret = ksf_params_encode(p, ksf)) < 0)
		return ret;
	return sv_buf_put(b, p, sizeof p);
}

static int put_ct(struct sv_buf *b, const uint8_t *ct, size_t ct_len)
{
	if (ct_len < REALM_CT_MIN || ct_len > REALM_CT_MAX)
		return SV_ERR_RANGE;
	return sv_buf_put_str16(b, ct, ct_len);
}

/* ---- register ---- */

int realm_wire_register_encode(struct sv_buf *out, const struct realm_register_req *r)
{
	int ret;

	if ((ret = sv_buf_put_u8(out, REALM_WIRE_VERSION)) < 0 ||
	    (ret = put_uid(out, r->uid, r->uid_len)) < 0 ||
	    (ret = sv_buf_put(out, r->realm_id, REALM_ID_LEN)) < 0 ||
	    (ret = sv_buf_put(out, r->version, REALM_VERSION_LEN)) < 0 ||
	    (ret = put_ksf(out, &r->ksf)) < 0 || (ret = put_shape(out, r->t, r->n, r->index)) < 0 ||
	    (ret = sv_buf_put_u8(out, r->guess_limit)) < 0 ||
	    (ret = sv_buf_put(out, r->oprf_share, REALM_SCALAR_LEN)) < 0 ||
	    (ret = sv_buf_put(out, r->commitments, (size_t)r->n * REALM_ELEMENT_LEN)) < 0 ||
	    (ret = sv_buf_put(out, r->unlock_check, REALM_KEY_LEN)) < 0 ||
	    (ret = sv_buf_put(out, r->unlock_tag, REALM_KEY_LEN)) < 0 ||
	    (ret = sv_buf_put(out, r->enc_share, REALM_SCALAR_LEN)) < 0 ||
	    (ret = sv_buf_put(out, r->share_mac, REALM_KEY_LEN)) < 0)
		return ret;
	return put_ct(out, r->ct, r->ct_len);
}

int realm_wire_register_decode(struct realm_register_req *out, const uint8_t *in, size_t len,
                               const char **why)
{
	struct realm_register_req r = {0};
	uint8_t want[REALM_ELEMENT_LEN];
	struct sv_buf b;
	int ret;

	memset(out, 0, sizeof *out);
	sv_buf_from(&b, in, len);
	if ((ret = get_version(&b, why)) < 0 || (ret = get_uid(&b, &r.uid, &r.uid_len, why)) < 0 ||
	    (ret = get_fixed(&b, REALM_ID_LEN, &r.realm_id, why,
	                     "truncated body: realm id must be 16 bytes")) < 0 ||
	    (ret = get_fixed(&b, REALM_VERSION_LEN, &r.version, why,
	                     "truncated body: registration version must be 16 bytes")) < 0 ||
	    (ret = get_ksf(&b, &r.ksf, why)) < 0 ||
	    (ret = get_shape(&b, &r.t, &r.n, &r.index, why)) < 0)
		return ret;
	if (sv_buf_get_u8(&b, &r.guess_limit) != 0)
		return sv_fail(why, "truncated body: guess limit missing", SV_ERR_INVALID);
	if ((ret = get_scalar(&b, &r.oprf_share, why,
	                      "truncated body: OPRF key share must be 32 bytes")) < 0 ||
	    (ret = get_commitments(&b, r.n, &r.commitments, why)) < 0 ||
	    (ret = get_fixed(&b, REALM_KEY_LEN, &r.unlock_check, why,
	                     "truncated body: unlock check must be 32 bytes")) < 0 ||
	    (ret = get_fixed(&b, REALM_KEY_LEN, &r.unlock_tag, why,
	                     "truncated body: unlock tag must be 32 bytes")) < 0 ||
	    (ret = get_scalar(&b, &r.enc_share, why,
	                      "truncated body: encryption-key share must be 32 bytes")) < 0 ||
	    (ret = get_fixed(&b, REALM_KEY_LEN, &r.share_mac, why,
	                     "truncated body: share MAC must be 32 bytes")) < 0 ||
	    (ret = get_ct(&b, &r.ct, &r.ct_len, why)) < 0 || (ret = end(&b, why)) < 0)
		return ret;
	/* the realm re-checks what the client claims: its share is the one it will prove */
	if (realm_commitment(want, r.oprf_share) < 0 ||
	    sodium_memcmp(want, r.commitments + (size_t)(r.index - 1) * REALM_ELEMENT_LEN,
	                  REALM_ELEMENT_LEN) != 0)
		return sv_fail(why, "the OPRF key share does not match its commitment",
		               SV_ERR_CRYPTO);
	*out = r;
	return 0;
}

/* ---- recover1, delete, status requests: 02 | uid ---- */

int realm_wire_uid_encode(struct sv_buf *out, const struct realm_uid_req *r)
{
	int ret;

	if ((ret = sv_buf_put_u8(out, REALM_WIRE_VERSION)) < 0)
		return ret;
	return put_uid(out, r->uid, r->uid_len);
}

int realm_wire_uid_decode(struct realm_uid_req *out, const uint8_t *in, size_t len,
                          const char **why)
{
	struct realm_uid_req r = {0};
	struct sv_buf b;
	int ret;

	memset(out, 0, sizeof *out);
	sv_buf_from(&b, in, len);
	if ((ret = get_version(&b, why)) < 0 || (ret = get_uid(&b, &r.uid, &r.uid_len, why)) < 0 ||
	    (ret = end(&b, why)) < 0)
		return ret;
	*out = r;
	return 0;
}

/* ---- recover1 reply ---- */

int realm_wire_recover1_reply_encode(struct sv_buf *out, const struct realm_recover1_reply *r)
{
	int ret;

	if ((ret = sv_buf_put(out, r->version, REALM_VERSION_LEN)) < 0 ||
	    (ret = put_ksf(out, &r->ksf)) < 0 || (ret = put_shape(out, r->t, r->n, r->index)) < 0 ||
	    (ret = sv_buf_put_u8(out, r->attempts_left)) < 0 ||
	    (ret = sv_buf_put(out, r->unlock_check, REALM_KEY_LEN)) < 0)
		return ret;
	return sv_buf_put(out, r->commitments, (size_t)r->n * REALM_ELEMENT_LEN);
}

int realm_wire_recover1_reply_decode(struct realm_recover1_reply *out, const uint8_t *in,
                                     size_t len, const char **why)
{
	struct realm_recover1_reply r = {0};
	struct sv_buf b;
	int ret;

	memset(out, 0, sizeof *out);
	sv_buf_from(&b, in, len);
	if ((ret = get_fixed(&b, REALM_VERSION_LEN, &r.version, why,
	                     "truncated reply: registration version must be 16 bytes")) < 0 ||
	    (ret = get_ksf(&b, &r.ksf, why)) < 0 ||
	    (ret = get_shape(&b, &r.t, &r.n, &r.index, why)) < 0)
		return ret;
	if (sv_buf_get_u8(&b, &r.attempts_left) != 0)
		return sv_fail(why, "truncated reply: attempts left missing", SV_ERR_INVALID);
	if ((ret = get_fixed(&b, REALM_KEY_LEN, &r.unlock_check, why,
	                     "truncated reply: unlock check must be 32 bytes")) < 0 ||
	    (ret = get_commitments(&b, r.n, &r.commitments, why)) < 0 || (ret = end(&b, why)) < 0)
		return ret;
	*out = r;
	return 0;
}

/* ---- recover2 ---- */

int realm_wire_recover2_encode(struct sv_buf *out, const struct realm_recover2_req *r)
{
	int ret;

	if ((ret = sv_buf_put_u8(out, REALM_WIRE_VERSION)) < 0 ||
	    (ret = put_uid(out, r->uid, r->uid_len)) < 0 ||
	    (ret = sv_buf_put(out, r->version, REALM_VERSION_LEN)) < 0)
		return ret;
	return sv_buf_put(out, r->blinded, REALM_ELEMENT_LEN);
}

int realm_wire_recover2_decode(struct realm_recover2_req *out, const uint8_t *in, size_t len,
                               const char **why)
{
	struct realm_recover2_req r = {0};
	struct sv_buf b;
	int ret;

	memset(out, 0, sizeof *out);
	sv_buf_from(&b, in, len);
	if ((ret = get_version(&b, why)) < 0 || (ret = get_uid(&b, &r.uid, &r.uid_len, why)) < 0 ||
	    (ret = get_fixed(&b, REALM_VERSION_LEN, &r.version, why,
	                     "truncated body: registration version must be 16 bytes")) < 0 ||
	    (ret = get_element(&b, &r.blinded, why,
	                       "truncated body: blinded element must be 32 bytes")) < 0 ||
	    (ret = end(&b, why)) < 0)
		return ret;
	*out = r;
	return 0;
}

int realm_wire_recover2_reply_encode(struct sv_buf *out, const struct realm_recover2_reply *r)
{
	int ret;

	if ((ret = sv_buf_put(out, r->session_id, REALM_SESSION_LEN)) < 0 ||
	    (ret = sv_buf_put(out, r->evaluated, REALM_ELEMENT_LEN)) < 0 ||
	    (ret = sv_buf_put(out, r->proof, REALM_PROOF_LEN)) < 0)
		return ret;
	return sv_buf_put_u8(out, r->attempts_left);
}

int realm_wire_recover2_reply_decode(struct realm_recover2_reply *out, const uint8_t *in,
                                     size_t len, const char **why)
{
	struct realm_recover2_reply r = {0};
	struct sv_buf b;
	int ret;

	memset(out, 0, sizeof *out);
	sv_buf_from(&b, in, len);
	if ((ret = get_fixed(&b, REALM_SESSION_LEN, &r.session_id, why,
	                     "truncated reply: session id must be 16 bytes")) < 0 ||
	    (ret = get_element(&b, &r.evaluated, why,
	                       "truncated reply: evaluated element must be 32 bytes")) < 0 ||
	    (ret = get_fixed(&b, REALM_PROOF_LEN, &r.proof, why,
	                     "truncated reply: proof must be 64 bytes")) < 0)
		return ret;
	if (sv_buf_get_u8(&b, &r.attempts_left) != 0)
		return sv_fail(why, "truncated reply: attempts left missing", SV_ERR_INVALID);
	if ((ret = end(&b, why)) < 0)
		return ret;
	*out = r;
	return 0;
}

/* ---- recover3 ---- */

int realm_wire_recover3_encode(struct sv_buf *out, const struct realm_recover3_req *r)
{
	int ret;

	if ((ret = sv_buf_put_u8(out, REALM_WIRE_VERSION)) < 0 ||
	    (ret = sv_buf_put(out, r->session_id, REALM_SESSION_LEN)) < 0)
		return ret;
	return sv_buf_put(out, r->tag_proof, REALM_KEY_LEN);
}

int realm_wire_recover3_decode(struct realm_recover3_req *out, const uint8_t *in, size_t len,
                               const char **why)
{
	struct realm_recover3_req r = {0};
	struct sv_buf b;
	int ret;

	memset(out, 0, sizeof *out);
	sv_buf_from(&b, in, len);
	if ((ret = get_version(&b, why)) < 0 ||
	    (ret = get_fixed(&b, REALM_SESSION_LEN, &r.session_id, why,
	                     "truncated body: session id must be 16 bytes")) < 0 ||
	    (ret = get_fixed(&b, REALM_KEY_LEN, &r.tag_proof, why,
	                     "truncated body: tag proof must be 32 bytes")) < 0 ||
	    (ret = end(&b, why)) < 0)
		return ret;
	*out = r;
	return 0;
}

int realm_wire_recover3_reply_encode(struct sv_buf *out, const struct realm_recover3_reply *r)
{
	int ret;

	if ((ret = sv_buf_put(out, r->release, REALM_RELEASE_LEN)) < 0)
		return ret;
	return put_ct(out, r->ct, r->ct_len);
}

int realm_wire_recover3_reply_decode(struct realm_recover3_reply *out, const uint8_t *in,
                                     size_t len, const char **why)
{
	struct realm_recover3_reply r = {0};
	struct sv_buf b;
	int ret;

	memset(out, 0, sizeof *out);
	sv_buf_from(&b, in, len);
	if ((ret = get_fixed(&b, REALM_RELEASE_LEN, &r.release, why,
	                     "truncated reply: sealed release must be 104 bytes")) < 0 ||
	    (ret = get_ct(&b, &r.ct, &r.ct_len, why)) < 0 || (ret = end(&b, why)) < 0)
		return ret;
	*out = r;
	return 0;
}

/* ---- status reply ---- */

static const uint8_t zero_version[REALM_VERSION_LEN];

int realm_wire_status_reply_encode(struct sv_buf *out, const struct realm_status_reply *r)
{
	int ret;

	if (r->state > REALM_STATE_DESTROYED ||
	    (r->state == REALM_STATE_REGISTERED && r->attempts_left > r->guess_limit))
		return SV_ERR_RANGE;
	if ((ret = sv_buf_put_u8(out, r->state)) < 0)
		return ret;
	if (r->state != REALM_STATE_REGISTERED) {
		uint8_t zeros[REALM_STATUS_REPLY_LEN - 1] = {0};

		return sv_buf_put(out, zeros, sizeof zeros);
	}
	if ((ret = sv_buf_put(out, r->version, REALM_VERSION_LEN)) < 0 ||
	    (ret = put_shape(out, r->t, r->n, r->index)) < 0 ||
	    (ret = sv_buf_put_u8(out, r->guess_limit)) < 0)
		return ret;
	return sv_buf_put_u8(out, r->attempts_left);
}

int realm_wire_status_reply_decode(struct realm_status_reply *out, const uint8_t *in, size_t len,
                                   const char **why)
{
	struct realm_status_reply r = {0};
	struct sv_buf b;
	int ret;

	memset(out, 0, sizeof *out);
	if (len != REALM_STATUS_REPLY_LEN)
		return sv_fail(why, "status reply must be 22 bytes", SV_ERR_INVALID);
	sv_buf_from(&b, in, len);
	if (sv_buf_get_u8(&b, &r.state) != 0 || r.state > REALM_STATE_DESTROYED)
		return sv_fail(why, "unknown record state", SV_ERR_RANGE);
	if (r.state != REALM_STATE_REGISTERED) {
		if (!sodium_is_zero(in + 1, len - 1))
			return sv_fail(why, "a record that is not registered has non-zero fields",
			               SV_ERR_INVALID);
		r.version = zero_version;
		*out = r;
		return 0;
	}
	if ((ret = get_fixed(&b, REALM_VERSION_LEN, &r.version, why,
	                     "truncated reply: registration version must be 16 bytes")) < 0 ||
	    (ret = get_shape(&b, &r.t, &r.n, &r.index, why)) < 0)
		return ret;
	if (sv_buf_get_u8(&b, &r.guess_limit) != 0 || sv_buf_get_u8(&b, &r.attempts_left) != 0)
		return sv_fail(why, "truncated reply: guess limit or attempts left missing",
		               SV_ERR_INVALID);
	if (r.attempts_left > r.guess_limit)
		return sv_fail(why, "more attempts left than the guess limit", SV_ERR_RANGE);
	if ((ret = end(&b, why)) < 0)
		return ret;
	*out = r;
	return 0;
}
