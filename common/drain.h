/*
 * The payloads of the drain frames (common/msgtable.h; sealvaultd(8), "Stopping"). On SIGTERM
 * sealvaultd asks the broker for a drain (SV_MSG_DRAIN on the control pair), the broker passes it
 * to the enclave on its link (SV_MSG_DRAIN_ENCLAVE), the enclave answers with SV_MSG_DRAIN_STATUS
 * when it has begun and when it is over, and the broker passes each on to sealvaultd
 * (SV_MSG_DRAIN_REPORT). Request id 0 on all four.
 *
 *   request (DRAIN, DRAIN_ENCLAVE): u32 timeout_s                      (4 bytes)
 *   report (DRAIN_STATUS, DRAIN_REPORT): u8 phase | u32 pending | u32 last_guesses  (9 bytes)
 *
 * big-endian. timeout_s: 1..DRAIN_TIMEOUT_MAX_S, how long the pending logins may take. phase:
 * DRAIN_BEGUN (new login/starts are refused from now on) or DRAIN_OVER (the pending-login table
 * is empty, or the timeout passed: these logins did not finish). pending: the pending logins
 * then; last_guesses (<= pending): how many of them hold a last guess. Both count logins for
 * unknown identifiers too, which nobody can tell apart from the others.
 */
#ifndef SV_COMMON_DRAIN_H
#define SV_COMMON_DRAIN_H

#include <stddef.h>
#include <stdint.h>

#define DRAIN_TIMEOUT_MAX_S 3600
#define DRAIN_REQUEST_LEN   4
#define DRAIN_REPORT_LEN    9

enum drain_phase {
	DRAIN_BEGUN = 0,
	DRAIN_OVER = 1,
};

struct drain_report {
	uint8_t phase; /* enum drain_phase */
	uint32_t pending;
	uint32_t last_guesses;
};

/* Writes the request for timeout_s; SV_ERR_RANGE outside 1..DRAIN_TIMEOUT_MAX_S (nothing written).
 */
int drain_request_encode(uint8_t out[static DRAIN_REQUEST_LEN], unsigned timeout_s)
    __attribute__((warn_unused_result));
/* SV_ERR_INVALID when n is not DRAIN_REQUEST_LEN, SV_ERR_RANGE for a timeout outside the bounds;
 * *timeout_s is untouched on failure. */
int drain_request_decode(const uint8_t *p, size_t n, unsigned *timeout_s)
    __attribute__((warn_unused_result));

/* SV_ERR_RANGE for an unknown phase or last_guesses > pending (nothing written). */
int drain_report_encode(uint8_t out[static DRAIN_REPORT_LEN], const struct drain_report *r)
    __attribute__((warn_unused_result));
/* SV_ERR_INVALID when n is not DRAIN_REPORT_LEN, SV_ERR_RANGE as for the encoder; *r is untouched
 * on failure. */
int drain_report_decode(const uint8_t *p, size_t n, struct drain_report *r)
    __attribute__((warn_unused_result));

#endif
