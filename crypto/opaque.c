/*
 * OPAQUE-3DH (RFC 9807) over ristretto255-SHA512: registration, login (KE1/KE2/KE3), server
 * finish and fake records. See opaque.h for the contract and docs/protocol.md for the layouts.
 */
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "crypto/h2c.h"
#include "crypto/hkdf.h"
#include "crypto/opaque.h"
#include "crypto/oprf.h"

#define NN  OPAQUE_NONCE_LEN
#define NM  OPAQUE_MAC_LEN
#define NH  OPAQUE_HASH_LEN
#define NPK OPAQUE_PK_LEN
#define NSK OPAQUE_SK_LEN

#define MASKED_LEN    (NPK + OPAQUE_ENVELOPE_LEN)          /* server_public_key | envelope */
#define CRED_RESP_LEN (OPRF_ELEMENT_LEN + NN + MASKED_LEN) /* 192 */
#define KE2_MAC_OFF   (CRED_RESP_LEN + NN + NPK)           /* 256: what the preamble covers */

/* Offsets inside the messages. */
#define KE1_BLINDED  0
#define KE1_NONCE    32
#define KE1_KEYSHARE 64
#define REC_PK       0
#define REC_MASKING  32
#define REC_ENVELOPE 96
#define KE2_EVAL     0
#define KE2_MNONCE   32
#define KE2_MASKED   64
#define KE2_SNONCE   192
#define KE2_KEYSHARE 224

#define LIT(s) (const uint8_t *)(s), (sizeof(s) - 1)

#ifdef OPAQUE_TRACE
#include "crypto/opaque_trace.h"
#define TRACE(name, p, n) opaque_trace_record(name, p, n)
#else
#define TRACE(name, p, n) ((void)0)
#endif

static const char dh_info[] = "OPAQUE-DeriveDiffieHellmanKeyPair";
static const char oprf_key_info[] = "OPAQUE-DeriveKeyPair";
/* RFC 9380 §3.1 style tag for the fake records' client public keys. */
#define FAKE_PK_DST "sealvault-v1-FakeClientKey-ristretto255_XMD:SHA-512_R255MAP_RO_"

struct ids {
	const uint8_t *client, *server;
	size_t client_len, server_len;
};

/* The AKE keys of one login: 3DH secret material and the derived MAC and session keys. */
struct ake_keys {
	uint8_t km2[NH], km3[NH], session_key[NH];
	uint8_t preamble_hash[NH];         /* H(preamble) */
	crypto_hash_sha512_state preamble; /* the preamble hashed so far, for H(preamble | mac) */
};

static int params_check(const struct opaque_params *p)
{
	if (p == NULL)
		return 0;
	if (p->context_len > OPAQUE_CONTEXT_MAX || (p->context == NULL && p->context_len != 0))
		return SV_ERR_RANGE;
	if (p->client_identity != NULL &&
	    (p->client_identity_len == 0 || p->client_identity_len > OPAQUE_IDENTITY_MAX))
		return SV_ERR_RANGE;
	if (p->client_identity == NULL && p->client_identity_len != 0)
		return SV_ERR_INVALID;
	if (p->server_identity != NULL &&
	    (p->server_identity_len == 0 || p->server_identity_len > OPAQUE_IDENTITY_MAX))
		return SV_ERR_RANGE;
	if (p->server_identity == NULL && p->server_identity_len != 0)
		return SV_ERR_INVALID;
	return 0;
}

/* Identities with the RFC defaults filled in (the public keys). */
static struct ids ids_of(const struct opaque_params *p, const uint8_t client_pk[NPK],
                         const uint8_t server_pk[NPK])
{
	struct ids ids = {client_pk, server_pk, NPK, NPK};

	if (p != NULL && p->client_identity != NULL) {
		ids.client = p->client_identity;
		ids.client_len = p->client_identity_len;
	}
	if (p != NULL && p->server_identity != NULL) {
		ids.server = p->server_identity;
		ids.server_len = p->server_identity_len;
	}
	return ids;
}

static int cred_id_check(const uint8_t *id, size_t len)
{
	return id != NULL && len > 0 && len <= OPAQUE_CREDENTIAL_ID_MAX ? 0 : SV_ERR_RANGE;
}

static void put16(uint8_t o[2], size_t v)
{
	o[0] = (uint8_t)(v >> 8);
	o[1] = (uint8_t)v;
}

static int smul(uint8_t out[NPK], const uint8_t k[NSK], const uint8_t p[NPK])
{
	/* Bit 255 must be clear (libsodium ignores it); libsodium refuses the rest of what is
	 * not canonical, and an identity input (its product is the identity). */
	if ((p[NPK - 1] & 0x80) != 0)
		return SV_ERR_CRYPTO;
	return crypto_scalarmult_ristretto255(out, k, p) == 0 ? 0 : SV_ERR_CRYPTO;
}

/* DeriveDiffieHellmanKeyPair(seed); pk may be NULL. */
static int dh_keypair(uint8_t sk[NSK], uint8_t *pk, const uint8_t seed[OPAQUE_SEED_LEN])
{
	return oprf_derive_keypair(sk, pk, OPRF_MODE_OPRF, seed, LIT(dh_info));
}

/* oprf_key = DeriveKeyPair(Expand(oprf_seed, credential_identifier | "OprfKey", Nok), info) */
static int oprf_key_for(uint8_t sk[NSK], const uint8_t oprf_seed[OPAQUE_OPRF_SEED_LEN],
                        const uint8_t *cred_id, size_t cred_id_len)
{
	uint8_t seed[OPRF_SEED_LEN];
	int ret;

	ret = hkdf_sha512_expand(seed, sizeof seed, oprf_seed, OPAQUE_OPRF_SEED_LEN, cred_id,
	                         cred_id_len, LIT("OprfKey"));
	if (ret == 0)
		ret = oprf_derive_keypair(sk, NULL, OPRF_MODE_OPRF, seed, LIT(oprf_key_info));
	if (ret == 0)
		TRACE("oprf_key", sk, NSK);
	sodium_memzero(seed, sizeof seed);
	return ret;
}

/* HMAC(key, nonce | CleartextCredentials), CleartextCredentials = server_pk | len|server_id |
 * len|client_id. */
static void envelope_tag(uint8_t tag[NM], const uint8_t auth_key[NH], const uint8_t nonce[NN],
                         const uint8_t server_pk[NPK], const struct ids *ids)
{
	crypto_auth_hmacsha512_state st;
	uint8_t l[2];

	crypto_auth_hmacsha512_init(&st, auth_key, NH);
	crypto_auth_hmacsha512_update(&st, nonce, NN);
	crypto_auth_hmacsha512_update(&st, server_pk, NPK);
	put16(l, ids->server_len);
	crypto_auth_hmacsha512_update(&st, l, 2);
	crypto_auth_hmacsha512_update(&st, ids->server, ids->server_len);
	put16(l, ids->client_len);
	crypto_auth_hmacsha512_update(&st, l, 2);
	crypto_auth_hmacsha512_update(&st, ids->client, ids->client_len);
	crypto_auth_hmacsha512_final(&st, tag);
	sodium_memzero(&st, sizeof st);
}

/* Expand-Label(secret, label, ctx, Nh): info = I2OSP(Nh,2) | len | "OPAQUE-" label | len | ctx */
static int expand_label(uint8_t out[NH], const uint8_t secret[NH], const char *label,
                        const uint8_t *ctx, size_t ctx_len)
{
	uint8_t info[2 + 1 + 7 + 16 + 1 + NH];
	size_t llen = strlen(label), n = 0;

	put16(info, NH);
	n = 2;
	info[n++] = (uint8_t)(7 + llen);
	memcpy(info + n, "OPAQUE-", 7);
	memcpy(info + n + 7, label, llen);
	n += 7 + llen;
	info[n++] = (uint8_t)ctx_len;
	if (ctx_len > 0)
		memcpy(info + n, ctx, ctx_len);
	n += ctx_len;
	return hkdf_sha512_expand(out, NH, secret, NH, info, n, NULL, 0);
}

/*
 * Transcript and key schedule (RFC 9807 §6.4.2): preamble = "OPAQUEv1-" | len|context |
 * len|client_id | KE1 | len|server_id | KE2[0..256), ikm = dh1 | dh2 | dh3.
 */
static int ake_derive(struct ake_keys *k, const struct opaque_params *p, const struct ids *ids,
                      const uint8_t ke1[OPAQUE_KE1_LEN], const uint8_t ke2_head[KE2_MAC_OFF],
                      const uint8_t ikm[3 * NPK])
{
	crypto_hash_sha512_state st;
	uint8_t l[2], prk[NH], hs[NH];
	int ret;

	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, LIT("OPAQUEv1-"));
	put16(l, p != NULL ? p->context_len : 0);
	crypto_hash_sha512_update(&st, l, 2);
	if (p != NULL && p->context_len > 0)
		crypto_hash_sha512_update(&st, p->context, p->context_len);
	put16(l, ids->client_len);
	crypto_hash_sha512_update(&st, l, 2);
	crypto_hash_sha512_update(&st, ids->client, ids->client_len);
	crypto_hash_sha512_update(&st, ke1, OPAQUE_KE1_LEN);
	put16(l, ids->server_len);
	crypto_hash_sha512_update(&st, l, 2);
	crypto_hash_sha512_update(&st, ids->server, ids->server_len);
	crypto_hash_sha512_update(&st, ke2_head, KE2_MAC_OFF);
	k->preamble = st;
	crypto_hash_sha512_final(&st, k->preamble_hash);

	hkdf_sha512_extract(prk, NULL, 0, ikm, 3 * NPK);
	if ((ret = expand_label(hs, prk, "HandshakeSecret", k->preamble_hash, NH)) < 0 ||
	    (ret = expand_label(k->session_key, prk, "SessionKey", k->preamble_hash, NH)) < 0 ||
	    (ret = expand_label(k->km2, hs, "ServerMAC", NULL, 0)) < 0 ||
	    (ret = expand_label(k->km3, hs, "ClientMAC", NULL, 0)) < 0)
		goto out;
	TRACE("handshake_secret", hs, NH);
	TRACE("server_mac_key", k->km2, NH);
	TRACE("client_mac_key", k->km3, NH);
out:
	sodium_memzero(prk, sizeof prk);
	sodium_memzero(hs, sizeof hs);
	sodium_memzero(&st, sizeof st);
	return ret;
}

/* server_mac = HMAC(Km2, H(preamble)) and client_mac = HMAC(Km3, H(preamble | server_mac)). */
static void ake_server_mac(uint8_t server_mac[NM], const struct ake_keys *k)
{
	hkdf_hmac_sha512(server_mac, k->km2, NH, k->preamble_hash, NH, NULL, 0);
}

static void ake_client_mac(uint8_t client_mac[NM], struct ake_keys *k, const uint8_t server_mac[NM])
{
	uint8_t h[NH];

	crypto_hash_sha512_update(&k->preamble, server_mac, NM);
	crypto_hash_sha512_final(&k->preamble, h);
	hkdf_hmac_sha512(client_mac, k->km3, NH, h, NH, NULL, 0);
	sodium_memzero(h, sizeof h);
}

static int message_check(const uint8_t *msg, size_t len, size_t expect, const size_t *fields,
                         const int *is_element, size_t nfields);

/* ---- server keys ---- */

int opaque_server_key_from_sk(struct opaque_server_key *k, const uint8_t sk[NSK])
{
	int ret;

	if ((ret = h2c_scalar_check(sk)) < 0) {
		sodium_memzero(k, sizeof *k);
		return ret;
	}
	memmove(k->sk, sk, NSK);
	if (crypto_scalarmult_ristretto255_base(k->pk, k->sk) != 0) {
		sodium_memzero(k, sizeof *k);
		return SV_ERR_CRYPTO;
	}
	return 0;
}

int opaque_server_key_derive(struct opaque_server_key *k, const uint8_t seed[OPAQUE_SEED_LEN])
{
	int ret = dh_keypair(k->sk, k->pk, seed);

	if (ret < 0)
		sodium_memzero(k, sizeof *k);
	return ret;
}

int opaque_server_key_generate(struct opaque_server_key *k)
{
	uint8_t seed[OPAQUE_SEED_LEN];
	int ret;

	randombytes_buf(seed, sizeof seed);
	ret = opaque_server_key_derive(k, seed);
	sodium_memzero(seed, sizeof seed);
	return ret;
}

/* ---- server: registration ---- */

int opaque_server_registration_response(uint8_t response[OPAQUE_REGISTRATION_RESPONSE_LEN],
                                        const uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN],
                                        const uint8_t server_pk[NPK],
                                        const uint8_t oprf_seed[OPAQUE_OPRF_SEED_LEN],
                                        const uint8_t *credential_id, size_t credential_id_len)
{
	uint8_t oprf_key[NSK];
	int ret;

	if ((ret = cred_id_check(credential_id, credential_id_len)) < 0)
		return ret;
	if ((ret = oprf_key_for(oprf_key, oprf_seed, credential_id, credential_id_len)) < 0)
		goto out;
	if ((ret = smul(response, oprf_key, request)) < 0)
		goto out;
	memcpy(response + OPRF_ELEMENT_LEN, server_pk, NPK);
out:
	sodium_memzero(oprf_key, sizeof oprf_key);
	if (ret < 0)
		sodium_memzero(response, OPAQUE_REGISTRATION_RESPONSE_LEN);
	return ret;
}

int opaque_record_check(const uint8_t *record, size_t len)
{
	static const size_t f[] = {NPK, OPAQUE_MASKING_KEY_LEN, OPAQUE_ENVELOPE_LEN};
	static const int e[] = {1, 0, 0};

	return message_check(record, len, OPAQUE_RECORD_LEN, f, e, 3);
}

int opaque_fake_record_derive(uint8_t record[OPAQUE_RECORD_LEN],
                              const uint8_t fake_seed[OPAQUE_FAKE_SEED_LEN],
                              const uint8_t *credential_id, size_t credential_id_len)
{
	/* A group element with no known discrete log (not even to the vault): hashing to the group
	 * costs one xmd and two Elligator maps, less than DeriveKeyPair's base multiplication,
	 * and the vault pays it on every login/start. */
	const struct h2c_part pk_in[] = {{fake_seed, OPAQUE_FAKE_SEED_LEN},
	                                 {credential_id, credential_id_len}};
	int ret;

	if ((ret = cred_id_check(credential_id, credential_id_len)) < 0)
		return ret;
	ret = h2c_hash_to_group(record + REC_PK, pk_in, 2, LIT(FAKE_PK_DST));
	if (ret < 0)
		goto out;
	ret = hkdf_sha512_expand(record + REC_MASKING, OPAQUE_MASKING_KEY_LEN, fake_seed,
	                         OPAQUE_FAKE_SEED_LEN, LIT("SealvaultFakeMaskingKey"),
	                         credential_id, credential_id_len);
	memset(record + REC_ENVELOPE, 0, OPAQUE_ENVELOPE_LEN);
out:
	if (ret < 0)
		sodium_memzero(record, OPAQUE_RECORD_LEN);
	return ret;
}

/* ---- decoders ---- */

/* Walks a message as a list of fields: element (1) or opaque bytes (0) of the given sizes. */
static int message_check(const uint8_t *msg, size_t len, size_t expect, const size_t *fields,
                         const int *is_element, size_t nfields)
{
	struct sv_buf b;
	const uint8_t *p;
	int ret;

	if (msg == NULL || len != expect)
		return SV_ERR_INVALID;
	sv_buf_from(&b, msg, len);
	for (size_t i = 0; i < nfields; i++) {
		if ((ret = sv_buf_get_ref(&b, fields[i], &p)) < 0)
			return ret;
		if (is_element[i] && (ret = h2c_element_check(p)) < 0)
			return ret;
	}
	return sv_buf_expect_end(&b);
}

int opaque_registration_request_check(const uint8_t *msg, size_t len)
{
	static const size_t f[] = {OPRF_ELEMENT_LEN};
	static const int e[] = {1};

	return message_check(msg, len, OPAQUE_REGISTRATION_REQUEST_LEN, f, e, 1);
}

int opaque_registration_response_check(const uint8_t *msg, size_t len)
{
	static const size_t f[] = {OPRF_ELEMENT_LEN, NPK};
	static const int e[] = {1, 1};

	return message_check(msg, len, OPAQUE_REGISTRATION_RESPONSE_LEN, f, e, 2);
}

int opaque_ke1_check(const uint8_t *msg, size_t len)
{
	static const size_t f[] = {OPRF_ELEMENT_LEN, NN, NPK};
	static const int e[] = {1, 0, 1};

	return message_check(msg, len, OPAQUE_KE1_LEN, f, e, 3);
}

int opaque_ke2_check(const uint8_t *msg, size_t len)
{
	static const size_t f[] = {OPRF_ELEMENT_LEN, NN, MASKED_LEN, NN, NPK, NM};
	static const int e[] = {1, 0, 0, 0, 1, 0};

	return message_check(msg, len, OPAQUE_KE2_LEN, f, e, 6);
}

int opaque_ke3_check(const uint8_t *msg, size_t len)
{
	static const size_t f[] = {NM};
	static const int e[] = {0};

	return message_check(msg, len, OPAQUE_KE3_LEN, f, e, 1);
}

/* ---- server: login ---- */

int opaque_server_ke2_det(uint8_t ke2[OPAQUE_KE2_LEN], struct opaque_server_state *st,
                          const uint8_t ke1[OPAQUE_KE1_LEN],
                          const uint8_t record[OPAQUE_RECORD_LEN], const uint8_t *credential_id,
                          size_t credential_id_len, const uint8_t oprf_seed[OPAQUE_OPRF_SEED_LEN],
                          const struct opaque_server_key *k, const struct opaque_params *p,
                          const uint8_t masking_nonce[NN], const uint8_t server_nonce[NN],
                          const uint8_t server_keyshare_seed[OPAQUE_SEED_LEN])
{
	uint8_t oprf_key[NSK], pad[MASKED_LEN], esk[NSK], ikm[3 * NPK];
	struct ake_keys keys;
	struct ids ids;
	size_t i;
	int ret;

	if ((ret = params_check(p)) < 0 ||
	    (ret = cred_id_check(credential_id, credential_id_len)) < 0)
		return ret;
	/* Credential response: evaluated | masking_nonce | (server_pk | envelope) XOR pad. */
	if ((ret = oprf_key_for(oprf_key, oprf_seed, credential_id, credential_id_len)) < 0)
		goto out;
	if ((ret = smul(ke2 + KE2_EVAL, oprf_key, ke1 + KE1_BLINDED)) < 0)
		goto out;
	memcpy(ke2 + KE2_MNONCE, masking_nonce, NN);
	ret = hkdf_sha512_expand(pad, sizeof pad, record + REC_MASKING, OPAQUE_MASKING_KEY_LEN,
	                         masking_nonce, NN, LIT("CredentialResponsePad"));
	if (ret < 0)
		goto out;
	for (i = 0; i < NPK; i++)
		ke2[KE2_MASKED + i] = pad[i] ^ k->pk[i];
	for (i = 0; i < OPAQUE_ENVELOPE_LEN; i++)
		ke2[KE2_MASKED + NPK + i] = pad[NPK + i] ^ record[REC_ENVELOPE + i];

	/* AKE: ephemeral key share, 3DH, key schedule, server MAC. */
	memcpy(ke2 + KE2_SNONCE, server_nonce, NN);
	if ((ret = dh_keypair(esk, ke2 + KE2_KEYSHARE, server_keyshare_seed)) < 0)
		goto out;
	if ((ret = smul(ikm, esk, ke1 + KE1_KEYSHARE)) < 0 ||
	    (ret = smul(ikm + NPK, k->sk, ke1 + KE1_KEYSHARE)) < 0 ||
	    (ret = smul(ikm + 2 * NPK, esk, record + REC_PK)) < 0)
		goto out;
	ids = ids_of(p, record + REC_PK, k->pk);
	if ((ret = ake_derive(&keys, p, &ids, ke1, ke2, ikm)) < 0)
		goto out;
	ake_server_mac(ke2 + KE2_MAC_OFF, &keys);
	ake_client_mac(st->expected_client_mac, &keys, ke2 + KE2_MAC_OFF);
	memcpy(st->session_key, keys.session_key, OPAQUE_SESSION_KEY_LEN);
out:
	sodium_memzero(oprf_key, sizeof oprf_key);
	sodium_memzero(pad, sizeof pad);
	sodium_memzero(esk, sizeof esk);
	sodium_memzero(ikm, sizeof ikm);
	sodium_memzero(&keys, sizeof keys);
	if (ret < 0) {
		sodium_memzero(ke2, OPAQUE_KE2_LEN);
		sodium_memzero(st, sizeof *st);
	}
	return ret;
}

int opaque_server_ke2(uint8_t ke2[OPAQUE_KE2_LEN], struct opaque_server_state *st,
                      const uint8_t ke1[OPAQUE_KE1_LEN], const uint8_t record[OPAQUE_RECORD_LEN],
                      const uint8_t *credential_id, size_t credential_id_len,
                      const uint8_t oprf_seed[OPAQUE_OPRF_SEED_LEN],
                      const struct opaque_server_key *k, const struct opaque_params *p)
{
	uint8_t rnd[NN + NN + OPAQUE_SEED_LEN];
	int ret;

	randombytes_buf(rnd, sizeof rnd);
	ret = opaque_server_ke2_det(ke2, st, ke1, record, credential_id, credential_id_len,
	                            oprf_seed, k, p, rnd, rnd + NN, rnd + 2 * NN);
	sodium_memzero(rnd, sizeof rnd);
	return ret;
}

int opaque_server_finish(uint8_t session_key[OPAQUE_SESSION_KEY_LEN],
                         struct opaque_server_state *st, const uint8_t ke3[OPAQUE_KE3_LEN])
{
	int ret = SV_ERR_AUTH;

	if (sodium_memcmp(ke3, st->expected_client_mac, OPAQUE_MAC_LEN) == 0) {
		memcpy(session_key, st->session_key, OPAQUE_SESSION_KEY_LEN);
		ret = 0;
	} else {
		sodium_memzero(session_key, OPAQUE_SESSION_KEY_LEN);
	}
	sodium_memzero(st, sizeof *st);
	return ret;
}

/* ---- client ---- */

void opaque_client_state_wipe(struct opaque_client_state *st)
{
	sodium_memzero(st, sizeof *st);
}

static int password_check(const uint8_t *pw, size_t len)
{
	if (len > OPAQUE_PASSWORD_MAX || (pw == NULL && len != 0))
		return SV_ERR_RANGE;
	return 0;
}

int opaque_client_registration_request_det(uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN],
                                           struct opaque_client_state *st, const uint8_t *password,
                                           size_t password_len, const uint8_t blind[NSK])
{
	int ret;

	if ((ret = password_check(password, password_len)) < 0)
		return ret;
	opaque_client_state_wipe(st);
	memcpy(st->blind, blind, NSK);
	ret = oprf_blind_det(request, OPRF_MODE_OPRF, blind, password, password_len);
	if (ret < 0) {
		opaque_client_state_wipe(st);
		sodium_memzero(request, OPAQUE_REGISTRATION_REQUEST_LEN);
	}
	return ret;
}

int opaque_client_registration_request(uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN],
                                       struct opaque_client_state *st, const uint8_t *password,
                                       size_t password_len)
{
	uint8_t blind[NSK];
	int ret;

	crypto_core_ristretto255_scalar_random(blind);
	ret = opaque_client_registration_request_det(request, st, password, password_len, blind);
	sodium_memzero(blind, sizeof blind);
	return ret;
}

/* randomized_password = Extract("", y | Stretch(y)), y = the OPRF output. */
static int randomized_password(uint8_t rwd[NH], const struct opaque_client_state *st,
                               const uint8_t *password, size_t password_len,
                               const uint8_t evaluated[OPRF_ELEMENT_LEN],
                               const struct ksf_params *ksf)
{
	uint8_t y[2 * NH];
	int ret;

	if ((ret = oprf_finalize(y, password, password_len, st->blind, evaluated)) < 0)
		goto out;
	if ((ret = ksf_stretch(y + NH, y, ksf)) < 0)
		goto out;
	hkdf_sha512_extract(rwd, NULL, 0, y, sizeof y);
	TRACE("randomized_password", rwd, NH);
out:
	sodium_memzero(y, sizeof y);
	return ret;
}

/* The keys an envelope nonce selects: auth_key, export_key and the client's static key pair. */
static int envelope_keys(uint8_t auth_key[NH], uint8_t export_key[NH], uint8_t client_sk[NSK],
                         uint8_t client_pk[NPK], const uint8_t rwd[NH], const uint8_t nonce[NN])
{
	uint8_t seed[OPAQUE_SEED_LEN];
	int ret;

	if ((ret = hkdf_sha512_expand(auth_key, NH, rwd, NH, nonce, NN, LIT("AuthKey"))) < 0 ||
	    (ret = hkdf_sha512_expand(export_key, NH, rwd, NH, nonce, NN, LIT("ExportKey"))) < 0 ||
	    (ret = hkdf_sha512_expand(seed, sizeof seed, rwd, NH, nonce, NN, LIT("PrivateKey"))) <
	        0)
		goto out;
	ret = dh_keypair(client_sk, client_pk, seed);
	if (ret == 0) {
		TRACE("auth_key", auth_key, NH);
		TRACE("client_public_key", client_pk, NPK);
	}
out:
	sodium_memzero(seed, sizeof seed);
	return ret;
}

int opaque_client_registration_finalize_det(
    uint8_t record[OPAQUE_RECORD_LEN], uint8_t export_key[OPAQUE_EXPORT_KEY_LEN],
    struct opaque_client_state *st, const uint8_t *password, size_t password_len,
    const uint8_t response[OPAQUE_REGISTRATION_RESPONSE_LEN], const struct opaque_params *p,
    const struct ksf_params *ksf, const uint8_t envelope_nonce[NN])
{
	const uint8_t *server_pk = response + OPRF_ELEMENT_LEN;
	uint8_t rwd[NH], auth_key[NH], client_sk[NSK];
	struct ids ids;
	int ret;

	if ((ret = params_check(p)) < 0 || (ret = password_check(password, password_len)) < 0 ||
	    (ret = ksf_params_check(ksf)) < 0)
		goto out;
	if ((ret = h2c_element_check(server_pk)) < 0)
		goto out;
	ret = randomized_password(rwd, st, password, password_len, response, ksf);
	if (ret < 0)
		goto out;
	/* Store(): masking_key, then the envelope keyed by a fresh nonce. */
	ret = hkdf_sha512_expand(record + REC_MASKING, OPAQUE_MASKING_KEY_LEN, rwd, NH,
	                         LIT("MaskingKey"), NULL, 0);
	if (ret < 0)
		goto out;
	ret = envelope_keys(auth_key, export_key, client_sk, record + REC_PK, rwd, envelope_nonce);
	if (ret < 0)
		goto out;
	memcpy(record + REC_ENVELOPE, envelope_nonce, NN);
	ids = ids_of(p, record + REC_PK, server_pk);
	envelope_tag(record + REC_ENVELOPE + NN, auth_key, envelope_nonce, server_pk, &ids);
	TRACE("masking_key", record + REC_MASKING, OPAQUE_MASKING_KEY_LEN);
	TRACE("envelope", record + REC_ENVELOPE, OPAQUE_ENVELOPE_LEN);
out:
	sodium_memzero(rwd, sizeof rwd);
	sodium_memzero(auth_key, sizeof auth_key);
	sodium_memzero(client_sk, sizeof client_sk);
	opaque_client_state_wipe(st);
	if (ret < 0) {
		sodium_memzero(record, OPAQUE_RECORD_LEN);
		sodium_memzero(export_key, OPAQUE_EXPORT_KEY_LEN);
	}
	return ret;
}

int opaque_client_registration_finalize(uint8_t record[OPAQUE_RECORD_LEN],
                                        uint8_t export_key[OPAQUE_EXPORT_KEY_LEN],
                                        struct opaque_client_state *st, const uint8_t *password,
                                        size_t password_len,
                                        const uint8_t response[OPAQUE_REGISTRATION_RESPONSE_LEN],
                                        const struct opaque_params *p, const struct ksf_params *ksf)
{
	uint8_t nonce[NN];

	randombytes_buf(nonce, sizeof nonce);
	return opaque_client_registration_finalize_det(record, export_key, st, password,
	                                               password_len, response, p, ksf, nonce);
}

int opaque_client_ke1_det(uint8_t ke1[OPAQUE_KE1_LEN], struct opaque_client_state *st,
                          const uint8_t *password, size_t password_len, const uint8_t blind[NSK],
                          const uint8_t client_nonce[NN],
                          const uint8_t client_keyshare_seed[OPAQUE_SEED_LEN])
{
	int ret;

	if ((ret = password_check(password, password_len)) < 0)
		return ret;
	opaque_client_state_wipe(st);
	memcpy(st->blind, blind, NSK);
	ret = oprf_blind_det(ke1 + KE1_BLINDED, OPRF_MODE_OPRF, blind, password, password_len);
	if (ret < 0)
		goto out;
	memcpy(ke1 + KE1_NONCE, client_nonce, NN);
	if ((ret = dh_keypair(st->client_secret, ke1 + KE1_KEYSHARE, client_keyshare_seed)) < 0)
		goto out;
	memcpy(st->ke1, ke1, OPAQUE_KE1_LEN);
out:
	if (ret < 0) {
		opaque_client_state_wipe(st);
		sodium_memzero(ke1, OPAQUE_KE1_LEN);
	}
	return ret;
}

int opaque_client_ke1(uint8_t ke1[OPAQUE_KE1_LEN], struct opaque_client_state *st,
                      const uint8_t *password, size_t password_len)
{
	uint8_t blind[NSK], rnd[NN + OPAQUE_SEED_LEN];
	int ret;

	crypto_core_ristretto255_scalar_random(blind);
	randombytes_buf(rnd, sizeof rnd);
	ret = opaque_client_ke1_det(ke1, st, password, password_len, blind, rnd, rnd + NN);
	sodium_memzero(blind, sizeof blind);
	sodium_memzero(rnd, sizeof rnd);
	return ret;
}

int opaque_client_ke3(uint8_t ke3[OPAQUE_KE3_LEN], uint8_t session_key[OPAQUE_SESSION_KEY_LEN],
                      uint8_t export_key[OPAQUE_EXPORT_KEY_LEN], uint8_t *server_pk_out,
                      struct opaque_client_state *st, const uint8_t *password, size_t password_len,
                      const uint8_t ke2[OPAQUE_KE2_LEN], const struct opaque_params *p,
                      const struct ksf_params *ksf)
{
	uint8_t rwd[NH], masking_key[NH], pad[MASKED_LEN], plain[MASKED_LEN];
	uint8_t auth_key[NH], client_sk[NSK], client_pk[NPK], tag[NM], ikm[3 * NPK], mac[NM];
	const uint8_t *server_pk = plain, *envelope = plain + NPK;
	struct ake_keys keys;
	struct ids ids;
	size_t i;
	int ret;

	if ((ret = params_check(p)) < 0 || (ret = password_check(password, password_len)) < 0 ||
	    (ret = ksf_params_check(ksf)) < 0)
		goto out;
	/* RecoverCredentials: unmask server_pk | envelope, then open the envelope. */
	ret = randomized_password(rwd, st, password, password_len, ke2 + KE2_EVAL, ksf);
	if (ret < 0)
		goto out;
	if ((ret = hkdf_sha512_expand(masking_key, NH, rwd, NH, LIT("MaskingKey"), NULL, 0)) < 0)
		goto out;
	TRACE("masking_key", masking_key, NH);
	ret = hkdf_sha512_expand(pad, sizeof pad, masking_key, NH, ke2 + KE2_MNONCE, NN,
	                         LIT("CredentialResponsePad"));
	if (ret < 0)
		goto out;
	for (i = 0; i < MASKED_LEN; i++)
		plain[i] = pad[i] ^ ke2[KE2_MASKED + i];
	TRACE("envelope", envelope, OPAQUE_ENVELOPE_LEN);
	ret = envelope_keys(auth_key, export_key, client_sk, client_pk, rwd, envelope);
	if (ret < 0)
		goto out;
	ids = ids_of(p, client_pk, server_pk);
	envelope_tag(tag, auth_key, envelope, server_pk, &ids);
	if (sodium_memcmp(tag, envelope + NN, NM) != 0) {
		ret =
		    SV_ERR_AUTH; /* wrong password, or KE2 not from the server we registered with */
		goto out;
	}
	if ((ret = h2c_element_check(server_pk)) < 0)
		goto out;

	/* 3DH from the client's side, then check the server MAC before answering. */
	if ((ret = smul(ikm, st->client_secret, ke2 + KE2_KEYSHARE)) < 0 ||
	    (ret = smul(ikm + NPK, st->client_secret, server_pk)) < 0 ||
	    (ret = smul(ikm + 2 * NPK, client_sk, ke2 + KE2_KEYSHARE)) < 0)
		goto out;
	if ((ret = ake_derive(&keys, p, &ids, st->ke1, ke2, ikm)) < 0)
		goto out;
	ake_server_mac(mac, &keys);
	if (sodium_memcmp(mac, ke2 + KE2_MAC_OFF, NM) != 0) {
		ret = SV_ERR_AUTH;
		goto out;
	}
	ake_client_mac(ke3, &keys, ke2 + KE2_MAC_OFF);
	memcpy(session_key, keys.session_key, OPAQUE_SESSION_KEY_LEN);
	if (server_pk_out != NULL)
		memcpy(server_pk_out, server_pk, NPK);
out:
	sodium_memzero(rwd, sizeof rwd);
	sodium_memzero(masking_key, sizeof masking_key);
	sodium_memzero(pad, sizeof pad);
	sodium_memzero(plain, sizeof plain);
	sodium_memzero(auth_key, sizeof auth_key);
	sodium_memzero(client_sk, sizeof client_sk);
	sodium_memzero(ikm, sizeof ikm);
	sodium_memzero(tag, sizeof tag);
	sodium_memzero(mac, sizeof mac);
	sodium_memzero(&keys, sizeof keys);
	opaque_client_state_wipe(st);
	if (ret < 0) {
		sodium_memzero(ke3, OPAQUE_KE3_LEN);
		sodium_memzero(session_key, OPAQUE_SESSION_KEY_LEN);
		sodium_memzero(export_key, OPAQUE_EXPORT_KEY_LEN);
	}
	return ret;
}
