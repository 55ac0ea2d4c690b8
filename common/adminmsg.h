/*
 * The payloads of sealvault-admin's online commands (common/msgtable.h: SV_MSG_ADMIN_STATUS,
 * SV_MSG_ADMIN_DELETE, SV_MSG_ADMIN_REPLY). They go sealvault-admin -> sealvaultd's admin socket
 * -> the enclave's admin pair (fd 5) and the reply back the same way; sealvaultd checks the
 * caller and relays them unchanged (daemon/adminsock.c), the enclave answers them
 * (enclave/adminsrv.c). All integers big-endian.
 *
 *   SV_MSG_ADMIN_STATUS  empty
 *   SV_MSG_ADMIN_DELETE  the identifier, 1..ADMINMSG_ID_MAX bytes (the whole payload)
 *   SV_MSG_ADMIN_REPLY   u8 enum adminmsg_code | body
 *       ADMINMSG_OK to a status: the figures of struct adminmsg_status, encoded as
 *           u16 dir_len | dir | server_pk[32] | u32 nv_index, pcr_mask, seal, orderly_mask,
 *           unclean_index | u64 init_time, durable, unclean_boots, unclean_year,
 *           unclean_year_all, counter, journal_head, snapshot_counter, journal_bytes,
 *           tail_bytes, users, destroyed, nv_writes | u8 active_slot ('a' or 'b'), power_cut,
 *           roll_forward (0 or 1)
 *       ADMINMSG_OK to a delete: empty
 *       any other code: a one-line text for the operator, 1..ADMINMSG_TEXT_MAX bytes, no NUL
 *
 * The figures are those `sealvault-admin status` prints; one struct, filled by the offline
 * command from the state it opens and by the enclave from the state it serves, and one printing
 * function (admin/status.c), so the two outputs cannot drift apart.
 */
#ifndef SV_COMMON_ADMINMSG_H
#define SV_COMMON_ADMINMSG_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define ADMINMSG_ID_MAX   255
#define ADMINMSG_DIR_MAX  4095
#define ADMINMSG_TEXT_MAX 1024
#define ADMINMSG_PK_LEN   32
/* the encoded status without its directory */
#define ADMINMSG_STATUS_FIXED (2 + ADMINMSG_PK_LEN + 5 * 4 + 13 * 8 + 3)

enum adminmsg_code {
	ADMINMSG_OK = 0,
	ADMINMSG_NOTFOUND = 1, /* delete: no such user (exit 5, as offline) */
	ADMINMSG_BUSY = 2,     /* the TPM throttles NV writes or the budget is spent: retry */
	ADMINMSG_DENIED = 3,   /* sealvaultd: the caller is not root or in group sealvault-admin */
	ADMINMSG_BAD = 4,      /* a malformed request; nothing changed */
	ADMINMSG_FAILED = 5,   /* the vault could not do it; the text says why */
};
#define ADMINMSG_CODE_MAX ADMINMSG_FAILED

struct adminmsg_status {
	char state_dir[ADMINMSG_DIR_MAX + 1]; /* NUL-terminated */
	uint8_t server_pk[ADMINMSG_PK_LEN];
	uint32_t nv_index, pcr_mask, seal, orderly_mask, unclean_index;
	uint64_t init_time, durable, unclean_boots, unclean_year, unclean_year_all;
	uint64_t counter, journal_head, snapshot_counter, journal_bytes, tail_bytes;
	uint64_t users, destroyed, nv_writes;
	char active_slot; /* 'a' or 'b' */
	uint8_t power_cut, roll_forward;
};

/* Appends the encoded status to b. SV_ERR_RANGE for a directory over ADMINMSG_DIR_MAX,
 * SV_ERR_INVALID for a field outside its values; b is unchanged on failure. */
int adminmsg_status_encode(const struct adminmsg_status *s, struct sv_buf *b)
    __attribute__((warn_unused_result));

/* Decodes exactly n bytes. SV_ERR_INVALID for a wrong length, trailing bytes, a NUL in the
 * directory or a field outside its values; *s is untouched on failure. */
int adminmsg_status_decode(const uint8_t *p, size_t n, struct adminmsg_status *s)
    __attribute__((warn_unused_result));

/* The identifier of an SV_MSG_ADMIN_DELETE payload: SV_OK for 1..ADMINMSG_ID_MAX bytes, else
 * SV_ERR_RANGE. */
int adminmsg_delete_check(const uint8_t *p, size_t n) __attribute__((warn_unused_result));

/* Writes an SV_MSG_ADMIN_REPLY payload (code, then body) into b (reset first); a text body for a
 * code other than ADMINMSG_OK is cut to ADMINMSG_TEXT_MAX bytes. */
int adminmsg_reply_encode(struct sv_buf *b, enum adminmsg_code code, const void *body, size_t n)
    __attribute__((warn_unused_result));

/* Splits an SV_MSG_ADMIN_REPLY payload: *code and the body (pointing into p). SV_ERR_INVALID for
 * an empty payload, an unknown code, or a text body that is empty, too long or holds a NUL. */
int adminmsg_reply_decode(const uint8_t *p, size_t n, enum adminmsg_code *code,
                          const uint8_t **body, size_t *body_len)
    __attribute__((warn_unused_result));

#endif
