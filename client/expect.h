/*
 * The expected-values file (docs/attestation.md): what a verifier accepts. A provider writes it
 * with `sealvault-admin expect` (or `make expect`) and publishes it; users pass it to
 * `sealvault verify --expect FILE`. Decoded strictly; encoded with the same member names.
 * build_hash is what the vault's statement must carry; binaries are the sealvault files the IMA
 * log may show (sealvault-admin writes them consistently; the decoder does not insist, so that a
 * file naming another build fails the build-hash check rather than the file's decoding).
 */
#ifndef SV_CLIENT_EXPECT_H
#define SV_CLIENT_EXPECT_H

#include <stddef.h>
#include <stdint.h>

#include "common/attest_stmt.h"

#define CLIENT_EXPECT_FILE_MAX  (16u * 1024 * 1024)
#define CLIENT_EXPECT_ALLOW_MAX 100000
#define CLIENT_EXPECT_CA_MAX    64
#define CLIENT_EXPECT_PEM_MAX   (256u * 1024)

struct client_expect_allow {
	uint8_t sha256[ATTEST_HASH_LEN];
	char *path; /* NULL: any path */
};

struct client_expect {
	uint8_t build_hash[ATTEST_HASH_LEN];
	uint8_t binaries[ATTEST_NBINARIES][ATTEST_HASH_LEN]; /* attest_binary_names order */
	uint8_t policy_hash[ATTEST_HASH_LEN];
	uint32_t boot_pcrs;
	int has_boot_values;
	uint8_t boot_values[ATTEST_PCR_COUNT][ATTEST_HASH_LEN]; /* by PCR number */
	size_t n_allow;
	struct client_expect_allow *allow; /* sorted by sha256 after decode */
	int has_server_key;
	uint8_t server_key[ATTEST_HASH_LEN];
	size_t n_ca;
	char **ca; /* PEM texts */
};

/* Decodes json into a zeroed *e. why names the member that is wrong. */
int client_expect_decode(struct client_expect *e, const char *json, size_t len, char *why,
                         size_t why_len) __attribute__((warn_unused_result));
/* Reads and decodes the file at path. */
int client_expect_load(struct client_expect *e, const char *path, char *why, size_t why_len)
    __attribute__((warn_unused_result));
void client_expect_clear(struct client_expect *e);

/* Appends the PEM text of a CA bundle file (must hold at least one certificate) to e->ca. */
int client_expect_add_ca_file(struct client_expect *e, const char *path, char *why, size_t why_len)
    __attribute__((warn_unused_result));
/* Appends "<sha256 hex> <path>" lines (blank lines and '#' comments skipped) to e->allow. */
int client_expect_add_allow_file(struct client_expect *e, const char *path, char *why,
                                 size_t why_len) __attribute__((warn_unused_result));
/* 1 when sha256 (with path, if the entry names one) is one of the binaries or allowed. */
int client_expect_allowed(const struct client_expect *e, const uint8_t sha256[static 32],
                          const char *path);

/* The JSON text of e (malloc'd, NUL-terminated, ends with a newline). */
int client_expect_encode(const struct client_expect *e, char **out)
    __attribute__((warn_unused_result));

#endif
