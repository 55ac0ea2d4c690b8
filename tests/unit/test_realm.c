/*
 * Unit tests for crypto/realm: Shamir split/combine (every t-subset reconstructs, t-1 shares
 * are consistent with any secret), Lagrange combination of per-realm evaluations against the
 * RFC 9497 A.1 vectors (OPRF mode, ristretto255-SHA512) with the vector's key split into
 * shares, proof rejection naming the bad realm, the derivations, a whole register/recover round
 * in memory, the guess budget, and that a greedy honest client reaches the same bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/err.h"
#include "crypto/oprf.h"
#include "crypto/realm.h"

#define S REALM_SCALAR_LEN
#define E REALM_ELEMENT_LEN

static void unhex(uint8_t *out, size_t len, const char *hex)
{
	size_t n;

	assert_int_equal(sodium_hex2bin(out, len, hex, strlen(hex), NULL, &n, NULL), 0);
	assert_int_equal(n, len);
}

/* RFC 9497 A.1.1, OPRF mode: the key and the two vectors of the suite. */
static const char a1_sk[] = "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e";
static const struct {
	const char *input, *blind, *blinded, *evaluated, *output;
} a1[] = {
    {"00", "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706",
     "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c",
     "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e",
     "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3ab9135e3bd69955851de4b1f9fe8"
     "a0973396719b7912ba9ee8aa7d0b5e24bcf6"},
    {"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
     "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706",
     "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
     "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
     "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4f2a6413a6bf6fa5e19ba6348eb67"
     "3934a722a7ede2e7621306d18951e7cf2c73"},
};

static struct realm_share *shares_alloc(void)
{
	struct realm_share *s = sodium_malloc(REALM_MAX * sizeof *s);

	assert_non_null(s);
	return s;
}

/* Picks the shares whose positions are the set bits of mask. */
static size_t pick(struct realm_share *out, const struct realm_share *in, unsigned n, unsigned mask)
{
	size_t k = 0;

	for (unsigned i = 0; i < n; i++)
		if (mask & (1u << i))
			out[k++] = in[i];
	return k;
}

static void test_split_combine_every_subset(void **state)
{
	static const unsigned tn[][2] = {{1, 1}, {1, 3}, {2, 2}, {2, 3}, {3, 5}, {4, 4}};
	struct realm_share *sh = shares_alloc(), *sub = shares_alloc();
	uint8_t secret[S], got[S];

	for (size_t c = 0; c < sizeof tn / sizeof tn[0]; c++) {
		unsigned t = tn[c][0], n = tn[c][1];

		crypto_core_ristretto255_scalar_random(secret);
		assert_int_equal(realm_shamir_split(sh, secret, t, n), 0);
		for (unsigned i = 0; i < n; i++)
			assert_int_equal(sh[i].index, i + 1);
		for (unsigned mask = 1; mask < (1u << n); mask++) {
			size_t k = pick(sub, sh, n, mask);

			assert_int_equal(realm_shamir_combine(got, sub, k), 0);
			if (k >= t)
				assert_memory_equal(got, secret, S);
			else /* fewer than t: some other scalar (t = 1 has no such subset) */
				assert_memory_not_equal(got, secret, S);
		}
	}
	/* 16 of 16 and 9 of 16 */
	crypto_core_ristretto255_scalar_random(secret);
	assert_int_equal(realm_shamir_split(sh, secret, REALM_MAX, REALM_MAX), 0);
	assert_int_equal(realm_shamir_combine(got, sh, REALM_MAX), 0);
	assert_memory_equal(got, secret, S);
	assert_int_equal(realm_shamir_split(sh, secret, 9, REALM_MAX), 0);
	assert_int_equal(realm_shamir_combine(got, sh + 7, 9), 0);
	assert_memory_equal(got, secret, S);
	sodium_free(sh);
	sodium_free(sub);
}

/* Lagrange basis at an arbitrary point x (test helper; xs may include 0). */
static void eval_through(uint8_t out[S], const uint8_t *xs, const uint8_t (*ys)[S], size_t k,
                         unsigned x)
{
	uint8_t acc[S] = {0}, num[S], den[S], a[S], b[S], d[S], sx[S] = {0};

	sx[0] = (uint8_t)x;
	for (size_t i = 0; i < k; i++) {
		memset(num, 0, S);
		memset(den, 0, S);
		num[0] = den[0] = 1;
		for (size_t j = 0; j < k; j++) {
			if (j == i)
				continue;
			memset(a, 0, S);
			memset(b, 0, S);
			a[0] = xs[j];
			b[0] = xs[i];
			crypto_core_ristretto255_scalar_sub(d, sx, a); /* x - x_j */
			crypto_core_ristretto255_scalar_mul(num, num, d);
			crypto_core_ristretto255_scalar_sub(d, b, a); /* x_i - x_j */
			crypto_core_ristretto255_scalar_mul(den, den, d);
		}
		assert_int_equal(crypto_core_ristretto255_scalar_invert(d, den), 0);
		crypto_core_ristretto255_scalar_mul(d, d, num);
		crypto_core_ristretto255_scalar_mul(d, d, ys[i]);
		crypto_core_ristretto255_scalar_add(acc, acc, d);
	}
	memcpy(out, acc, S);
}

/* t - 1 shares say nothing: for any candidate secret there is a t-th share that, with them,
 * reconstructs exactly that candidate. */
static void test_t_minus_one_consistent_with_any_secret(void **state)
{
	struct realm_share *sh = shares_alloc(), *sub = shares_alloc();
	uint8_t secret[S], cand[S], got[S], xs[3], ys[3][S];

	crypto_core_ristretto255_scalar_random(secret);
	assert_int_equal(realm_shamir_split(sh, secret, 3, 5), 0);
	for (int trial = 0; trial < 8; trial++) {
		crypto_core_ristretto255_scalar_random(cand);
		/* the polynomial of degree 2 through (0, cand), share 1 and share 2 */
		xs[0] = 0;
		memcpy(ys[0], cand, S);
		xs[1] = sh[0].index;
		memcpy(ys[1], sh[0].value, S);
		xs[2] = sh[1].index;
		memcpy(ys[2], sh[1].value, S);
		sub[0] = sh[0];
		sub[1] = sh[1];
		sub[2].index = 4;
		eval_through(sub[2].value, xs, (const uint8_t(*)[S])ys, 3, 4);
		assert_int_equal(realm_shamir_combine(got, sub, 3), 0);
		assert_memory_equal(got, cand, S);
		/* and the real fourth share gives the real secret */
		sub[2] = sh[3];
		assert_int_equal(realm_shamir_combine(got, sub, 3), 0);
		assert_memory_equal(got, secret, S);
	}
	sodium_free(sh);
	sodium_free(sub);
}

static void test_split_fixed_polynomial(void **state)
{
	/* f(x) = 5 + 3x + 2x^2: shares 10, 19, 32 */
	struct realm_share *sh = shares_alloc();
	uint8_t secret[S] = {5}, coeffs[2 * S] = {0};

	coeffs[0] = 3;
	coeffs[S] = 2;
	assert_int_equal(realm_shamir_split_det(sh, secret, 3, 3, coeffs), 0);
	assert_int_equal(sh[0].value[0], 10);
	assert_int_equal(sh[1].value[0], 19);
	assert_int_equal(sh[2].value[0], 32);
	assert_true(sodium_is_zero(sh[2].value + 1, S - 1));
	sodium_free(sh);
}

static void test_shamir_bounds(void **state)
{
	struct realm_share *sh = shares_alloc();
	uint8_t secret[S], lam[S], idx[REALM_MAX + 1], got[S];
	uint8_t big[S];

	crypto_core_ristretto255_scalar_random(secret);
	assert_int_equal(realm_shamir_split(sh, secret, 0, 3), SV_ERR_RANGE);
	assert_int_equal(realm_shamir_split(sh, secret, 4, 3), SV_ERR_RANGE);
	assert_int_equal(realm_shamir_split(sh, secret, 2, REALM_MAX + 1), SV_ERR_RANGE);
	memset(big, 0xff, S); /* not reduced */
	assert_int_equal(realm_shamir_split(sh, big, 2, 3), SV_ERR_CRYPTO);
	for (unsigned i = 0; i <= REALM_MAX; i++)
		idx[i] = (uint8_t)(i + 1);
	assert_int_equal(realm_lagrange(lam, idx, 0, 0), SV_ERR_RANGE);
	assert_int_equal(realm_lagrange(lam, idx, 3, 3), SV_ERR_RANGE);
	assert_int_equal(realm_lagrange(lam, idx, REALM_MAX + 1, 0), SV_ERR_RANGE);
	assert_int_equal(realm_lagrange(lam, idx, REALM_MAX, 0), 0);
	idx[1] = 1; /* repeated */
	assert_int_equal(realm_lagrange(lam, idx, 3, 0), SV_ERR_INVALID);
	idx[1] = 0; /* not an index */
	assert_int_equal(realm_lagrange(lam, idx, 3, 0), SV_ERR_INVALID);
	idx[1] = REALM_MAX + 1;
	assert_int_equal(realm_lagrange(lam, idx, 3, 0), SV_ERR_INVALID);
	/* combine refuses repeated shares */
	assert_int_equal(realm_shamir_split(sh, secret, 2, 3), 0);
	sh[1].index = sh[0].index;
	assert_int_equal(realm_shamir_combine(got, sh, 2), SV_ERR_INVALID);
	assert_int_equal(realm_shamir_combine(got, sh, 0), SV_ERR_RANGE);
	sodium_free(sh);
}

/* Splits the A.1 key t of n, evaluates the vector's blinded element with every share (with a
 * proof), combines every t-subset and compares with the vector's evaluation and output. */
static void check_a1(unsigned t, unsigned n)
{
	struct realm_share *sh = shares_alloc();
	struct realm_evaluation ev[REALM_MAX], sub[REALM_MAX];
	uint8_t sk[S], blind[S], blinded[E], want_ev[E], want_out[64], input[32], got[E], out[64];
	size_t bad, in_len;

	unhex(sk, S, a1_sk);
	assert_int_equal(realm_shamir_split(sh, sk, t, n), 0);
	for (size_t v = 0; v < sizeof a1 / sizeof a1[0]; v++) {
		in_len = strlen(a1[v].input) / 2;
		unhex(input, in_len, a1[v].input);
		unhex(blind, S, a1[v].blind);
		unhex(blinded, E, a1[v].blinded);
		unhex(want_ev, E, a1[v].evaluated);
		unhex(want_out, 64, a1[v].output);
		for (unsigned i = 0; i < n; i++) {
			ev[i].index = sh[i].index;
			assert_int_equal(realm_commitment(ev[i].commitment, sh[i].value), 0);
			assert_int_equal(realm_evaluate(ev[i].evaluated, ev[i].proof, sh[i].value,
			                                ev[i].commitment, blinded),
			                 0);
		}
		for (unsigned mask = 1; mask < (1u << n); mask++) {
			size_t k = 0;

			for (unsigned i = 0; i < n; i++)
				if (mask & (1u << i))
					sub[k++] = ev[i];
			if (k < t)
				continue;
			assert_int_equal(realm_combine(got, &bad, blinded, sub, k), 0);
			assert_int_equal(bad, k);
			assert_memory_equal(got, want_ev, E);
			assert_int_equal(oprf_finalize(out, input, in_len, blind, got), 0);
			assert_memory_equal(out, want_out, 64);
		}
	}
	sodium_free(sh);
}

static void test_combine_equals_rfc9497_a1(void **state)
{
	check_a1(2, 3);
	check_a1(3, 5);
	check_a1(1, 2);
}

/* With a random key: combination of t realms = oprf_evaluate under the combined key. */
static void test_combine_equals_oprf_evaluate(void **state)
{
	struct realm_share *sh = shares_alloc();
	struct realm_evaluation ev[4];
	uint8_t sk[S], blind[S], blinded[E], got[E], out[64], ref[64];
	static const uint8_t input[] = "correct horse battery staple";
	size_t bad;

	assert_int_equal(oprf_generate_keypair(sk, NULL), 0);
	assert_int_equal(realm_shamir_split(sh, sk, 3, 4), 0);
	assert_int_equal(oprf_blind(blind, blinded, OPRF_MODE_OPRF, input, sizeof input), 0);
	for (int i = 0; i < 3; i++) { /* realms 2, 3, 4 */
		ev[i].index = sh[i + 1].index;
		assert_int_equal(realm_commitment(ev[i].commitment, sh[i + 1].value), 0);
		assert_int_equal(realm_evaluate(ev[i].evaluated, ev[i].proof, sh[i + 1].value,
		                                ev[i].commitment, blinded),
		                 0);
	}
	assert_int_equal(realm_combine(got, &bad, blinded, ev, 3), 0);
	assert_int_equal(oprf_finalize(out, input, sizeof input, blind, got), 0);
	assert_int_equal(oprf_evaluate(ref, OPRF_MODE_OPRF, sk, input, sizeof input, NULL, 0), 0);
	assert_memory_equal(out, ref, 64);
	/* two realms of a 3-of-4 key: the proofs pass but the result is not the key's */
	assert_int_equal(realm_combine(got, &bad, blinded, ev, 2), 0);
	assert_int_equal(oprf_finalize(out, input, sizeof input, blind, got), 0);
	assert_memory_not_equal(out, ref, 64);
	sodium_free(sh);
}

static void make_evals(struct realm_evaluation *ev, struct realm_share *sh, unsigned n,
                       const uint8_t blinded[E])
{
	for (unsigned i = 0; i < n; i++) {
		ev[i].index = sh[i].index;
		assert_int_equal(realm_commitment(ev[i].commitment, sh[i].value), 0);
		assert_int_equal(realm_evaluate(ev[i].evaluated, ev[i].proof, sh[i].value,
		                                ev[i].commitment, blinded),
		                 0);
	}
}

static void test_proof_rejection_names_the_realm(void **state)
{
	struct realm_share *sh = shares_alloc();
	struct realm_evaluation ev[3], bad_ev[3];
	uint8_t sk[S], blind[S], blinded[E], other[E], got[E];
	size_t bad;

	assert_int_equal(oprf_generate_keypair(sk, NULL), 0);
	assert_int_equal(realm_shamir_split(sh, sk, 3, 3), 0);
	assert_int_equal(oprf_blind(blind, blinded, OPRF_MODE_OPRF, (const uint8_t *)"pw", 2), 0);
	make_evals(ev, sh, 3, blinded);

	/* a corrupted evaluation (another valid element) at position 1 */
	memcpy(bad_ev, ev, sizeof ev);
	assert_int_equal(oprf_blind(blind, other, OPRF_MODE_OPRF, (const uint8_t *)"x", 1), 0);
	memcpy(bad_ev[1].evaluated, other, E);
	assert_int_equal(realm_combine(got, &bad, blinded, bad_ev, 3), SV_ERR_AUTH);
	assert_int_equal(bad, 1);
	assert_int_equal(realm_verify(&bad_ev[1], blinded), SV_ERR_AUTH);
	assert_int_equal(realm_verify(&bad_ev[0], blinded), 0);

	/* every proof byte of realm 2 flipped in turn */
	for (size_t i = 0; i < REALM_PROOF_LEN; i++) {
		memcpy(bad_ev, ev, sizeof ev);
		bad_ev[2].proof[i] ^= 0x01;
		assert_int_not_equal(realm_combine(got, &bad, blinded, bad_ev, 3), 0);
		assert_int_equal(bad, 2);
	}

	/* a proof against the wrong commitment: realm 0 answers with its own share but the client
	 * holds realm 1's commitment for it */
	memcpy(bad_ev, ev, sizeof ev);
	memcpy(bad_ev[0].commitment, ev[1].commitment, E);
	assert_int_equal(realm_combine(got, &bad, blinded, bad_ev, 3), SV_ERR_AUTH);
	assert_int_equal(bad, 0);

	/* a realm that evaluates a different blinded element than the client sent */
	memcpy(bad_ev, ev, sizeof ev);
	assert_int_equal(realm_evaluate(bad_ev[1].evaluated, bad_ev[1].proof, sh[1].value,
	                                ev[1].commitment, other),
	                 0);
	assert_int_equal(realm_combine(got, &bad, blinded, bad_ev, 3), SV_ERR_AUTH);
	assert_int_equal(bad, 1);

	/* not an element (the identity) in the evaluation: an encoding error, still named */
	memcpy(bad_ev, ev, sizeof ev);
	memset(bad_ev[2].evaluated, 0, E);
	assert_int_equal(realm_combine(got, &bad, blinded, bad_ev, 3), SV_ERR_CRYPTO);
	assert_int_equal(bad, 2);

	/* two answers claiming the same index */
	memcpy(bad_ev, ev, sizeof ev);
	bad_ev[2].index = bad_ev[0].index;
	assert_int_equal(realm_combine(got, &bad, blinded, bad_ev, 3), SV_ERR_INVALID);
	assert_int_equal(bad, 3);
	sodium_free(sh);
}

static const uint8_t rid_a[REALM_ID_LEN] = {0xa1}, rid_b[REALM_ID_LEN] = {0xb2};

static void test_tags_and_macs(void **state)
{
	uint8_t prk[REALM_PRK_LEN], prk2[REALM_PRK_LEN], y[64], h[REALM_HASH_LEN];
	uint8_t t1[32], t2[32], t3[32], t4[32], c1[32], c2[32], m1[32], m2[32], share[S];
	uint8_t sid[REALM_SESSION_LEN], sid2[REALM_SESSION_LEN], pr[32];
	uint8_t rel[REALM_RELEASE_LEN], osh[S], omac[32];

	randombytes_buf(y, sizeof y);
	randombytes_buf(h, sizeof h);
	realm_unlock_prk(prk, y, h);
	h[0] ^= 1; /* another registration, same OPRF output */
	realm_unlock_prk(prk2, y, h);
	assert_memory_not_equal(prk, prk2, REALM_PRK_LEN);

	assert_int_equal(realm_unlock_tag(t1, prk, rid_a, 1), 0);
	assert_int_equal(realm_unlock_tag(t2, prk, rid_b, 1), 0);
	assert_int_equal(realm_unlock_tag(t3, prk, rid_a, 2), 0);
	assert_int_equal(realm_unlock_tag(t4, prk2, rid_a, 1), 0);
	assert_memory_not_equal(t1, t2, 32);
	assert_memory_not_equal(t1, t3, 32);
	assert_memory_not_equal(t1, t4, 32);
	assert_int_equal(realm_unlock_tag(t4, prk, rid_a, 1), 0);
	assert_memory_equal(t1, t4, 32); /* deterministic */
	assert_int_equal(realm_unlock_tag(t4, prk, rid_a, 0), SV_ERR_RANGE);
	assert_int_equal(realm_unlock_tag(t4, prk, rid_a, REALM_MAX + 1), SV_ERR_RANGE);

	assert_int_equal(realm_unlock_check(c1, prk), 0);
	assert_int_equal(realm_unlock_check(c2, prk2), 0);
	assert_memory_not_equal(c1, c2, 32);
	assert_memory_not_equal(c1, t1, 32);

	crypto_core_ristretto255_scalar_random(share);
	assert_int_equal(realm_share_mac(m1, prk, rid_a, 1, share), 0);
	assert_int_equal(realm_share_mac(m2, prk, rid_b, 1, share), 0);
	assert_memory_not_equal(m1, m2, 32);
	share[0] ^= 1;
	assert_int_equal(realm_share_mac(m2, prk, rid_a, 1, share), 0);
	assert_memory_not_equal(m1, m2, 32);
	share[0] ^= 1;

	/* tag proof: bound to the session, checked in constant time */
	randombytes_buf(sid, sizeof sid);
	memcpy(sid2, sid, sizeof sid);
	sid2[15] ^= 0x80;
	assert_int_equal(realm_tag_proof(pr, t1, sid), 0);
	assert_int_equal(realm_tag_check(t1, sid, pr), 0);
	assert_int_equal(realm_tag_check(t1, sid2, pr), SV_ERR_AUTH);
	assert_int_equal(realm_tag_check(t2, sid, pr), SV_ERR_AUTH);
	for (size_t i = 0; i < 32; i++) {
		pr[i] ^= 0x40;
		assert_int_equal(realm_tag_check(t1, sid, pr), SV_ERR_AUTH);
		pr[i] ^= 0x40;
	}

	/* release: opens with the tag and session, nothing else */
	assert_int_equal(realm_release_seal(rel, t1, sid, share, m1), 0);
	assert_int_equal(realm_release_open(osh, omac, t1, sid, rel), 0);
	assert_memory_equal(osh, share, S);
	assert_memory_equal(omac, m1, 32);
	assert_int_equal(realm_release_open(osh, omac, t1, sid2, rel), SV_ERR_AUTH);
	assert_int_equal(realm_release_open(osh, omac, t2, sid, rel), SV_ERR_AUTH);
	for (size_t i = 0; i < REALM_RELEASE_LEN; i++) {
		rel[i] ^= 0x04;
		assert_int_equal(realm_release_open(osh, omac, t1, sid, rel), SV_ERR_AUTH);
		rel[i] ^= 0x04;
	}
}

static void test_stretch_and_registration_hash(void **state)
{
	const struct ksf_params id = {KSF_IDENTITY, 0, 0}, argon = {KSF_ARGON2ID, 1, 8};
	uint8_t v[REALM_VERSION_LEN] = {1}, a1k[64], s1[32], a2k[64], s2[32];
	uint8_t com[3 * E], sk[S], h1[64], h2[64];

	assert_int_equal(
	    realm_stretch(a1k, s1, (const uint8_t *)"pw", 2, v, (const uint8_t *)"u", 1, &id), 0);
	assert_memory_not_equal(a1k, s1, 32);
	/* another password, version, uid or profile gives other keys */
	assert_int_equal(
	    realm_stretch(a2k, s2, (const uint8_t *)"pX", 2, v, (const uint8_t *)"u", 1, &id), 0);
	assert_memory_not_equal(a1k, a2k, 64);
	v[0] = 2;
	assert_int_equal(
	    realm_stretch(a2k, s2, (const uint8_t *)"pw", 2, v, (const uint8_t *)"u", 1, &id), 0);
	assert_memory_not_equal(a1k, a2k, 64);
	v[0] = 1;
	assert_int_equal(
	    realm_stretch(a2k, s2, (const uint8_t *)"pw", 2, v, (const uint8_t *)"v", 1, &id), 0);
	assert_memory_not_equal(a1k, a2k, 64);
	assert_int_equal(
	    realm_stretch(a2k, s2, (const uint8_t *)"pw", 2, v, (const uint8_t *)"u", 1, &argon),
	    0);
	assert_memory_not_equal(a1k, a2k, 64);
	assert_memory_not_equal(s1, s2, 32);
	assert_int_equal(
	    realm_stretch(a2k, s2, (const uint8_t *)"pw", 2, v, (const uint8_t *)"u", 0, &id),
	    SV_ERR_RANGE);

	for (int i = 0; i < 3; i++) {
		crypto_core_ristretto255_scalar_random(sk);
		assert_int_equal(realm_commitment(com + i * E, sk), 0);
	}
	assert_int_equal(realm_registration_hash(h1, v, &id, 2, 3, (const uint8_t *)"u", 1, com),
	                 0);
	assert_int_equal(realm_registration_hash(h2, v, &id, 3, 3, (const uint8_t *)"u", 1, com),
	                 0);
	assert_memory_not_equal(h1, h2, 64);
	com[E] ^= 0; /* unchanged */
	assert_int_equal(realm_registration_hash(h2, v, &argon, 2, 3, (const uint8_t *)"u", 1, com),
	                 0);
	assert_memory_not_equal(h1, h2, 64);
	memset(com + E, 0, E); /* the identity is not a commitment */
	assert_int_equal(realm_registration_hash(h2, v, &id, 2, 3, (const uint8_t *)"u", 1, com),
	                 SV_ERR_CRYPTO);
	assert_int_equal(realm_registration_hash(h2, v, &id, 4, 3, (const uint8_t *)"u", 1, com),
	                 SV_ERR_RANGE);
}

/* One registration and one recovery, all in memory, as docs/realms.md describes them. */
struct reg {
	uint8_t version[REALM_VERSION_LEN], hash[REALM_HASH_LEN], check[32];
	uint8_t commitments[REALM_MAX * E];
	struct realm_share k[REALM_MAX], s[REALM_MAX];
	uint8_t tag[REALM_MAX][32], smac[REALM_MAX][32];
	uint8_t ct[REALM_SEALED_LEN(REALM_SECRET_MAX)];
	size_t ct_len;
};

static const uint8_t realm_ids[3][REALM_ID_LEN] = {{1}, {2}, {3}};
static const struct ksf_params ksf_id = {KSF_IDENTITY, 0, 0};
static const uint8_t uid[] = "alice";
static const uint8_t secret[] = "the backup key: 32 bytes long!!";

static void do_register(struct reg *r, const char *pw, unsigned t, unsigned n)
{
	uint8_t access[64], seed[32], k[S], s[S], y[64], prk[64], key[32];

	randombytes_buf(r->version, sizeof r->version);
	assert_int_equal(realm_stretch(access, seed, (const uint8_t *)pw, strlen(pw), r->version,
	                               uid, sizeof uid - 1, &ksf_id),
	                 0);
	assert_int_equal(oprf_generate_keypair(k, NULL), 0);
	assert_int_equal(realm_shamir_split(r->k, k, t, n), 0);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(realm_commitment(r->commitments + i * E, r->k[i].value), 0);
	assert_int_equal(realm_registration_hash(r->hash, r->version, &ksf_id, t, n, uid,
	                                         sizeof uid - 1, r->commitments),
	                 0);
	assert_int_equal(oprf_evaluate(y, OPRF_MODE_OPRF, k, access, sizeof access, NULL, 0), 0);
	realm_unlock_prk(prk, y, r->hash);
	assert_int_equal(realm_unlock_check(r->check, prk), 0);
	crypto_core_ristretto255_scalar_random(s);
	assert_int_equal(realm_shamir_split(r->s, s, t, n), 0);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(realm_unlock_tag(r->tag[i], prk, realm_ids[i], i + 1), 0);
		assert_int_equal(
		    realm_share_mac(r->smac[i], prk, realm_ids[i], i + 1, r->s[i].value), 0);
	}
	assert_int_equal(realm_secret_key(key, seed, s, r->hash), 0);
	r->ct_len = REALM_SEALED_LEN(sizeof secret);
	assert_int_equal(realm_secret_seal(r->ct, key, r->hash, secret, sizeof secret), 0);
}

/* Recovers through the realms at positions use[0..t); returns 0, or -1 for a wrong password
 * (seen by the unlock check before any tag is sent). */
static int do_recover(const struct reg *r, const char *pw, const unsigned *use, unsigned t,
                      uint8_t *out, size_t *out_len)
{
	struct realm_evaluation ev[REALM_MAX];
	struct realm_share got[REALM_MAX];
	uint8_t access[64], seed[32], blind[S], blinded[E], comb[E], y[64], prk[64], check[32];
	uint8_t tag[32], sid[REALM_SESSION_LEN], pr[32], rel[REALM_RELEASE_LEN], mac[32], s[S];
	uint8_t key[32];
	size_t bad;

	assert_int_equal(realm_stretch(access, seed, (const uint8_t *)pw, strlen(pw), r->version,
	                               uid, sizeof uid - 1, &ksf_id),
	                 0);
	assert_int_equal(oprf_blind(blind, blinded, OPRF_MODE_OPRF, access, sizeof access), 0);
	for (unsigned j = 0; j < t; j++) {
		unsigned i = use[j];

		ev[j].index = (uint8_t)(i + 1);
		memcpy(ev[j].commitment, r->commitments + i * E, E);
		/* the realm's side */
		assert_int_equal(realm_evaluate(ev[j].evaluated, ev[j].proof, r->k[i].value,
		                                r->commitments + i * E, blinded),
		                 0);
	}
	assert_int_equal(realm_combine(comb, &bad, blinded, ev, t), 0);
	assert_int_equal(oprf_finalize(y, access, sizeof access, blind, comb), 0);
	realm_unlock_prk(prk, y, r->hash);
	assert_int_equal(realm_unlock_check(check, prk), 0);
	if (sodium_memcmp(check, r->check, 32) != 0)
		return -1;
	for (unsigned j = 0; j < t; j++) {
		unsigned i = use[j];

		assert_int_equal(realm_unlock_tag(tag, prk, realm_ids[i], i + 1), 0);
		randombytes_buf(sid, sizeof sid); /* the realm's session id */
		assert_int_equal(realm_tag_proof(pr, tag, sid), 0);
		/* the realm's side: check, then release */
		assert_int_equal(realm_tag_check(r->tag[i], sid, pr), 0);
		assert_int_equal(realm_release_seal(rel, r->tag[i], sid, r->s[i].value, r->smac[i]),
		                 0);
		/* the client's */
		assert_int_equal(realm_release_open(got[j].value, mac, tag, sid, rel), 0);
		got[j].index = (uint8_t)(i + 1);
		assert_int_equal(realm_share_mac(check, prk, realm_ids[i], i + 1, got[j].value), 0);
		assert_int_equal(sodium_memcmp(check, mac, 32), 0);
	}
	assert_int_equal(realm_shamir_combine(s, got, t), 0);
	assert_int_equal(realm_secret_key(key, seed, s, r->hash), 0);
	return realm_secret_open(out, out_len, key, r->hash, r->ct, r->ct_len);
}

static void test_register_recover_round(void **state)
{
	static const unsigned pairs[][2] = {{0, 1}, {0, 2}, {2, 1}};
	struct reg *r = sodium_malloc(sizeof *r);
	uint8_t out[REALM_SECRET_MAX], seed[32], key[32], s[S];
	size_t len = 0;

	assert_non_null(r);
	do_register(r, "hunter2", 2, 3);
	for (size_t p = 0; p < 3; p++) {
		memset(out, 0, sizeof out);
		assert_int_equal(do_recover(r, "hunter2", pairs[p], 2, out, &len), 0);
		assert_int_equal(len, sizeof secret);
		assert_memory_equal(out, secret, sizeof secret);
	}
	assert_int_equal(do_recover(r, "hunter3", pairs[0], 2, out, &len), -1);

	/* the password plus one realm's encryption-key share is not enough: the key from the
	 * share alone (as if it were the scalar) does not open the secret */
	assert_int_equal(realm_stretch(out, seed, (const uint8_t *)"hunter2", 7, r->version, uid,
	                               sizeof uid - 1, &ksf_id),
	                 0);
	memcpy(s, r->s[0].value, S);
	assert_int_equal(realm_secret_key(key, seed, s, r->hash), 0);
	assert_int_equal(realm_secret_open(out, &len, key, r->hash, r->ct, r->ct_len), SV_ERR_AUTH);
	sodium_free(r);
}

static void test_secret_seal_bounds(void **state)
{
	uint8_t key[32], h[64], buf[REALM_SEALED_LEN(REALM_SECRET_MAX + 1)],
	    out[REALM_SECRET_MAX + 1];
	size_t len = 0;

	randombytes_buf(key, sizeof key);
	randombytes_buf(h, sizeof h);
	assert_int_equal(realm_secret_seal(buf, key, h, secret, 0), SV_ERR_RANGE);
	assert_int_equal(realm_secret_seal(buf, key, h, out, REALM_SECRET_MAX + 1), SV_ERR_RANGE);
	assert_int_equal(realm_secret_seal(buf, key, h, out, REALM_SECRET_MAX), 0);
	assert_int_equal(
	    realm_secret_open(out, &len, key, h, buf, REALM_SEALED_LEN(REALM_SECRET_MAX)), 0);
	assert_int_equal(len, REALM_SECRET_MAX);
	assert_int_equal(realm_secret_open(out, &len, key, h, buf, REALM_SEALED_LEN(0)),
	                 SV_ERR_RANGE);
	assert_int_equal(
	    realm_secret_open(out, &len, key, h, buf, REALM_SEALED_LEN(REALM_SECRET_MAX + 1)),
	    SV_ERR_RANGE);
	h[63] ^= 1; /* another registration */
	assert_int_equal(
	    realm_secret_open(out, &len, key, h, buf, REALM_SEALED_LEN(REALM_SECRET_MAX)),
	    SV_ERR_AUTH);
}

static void test_guess_budget(void **state)
{
	unsigned g = 99;

	assert_int_equal(realm_guess_bound(10, 2, 3), 15);
	assert_int_equal(realm_guess_limit(&g, 10, 2, 3), 0);
	assert_int_equal(g, 7); /* floor(3 * 7 / 2) = 10 */
	assert_int_equal(realm_guess_limit(&g, 15, 2, 3), 0);
	assert_int_equal(g, 10);
	assert_int_equal(realm_guess_limit(&g, 10, 1, 1), 0);
	assert_int_equal(g, 10);
	g = 99;
	assert_int_equal(realm_guess_limit(&g, 2, 1, 3), SV_ERR_RANGE); /* any G >= 1 gives 3 */
	assert_int_equal(g, 99);
	assert_int_equal(realm_guess_limit(&g, 10, 3, 2), SV_ERR_RANGE);
	assert_int_equal(realm_guess_limit(&g, 10, 2, REALM_MAX + 1), SV_ERR_RANGE);
	assert_int_equal(realm_guess_limit(&g, 100000, 16, 16), SV_ERR_RANGE);
	assert_int_equal(realm_guess_limit(&g, 4080, 16, 16), 0);
	assert_int_equal(g, 255);
	/* for every shape and total: G is the largest limit whose bound stays within the total */
	for (unsigned n = 1; n <= REALM_MAX; n++)
		for (unsigned t = 1; t <= n; t++)
			for (unsigned total = 0; total <= 300; total++) {
				int ret = realm_guess_limit(&g, total, t, n);

				if (ret < 0) {
					assert_true(realm_guess_bound(1, t, n) > total);
					continue;
				}
				assert_true(g >= 1 && g <= 255);
				assert_true(realm_guess_bound(g, t, n) <= total);
				assert_true(g == 255 || realm_guess_bound(g + 1, t, n) > total);
			}
}

/* docs/realms.md, recover step 3: a client that sends each attempt to the t realms with the most
 * attempts left gets exactly the attacker's bound, floor(n G / t) attempts, before fewer than t
 * realms have a guess left. */
static void test_greedy_client_reaches_the_bound(void **state)
{
	for (unsigned n = 1; n <= 7; n++)
		for (unsigned t = 1; t <= n; t++)
			for (unsigned g = 1; g <= 12; g++) {
				unsigned left[REALM_MAX], attempts = 0;

				for (unsigned i = 0; i < n; i++)
					left[i] = g;
				for (;;) {
					unsigned used = 0, mark[REALM_MAX] = {0};

					/* pick t realms, each time the one with the most left */
					for (unsigned k = 0; k < t; k++) {
						unsigned best = n;

						for (unsigned i = 0; i < n; i++)
							if (!mark[i] && left[i] > 0 &&
							    (best == n || left[i] > left[best]))
								best = i;
						if (best == n)
							break;
						mark[best] = 1;
						used++;
					}
					if (used < t)
						break;
					for (unsigned i = 0; i < n; i++)
						left[i] -= mark[i];
					attempts++;
				}
				assert_int_equal(attempts, realm_guess_bound(g, t, n));
			}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split_combine_every_subset),
	    cmocka_unit_test(test_t_minus_one_consistent_with_any_secret),
	    cmocka_unit_test(test_split_fixed_polynomial),
	    cmocka_unit_test(test_shamir_bounds),
	    cmocka_unit_test(test_combine_equals_rfc9497_a1),
	    cmocka_unit_test(test_combine_equals_oprf_evaluate),
	    cmocka_unit_test(test_proof_rejection_names_the_realm),
	    cmocka_unit_test(test_tags_and_macs),
	    cmocka_unit_test(test_stretch_and_registration_hash),
	    cmocka_unit_test(test_register_recover_round),
	    cmocka_unit_test(test_secret_seal_bounds),
	    cmocka_unit_test(test_guess_budget),
	    cmocka_unit_test(test_greedy_client_reaches_the_bound),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
