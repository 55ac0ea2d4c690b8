/*
 * The IMA measurement list in its ascii form (/sys/kernel/security/ima/ascii_runtime_measurements),
 * templates ima-ng and ima-sig with SHA-256 file hashes only:
 *   10 <template hash: 40 or 64 hex> ima-ng sha256:<64 hex> <path>\n
 *   10 <template hash: 40 or 64 hex> ima-sig sha256:<64 hex> <path> <signature hex or empty>\n
 * Each entry's template data (u32le length + "sha256:" NUL digest, u32le length + path NUL, and
 * for ima-sig u32le length + signature) is rebuilt and hashed; PCR 10 of the SHA-256 bank is
 * replayed with SHA-256 of it (0xff.. for a violation entry, whose template hash is zero). The log
 * may have grown since the quote: the first prefix that replays to the quoted value is the attested
 * part, and only its entries are checked against the allow callback.
 */
#ifndef SV_CLIENT_IMALOG_H
#define SV_CLIENT_IMALOG_H

#include <stddef.h>
#include <stdint.h>

#define CLIENT_IMALOG_MAX      (16u * 1024 * 1024)
#define CLIENT_IMALOG_PATH_MAX 4096

/* Returns 1 when an executed file with this SHA-256 and path is expected, 0 otherwise. */
typedef int (*client_imalog_allow_fn)(void *arg, const uint8_t sha256[32], const char *path);

struct client_imalog_result {
	size_t entries; /* entries in the attested prefix */
	size_t total;   /* entries in the whole log */
};

/*
 * 0 when a non-empty prefix of log replays to pcr10 and every entry of it but a first
 * boot_aggregate is allowed. SV_ERR_INVALID for a malformed log, SV_ERR_AUTH when no prefix replays
 * or an entry is not allowed; why says which line and why.
 */
int client_imalog_check(struct client_imalog_result *res, const char *log, size_t len,
                        const uint8_t pcr10[static 32], client_imalog_allow_fn allow, void *arg,
                        char *why, size_t why_len) __attribute__((warn_unused_result));

#endif
