/*
 * Listening sockets for the HTTPS front end (sealvaultd and sealvault-broker both open one).
 */
#ifndef SV_COMMON_NET_H
#define SV_COMMON_NET_H

#include <stddef.h>

/* Binds and listens on spec, "HOST:PORT" ("[v6]:PORT" for IPv6 literals; port 0 picks a free
 * one), with SO_REUSEADDR and a backlog of 1024. Returns the close-on-exec socket, or -1 with a
 * one-line reason naming spec in why. */
int net_listen(const char *spec, char *why, size_t why_len) __attribute__((warn_unused_result));

#endif
