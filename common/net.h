/*
 * Listening sockets for the HTTPS front end (sealvaultd and sealvault-broker both open one) and
 * for the metrics listener (TCP or a unix socket, opened by sealvaultd).
 */
#ifndef SV_COMMON_NET_H
#define SV_COMMON_NET_H

#include <stddef.h>

/* Binds and listens on spec, "HOST:PORT" ("[v6]:PORT" for IPv6 literals; port 0 picks a free
 * one), with SO_REUSEADDR and a backlog of 1024. Returns the close-on-exec socket, or -1 with a
 * one-line reason naming spec in why. */
int net_listen(const char *spec, char *why, size_t why_len) __attribute__((warn_unused_result));

/* Binds and listens on the unix stream socket path (absolute, at most 107 bytes), mode 0660,
 * owned by the process's user and group; a socket already at path (an earlier run's) is replaced.
 * Returns the close-on-exec socket, or -1 with a one-line reason in why. */
int net_listen_unix(const char *path, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* Writes the port fd is bound to, in decimal and newline-terminated, to path: through path.tmp
 * (close-on-exec) and a rename, so a reader never sees a partial file. Tests and scripts that
 * start a listener on port 0 read it. 0, or SV_ERR_IO (errno says why) or SV_ERR_RANGE (path too
 * long); on failure path is left as it was and path.tmp is removed. */
int net_write_port_file(const char *path, int fd) __attribute__((warn_unused_result));

#endif
