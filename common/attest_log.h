/*
 * The boot event log and the IMA log as attestation evidence carries them: read whole from
 * offset 0 of an already-open descriptor (the logs only grow; a verifier replays a prefix) and
 * encoded as standard base64. Used by the broker and by sealvault-admin attest.
 */
#ifndef SV_COMMON_ATTEST_LOG_H
#define SV_COMMON_ATTEST_LOG_H

#include <stddef.h>
#include <stdint.h>

#define ATTEST_LOG_MAX (16u << 20) /* cap per log, bytes */

/* The file behind fd from offset 0 with pread (the descriptor's offset is untouched) into a
 * malloc'd buffer. SV_ERR_RANGE when it is larger than ATTEST_LOG_MAX, SV_ERR_IO on a read
 * error. */
int attest_log_read(int fd, uint8_t **out, size_t *len) __attribute__((warn_unused_result));
/* Standard padded base64 of p as a malloc'd NUL-terminated string; NULL when out of memory. */
char *attest_log_b64(const uint8_t *p, size_t n);

#endif
