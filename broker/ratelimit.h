/*
 * Per-client-address limits for the broker: a token bucket of requests per second, a cap on
 * concurrent connections and a cap on unfinished logins. Addresses live in a fixed-size table
 * (keyed by a SipHash under a random key, so a client cannot aim collisions); when the table is
 * full the entry idle longest among the probed ones is reused, and an address that finds no
 * reusable entry is refused (fail closed). An IPv6 address counts by its prefix (the /64 by
 * default: one ordinary IPv6 subscriber holds a whole /64), an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) as the IPv4 address it is.
 *
 * Also here, because it is the same kind of thing: one global token bucket for the attestation
 * routes, whose every request blocks the enclave for a TPM quote (docs/operations.md).
 */
#ifndef SV_BROKER_RATELIMIT_H
#define SV_BROKER_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;
struct ratelimit;

#define RATELIMIT_KEY_LEN 16 /* IPv6, or IPv4 mapped into IPv6 */

struct ratelimit_config {
	unsigned rate;           /* requests per second per address; 0 = unlimited */
	unsigned burst;          /* bucket size; >= 1 when rate > 0 */
	unsigned conns_per_ip;   /* concurrent connections per address; 0 = unlimited */
	unsigned ipv6_prefix;    /* bits of an IPv6 address that name the client; 32..128 */
	unsigned attest_rate;    /* attestation requests per second, all clients; 0 = unlimited */
	unsigned attest_burst;   /* ... bucket size; >= 1 when attest_rate > 0 */
	unsigned pending_per_ip; /* unfinished logins per address; 0 = unlimited */
	unsigned pending_timeout_ms; /* an unfinished login stops counting after this; >= 1000 */
	size_t table_size;           /* addresses tracked at once; power of two, 64..1048576 */
};

int ratelimit_new(struct ratelimit **out, const struct ratelimit_config *cfg)
    __attribute__((warn_unused_result));
void ratelimit_free(struct ratelimit *rl);

/* Reload: every field of cfg but table_size (the table stays). Buckets keep their tokens, capped
 * at the new burst when they next refill; connections already open stay open, and a lowered cap
 * refuses new ones until an address is below it. A new ipv6_prefix applies to the keys made
 * after it (entries keyed under the old one age out). SV_ERR_RANGE (nothing changed) when a
 * rate > 0 has a burst < 1, or a field is out of its range above. */
int ratelimit_configure(struct ratelimit *rl, const struct ratelimit_config *cfg)
    __attribute__((warn_unused_result));

/* The configuration in force. */
void ratelimit_config_get(const struct ratelimit *rl, struct ratelimit_config *out);

/* The prefix length IPv6 clients are keyed on now (for ratelimit_key). */
unsigned ratelimit_ipv6_prefix(const struct ratelimit *rl);

/* The table key of a socket address (AF_INET or AF_INET6): an IPv6 address with all bits after
 * the first v6_prefix (32..128) cleared; an IPv4 address, or an IPv4-mapped IPv6 one, as
 * ::ffff:a.b.c.d whatever the prefix. SV_ERR_INVALID for other families or a prefix out of
 * range. */
int ratelimit_key(const struct sockaddr *sa, unsigned v6_prefix,
                  uint8_t key[static RATELIMIT_KEY_LEN]) __attribute__((warn_unused_result));

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

/* Takes one token of the global attestation bucket: 0, or SV_ERR_BUSY with *retry_s the whole
 * seconds until the next token (>= 1). */
int ratelimit_attest_take(struct ratelimit *rl, uint64_t now_ms, unsigned *retry_s)
    __attribute__((warn_unused_result));

/* Counts a login/start the broker is about to forward for an address: 0, or SV_ERR_BUSY when
 * the address has pending_per_ip logins that are neither finished nor older than
 * pending_timeout_ms (answer 429, *retry_s seconds until they time out), or when its entry
 * cannot be had (table full; *retry_s 1). The count of an address drops to 0 when
 * pending_timeout_ms has passed since its last counted login/start; ratelimit_login_end takes
 * one off. Bounded: one counter and one time per address entry, no per-login state. */
int ratelimit_login_begin(struct ratelimit *rl, const uint8_t key[static RATELIMIT_KEY_LEN],
                          uint64_t now_ms, unsigned *retry_s) __attribute__((warn_unused_result));
/* A counted login ended: its login/start was not answered 200, or a login/finish from the
 * address was answered (200, 403, 410: the enclave consumed a pending login). */
void ratelimit_login_end(struct ratelimit *rl, const uint8_t key[static RATELIMIT_KEY_LEN],
                         uint64_t now_ms);

/* Refusals so far: requests over the per-address rate, connections over the per-address cap,
 * attestation requests over the global bucket, login/starts over the pending-login cap. */
uint64_t ratelimit_refused_requests(const struct ratelimit *rl);
uint64_t ratelimit_refused_conns(const struct ratelimit *rl);
uint64_t ratelimit_refused_attest(const struct ratelimit *rl);
uint64_t ratelimit_refused_pending(const struct ratelimit *rl);

#endif
