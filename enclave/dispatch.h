/*
 * The enclave's table of permitted requests (after OpenSSH's monitor table): each frame type the
 * broker may send maps to one handler. The table is expanded from the ROUTE rows of SV_MSG_TABLE
 * (common/msgtable.h), whose HANDLER column names the handler: vault (client protocol types, to
 * vault_handle()), realm (the /v2/realm/ types, to realm_srv_handle()), attest (the two
 * attestation types, to the attestation hook), info, stats and health (answered here). A type
 * without a ROUTE row (SV_MSG_REPLY, which only the enclave sends, and the restart control frames)
 * is a protocol violation: dispatch_request() returns SV_ERR_PROTOCOL and the serve loop exits.
 */
#ifndef SV_ENCLAVE_DISPATCH_H
#define SV_ENCLAVE_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/frame.h"

struct vault;
struct store;
struct dispatch;

int dispatch_new(struct dispatch **out, struct vault *v, struct store *s)
    __attribute__((warn_unused_result));
void dispatch_free(struct dispatch *d);

/* SV_MSG_ATTESTATION and SV_MSG_ACTIVATE go to fn (enclave/attestsrv.h: attestsrv_handle), which
 * writes a complete reply payload; without one they are answered 500. */
typedef int (*dispatch_attest_fn)(void *arg, uint16_t type, const uint8_t *req, size_t len,
                                  struct sv_buf *reply);
void dispatch_set_attest(struct dispatch *d, dispatch_attest_fn fn, void *arg);

/* The body of SV_MSG_INFO (GET /v1/info): the JSON text of common/info.h, copied. It is fixed for
 * the life of the process, so main builds it once before the sandbox; without it INFO is answered
 * 500. SV_ERR_NOMEM or SV_OK. */
int dispatch_set_info(struct dispatch *d, const uint8_t *json, size_t len)
    __attribute__((warn_unused_result));

/* The /v2/realm/ requests (handler `realm`) go to r (enclave/realm.h); without one they are
 * answered 500. */
struct realm_srv;
void dispatch_set_realm(struct dispatch *d, struct realm_srv *r);

/* The drain state the serve loop keeps (enclave/drain.h): while it is on, login/starts are
 * refused before their handler and HEALTH answers SV_STATUS_BUSY. NULL: no drain. */
struct drain;
void dispatch_set_drain(struct dispatch *d, struct drain *dr);

/* 1 if the broker may send this type (its row is MSG_F_REQUEST). */
int dispatch_permitted(uint16_t type);

/* Handles one request frame; writes the complete SV_MSG_REPLY payload into reply (reset first).
 * SV_ERR_PROTOCOL for a type not permitted; any other negative value means the process must
 * stop (vault_handle's internal error). */
int dispatch_request(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                     struct sv_buf *reply) __attribute__((warn_unused_result));

/* The NV-write budget the serve loop keeps (enclave/budget.h), for /metrics; per_day 0 means
 * unlimited. */
struct budget;
void dispatch_set_budget(struct dispatch *d, const struct budget *b, unsigned per_day);

/* The serve loop reports every durable commit: its duration and how many requests it covered. */
void dispatch_note_commit(struct dispatch *d, uint64_t usec, size_t requests);

/* For /metrics: the TPM whose retry counters are shown (NULL: none), and what sealvaultd counted
 * before this enclave started (its --restarts and --tpm-timeouts: a timeout ends the enclave, so
 * only the supervisor can count them). */
struct tpm;
void dispatch_set_tpm(struct dispatch *d, struct tpm *t, uint64_t restarts, uint64_t tpm_timeouts);
/* The serve loop reports when a commit's NV increment becomes owed (the TPM throttles NV writes,
 * store.h) and when it is paid: while throttled, HEALTH answers SV_STATUS_BUSY (/healthz 503) and
 * the time counts into sealvault_tpm_throttled_seconds_total. */
void dispatch_set_throttled(struct dispatch *d, int on, uint64_t now_us);
/* n replies answered SV_STATUS_BUSY because of the throttling. */
void dispatch_note_throttled_replies(struct dispatch *d, size_t n);

#endif
