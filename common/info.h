/*
 * The vault's public description, GET /v1/info (docs/protocol.md "Vault information"): the OPAQUE
 * suite, the context string, the guess-limit policy, the OPAQUE server public key, the vault id,
 * the wire protocol versions and the recommended KSF profile, as one JSON object. The enclave
 * builds it once at start from its own configuration and keys (the broker only carries it); the
 * client reads it before its first guess and refuses to spend one on a vault whose suite or
 * context differs from its own (client/info.h).
 */
#ifndef SV_COMMON_INFO_H
#define SV_COMMON_INFO_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* RFC 9807 OPAQUE-3DH with the ristretto255-SHA512 OPRF, HKDF/HMAC/SHA-512 (docs/protocol.md
 * "Cryptographic suite"); both sides compare this string byte for byte. */
#define INFO_SUITE          "OPAQUE-3DH-ristretto255-SHA512"
#define INFO_SUITE_MAX      63
#define INFO_CONTEXT_MAX    1024 /* bytes, as sealvault-enclave --context */
#define INFO_PK_LEN         32
#define INFO_VAULT_ID_LEN   16
#define INFO_VERSIONS_MAX   8
#define INFO_JSON_MAX       8192 /* the longest document (a 1024-byte context) is about 5 KB */
#define INFO_CACHE_CONTROL  "public, max-age=300" /* of a 200 answer (the broker's header) */
#define INFO_VAULT_ID_LABEL "sealvault-vault-id-1"

/* The profile this release recommends for new registrations: the vault never sees the KSF (it
 * runs on the client), so this is advice, the default of libsealvault (SV_KSF_DEFAULT_*). */
#define INFO_KSF_T     3
#define INFO_KSF_M_KIB 65536

struct sv_info {
	char suite[INFO_SUITE_MAX + 1];
	uint8_t context[INFO_CONTEXT_MAX];
	size_t context_len;
	unsigned guess_default, guess_max; /* 1..255 each */
	uint8_t server_pk[INFO_PK_LEN];
	uint8_t vault_id[INFO_VAULT_ID_LEN];
	uint8_t versions[INFO_VERSIONS_MAX];
	size_t n_versions;
	uint32_t ksf_t, ksf_m_kib; /* Argon2id, p = 1; 0 and 0: a KSF this reader does not know */
};

/* vault_id = the first 16 bytes of SHA-256("sealvault-vault-id-1" | server_public_key): it names
 * one initialised vault (sealvault-admin init makes a new key) and stays the same across restarts,
 * counter migrations and reseals, which keep the key. */
void info_vault_id(uint8_t out[static INFO_VAULT_ID_LEN], const uint8_t pk[static INFO_PK_LEN]);

/* Appends the JSON text of info to out (no status byte). SV_ERR_RANGE for a field out of its
 * bounds, SV_ERR_NOMEM, or the buffer's error when out is too small. */
int info_encode(const struct sv_info *info, struct sv_buf *out) __attribute__((warn_unused_result));

#endif
