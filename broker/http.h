/*
 * The broker's HTTP front end on libevent's evhttp: routes (common/msg.h) to enclave request
 * types, bodies copied unparsed, Content-Type, body-size and method checks, the per-address rate
 * limit, GET /healthz and GET /metrics. Enclave reply status bytes become HTTP statuses. /metrics
 * (MSG_F_PRIVATE, common/msgtable.h) is answered on the metrics listener only, in plain HTTP, and
 * is a 404 on the public port; the metrics listener answers /metrics and /healthz and 404s the
 * rest.
 */
#ifndef SV_BROKER_HTTP_H
#define SV_BROKER_HTTP_H

#include <stddef.h>

struct event_base;
struct link;
struct tls;
struct ratelimit;
struct metrics;
struct broker_http;

struct http_config {
	size_t max_body;         /* bytes, 64..65536 (the IPC frame cap); larger bodies get 413 */
	size_t max_headers;      /* bytes of request line + headers, 1024..65536 */
	unsigned idle_timeout_s; /* inactivity while reading or writing, 1..3600 */
};

int http_new(struct broker_http **out, struct event_base *base, const struct http_config *cfg,
             struct link *link, struct tls *tls, struct ratelimit *rl, struct metrics *m)
    __attribute__((warn_unused_result));
/* Serves on an already listening socket (owned by the server from then on). */
int http_serve(struct broker_http *h, int listen_fd) __attribute__((warn_unused_result));
/* Serves the metrics listener (plain HTTP, owned by the server from then on); once. */
int http_serve_metrics(struct broker_http *h, int listen_fd) __attribute__((warn_unused_result));
void http_free(struct broker_http *h);
/* Reload: the body cap and the inactivity timeout for connections accepted from now on (within
 * the bounds of struct http_config; SV_ERR_RANGE and nothing changed otherwise). */
int http_configure(struct broker_http *h, size_t max_body, unsigned idle_timeout_s)
    __attribute__((warn_unused_result));
/* Boot event log and IMA log descriptors (-1: none), re-read from offset 0 for every 200 answer
 * to GET /v1/attestation and added to its JSON as event_log / ima_log (base64). */
void http_set_logs(struct broker_http *h, int event_log_fd, int ima_log_fd);

#endif
