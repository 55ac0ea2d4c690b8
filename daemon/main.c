/*
 * sealvaultd: starts the vault's two processes from one configuration and supervises them. It
 * creates the SOCK_SEQPACKET socketpair, binds the HTTPS listener, then starts sealvault-enclave
 * (fd 3 = its end of the pair, fd 4 = its end of the audit pair, whose records daemon/audit.c
 * writes to the journal, fd 5 = its end of the admin pair of daemon/adminsock.h, through
 * which sealvault-admin status and delete reach it) and sealvault-broker (fd 3 =
 * the other end, fd 4 = the listener, fd 5 = its end of a second pair, the control link for reloads
 * and readiness, then the boot and IMA logs and the metrics listener, each at the next number),
 * each under its own user when run as root, and supervises them (daemon/supervise.c): when either
 * child ends, the other is stopped and sealvaultd exits non-zero so that systemd restarts the
 * pair, except when the enclave says the TPM is unavailable for now (SV_EXIT_TPM_UNAVAILABLE):
 * then sealvaultd restarts the enclave alone, with back-off, while the broker keeps its clients'
 * connections and answers 503. SIGHUP reloads (reload() below): the settings that can change at
 * runtime, with the certificate and key read here, go to the broker on the control link; the
 * others are refused by name. When the broker says the enclave serves, sealvaultd tells systemd
 * READY=1 (Type=notify). See sealvaultd(8), sealvault.conf(5).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"
#include "common/net.h"
#include "common/config.h"
#include "common/reload.h"
#include "daemon/adminsock.h"
#include "daemon/audit.h"
#include "daemon/drain.h"
#include "daemon/supervise.h"
#include "policy/vault.h"

#ifndef SV_LIBEXECDIR
#define SV_LIBEXECDIR "/usr/libexec/sealvault"
#endif
#define DEFAULT_CONFIG "/etc/sealvault/sealvault.conf"

enum dest {
	TO_SELF,    /* used by sealvaultd itself */
	TO_BROKER,  /* passed to the broker as --key value */
	TO_ENCLAVE, /* passed to the enclave as --key value */
	TO_POLICY,  /* vault policy, checked here, passed to the enclave as --policy key=value */
};

struct setting {
	const char *name;
	enum dest dest;
	const char *def; /* default, or NULL: the child's own default applies */
	int empty_ok;    /* the empty string is a valid value */
	int numeric;
	const char *value;
};

static struct setting settings[] = {
    {"config", TO_SELF, DEFAULT_CONFIG, 0, 0, NULL},
    {"state-dir", TO_ENCLAVE, "/var/lib/sealvault", 0, 0, NULL},
    {"tpm", TO_ENCLAVE, "device:/dev/tpmrm0", 0, 0, NULL},
    {"tpm-timeout", TO_ENCLAVE, NULL, 0, 1, NULL},
    {"max-users", TO_ENCLAVE, NULL, 0, 0, NULL},
    {"context", TO_ENCLAVE, NULL, 1, 0, NULL},
    {"listen", TO_SELF, "0.0.0.0:443", 0, 0, NULL},
    {"listen-fd", TO_SELF, NULL, 0, 1, NULL},
    {"tls-cert", TO_BROKER, "/etc/sealvault/tls/cert.pem", 0, 0, NULL},
    {"tls-key", TO_BROKER, "/etc/sealvault/tls/key.pem", 0, 0, NULL},
    {"user", TO_SELF, "sealvault", 0, 0, NULL},
    {"broker-user", TO_SELF, "sealvault-broker", 0, 0, NULL},
    {"libexec-dir", TO_SELF, SV_LIBEXECDIR, 0, 0, NULL},
    {"port-file", TO_SELF, NULL, 0, 0, NULL},
    {"metrics-listen", TO_SELF, "127.0.0.1:9464", 0, 0, NULL},
    {"metrics-port-file", TO_SELF, NULL, 0, 0, NULL},
    {"admin-socket", TO_SELF, "/run/sealvault/admin.sock", 0, 0, NULL},
    {"event-log", TO_SELF, "/sys/kernel/security/tpm0/binary_bios_measurements", 0, 0, NULL},
    {"ima-log", TO_SELF, "/sys/kernel/security/ima/ascii_runtime_measurements", 0, 0, NULL},
    {"max-body", TO_BROKER, NULL, 0, 1, NULL},
    {"idle-timeout", TO_BROKER, NULL, 0, 1, NULL},
    {"request-timeout", TO_BROKER, NULL, 0, 1, NULL},
    {"rate-limit", TO_BROKER, NULL, 0, 1, NULL},
    {"rate-burst", TO_BROKER, NULL, 0, 1, NULL},
    {"max-conns", TO_BROKER, NULL, 0, 1, NULL},
    {"max-conns-per-ip", TO_BROKER, NULL, 0, 1, NULL},
    {"rate-limit-ipv6-prefix", TO_BROKER, NULL, 0, 1, NULL},
    {"attestation-rate", TO_BROKER, NULL, 0, 1, NULL},
    {"attestation-burst", TO_BROKER, NULL, 0, 1, NULL},
    {"max-pending-logins-per-ip", TO_BROKER, NULL, 0, 1, NULL},
    {"max-inflight", TO_BROKER, NULL, 0, 1, NULL},
    {"default-guess-limit", TO_POLICY, NULL, 0, 0, NULL},
    {"max-guess-limit", TO_POLICY, NULL, 0, 0, NULL},
    {"batch-window-us", TO_POLICY, NULL, 0, 0, NULL},
    {"max-batch", TO_POLICY, NULL, 0, 0, NULL},
    {"pending-login-max", TO_POLICY, NULL, 0, 0, NULL},
    {"login-timeout-s", TO_POLICY, NULL, 0, 0, NULL},
    {"nv-writes-per-day", TO_POLICY, NULL, 0, 0, NULL},
    {"nv-writes-burst", TO_POLICY, NULL, 0, 0, NULL},
    {"unclean-boots-per-year", TO_POLICY, NULL, 0, 0, NULL},
    {"nv-flush-budget-per-day", TO_POLICY, NULL, 0, 0, NULL},
    {"counter-scheme", TO_POLICY, NULL, 0, 0, NULL},
    {"audit-key-file", TO_SELF, "/run/sealvault/audit-id.key", 0, 0, NULL},
    {"login-rate-per-id", TO_POLICY, NULL, 0, 0, NULL},
    {"login-burst-per-id", TO_POLICY, NULL, 0, 0, NULL},
    {"auth", TO_POLICY, NULL, 0, 0, NULL},
    {"token-max-lifetime-s", TO_POLICY, NULL, 0, 0, NULL},
    {"token-clock-skew-s", TO_POLICY, NULL, 0, 0, NULL},
    {"tenants-dir", TO_ENCLAVE, NULL, 0, 0, NULL},
    {"drain-timeout-s", TO_SELF, NULL, 0, 1, NULL}, /* default: login-timeout-s */
};
#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

/* The settings a reload (SIGHUP) changes: the broker's limits and its certificate and key. Every
 * other one is fixed for the life of the process (sealvault.conf(5), "Reload"). */
static const char *const reloadable[] = {
    "tls-cert",
    "tls-key",
    "max-body",
    "idle-timeout",
    "request-timeout",
    "rate-limit",
    "rate-burst",
    "max-conns",
    "max-conns-per-ip",
    "rate-limit-ipv6-prefix",
    "attestation-rate",
    "attestation-burst",
    "max-pending-logins-per-ip",
};
#define RELOAD_ANSWER_MS 10000 /* the broker's SV_MSG_RELOADED must come within this */

/* Values given as flags (they win over the file, at start and on reload) and the values the
 * configuration file gave, as the running processes use them (strdup'd). */
static const char *flagged[N_SETTINGS];
static char *file_values[N_SETTINGS];
static int ctl_fd = -1;     /* sealvaultd's end of the control pair with the broker */
static char *notify_socket; /* $NOTIFY_SOCKET, kept from the children (NULL: not under systemd) */
static struct drain_hooks drain_hooks; /* the graceful stop (daemon/drain.h) */

static struct setting *find(const char *name)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(settings[i].name, name) == 0)
			return &settings[i];
	return NULL;
}

static const char *get(const char *name)
{
	const struct setting *s = find(name);
	return s->value != NULL ? s->value : s->def;
}

static int check_value(const struct setting *s, const char *value, char *why, size_t why_len)
{
	if (*value == '\0' && !s->empty_ok) {
		snprintf(why, why_len, "%s needs a value", s->name);
		return SV_ERR_CONFIG;
	}
	if (s->numeric && value[strspn(value, "0123456789")] != '\0') {
		snprintf(why, why_len, "%s must be a decimal number, not '%.40s'", s->name, value);
		return SV_ERR_CONFIG;
	}
	return SV_OK;
}

/* Collects the file's values into the array arg (strdup'd; a later line wins). */
static int from_file(void *arg, const char *key, const char *value, char *why, size_t why_len)
{
	struct setting *s = find(key);
	if (s == NULL || strcmp(key, "config") == 0) {
		snprintf(why, why_len, "unknown key '%s' (see sealvault.conf(5))", key);
		return SV_ERR_CONFIG;
	}
	size_t i = (size_t)(s - settings);
	/* flags win over the file: the flag pass ran first and recorded its values */
	if (flagged[i] != NULL)
		return SV_OK;
	int r = check_value(s, value, why, why_len);
	if (r != 0)
		return r;
	char **values = arg, *copy = strdup(value);
	if (copy == NULL)
		return SV_ERR_NOMEM;
	free(values[i]);
	values[i] = copy;
	return SV_OK;
}

/* Reads the configuration file into values (N_SETTINGS entries, NULL where the file says
 * nothing): 0, or SV_ERR_CONFIG with the reason in why. A missing default file is no file. */
static int read_config(char **values, char *why, size_t why_len)
{
	const char *path = get("config");
	int explicit = find("config")->value != NULL;
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		if (explicit || errno != ENOENT) {
			snprintf(why, why_len, "cannot read the configuration %s: %s", path,
			         strerror(errno));
			return SV_ERR_CONFIG;
		}
		return SV_OK; /* no default file: flags and built-in defaults only */
	}
	int r = config_parse_stream(f, path, from_file, values, why, why_len);
	fclose(f);
	return r != 0 ? SV_ERR_CONFIG : SV_OK;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: sealvaultd [--config FILE] [--KEY VALUE]...\n"
	        "Every key of sealvault.conf(5) is also a flag; flags override the file. Keys:\n");
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (settings[i].def != NULL)
			fprintf(f, "  --%s (default: %s)\n", settings[i].name, settings[i].def);
		else
			fprintf(f, "  --%s\n", settings[i].name);
	fprintf(f, "Keys without a default leave it to the process that uses them; see "
	           "sealvaultd(8).\n");
}

static int parse(int argc, char **argv)
{
	struct option longopts[N_SETTINGS + 2];
	char why[512];
	for (size_t i = 0; i < N_SETTINGS; i++)
		longopts[i] =
		    (struct option){settings[i].name, required_argument, NULL, 256 + (int)i};
	longopts[N_SETTINGS] = (struct option){"help", no_argument, NULL, 'h'};
	longopts[N_SETTINGS + 1] = (struct option){NULL, 0, NULL, 0};
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (c < 256 || c >= 256 + (int)N_SETTINGS) {
			usage(stderr);
			return SV_ERR_CONFIG;
		}
		struct setting *s = &settings[c - 256];
		if (check_value(s, optarg, why, sizeof(why)) != 0) {
			fprintf(stderr, "sealvaultd: --%s\n", why);
			return SV_ERR_CONFIG;
		}
		s->value = optarg;
		flagged[c - 256] = optarg;
	}
	if (optind != argc) {
		fprintf(stderr, "sealvaultd: unexpected argument '%s'; options are --KEY VALUE\n",
		        argv[optind]);
		return SV_ERR_CONFIG;
	}
	if (read_config(file_values, why, sizeof(why)) != 0) {
		fprintf(stderr, "sealvaultd: %s\n", why);
		return SV_ERR_CONFIG;
	}
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (file_values[i] != NULL)
			settings[i].value = file_values[i];
	return SV_OK;
}

static int check_policy(void)
{
	struct sv_vault_policy p;
	char why[256];
	policy_vault_defaults(&p);
	for (size_t i = 0; i < N_SETTINGS; i++) {
		if (settings[i].dest != TO_POLICY || settings[i].value == NULL)
			continue;
		if (policy_vault_set(&p, settings[i].name, settings[i].value, why, sizeof(why)) !=
		    0) {
			fprintf(stderr, "sealvaultd: %s\n", why);
			return SV_ERR_CONFIG;
		}
	}
	if (policy_vault_check(&p, why, sizeof(why)) != 0) {
		fprintf(stderr, "sealvaultd: %s\n", why);
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
		fprintf(stderr, "sealvaultd: %s\n", why);
	return fd;
}

/* An already listening stream socket inherited as descriptor N (systemd socket activation:
 * sealvault.socket hands it over as fd 3), so the service needs no network of its own. The
 * socket-activation variables are dropped so that the children do not see them. The socket or -1.
 */
static int inherited_listener(const char *spec)
{
	char *end;
	errno = 0;
	long n = strtol(spec, &end, 10);
	int type = 0, acc = 0;
	socklen_t tl = sizeof(type), al = sizeof(acc);
	if (errno != 0 || *end != '\0' || n < 3 || n > INT_MAX) {
		fprintf(stderr,
		        "sealvaultd: listen-fd must be a descriptor number >= 3, not '%s'\n", spec);
		return -1;
	}
	int fd = (int)n;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) != 0 || type != SOCK_STREAM ||
	    !acc) {
		fprintf(stderr,
		        "sealvaultd: descriptor %d (listen-fd) is not a listening stream socket; "
		        "start sealvaultd through sealvault.socket or use --listen HOST:PORT\n",
		        fd);
		return -1;
	}
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		perror("sealvaultd: listen-fd");
		return -1;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return fd;
}

/* At start-up: what main has allocated lives as long as sealvaultd, so there is nothing to undo. */
static void __attribute__((noreturn)) die_oom(void)
{
	fprintf(stderr, "sealvaultd: out of memory\n");
	exit(1);
}

static char *path_join(const char *dir, const char *file)
{
	size_t n = strlen(dir) + strlen(file) + 2;
	char *p = malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s/%s", dir, file);
	return p;
}

/* Where sealvault-enclave and sealvault-broker are: --libexec-dir when given; otherwise the
 * directory of this executable when both helpers are there (sealvaultd run from the build tree),
 * else the built-in LIBEXECDIR. 0, or -1 after naming the missing helper and what to pass. */
static int find_helpers(void)
{
	static const char *const helpers[] = {"sealvault-enclave", "sealvault-broker"};
	static char self_dir[PATH_MAX];
	struct setting *s = find("libexec-dir");
	ssize_t n;
	if (s->value == NULL &&
	    (n = readlink("/proc/self/exe", self_dir, sizeof(self_dir) - 1)) > 0) {
		self_dir[n] = '\0';
		char *slash = strrchr(self_dir, '/');
		int here = slash != NULL && slash != self_dir;
		if (here)
			*slash = '\0';
		for (size_t i = 0; here && i < 2; i++) {
			char *p = path_join(self_dir, helpers[i]);
			here = p != NULL && access(p, X_OK) == 0;
			free(p);
		}
		if (here)
			s->value = self_dir;
	}
	for (size_t i = 0; i < 2; i++) {
		char *p = path_join(get("libexec-dir"), helpers[i]);
		if (p == NULL)
			die_oom();
		if (access(p, X_OK) != 0) {
			fprintf(stderr,
			        "sealvaultd: cannot run %s: %s; pass --libexec-dir DIR naming the "
			        "directory that holds sealvault-enclave and sealvault-broker (the "
			        "build directory when running from a source tree)\n",
			        p, strerror(errno));
			free(p);
			return -1;
		}
		free(p);
	}
	return 0;
}

/* --key value pairs for one child; policy settings as --policy key=value. */
static int build_argv(struct child *c, const char *prog, enum dest dest, char **extra)
{
	size_t n = 0;
	if ((c->argv = calloc(2 * N_SETTINGS + 8, sizeof(*c->argv))) == NULL)
		return SV_ERR_NOMEM;
	if ((c->argv[n++] = path_join(get("libexec-dir"), prog)) == NULL)
		return SV_ERR_NOMEM;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		const char *v = s->value != NULL ? s->value : s->def;
		int mine = s->dest == dest || (dest == TO_ENCLAVE && s->dest == TO_POLICY);
		if (!mine || v == NULL)
			continue;
		size_t len = strlen(s->name) + strlen(v) + 16;
		char *a = malloc(len);
		if (a == NULL)
			return SV_ERR_NOMEM;
		if (s->dest == TO_POLICY) {
			if ((c->argv[n++] = strdup("--policy")) == NULL) {
				free(a);
				return SV_ERR_NOMEM;
			}
			snprintf(a, len, "%s=%s", s->name, v);
		} else {
			snprintf(a, len, "--%s=%s", s->name, v);
		}
		c->argv[n++] = a;
	}
	for (; *extra != NULL; extra++)
		c->argv[n++] = *extra;
	c->argv[n] = NULL;
	for (size_t i = 0; i < n; i++)
		if (c->argv[i] == NULL)
			return SV_ERR_NOMEM;
	return SV_OK;
}

/* Tells systemd (sd_notify(3), Type=notify) what it should know: READY=1 and a STATUS= line. The
 * variable is put back for the call only, so that the children never see it. */
static void notify(const char *state)
{
	if (notify_socket == NULL)
		return;
	if (setenv("NOTIFY_SOCKET", notify_socket, 1) != 0) {
		fprintf(stderr, "sealvaultd: cannot tell systemd '%s': out of memory\n", state);
		return;
	}
	int r = sd_notify(1, state);
	if (r < 0)
		fprintf(stderr, "sealvaultd: cannot tell systemd '%s' (sd_notify: %s)\n", state,
		        strerror(-r));
}

/* what this supervisor counted, for the enclave's /metrics (rewritten before each start) */
static char restarts_arg[40], timeouts_arg[40];

/* Every restart of the enclave follows a TPM failure (a timeout, a lost connection, throttled
 * NV writes at start), so both counters are the same. */
static void count_restart(unsigned long restarts)
{
	if (restarts > 0) {
		char state[96];
		adminsock_enclave_gone();
		snprintf(state, sizeof(state),
		         "STATUS=restarting the enclave (TPM unavailable; restart %lu)", restarts);
		notify(state);
	}
	snprintf(restarts_arg, sizeof(restarts_arg), "--restarts=%lu", restarts);
	snprintf(timeouts_arg, sizeof(timeouts_arg), "--tpm-timeouts=%lu", restarts);
}

static int is_reloadable(const struct setting *s)
{
	for (size_t i = 0; i < sizeof(reloadable) / sizeof(reloadable[0]); i++)
		if (strcmp(reloadable[i], s->name) == 0)
			return 1;
	return 0;
}

static int same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Reads a whole file of at most max bytes into buf: its length, or -1 with a reason in why.
 * Plain read(2), no stdio: no buffer of the library's keeps a copy of the key. */
static ssize_t slurp(const char *what, const char *path, uint8_t *buf, size_t max, char *why,
                     size_t why_len)
{
	size_t n = 0;
	ssize_t r = 1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_len, "cannot read the %s %s: %s", what, path, strerror(errno));
		return -1;
	}
	while (n < max && r != 0) {
		r = read(fd, buf + n, max - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(why, why_len, "cannot read the %s %s: %s", what, path,
			         strerror(errno));
			close(fd);
			return -1;
		}
		n += (size_t)r;
	}
	uint8_t extra;
	int more = n == max && read(fd, &extra, 1) == 1;
	sodium_memzero(&extra, sizeof(extra));
	close(fd);
	if (more || n == 0) {
		snprintf(why, why_len, "cannot use the %s %s: %s", what, path,
		         n == 0 ? "empty file" : "larger than 64 KiB");
		return -1;
	}
	return (ssize_t)n;
}

/* The broker's SV_MSG_SERVING: an enclave said SV_MSG_READY, so the vault serves (the first, or
 * again after a restart of the enclave). n: the times so far. */
static void serving(uint32_t n)
{
	char state[80];
	if (n <= 1)
		snprintf(state, sizeof(state), "READY=1\nSTATUS=serving");
	else
		snprintf(state, sizeof(state), "READY=1\nSTATUS=serving (enclave started %u times)",
		         n);
	fprintf(stderr, "sealvaultd: the vault serves%s\n",
	        notify_socket != NULL ? "; told systemd" : "");
	notify(state);
}

/* SIGIO: what the broker wrote on the control pair outside a reload. SV_MSG_SERVING is acted
 * on; a late SV_MSG_RELOADED (a reload that timed out) is dropped; anything else is logged (the
 * broker's end is its own process: sealvaultd does not stop for it; its exit is seen as SIGCHLD).
 */
static void control_readable(void)
{
	static uint8_t buf[SV_FRAME_BUF_LEN];
	for (;;) {
		struct sv_frame f;
		int r = frame_recv(ctl_fd, buf, &f);
		if (r == SV_ERR_BUSY)
			return;
		if (r == SV_ERR_IO)
			return; /* the broker's end closed: SIGCHLD follows */
		if (r == 0 && f.type == SV_MSG_DRAIN_REPORT) {
			drain_heard(f.payload, f.len);
			continue;
		}
		if (r != 0 || (f.type != SV_MSG_SERVING && f.type != SV_MSG_RELOADED)) {
			fprintf(stderr,
			        "sealvaultd: unexpected frame on the broker's control link (%s)\n",
			        r != 0 ? sv_strerror(r) : "type");
			return;
		}
		if (f.type == SV_MSG_SERVING)
			serving(f.req_id);
	}
}

/* SIGIO, which every descriptor sealvaultd reads without blocking raises (O_ASYNC): the
 * enclave's audit pair, the broker's control pair and the admin socket. */
static void on_sigio(void)
{
	daemon_audit_readable();
	control_readable();
	adminsock_readable();
}

/* Waits for the broker's SV_MSG_RELOADED to request id: 1 applied, 0 refused, -1 no answer (the
 * reason in text). The broker's answers to earlier reloads that timed out are skipped. */
static int reload_answer(uint32_t id, char *text, size_t text_len)
{
	static uint8_t buf[SV_FRAME_BUF_LEN];
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= RELOAD_ANSWER_MS) {
			snprintf(text, text_len, "the broker did not answer within %d s",
			         RELOAD_ANSWER_MS / 1000);
			return -1;
		}
		struct pollfd p = {.fd = ctl_fd, .events = POLLIN};
		if (poll(&p, 1, (int)(RELOAD_ANSWER_MS - ms)) <= 0)
			continue;
		struct sv_frame f;
		int r = frame_recv(ctl_fd, buf, &f);
		if (r == SV_ERR_BUSY)
			continue;
		if (r == 0 && f.type == SV_MSG_SERVING && f.len == 0) {
			serving(f.req_id);
			continue;
		}
		if (r != 0 || f.type != SV_MSG_RELOADED || f.len < 1) {
			snprintf(text, text_len, "the control link to the broker failed (%s)",
			         r != 0 ? sv_strerror(r) : "unexpected frame");
			return -1;
		}
		if (f.req_id != id)
			continue;
		int n = (int)(f.len - 1 > 600 ? 600 : f.len - 1);
		snprintf(text, text_len, "%.*s", n, (const char *)f.payload + 1);
		return f.payload[0] == 0 ? 1 : 0;
	}
}

/* Builds SV_MSG_RELOAD from the values a reload would give (eff) and sends it: 0, or -1 with
 * the reason in why. The key is read into locked memory and wiped. */
static int reload_send(const char *const *eff, uint32_t id, char *why, size_t why_len)
{
	static uint8_t payload[SV_FRAME_MAX];
	static uint8_t cert[SV_FRAME_MAX];
	char text[RELOAD_SETTINGS_MAX];
	size_t tl = 0, n = 0;
	int r = -1;
	uint8_t *key = sodium_malloc(SV_FRAME_MAX);
	if (key == NULL) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < N_SETTINGS; i++) {
		if (!is_reloadable(&settings[i]) || !settings[i].numeric || eff[i] == NULL)
			continue;
		int w =
		    snprintf(text + tl, sizeof(text) - tl, "%s = %s\n", settings[i].name, eff[i]);
		if (w < 0 || (size_t)w >= sizeof(text) - tl) {
			snprintf(why, why_len, "the broker's settings are too long");
			goto out;
		}
		tl += (size_t)w;
	}
	ssize_t cl = slurp("certificate", eff[find("tls-cert") - settings], cert, sizeof(cert), why,
	                   why_len);
	ssize_t kl = cl < 0 ? -1
	                    : slurp("private key", eff[find("tls-key") - settings], key,
	                            SV_FRAME_MAX, why, why_len);
	if (kl < 0)
		goto out;
	struct reload_msg m = {text, tl, cert, (size_t)cl, key, (size_t)kl};
	if (reload_encode(payload, sizeof(payload), &m, &n) != 0) {
		snprintf(why, why_len,
		         "the certificate chain and the key together are larger than 64 KiB");
		goto out;
	}
	int s = frame_send(ctl_fd, SV_MSG_RELOAD, id, payload, n);
	if (s != 0) {
		snprintf(why, why_len, "cannot send it to the broker (%s)",
		         s == SV_ERR_BUSY ? "it does not read its control link" : sv_strerror(s));
		goto out;
	}
	r = 0;
out:
	sodium_memzero(payload, sizeof(payload));
	sodium_free(key);
	return r;
}

/* SIGHUP: re-reads the configuration file. Settings that cannot change at runtime keep their
 * running values (and are named); the broker's reloadable ones, with the certificate and key read
 * here, are sent to it; the new values count as running once the broker applied them. A file
 * that does not parse, or a certificate or key that cannot be read, changes nothing. */
static void reload(void)
{
	static uint32_t reloads;
	char *nv[N_SETTINGS] = {0};
	const char *eff[N_SETTINGS];
	char why[700], fixed[400] = "";
	size_t fl = 0;
	uint32_t id = ++reloads;

	fprintf(stderr, "sealvaultd: SIGHUP: reloading %s\n", get("config"));
	if (read_config(nv, why, sizeof(why)) != 0) {
		fprintf(stderr, "sealvaultd: reload refused, nothing changed: %s\n", why);
		goto out;
	}
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		eff[i] = s->value != NULL ? s->value : s->def;
		if (flagged[i] != NULL || same(file_values[i], nv[i]))
			continue;
		if (is_reloadable(s)) {
			eff[i] = nv[i] != NULL ? nv[i] : s->def;
		} else if (fl < sizeof(fixed)) {
			int w = snprintf(fixed + fl, sizeof(fixed) - fl, "%s%s", fl ? ", " : "",
			                 s->name);
			fl += w > 0 ? (size_t)w : 0;
		}
	}
	if (fl > 0)
		fprintf(stderr,
		        "sealvaultd: reload: refusing to change %s while sealvault runs: they keep "
		        "their running values until a restart (systemctl restart sealvault); put "
		        "back the old values to silence this\n",
		        fixed);
	if (ctl_fd < 0 || reload_send(eff, id, why, sizeof(why)) != 0) {
		fprintf(stderr, "sealvaultd: reload refused, nothing changed: %s\n",
		        ctl_fd < 0 ? "no control link to the broker" : why);
		goto out;
	}
	int a = reload_answer(id, why, sizeof(why));
	if (a < 0) {
		fprintf(stderr,
		        "sealvaultd: reload failed: %s; whether it applied the new settings is "
		        "unknown (see its log)\n",
		        why);
		goto out;
	}
	if (a == 0) {
		fprintf(stderr, "sealvaultd: reload refused by the broker, nothing changed: %s\n",
		        why);
		goto out;
	}
	fprintf(stderr, "sealvaultd: reloaded: %s\n", why);
	for (size_t i = 0; i < N_SETTINGS; i++) {
		if (flagged[i] != NULL || !is_reloadable(&settings[i]))
			continue;
		free(file_values[i]);
		file_values[i] = nv[i];
		nv[i] = NULL;
		settings[i].value = file_values[i];
	}
out:
	for (size_t i = 0; i < N_SETTINGS; i++)
		free(nv[i]);
}

/* SIGTERM or SIGINT: let the pending logins finish first (daemon/drain.h). */
static int drain_then_stop(struct child kids[2], const sigset_t *set)
{
	return drain_run(&drain_hooks, kids, set);
}

int main(int argc, char **argv)
{
	/* static: the users and argv set up below live as long as the process */
	static struct child kids[2] = {
	    {.name = "sealvault-enclave", .fds = {-1, -1, -1, -1, -1, -1}},
	    {.name = "sealvault-broker", .fds = {-1, -1, -1, -1, -1, -1}},
	};
	int sv[2], ctl[2], lfd;
	sigset_t set, old;

	char dwhy[256];
	if (parse(argc, argv) != 0 || check_policy() != 0)
		return 2;
	if (drain_timeout_of(get("drain-timeout-s"), get("login-timeout-s"), &drain_hooks.timeout_s,
	                     dwhy, sizeof(dwhy)) != 0) {
		fprintf(stderr, "sealvaultd: %s\n", dwhy);
		return 2;
	}
	if (find_helpers() != 0)
		return 1;
	if (geteuid() == 0) {
		const char *names[2] = {get("user"), get("broker-user")};
		for (int i = 0; i < 2; i++) {
			struct passwd *pw = getpwnam(names[i]);
			if (pw == NULL) {
				fprintf(stderr,
				        "sealvaultd: user '%s' does not exist; create it "
				        "(the Debian package's sysusers file does) or name "
				        "another with --%s\n",
				        names[i], i == 0 ? "user" : "broker-user");
				return 1;
			}
			if (pw->pw_uid == 0) {
				fprintf(stderr,
				        "sealvaultd: refusing to run %s as root (--%s %s)\n",
				        kids[i].name, i == 0 ? "user" : "broker-user", names[i]);
				return 1;
			}
			struct passwd *copy = malloc(sizeof(*copy));
			if (copy == NULL)
				die_oom();
			*copy = *pw;
			copy->pw_name = strdup(pw->pw_name);
			if (copy->pw_name == NULL)
				die_oom();
			kids[i].pw = copy;
		}
		if (kids[0].pw->pw_uid == kids[1].pw->pw_uid) {
			fprintf(stderr,
			        "sealvaultd: the enclave and the broker must run as different "
			        "users (--user, --broker-user)\n");
			return 1;
		}
	} else if (find("user")->value != NULL || find("broker-user")->value != NULL) {
		fprintf(stderr,
		        "sealvaultd: --user and --broker-user need root; unprivileged, both "
		        "processes run as the current user\n");
		return 1;
	}

	lfd = find("listen-fd")->value != NULL ? inherited_listener(get("listen-fd"))
	                                       : listen_on(get("listen"));
	if (lfd < 0)
		return 1;
	const char *pf = get("port-file");
	if (pf != NULL && net_write_port_file(pf, lfd) != 0) {
		fprintf(stderr, "sealvaultd: cannot write the port to %s: %s\n", pf,
		        strerror(errno));
		return 1;
	}
	/* The metrics listener (sealvault.conf(5), metrics-listen): bound here, like the public
	 * one, and handed to the broker, which serves /metrics on it only. */
	int mfd = -1;
	const char *ml = get("metrics-listen");
	if (strcmp(ml, "none") != 0) {
		char why[512];
		mfd = strncmp(ml, "unix:", 5) == 0 ? net_listen_unix(ml + 5, why, sizeof(why))
		                                   : net_listen(ml, why, sizeof(why));
		if (mfd < 0) {
			fprintf(stderr,
			        "sealvaultd: metrics-listen: %s (give HOST:PORT, unix:/PATH or "
			        "none)\n",
			        why);
			return 1;
		}
		const char *mpf = get("metrics-port-file");
		if (mpf != NULL && strncmp(ml, "unix:", 5) != 0 &&
		    net_write_port_file(mpf, mfd) != 0) {
			fprintf(stderr, "sealvaultd: cannot write the metrics port to %s: %s\n",
			        mpf, strerror(errno));
			return 1;
		}
	}
	/* The attestation statement hashes this program and the broker: tell the enclave which
	 * files they are. The boot and IMA logs are opened here, as root, for the broker (which
	 * re-reads them for every attestation request); a missing log is left out. */
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0) {
		fprintf(stderr, "sealvaultd: cannot read /proc/self/exe: %s\n", strerror(errno));
		return 1;
	}
	self[sl] = '\0';
	char *broker_path = path_join(get("libexec-dir"), "sealvault-broker");
	size_t dlen = strlen(self) + 16, blen = broker_path ? strlen(broker_path) + 16 : 0;
	char *darg = malloc(dlen), *barg = broker_path ? malloc(blen) : NULL;
	if (darg == NULL || barg == NULL)
		die_oom();
	snprintf(darg, dlen, "--daemon-bin=%s", self);
	snprintf(barg, blen, "--broker-bin=%s", broker_path);
	free(broker_path);
	char *enclave_extra[] = {darg, barg, restarts_arg, timeouts_arg, "--audit-link", NULL};
	/* fd 3 the enclave's pair, 4 the public listener, 5 the control pair, then the logs that
	 * could be opened and the metrics listener, each at the next free number */
	char *broker_extra[] = {
	    "--ipc-fd=3", "--listen-fd=4", "--control-fd=5", NULL, NULL, NULL, NULL, NULL};
	int logfd[2] = {-1, -1}, nextra = 3, slot = 6;
	const char *lognames[2] = {"event-log", "ima-log"};
	for (int i = 0; i < 2; i++) {
		const char *lp = get(lognames[i]);
		logfd[i] = open(lp, O_RDONLY | O_CLOEXEC);
		if (logfd[i] < 0) {
			if (errno != ENOENT)
				fprintf(
				    stderr,
				    "sealvaultd: warning: cannot open the %s %s (%s); attestation "
				    "evidence leaves it out\n",
				    lognames[i], lp, strerror(errno));
			continue;
		}
		kids[1].fds[slot - 3] = logfd[i];
		static char args[2][32];
		snprintf(args[i], sizeof(args[i]), "--%s-fd=%d", lognames[i], slot++);
		broker_extra[nextra++] = args[i];
	}
	if (mfd >= 0) {
		static char marg[32];
		kids[1].fds[slot - 3] = mfd;
		snprintf(marg, sizeof(marg), "--metrics-listen-fd=%d", slot++);
		broker_extra[nextra++] = marg;
	}
	/* the broker ages its count of a client's unfinished logins out with the vault's timeout */
	static char ltarg[48];
	snprintf(ltarg, sizeof(ltarg), "--login-timeout=%s",
	         get("login-timeout-s") ? get("login-timeout-s") : "60");
	broker_extra[nextra++] = ltarg;
	count_restart(0);
	if (build_argv(&kids[0], "sealvault-enclave", TO_ENCLAVE, enclave_extra) != 0 ||
	    build_argv(&kids[1], "sealvault-broker", TO_BROKER, broker_extra) != 0)
		die_oom();
	kids[1].fds[1] = lfd;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGIO);
	sigprocmask(SIG_BLOCK, &set, &old);
	/* The enclave's end stays open here, so that it can be restarted alone (supervise.c); it
	 * is non-blocking here and in the enclave, which share it. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
	    fcntl(sv[0], F_SETFL, O_NONBLOCK) != 0) {
		perror("sealvaultd: socketpair");
		return 1;
	}
	kids[0].fds[0] = sv[0];
	kids[1].fds[0] = sv[1];
	/* The control pair: reloads (SIGHUP) go to the broker on it, never on the enclave's link,
	 * which only the enclave reads while it runs. Non-blocking here: a broker that stopped
	 * reading cannot hang sealvaultd. */
	/* O_ASYNC: what the broker writes on it outside a reload (SV_MSG_SERVING) raises SIGIO,
	 * which the supervision loop waits for with the other signals. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) != 0 ||
	    fcntl(ctl[0], F_SETOWN, getpid()) != 0 ||
	    fcntl(ctl[0], F_SETFL, O_NONBLOCK | O_ASYNC) != 0) {
		perror("sealvaultd: socketpair");
		return 1;
	}
	ctl_fd = ctl[0];
	kids[1].fds[2] = ctl[1];
	/* The audit pair (daemon/audit.h): the enclave's end is its fd 4 and stays open here for
	 * the next enclave after a restart; the broker never holds either end. */
	int aud[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, aud) != 0 ||
	    fcntl(aud[0], F_SETOWN, getpid()) != 0 ||
	    fcntl(aud[0], F_SETFL, O_NONBLOCK | O_ASYNC) != 0) {
		perror("sealvaultd: socketpair");
		return 1;
	}
	kids[0].fds[1] = aud[1];
	const char *akf = get("audit-key-file");
	daemon_audit_open(aud[0], strcmp(akf, "none") == 0 ? NULL : akf);
	kids[1].own_fds = 1u << 0 | 1u << 2;
	if (sodium_init() < 0) {
		fprintf(stderr, "sealvaultd: cannot initialise libsodium\n");
		return 1;
	}
	/* NOTIFY_SOCKET is sealvaultd's alone (NotifyAccess=main): the children do not see it */
	const char *ns = getenv("NOTIFY_SOCKET");
	if (ns != NULL && (notify_socket = strdup(ns)) == NULL)
		die_oom();
	unsetenv("NOTIFY_SOCKET");
	drain_hooks.ctl_fd = ctl_fd;
	drain_hooks.on_control = on_sigio;
	drain_hooks.notify = notify;
	/* sealvault-admin status and delete while the vault runs (daemon/adminsock.h): the
	 * enclave's end of the admin pair is its fd 5; fd 4 stays a hole */
	if (adminsock_start(get("admin-socket"), find("admin-socket")->value != NULL, &kids[0].pid,
	                    &kids[0].fds[2]) != 0)
		return 1;
	int r = supervise(kids, &set, &old, count_restart, reload, on_sigio, drain_then_stop);
	adminsock_stop();
	return r;
}
