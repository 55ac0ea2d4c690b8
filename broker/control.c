#include "broker/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "broker/http.h"
#include "broker/link.h"
#include "broker/ratelimit.h"
#include "broker/tls.h"
#include "common/config.h"
#include "common/drain.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"
#include "common/reload.h"

struct control {
	int fd;
	struct event *rd;
	struct control_targets t;
	control_fatal_cb on_fatal;
	void *fatal_arg;
	uint32_t serving; /* SV_MSG_SERVING frames sent */
	uint8_t rbuf[SV_FRAME_BUF_LEN];
};

static const struct key {
	const char *name;
	unsigned long min, max;
} keys[] = {
    {"max-body", 64, 65536},
    {"idle-timeout", 1, 3600},
    {"request-timeout", 1, 3600},
    {"rate-limit", 0, 1000000},
    {"rate-burst", 1, 1000000},
    {"max-conns", 1, 1000000},
    {"max-conns-per-ip", 0, 1000000},
    {"rate-limit-ipv6-prefix", 32, 128},
    {"attestation-rate", 0, 10000},
    {"attestation-burst", 1, 10000},
    {"max-pending-logins-per-ip", 0, 1000000},
};

void control_settings_defaults(struct control_settings *s)
{
	*s = (struct control_settings){
	    .max_body = 4096,
	    .idle_timeout_s = 10,
	    .request_timeout_s = 30,
	    .rate = 50,
	    .burst = 100,
	    .max_conns = 4096,
	    .conns_per_ip = 64,
	    .ipv6_prefix = 64,
	    .attest_rate = 10,
	    .attest_burst = 20,
	    .pending_per_ip = 64,
	};
}

int control_settings_set(struct control_settings *s, const char *key, const char *value, char *why,
                         size_t why_len)
{
	size_t i = 0;
	while (i < sizeof(keys) / sizeof(keys[0]) && strcmp(keys[i].name, key) != 0)
		i++;
	if (i == sizeof(keys) / sizeof(keys[0])) {
		snprintf(why, why_len, "'%.40s' is not a setting the broker can change", key);
		return SV_ERR_CONFIG;
	}
	char *end;
	errno = 0;
	unsigned long v = strtoul(value, &end, 10);
	if (errno != 0 || *value < '0' || *value > '9' || *end != '\0' || v < keys[i].min ||
	    v > keys[i].max) {
		snprintf(why, why_len, "%s must be a number in %lu..%lu, not '%.40s'", key,
		         keys[i].min, keys[i].max, value);
		return SV_ERR_CONFIG;
	}
	switch (i) {
	case 0: s->max_body = v; break;
	case 1: s->idle_timeout_s = (unsigned)v; break;
	case 2: s->request_timeout_s = (unsigned)v; break;
	case 3: s->rate = (unsigned)v; break;
	case 4: s->burst = (unsigned)v; break;
	case 5: s->max_conns = (unsigned)v; break;
	case 6: s->conns_per_ip = (unsigned)v; break;
	case 7: s->ipv6_prefix = (unsigned)v; break;
	case 8: s->attest_rate = (unsigned)v; break;
	case 9: s->attest_burst = (unsigned)v; break;
	default: s->pending_per_ip = (unsigned)v; break;
	}
	return SV_OK;
}

void control_settings_limits(const struct control_settings *s, struct ratelimit_config *rc)
{
	rc->rate = s->rate;
	rc->burst = s->burst;
	rc->conns_per_ip = s->conns_per_ip;
	rc->ipv6_prefix = s->ipv6_prefix;
	rc->attest_rate = s->attest_rate;
	rc->attest_burst = s->attest_burst;
	rc->pending_per_ip = s->pending_per_ip;
}

static int set_one(void *arg, const char *key, const char *value, char *why, size_t why_len)
{
	return control_settings_set(arg, key, value, why, why_len);
}

/* The settings lines of a reload, on top of the defaults. */
static int parse_settings(const struct reload_msg *m, struct control_settings *s, char *why,
                          size_t why_len)
{
	char text[RELOAD_SETTINGS_MAX + 1], inner[256];
	control_settings_defaults(s);
	memcpy(text, m->settings, m->settings_len);
	text[m->settings_len] = '\0';
	char *line = text;
	while (*line != '\0') {
		char *nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (config_parse_line(line, set_one, s, inner, sizeof(inner)) != 0) {
			snprintf(why, why_len, "%s", inner);
			return SV_ERR_CONFIG;
		}
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	return SV_OK;
}

/* Applies a decoded reload, all or nothing: the new TLS context is the only part that can fail,
 * and it goes first. */
static int apply(struct control *c, const struct reload_msg *m, char *why, size_t why_len)
{
	struct control_settings s;
	char fp[TLS_FINGERPRINT_LEN];
	int r = parse_settings(m, &s, why, why_len);
	if (r != 0)
		return r;
	r = tls_reload(c->t.tls, m->cert, m->cert_len, m->key, m->key_len, s.max_conns,
	               s.request_timeout_s, why, why_len);
	if (r != 0)
		return r;
	/* within the bounds control_settings_set checked: these cannot fail */
	struct ratelimit_config rc;
	ratelimit_config_get(c->t.rl, &rc);
	control_settings_limits(&s, &rc);
	if (ratelimit_configure(c->t.rl, &rc) != 0 ||
	    http_configure(c->t.http, s.max_body, s.idle_timeout_s) != 0) {
		snprintf(why, why_len, "internal error: settings out of bounds after the check");
		return SV_ERR_INTERNAL;
	}
	(void)tls_fingerprint(c->t.tls, fp);
	snprintf(why, why_len,
	         "serving certificate sha256 %s to new connections; rate-limit %u, rate-burst %u, "
	         "max-conns %u, max-conns-per-ip %u, max-body %zu, idle-timeout %u, "
	         "request-timeout %u, rate-limit-ipv6-prefix %u, attestation-rate %u, "
	         "attestation-burst %u, max-pending-logins-per-ip %u",
	         fp, s.rate, s.burst, s.max_conns, s.conns_per_ip, s.max_body, s.idle_timeout_s,
	         s.request_timeout_s, s.ipv6_prefix, s.attest_rate, s.attest_burst,
	         s.pending_per_ip);
	return SV_OK;
}

static void answer(struct control *c, uint32_t id, int ok, const char *text)
{
	uint8_t out[1 + 600];
	size_t n = strlen(text);
	if (n > sizeof(out) - 1)
		n = sizeof(out) - 1;
	out[0] = ok ? 0 : 1;
	memcpy(out + 1, text, n);
	int r = frame_send(c->fd, SV_MSG_RELOADED, id, out, 1 + n);
	if (r != 0)
		fprintf(stderr, "sealvault-broker: cannot answer sealvaultd's reload (%s)\n",
		        sv_strerror(r));
}

/* sealvaultd's SV_MSG_DRAIN (SIGTERM): passed on to the enclave, which refuses new logins
 * itself and says when the pending ones are done (on_drain_status). 0, or -1 for a payload that
 * does not decode. */
static int drain(struct control *c, const struct sv_frame *f)
{
	unsigned timeout_s;
	if (f->req_id != 0 || drain_request_decode(f->payload, f->len, &timeout_s) != 0)
		return -1;
	int r = c->t.link != NULL ? link_drain(c->t.link, timeout_s) : SV_ERR_IO;
	if (r != 0)
		fprintf(
		    stderr,
		    "sealvault-broker: cannot pass the drain on to the enclave (%s); sealvaultd "
		    "stops both processes when its own timeout passes\n",
		    sv_strerror(r));
	else
		fprintf(stderr,
		        "sealvault-broker: stopping: asked the enclave to refuse new logins and to "
		        "report when the pending ones are done (at most %u s)\n",
		        timeout_s);
	return 0;
}

/* The enclave's SV_MSG_DRAIN_STATUS, passed on to sealvaultd as SV_MSG_DRAIN_REPORT. */
static void on_drain_status(void *arg, const struct drain_report *rep)
{
	struct control *c = arg;
	uint8_t p[DRAIN_REPORT_LEN];
	int r = drain_report_encode(p, rep);
	if (r == 0)
		r = frame_send(c->fd, SV_MSG_DRAIN_REPORT, 0, p, sizeof(p));
	if (r != 0)
		fprintf(stderr,
		        "sealvault-broker: cannot pass the enclave's drain status on to sealvaultd "
		        "(%s)\n",
		        sv_strerror(r));
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;
	char why[600];
	for (;;) {
		struct sv_frame f;
		struct reload_msg m;
		int r = frame_recv(c->fd, c->rbuf, &f);
		if (r == SV_ERR_BUSY)
			return;
		if (r == SV_ERR_IO) {
			/* sealvaultd is gone; PR_SET_DEATHSIG ends this process too */
			event_del(c->rd);
			return;
		}
		if (r == 0 && f.type == SV_MSG_DRAIN && drain(c, &f) == 0)
			continue;
		if (r != 0 || f.type != SV_MSG_RELOAD || reload_decode(f.payload, f.len, &m) != 0) {
			sodium_memzero(c->rbuf, sizeof(c->rbuf));
			event_del(c->rd);
			c->on_fatal(c->fatal_arg, "malformed frame on sealvaultd's control link");
			return;
		}
		r = apply(c, &m, why, sizeof(why));
		sodium_memzero(c->rbuf, SV_FRAME_HDR_LEN + f.len); /* the TLS key */
		if (r == 0)
			fprintf(stderr, "sealvault-broker: reloaded: %s\n", why);
		else
			fprintf(stderr, "sealvault-broker: reload refused, nothing changed: %s\n",
			        why);
		answer(c, f.req_id, r == 0, why);
	}
}

int control_new(struct control **out, struct event_base *base, int fd,
                const struct control_targets *t, control_fatal_cb on_fatal, void *fatal_arg)
{
	struct control *c;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return SV_ERR_IO;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return SV_ERR_NOMEM;
	c->fd = fd;
	c->t = *t;
	c->on_fatal = on_fatal;
	c->fatal_arg = fatal_arg;
	c->rd = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, c);
	if (c->rd == NULL || event_add(c->rd, NULL) != 0) {
		control_free(c);
		return SV_ERR_IO;
	}
	if (t->link != NULL)
		link_on_drain(t->link, on_drain_status, c);
	*out = c;
	return SV_OK;
}

void control_serving(struct control *c)
{
	int r = frame_send(c->fd, SV_MSG_SERVING, ++c->serving, NULL, 0);
	if (r != 0)
		fprintf(stderr,
		        "sealvault-broker: cannot tell sealvaultd that the vault serves (%s); "
		        "systemd does not learn it\n",
		        sv_strerror(r));
}

void control_free(struct control *c)
{
	if (c == NULL)
		return;
	if (c->rd != NULL)
		event_free(c->rd);
	sodium_memzero(c->rbuf, sizeof(c->rbuf));
	free(c);
}
