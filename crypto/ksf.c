/* KSF profiles: Identity and Argon2id (p = 1) through libsodium's crypto_pwhash. */
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "crypto/ksf.h"

int ksf_params_check(const struct ksf_params *p)
{
	if (p == NULL)
		return SV_ERR_INVALID;
	switch (p->type) {
	case KSF_IDENTITY: return p->t == 0 && p->m_kib == 0 ? 0 : SV_ERR_INVALID;
	case KSF_ARGON2ID:
		if (p->t < KSF_ARGON2ID_T_MIN || p->t > KSF_ARGON2ID_T_MAX)
			return SV_ERR_RANGE;
		if (p->m_kib < KSF_ARGON2ID_M_MIN || p->m_kib > KSF_ARGON2ID_M_MAX)
			return SV_ERR_RANGE;
		return 0;
	default: return SV_ERR_INVALID;
	}
}

int ksf_stretch(uint8_t out[KSF_IO_LEN], const uint8_t in[KSF_IO_LEN], const struct ksf_params *p)
{
	static const uint8_t salt[crypto_pwhash_argon2id_SALTBYTES]; /* RFC 9807: zeroes(16) */
	uint8_t tmp[KSF_IO_LEN];
	int ret;

	if ((ret = ksf_params_check(p)) < 0)
		return ret;
	if (p->type == KSF_IDENTITY) {
		memmove(out, in, KSF_IO_LEN);
		return 0;
	}
	if (crypto_pwhash_argon2id(tmp, sizeof tmp, (const char *)in, KSF_IO_LEN, salt, p->t,
	                           (size_t)p->m_kib * 1024u,
	                           crypto_pwhash_argon2id_ALG_ARGON2ID13) != 0) {
		ret = SV_ERR_NOMEM; /* parameters were checked: only memory can fail */
		goto out;
	}
	memcpy(out, tmp, sizeof tmp);
out:
	sodium_memzero(tmp, sizeof tmp);
	return ret;
}

static void put_u32(uint8_t *o, uint32_t v)
{
	o[0] = (uint8_t)(v >> 24);
	o[1] = (uint8_t)(v >> 16);
	o[2] = (uint8_t)(v >> 8);
	o[3] = (uint8_t)v;
}

int ksf_params_encode(uint8_t out[KSF_PARAMS_LEN], const struct ksf_params *p)
{
	int ret;

	if ((ret = ksf_params_check(p)) < 0)
		return ret;
	out[0] = p->type;
	put_u32(out + 1, p->t);
	put_u32(out + 5, p->m_kib);
	return 0;
}

int ksf_params_decode(struct ksf_params *p, const uint8_t *in, size_t len)
{
	struct ksf_params tmp;
	struct sv_buf b;
	int ret;

	if (in == NULL || len != KSF_PARAMS_LEN)
		return SV_ERR_INVALID;
	sv_buf_from(&b, in, len);
	if ((ret = sv_buf_get_u8(&b, &tmp.type)) < 0 || (ret = sv_buf_get_u32(&b, &tmp.t)) < 0 ||
	    (ret = sv_buf_get_u32(&b, &tmp.m_kib)) < 0 || (ret = sv_buf_expect_end(&b)) < 0)
		return ret;
	if ((ret = ksf_params_check(&tmp)) < 0)
		return ret;
	*p = tmp;
	return 0;
}
