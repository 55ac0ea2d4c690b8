/*
 * Per-client-address limits for the broker: a token bucket of requests per second and a cap on
 * concurrent connections. Addresses live in a fixed-size table (keyed by a SipHash under a random
 * key, so a client cannot aim collisions); when the table is full the entry idle longest among the
 * probed ones is reused, and an address that finds no reusable entry is refused (fail closed).
 */
#ifndef SV_BROKER_RATELIMIT_H
#define SV_BROKER_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;
struct ratelimit;

#define RATELIMIT_KEY_LEN 16 /* IPv6, or IPv4 mapped into IPv6 */

struct ratelimit_config {
	unsigned rate;         /* requests per second per address; 0 = unlimited */
	unsigned burst;        /* bucket size; >= 1 when rate > 0 */
	unsigned conns_per_ip; /* concurrent connections per address; 0 = unlimited */
	size_t table_size;     /* addresses tracked at once; power of two, 64..1048576 */
};

int ratelimit_new(struct ratelimit **out, const struct ratelimit_config *cfg)
    __attribute__((warn_unused_result));
void ratelimit_free(struct ratelimit *rl);

/* Reload: new rate, burst and per-address connection cap (table_size is ignored: it stays).
 * Buckets keep their tokens, capped at the new burst when they next refill; connections already
 * open stay open, and a lowered cap refuses new ones until an address is below it.
 * SV_ERR_RANGE (nothing changed) when rate > 0 and burst < 1. */
int ratelimit_configure(struct ratelimit *rl, unsigned rate, unsigned burst, unsigned conns_per_ip)
    __attribute__((warn_unused_result));

/* The table key of a socket address (AF_INET or AF_INET6); SV_ERR_INVALID for other families. */
int ratelimit_key(const struct sockaddr *sa, uint8_t key[static RATELIMIT_KEY_LEN])
    __attribute__((warn_unused_result));

/* Takes one token: 0, or SV_ERR_BUSY when the address is over its rate (answer 429). */
int ratelimit_take(struct ratelimit *rl, const uint8_t key[static RATELIMIT_KEY_LEN],
                   uint64_t now_ms) __attribute__((warn_unused_result));

/* Admits a new connection: 1 when it was counted against its address, 0 when admitted without
 * counting (conns_per_ip is 0), or SV_ERR_BUSY when the address holds conns_per_ip already. Every
 * call that returned 1 must be matched by one ratelimit_conn_close(), whatever the cap is by
 * then (a reload may change it). */
int ratelimit_conn_open(struct ratelimit *rl, const uint8_t key[static RATELIMIT_KEY_LEN],
                        uint64_t now_ms) __attribute__((warn_unused_result));
void ratelimit_conn_close(struct ratelimit *rl, const uint8_t key[static RATELIMIT_KEY_LEN]);

/* Requests refused by the rate so far, connections refused by the per-address cap. */
uint64_t ratelimit_refused_requests(const struct ratelimit *rl);
uint64_t ratelimit_refused_conns(const struct ratelimit *rl);

#endif
