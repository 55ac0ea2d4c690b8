/*
 * The enclave's side of the audit trail (common/audit.h, docs/operations.md "Audit trail"): one
 * record per state change, sent to sealvaultd on the audit link (descriptor 4, --audit-link) only
 * once the change is durable, and before the reply that confirms it leaves.
 *
 * The vault notes a record (audit_note) when it stages the change in the store; the serve loop
 * says when the store's frames become durable: audit_written after store_write (a guess reset is
 * durable then: its records go at once), audit_anchored after the NV increment of the written
 * frame (every other record of that frame goes). Records noted while an anchor runs belong to the
 * next frame, as the store's staged changes do. A change that never becomes durable (the process
 * ends first) is never recorded.
 *
 * A record waits for room on the link: when sealvaultd reads slowly the vault waits rather than
 * drop a record (docs/operations.md argues it). Without --audit-link (the enclave started alone, as
 * the sandbox test does) the same records go to stderr as lines.
 */
#ifndef SV_ENCLAVE_AUDIT_H
#define SV_ENCLAVE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/audit.h"

/* fd: the audit link (checked to be a connected SOCK_SEQPACKET socket), or -1 for stderr lines.
 * cap: the most records one frame can carry (two per request of a batch). */
int audit_open(int fd, size_t cap, char *why, size_t why_len) __attribute__((warn_unused_result));

/* After store_open: hands the audit key (store_audit_key) to sealvaultd, where it is never
 * logged, and sends the start-up record (kind AUDIT_STARTUP) and, when this start charged one,
 * the power-cut penalty's (AUDIT_PENALTY; else NULL). Ends the process if the link fails. */
void audit_started(const uint8_t key[static AUDIT_KEY_LEN], struct audit_record *startup,
                   struct audit_record *penalty);

/* The start was refused (store_open failed): a start-up record with verdict "refused". */
void audit_refused(void);

/* A change was staged for id: a record of kind (AUDIT_REGISTER .. AUDIT_REALM_DELETED) goes
 * out when its frame is durable. at_write: durable once written (a guess reset), else anchored.
 * SV_ERR_RANGE when more records are noted than audit_open's cap (a bug: the caller ends). */
struct audit_note {
	uint8_t kind;
	uint8_t attempts_left, guess_limit, known, restored;
	uint8_t operator; /* AUDIT_DELETED: sealvault-admin delete (through sealvaultd) */
	int at_write;
};
int audit_note(const struct audit_note *n, const uint8_t *id, size_t id_len)
    __attribute__((warn_unused_result));

/* store_write has written the staged changes under counter: sends their at_write records. */
void audit_written(uint64_t counter);

/* The written frame is anchored: sends its remaining records. */
void audit_anchored(void);

/* For /metrics: records sent since start, the times a record waited for room on the link
 * (sealvaultd reading slowly) and how long in total. */
void audit_stats(uint64_t *sent, uint64_t *waits, uint64_t *waited_us);

#endif
