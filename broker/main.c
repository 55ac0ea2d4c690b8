/*
 * sealvault-broker: the network-facing process. Terminates TLS, speaks HTTP, applies size limits,
 * timeouts and per-address rate limits, and forwards request bodies unparsed to the enclave over
 * the socketpair on --ipc-fd. It holds no vault secrets and, once its seccomp filter is in, can
 * open no file and make no connection. Started by sealvaultd; see sealvault-broker(8).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "broker/control.h"
#include "broker/http.h"
#include "broker/link.h"
#include "broker/metrics.h"
#include "broker/ratelimit.h"
#include "broker/tls.h"
#include "common/err.h"
#include "common/net.h"
#include "policy/seccomp.h"

struct options {
	int ipc_fd;
	int control_fd; /* -1: none (no reload) */
	int listen_fd;
	int metrics_fd; /* -1: no metrics listener (then /metrics is answered nowhere) */
	const char *listen;
	const char *cert, *key;
	const char *port_file;
	struct control_settings live; /* what a reload may change */
	unsigned login_timeout_s;     /* the vault's login-timeout-s: unfinished logins age out */
	unsigned max_inflight;
	int log_fds[2]; /* boot and IMA log, opened by sealvaultd (-1: none) */
};

static const char usage[] =
    "usage: sealvault-broker --tls-cert FILE --tls-key FILE (--listen HOST:PORT | --listen-fd N)\n"
    "       [--ipc-fd N] [--port-file FILE] [--max-body BYTES] [--idle-timeout S]\n"
    "       [--request-timeout S] [--rate-limit N] [--rate-burst N] [--max-conns N]\n"
    "       [--max-conns-per-ip N] [--max-inflight N] [--event-log-fd N] [--ima-log-fd N]\n"
    "       [--control-fd N] [--metrics-listen-fd N] [--rate-limit-ipv6-prefix BITS]\n"
    "       [--attestation-rate N] [--attestation-burst N] [--max-pending-logins-per-ip N]\n"
    "       [--login-timeout S]\n"
    "Normally started by sealvaultd(8); see sealvault-broker(8).\n";

static int exit_code = 0;
static struct event_base *the_base;

static void on_fatal(void *arg, const char *why)
{
	fprintf(stderr, "sealvault-broker: %s; exiting so that sealvaultd restarts the pair\n",
	        why);
	exit_code = 1;
	event_base_loopbreak(the_base);
}

static void on_enclave_ready(void *arg)
{
	control_serving(arg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopbreak(the_base);
}

static int number(const char *name, const char *s, unsigned long min, unsigned long max,
                  unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "sealvault-broker: --%s must be a number in %lu..%lu, not '%s'\n",
		        name, min, max, s);
		return SV_ERR_CONFIG;
	}
	*out = v;
	return SV_OK;
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"ipc-fd", required_argument, NULL, 'i'},
	    {"listen", required_argument, NULL, 'l'},
	    {"listen-fd", required_argument, NULL, 'L'},
	    {"tls-cert", required_argument, NULL, 'c'},
	    {"tls-key", required_argument, NULL, 'k'},
	    {"port-file", required_argument, NULL, 'p'},
	    {"max-body", required_argument, NULL, 'b'},
	    {"idle-timeout", required_argument, NULL, 't'},
	    {"request-timeout", required_argument, NULL, 'T'},
	    {"rate-limit", required_argument, NULL, 'r'},
	    {"rate-burst", required_argument, NULL, 'B'},
	    {"max-conns", required_argument, NULL, 'C'},
	    {"max-conns-per-ip", required_argument, NULL, 'P'},
	    {"rate-limit-ipv6-prefix", required_argument, NULL, '6'},
	    {"attestation-rate", required_argument, NULL, 'a'},
	    {"attestation-burst", required_argument, NULL, 'A'},
	    {"max-pending-logins-per-ip", required_argument, NULL, 'G'},
	    {"login-timeout", required_argument, NULL, 'O'},
	    {"max-inflight", required_argument, NULL, 'F'},
	    {"event-log-fd", required_argument, NULL, 'E'},
	    {"ima-log-fd", required_argument, NULL, 'I'},
	    {"control-fd", required_argument, NULL, 'X'},
	    {"metrics-listen-fd", required_argument, NULL, 'M'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	*o = (struct options){
	    .ipc_fd = 3,
	    .control_fd = -1,
	    .listen_fd = -1,
	    .metrics_fd = -1,
	    .max_inflight = 4096,
	    .login_timeout_s = 60,
	    .log_fds = {-1, -1},
	};
	control_settings_defaults(&o->live);
	int c, idx;
	unsigned long v;
	char why[256];
	while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		const char *name = c == '?' || c == 'h' ? "" : longopts[idx].name;
		switch (c) {
		case 'i':
			if (number(name, optarg, 0, INT_MAX, &v) != 0)
				return SV_ERR_CONFIG;
			o->ipc_fd = (int)v;
			break;
		case 'E':
		case 'I':
			if (number(name, optarg, 3, INT_MAX, &v) != 0)
				return SV_ERR_CONFIG;
			o->log_fds[c == 'E' ? 0 : 1] = (int)v;
			break;
		case 'L':
			if (number(name, optarg, 0, INT_MAX, &v) != 0)
				return SV_ERR_CONFIG;
			o->listen_fd = (int)v;
			break;
		case 'l': o->listen = optarg; break;
		case 'c': o->cert = optarg; break;
		case 'k': o->key = optarg; break;
		case 'p': o->port_file = optarg; break;
		case 'b':
		case 't':
		case 'T':
		case 'r':
		case 'B':
		case 'C':
		case 'P':
		case '6':
		case 'a':
		case 'A':
		case 'G':
			if (control_settings_set(&o->live, name, optarg, why, sizeof(why)) != 0) {
				fprintf(stderr, "sealvault-broker: --%s\n", why);
				return SV_ERR_CONFIG;
			}
			break;
		case 'O': /* the vault policy's bounds (policy/vault.c) */
			if (number(name, optarg, 1, 600, &v) != 0)
				return SV_ERR_CONFIG;
			o->login_timeout_s = (unsigned)v;
			break;
		case 'X':
			if (number(name, optarg, 3, INT_MAX, &v) != 0)
				return SV_ERR_CONFIG;
			o->control_fd = (int)v;
			break;
		case 'M':
			if (number(name, optarg, 3, INT_MAX, &v) != 0)
				return SV_ERR_CONFIG;
			o->metrics_fd = (int)v;
			break;
		case 'F':
			if (number(name, optarg, 1, LINK_INFLIGHT_MAX, &v) != 0)
				return SV_ERR_CONFIG;
			o->max_inflight = (unsigned)v;
			break;
		case 'h': fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); return SV_ERR_CONFIG;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "sealvault-broker: unexpected argument '%s'\n%s", argv[optind],
		        usage);
		return SV_ERR_CONFIG;
	}
	if (o->cert == NULL || o->key == NULL || (o->listen == NULL) == (o->listen_fd < 0)) {
		fprintf(stderr,
		        "sealvault-broker: need --tls-cert, --tls-key and exactly one of "
		        "--listen or --listen-fd\n%s",
		        usage);
		return SV_ERR_CONFIG;
	}
	return SV_OK;
}

/* net_listen, with its reason on stderr; the socket or -1. */
static int listen_on(const char *spec)
{
	char why[512];
	int fd = net_listen(spec, why, sizeof(why));
	if (fd < 0)
		fprintf(stderr, "sealvault-broker: %s\n", why);
	return fd;
}

int main(int argc, char **argv)
{
	struct options o;
	struct link *link = NULL;
	struct ratelimit *rl = NULL;
	struct metrics *m = NULL;
	struct tls *tls = NULL;
	struct broker_http *http = NULL;
	struct control *ctl = NULL;
	struct event *sigterm = NULL, *sigint = NULL;
	char why[512];
	int r, type;
	socklen_t tl = sizeof(type);

	if (parse(argc, argv, &o) != 0)
		return 2;
	/* The TLS key lives here: no core dumps, no ptrace by the same uid. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		perror("sealvault-broker: prctl(PR_SET_DUMPABLE)");
		return 1;
	}
	if (getsockopt(o.ipc_fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_SEQPACKET) {
		fprintf(stderr,
		        "sealvault-broker: descriptor %d is not the SOCK_SEQPACKET link to the "
		        "enclave; start the broker through sealvaultd\n",
		        o.ipc_fd);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0 ||
	    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_LOAD_SSL_STRINGS, NULL) != 1) {
		fprintf(stderr, "sealvault-broker: cannot initialise libsodium or OpenSSL\n");
		return 1;
	}
	evutil_secure_rng_init();
	/* evhttp's Date header goes through glibc's time zone code, which reads /etc/localtime the
	 * first time; do that now, before the filter forbids openat. */
	tzset();
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	int lfd = o.listen_fd >= 0 ? o.listen_fd : listen_on(o.listen);
	if (lfd < 0)
		return 1;
	if (evutil_make_socket_nonblocking(lfd) != 0) {
		fprintf(stderr,
		        "sealvault-broker: cannot make the listening socket non-blocking\n");
		return 1;
	}
	int type_m = 0, acc = 0;
	socklen_t ml = sizeof(type_m), al = sizeof(acc);
	if (o.metrics_fd >= 0 &&
	    (getsockopt(o.metrics_fd, SOL_SOCKET, SO_TYPE, &type_m, &ml) != 0 ||
	     getsockopt(o.metrics_fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) != 0 ||
	     type_m != SOCK_STREAM || !acc || evutil_make_socket_nonblocking(o.metrics_fd) != 0)) {
		fprintf(stderr,
		        "sealvault-broker: descriptor %d (--metrics-listen-fd) is not a listening "
		        "stream socket; start the broker through sealvaultd\n",
		        o.metrics_fd);
		return 1;
	}
	if (o.port_file != NULL && net_write_port_file(o.port_file, lfd) != 0) {
		fprintf(stderr, "sealvault-broker: cannot write the port to %s: %s\n", o.port_file,
		        strerror(errno));
		return 1;
	}
	/* The changelist folds the enable/disable pairs that evhttp and bufferevent_openssl make
	 * within one loop iteration into at most one epoll_ctl per descriptor (about 4 per request
	 * without it). Safe here: the broker never dup()s a socket it has handed to the loop. */
	struct event_config *ec = event_config_new();
	if (ec == NULL || event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) != 0 ||
	    (the_base = event_base_new_with_config(ec)) == NULL) {
		if (ec != NULL)
			event_config_free(ec);
		fprintf(stderr, "sealvault-broker: cannot create the event loop\n");
		return 1;
	}
	event_config_free(ec);
	struct ratelimit_config rc = {.pending_timeout_ms = o.login_timeout_s * 1000,
	                              .table_size = 65536};
	control_settings_limits(&o.live, &rc);
	struct http_config hc = {.max_body = o.live.max_body,
	                         .max_headers = 8192,
	                         .idle_timeout_s = o.live.idle_timeout_s};
	r = ratelimit_new(&rl, &rc);
	if (r == 0)
		r = metrics_new(&m);
	if (r == 0)
		r = link_new(&link, the_base, o.ipc_fd, o.max_inflight, on_fatal, NULL);
	if (r != 0) {
		fprintf(stderr, "sealvault-broker: set-up failed: %s\n", sv_strerror(r));
		exit_code = 1;
		goto out;
	}
	struct tls_config tc = {.cert_file = o.cert,
	                        .key_file = o.key,
	                        .max_conns = o.live.max_conns,
	                        .request_timeout_s = o.live.request_timeout_s,
	                        .rl = rl};
	if (tls_new(&tls, the_base, &tc, why, sizeof(why)) != 0) {
		fprintf(stderr, "sealvault-broker: %s\n", why);
		exit_code = 1;
		goto out;
	}
	if ((r = http_new(&http, the_base, &hc, link, tls, rl, m)) != 0 ||
	    (r = http_serve(http, lfd)) != 0 ||
	    (o.metrics_fd >= 0 && (r = http_serve_metrics(http, o.metrics_fd)) != 0)) {
		fprintf(stderr, "sealvault-broker: cannot start the HTTP server: %s\n",
		        sv_strerror(r));
		exit_code = 1;
		goto out;
	}
	struct control_targets ct = {.tls = tls, .http = http, .rl = rl, .link = link};
	if (o.control_fd >= 0 &&
	    (r = control_new(&ctl, the_base, o.control_fd, &ct, on_fatal, NULL)) != 0) {
		fprintf(stderr, "sealvault-broker: cannot watch the control link: %s\n",
		        sv_strerror(r));
		exit_code = 1;
		goto out;
	}
	/* readiness: every SV_MSG_READY of an enclave goes on to sealvaultd (sd_notify) */
	if (ctl != NULL)
		link_on_ready(link, on_enclave_ready, ctl);
	sigterm = evsignal_new(the_base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(the_base, SIGINT, on_signal, NULL);
	if (sigterm == NULL || sigint == NULL || event_add(sigterm, NULL) != 0 ||
	    event_add(sigint, NULL) != 0) {
		fprintf(stderr, "sealvault-broker: cannot install signal handlers\n");
		exit_code = 1;
		goto out;
	}
	http_set_logs(http, o.log_fds[0], o.log_fds[1]);
	struct policy_seccomp_broker sc = {
	    .listen_fd = lfd, .metrics_fd = o.metrics_fd, .log_fds = {o.log_fds[0], o.log_fds[1]}};
	if (policy_seccomp_broker_install(&sc, why, sizeof(why)) != 0) {
		fprintf(stderr, "sealvault-broker: refusing to run without a sandbox: %s\n", why);
		exit_code = 1;
		goto out;
	}
	if (policy_seccomp_test_hook("broker") != 0) {
		exit_code = 1;
		goto out;
	}
	char fp[TLS_FINGERPRINT_LEN];
	(void)tls_fingerprint(tls, fp);
	fprintf(stderr,
	        "sealvault-broker: serving HTTPS (TLS >= 1.2), sandboxed; certificate sha256 %s\n",
	        fp);
	if (event_base_dispatch(the_base) < 0) {
		fprintf(stderr, "sealvault-broker: the event loop failed\n");
		exit_code = 1;
	}
	/* Under the filter, tearing down libevent's signal handling (rt_sigaction) is not allowed:
	 * leave without it; the kernel frees everything. */
	fflush(stderr);
	_exit(exit_code);
out:
	if (sigterm != NULL)
		event_free(sigterm);
	if (sigint != NULL)
		event_free(sigint);
	control_free(ctl);
	http_free(http);
	tls_free(tls);
	link_free(link);
	metrics_free(m);
	ratelimit_free(rl);
	event_base_free(the_base);
	return exit_code;
}
