/*
 * The parallel driver of the realm client: runs a realmcore (client/realmcore.h) against its n
 * realms at once over libcurl's multi interface. Each realm has its own connection (kept alive
 * between its steps) with its own pinned CA file, TLS peer and host verification always on, only
 * https, and its own access token sent as "Authorization: Bearer" on every POST (GET /v1/info
 * carries none). Replies are capped at REALMCORE_REPLY_MAX bytes.
 */
#ifndef SV_CLIENT_REALMNET_H
#define SV_CLIENT_REALMNET_H

#include <stddef.h>

#include "client/realmcore.h"

struct realmnet_realm {
	const char *url;    /* https://host[:port], no trailing path */
	const char *cacert; /* the PEM file to trust for this realm (NULL: the system store) */
	const char *token;  /* the access token for its POSTs, or NULL */
};

/* Runs rc until realmcore_done: every request the core makes ready goes out at once, each
 * answer (or transport failure) goes back to the core as it arrives. timeout_s bounds each
 * exchange. Returns 0 (the outcome is the core's), or a negative SV_ERR_* when libcurl itself
 * failed (err says what). */
int realmnet_run(struct realmcore *rc, const struct realmnet_realm *realms, size_t n,
                 unsigned timeout_s, char *err, size_t err_len) __attribute__((warn_unused_result));

#endif
