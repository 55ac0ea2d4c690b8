/* expand_message_xmd(SHA-512), HashToGroup and HashToScalar for ristretto255. */
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "crypto/h2c.h"

#define XMD_B 64  /* SHA-512 output bytes */
#define XMD_S 128 /* SHA-512 block bytes */

static const char oversize_prefix[] = "H2C-OVERSIZE-DST-";

int h2c_expand_xmd_sha512(uint8_t *out, size_t out_len, const struct h2c_part *parts, size_t nparts,
                          const uint8_t *dst, size_t dst_len)
{
	static const uint8_t z_pad[XMD_S];
	crypto_hash_sha512_state st;
	uint8_t b0[XMD_B], bi[XMD_B], dst_hash[XMD_B], lib[3], dlen;
	size_t ell, i, j, n;
	int ret = 0;

	if (out_len == 0 || out_len > H2C_XMD_MAX)
		return SV_ERR_RANGE;
	if (dst_len > H2C_DST_MAX) {
		/* RFC 9380 §5.3.3: DST = H("H2C-OVERSIZE-DST-" || DST) */
		crypto_hash_sha512_init(&st);
		crypto_hash_sha512_update(&st, (const uint8_t *)oversize_prefix,
		                          sizeof oversize_prefix - 1);
		crypto_hash_sha512_update(&st, dst, dst_len);
		crypto_hash_sha512_final(&st, dst_hash);
		dst = dst_hash;
		dst_len = sizeof dst_hash;
	}
	dlen = (uint8_t)dst_len;
	ell = (out_len + XMD_B - 1) / XMD_B;

	/* b_0 = H(Z_pad || msg || I2OSP(len, 2) || I2OSP(0, 1) || DST || I2OSP(len(DST), 1)) */
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, z_pad, sizeof z_pad);
	for (i = 0; i < nparts; i++)
		if (parts[i].n > 0)
			crypto_hash_sha512_update(&st, parts[i].p, parts[i].n);
	lib[0] = (uint8_t)(out_len >> 8);
	lib[1] = (uint8_t)out_len;
	lib[2] = 0;
	crypto_hash_sha512_update(&st, lib, 3);
	crypto_hash_sha512_update(&st, dst, dst_len);
	crypto_hash_sha512_update(&st, &dlen, 1);
	crypto_hash_sha512_final(&st, b0);

	/* b_1 = H(b_0 || 1 || DST'); b_i = H((b_0 XOR b_{i-1}) || i || DST') */
	memcpy(bi, b0, sizeof bi);
	for (i = 1; i <= ell; i++) {
		uint8_t ctr = (uint8_t)i;

		if (i > 1)
			for (j = 0; j < XMD_B; j++)
				bi[j] ^= b0[j];
		crypto_hash_sha512_init(&st);
		crypto_hash_sha512_update(&st, bi, sizeof bi);
		crypto_hash_sha512_update(&st, &ctr, 1);
		crypto_hash_sha512_update(&st, dst, dst_len);
		crypto_hash_sha512_update(&st, &dlen, 1);
		crypto_hash_sha512_final(&st, bi);
		n = out_len - (i - 1) * XMD_B;
		if (n > XMD_B)
			n = XMD_B;
		memcpy(out + (i - 1) * XMD_B, bi, n);
	}
	sodium_memzero(&st, sizeof st);
	sodium_memzero(b0, sizeof b0);
	sodium_memzero(bi, sizeof bi);
	return ret;
}

int h2c_hash_to_group(uint8_t out[H2C_ELEMENT_LEN], const struct h2c_part *parts, size_t nparts,
                      const uint8_t *dst, size_t dst_len)
{
	uint8_t u[64];
	int ret;

	ret = h2c_expand_xmd_sha512(u, sizeof u, parts, nparts, dst, dst_len);
	if (ret < 0)
		goto out;
	crypto_core_ristretto255_from_hash(out, u);
	/* The map hits the identity with negligible probability; refuse it rather than use it. */
	if (sodium_is_zero(out, H2C_ELEMENT_LEN))
		ret = SV_ERR_CRYPTO;
out:
	sodium_memzero(u, sizeof u);
	return ret;
}

int h2c_hash_to_scalar(uint8_t out[H2C_SCALAR_LEN], const struct h2c_part *parts, size_t nparts,
                       const uint8_t *dst, size_t dst_len)
{
	uint8_t u[64];
	int ret;

	ret = h2c_expand_xmd_sha512(u, sizeof u, parts, nparts, dst, dst_len);
	if (ret == 0)
		crypto_core_ristretto255_scalar_reduce(out, u);
	sodium_memzero(u, sizeof u);
	return ret;
}

int h2c_element_check(const uint8_t in[H2C_ELEMENT_LEN])
{
	/* libsodium 1.0.18 ignores bit 255 when decoding, so an encoding with it set would be
	 * accepted as a second spelling of a valid element: RFC 9496 requires rejecting it. */
	if ((in[H2C_ELEMENT_LEN - 1] & 0x80) != 0 || sodium_is_zero(in, H2C_ELEMENT_LEN) ||
	    !crypto_core_ristretto255_is_valid_point(in))
		return SV_ERR_CRYPTO;
	return 0;
}

/* L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
static const uint8_t group_order[H2C_SCALAR_LEN] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

int h2c_scalar_check(const uint8_t in[H2C_SCALAR_LEN])
{
	/* sodium_compare is constant time over little-endian numbers: -1 if in < L. */
	if (sodium_compare(in, group_order, H2C_SCALAR_LEN) != -1 ||
	    sodium_is_zero(in, H2C_SCALAR_LEN))
		return SV_ERR_CRYPTO;
	return 0;
}
