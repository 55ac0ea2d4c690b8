/*
 * The broker's own Prometheus counters: requests by endpoint and HTTP status, request latency, open
 * connections, refusals by the rate limiter. The enclave's counters (guesses, lock-outs, commit
 * latency, NV writes) come from its SV_MSG_STATS reply and are appended by the HTTP layer.
 */
#ifndef SV_BROKER_METRICS_H
#define SV_BROKER_METRICS_H

#include <stdint.h>

#include "common/msgtable.h"

struct evbuffer;

/* One endpoint per ROUTE row of SV_MSG_TABLE (EP_REGISTER_START, ..., EP_STATS for /metrics), in
 * the table's order, then EP_OTHER for unknown routes. */
/* clang-format off */
enum metrics_endpoint {
#define EP_ROUTE(name, num, method, path, ep, handler, flags) EP_##name,
#define EP_FRAME(name, num, flags)
	SV_MSG_TABLE(EP_ROUTE, EP_FRAME)
#undef EP_ROUTE
#undef EP_FRAME
	EP_OTHER,
	EP_COUNT
};
/* clang-format on */

/* Why a request was answered 429 (sealvault_limited_total{reason=...}). */
enum metrics_reason {
	REASON_ADDRESS,        /* the per-address request rate (rate-limit) */
	REASON_ATTESTATION,    /* the global attestation bucket (attestation-rate) */
	REASON_PENDING_LOGINS, /* unfinished logins of an address (max-pending-logins-per-ip) */
	REASON_IDENTIFIER,     /* the enclave's per-identifier login rate (login-rate-per-id) */
	REASON_COUNT
};

struct metrics_gauges {
	uint64_t connections;   /* open client connections */
	uint64_t inflight;      /* requests waiting for the enclave */
	uint64_t rate_limited;  /* requests refused with 429 */
	uint64_t conns_refused; /* connections refused by the per-address or global cap */
};

struct metrics;

int metrics_new(struct metrics **out) __attribute__((warn_unused_result));
void metrics_free(struct metrics *m);

/* Counts one 429 by its reason (besides metrics_count). */
void metrics_limited(struct metrics *m, enum metrics_reason why);

/* Counts one answered request. */
void metrics_count(struct metrics *m, enum metrics_endpoint ep, int http_code, uint64_t usec);

/* Appends the broker's metrics as Prometheus text. */
int metrics_render(const struct metrics *m, const struct metrics_gauges *g, struct evbuffer *out)
    __attribute__((warn_unused_result));

const char *metrics_endpoint_name(enum metrics_endpoint ep);

#endif
