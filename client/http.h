/*
 * HTTPS transport of the client library over libcurl: one easy handle per context (connections
 * are kept alive between the steps of a login), TLS peer and host verification always on, only
 * https:// URLs, bodies as application/octet-stream, replies capped in size.
 */
#ifndef SV_CLIENT_HTTP_H
#define SV_CLIENT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "common/buf.h"

struct client_http;

/* base_url: https://host[:port] (a trailing '/' is dropped). SV_ERR_CONFIG for another scheme. */
int client_http_new(struct client_http **out, const char *base_url)
    __attribute__((warn_unused_result));
void client_http_free(struct client_http *h);
/* The TLS policy of every request the library makes, on an easy handle just reset (also the realm
 * driver's, client/realmnet.c): https only, no redirects, peer and host name verified, TLS 1.2 or
 * later, the CA file cacert trusted (NULL: the system store). 0, or 1 when libcurl refused one
 * of the options. */
int client_http_tls_policy(CURL *c, const char *cacert) __attribute__((warn_unused_result));
/* CA bundle to trust (NULL: the system store). */
int client_http_set_cacert(struct client_http *h, const char *path)
    __attribute__((warn_unused_result));
void client_http_set_timeout(struct client_http *h, unsigned seconds);
/* The access token to send as "Authorization: Bearer <token>" with the following POSTs (libcurl's
 * CURLAUTH_BEARER), or NULL for none. Only the pointer is kept: the caller keeps the token alive
 * and clears it again when its call ends. */
void client_http_set_bearer(struct client_http *h, const char *token);

/*
 * POSTs body to base_url + path (e.g. "/v1/login/start"). On a completed exchange returns 0 with
 * the HTTP status in *status and the body in reply (reset first; at most reply->max bytes, more
 * is an error). On a transport failure (connect, TLS, timeout) returns SV_ERR_IO and writes a
 * message saying what failed into err.
 */
int client_http_post(struct client_http *h, const char *path, const uint8_t *body, size_t len,
                     long *status, struct sv_buf *reply, char *err, size_t err_len)
    __attribute__((warn_unused_result));
/* GETs base_url + path (the query included), otherwise as client_http_post. */
int client_http_get(struct client_http *h, const char *path, long *status, struct sv_buf *reply,
                    char *err, size_t err_len) __attribute__((warn_unused_result));

#endif
