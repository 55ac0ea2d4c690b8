/*
 * The broker's end of sealvaultd's control pair (--control-fd): reload on SIGHUP (sealvaultd(8),
 * "Reload"). sealvaultd sends SV_MSG_RELOAD with the broker's reloadable settings and the
 * certificate and key it read for the broker, which opens no file once sandboxed; the broker
 * checks everything, then applies all of it or nothing, wipes the key bytes and answers
 * SV_MSG_RELOADED (common/msg.h). New connections get the new certificate and limits; open
 * connections and the requests in flight are not touched. A frame of another type, or one that
 * does not decode, is fatal (on_fatal): sealvaultd never sends one. The broker also says on it
 * when the enclave serves (SV_MSG_SERVING), for sealvaultd's readiness notification.
 *
 * Stopping (sealvaultd(8), "Stopping"): sealvaultd's SV_MSG_DRAIN goes on to the enclave
 * (link_drain), and every drain status the enclave sends back goes on to sealvaultd as
 * SV_MSG_DRAIN_REPORT. The broker keeps forwarding every request: the enclave refuses the new
 * logins itself.
 *
 * The reloadable settings and their bounds live here, so that the command line and a reload
 * accept exactly the same values.
 */
#ifndef SV_BROKER_CONTROL_H
#define SV_BROKER_CONTROL_H

#include <stddef.h>

struct event_base;
struct tls;
struct broker_http;
struct ratelimit;
struct link;
struct control;

struct control_settings {
	size_t max_body;            /* max-body, 64..65536 */
	unsigned idle_timeout_s;    /* idle-timeout, 1..3600 */
	unsigned request_timeout_s; /* request-timeout, 1..3600 */
	unsigned rate;              /* rate-limit, 0..1000000 (0: unlimited) */
	unsigned burst;             /* rate-burst, 1..1000000 */
	unsigned max_conns;         /* max-conns, 1..1000000 */
	unsigned conns_per_ip;      /* max-conns-per-ip, 0..1000000 (0: unlimited) */
	unsigned ipv6_prefix;       /* rate-limit-ipv6-prefix, 32..128 */
	unsigned attest_rate;       /* attestation-rate, 0..10000 (0: unlimited) */
	unsigned attest_burst;      /* attestation-burst, 1..10000 */
	unsigned pending_per_ip;    /* max-pending-logins-per-ip, 0..1000000 (0: unlimited) */
};

/* The defaults sealvault-broker(8) documents. */
void control_settings_defaults(struct control_settings *s);

struct ratelimit_config;
/* Copies the rate-limit fields of s into rc (the others, table size and login timeout, stay). */
void control_settings_limits(const struct control_settings *s, struct ratelimit_config *rc);

/* Sets one key of the list above from its decimal value: 0, or SV_ERR_CONFIG with a reason in
 * why (an unknown key, a value that is not a number or out of bounds). */
int control_settings_set(struct control_settings *s, const char *key, const char *value, char *why,
                         size_t why_len) __attribute__((warn_unused_result));

typedef void (*control_fatal_cb)(void *arg, const char *why);

struct control_targets {
	struct tls *tls;
	struct broker_http *http;
	struct ratelimit *rl;
	struct link *link; /* SV_MSG_DRAIN goes on to the enclave on it; its reports come back */
};

/* fd: the broker's end of the SOCK_SEQPACKET control pair (made non-blocking here). */
int control_new(struct control **out, struct event_base *base, int fd,
                const struct control_targets *t, control_fatal_cb on_fatal, void *fatal_arg)
    __attribute__((warn_unused_result));
void control_free(struct control *c);
/* Tells sealvaultd the enclave serves (SV_MSG_SERVING, request id = the times so far): it
 * passes READY=1 on to systemd. A failure is logged; readiness is not worth stopping for. */
void control_serving(struct control *c);

#endif
