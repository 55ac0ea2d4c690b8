/*
 * Threshold realms: Shamir sharing over ristretto255 scalars, per-realm RFC 9497 evaluations
 * with DLEQ proofs, Lagrange combination in the exponent, and the derivations of docs/realms.md.
 * Group and AEAD work is libsodium's; proofs are crypto/oprf.c's VOPRF proofs.
 */
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "crypto/h2c.h"
#include "crypto/hkdf.h"
#include "crypto/oprf.h"
#include "crypto/realm.h"

#define SLEN REALM_SCALAR_LEN
#define ELEN REALM_ELEMENT_LEN

/* Labels (docs/realms.md, "Derivations"); every one starts with the protocol name. */
#define L_KSF     "sealvault-realms-v1 ksf input"
#define L_ACCESS  "sealvault-realms-v1 access key"
#define L_SEED    "sealvault-realms-v1 encryption key seed"
#define L_REG     "sealvault-realms-v1 registration"
#define L_CHECK   "sealvault-realms-v1 unlock check"
#define L_TAG     "sealvault-realms-v1 unlock tag"
#define L_SHARE   "sealvault-realms-v1 share mac"
#define L_SECRET  "sealvault-realms-v1 secret key"
#define L_PROOF   "sealvault-realms-v1 tag proof"
#define L_RELEASE "sealvault-realms-v1 release"
#define LABEL(s)  (const uint8_t *)(s), sizeof(s) - 1

static int tn_check(unsigned t, unsigned n)
{
	return t >= 1 && t <= n && n <= REALM_MAX ? 0 : SV_ERR_RANGE;
}

static void scalar_from_index(uint8_t out[SLEN], unsigned index)
{
	memset(out, 0, SLEN);
	out[0] = (uint8_t)index;
}

/* ---- Shamir ---- */

int realm_shamir_split_det(struct realm_share *shares, const uint8_t secret[SLEN], unsigned t,
                           unsigned n, const uint8_t *coeffs)
{
	uint8_t x[SLEN], acc[SLEN];
	unsigned i, j;
	int ret;

	if ((ret = tn_check(t, n)) < 0)
		return ret;
	/* The secret may be zero (a share of nothing is still a share), but must be reduced. */
	if (!sodium_is_zero(secret, SLEN) && h2c_scalar_check(secret) < 0)
		return SV_ERR_CRYPTO;
	for (j = 0; j + 1 < t; j++)
		if (!sodium_is_zero(coeffs + j * SLEN, SLEN) &&
		    h2c_scalar_check(coeffs + j * SLEN) < 0)
			return SV_ERR_CRYPTO;
	for (i = 1; i <= n; i++) {
		/* Horner: acc = (...(c_{t-1} x + c_{t-2}) x + ...) x + secret */
		scalar_from_index(x, i);
		memset(acc, 0, SLEN);
		for (j = t - 1; j >= 1; j--) {
			crypto_core_ristretto255_scalar_add(acc, acc, coeffs + (j - 1) * SLEN);
			crypto_core_ristretto255_scalar_mul(acc, acc, x);
		}
		crypto_core_ristretto255_scalar_add(acc, acc, secret);
		shares[i - 1].index = (uint8_t)i;
		memcpy(shares[i - 1].value, acc, SLEN);
	}
	sodium_memzero(acc, sizeof acc);
	return 0;
}

int realm_shamir_split(struct realm_share *shares, const uint8_t secret[SLEN], unsigned t,
                       unsigned n)
{
	uint8_t *coeffs;
	unsigned j;
	int ret;

	if ((ret = tn_check(t, n)) < 0)
		return ret;
	if ((coeffs = sodium_malloc(REALM_MAX * SLEN)) == NULL)
		return SV_ERR_NOMEM;
	for (j = 0; j + 1 < t; j++)
		crypto_core_ristretto255_scalar_random(coeffs + j * SLEN);
	ret = realm_shamir_split_det(shares, secret, t, n, coeffs);
	sodium_free(coeffs); /* wipes */
	return ret;
}

int realm_lagrange(uint8_t lambda[SLEN], const uint8_t *indices, size_t count, size_t which)
{
	uint8_t num[SLEN], den[SLEN], xi[SLEN], xj[SLEN], d[SLEN];
	size_t i, j;

	if (count == 0 || count > REALM_MAX || which >= count)
		return SV_ERR_RANGE;
	for (i = 0; i < count; i++) {
		if (indices[i] == 0 || indices[i] > REALM_MAX)
			return SV_ERR_INVALID;
		for (j = 0; j < i; j++)
			if (indices[i] == indices[j])
				return SV_ERR_INVALID;
	}
	scalar_from_index(num, 1);
	scalar_from_index(den, 1);
	scalar_from_index(xi, indices[which]);
	for (j = 0; j < count; j++) {
		if (j == which)
			continue;
		scalar_from_index(xj, indices[j]);
		crypto_core_ristretto255_scalar_mul(num, num, xj);
		crypto_core_ristretto255_scalar_sub(d, xj, xi);
		crypto_core_ristretto255_scalar_mul(den, den, d);
	}
	/* den is a product of non-zero differences of small integers: never zero */
	if (crypto_core_ristretto255_scalar_invert(d, den) != 0)
		return SV_ERR_INTERNAL;
	crypto_core_ristretto255_scalar_mul(lambda, num, d);
	return 0;
}

static int indices_of(uint8_t idx[REALM_MAX], const struct realm_share *shares, size_t count)
{
	if (count == 0 || count > REALM_MAX)
		return SV_ERR_RANGE;
	for (size_t i = 0; i < count; i++)
		idx[i] = shares[i].index;
	return 0;
}

int realm_shamir_combine(uint8_t secret[SLEN], const struct realm_share *shares, size_t count)
{
	uint8_t idx[REALM_MAX], lambda[SLEN], term[SLEN], acc[SLEN] = {0};
	size_t i;
	int ret;

	if ((ret = indices_of(idx, shares, count)) < 0)
		return ret;
	for (i = 0; i < count; i++) {
		if ((ret = realm_lagrange(lambda, idx, count, i)) < 0)
			goto out;
		crypto_core_ristretto255_scalar_mul(term, lambda, shares[i].value);
		crypto_core_ristretto255_scalar_add(acc, acc, term);
	}
	memcpy(secret, acc, SLEN);
out:
	sodium_memzero(term, sizeof term);
	sodium_memzero(acc, sizeof acc);
	return ret;
}

/* ---- The threshold OPRF ---- */

int realm_commitment(uint8_t commitment[ELEN], const uint8_t share[SLEN])
{
	if (h2c_scalar_check(share) < 0)
		return SV_ERR_CRYPTO;
	return crypto_scalarmult_ristretto255_base(commitment, share) == 0 ? 0 : SV_ERR_CRYPTO;
}

int realm_evaluate_det(uint8_t evaluated[ELEN], uint8_t proof[REALM_PROOF_LEN],
                       const uint8_t share[SLEN], const uint8_t commitment[ELEN],
                       const uint8_t blinded[ELEN], const uint8_t r[SLEN])
{
	int ret;

	if ((ret = oprf_element_check(blinded, ELEN)) < 0)
		return ret;
	return oprf_voprf_evaluate_det(evaluated, proof, share, commitment, blinded, 1, r);
}

int realm_evaluate(uint8_t evaluated[ELEN], uint8_t proof[REALM_PROOF_LEN],
                   const uint8_t share[SLEN], const uint8_t commitment[ELEN],
                   const uint8_t blinded[ELEN])
{
	uint8_t r[SLEN];
	int ret;

	crypto_core_ristretto255_scalar_random(r);
	ret = realm_evaluate_det(evaluated, proof, share, commitment, blinded, r);
	sodium_memzero(r, sizeof r);
	return ret;
}

int realm_verify(const struct realm_evaluation *ev, const uint8_t blinded[ELEN])
{
	int ret;

	if ((ret = oprf_element_check(ev->commitment, ELEN)) < 0 ||
	    (ret = oprf_element_check(ev->evaluated, ELEN)) < 0)
		return ret;
	return oprf_voprf_verify(ev->commitment, blinded, ev->evaluated, 1, ev->proof);
}

int realm_combine(uint8_t combined[ELEN], size_t *bad, const uint8_t blinded[ELEN],
                  const struct realm_evaluation *evs, size_t count)
{
	uint8_t idx[REALM_MAX], lambda[SLEN], term[ELEN], acc[ELEN];
	size_t i;
	int ret;

	*bad = count;
	if (count == 0 || count > REALM_MAX)
		return SV_ERR_RANGE;
	if ((ret = oprf_element_check(blinded, ELEN)) < 0)
		return ret;
	for (i = 0; i < count; i++)
		idx[i] = evs[i].index;
	if ((ret = realm_lagrange(lambda, idx, count, 0)) < 0) /* checks the indices */
		return ret;
	for (i = 0; i < count; i++)
		if ((ret = realm_verify(&evs[i], blinded)) < 0) {
			*bad = i;
			return ret;
		}
	for (i = 0; i < count; i++) {
		if ((ret = realm_lagrange(lambda, idx, count, i)) < 0)
			return ret;
		/* lambda is public; a product or sum that is the identity means the evaluations
		 * do not come from one key: refuse rather than hash the identity */
		if (crypto_scalarmult_ristretto255(term, lambda, evs[i].evaluated) != 0)
			return SV_ERR_CRYPTO;
		if (i == 0)
			memcpy(acc, term, ELEN);
		else if (crypto_core_ristretto255_add(acc, acc, term) != 0)
			return SV_ERR_CRYPTO;
	}
	if (h2c_element_check(acc) < 0)
		return SV_ERR_CRYPTO;
	memcpy(combined, acc, ELEN);
	return 0;
}

/* ---- Derivations ---- */

int realm_stretch(uint8_t access_key[REALM_ACCESS_LEN], uint8_t enc_seed[REALM_SEED_LEN],
                  const uint8_t *password, size_t password_len,
                  const uint8_t version[REALM_VERSION_LEN], const uint8_t *uid, size_t uid_len,
                  const struct ksf_params *ksf)
{
	uint8_t prk[HKDF_SHA512_LEN], buf[KSF_IO_LEN], info[2 + REALM_UID_MAX];
	int ret;

	if (password_len > REALM_PASSWORD_MAX || uid_len == 0 || uid_len > REALM_UID_MAX)
		return SV_ERR_RANGE;
	if ((ret = ksf_params_check(ksf)) < 0)
		return ret;
	info[0] = 0;
	info[1] = (uint8_t)uid_len;
	memcpy(info + 2, uid, uid_len);
	hkdf_sha512_extract(prk, version, REALM_VERSION_LEN, password, password_len);
	if ((ret = hkdf_sha512_expand(buf, sizeof buf, prk, sizeof prk, LABEL(L_KSF), info,
	                              2 + uid_len)) < 0 ||
	    (ret = ksf_stretch(buf, buf, ksf)) < 0 ||
	    (ret = hkdf_sha512_expand(access_key, REALM_ACCESS_LEN, buf, sizeof buf,
	                              LABEL(L_ACCESS), NULL, 0)) < 0 ||
	    (ret = hkdf_sha512_expand(enc_seed, REALM_SEED_LEN, buf, sizeof buf, LABEL(L_SEED),
	                              NULL, 0)) < 0) {
		sodium_memzero(access_key, REALM_ACCESS_LEN);
		sodium_memzero(enc_seed, REALM_SEED_LEN);
	}
	sodium_memzero(prk, sizeof prk);
	sodium_memzero(buf, sizeof buf);
	return ret;
}

int realm_registration_hash(uint8_t out[REALM_HASH_LEN], const uint8_t version[REALM_VERSION_LEN],
                            const struct ksf_params *ksf, unsigned t, unsigned n,
                            const uint8_t *uid, size_t uid_len, const uint8_t *commitments)
{
	crypto_hash_sha512_state st;
	uint8_t prof[KSF_PARAMS_LEN], tn[2] = {(uint8_t)t, (uint8_t)n}, ulen[2];
	int ret;

	if ((ret = tn_check(t, n)) < 0)
		return ret;
	if (uid_len == 0 || uid_len > REALM_UID_MAX)
		return SV_ERR_RANGE;
	if ((ret = ksf_params_encode(prof, ksf)) < 0)
		return ret;
	for (unsigned i = 0; i < n; i++)
		if ((ret = oprf_element_check(commitments + i * ELEN, ELEN)) < 0)
			return ret;
	ulen[0] = 0;
	ulen[1] = (uint8_t)uid_len;
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, LABEL(L_REG));
	crypto_hash_sha512_update(&st, version, REALM_VERSION_LEN);
	crypto_hash_sha512_update(&st, prof, sizeof prof);
	crypto_hash_sha512_update(&st, tn, 2);
	crypto_hash_sha512_update(&st, ulen, 2);
	crypto_hash_sha512_update(&st, uid, uid_len);
	crypto_hash_sha512_update(&st, commitments, (size_t)n * ELEN);
	crypto_hash_sha512_final(&st, out);
	return 0;
}

void realm_unlock_prk(uint8_t prk[REALM_PRK_LEN], const uint8_t oprf_output[REALM_OUTPUT_LEN],
                      const uint8_t reg_hash[REALM_HASH_LEN])
{
	hkdf_sha512_extract(prk, reg_hash, REALM_HASH_LEN, oprf_output, REALM_OUTPUT_LEN);
}

int realm_unlock_check(uint8_t out[REALM_KEY_LEN], const uint8_t prk[REALM_PRK_LEN])
{
	return hkdf_sha512_expand(out, REALM_KEY_LEN, prk, REALM_PRK_LEN, LABEL(L_CHECK), NULL, 0);
}

static int index_check(unsigned index)
{
	return index >= 1 && index <= REALM_MAX ? 0 : SV_ERR_RANGE;
}

int realm_unlock_tag(uint8_t tag[REALM_KEY_LEN], const uint8_t prk[REALM_PRK_LEN],
                     const uint8_t realm_id[REALM_ID_LEN], unsigned index)
{
	uint8_t info[REALM_ID_LEN + 1];
	int ret;

	if ((ret = index_check(index)) < 0)
		return ret;
	memcpy(info, realm_id, REALM_ID_LEN);
	info[REALM_ID_LEN] = (uint8_t)index;
	return hkdf_sha512_expand(tag, REALM_KEY_LEN, prk, REALM_PRK_LEN, LABEL(L_TAG), info,
	                          sizeof info);
}

int realm_share_mac(uint8_t mac[REALM_KEY_LEN], const uint8_t prk[REALM_PRK_LEN],
                    const uint8_t realm_id[REALM_ID_LEN], unsigned index, const uint8_t share[SLEN])
{
	uint8_t msg[sizeof L_SHARE - 1 + REALM_ID_LEN + 1], full[HKDF_SHA512_LEN];
	int ret;

	if ((ret = index_check(index)) < 0)
		return ret;
	memcpy(msg, L_SHARE, sizeof L_SHARE - 1);
	memcpy(msg + sizeof L_SHARE - 1, realm_id, REALM_ID_LEN);
	msg[sizeof msg - 1] = (uint8_t)index;
	hkdf_hmac_sha512(full, prk, REALM_PRK_LEN, msg, sizeof msg, share, SLEN);
	memcpy(mac, full, REALM_KEY_LEN);
	sodium_memzero(full, sizeof full);
	return 0;
}

int realm_secret_key(uint8_t key[REALM_KEY_LEN], const uint8_t enc_seed[REALM_SEED_LEN],
                     const uint8_t enc_scalar[SLEN], const uint8_t reg_hash[REALM_HASH_LEN])
{
	uint8_t ikm[REALM_SEED_LEN + SLEN], prk[HKDF_SHA512_LEN];
	int ret;

	memcpy(ikm, enc_seed, REALM_SEED_LEN);
	memcpy(ikm + REALM_SEED_LEN, enc_scalar, SLEN);
	hkdf_sha512_extract(prk, reg_hash, REALM_HASH_LEN, ikm, sizeof ikm);
	ret = hkdf_sha512_expand(key, REALM_KEY_LEN, prk, sizeof prk, LABEL(L_SECRET), NULL, 0);
	sodium_memzero(ikm, sizeof ikm);
	sodium_memzero(prk, sizeof prk);
	return ret;
}

int realm_secret_seal_det(uint8_t *out, const uint8_t key[REALM_KEY_LEN],
                          const uint8_t reg_hash[REALM_HASH_LEN], const uint8_t *secret,
                          size_t secret_len, const uint8_t nonce[REALM_NONCE_LEN])
{
	if (secret_len == 0 || secret_len > REALM_SECRET_MAX)
		return SV_ERR_RANGE;
	memmove(out, nonce, REALM_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + REALM_NONCE_LEN, NULL, secret, secret_len,
	                                           reg_hash, REALM_HASH_LEN, NULL, out, key);
	return 0;
}

int realm_secret_seal(uint8_t *out, const uint8_t key[REALM_KEY_LEN],
                      const uint8_t reg_hash[REALM_HASH_LEN], const uint8_t *secret,
                      size_t secret_len)
{
	uint8_t nonce[REALM_NONCE_LEN];

	randombytes_buf(nonce, sizeof nonce);
	return realm_secret_seal_det(out, key, reg_hash, secret, secret_len, nonce);
}

int realm_secret_open(uint8_t *secret, size_t *secret_len, const uint8_t key[REALM_KEY_LEN],
                      const uint8_t reg_hash[REALM_HASH_LEN], const uint8_t *in, size_t in_len)
{
	unsigned long long n;

	if (in_len <= REALM_SEALED_LEN(0) || in_len > REALM_SEALED_LEN(REALM_SECRET_MAX))
		return SV_ERR_RANGE;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(secret, &n, NULL, in + REALM_NONCE_LEN,
	                                               in_len - REALM_NONCE_LEN, reg_hash,
	                                               REALM_HASH_LEN, in, key) != 0) {
		sodium_memzero(secret, in_len - REALM_SEALED_LEN(0));
		return SV_ERR_AUTH;
	}
	*secret_len = (size_t)n;
	return 0;
}

/* ---- recover3: tag proof and release ---- */

int realm_tag_proof(uint8_t proof[REALM_KEY_LEN], const uint8_t tag[REALM_KEY_LEN],
                    const uint8_t session_id[REALM_SESSION_LEN])
{
	uint8_t full[HKDF_SHA512_LEN];

	hkdf_hmac_sha512(full, tag, REALM_KEY_LEN, LABEL(L_PROOF), session_id, REALM_SESSION_LEN);
	memcpy(proof, full, REALM_KEY_LEN);
	sodium_memzero(full, sizeof full);
	return 0;
}

int realm_tag_check(const uint8_t tag[REALM_KEY_LEN], const uint8_t session_id[REALM_SESSION_LEN],
                    const uint8_t proof[REALM_KEY_LEN])
{
	uint8_t want[REALM_KEY_LEN];
	int ret;

	if ((ret = realm_tag_proof(want, tag, session_id)) < 0)
		return ret;
	ret = sodium_memcmp(want, proof, REALM_KEY_LEN) == 0 ? 0 : SV_ERR_AUTH;
	sodium_memzero(want, sizeof want);
	return ret;
}

static int release_key(uint8_t key[REALM_KEY_LEN], const uint8_t tag[REALM_KEY_LEN],
                       const uint8_t session_id[REALM_SESSION_LEN])
{
	return hkdf_sha512_expand(key, REALM_KEY_LEN, tag, REALM_KEY_LEN, LABEL(L_RELEASE),
	                          session_id, REALM_SESSION_LEN);
}

int realm_release_seal_det(uint8_t out[REALM_RELEASE_LEN], const uint8_t tag[REALM_KEY_LEN],
                           const uint8_t session_id[REALM_SESSION_LEN], const uint8_t share[SLEN],
                           const uint8_t share_mac[REALM_KEY_LEN],
                           const uint8_t nonce[REALM_NONCE_LEN])
{
	uint8_t key[REALM_KEY_LEN], pt[SLEN + REALM_KEY_LEN];
	int ret;

	if ((ret = release_key(key, tag, session_id)) < 0)
		goto out;
	memcpy(pt, share, SLEN);
	memcpy(pt + SLEN, share_mac, REALM_KEY_LEN);
	memmove(out, nonce, REALM_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + REALM_NONCE_LEN, NULL, pt, sizeof pt,
	                                           session_id, REALM_SESSION_LEN, NULL, out, key);
out:
	sodium_memzero(key, sizeof key);
	sodium_memzero(pt, sizeof pt);
	return ret;
}

int realm_release_seal(uint8_t out[REALM_RELEASE_LEN], const uint8_t tag[REALM_KEY_LEN],
                       const uint8_t session_id[REALM_SESSION_LEN], const uint8_t share[SLEN],
                       const uint8_t share_mac[REALM_KEY_LEN])
{
	uint8_t nonce[REALM_NONCE_LEN];

	randombytes_buf(nonce, sizeof nonce);
	return realm_release_seal_det(out, tag, session_id, share, share_mac, nonce);
}

int realm_release_open(uint8_t share[SLEN], uint8_t share_mac[REALM_KEY_LEN],
                       const uint8_t tag[REALM_KEY_LEN],
                       const uint8_t session_id[REALM_SESSION_LEN],
                       const uint8_t in[REALM_RELEASE_LEN])
{
	uint8_t key[REALM_KEY_LEN], pt[SLEN + REALM_KEY_LEN];
	int ret;

	if ((ret = release_key(key, tag, session_id)) < 0)
		goto out;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	        pt, NULL, NULL, in + REALM_NONCE_LEN, REALM_RELEASE_LEN - REALM_NONCE_LEN,
	        session_id, REALM_SESSION_LEN, in, key) != 0) {
		ret = SV_ERR_AUTH;
		goto out;
	}
	memcpy(share, pt, SLEN);
	memcpy(share_mac, pt + SLEN, REALM_KEY_LEN);
out:
	sodium_memzero(key, sizeof key);
	sodium_memzero(pt, sizeof pt);
	return ret;
}

/* ---- Guess budget ---- */

unsigned realm_guess_bound(unsigned per_realm, unsigned t, unsigned n)
{
	if (tn_check(t, n) < 0)
		return 0;
	return n * per_realm / t;
}

int realm_guess_limit(unsigned *per_realm, unsigned total, unsigned t, unsigned n)
{
	unsigned long g;

	if (tn_check(t, n) < 0 || total > 255u * REALM_MAX)
		return SV_ERR_RANGE;
	/* floor(n G / t) <= total  <=>  n G < (total + 1) t */
	g = ((unsigned long)(total + 1) * t - 1) / n;
	if (g > 255)
		g = 255;
	if (g == 0)
		return SV_ERR_RANGE;
	*per_realm = (unsigned)g;
	return 0;
}
