/*
 * libsealvault: store a backup key in a sealvault server and get it back with a password.
 *
 * The server never sees the password or the backup key: registration and login are OPAQUE
 * (RFC 9807, ristretto255-SHA512) with an Argon2id key-stretching function run here, and the
 * backup key is encrypted under a key derived from OPAQUE's export_key before it is uploaded.
 * Every login costs one of the guesses fixed at registration; when they are used up the server
 * destroys the record for good.
 *
 * One struct sv_ctx talks to one server (one realm, docs/design.md §6) over HTTPS with a pinned CA
 * file. A context is not thread-safe; use one per thread. All functions are synchronous.
 *
 * Results: the operations return an enum sv_result; SV_RESULT_ERROR means "something other than
 * the password went wrong" and sv_ctx_error() says what and what to do about it. attempts_left is
 * filled in whenever the server reported it and set to -1 otherwise.
 */
#ifndef SEALVAULT_H
#define SEALVAULT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SV_API __attribute__((visibility("default")))

#define SV_LIB_VERSION "0.4.0"
/* The wire protocol version this library speaks (first byte of every request body). */
#define SV_PROTOCOL_VERSION 1

/* Limits of the inputs. */
#define SV_USER_MAX_LEN     255  /* user identifier: 1..255 bytes */
#define SV_PASSWORD_MAX_LEN 1024 /* password: 1..1024 bytes */
#define SV_SECRET_MAX_LEN   462  /* backup key: 1..462 bytes (a 512-byte sealed blob) */
#define SV_MAX_ATTEMPTS_MAX 255  /* guess limit: 1..255, 0 = the server's default */
#define SV_TOKEN_MAX_LEN    4096 /* access token: a JWT of at most this many characters */

/* The OPAQUE context string both sides bind into the handshake; sealvaultd's default. */
#define SV_DEFAULT_CONTEXT "sealvault-v1"

/* The Argon2id (p = 1) profile used to stretch the password. Raising it later means a password
 * change (sv_change_password) with the new profile set on the context. */
#define SV_KSF_DEFAULT_T     3
#define SV_KSF_DEFAULT_M_KIB 65536
#define SV_KSF_MIN_T         1
#define SV_KSF_MIN_M_KIB     8
#define SV_KSF_MAX_M_KIB     (4u * 1024 * 1024)

/* A recovery code from sv_generate_code: 25 symbols in 5 groups (125 bits), with dashes. */
#define SV_CODE_LEN 29

enum sv_result {
	SV_RESULT_OK = 0,
	SV_RESULT_WRONG_PASSWORD = 1, /* wrong password or unknown user; attempts_left if known */
	SV_RESULT_LOCKED = 2,         /* the record was destroyed after too many wrong guesses */
	SV_RESULT_EXISTS = 3,         /* register: the user is already registered */
	SV_RESULT_BUSY = 4,           /* the server is overloaded or rate-limits us; retry later */
	SV_RESULT_ERROR = 5,          /* anything else: sv_ctx_error() explains */
	SV_RESULT_UNVERIFIED = 6,     /* the server failed attestation; sv_ctx_failed_check() */
	/* since 0.3.0, from the *_token functions only: the vault refused the access token (HTTP
	 * 401 or 403 insufficient_scope); sv_ctx_error() is "the vault refused the access token:
	 * <the server's reason>". Nothing was charged. */
	SV_RESULT_TOKEN_REFUSED = 7,
	/* since 0.3.0, register: the vault holds as many users as it may (HTTP 507); nothing
	 * changed; another vault or a later retry may take it */
	SV_RESULT_FULL = 8,
};

struct sv_ctx;

/* A new context for the server at base URL server_url (https://host:port, no trailing path).
 * Returns 0, or -1 (out of memory, libsodium or libcurl failed to initialise, or a bad URL:
 * only https:// URLs are accepted). */
SV_API int sv_ctx_new(struct sv_ctx **out, const char *server_url);
SV_API void sv_ctx_free(struct sv_ctx *ctx);

/* The PEM file of the CA (or the self-signed certificate) to trust. Without one the system's
 * trust store is used. Returns 0 or -1 (out of memory). */
SV_API int sv_ctx_set_cacert(struct sv_ctx *ctx, const char *path);
/* The OPAQUE context string; must equal the server's (--context). May be empty (len 0).
 * Default SV_DEFAULT_CONTEXT. Returns 0 or -1 (too long: > 1024 bytes, or out of memory).
 * Before its first guess with a context, an operation reads the server's
 * GET /v1/info and, when the server's context, OPAQUE suite or protocol versions differ from this
 * library's, returns SV_RESULT_ERROR naming the mismatch without sending anything that costs a
 * guess. A server without /v1/info (404) is used as before. */
SV_API int sv_ctx_set_context(struct sv_ctx *ctx, const uint8_t *context, size_t len);
/* The Argon2id profile (t passes over m_kib KiB, p = 1). Must be the one used at registration.
 * Returns 0 or -1 (outside SV_KSF_MIN_T.., SV_KSF_MIN_M_KIB..SV_KSF_MAX_M_KIB). */
SV_API int sv_ctx_set_ksf(struct sv_ctx *ctx, uint32_t t, uint32_t m_kib);
/* Timeout for each HTTPS request in seconds (default 30). */
SV_API void sv_ctx_set_timeout(struct sv_ctx *ctx, unsigned seconds);
/* The last error message of this context ("" if none). Valid until the next call on ctx. */
SV_API const char *sv_ctx_error(const struct sv_ctx *ctx);

/*
 * Attestation (since 0.2.0; docs/attestation.md). With an expected-values file set, every
 * operation below first verifies the server: a TPM quote over a fresh nonce, the TPM's EK
 * certificate chain, the AK's binding to that EK, the boot and IMA logs, and the statement
 * binding the vault's OPAQUE key, policy and build to that boot state. When a check fails the
 * operation sends nothing to the vault and returns SV_RESULT_UNVERIFIED; sv_ctx_error() says
 * "<check>: <reason>" and sv_ctx_failed_check() names the check. The OPAQUE server key the
 * protocol then uses must be the attested one (else SV_RESULT_UNVERIFIED, check "server-key").
 */
/* Reads the expect file at path (as written by `sealvault-admin expect`); NULL turns
 * verification off. Returns 0, or -1 with the reason in sv_ctx_error(). */
SV_API int sv_ctx_set_expect(struct sv_ctx *ctx, const char *path);
/* Adds the TPM manufacturer CA certificates (PEM, root and intermediates) in path to those of
 * the expect file. Returns 0, or -1 with the reason in sv_ctx_error(). */
SV_API int sv_ctx_set_tpm_ca(struct sv_ctx *ctx, const char *path);
/*
 * Verifies the server against the expect file. With nonce and evidence_json NULL, fetches
 * evidence for a fresh random nonce (GET /v1/attestation); otherwise checks the saved evidence
 * (evidence_len bytes of JSON) for the nonce (8..64 bytes) it was fetched for. Either way the AK
 * binding is checked live with the server. On SV_RESULT_OK a one-line summary goes into summary
 * (may be NULL). SV_RESULT_UNVERIFIED: a check failed (sv_ctx_failed_check); SV_RESULT_ERROR:
 * verification could not run (network, malformed evidence, no expect file).
 */
SV_API enum sv_result sv_verify(struct sv_ctx *ctx, const uint8_t *nonce, size_t nonce_len,
                                const char *evidence_json, size_t evidence_len, char *summary,
                                size_t summary_len);
/* The stable name of the check that failed in the last call ("ek-chain", "nonce", ...; see
 * docs/attestation.md), or NULL. */
SV_API const char *sv_ctx_failed_check(const struct sv_ctx *ctx);

/* Registers user with password and stores secret (1..SV_SECRET_MAX_LEN bytes), allowing
 * max_attempts wrong guesses (0 = the server's default). */
SV_API enum sv_result sv_register(struct sv_ctx *ctx, const char *user, const uint8_t *password,
                                  size_t password_len, const uint8_t *secret, size_t secret_len,
                                  unsigned max_attempts);

/* Recovers the secret into a buffer allocated by the library: free it with sv_secret_free(),
 * which wipes it. Costs one guess; a right password resets the count. */
SV_API enum sv_result sv_recover(struct sv_ctx *ctx, const char *user, const uint8_t *password,
                                 size_t password_len, uint8_t **secret, size_t *secret_len,
                                 int *attempts_left);
SV_API void sv_secret_free(uint8_t *secret, size_t secret_len);

/* Deletes the user's record after proving the password. */
SV_API enum sv_result sv_delete(struct sv_ctx *ctx, const char *user, const uint8_t *password,
                                size_t password_len, int *attempts_left);

/* Replaces the password (and re-encrypts the secret under the new one with the context's current
 * KSF profile), setting a new guess limit (0 = the server's default). Needs two logins: one to
 * recover the secret, one authenticated session for the change; each costs a guess that the
 * right password gives back. */
SV_API enum sv_result sv_change_password(struct sv_ctx *ctx, const char *user,
                                         const uint8_t *old_password, size_t old_len,
                                         const uint8_t *new_password, size_t new_len,
                                         unsigned max_attempts, int *attempts_left);

/*
 * Access tokens (since 0.3.0; docs/tokens.md). A vault that runs with `auth = tokens` acts only
 * on requests that carry a short-lived token (a JWT) signed by one of its tenants, the provider
 * whose account system vouches for the user: its `sub` must be user, and its scope must cover
 * the operation (register: "register"; recover: "recover"; delete: "delete"; change-password:
 * "recover register"; no scope claim allows all). Get one from the provider's backend for each
 * operation. These functions are the ones above with the token (a NUL-terminated string, at most
 * SV_TOKEN_MAX_LEN characters) sent as "Authorization: Bearer" on every vault request of the
 * call; the library keeps no copy after it returns. A refused token is SV_RESULT_TOKEN_REFUSED
 * and costs no guess. token NULL sends none (a vault with `auth = open`) and still reports a
 * refusal as SV_RESULT_TOKEN_REFUSED; the functions above are the same calls for 0.2 callers,
 * which get SV_RESULT_ERROR for a refusal.
 */
SV_API enum sv_result sv_register_token(struct sv_ctx *ctx, const char *token, const char *user,
                                        const uint8_t *password, size_t password_len,
                                        const uint8_t *secret, size_t secret_len,
                                        unsigned max_attempts);
SV_API enum sv_result sv_recover_token(struct sv_ctx *ctx, const char *token, const char *user,
                                       const uint8_t *password, size_t password_len,
                                       uint8_t **secret, size_t *secret_len, int *attempts_left);
SV_API enum sv_result sv_delete_token(struct sv_ctx *ctx, const char *token, const char *user,
                                      const uint8_t *password, size_t password_len,
                                      int *attempts_left);
SV_API enum sv_result sv_change_password_token(struct sv_ctx *ctx, const char *token,
                                               const char *user, const uint8_t *old_password,
                                               size_t old_len, const uint8_t *new_password,
                                               size_t new_len, unsigned max_attempts,
                                               int *attempts_left);

/*
 * Threshold realms (since 0.4.0; docs/realms.md). One secret spread over n independent vaults
 * ("realms") with a threshold t: any t of them recover it with the password, fewer learn nothing,
 * and the password can be guessed at most floor(n * G / t) times however an attacker mixes them
 * (G: each realm's guess limit). A struct sv_realms holds a realm list (the JSON file of
 * docs/realms.md: each realm's URL, pinned CA file, vault id, optional attestation expect file and
 * token file) and talks to all its realms in parallel; every call is synchronous. Not
 * thread-safe: one per thread.
 *
 * Results are those of the single-vault calls: SV_RESULT_OK; SV_RESULT_WRONG_PASSWORD (recover:
 * the realms' unlock check says the password is wrong; attempts_left is the minimum over the
 * realms used); SV_RESULT_LOCKED (too few realms still hold the registration: they destroyed it
 * after too many wrong guesses); SV_RESULT_TOKEN_REFUSED and SV_RESULT_UNVERIFIED (the operation
 * failed and a realm missing refused its token or failed attestation); SV_RESULT_ERROR for
 * everything else, notably too few realms answering. sv_realms_error() says what happened, naming
 * the realms: "recovery needs T realms, only K answered; missing: NAME (reason), ...".
 * Realms left out along the way (a wrong evaluation proof, a share that fails its MAC, a stale
 * registration, no answer) are reported as warnings, one sentence each starting "realm NAME: ".
 */
#define SV_REALMS_SECRET_MAX_LEN 256 /* the secret with realms: 1..256 bytes */

struct sv_realms;
typedef void (*sv_realms_warn_fn)(void *arg, const char *message);

/* A new, empty realm set: 0, or -1 (out of memory, libsodium failed). */
SV_API int sv_realms_new(struct sv_realms **out);
SV_API void sv_realms_free(struct sv_realms *r);
/* Reads the realm list file at path (relative paths inside against its directory). 0, or -1
 * with the reason (naming the bad key or entry) in sv_realms_error(). */
SV_API int sv_realms_load(struct sv_realms *r, const char *path);
/* The last error message ("" if none). Valid until the next call on r. */
SV_API const char *sv_realms_error(const struct sv_realms *r);
/* The number of realms loaded, and the name of realm i (0-based; NULL out of range). */
SV_API unsigned sv_realms_count(const struct sv_realms *r);
SV_API const char *sv_realms_name(const struct sv_realms *r, unsigned i);
/* The threshold t: the list's "threshold" unless set here (1..count); 0 when neither gave one.
 * Register needs one; recover uses the registration's own and refuses one below this. */
SV_API unsigned sv_realms_threshold(const struct sv_realms *r);
SV_API int sv_realms_set_threshold(struct sv_realms *r, unsigned t);
/* The access token for realm i (a JWT, copied; NULL: read the list's token file again at each
 * operation, or send none). 0, or -1 (out of range, not a JWT). */
SV_API int sv_realms_set_token(struct sv_realms *r, unsigned i, const char *token);
/* The Argon2id profile for new registrations (recovery uses the registration's). */
SV_API int sv_realms_set_ksf(struct sv_realms *r, uint32_t t, uint32_t m_kib);
/* Timeout for each HTTPS exchange in seconds (default 30). */
SV_API void sv_realms_set_timeout(struct sv_realms *r, unsigned seconds);
/* TPM manufacturer CA certificates (PEM) for the realms' attestation, as sv_ctx_set_tpm_ca. */
SV_API int sv_realms_set_tpm_ca(struct sv_realms *r, const char *path);
/* Called with each warning (may be NULL). */
SV_API void sv_realms_set_warn(struct sv_realms *r, sv_realms_warn_fn fn, void *arg);
/* The per-realm guess limit G for a desired total (0: 10) with the current threshold, and the
 * resulting bound floor(n * G / t). 0, or -1 (no threshold, or a total below ceil(n / t)). */
SV_API int sv_realms_guess_limit(const struct sv_realms *r, unsigned total, unsigned *per_realm,
                                 unsigned *bound);
/* Registers user at every realm: reads GET /v1/info of each (its vault_id must be the list's id),
 * then sends each realm its share. Success when at least min_realms (0: all; at least the
 * threshold) took it; *registered (may be NULL) says how many did. total_attempts is the desired
 * total number of guesses across realms (0: 10), see sv_realms_guess_limit. */
SV_API enum sv_result sv_realms_register(struct sv_realms *r, const char *user,
                                         const uint8_t *password, size_t password_len,
                                         const uint8_t *secret, size_t secret_len,
                                         unsigned total_attempts, unsigned min_realms,
                                         unsigned *registered);
/* Recovers the secret (free it with sv_secret_free). Costs one guess at each of the t realms
 * used; the right password resets them. */
SV_API enum sv_result sv_realms_recover(struct sv_realms *r, const char *user,
                                        const uint8_t *password, size_t password_len,
                                        uint8_t **secret, size_t *secret_len, int *attempts_left);
/* Deletes user's registration at every realm (no password; the token's scope must allow it).
 * SV_RESULT_OK only when every realm answered 200; *deleted (may be NULL) says how many did. */
SV_API enum sv_result sv_realms_delete(struct sv_realms *r, const char *user, unsigned *deleted);

/* Writes a fresh random recovery code (SV_CODE_LEN characters + NUL) into code: 25 symbols from
 * a 32-letter alphabet without look-alikes, in groups of 5 joined by '-'. Returns 0 or -1. */
SV_API int sv_generate_code(char code[SV_CODE_LEN + 1]);

/* A short English name of a result ("ok", "wrong password", ...). */
SV_API const char *sv_result_str(enum sv_result r);

#ifdef __cplusplus
}
#endif

#endif
