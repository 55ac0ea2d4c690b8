/*
 * sealvault-enclave: the vault process. Started by sealvaultd with the broker link on fd 3. It
 * opens the TPM and the state directory, unseals the vault, closes everything else, installs its
 * kill-by-default seccomp filter, and then only reads and writes descriptors it already holds.
 *
 * Serve loop with group commit: read every frame that is ready (up to the policy's max-batch),
 * answer each into its own buffer (login/starts last: when nothing else needs the NV increment,
 * the rest is flushed and answered before them), wait up to batch-window-us for more if anything
 * that needs the increment is staged, make the batch durable with ONE journal frame and fsync
 * (store_write), send the answers that need no anchor (guess resets, requests that changed
 * nothing), increment the NV counter (store_anchor), and only then send the rest. A failed commit
 * ends the process without answering what it had not answered (nothing acknowledged is lost,
 * nothing undurable is acknowledged). See sealvault-enclave(8).
 *
 * The NV-write budget (enclave/budget.h) spaces commits out: a commit waits, gathering more
 * requests, until the bucket covers its NV increments; and before each batch the store is told
 * whether a forced flush fits now (if not, the requests that need one are answered busy).
 * A TPM that misbehaves for longer (issue 12): every TPM command has a deadline (--tpm-timeout);
 * a TPM that misses it ends the process with SV_EXIT_TPM_UNAVAILABLE, and sealvaultd restarts
 * the pair with back-off. A TPM that throttles NV writes past the retry budget leaves the
 * commit's increment owed (store_anchor: SV_ERR_BUSY): the replies that waited for it are
 * answered busy (503) instead, and until the increment succeeds (tried every OWED_RETRY_MS) only
 * requests that change nothing are served (serve_owed); then service resumes.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"
#include "enclave/attestsrv.h"
#include "enclave/budget.h"
#include "enclave/dispatch.h"
#include "enclave/journal.h"
#include "enclave/sandbox.h"
#include "enclave/store.h"
#include "enclave/tcti-fd.h"
#include "enclave/tpm.h"
#include "enclave/vault.h"
#include "policy/seccomp.h"
#include "policy/vault.h"

#define DEFAULT_CONTEXT "sealvault-v1"
#define CONTEXT_MAX     1024
#define EXPIRE_EVERY_MS 1000
#define OWED_RETRY_MS   2000 /* an owed NV increment is tried again this often */
#define TPM_LOG_EVERY_S 60   /* at most one line per minute about retries or throttling */

struct options {
	const char *state_dir;
	const char *tpm;
	const char *context;
	const char *daemon_bin; /* hashed into the attestation statement (build_hash) */
	const char *broker_bin;
	unsigned tpm_timeout_s;          /* deadline of every TPM command */
	uint64_t restarts, tpm_timeouts; /* counted by sealvaultd, for /metrics */
	struct sv_vault_policy policy;
};

static const char usage[] =
    "usage: sealvault-enclave --state-dir DIR --tpm TCTI [--context STRING]\n"
    "       [--policy KEY=VALUE]... [--daemon-bin PATH] [--broker-bin PATH]\n"
    "       [--tpm-timeout SECONDS] [--restarts N] [--tpm-timeouts N]\n"
    "Started by sealvaultd(8) with the broker link on descriptor 3; see sealvault-enclave(8).\n";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("sealvault-enclave: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* A vault key sealed with --pcrs before issue 12 (a plain PolicyPCR) serves, but the next update
 * that changes those PCRs would strand it: say what to run while they still match. */
static void warn_plain_pcrs(const struct store *store, const char *dir)
{
	struct store_info in;
	store_get_info(store, &in);
	if (in.pcr_mask != 0 && in.seal != JOURNAL_SEAL_AUTHORIZED)
		fprintf(
		    stderr,
		    "sealvault-enclave: warning: the vault key is sealed with a plain PCR policy "
		    "(PCR mask 0x%06x): the next firmware, boot loader or kernel update that "
		    "changes "
		    "those PCRs strands it and every user's backup; stop the vault and run "
		    "sealvault-admin reseal --state-dir %s --tpm TCTI --policy-key FILE now, while "
		    "they still match (docs/operations.md \"Firmware and kernel updates\")\n",
		    in.pcr_mask, dir);
}

/* tpm_set_timeout's hook: a hung TPM, or a lost connection to it, ends the process (nothing
 * unanchored was answered: the command in flight is the one everything waits for), and sealvaultd
 * restarts it; the next start judges the NV counter against the journal either way. */
static void on_tpm_timeout(const char *command, unsigned ms)
{
	if (ms == 0) {
		fprintf(stderr,
		        "sealvault-enclave: the connection to the TPM ended during %s; exiting "
		        "(sealvaultd restarts the vault with back-off)\n",
		        command);
		_exit(SV_EXIT_TPM_UNAVAILABLE);
	}
	fprintf(stderr,
	        "sealvault-enclave: the TPM did not answer %s within %u s; exiting (sealvaultd "
	        "restarts the vault with back-off)\n",
	        command, (ms + 999) / 1000);
	_exit(SV_EXIT_TPM_UNAVAILABLE);
}

/* A decimal number within lo..hi, or die naming the option. */
static uint64_t number(const char *opt, const char *v, uint64_t lo, uint64_t hi)
{
	char *end = NULL;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || errno != 0 || *end != '\0' || n < lo || n > hi)
		die("--%s takes a number from %llu to %llu, not '%s'", opt, (unsigned long long)lo,
		    (unsigned long long)hi, v);
	return n;
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"state-dir", required_argument, NULL, 's'},
	    {"tpm", required_argument, NULL, 't'},
	    {"context", required_argument, NULL, 'c'},
	    {"policy", required_argument, NULL, 'p'},
	    {"daemon-bin", required_argument, NULL, 'D'},
	    {"broker-bin", required_argument, NULL, 'B'},
	    {"tpm-timeout", required_argument, NULL, 'T'},
	    {"restarts", required_argument, NULL, 'R'},
	    {"tpm-timeouts", required_argument, NULL, 'O'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char why[256];
	int c;
	memset(o, 0, sizeof(*o));
	o->context = DEFAULT_CONTEXT;
	o->tpm_timeout_s = TCTI_FD_TIMEOUT_DEFAULT_MS / 1000;
	policy_vault_defaults(&o->policy);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->state_dir = optarg; break;
		case 't': o->tpm = optarg; break;
		case 'c': o->context = optarg; break;
		case 'p': {
			char *eq = strchr(optarg, '=');
			if (eq == NULL)
				die("--policy takes KEY=VALUE, not '%s'", optarg);
			*eq = '\0';
			if (policy_vault_set(&o->policy, optarg, eq + 1, why, sizeof(why)) != 0)
				die("%s", why);
			break;
		}
		case 'D': o->daemon_bin = optarg; break;
		case 'B': o->broker_bin = optarg; break;
		case 'T':
			o->tpm_timeout_s = (unsigned)number("tpm-timeout", optarg, 1,
			                                    TCTI_FD_TIMEOUT_MAX_MS / 1000);
			break;
		case 'R': o->restarts = number("restarts", optarg, 0, UINT32_MAX); break;
		case 'O': o->tpm_timeouts = number("tpm-timeouts", optarg, 0, UINT32_MAX); break;
		case 'h': fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); exit(2);
		}
	}
	if (optind != argc || o->state_dir == NULL || o->tpm == NULL) {
		fputs(usage, stderr);
		exit(2);
	}
	if (strlen(o->context) > CONTEXT_MAX)
		die("--context is longer than %d bytes", CONTEXT_MAX);
	if (policy_vault_check(&o->policy, why, sizeof(why)) != 0)
		die("%s", why);
}

/* Sends one reply, waiting for room if the socket is full. */
static void send_reply(uint32_t id, const struct sv_buf *reply)
{
	for (;;) {
		int r = frame_send(SANDBOX_IPC_FD, SV_MSG_REPLY, id, reply->data, reply->len);
		if (r == 0)
			return;
		if (r != SV_ERR_BUSY)
			die("cannot send a reply to the broker (%s); exiting", sv_strerror(r));
		struct pollfd p = {.fd = SANDBOX_IPC_FD, .events = POLLOUT};
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			die("poll on the broker link failed: %s", strerror(errno));
	}
}

/* A login/start frame this small is set aside by the first read of a cycle (see serve). */
#define DEFER_SLOT 1024

struct batch {
	struct sv_buf *replies;
	uint32_t *ids;
	uint8_t *anchored; /* the reply waits for the NV increment (store_pending_anchored grew) */
	size_t n, cap;
	uint8_t *deferred; /* cap slots of DEFER_SLOT bytes: login/start frames, as received */
	size_t *deferred_len;
	size_t ndeferred;
};

/* Answers one decoded frame into the next reply slot. */
static void handle(struct dispatch *d, struct store *s, struct batch *b, const struct sv_frame *f)
{
	size_t anchored = store_pending_anchored(s);
	int r = dispatch_request(d, f, mono_us() / 1000, &b->replies[b->n]);
	b->anchored[b->n] = store_pending_anchored(s) != anchored;
	if (r != 0)
		die("internal error handling request type %u (%s); exiting", f->type,
		    sv_strerror(r));
	b->ids[b->n++] = f->req_id;
}

/* The next permitted frame from the broker into rbuf: 1; none ready: 0; the link ended: -1.
 * Anything else ends the process (a protocol violation or a broken link). */
static int next_frame(uint8_t *rbuf, struct sv_frame *f)
{
	int r = frame_recv(SANDBOX_IPC_FD, rbuf, f);
	if (r == SV_ERR_BUSY)
		return 0;
	if (r == SV_ERR_IO) {
		if (errno == 0)
			return -1;
		die("reading from the broker failed: %s", strerror(errno));
	}
	if (r != 0)
		die("malformed frame from the broker (%s): protocol violation, exiting",
		    sv_strerror(r));
	if (!dispatch_permitted(f->type))
		die("frame type %u is not a permitted request: protocol violation, exiting",
		    f->type);
	return 1;
}

/* Reads and answers frames until none is ready or the batch is full; 1 if the link ended. With
 * defer, login/start frames are only copied aside, for serve to answer after the rest. */
static int drain(struct dispatch *d, struct store *s, struct batch *b, uint8_t *rbuf, int defer)
{
	while (b->n + b->ndeferred < b->cap) {
		struct sv_frame f;
		int r = next_frame(rbuf, &f);
		if (r != 1)
			return r < 0;
		size_t len = SV_FRAME_HDR_LEN + f.len;
		if (defer && f.type == SV_MSG_LOGIN_START && len <= DEFER_SLOT) {
			memcpy(b->deferred + b->ndeferred * DEFER_SLOT, rbuf, len);
			b->deferred_len[b->ndeferred++] = len;
		} else {
			handle(d, s, b, &f);
		}
		sodium_memzero(rbuf, len);
	}
	return 0;
}

/* Answers the frames drain set aside, in the order they came. */
static void handle_deferred(struct dispatch *d, struct store *s, struct batch *b)
{
	for (size_t i = 0; i < b->ndeferred; i++) {
		uint8_t *slot = b->deferred + i * DEFER_SLOT;
		struct sv_frame f;
		if (frame_decode(slot, b->deferred_len[i], &f) != 0)
			die("a frame set aside no longer decodes; exiting");
		handle(d, s, b, &f);
		sodium_memzero(slot, b->deferred_len[i]);
	}
	b->ndeferred = 0;
}

/* ---- a TPM that throttles NV writes (store.h: store_anchor's SV_ERR_BUSY) ---- */

static struct {
	struct tpm *tpm;
	int owed;                   /* the written frame's NV increment is still owed */
	uint64_t since_us, next_us; /* owed since; next try */
	uint64_t tries;             /* tries while owed */
	uint64_t last_log_us;       /* rate limit of the lines below */
	uint64_t logged_retries;    /* tpm_stats.retries at the last line about them */
} tpmstate;

static const char busy_unconfirmed[] =
    "the TPM is throttling NV writes, so this request could not be confirmed: a guess it "
    "charged stays charged and a change it made may still take effect; retry later";
static const char busy_refused[] =
    "the TPM is throttling NV writes: this request changed nothing; retry later";

static void send_busy(uint32_t id, struct sv_buf *buf, const char *text)
{
	sv_buf_reset(buf);
	if (sv_buf_put_u8(buf, SV_STATUS_BUSY) != 0 || sv_buf_put(buf, text, strlen(text)) != 0)
		die("out of memory for a busy reply");
	send_reply(id, buf);
}

/* One line (at most every TPM_LOG_EVERY_S) when the TPM answered transient codes again. */
static void log_retries(uint64_t now)
{
	struct tpm_stats st;
	tpm_get_stats(tpmstate.tpm, &st);
	if (st.retries == tpmstate.logged_retries ||
	    (tpmstate.last_log_us != 0 &&
	     now - tpmstate.last_log_us < TPM_LOG_EVERY_S * 1000000ull))
		return;
	fprintf(stderr,
	        "sealvault-enclave: the TPM answered %llu commands with NV_RATE, RETRY, YIELDED "
	        "or NV_UNAVAILABLE since the last report and they were retried "
	        "(%.1f s of back-off in total; sealvault_tpm_retries_total)\n",
	        (unsigned long long)(st.retries - tpmstate.logged_retries),
	        (double)st.backoff_ns / 1e9);
	tpmstate.logged_retries = st.retries;
	tpmstate.last_log_us = now;
}

static void throttle_begin(struct dispatch *d, uint64_t now)
{
	tpmstate.owed = 1;
	tpmstate.since_us = now;
	tpmstate.next_us = now + OWED_RETRY_MS * 1000ull;
	tpmstate.tries = 0;
	tpmstate.last_log_us = now;
	dispatch_set_throttled(d, 1, now);
	fprintf(stderr,
	        "sealvault-enclave: the TPM refused the NV counter increment with a transient "
	        "code (NV_RATE: throttled NV writes) for the whole %u s retry budget; answering "
	        "503 to requests that change state and trying again every %d s\n",
	        TPM_RETRY_BUDGET_MS / 1000, OWED_RETRY_MS / 1000);
}

/* Tries the owed increment once; 1 when it is paid. Any other failure than another transient
 * answer ends the process, as in commit_and_reply. */
static int throttle_retry(struct dispatch *d, struct store *s, uint64_t now)
{
	tpmstate.tries++;
	tpm_set_retry_budget(tpmstate.tpm, 0);
	int r = store_anchor(s);
	tpm_set_retry_budget(tpmstate.tpm, TPM_RETRY_BUDGET_MS);
	now = mono_us();
	if (r == SV_ERR_BUSY) {
		tpmstate.next_us = now + OWED_RETRY_MS * 1000ull;
		if (now - tpmstate.last_log_us >= TPM_LOG_EVERY_S * 1000000ull) {
			fprintf(stderr,
			        "sealvault-enclave: the TPM still throttles NV writes after %.0f s "
			        "(%llu tries); still answering 503\n",
			        (double)(now - tpmstate.since_us) / 1e6,
			        (unsigned long long)tpmstate.tries);
			tpmstate.last_log_us = now;
		}
		return 0;
	}
	if (r != 0)
		die("the NV counter increment failed (%s); exiting", sv_strerror(r));
	tpmstate.owed = 0;
	dispatch_set_throttled(d, 0, now);
	dispatch_note_commit(d, now - tpmstate.since_us, 0);
	fprintf(stderr,
	        "sealvault-enclave: the TPM accepts NV writes again after %.0f s throttled (%llu "
	        "tries); serving\n",
	        (double)(now - tpmstate.since_us) / 1e6, (unsigned long long)tpmstate.tries);
	return 1;
}

/* Tells the store whether a forced flush fits the NV-write budget now. */
static void allow_flush(struct store *s, struct budget *bud)
{
	double cost = budget_cost(bud, store_flush_cost(s));
	store_set_flush_allowed(s, budget_wait_us(bud, cost, mono_us()) == 0);
}

/* Makes what is staged durable and sends the replies that need no anchor (store_write); then,
 * if the frame was a commit, increments the NV counter (store_anchor), charges the budget and
 * sends the rest. */
static void commit_and_reply(struct dispatch *d, struct store *s, struct batch *b,
                             struct budget *bud)
{
	uint64_t t0 = mono_us(), inc = store_commit_cost(s);
	int r = store_write(s);
	if (r != 0)
		die("writing the journal failed (%s); exiting without answering the %zu "
		    "requests of this batch",
		    sv_strerror(r), b->n);
	for (size_t i = 0; i < b->n; i++)
		if (!b->anchored[i])
			send_reply(b->ids[i], &b->replies[i]);
	int owed = 0;
	if (store_pending(s) > 0) {
		r = store_anchor(s);
		if (r == SV_ERR_BUSY) {
			owed = 1;
			throttle_begin(d, mono_us());
		} else if (r != 0) {
			die("the NV counter increment failed (%s); exiting without answering "
			    "the requests of this batch that charged a guess or changed a record",
			    sv_strerror(r));
		} else {
			dispatch_note_commit(d, mono_us() - t0, b->n);
		}
		/* the commit's increments, done now or once the owed increment is paid */
		budget_spend(bud, budget_cost(bud, inc), mono_us());
		log_retries(mono_us());
	}
	size_t busy = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (b->anchored[i] && owed) {
			/* never the reply itself: what it confirms is not anchored */
			send_busy(b->ids[i], &b->replies[i], busy_unconfirmed);
			busy++;
		} else if (b->anchored[i]) {
			send_reply(b->ids[i], &b->replies[i]);
		}
		sv_buf_reset(&b->replies[i]);
	}
	dispatch_note_throttled_replies(d, busy);
	b->n = 0;
}

/* Holds the staged commit until the budget covers it, reading more requests into the batch
 * meanwhile (they share its increment); 1 if the link ended. */
static int space_commit(struct dispatch *d, struct store *s, struct batch *b, uint8_t *rbuf,
                        struct budget *bud)
{
	uint64_t start = mono_us(), wait;
	int ended = 0, waited = 0;
	for (;;) {
		double cost = budget_cost(bud, store_commit_cost(s));
		if ((wait = budget_wait_us(bud, cost, mono_us())) == 0)
			break;
		waited = 1;
		int ms = wait > 1000000 ? 1000 : (int)((wait + 999) / 1000);
		struct pollfd p = {.fd = SANDBOX_IPC_FD, .events = POLLIN};
		if (ended || b->n + b->ndeferred >= b->cap) {
			(void)poll(NULL, 0, ms);
			continue;
		}
		allow_flush(s, bud);
		if (poll(&p, 1, ms) > 0)
			ended = drain(d, s, b, rbuf, 0);
	}
	if (waited) {
		bud->waits++;
		bud->waited_us += mono_us() - start;
	}
	return ended;
}

/* While an NV increment is owed: answer what changes nothing (health, which says busy, metrics,
 * attestation) and refuse everything else busy without handling it, so nothing new is staged;
 * try the increment every OWED_RETRY_MS. 1 if the link ended. */
static int serve_owed(struct vault *v, struct dispatch *d, struct store *s, struct batch *b,
                      uint8_t *rbuf, uint64_t *last_expire)
{
	uint64_t now = mono_us();
	int ms = now >= tpmstate.next_us ? 0 : (int)((tpmstate.next_us - now + 999) / 1000);
	if (ms > EXPIRE_EVERY_MS)
		ms = EXPIRE_EVERY_MS;
	struct pollfd p = {.fd = SANDBOX_IPC_FD, .events = POLLIN};
	int pr = poll(&p, 1, ms);
	if (pr < 0 && errno != EINTR)
		die("poll on the broker link failed: %s", strerror(errno));
	uint64_t now_ms = mono_us() / 1000;
	if (now_ms - *last_expire >= EXPIRE_EVERY_MS) {
		vault_expire(v, now_ms);
		*last_expire = now_ms;
	}
	for (size_t k = 0; pr > 0 && k < b->cap; k++) {
		struct sv_frame f;
		int r = next_frame(rbuf, &f);
		if (r < 0)
			return 1;
		if (r == 0)
			break;
		if (msg_flags(f.type) & MSG_F_READONLY) {
			size_t before = store_pending(s);
			r = dispatch_request(d, &f, now_ms, &b->replies[0]);
			if (r != 0 || store_pending(s) != before)
				die("internal error handling request type %u while throttled (%s); "
				    "exiting",
				    f.type, sv_strerror(r));
			send_reply(f.req_id, &b->replies[0]);
		} else {
			send_busy(f.req_id, &b->replies[0], busy_refused);
			dispatch_note_throttled_replies(d, 1);
		}
		sv_buf_reset(&b->replies[0]);
		sodium_memzero(rbuf, SV_FRAME_HDR_LEN + f.len);
	}
	if (mono_us() >= tpmstate.next_us)
		(void)throttle_retry(d, s, mono_us());
	return 0;
}

static int serve(struct vault *v, struct store *s, struct dispatch *d,
                 const struct sv_vault_policy *pol, struct budget *bud)
{
	struct batch b = {.cap = pol->max_batch};
	uint8_t *rbuf = malloc(SV_FRAME_BUF_LEN);
	b.replies = calloc(b.cap, sizeof(*b.replies));
	b.ids = calloc(b.cap, sizeof(*b.ids));
	b.anchored = calloc(b.cap, sizeof(*b.anchored));
	b.deferred = calloc(b.cap, DEFER_SLOT);
	b.deferred_len = calloc(b.cap, sizeof(*b.deferred_len));
	if (rbuf == NULL || b.replies == NULL || b.ids == NULL || b.anchored == NULL ||
	    b.deferred == NULL || b.deferred_len == NULL)
		die("out of memory for a batch of %zu replies", b.cap);
	for (size_t i = 0; i < b.cap; i++)
		if (sv_buf_init(&b.replies[i], SV_FRAME_MAX) != 0)
			die("out of memory for reply buffers");
	uint64_t last_expire = mono_us() / 1000;
	int ended = 0;
	while (!ended) {
		if (tpmstate.owed) {
			ended = serve_owed(v, d, s, &b, rbuf, &last_expire);
			continue;
		}
		struct pollfd p = {.fd = SANDBOX_IPC_FD, .events = POLLIN};
		int pr = poll(&p, 1, EXPIRE_EVERY_MS);
		if (pr < 0 && errno != EINTR)
			die("poll on the broker link failed: %s", strerror(errno));
		uint64_t now_ms = mono_us() / 1000;
		if (now_ms - last_expire >= EXPIRE_EVERY_MS) {
			vault_expire(v, now_ms);
			last_expire = now_ms;
		}
		if (pr <= 0)
			continue;
		b.n = 0;
		allow_flush(s, bud);
		/* Login/starts (whose answers wait for an NV increment) are set aside while the
		 * rest of what is ready is answered; if none of that needs the increment (KE3s:
		 * guess resets, failed KE3s, health), it is flushed and answered first, so a KE3
		 * does not wait for the KE2s computed with it, the batch window and the increment.
		 * Any order of requests that are in flight together is one a client could have
		 * seen. */
		ended = drain(d, s, &b, rbuf, 1);
		if (b.ndeferred > 0 && b.n > 0 && store_pending_anchored(s) == 0)
			commit_and_reply(d, s, &b, bud);
		handle_deferred(d, s, &b);
		/* group commit: give other clients up to batch-window-us to join this commit (only
		 * for changes that need the NV increment; resets alone are flushed at once) */
		if (!ended && store_pending_anchored(s) > 0 && pol->batch_window_us > 0) {
			uint64_t until = mono_us() + pol->batch_window_us;
			while (!ended && b.n < b.cap) {
				uint64_t t = mono_us();
				if (t >= until)
					break;
				int ms = (int)((until - t + 999) / 1000);
				p.revents = 0;
				if (poll(&p, 1, ms) <= 0)
					break;
				ended = drain(d, s, &b, rbuf, 0);
			}
		}
		if (store_pending_anchored(s) > 0 && space_commit(d, s, &b, rbuf, bud))
			ended = 1;
		commit_and_reply(d, s, &b, bud);
	}
	for (size_t i = 0; i < b.cap; i++)
		sv_buf_free(&b.replies[i]);
	free(b.replies);
	free(b.ids);
	free(b.anchored);
	sodium_memzero(b.deferred, b.cap * DEFER_SLOT);
	free(b.deferred);
	free(b.deferred_len);
	sodium_memzero(rbuf, SV_FRAME_BUF_LEN);
	free(rbuf);
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	struct tpm *tpm = NULL;
	struct store *store = NULL;
	struct vault *vault = NULL;
	struct dispatch *d = NULL;
	char why[512];

	if (sandbox_harden(why, sizeof(why)) != 0)
		die("%s", why);
	/* a reply to a broker that has gone must end in a message and exit 1, not a silent SIGPIPE
	 * (rt_sigaction is not allowed once the filter is in, so this is set now) */
	signal(SIGPIPE, SIG_IGN);
	parse(argc, argv, &o);
	if (sandbox_check_ipc(SANDBOX_IPC_FD, why, sizeof(why)) != 0 ||
	    sandbox_close_inherited(why, sizeof(why)) != 0)
		die("%s", why);
	if (sodium_init() < 0)
		die("cannot initialise libsodium");
	/* tpm2-tss 3.2 creates a fresh OSSL_LIB_CTX for every hash, HMAC and nonce of a session
	 * (several per TPM command), and OpenSSL 3.0 fills each new context's name map by walking
	 * the legacy cipher and digest name tables: two thirds of the CPU of a salted NV
	 * increment. The enclave fetches algorithms by name and never looks up legacy aliases
	 * (EVP_get_digestbyname), so those tables are left empty. Must precede any other OpenSSL
	 * call. */
	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
	                            OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
	                        NULL) != 1)
		die("cannot initialise OpenSSL");
	tpm_set_timeout(o.tpm_timeout_s * 1000, on_tpm_timeout);
	if (tpm_open(&tpm, o.tpm, why, sizeof(why)) != 0)
		die("cannot open the TPM (%s): %s", o.tpm, why);
	tpmstate.tpm = tpm;
	if (store_open(&store, o.state_dir, tpm, &o.policy, why, sizeof(why)) != 0) {
		struct tpm_stats st;
		tpm_get_stats(tpm, &st);
		if (st.gave_up > 0) {
			/* throttled NV writes, not a refusal: worth a restart with back-off */
			fprintf(
			    stderr,
			    "sealvault-enclave: refusing to serve: %s (the TPM throttles NV "
			    "writes; exiting so that sealvaultd starts the vault again later)\n",
			    why);
			exit(SV_EXIT_TPM_UNAVAILABLE);
		}
		die("refusing to serve: %s", why);
	}
	warn_plain_pcrs(store, o.state_dir);
	/* The attestation statement: EK check, build_hash (sealvaultd and the broker default to
	 * this program's directory, as in a build tree), signed once by the identity key. */
	char self_dir[4096], dbin[4200], bbin[4200];
	ssize_t sl = readlink("/proc/self/exe", self_dir, sizeof(self_dir) - 1);
	self_dir[sl > 0 ? sl : 0] = '\0';
	char *slash = strrchr(self_dir, '/');
	if (slash != NULL)
		*slash = '\0';
	snprintf(dbin, sizeof(dbin), "%s/sealvaultd", self_dir);
	snprintf(bbin, sizeof(bbin), "%s/sealvault-broker", self_dir);
	const char *bins[ATTEST_NBINARIES] = {o.daemon_bin ? o.daemon_bin : dbin, "/proc/self/exe",
	                                      o.broker_bin ? o.broker_bin : bbin};
	uint8_t policy_hash[ATTEST_HASH_LEN];
	struct attestsrv *attest = NULL;
	policy_vault_hash(&o.policy, policy_hash);
	if (attestsrv_open(&attest, tpm, o.state_dir, bins, store_secrets(store)->ake_pk,
	                   policy_hash, why, sizeof(why)) != 0)
		die("refusing to serve: %s", why);
	struct vault_config vc = {.context = (const uint8_t *)o.context,
	                          .context_len = strlen(o.context),
	                          .policy = &o.policy};
	int r = vault_new(&vault, store, &vc);
	if (r == 0)
		r = dispatch_new(&d, vault, store);
	if (r != 0)
		die("cannot set up the vault: %s", sv_strerror(r));
	dispatch_set_attest(d, attestsrv_handle, attest);
	/* The NV-write budget: nv-writes-per-day 0 means automatic, 100 for the hybrid scheme and
	 * unlimited for the plain one (each of its commits is an NV write: a budget would cap its
	 * guesses per day; set one explicitly to cap its wear). The start's NV_ChangeAuth is spent
	 * at once. */
	struct store_stats st;
	store_get_stats(store, &st);
	unsigned per_day = o.policy.nv_writes_per_day;
	if (per_day == 0)
		per_day = st.orderly_mask != 0 ? POLICY_NV_WRITES_PER_DAY_HYBRID : 0;
	struct budget bud;
	budget_init(&bud, per_day, o.policy.nv_writes_burst, st.orderly_mask, mono_us());
	budget_spend(&bud, 1.0, mono_us());
	dispatch_set_budget(d, &bud, per_day);
	if (st.orderly_mask != 0)
		fprintf(stderr,
		        "sealvault-enclave: hybrid NV counter (an NV write every %llu increments); "
		        "NV-write budget %u per day, burst %u\n",
		        (unsigned long long)st.orderly_mask + 1, per_day, o.policy.nv_writes_burst);
	else
		fprintf(stderr,
		        "sealvault-enclave: plain NV counter: every commit is an NV write (%s); "
		        "migrate it to the hybrid counter to save the TPM: sealvault-admin upgrade "
		        "--counter-scheme hybrid (docs/operations.md \"NV wear\")\n",
		        per_day == 0 ? "no NV-write budget" : "NV-write budget set");
	dispatch_set_tpm(d, tpm, o.restarts, o.tpm_timeouts);
	int fl = fcntl(SANDBOX_IPC_FD, F_GETFL);
	if (fl < 0 || fcntl(SANDBOX_IPC_FD, F_SETFL, fl | O_NONBLOCK) != 0)
		die("cannot make the broker link non-blocking: %s", strerror(errno));
	if (sandbox_lockdown(why, sizeof(why)) != 0)
		die("refusing to run without a sandbox: %s", why);
	if (policy_seccomp_test_hook("enclave") != 0)
		exit(1);
	/* after a restart the broker answers 503 until it hears this (common/msg.h) */
	for (;;) {
		r = frame_send(SANDBOX_IPC_FD, SV_MSG_READY, 0, NULL, 0);
		if (r == 0)
			break;
		struct pollfd p = {.fd = SANDBOX_IPC_FD, .events = POLLOUT};
		if (r != SV_ERR_BUSY || (poll(&p, 1, -1) < 0 && errno != EINTR))
			die("cannot tell the broker that the vault serves (%s); exiting",
			    sv_strerror(r));
	}
	fprintf(stderr, "sealvault-enclave: vault open, sandboxed, serving\n");
	serve(vault, store, d, &o.policy, &bud);
	fprintf(stderr, "sealvault-enclave: the broker closed the link; exiting\n");
	dispatch_free(d);
	attestsrv_free(attest);
	vault_free(vault);
	store_close(store);
	tpm_close(tpm);
	return 1;
}
