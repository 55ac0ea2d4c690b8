/*
 * RFC 9497 OPRF, VOPRF and POPRF over ristretto255-SHA512, with batched DLEQ proofs (§2.2).
 * Group work is libsodium's; transcripts are hashed in parts without concatenation buffers.
 */
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "crypto/h2c.h"
#include "crypto/oprf.h"

#define SUITE_ID   "ristretto255-SHA512"
#define CTX_PREFIX "OPRFV1-"
#define CTX_LEN    (sizeof CTX_PREFIX - 1 + 2 + sizeof SUITE_ID - 1)
#define DST_MAX    (16 + CTX_LEN)
#define ELEN       OPRF_ELEMENT_LEN
#define SLEN       OPRF_SCALAR_LEN
#define LEN16(x)                                                                                   \
	{                                                                                          \
		(uint8_t)((x) >> 8), (uint8_t)(x)                                                  \
	}
#define PART(p, n) ((struct h2c_part){(const uint8_t *)(p), (n)})
#define LIT(s)     PART(s, sizeof(s) - 1)

/* Domain separation tag: prefix || "OPRFV1-" || I2OSP(mode, 1) || "-" || suite. */
static size_t make_dst(uint8_t dst[DST_MAX], const char *prefix, int mode)
{
	size_t n = strlen(prefix);

	memcpy(dst, prefix, n);
	memcpy(dst + n, CTX_PREFIX, sizeof CTX_PREFIX - 1);
	n += sizeof CTX_PREFIX - 1;
	dst[n++] = (uint8_t)mode;
	dst[n++] = '-';
	memcpy(dst + n, SUITE_ID, sizeof SUITE_ID - 1);
	return n + sizeof SUITE_ID - 1;
}

static int mode_check(int mode)
{
	return mode == OPRF_MODE_OPRF || mode == OPRF_MODE_VOPRF || mode == OPRF_MODE_POPRF
	           ? 0
	           : SV_ERR_INVALID;
}

static int hash_to_scalar(uint8_t out[SLEN], const struct h2c_part *parts, size_t nparts, int mode)
{
	uint8_t dst[DST_MAX];
	size_t dst_len = make_dst(dst, "HashToScalar-", mode);

	return h2c_hash_to_scalar(out, parts, nparts, dst, dst_len);
}

static int hash_to_group(uint8_t out[ELEN], const uint8_t *input, size_t input_len, int mode)
{
	uint8_t dst[DST_MAX];
	size_t dst_len = make_dst(dst, "HashToGroup-", mode);
	struct h2c_part part = PART(input, input_len);

	if (input_len > OPRF_INPUT_MAX)
		return SV_ERR_RANGE;
	return h2c_hash_to_group(out, &part, 1, dst, dst_len);
}

/* Variable-base multiplication; libsodium refuses bad points and an identity result. */
static int smul(uint8_t out[ELEN], const uint8_t k[SLEN], const uint8_t p[ELEN])
{
	/* Bit 255 must be clear (libsodium ignores it); libsodium refuses the rest of what is
	 * not canonical, and an identity input (its product is the identity). */
	if ((p[ELEN - 1] & 0x80) != 0)
		return SV_ERR_CRYPTO;
	return crypto_scalarmult_ristretto255(out, k, p) == 0 ? 0 : SV_ERR_CRYPTO;
}

static int smul_base(uint8_t out[ELEN], const uint8_t k[SLEN])
{
	return crypto_scalarmult_ristretto255_base(out, k) == 0 ? 0 : SV_ERR_CRYPTO;
}

int oprf_element_check(const uint8_t *in, size_t len)
{
	if (in == NULL || len != ELEN)
		return SV_ERR_INVALID;
	return h2c_element_check(in);
}

int oprf_scalar_check(const uint8_t *in, size_t len)
{
	if (in == NULL || len != SLEN)
		return SV_ERR_INVALID;
	return h2c_scalar_check(in);
}

int oprf_derive_keypair(uint8_t sk[SLEN], uint8_t *pk, int mode, const uint8_t seed[OPRF_SEED_LEN],
                        const uint8_t *info, size_t info_len)
{
	uint8_t dst[DST_MAX], ilen[2] = LEN16(info_len), ctr;
	size_t dst_len;
	int ret;

	if ((ret = mode_check(mode)) < 0)
		return ret;
	if (info_len > OPRF_INFO_MAX)
		return SV_ERR_RANGE;
	dst_len = make_dst(dst, "DeriveKeyPair", mode);
	for (ctr = 0;; ctr++) {
		struct h2c_part parts[] = {PART(seed, OPRF_SEED_LEN), PART(ilen, 2),
		                           PART(info, info_len), PART(&ctr, 1)};

		ret = h2c_hash_to_scalar(sk, parts, 4, dst, dst_len);
		if (ret < 0)
			goto out;
		if (!sodium_is_zero(sk, SLEN))
			break;
		if (ctr == 255) {
			ret = SV_ERR_CRYPTO; /* DeriveKeyPairError: never happens in practice */
			goto out;
		}
	}
	if (pk != NULL)
		ret = smul_base(pk, sk);
out:
	if (ret < 0)
		sodium_memzero(sk, SLEN);
	return ret;
}

int oprf_generate_keypair(uint8_t sk[SLEN], uint8_t *pk)
{
	int ret = 0;

	crypto_core_ristretto255_scalar_random(sk);
	if (pk != NULL && (ret = smul_base(pk, sk)) < 0)
		sodium_memzero(sk, SLEN);
	return ret;
}

int oprf_blind_det(uint8_t blinded[ELEN], int mode, const uint8_t blind[SLEN], const uint8_t *input,
                   size_t input_len)
{
	uint8_t elem[ELEN];
	int ret;

	if ((ret = mode_check(mode)) < 0)
		return ret;
	if ((ret = h2c_scalar_check(blind)) < 0)
		return ret;
	if ((ret = hash_to_group(elem, input, input_len, mode)) < 0)
		goto out;
	ret = smul(blinded, blind, elem);
out:
	sodium_memzero(elem, sizeof elem);
	return ret;
}

int oprf_blind(uint8_t blind[SLEN], uint8_t blinded[ELEN], int mode, const uint8_t *input,
               size_t input_len)
{
	int ret;

	crypto_core_ristretto255_scalar_random(blind);
	ret = oprf_blind_det(blinded, mode, blind, input, input_len);
	if (ret < 0)
		sodium_memzero(blind, SLEN);
	return ret;
}

int oprf_blind_evaluate(uint8_t evaluated[ELEN], const uint8_t sk[SLEN],
                        const uint8_t blinded[ELEN])
{
	/* smul decodes the point: non-canonical encodings and the identity (whose product is the
	 * identity) are refused there, so no separate check is needed on this hot path. */
	return smul(evaluated, sk, blinded);
}

/* Hash(I2OSP(len(input),2) || input || [I2OSP(len(info),2) || info ||] I2OSP(32,2) || N ||
 * "Finalize"), the info part only in POPRF. */
static void finalize_hash(uint8_t out[OPRF_OUTPUT_LEN], const uint8_t *input, size_t input_len,
                          const uint8_t *info, size_t info_len, int with_info,
                          const uint8_t unblinded[ELEN])
{
	crypto_hash_sha512_state st;
	uint8_t l_in[2] = LEN16(input_len), l_info[2] = LEN16(info_len), l_e[2] = LEN16(ELEN);

	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, l_in, 2);
	crypto_hash_sha512_update(&st, input, input_len);
	if (with_info) {
		crypto_hash_sha512_update(&st, l_info, 2);
		crypto_hash_sha512_update(&st, info, info_len);
	}
	crypto_hash_sha512_update(&st, l_e, 2);
	crypto_hash_sha512_update(&st, unblinded, ELEN);
	crypto_hash_sha512_update(&st, (const uint8_t *)"Finalize", 8);
	crypto_hash_sha512_final(&st, out);
	sodium_memzero(&st, sizeof st);
}

static int unblind_and_hash(uint8_t out[OPRF_OUTPUT_LEN], const uint8_t *input, size_t input_len,
                            const uint8_t *info, size_t info_len, int with_info,
                            const uint8_t blind[SLEN], const uint8_t evaluated[ELEN])
{
	uint8_t inv[SLEN], n[ELEN];
	int ret;

	if (input_len > OPRF_INPUT_MAX || info_len > OPRF_INFO_MAX)
		return SV_ERR_RANGE;
	if ((ret = h2c_scalar_check(blind)) < 0 || (ret = h2c_element_check(evaluated)) < 0)
		return ret;
	if (crypto_core_ristretto255_scalar_invert(inv, blind) != 0) {
		ret = SV_ERR_CRYPTO;
		goto out;
	}
	if ((ret = smul(n, inv, evaluated)) < 0)
		goto out;
	finalize_hash(out, input, input_len, info, info_len, with_info, n);
out:
	sodium_memzero(inv, sizeof inv);
	sodium_memzero(n, sizeof n);
	return ret;
}

int oprf_finalize(uint8_t out[OPRF_OUTPUT_LEN], const uint8_t *input, size_t input_len,
                  const uint8_t blind[SLEN], const uint8_t evaluated[ELEN])
{
	return unblind_and_hash(out, input, input_len, NULL, 0, 0, blind, evaluated);
}

int oprf_poprf_finalize(uint8_t out[OPRF_OUTPUT_LEN], const uint8_t *input, size_t input_len,
                        const uint8_t *info, size_t info_len, const uint8_t blind[SLEN],
                        const uint8_t evaluated[ELEN])
{
	return unblind_and_hash(out, input, input_len, info, info_len, 1, blind, evaluated);
}

/*
 * ComputeComposites (§2.2.1): M = sum d_i * C_i and, when k is NULL, Z = sum d_i * D_i
 * (verifier); with k, Z = k * M (prover's fast path). Every C_i and D_i is checked.
 */
static int composites(uint8_t m[ELEN], uint8_t z[ELEN], const uint8_t *k, const uint8_t b[ELEN],
                      const uint8_t *c, const uint8_t *d, size_t n, int mode)
{
	uint8_t dst[DST_MAX], seed[crypto_hash_sha512_BYTES], di[SLEN], t[ELEN];
	uint8_t l_e[2] = LEN16(ELEN), l_seed[2] = LEN16(sizeof seed), l_dst[2];
	crypto_hash_sha512_state st;
	size_t dst_len, i;
	int ret = 0;

	if (n == 0 || n > OPRF_BATCH_MAX)
		return SV_ERR_RANGE;
	dst_len = make_dst(dst, "Seed-", mode);
	l_dst[0] = (uint8_t)(dst_len >> 8);
	l_dst[1] = (uint8_t)dst_len;
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, l_e, 2);
	crypto_hash_sha512_update(&st, b, ELEN);
	crypto_hash_sha512_update(&st, l_dst, 2);
	crypto_hash_sha512_update(&st, dst, dst_len);
	crypto_hash_sha512_final(&st, seed);

	for (i = 0; i < n; i++) {
		const uint8_t *ci = c + i * ELEN, *dd = d + i * ELEN;
		uint8_t idx[2] = LEN16(i);
		struct h2c_part parts[] = {PART(l_seed, 2), PART(seed, sizeof seed), PART(idx, 2),
		                           PART(l_e, 2),    PART(ci, ELEN),          PART(l_e, 2),
		                           PART(dd, ELEN),  LIT("Composite")};

		if ((ret = h2c_element_check(ci)) < 0 || (ret = h2c_element_check(dd)) < 0)
			goto out;
		if ((ret = hash_to_scalar(di, parts, 8, mode)) < 0)
			goto out;
		if ((ret = smul(t, di, ci)) < 0)
			goto out;
		if (i == 0)
			memcpy(m, t, ELEN);
		else if (crypto_core_ristretto255_add(m, m, t) != 0) {
			ret = SV_ERR_CRYPTO;
			goto out;
		}
		if (k == NULL) {
			if ((ret = smul(t, di, dd)) < 0)
				goto out;
			if (i == 0)
				memcpy(z, t, ELEN);
			else if (crypto_core_ristretto255_add(z, z, t) != 0) {
				ret = SV_ERR_CRYPTO;
				goto out;
			}
		}
	}
	if (k != NULL)
		ret = smul(z, k, m);
out:
	sodium_memzero(&st, sizeof st);
	sodium_memzero(t, sizeof t);
	return ret;
}

/* c = HashToScalar(len|B | len|M | len|Z | len|t2 | len|t3 | "Challenge") */
static int challenge(uint8_t c[SLEN], const uint8_t b[ELEN], const uint8_t m[ELEN],
                     const uint8_t z[ELEN], const uint8_t t2[ELEN], const uint8_t t3[ELEN],
                     int mode)
{
	uint8_t l_e[2] = LEN16(ELEN);
	struct h2c_part parts[] = {PART(l_e, 2), PART(b, ELEN),  PART(l_e, 2),    PART(m, ELEN),
	                           PART(l_e, 2), PART(z, ELEN),  PART(l_e, 2),    PART(t2, ELEN),
	                           PART(l_e, 2), PART(t3, ELEN), LIT("Challenge")};

	return hash_to_scalar(c, parts, 11, mode);
}

/* GenerateProof(k, G, B, C, D, r) with A the generator; proof = c || s, s = r - c*k. */
static int proof_generate(uint8_t proof[OPRF_PROOF_LEN], const uint8_t k[SLEN],
                          const uint8_t b[ELEN], const uint8_t *c, const uint8_t *d, size_t n,
                          const uint8_t r[SLEN], int mode)
{
	uint8_t m[ELEN], z[ELEN], t2[ELEN], t3[ELEN], ck[SLEN];
	int ret;

	if ((ret = h2c_scalar_check(r)) < 0)
		return ret;
	if ((ret = composites(m, z, k, b, c, d, n, mode)) < 0)
		goto out;
	if ((ret = smul_base(t2, r)) < 0 || (ret = smul(t3, r, m)) < 0)
		goto out;
	if ((ret = challenge(proof, b, m, z, t2, t3, mode)) < 0)
		goto out;
	crypto_core_ristretto255_scalar_mul(ck, proof, k);
	crypto_core_ristretto255_scalar_sub(proof + SLEN, r, ck);
out:
	sodium_memzero(ck, sizeof ck);
	if (ret < 0)
		sodium_memzero(proof, OPRF_PROOF_LEN);
	return ret;
}

/* VerifyProof(G, B, C, D, proof): t2 = s*G + c*B, t3 = s*M + c*Z, recompute c. */
static int proof_verify(const uint8_t b[ELEN], const uint8_t *c, const uint8_t *d, size_t n,
                        const uint8_t proof[OPRF_PROOF_LEN], int mode)
{
	uint8_t m[ELEN], z[ELEN], t2[ELEN], t3[ELEN], u[ELEN], v[ELEN], expect[SLEN];
	const uint8_t *pc = proof, *ps = proof + SLEN;
	int ret;

	if ((ret = h2c_element_check(b)) < 0)
		return ret;
	/* c may be zero only with negligible probability; s likewise. Both must be canonical. */
	if (h2c_scalar_check(pc) < 0 || h2c_scalar_check(ps) < 0)
		return SV_ERR_AUTH;
	if ((ret = composites(m, z, NULL, b, c, d, n, mode)) < 0)
		return ret;
	if (smul_base(u, ps) < 0 || smul(v, pc, b) < 0 ||
	    crypto_core_ristretto255_add(t2, u, v) != 0)
		return SV_ERR_AUTH;
	if (smul(u, ps, m) < 0 || smul(v, pc, z) < 0 || crypto_core_ristretto255_add(t3, u, v) != 0)
		return SV_ERR_AUTH;
	if ((ret = challenge(expect, b, m, z, t2, t3, mode)) < 0)
		return ret;
	return sodium_memcmp(expect, pc, SLEN) == 0 ? 0 : SV_ERR_AUTH;
}

int oprf_voprf_evaluate_det(uint8_t *evaluated, uint8_t proof[OPRF_PROOF_LEN],
                            const uint8_t sk[SLEN], const uint8_t pk[ELEN], const uint8_t *blinded,
                            size_t n, const uint8_t r[SLEN])
{
	size_t i;
	int ret;

	if (n == 0 || n > OPRF_BATCH_MAX)
		return SV_ERR_RANGE;
	for (i = 0; i < n; i++)
		if ((ret = oprf_blind_evaluate(evaluated + i * ELEN, sk, blinded + i * ELEN)) < 0)
			goto out;
	ret = proof_generate(proof, sk, pk, blinded, evaluated, n, r, OPRF_MODE_VOPRF);
out:
	if (ret < 0)
		sodium_memzero(evaluated, n * ELEN);
	return ret;
}

int oprf_voprf_evaluate(uint8_t *evaluated, uint8_t proof[OPRF_PROOF_LEN], const uint8_t sk[SLEN],
                        const uint8_t pk[ELEN], const uint8_t *blinded, size_t n)
{
	uint8_t r[SLEN];
	int ret;

	crypto_core_ristretto255_scalar_random(r);
	ret = oprf_voprf_evaluate_det(evaluated, proof, sk, pk, blinded, n, r);
	sodium_memzero(r, sizeof r);
	return ret;
}

int oprf_voprf_verify(const uint8_t pk[ELEN], const uint8_t *blinded, const uint8_t *evaluated,
                      size_t n, const uint8_t proof[OPRF_PROOF_LEN])
{
	return proof_verify(pk, blinded, evaluated, n, proof, OPRF_MODE_VOPRF);
}

/* m = HashToScalar("Info" || I2OSP(len(info), 2) || info) in POPRF mode. */
static int info_scalar(uint8_t m[SLEN], const uint8_t *info, size_t info_len)
{
	uint8_t l_info[2] = LEN16(info_len);
	struct h2c_part parts[] = {LIT("Info"), PART(l_info, 2), PART(info, info_len)};

	if (info_len > OPRF_INFO_MAX)
		return SV_ERR_RANGE;
	return hash_to_scalar(m, parts, 3, OPRF_MODE_POPRF);
}

int oprf_poprf_tweak(uint8_t tweaked[ELEN], const uint8_t pk[ELEN], const uint8_t *info,
                     size_t info_len)
{
	uint8_t m[SLEN], t[ELEN];
	int ret;

	if ((ret = h2c_element_check(pk)) < 0)
		return ret;
	if ((ret = info_scalar(m, info, info_len)) < 0)
		return ret;
	if ((ret = smul_base(t, m)) < 0)
		return ret;
	if (crypto_core_ristretto255_add(tweaked, t, pk) != 0 || sodium_is_zero(tweaked, ELEN))
		return SV_ERR_CRYPTO; /* the RFC's InvalidInputError */
	return 0;
}

/* t = sk + m, refusing t == 0 (InverseError). */
static int poprf_key(uint8_t t[SLEN], const uint8_t sk[SLEN], const uint8_t *info, size_t info_len)
{
	uint8_t m[SLEN];
	int ret;

	if ((ret = info_scalar(m, info, info_len)) < 0)
		return ret;
	crypto_core_ristretto255_scalar_add(t, sk, m);
	if (sodium_is_zero(t, SLEN))
		return SV_ERR_CRYPTO;
	return 0;
}

int oprf_poprf_evaluate_det(uint8_t *evaluated, uint8_t proof[OPRF_PROOF_LEN],
                            const uint8_t sk[SLEN], const uint8_t *blinded, size_t n,
                            const uint8_t *info, size_t info_len, const uint8_t r[SLEN])
{
	uint8_t t[SLEN], tinv[SLEN], tweaked[ELEN];
	size_t i;
	int ret;

	if (n == 0 || n > OPRF_BATCH_MAX)
		return SV_ERR_RANGE;
	if ((ret = poprf_key(t, sk, info, info_len)) < 0)
		goto out;
	if (crypto_core_ristretto255_scalar_invert(tinv, t) != 0) {
		ret = SV_ERR_CRYPTO;
		goto out;
	}
	if ((ret = smul_base(tweaked, t)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if ((ret = h2c_element_check(blinded + i * ELEN)) < 0)
			goto out;
		if ((ret = smul(evaluated + i * ELEN, tinv, blinded + i * ELEN)) < 0)
			goto out;
	}
	/* D = t * C with C the evaluated elements: the proof runs "backwards" (§3.3.3). */
	ret = proof_generate(proof, t, tweaked, evaluated, blinded, n, r, OPRF_MODE_POPRF);
out:
	sodium_memzero(t, sizeof t);
	sodium_memzero(tinv, sizeof tinv);
	if (ret < 0)
		sodium_memzero(evaluated, n * ELEN);
	return ret;
}

int oprf_poprf_evaluate(uint8_t *evaluated, uint8_t proof[OPRF_PROOF_LEN], const uint8_t sk[SLEN],
                        const uint8_t *blinded, size_t n, const uint8_t *info, size_t info_len)
{
	uint8_t r[SLEN];
	int ret;

	crypto_core_ristretto255_scalar_random(r);
	ret = oprf_poprf_evaluate_det(evaluated, proof, sk, blinded, n, info, info_len, r);
	sodium_memzero(r, sizeof r);
	return ret;
}

int oprf_poprf_verify(const uint8_t tweaked[ELEN], const uint8_t *blinded, const uint8_t *evaluated,
                      size_t n, const uint8_t proof[OPRF_PROOF_LEN])
{
	return proof_verify(tweaked, evaluated, blinded, n, proof, OPRF_MODE_POPRF);
}

int oprf_evaluate(uint8_t out[OPRF_OUTPUT_LEN], int mode, const uint8_t sk[SLEN],
                  const uint8_t *input, size_t input_len, const uint8_t *info, size_t info_len)
{
	uint8_t elem[ELEN], issued[ELEN], t[SLEN];
	int ret;

	if ((ret = mode_check(mode)) < 0)
		return ret;
	if ((ret = hash_to_group(elem, input, input_len, mode)) < 0)
		goto out;
	if (mode == OPRF_MODE_POPRF) {
		if ((ret = poprf_key(issued, sk, info, info_len)) < 0)
			goto out;
		if (crypto_core_ristretto255_scalar_invert(t, issued) != 0) {
			ret = SV_ERR_CRYPTO;
			goto out;
		}
	} else {
		memcpy(t, sk, SLEN);
	}
	if ((ret = smul(issued, t, elem)) < 0)
		goto out;
	finalize_hash(out, input, input_len, info, info_len, mode == OPRF_MODE_POPRF, issued);
out:
	sodium_memzero(elem, sizeof elem);
	sodium_memzero(issued, sizeof issued);
	sodium_memzero(t, sizeof t);
	return ret;
}
