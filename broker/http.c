#include "broker/http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <sodium.h>

#include "broker/link.h"
#include "broker/metrics.h"
#include "broker/ratelimit.h"
#include "broker/tls.h"
#include "common/attest_log.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/info.h"
#include "common/msg.h"

#define NONCE_MIN 8 /* attestation nonce, bytes */
#define NONCE_MAX 64

/* One listener's server: the public HTTPS one, or the plain HTTP metrics one. */
struct front {
	struct broker_http *h;
	int metrics; /* 1: the metrics listener (MSG_F_HOUSEKEEPING rows only, no TLS) */
};

struct broker_http {
	struct evhttp *http;    /* public, TLS */
	struct evhttp *metrics; /* metrics listener, plain HTTP; NULL until http_serve_metrics */
	struct event_base *base;
	struct front fronts[2]; /* [0] public, [1] metrics */
	struct link *link;
	struct tls *tls;
	struct ratelimit *rl;
	struct metrics *m;
	int log_fds[2]; /* boot event log, IMA log; -1: none */
};

/* Every ROUTE row of SV_MSG_TABLE (common/msgtable.h). */
static const struct route {
	const char *path;
	enum evhttp_cmd_type method;
	uint16_t type;
	enum metrics_endpoint ep;
	unsigned flags;
} routes[] = {
#define HTTP_ROUTE(name, num, method, path, ep, handler, flags)                                    \
	{path, EVHTTP_REQ_##method, SV_MSG_##name, EP_##name, flags},
#define HTTP_FRAME(name, num, flags)
    SV_MSG_TABLE(HTTP_ROUTE, HTTP_FRAME)
#undef HTTP_ROUTE
#undef HTTP_FRAME
};

/* A request waiting for the enclave. */
struct pending {
	struct broker_http *h;
	struct evhttp_request *req;
	const struct route *route;
	uint64_t start_us;
	uint8_t key[RATELIMIT_KEY_LEN]; /* the client's rate-limit key */
	int keyed;                      /* key is set */
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* enum sv_status -> HTTP status (contract in common/msg.h). */
static int http_code(uint8_t status)
{
	switch (status) {
	case SV_STATUS_OK: return 200;
	case SV_STATUS_BAD_REQUEST: return 400;
	case SV_STATUS_AUTH_FAILED: return 403;
	case SV_STATUS_LOCKED: return 410;
	case SV_STATUS_CONFLICT: return 409;
	case SV_STATUS_OUT_OF_ORDER: return 409;
	case SV_STATUS_BUSY: return 503;
	case SV_STATUS_UNAUTHORIZED: return 401;
	case SV_STATUS_FORBIDDEN: return 403;
	case SV_STATUS_TOO_MANY: return 429;
	case SV_STATUS_FULL: return 507;
	case SV_STATUS_NOT_FOUND: return 404;
	default: return 500;
	}
}

static const char *reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	case 507: return "Insufficient Storage";
	default: return "Internal Server Error";
	}
}

/* Sends the answer (body may be NULL) with Cache-Control: cache, and counts it. */
static void answer_cache(struct broker_http *h, struct evhttp_request *req,
                         enum metrics_endpoint ep, uint64_t start_us, int code, const char *ctype,
                         const char *cache, struct evbuffer *body)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	evhttp_add_header(oh, "Content-Type", ctype);
	evhttp_add_header(oh, "Cache-Control", cache);
	if ((code == 429 || code == 503) && evhttp_find_header(oh, "Retry-After") == NULL)
		evhttp_add_header(oh, "Retry-After", "1");
	tls_request_answered(h->tls, req);
	evhttp_send_reply(req, code, reason(code), body);
	/* One TLS record and one write(2) per answer instead of two: evhttp leaves the header and
	 * the body in separate buffer chains, and bufferevent_openssl calls SSL_write once per
	 * chain. Nothing is sent before the event loop runs again, so joining them here is safe. */
	if (bev != NULL)
		(void)evbuffer_pullup(bufferevent_get_output(bev), -1);
	metrics_count(h->m, ep, code, now_us() - start_us);
}

/* Every answer but a successful GET /v1/info is for one client only. */
static void answer(struct broker_http *h, struct evhttp_request *req, enum metrics_endpoint ep,
                   uint64_t start_us, int code, const char *ctype, struct evbuffer *body)
{
	answer_cache(h, req, ep, start_us, code, ctype, "no-store", body);
}

static void answer_text(struct broker_http *h, struct evhttp_request *req, enum metrics_endpoint ep,
                        uint64_t start_us, int code, const char *text)
{
	struct evbuffer *b = evbuffer_new();
	if (b != NULL && evbuffer_add(b, text, strlen(text)) != 0) {
		evbuffer_free(b);
		b = NULL;
	}
	answer(h, req, ep, start_us, code, "text/plain; charset=utf-8", b);
	if (b != NULL)
		evbuffer_free(b);
}

/* 429 with Retry-After: retry_s and a text that names the limit, counted by reason. */
static void answer_limited(struct broker_http *h, struct evhttp_request *req,
                           enum metrics_endpoint ep, uint64_t start_us, enum metrics_reason why,
                           unsigned retry_s, const char *what)
{
	char secs[16], text[256];
	if (retry_s < 1)
		retry_s = 1;
	snprintf(secs, sizeof(secs), "%u", retry_s);
	snprintf(text, sizeof(text), "%s; nothing was charged: retry in %u s\n", what, retry_s);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", secs);
	metrics_limited(h->m, why);
	answer_text(h, req, ep, start_us, 429, text);
}

/* The enclave's SV_STATUS_TOO_MANY body: u32 seconds (big-endian), then the reason text. Sets
 * Retry-After and leaves the text for the answer's body; 0, or -1 for a body too short. */
static int too_many_body(struct evhttp_request *req, const uint8_t **body, size_t *len)
{
	char secs[16];
	if (*len < 4)
		return -1;
	uint32_t s = ((uint32_t)(*body)[0] << 24) | ((uint32_t)(*body)[1] << 16) |
	             ((uint32_t)(*body)[2] << 8) | (*body)[3];
	snprintf(secs, sizeof(secs), "%u", s < 1 ? 1u : s);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", secs);
	*body += 4;
	*len -= 4;
	return 0;
}

static uint64_t now_ms(void)
{
	return now_us() / 1000;
}

/* The enclave's evidence JSON with the two logs added, read now (after the quote: logs only
 * grow, so the verifier replays a prefix). A log that cannot be read is left out. */
static int evidence_with_logs(struct broker_http *h, const uint8_t *json, size_t len,
                              struct evbuffer *out)
{
	static const char *const keys[2] = {"event_log", "ima_log"};
	struct json_tokener *tok = json_tokener_new();
	struct json_object *root = NULL;
	int r = -1;
	if (tok == NULL)
		return -1;
	root = json_tokener_parse_ex(tok, (const char *)json, (int)len);
	if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(root, json_type_object))
		goto out;
	for (int i = 0; i < 2; i++) {
		uint8_t *data = NULL;
		size_t n = 0;
		if (h->log_fds[i] < 0)
			continue;
		if (attest_log_read(h->log_fds[i], &data, &n) != SV_OK) {
			fprintf(stderr,
			        "sealvault-broker: cannot read the %s (descriptor %d); the "
			        "attestation answer leaves it out\n",
			        keys[i], h->log_fds[i]);
			continue;
		}
		char *b64 = attest_log_b64(data, n);
		free(data);
		struct json_object *v = b64 != NULL ? json_object_new_string(b64) : NULL;
		free(b64);
		if (v == NULL || json_object_object_add(root, keys[i], v) != 0) {
			json_object_put(v);
			goto out;
		}
	}
	size_t tlen;
	const char *text = json_object_to_json_string_length(
	    root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &tlen);
	r = text != NULL && evbuffer_add(out, text, tlen) == 0 ? 0 : -1;
out:
	json_object_put(root);
	json_tokener_free(tok);
	return r;
}

/* WWW-Authenticate of a refused access token (RFC 6750 §3): error="invalid_token" (401) or
 * "insufficient_scope" (403), and the enclave's reason as error_description, a quoted string of
 * printable ASCII without '"' or '\\' (RFC 6750 §3: %x20-21 / %x23-5B / %x5D-7E). */
static int bearer_challenge(struct evhttp_request *req, int scope, const uint8_t *why, size_t len)
{
	char v[320];
	int n = snprintf(v, sizeof(v), "Bearer error=\"%s\", error_description=\"",
	                 scope ? "insufficient_scope" : "invalid_token");
	size_t o = n > 0 ? (size_t)n : 0;
	for (size_t i = 0; i < len && o + 2 < sizeof(v); i++)
		if (why[i] >= 0x20 && why[i] <= 0x7e && why[i] != '"' && why[i] != '\\')
			v[o++] = (char)why[i];
	v[o++] = '"';
	v[o] = '\0';
	return evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", v);
}

static void on_reply(void *arg, const uint8_t *reply, size_t len)
{
	struct pending *p = arg;
	struct broker_http *h = p->h;
	int code = http_code(reply[0]);
	struct evbuffer *b = evbuffer_new();
	int bad = b == NULL;
	const char *ctype = "application/octet-stream";
	const char *cache = "no-store";
	const uint8_t *body = reply + 1;
	size_t blen = len - 1;

	/* A login/start that did not open a pending login, or a login/finish that closed one
	 * (the enclave consumed it: accepted, wrong password, or locked), ends a counted login. */
	if (p->keyed &&
	    (((p->route->type == SV_MSG_LOGIN_START || p->route->type == SV_MSG_REALM_RECOVER2) &&
	      code != 200) ||
	     ((p->route->type == SV_MSG_LOGIN_FINISH || p->route->type == SV_MSG_REALM_RECOVER3) &&
	      (code == 200 || code == 403 || code == 410))))
		ratelimit_login_end(h->rl, p->key, now_ms());
	if (!bad && reply[0] == SV_STATUS_TOO_MANY) {
		ctype = "text/plain; charset=utf-8";
		metrics_limited(h->m, REASON_IDENTIFIER);
		if (too_many_body(p->req, &body, &blen) != 0) {
			code = 500;
			blen = 0;
		}
	}

	if (!bad && p->route->type == SV_MSG_STATS) {
		ctype = "text/plain; version=0.0.4; charset=utf-8";
		struct metrics_gauges g = {
		    .connections = tls_open_connections(h->tls),
		    .inflight = link_inflight(h->link),
		    .rate_limited = ratelimit_refused_requests(h->rl),
		    .conns_refused =
		        tls_refused_connections(h->tls) + ratelimit_refused_conns(h->rl),
		};
		bad = metrics_render(h->m, &g, b) != 0;
	} else if (!bad && p->route->type == SV_MSG_ATTESTATION && code == 200) {
		ctype = "application/json";
		bad = evidence_with_logs(h, body, blen, b) != 0;
		blen = 0; /* the body is in b already */
	} else if (!bad &&
	           (p->route->type == SV_MSG_ATTESTATION || p->route->type == SV_MSG_ACTIVATE) &&
	           code != 200) {
		ctype = "text/plain; charset=utf-8";
	} else if (!bad && p->route->type == SV_MSG_INFO) {
		/* the enclave's own document, passed on as it is (the broker invents no value) */
		ctype = code == 200 ? "application/json" : "text/plain; charset=utf-8";
		if (code == 200)
			cache = INFO_CACHE_CONTROL;
	} else if (!bad && p->route->type == SV_MSG_HEALTH) {
		ctype = "text/plain; charset=utf-8";
		if (code == 200)
			bad = evbuffer_add(b, "ok\n", 3) != 0;
		else
			code = 503;
	}
	if (!bad && (reply[0] == SV_STATUS_UNAUTHORIZED || reply[0] == SV_STATUS_FORBIDDEN) &&
	    (p->route->flags & MSG_F_TOKEN)) {
		ctype = "text/plain; charset=utf-8";
		bad = bearer_challenge(p->req, reply[0] == SV_STATUS_FORBIDDEN, body, blen) != 0;
	}
	if (!bad && blen > 0 && p->route->type != SV_MSG_HEALTH)
		bad = evbuffer_add(b, body, blen) != 0;
	if (bad) {
		if (b != NULL)
			evbuffer_free(b);
		answer_text(h, p->req, p->route->ep, p->start_us, 500, "out of memory\n");
	} else {
		answer_cache(h, p->req, p->route->ep, p->start_us, code, ctype, cache, b);
		evbuffer_free(b);
	}
	free(p);
}

/* "application/octet-stream", optionally followed by parameters. */
static int octet_stream(const char *ct)
{
	static const char want[] = "application/octet-stream";
	if (ct == NULL || strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return 0;
	char next = ct[sizeof(want) - 1];
	return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

/* The attestation nonce from ?nonce=HEX into out; its length or -1. */
static int nonce_of(const struct evhttp_uri *uri, uint8_t out[static NONCE_MAX])
{
	const char *q = evhttp_uri_get_query(uri);
	struct evkeyvalq params;
	size_t n = 0;
	const char *end = NULL;
	int r = -1;
	TAILQ_INIT(&params);
	if (q == NULL || evhttp_parse_query_str(q, &params) != 0)
		goto out;
	/* libevent hands the decoded values out as C strings: a %00 would cut the nonce short
	 * where it stands, so a query that decodes to a NUL is refused as a whole */
	size_t dlen = 0;
	char *decoded = evhttp_uridecode(q, 1, &dlen);
	int has_nul = decoded == NULL || memchr(decoded, '\0', dlen) != NULL;
	free(decoded);
	if (has_nul)
		goto out;
	const char *hex = evhttp_find_header(&params, "nonce");
	if (hex == NULL || strlen(hex) > 2 * NONCE_MAX)
		goto out;
	if (sodium_hex2bin(out, NONCE_MAX, hex, strlen(hex), NULL, &n, &end) != 0 || *end != '\0' ||
	    n < NONCE_MIN)
		goto out;
	r = (int)n;
out:
	evhttp_clear_headers(&params);
	return r;
}

/* The access token of "Authorization: Bearer <token>" (RFC 6750 §2.1) into *tok, or NULL when
 * the request has no Authorization header. The broker only copies it: bounded, one header, the
 * b64token syntax (which a JWS in compact form satisfies); the enclave verifies it. -1 and a
 * reason for anything else (answered 401 here, as a shortcut; the enclave does not rely on it). */
static int bearer_token(struct evhttp_request *req, const char **tok, size_t *len, const char **why)
{
	static const char b64token[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                               "0123456789-._~+/";
	struct evkeyvalq *hd = evhttp_request_get_input_headers(req);
	const struct evkeyval *kv;
	const char *v = NULL;
	int n = 0;
	*tok = NULL;
	*len = 0;
	TAILQ_FOREACH(kv, hd, next)
	if (strcasecmp(kv->key, "Authorization") == 0) {
		v = kv->value;
		n++;
	}
	if (n == 0)
		return 0;
	if (n > 1) {
		*why = "more than one Authorization header";
		return -1;
	}
	if (strncasecmp(v, "Bearer ", 7) != 0) {
		*why = "the Authorization header is not \"Bearer <token>\"";
		return -1;
	}
	v += 7;
	while (*v == ' ')
		v++;
	size_t k = strspn(v, b64token);
	while (v[k] == '=')
		k++;
	size_t end = k;
	while (v[end] == ' ' || v[end] == '\t')
		end++;
	if (k == 0 || v[end] != '\0') {
		*why = "the bearer token is empty or has characters a token cannot have";
		return -1;
	}
	if (k > MSG_TOKEN_MAX) {
		*why = "the bearer token is longer than this vault accepts";
		return -1;
	}
	*tok = v;
	*len = k;
	return 0;
}

/* Whether a listener answers a route: the public port every row but the MSG_F_PRIVATE ones
 * (/metrics), the metrics listener the broker's probes only (/metrics, /healthz). */
static int served_on(const struct front *fr, const struct route *rt)
{
	return fr->metrics ? (rt->flags & MSG_F_HOUSEKEEPING) != 0 : !(rt->flags & MSG_F_PRIVATE);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	const struct front *fr = arg;
	struct broker_http *h = fr->h;
	uint64_t start = now_us();
	tls_request_started(h->tls, req);

	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	if (path == NULL) {
		answer_text(h, req, EP_OTHER, start, 400, "malformed request target\n");
		return;
	}
	const struct route *rt = NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(path, routes[i].path) == 0 && served_on(fr, &routes[i]))
			rt = &routes[i];
	if (rt == NULL) {
		answer_text(h, req, EP_OTHER, start, 404,
		            "no such endpoint; see docs/protocol.md for the HTTP API\n");
		return;
	}
	/* HEAD on the probes (/healthz, /metrics): the GET's status and headers, no body */
	int head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD &&
	           rt->method == EVHTTP_REQ_GET && (rt->flags & MSG_F_HOUSEKEEPING);
	if (evhttp_request_get_command(req) != rt->method && !head) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
		                  rt->method == EVHTTP_REQ_POST ? "POST" : "GET");
		answer_text(h, req, rt->ep, start, 405,
		            rt->method == EVHTTP_REQ_POST ? "use POST for this endpoint\n"
		                                          : "use GET for this endpoint\n");
		return;
	}
	uint8_t key[RATELIMIT_KEY_LEN];
	int keyed = 0;
	if (!(rt->flags & MSG_F_HOUSEKEEPING)) {
		struct evhttp_connection *evcon = evhttp_request_get_connection(req);
		const struct sockaddr *sa =
		    evcon != NULL ? evhttp_connection_get_addr(evcon) : NULL;
		if (ratelimit_key(sa, ratelimit_ipv6_prefix(h->rl), key) != 0 ||
		    ratelimit_take(h->rl, key, now_ms()) != 0) {
			answer_limited(h, req, rt->ep, start, REASON_ADDRESS, 1,
			               "too many requests from this address");
			return;
		}
		keyed = 1;
	}

	uint8_t nonce[NONCE_MAX];
	const uint8_t *payload = NULL;
	size_t len = 0;
	if (rt->method == EVHTTP_REQ_POST) {
		const char *ct =
		    evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
		if (!octet_stream(ct)) {
			answer_text(
			    h, req, rt->ep, start, 415,
			    "request body must be Content-Type: application/octet-stream\n");
			return;
		}
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		len = evbuffer_get_length(in);
		if (len > SV_FRAME_MAX) {
			answer_text(h, req, rt->ep, start, 413, "request body too large\n");
			return;
		}
		if (rt->flags & MSG_F_TOKEN) {
			/* the token goes in front of the body: u16 length, token (common/msg.h) */
			const char *tok = NULL, *why = NULL;
			size_t tl = 0;
			uint8_t pfx[2];
			if (bearer_token(req, &tok, &tl, &why) != 0) {
				char text[160];
				snprintf(text, sizeof(text), "%s\n", why);
				(void)bearer_challenge(req, 0, (const uint8_t *)why, strlen(why));
				answer_text(h, req, rt->ep, start, 401, text);
				return;
			}
			if (len + 2 + tl > SV_FRAME_MAX) {
				answer_text(h, req, rt->ep, start, 413, "request body too large\n");
				return;
			}
			msg_token_prefix(pfx, tl);
			if ((tl > 0 && evbuffer_prepend(in, tok, tl) != 0) ||
			    evbuffer_prepend(in, pfx, sizeof(pfx)) != 0) {
				answer_text(h, req, rt->ep, start, 500, "out of memory\n");
				return;
			}
			len += 2 + tl;
		}
		payload = len > 0 ? evbuffer_pullup(in, -1) : NULL;
		if (len > 0 && payload == NULL) {
			answer_text(h, req, rt->ep, start, 500, "out of memory\n");
			return;
		}
	} else if (rt->type == SV_MSG_ATTESTATION) {
		int n = nonce_of(uri, nonce);
		if (n < 0) {
			answer_text(h, req, rt->ep, start, 400,
			            "give ?nonce= as 8 to 64 bytes in hexadecimal\n");
			return;
		}
		payload = nonce;
		len = (size_t)n;
	}

	/* TPM work blocks the enclave: one bucket for all clients (docs/operations.md), taken
	 * after the broker's own checks so that a request it refuses costs no token */
	unsigned retry_s = 1;
	if ((rt->type == SV_MSG_ATTESTATION || rt->type == SV_MSG_ACTIVATE) &&
	    ratelimit_attest_take(h->rl, now_ms(), &retry_s) != 0) {
		answer_limited(h, req, rt->ep, start, REASON_ATTESTATION, retry_s,
		               "too many attestation requests to this vault");
		return;
	}
	struct pending *p = malloc(sizeof(*p));
	if (p == NULL) {
		answer_text(h, req, rt->ep, start, 500, "out of memory\n");
		return;
	}
	*p = (struct pending){.h = h, .req = req, .route = rt, .start_us = start, .keyed = keyed};
	if (keyed)
		memcpy(p->key, key, sizeof(key));
	if (rt->type == SV_MSG_LOGIN_START || rt->type == SV_MSG_REALM_RECOVER2) {
		/* every unfinished login (or realm session) holds a slot of the enclave's table: a
		 * cap per client */
		if (ratelimit_login_begin(h->rl, key, now_ms(), &retry_s) != 0) {
			free(p);
			answer_limited(h, req, rt->ep, start, REASON_PENDING_LOGINS, retry_s,
			               "too many unfinished logins from this address: finish them "
			               "with login/finish or let them time out");
			return;
		}
	}
	int r = link_request(h->link, rt->type, payload, len, on_reply, p);
	if (r != 0) {
		if (rt->type == SV_MSG_LOGIN_START || rt->type == SV_MSG_REALM_RECOVER2)
			ratelimit_login_end(h->rl, key, now_ms());
		free(p);
		if (r == SV_ERR_BUSY && link_down(h->link))
			answer_text(h, req, rt->ep, start, 503,
			            "the vault is restarting; retry in a second\n");
		else if (r == SV_ERR_BUSY)
			answer_text(h, req, rt->ep, start, 503, "vault busy; retry in a second\n");
		else
			answer_text(h, req, rt->ep, start, 500, "cannot reach the vault\n");
	}
}

int http_new(struct broker_http **out, struct event_base *base, const struct http_config *cfg,
             struct link *link, struct tls *tls, struct ratelimit *rl, struct metrics *m)
{
	if (cfg->max_body < 64 || cfg->max_body > SV_FRAME_MAX || cfg->max_headers < 1024 ||
	    cfg->max_headers > 65536 || cfg->idle_timeout_s < 1 || cfg->idle_timeout_s > 3600)
		return SV_ERR_RANGE;
	struct broker_http *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return SV_ERR_NOMEM;
	h->link = link;
	h->tls = tls;
	h->rl = rl;
	h->m = m;
	h->base = base;
	h->fronts[0] = (struct front){h, 0};
	h->fronts[1] = (struct front){h, 1};
	h->log_fds[0] = h->log_fds[1] = -1;
	if ((h->http = evhttp_new(base)) == NULL) {
		free(h);
		return SV_ERR_NOMEM;
	}
	evhttp_set_bevcb(h->http, tls_bevcb, tls);
	evhttp_set_gencb(h->http, on_request, &h->fronts[0]);
	evhttp_set_max_body_size(h->http, (ev_ssize_t)cfg->max_body);
	evhttp_set_max_headers_size(h->http, (ev_ssize_t)cfg->max_headers);
	/* A body over max-body is answered 413 as soon as its Content-Length is read, and the
	 * connection closed (libevent's own answer): no EVHTTP_SERVER_LINGERING_CLOSE, which would
	 * read and discard the whole declared length first (a terabyte, or until the deadline). A
	 * client still sending may see the close before the answer; nothing changes either way. */
	struct timeval tv = {.tv_sec = cfg->idle_timeout_s};
	evhttp_set_timeout_tv(h->http, &tv);
	/* every method reaches on_request, which answers 405 itself */
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                        EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	                                        EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(h->http, "text/plain; charset=utf-8");
	*out = h;
	return SV_OK;
}

int http_serve(struct broker_http *h, int listen_fd)
{
	return evhttp_accept_socket_with_handle(h->http, listen_fd) != NULL ? SV_OK : SV_ERR_IO;
}

int http_serve_metrics(struct broker_http *h, int listen_fd)
{
	if (h->metrics != NULL)
		return SV_ERR_INVALID;
	if ((h->metrics = evhttp_new(h->base)) == NULL)
		return SV_ERR_NOMEM;
	/* Plain HTTP, as Prometheus scrapes by default: the listener is loopback or a unix socket
	 * (sealvault.conf(5), metrics-listen), and the text holds counters, no secret. */
	evhttp_set_gencb(h->metrics, on_request, &h->fronts[1]);
	evhttp_set_max_body_size(h->metrics, 4096);
	evhttp_set_max_headers_size(h->metrics, 8192);
	struct timeval tv = {.tv_sec = 10};
	evhttp_set_timeout_tv(h->metrics, &tv);
	evhttp_set_allowed_methods(h->metrics, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                           EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                           EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	                                           EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(h->metrics, "text/plain; charset=utf-8");
	return evhttp_accept_socket_with_handle(h->metrics, listen_fd) != NULL ? SV_OK : SV_ERR_IO;
}

int http_configure(struct broker_http *h, size_t max_body, unsigned idle_timeout_s)
{
	if (max_body < 64 || max_body > SV_FRAME_MAX || idle_timeout_s < 1 || idle_timeout_s > 3600)
		return SV_ERR_RANGE;
	struct timeval tv = {.tv_sec = idle_timeout_s};
	evhttp_set_max_body_size(h->http, (ev_ssize_t)max_body);
	evhttp_set_timeout_tv(h->http, &tv);
	return SV_OK;
}

void http_set_logs(struct broker_http *h, int event_log_fd, int ima_log_fd)
{
	h->log_fds[0] = event_log_fd;
	h->log_fds[1] = ima_log_fd;
}

void http_free(struct broker_http *h)
{
	if (h == NULL)
		return;
	if (h->http != NULL)
		evhttp_free(h->http);
	if (h->metrics != NULL)
		evhttp_free(h->metrics);
	free(h);
}
