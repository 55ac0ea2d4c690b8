/*
 * sealvaultd's side of the audit trail (common/audit.h, docs/operations.md "Audit trail"): it
 * reads the enclave's SV_MSG_AUDIT frames from its end of the audit pair and writes each record
 * to the journal (sd_journal_send, when its stderr is the journal's stream) or as one line on
 * stderr; the audit key the enclave hands over at each start goes to the key file for
 * `sealvault-admin audit-id`, and nowhere else.
 */
#ifndef SV_DAEMON_AUDIT_H
#define SV_DAEMON_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/audit.h"

/* fd: sealvaultd's end (non-blocking). key_file: where the key goes (NULL: nowhere). Decides
 * between the journal and stderr: the journal when $JOURNAL_STREAM names stderr's device and
 * inode (systemd.exec(5)). Registers daemon_audit_readable to run at exit, so that what the
 * enclave wrote before it was stopped is written out too. */
void daemon_audit_open(int fd, const char *key_file);

/* Reads and writes out every record waiting on the pair (main.c's SIGIO reader calls it first,
 * so every wait that handles SIGIO reads the audit pair too, and once more at exit). */
void daemon_audit_readable(void);

/* 1 when $JOURNAL_STREAM ("DEV:INODE") names the file open on fd. */
int daemon_audit_is_journal(const char *journal_stream, int fd);

/* Writes out one decoded record: to the journal with the fields of audit_fields, or as the line
 * of audit_line. For the fuzz target and tests: journal 0 writes to stream. */
void daemon_audit_write(const struct audit_record *r);

#endif
