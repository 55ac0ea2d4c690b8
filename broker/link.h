/*
 * The broker's end of the enclave socketpair: sends requests as frames (common/frame.h) with a
 * fresh request id each, and hands every SV_MSG_REPLY to the callback registered for its id. The
 * enclave answers every request exactly once; a reply of another type, for an id not in flight or
 * without a status byte, or the end of the link, is fatal: on_fatal is called and the broker
 * exits so that sealvaultd restarts the pair.
 *
 * An enclave restart (common/msg.h, SV_MSG_ENCLAVE_GONE) is not the end of the link: the
 * requests in flight are answered with a busy reply (503), and until the next enclave sends
 * SV_MSG_READY link_request refuses with SV_ERR_BUSY and link_down() is 1.
 */
#ifndef SV_BROKER_LINK_H
#define SV_BROKER_LINK_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct link;

/* reply: the SV_MSG_REPLY payload, at least one byte (the enum sv_status), then the body. */
typedef void (*link_reply_cb)(void *arg, const uint8_t *reply, size_t len);
typedef void (*link_fatal_cb)(void *arg, const char *why);

#define LINK_INFLIGHT_MAX 65536

/* fd: a connected SOCK_SEQPACKET socket (made non-blocking here). max_inflight: 1..65536. */
int link_new(struct link **out, struct event_base *base, int fd, unsigned max_inflight,
             link_fatal_cb on_fatal, void *fatal_arg) __attribute__((warn_unused_result));
void link_free(struct link *l);

/* Queues one request. SV_ERR_BUSY when max_inflight requests await replies (answer 503),
 * SV_ERR_RANGE when the payload is over the frame cap, SV_ERR_NOMEM. On success cb is called
 * exactly once, later, from the event loop. */
int link_request(struct link *l, uint16_t type, const uint8_t *payload, size_t len,
                 link_reply_cb cb, void *arg) __attribute__((warn_unused_result));

/* cb(arg) is called for every SV_MSG_READY, the first start's included: the enclave serves. */
typedef void (*link_ready_cb)(void *arg);
void link_on_ready(struct link *l, link_ready_cb cb, void *arg);

/* A graceful stop (common/drain.h): sends SV_MSG_DRAIN_ENCLAVE with timeout_s (1..
 * DRAIN_TIMEOUT_MAX_S) on the enclave's end. SV_ERR_RANGE for a timeout out of bounds, SV_ERR_IO
 * when the link is dead. Requests keep being forwarded: the enclave decides what to refuse. */
int link_drain(struct link *l, unsigned timeout_s) __attribute__((warn_unused_result));
/* cb(arg, report) for every SV_MSG_DRAIN_STATUS of the enclave (one that does not decode is
 * fatal, like any malformed frame). */
struct drain_report;
typedef void (*link_drain_cb)(void *arg, const struct drain_report *r);
void link_on_drain(struct link *l, link_drain_cb cb, void *arg);

unsigned link_inflight(const struct link *l);
/* 1 while the enclave is being restarted (between SV_MSG_ENCLAVE_GONE and SV_MSG_READY). */
int link_down(const struct link *l);
/* Enclave restarts seen (SV_MSG_ENCLAVE_GONE frames). */
unsigned long link_restarts(const struct link *l);

#endif
