#include "broker/metrics.h"

#include <stdio.h>
#include <stdlib.h>

#include <event2/buffer.h>

#include "common/err.h"

/* The HTTP statuses the broker can answer with; anything else is counted under "other". */
static const int codes[] = {200, 400, 403, 404, 405, 408, 409, 410, 413, 415, 429, 500, 503, 507};
#define N_CODES (sizeof(codes) / sizeof(codes[0]))

/* Latency histogram bucket bounds, microseconds. */
static const uint64_t bounds_us[] = {1000,   2000,   5000,   10000,   20000,  50000,
                                     100000, 250000, 500000, 1000000, 5000000};
#define N_BOUNDS (sizeof(bounds_us) / sizeof(bounds_us[0]))

/* The endpoint="..." label values: the table's, dashboards depend on them. */
/* clang-format off */
static const char *const names[EP_COUNT] = {
#define NAME_ROUTE(name, num, method, path, ep, handler, flags) [EP_##name] = ep,
#define NAME_FRAME(name, num, flags)
	SV_MSG_TABLE(NAME_ROUTE, NAME_FRAME)
#undef NAME_ROUTE
#undef NAME_FRAME
	[EP_OTHER] = "other",
};
/* clang-format on */

static const char *const reasons[REASON_COUNT] = {
    [REASON_ADDRESS] = "address",
    [REASON_ATTESTATION] = "attestation",
    [REASON_PENDING_LOGINS] = "pending_logins",
    [REASON_IDENTIFIER] = "identifier",
};

struct metrics {
	uint64_t limited[REASON_COUNT];
	uint64_t requests[EP_COUNT][N_CODES + 1]; /* last column: other codes */
	uint64_t buckets[EP_COUNT][N_BOUNDS];     /* cumulative at render time */
	uint64_t count[EP_COUNT];
	uint64_t sum_us[EP_COUNT];
};

int metrics_new(struct metrics **out)
{
	struct metrics *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return SV_ERR_NOMEM;
	*out = m;
	return SV_OK;
}

void metrics_free(struct metrics *m)
{
	free(m);
}

const char *metrics_endpoint_name(enum metrics_endpoint ep)
{
	return ep < EP_COUNT ? names[ep] : "other";
}

void metrics_limited(struct metrics *m, enum metrics_reason why)
{
	if (why < REASON_COUNT)
		m->limited[why]++;
}

void metrics_count(struct metrics *m, enum metrics_endpoint ep, int http_code, uint64_t usec)
{
	if (ep >= EP_COUNT)
		ep = EP_OTHER;
	size_t c = N_CODES;
	for (size_t i = 0; i < N_CODES; i++)
		if (codes[i] == http_code)
			c = i;
	m->requests[ep][c]++;
	m->count[ep]++;
	m->sum_us[ep] += usec;
	for (size_t i = 0; i < N_BOUNDS; i++)
		if (usec <= bounds_us[i]) {
			m->buckets[ep][i]++;
			break;
		}
}

int metrics_render(const struct metrics *m, const struct metrics_gauges *g, struct evbuffer *out)
{
	int bad = 0;
	bad |=
	    evbuffer_add_printf(out, "# HELP sealvault_http_requests_total HTTP requests answered "
	                             "by the broker, by endpoint and status.\n"
	                             "# TYPE sealvault_http_requests_total counter\n") < 0;
	for (size_t e = 0; e < EP_COUNT; e++)
		for (size_t c = 0; c <= N_CODES; c++) {
			if (m->requests[e][c] == 0)
				continue;
			char code[8];
			if (c < N_CODES)
				snprintf(code, sizeof(code), "%d", codes[c]);
			else
				snprintf(code, sizeof(code), "other");
			bad |= evbuffer_add_printf(out,
			                           "sealvault_http_requests_total{endpoint=\"%s\","
			                           "code=\"%s\"} %llu\n",
			                           names[e], code,
			                           (unsigned long long)m->requests[e][c]) < 0;
		}
	bad |= evbuffer_add_printf(
	           out, "# HELP sealvault_http_request_duration_seconds Time from a "
	                "complete request to its answer.\n"
	                "# TYPE sealvault_http_request_duration_seconds histogram\n") < 0;
	for (size_t e = 0; e < EP_COUNT; e++) {
		if (m->count[e] == 0)
			continue;
		uint64_t cum = 0;
		for (size_t i = 0; i < N_BOUNDS; i++) {
			cum += m->buckets[e][i];
			bad |= evbuffer_add_printf(out,
			                           "sealvault_http_request_duration_seconds_bucket{"
			                           "endpoint=\"%s\",le=\"%g\"} %llu\n",
			                           names[e], (double)bounds_us[i] / 1e6,
			                           (unsigned long long)cum) < 0;
		}
		bad |=
		    evbuffer_add_printf(
		        out,
		        "sealvault_http_request_duration_seconds_bucket{endpoint="
		        "\"%s\",le=\"+Inf\"} %llu\n"
		        "sealvault_http_request_duration_seconds_sum{endpoint=\"%s\"} "
		        "%.6f\n"
		        "sealvault_http_request_duration_seconds_count{endpoint=\"%s\"} "
		        "%llu\n",
		        names[e], (unsigned long long)m->count[e], names[e],
		        (double)m->sum_us[e] / 1e6, names[e], (unsigned long long)m->count[e]) < 0;
	}
	bad |= evbuffer_add_printf(
	           out,
	           "# HELP sealvault_broker_connections Open client connections.\n"
	           "# TYPE sealvault_broker_connections gauge\n"
	           "sealvault_broker_connections %llu\n"
	           "# HELP sealvault_broker_inflight Requests waiting for the enclave.\n"
	           "# TYPE sealvault_broker_inflight gauge\n"
	           "sealvault_broker_inflight %llu\n"
	           "# HELP sealvault_rate_limited_total Requests refused by the per-address rate.\n"
	           "# TYPE sealvault_rate_limited_total counter\n"
	           "sealvault_rate_limited_total %llu\n"
	           "# HELP sealvault_connections_refused_total Connections refused by a cap.\n"
	           "# TYPE sealvault_connections_refused_total counter\n"
	           "sealvault_connections_refused_total %llu\n",
	           (unsigned long long)g->connections, (unsigned long long)g->inflight,
	           (unsigned long long)g->rate_limited, (unsigned long long)g->conns_refused) < 0;
	bad |= evbuffer_add_printf(out, "# HELP sealvault_limited_total Requests answered 429, by "
	                                "the limit that refused them.\n"
	                                "# TYPE sealvault_limited_total counter\n") < 0;
	for (size_t r = 0; r < REASON_COUNT; r++)
		bad |= evbuffer_add_printf(out, "sealvault_limited_total{reason=\"%s\"} %llu\n",
		                           reasons[r], (unsigned long long)m->limited[r]) < 0;
	return bad ? SV_ERR_NOMEM : SV_OK;
}
