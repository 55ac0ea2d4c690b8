/*
 * The backup-key blob: what the client uploads at registration, encrypted under a key derived
 * from OPAQUE's export_key so that the vault only ever stores ciphertext. Layout (docs/protocol.md
 * "## Backup-key blob"):
 *
 *   version (u8 = 1) | ksf profile (KSF_PARAMS_LEN: type u8 | t u32 | m_kib u32, big-endian)
 *   | nonce (24) | XChaCha20-Poly1305 ciphertext of the secret (secret_len + 16)
 *
 * key = HKDF-Expand(export_key, "sealvault backup-key blob v1", 32); AD = the 10 header bytes
 * (version | profile) | u16 length of the user id | user id. The profile is the one the client
 * stretched the password with, so a later client knows what to derive (and when to raise it).
 */
#ifndef SV_CLIENT_BLOB_H
#define SV_CLIENT_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/ksf.h"
#include "crypto/opaque.h"

#define CLIENT_BLOB_VERSION    1
#define CLIENT_BLOB_NONCE_LEN  24
#define CLIENT_BLOB_TAG_LEN    16
#define CLIENT_BLOB_HEADER_LEN (1 + KSF_PARAMS_LEN)
#define CLIENT_BLOB_OVERHEAD   (CLIENT_BLOB_HEADER_LEN + CLIENT_BLOB_NONCE_LEN + CLIENT_BLOB_TAG_LEN)
#define CLIENT_BLOB_MAX        512 /* the server's bound on the stored blob */
#define CLIENT_SECRET_MAX      (CLIENT_BLOB_MAX - CLIENT_BLOB_OVERHEAD)
#define CLIENT_USER_MAX        255

/* Seals secret (1..CLIENT_SECRET_MAX bytes) for user (1..CLIENT_USER_MAX bytes) into blob, which
 * must hold secret_len + CLIENT_BLOB_OVERHEAD bytes; *blob_len receives that length. */
int client_blob_seal(uint8_t *blob, size_t *blob_len, const uint8_t *secret, size_t secret_len,
                     const uint8_t export_key[OPAQUE_EXPORT_KEY_LEN], const struct ksf_params *ksf,
                     const uint8_t *user, size_t user_len) __attribute__((warn_unused_result));

/* Opens a blob: checks version and profile, authenticates, writes the secret (blob_len -
 * CLIENT_BLOB_OVERHEAD bytes) into secret (room for CLIENT_SECRET_MAX) and the profile into *ksf
 * (may be NULL). SV_ERR_INVALID for a malformed blob, SV_ERR_AUTH when it does not authenticate
 * (wrong key, other user, tampered). On failure *secret_len and *ksf are left alone and the
 * secret buffer holds no plaintext. */
int client_blob_open(uint8_t *secret, size_t *secret_len, struct ksf_params *ksf,
                     const uint8_t *blob, size_t blob_len,
                     const uint8_t export_key[OPAQUE_EXPORT_KEY_LEN], const uint8_t *user,
                     size_t user_len) __attribute__((warn_unused_result));

#endif
