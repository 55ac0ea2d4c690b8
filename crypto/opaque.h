/*
 * OPAQUE-3DH (RFC 9807) with OPRF ristretto255-SHA512, 3DH over ristretto255, HKDF-SHA512,
 * HMAC-SHA512, SHA-512: exactly the configuration of the RFC's vectors C.1.1, C.1.2 and C.2.1.
 * Message layouts are in docs/protocol.md.
 *
 * Conventions
 * - Every function returns 0 or a negative SV_ERR_* (common/err.h). On failure no output is
 *   valid, and whatever had been written to an output is wiped.
 * - Every message argument has the exact fixed size of its macro; decoding rejects
 *   non-canonical encodings and the identity element (SV_ERR_CRYPTO).
 * - Public functions draw nonces and seeds from the system RNG; the `_det` variants take them as
 *   arguments so that test vectors can be replayed. Use the `_det` variants only in tests.
 * - No function allocates; nothing here calls sodium_malloc/mlock per call. Secret temporaries
 *   live on the stack and are wiped before returning.
 * - Structs marked SECRET hold key material: keep them in sodium_malloc'd memory (or wipe them
 *   with opaque_*_wipe / sodium_memzero) and never log them.
 *
 * Server: keys come from opaque_server_key_*; per login call opaque_server_ke2 (with the stored
 * record, or a fake one from opaque_fake_record_derive for unknown identifiers) and later
 * opaque_server_finish with the client's KE3.
 * Client: opaque_client_registration_request -> (server) -> opaque_client_registration_finalize;
 * opaque_client_ke1 -> (server) -> opaque_client_ke3.
 */
#ifndef SV_CRYPTO_OPAQUE_H
#define SV_CRYPTO_OPAQUE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/ksf.h"

#define OPAQUE_NONCE_LEN       32 /* Nn */
#define OPAQUE_MAC_LEN         64 /* Nm */
#define OPAQUE_HASH_LEN        64 /* Nh */
#define OPAQUE_PK_LEN          32 /* Npk: ristretto255 element */
#define OPAQUE_SK_LEN          32 /* Nsk: ristretto255 scalar */
#define OPAQUE_SEED_LEN        32 /* Nseed */
#define OPAQUE_OPRF_SEED_LEN   64 /* server-wide oprf_seed (Nh) */
#define OPAQUE_FAKE_SEED_LEN   32 /* server-wide seed of the fake records */
#define OPAQUE_MASKING_KEY_LEN 64
#define OPAQUE_ENVELOPE_LEN    96 /* envelope_nonce(32) | auth_tag(64) */

#define OPAQUE_REGISTRATION_REQUEST_LEN  32  /* blinded_message */
#define OPAQUE_REGISTRATION_RESPONSE_LEN 64  /* evaluated_message | server_public_key */
#define OPAQUE_RECORD_LEN                192 /* client_public_key | masking_key | envelope */
#define OPAQUE_KE1_LEN                   96  /* blinded_message | client_nonce | client_keyshare */
#define OPAQUE_KE2_LEN                   320 /* credential_response(192) | auth_response(128) */
#define OPAQUE_KE3_LEN                   64  /* client_mac */
#define OPAQUE_SESSION_KEY_LEN           64
#define OPAQUE_EXPORT_KEY_LEN            64

#define OPAQUE_CREDENTIAL_ID_MAX 65535 /* credential_identifier length bound (>= 1 byte) */
#define OPAQUE_IDENTITY_MAX      65535 /* client/server identity length bound */
#define OPAQUE_CONTEXT_MAX       65535 /* context string length bound (may be 0) */
#define OPAQUE_PASSWORD_MAX      65535 /* password length bound (may be 0) */

#define OPAQUE_WUR __attribute__((warn_unused_result))

/*
 * Parameters both sides must agree on. context may be empty (NULL, 0). A NULL identity means
 * the RFC default: the client identity is the client public key, the server identity is the
 * server public key. A non-NULL identity must be 1..OPAQUE_IDENTITY_MAX bytes.
 */
struct opaque_params {
	const uint8_t *context;
	size_t context_len;
	const uint8_t *client_identity;
	size_t client_identity_len;
	const uint8_t *server_identity;
	size_t server_identity_len;
};

/* SECRET. The server's long-term AKE key pair; pk is cached (computed once from sk). */
struct opaque_server_key {
	uint8_t sk[OPAQUE_SK_LEN];
	uint8_t pk[OPAQUE_PK_LEN];
};

/* SECRET. Per-login server state between KE2 and KE3 (128 bytes, no pointers; keep thousands
 * in one sodium_malloc'd array). Wiped by opaque_server_finish whatever its outcome. */
struct opaque_server_state {
	uint8_t expected_client_mac[OPAQUE_MAC_LEN];
	uint8_t session_key[OPAQUE_SESSION_KEY_LEN];
};

/* SECRET. Client state across one round trip (registration or login; 160 bytes). */
struct opaque_client_state {
	uint8_t blind[OPAQUE_SK_LEN];         /* OPRF blind */
	uint8_t client_secret[OPAQUE_SK_LEN]; /* login: ephemeral 3DH private key */
	uint8_t ke1[OPAQUE_KE1_LEN];          /* login: the KE1 sent */
};

/* ---- server keys ---- */

/* A fresh random server AKE key pair. */
int opaque_server_key_generate(struct opaque_server_key *k) OPAQUE_WUR;
/* RFC 9807 DeriveDiffieHellmanKeyPair(seed) (ristretto255: DeriveKeyPair with info
 * "OPAQUE-DeriveDiffieHellmanKeyPair"). */
int opaque_server_key_derive(struct opaque_server_key *k,
                             const uint8_t seed[OPAQUE_SEED_LEN]) OPAQUE_WUR;
/* Loads a stored private key (reduced, non-zero) and computes its public key once. */
int opaque_server_key_from_sk(struct opaque_server_key *k,
                              const uint8_t sk[OPAQUE_SK_LEN]) OPAQUE_WUR;

/* ---- server: registration ---- */

/* CreateRegistrationResponse: evaluates the blinded password under the per-identifier OPRF key
 * derived from oprf_seed and credential_id (1..OPAQUE_CREDENTIAL_ID_MAX bytes), appends pk. */
int opaque_server_registration_response(uint8_t response[OPAQUE_REGISTRATION_RESPONSE_LEN],
                                        const uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN],
                                        const uint8_t server_pk[OPAQUE_PK_LEN],
                                        const uint8_t oprf_seed[OPAQUE_OPRF_SEED_LEN],
                                        const uint8_t *credential_id,
                                        size_t credential_id_len) OPAQUE_WUR;

/* Checks an uploaded RegistrationRecord before storing it: exactly OPAQUE_RECORD_LEN bytes and
 * a canonical, non-identity client public key (the envelope is opaque to the server). */
int opaque_record_check(const uint8_t *record, size_t len) OPAQUE_WUR;

/* The fake record for an identifier that is not registered (RFC 9807 §10.9): a client public
 * key (hashed to the group, so nobody knows its private key) and a masking key derived from
 * fake_seed and credential_id, an all-zero envelope (docs/protocol.md). It is a deterministic
 * function of (fake_seed, credential_id), so repeated logins for the same unknown identifier
 * look like a stable user. Costs one HashToGroup and one HKDF-Expand (~20 us): to keep unknown
 * and known identifiers indistinguishable in time, callers derive it for known identifiers too
 * (and discard it). */
int opaque_fake_record_derive(uint8_t record[OPAQUE_RECORD_LEN],
                              const uint8_t fake_seed[OPAQUE_FAKE_SEED_LEN],
                              const uint8_t *credential_id, size_t credential_id_len) OPAQUE_WUR;

/* ---- server: login ---- */

/* GenerateKE2: the credential response (OPRF evaluation plus the masked server public key and
 * envelope) and the server's 3DH response. record is the stored RegistrationRecord or a fake
 * record; the call takes the same path for both. On success *st holds the expected client MAC
 * and the session key. SV_ERR_CRYPTO when KE1 carries a bad element. */
int opaque_server_ke2(uint8_t ke2[OPAQUE_KE2_LEN], struct opaque_server_state *st,
                      const uint8_t ke1[OPAQUE_KE1_LEN], const uint8_t record[OPAQUE_RECORD_LEN],
                      const uint8_t *credential_id, size_t credential_id_len,
                      const uint8_t oprf_seed[OPAQUE_OPRF_SEED_LEN],
                      const struct opaque_server_key *k, const struct opaque_params *p) OPAQUE_WUR;
int opaque_server_ke2_det(uint8_t ke2[OPAQUE_KE2_LEN], struct opaque_server_state *st,
                          const uint8_t ke1[OPAQUE_KE1_LEN],
                          const uint8_t record[OPAQUE_RECORD_LEN], const uint8_t *credential_id,
                          size_t credential_id_len, const uint8_t oprf_seed[OPAQUE_OPRF_SEED_LEN],
                          const struct opaque_server_key *k, const struct opaque_params *p,
                          const uint8_t masking_nonce[OPAQUE_NONCE_LEN],
                          const uint8_t server_nonce[OPAQUE_NONCE_LEN],
                          const uint8_t server_keyshare_seed[OPAQUE_SEED_LEN]) OPAQUE_WUR;

/* ServerFinish: compares KE3 with the expected client MAC in constant time. 0 and the session
 * key on success, SV_ERR_AUTH otherwise. *st is wiped in both cases (a state is single-use). */
int opaque_server_finish(uint8_t session_key[OPAQUE_SESSION_KEY_LEN],
                         struct opaque_server_state *st,
                         const uint8_t ke3[OPAQUE_KE3_LEN]) OPAQUE_WUR;

/* ---- client ---- */

/* CreateRegistrationRequest: blinds the password; keeps the blind in *st. */
int opaque_client_registration_request(uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN],
                                       struct opaque_client_state *st, const uint8_t *password,
                                       size_t password_len) OPAQUE_WUR;
int opaque_client_registration_request_det(uint8_t request[OPAQUE_REGISTRATION_REQUEST_LEN],
                                           struct opaque_client_state *st, const uint8_t *password,
                                           size_t password_len,
                                           const uint8_t blind[OPAQUE_SK_LEN]) OPAQUE_WUR;

/* FinalizeRegistrationRequest: the same password again, the server's response, the KSF profile.
 * Writes the record to upload and the export key (SECRET). The server public key the client
 * registered against is response[32..64); a client that pins the server key compares it first.
 * Wipes *st. */
int opaque_client_registration_finalize(uint8_t record[OPAQUE_RECORD_LEN],
                                        uint8_t export_key[OPAQUE_EXPORT_KEY_LEN],
                                        struct opaque_client_state *st, const uint8_t *password,
                                        size_t password_len,
                                        const uint8_t response[OPAQUE_REGISTRATION_RESPONSE_LEN],
                                        const struct opaque_params *p,
                                        const struct ksf_params *ksf) OPAQUE_WUR;
int opaque_client_registration_finalize_det(
    uint8_t record[OPAQUE_RECORD_LEN], uint8_t export_key[OPAQUE_EXPORT_KEY_LEN],
    struct opaque_client_state *st, const uint8_t *password, size_t password_len,
    const uint8_t response[OPAQUE_REGISTRATION_RESPONSE_LEN], const struct opaque_params *p,
    const struct ksf_params *ksf, const uint8_t envelope_nonce[OPAQUE_NONCE_LEN]) OPAQUE_WUR;

/* GenerateKE1: blinds the password and starts the 3DH; keeps blind, ephemeral key, KE1 in *st. */
int opaque_client_ke1(uint8_t ke1[OPAQUE_KE1_LEN], struct opaque_client_state *st,
                      const uint8_t *password, size_t password_len) OPAQUE_WUR;
int opaque_client_ke1_det(uint8_t ke1[OPAQUE_KE1_LEN], struct opaque_client_state *st,
                          const uint8_t *password, size_t password_len,
                          const uint8_t blind[OPAQUE_SK_LEN],
                          const uint8_t client_nonce[OPAQUE_NONCE_LEN],
                          const uint8_t client_keyshare_seed[OPAQUE_SEED_LEN]) OPAQUE_WUR;

/* GenerateKE3: recovers the envelope (runs the KSF), checks the server MAC, and writes KE3, the
 * session key and the export key (both SECRET). server_pk_out (may be NULL) receives the
 * authenticated server public key. SV_ERR_AUTH for a wrong password or a forged/tampered KE2
 * (the two are indistinguishable by design); SV_ERR_CRYPTO for a bad element. Wipes *st. */
int opaque_client_ke3(uint8_t ke3[OPAQUE_KE3_LEN], uint8_t session_key[OPAQUE_SESSION_KEY_LEN],
                      uint8_t export_key[OPAQUE_EXPORT_KEY_LEN], uint8_t *server_pk_out,
                      struct opaque_client_state *st, const uint8_t *password, size_t password_len,
                      const uint8_t ke2[OPAQUE_KE2_LEN], const struct opaque_params *p,
                      const struct ksf_params *ksf) OPAQUE_WUR;

/* ---- decoders ----
 * Each checks one received message: exactly its length (SV_ERR_INVALID otherwise, without
 * reading past len) and every group element in it canonical and not the identity
 * (SV_ERR_CRYPTO). The functions above enforce the same on the elements they use, so these add
 * no safety but give an early, precise error (and are what the fuzz targets drive). */
int opaque_registration_request_check(const uint8_t *msg, size_t len) OPAQUE_WUR;
int opaque_registration_response_check(const uint8_t *msg, size_t len) OPAQUE_WUR;
int opaque_ke1_check(const uint8_t *msg, size_t len) OPAQUE_WUR;
int opaque_ke2_check(const uint8_t *msg, size_t len) OPAQUE_WUR;
int opaque_ke3_check(const uint8_t *msg, size_t len) OPAQUE_WUR;

/* Wipes a client state (for abandoned round trips). */
void opaque_client_state_wipe(struct opaque_client_state *st);

#endif
