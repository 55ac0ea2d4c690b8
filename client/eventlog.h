/*
 * The TCG PC Client Platform Firmware Profile crypto-agile event log (what Linux exposes as
 * /sys/kernel/security/tpm0/binary_bios_measurements): a TCG_PCClientPCREvent carrying the
 * "Spec ID Event03" header (which lists the digest algorithms and their sizes), then
 * TCG_PCR_EVENT2 records. Replayed into the SHA-256 bank: EV_NO_ACTION events are not extended,
 * except that a StartupLocality event sets PCR 0's initial value. Strict: anything malformed,
 * truncated, or with a digest algorithm the header does not list is an error.
 */
#ifndef SV_CLIENT_EVENTLOG_H
#define SV_CLIENT_EVENTLOG_H

#include <stddef.h>
#include <stdint.h>

#define CLIENT_EVENTLOG_MAX  (16u * 1024 * 1024)
#define CLIENT_EVENTLOG_PCRS 24

struct client_eventlog_replay {
	uint8_t pcr[CLIENT_EVENTLOG_PCRS][32]; /* SHA-256 bank after replay */
	uint32_t extended;                     /* PCRs at least one event extended */
	size_t events;                         /* records after the header */
};

/* Replays log into out. SV_ERR_INVALID with the offset and what is wrong in why. */
int client_eventlog_replay(struct client_eventlog_replay *out, const uint8_t *log, size_t len,
                           char *why, size_t why_len) __attribute__((warn_unused_result));

#endif
