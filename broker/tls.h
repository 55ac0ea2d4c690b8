/*
 * TLS for the broker: an OpenSSL server context (TLS 1.2 or later, forward-secret AEAD suites for
 * 1.2, no renegotiation) and the per-connection bufferevents evhttp uses (evhttp_set_bevcb).
 *
 * Each connection also carries the broker's defences against slow and greedy clients: a global cap
 * on open connections and a per-address cap (both applied as soon as the connection is accepted,
 * whether or not it ever sends a ClientHello; a refused connection is shut down or fails its
 * handshake), and a deadline by which a whole request (TLS handshake, headers and body) must have
 * arrived; a connection that misses it is shut down. The deadline is stopped while the
 * enclave works on a request and restarted when the answer goes out.
 */
#ifndef SV_BROKER_TLS_H
#define SV_BROKER_TLS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct bufferevent;
struct evhttp_request;
struct ratelimit;
struct tls;

struct tls_config {
	const char *cert_file;      /* PEM certificate chain */
	const char *key_file;       /* PEM private key */
	unsigned max_conns;         /* open connections at once, 1..1000000 */
	unsigned request_timeout_s; /* handshake + headers + body, 1..3600 */
	struct ratelimit *rl;       /* per-address connection cap */
};

int tls_new(struct tls **out, struct event_base *base, const struct tls_config *cfg, char *why,
            size_t why_len) __attribute__((warn_unused_result));
void tls_free(struct tls *t);

/* For evhttp_set_bevcb(http, tls_bevcb, t). */
struct bufferevent *tls_bevcb(struct event_base *base, void *arg);

/* A complete request arrived: stop its connection's deadline. */
void tls_request_started(struct tls *t, struct evhttp_request *req);
/* The answer is about to be sent: the next request on this connection has a fresh deadline. */
void tls_request_answered(struct tls *t, struct evhttp_request *req);

/* Reload (SIGHUP, sealvaultd(8)): a new context from a PEM certificate chain and key in memory,
 * and new limits, for the connections accepted from now on; open connections keep the context
 * they began with. On failure (a reason in why) nothing changes. The caller wipes the key. */
int tls_reload(struct tls *t, const uint8_t *cert, size_t cert_len, const uint8_t *key,
               size_t key_len, unsigned max_conns, unsigned request_timeout_s, char *why,
               size_t why_len) __attribute__((warn_unused_result));

/* The SHA-256 fingerprint of the certificate served to new connections, as openssl x509
 * -fingerprint prints it (AA:BB:...). */
#define TLS_FINGERPRINT_LEN (32 * 3)
int tls_fingerprint(const struct tls *t, char out[static TLS_FINGERPRINT_LEN]);

uint64_t tls_open_connections(const struct tls *t);
uint64_t tls_refused_connections(const struct tls *t);

#endif
