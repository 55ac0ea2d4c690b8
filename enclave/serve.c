/*
 * The serve loop of sealvault-enclave (enclave/main.c sets up, then calls serve_run).
 *
 * Group commit: read every frame that is ready (up to the policy's max-batch), answer each into
 * its own buffer (login/starts last: when nothing else needs the NV increment, the rest is
 * flushed and answered before them), wait up to batch-window-us for more if anything that needs
 * the increment is staged, make the batch durable with ONE journal frame and fsync
 * (store_write), send the answers that need no anchor (guess resets, requests that changed
 * nothing), increment the NV counter (the anchor), and only then send the rest. A failed commit
 * ends the process without answering what it had not answered (nothing acknowledged is lost,
 * nothing undurable is acknowledged). See sealvault-enclave(8).
 *
 * Pipelined anchoring (issue 12): the anchor (one NV increment, 40 ms on a slow chip; a forced
 * flush of the hybrid counter, up to M + 1 of them) runs on the TPM thread, started before the
 * sandbox goes in (the filter, synchronised to every thread, allows no clone). While it runs,
 * this thread keeps reading frames into the next batch: the vault computes KE2s and stages the
 * next frame's changes (store_anchor_begin .. _end), and a reply that staged nothing while nothing
 * was staged before it (it saw no unwritten change) leaves at once. What the next batch staged
 * waits: its journal frame is written only after the anchor has succeeded, so the journal is
 * never more than one commit frame ahead of the TPM counter (the start-up rule, anchor_judge),
 * and no reply that depends on an anchor leaves before that anchor succeeded. When the anchor
 * is done (the thread writes a byte to a pipe this loop polls), its replies leave, then the next
 * batch is written and its anchor started at once: the time of one anchor is the next batch's
 * window. The thread owns the TPM only while it runs an anchor (ESYS is not thread-safe): the
 * requests that need the TPM themselves (attestation, activation, metrics, which read the TPM's
 * statistics) are set aside, and reading stops, until it has finished. A TPM timeout on the
 * thread ends the process from there (tpm_set_timeout's hook exits), as it did here.
 *
 * The NV-write budget (enclave/budget.h) spaces commits out: a commit waits, gathering more
 * requests, until the bucket covers its NV increments (spent when its anchor starts); and before
 * each batch the store is told whether a forced flush fits now (if not, the requests that need
 * one are answered busy). A TPM that throttles NV writes past the retry budget leaves the
 * commit's increment owed (SV_ERR_BUSY): the replies that waited for it, and those of the batch
 * gathered meanwhile, are answered busy (503) instead (what that batch staged is written after
 * the owed increment), and until the increment succeeds (tried every OWED_RETRY_MS, on this
 * thread: the TPM thread is idle then) only requests that change nothing are served
 * (serve_owed); then service resumes.
 */
#include "enclave/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"
#include "enclave/audit.h"
#include "enclave/adminsrv.h"
#include "enclave/budget.h"
#include "enclave/dispatch.h"
#include "enclave/drain.h"
#include "enclave/sandbox.h"
#include "enclave/store.h"
#include "enclave/tpm.h"
#include "enclave/vault.h"

#define EXPIRE_EVERY_MS 1000
#define OWED_RETRY_MS   2000 /* an owed NV increment is tried again this often */
#define TPM_LOG_EVERY_S 60   /* at most one line per minute about retries or throttling */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* As main.c's: a message and exit 1 (sealvaultd restarts the pair); but _exit, since the TPM
 * thread may be inside ESYS and OpenSSL, which exit handlers (OPENSSL_cleanup) would free under
 * it. stderr is unbuffered: the message is out. */
static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("sealvault-enclave: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(1);
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- the TPM thread: runs one store_anchor_job at a time ----
 * One per process, started by serve_new and never ended: a thread's exit takes rt_sigprocmask,
 * which the filter refuses; it waits parked until exit_group ends the process. */

static struct worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int busy;    /* under lock: job handed over, not finished */
	int warm;    /* under lock: the thread has initialised what it uses (worker_main) */
	int pipe[2]; /* the thread writes one byte per finished job; serve polls pipe[0] */
	struct store_anchor_job job; /* written by the side that holds it: see busy */
} worker = {.pipe = {-1, -1}};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	/* OpenSSL's per-thread state (DRBG, error queue), which the salted session of every
	 * increment uses, is set up now, before the filter that forbids what setting it up may
	 * need. */
	unsigned char x[32];
	unsigned int xl = 0;
	int ok =
	    RAND_bytes(x, sizeof(x)) == 1 && EVP_Digest(x, sizeof(x), x, &xl, EVP_sha256(), NULL);
	pthread_mutex_lock(&w->lock);
	w->warm = ok ? 1 : -1;
	pthread_cond_broadcast(&w->wake);
	for (;;) {
		while (!w->busy)
			pthread_cond_wait(&w->wake, &w->lock);
		pthread_mutex_unlock(&w->lock);
		store_anchor_run(&w->job);
		pthread_mutex_lock(&w->lock);
		w->busy = 0;
		if (write(w->pipe[1], "a", 1) != 1) {
			fprintf(stderr,
			        "sealvault-enclave: the TPM thread cannot signal (%s); exiting\n",
			        strerror(errno));
			_exit(1);
		}
	}
}

/* Starts the thread; must run before sandbox_lockdown (no clone after it). */
static int worker_start(struct worker *w, char *why, size_t why_len)
{
	int r;
	if (w->warm != 0) {
		snprintf(why, why_len, "the TPM thread runs already");
		return SV_ERR_INTERNAL;
	}
	if (pipe2(w->pipe, O_CLOEXEC) != 0 || fcntl(w->pipe[0], F_SETFL, O_NONBLOCK) != 0) {
		snprintf(why, why_len, "cannot create the TPM thread's pipe: %s", strerror(errno));
		return SV_ERR_IO;
	}
	if ((r = pthread_mutex_init(&w->lock, NULL)) != 0 ||
	    (r = pthread_cond_init(&w->wake, NULL)) != 0 ||
	    (r = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
		snprintf(why, why_len, "cannot start the TPM thread: %s", strerror(r));
		return SV_ERR_INTERNAL;
	}
	pthread_mutex_lock(&w->lock);
	while (w->warm == 0)
		pthread_cond_wait(&w->wake, &w->lock);
	r = w->warm;
	pthread_mutex_unlock(&w->lock);
	if (r != 1) {
		snprintf(why, why_len, "the TPM thread cannot initialise OpenSSL");
		return SV_ERR_INTERNAL;
	}
	return SV_OK;
}

/* Hands the job that store_anchor_begin filled in (w->job) to the thread. */
static void worker_post(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->busy = 1;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

/* 1 when the thread has finished the job (pipe[0] is readable, or about to be). */
static int worker_idle(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	int idle = !w->busy;
	pthread_mutex_unlock(&w->lock);
	return idle;
}

/* After pipe[0] polled readable: 1 when the job is finished (its results visible here). */
static int worker_done(struct worker *w)
{
	char c[8];
	while (read(w->pipe[0], c, sizeof(c)) > 0)
		;
	return worker_idle(w);
}

/* ---- batches ---- */

/* A login/start frame this small is set aside by the first read of a cycle (see serve_run). */
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

struct serve {
	struct vault *v;
	struct store *s;
	struct dispatch *d;
	const struct sv_vault_policy *pol;
	struct budget *bud;
	uint8_t *rbuf;
	struct batch batch[2];
	struct batch *cur;    /* being gathered */
	struct batch *flight; /* written; its anchor runs on the TPM thread (NULL: none) */
	uint64_t flight_t0;   /* when its commit started */
	uint8_t *held;        /* a frame that needs the TPM, read while an anchor runs */
	size_t held_len;
	uint64_t last_expire;
	int ended; /* the broker closed the link */
	struct worker *w;
	struct drain drain;     /* a graceful stop (enclave/drain.h) */
	struct adminsrv *admin; /* sealvault-admin's requests (serve_set_admin), or NULL */
	int admin_waits; /* one came during an anchor: read no more until gather answers it */
};

static int batch_init(struct batch *b, size_t cap)
{
	b->cap = cap;
	b->replies = calloc(cap, sizeof(*b->replies));
	b->ids = calloc(cap, sizeof(*b->ids));
	b->anchored = calloc(cap, sizeof(*b->anchored));
	b->deferred = calloc(cap, DEFER_SLOT);
	b->deferred_len = calloc(cap, sizeof(*b->deferred_len));
	if (b->replies == NULL || b->ids == NULL || b->anchored == NULL || b->deferred == NULL ||
	    b->deferred_len == NULL)
		return SV_ERR_NOMEM;
	for (size_t i = 0; i < cap; i++)
		if (sv_buf_init(&b->replies[i], SV_FRAME_MAX) != 0)
			return SV_ERR_NOMEM;
	return SV_OK;
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; b->replies != NULL && i < b->cap; i++)
		sv_buf_free(&b->replies[i]);
	free(b->replies);
	free(b->ids);
	free(b->anchored);
	if (b->deferred != NULL)
		sodium_memzero(b->deferred, b->cap * DEFER_SLOT);
	free(b->deferred);
	free(b->deferred_len);
}

/* Sends one reply, waiting for room if the socket is full. */
/* Sends one frame to the broker, waiting for room if the socket is full. */
static void send_frame(uint16_t type, uint32_t id, const uint8_t *payload, size_t len)
{
	for (;;) {
		int r = frame_send(SANDBOX_IPC_FD, type, id, payload, len);
		if (r == 0)
			return;
		if (r != SV_ERR_BUSY)
			die("cannot send a frame to the broker (%s); exiting", sv_strerror(r));
		struct pollfd p = {.fd = SANDBOX_IPC_FD, .events = POLLOUT};
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			die("poll on the broker link failed: %s", strerror(errno));
	}
}

static void send_reply(uint32_t id, const struct sv_buf *reply)
{
	send_frame(SV_MSG_REPLY, id, reply->data, reply->len);
}

/* Answers one decoded frame into the next reply slot. */
static void handle(struct serve *sv, struct batch *b, const struct sv_frame *f)
{
	size_t anchored = store_pending_anchored(sv->s);
	int r = dispatch_request(sv->d, f, mono_us() / 1000, &b->replies[b->n]);
	b->anchored[b->n] = store_pending_anchored(sv->s) != anchored;
	if (r != 0)
		die("internal error handling request type %u (%s); exiting", f->type,
		    sv_strerror(r));
	b->ids[b->n++] = f->req_id;
}

/* The next permitted frame from the broker into rbuf: 1; none ready: 0; the link ended: -1.
 * Anything else ends the process (a protocol violation or a broken link). A drain request is
 * taken here (enclave/drain.h): it is no request of the dispatch table. */
static int next_frame(struct serve *sv, uint8_t *rbuf, struct sv_frame *f)
{
	int r = frame_recv(SANDBOX_IPC_FD, rbuf, f);
	if (r == 0 && f->type == SV_MSG_DRAIN_ENCLAVE && f->req_id == 0 &&
	    drain_begin(&sv->drain, f->payload, f->len, mono_us() / 1000) == 0)
		return 0;
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
 * defer, login/start frames are only copied aside, for serve_run to answer after the rest. */
static int drain(struct serve *sv, struct batch *b, int defer)
{
	while (b->n + b->ndeferred < b->cap) {
		struct sv_frame f;
		int r = next_frame(sv, sv->rbuf, &f);
		if (r != 1)
			return r < 0;
		size_t len = SV_FRAME_HDR_LEN + f.len;
		if (defer && f.type == SV_MSG_LOGIN_START && len <= DEFER_SLOT) {
			memcpy(b->deferred + b->ndeferred * DEFER_SLOT, sv->rbuf, len);
			b->deferred_len[b->ndeferred++] = len;
		} else {
			handle(sv, b, &f);
		}
		sodium_memzero(sv->rbuf, len);
	}
	return 0;
}

/* Answers the frames drain set aside, in the order they came. */
static void handle_deferred(struct serve *sv, struct batch *b)
{
	for (size_t i = 0; i < b->ndeferred; i++) {
		uint8_t *slot = b->deferred + i * DEFER_SLOT;
		struct sv_frame f;
		if (frame_decode(slot, b->deferred_len[i], &f) != 0)
			die("a frame set aside no longer decodes; exiting");
		handle(sv, b, &f);
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

/* Tries the owed increment once (on this thread: the TPM thread is idle); 1 when it is paid.
 * Any other failure than another transient answer ends the process, as in anchor_done. */
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
	audit_anchored(); /* the changes answered busy took effect after all */
	dispatch_set_throttled(d, 0, now);
	dispatch_note_commit(d, now - tpmstate.since_us, 0);
	fprintf(stderr,
	        "sealvault-enclave: the TPM accepts NV writes again after %.0f s throttled (%llu "
	        "tries); serving\n",
	        (double)(now - tpmstate.since_us) / 1e6, (unsigned long long)tpmstate.tries);
	return 1;
}

/* ---- commits ---- */

/* Tells the store whether a forced flush fits the NV-write budget now. */
static void allow_flush(struct store *s, struct budget *bud)
{
	double cost = budget_cost(bud, store_flush_cost(s));
	store_set_flush_allowed(s, budget_wait_us(bud, cost, mono_us()) == 0);
}

/* poll(p, n, ms), then drop the logins older than the timeout (at most once per
 * EXPIRE_EVERY_MS); poll's result, or the end of the process if poll failed. */
static int wait_and_expire(struct serve *sv, struct pollfd *p, nfds_t n, int ms)
{
	int pr = poll(p, n, ms);
	if (pr < 0 && errno != EINTR)
		die("poll on the broker link failed: %s", strerror(errno));
	uint64_t now_ms = mono_us() / 1000;
	if (now_ms - sv->last_expire >= EXPIRE_EVERY_MS) {
		vault_expire(sv->v, now_ms);
		sv->last_expire = now_ms;
	}
	return pr;
}
/* Makes what is staged durable and sends the replies that need no anchor (store_write); then,
 * if the frame was a commit, charges the budget and starts its anchor on the TPM thread: the
 * batch becomes the flight, whose other replies anchor_done sends. A flush frame (resets only)
 * or nothing staged completes at once. */
static void commit_and_reply(struct serve *sv)
{
	struct batch *b = sv->cur;
	uint64_t t0 = mono_us(), inc = store_commit_cost(sv->s);
	int r = store_write(sv->s);
	if (r != 0)
		die("writing the journal failed (%s); exiting without answering the %zu "
		    "requests of this batch",
		    sv_strerror(r), b->n);
	audit_written(store_counter(sv->s)); /* the records of resets: durable now */
	for (size_t i = 0; i < b->n; i++)
		if (!b->anchored[i])
			send_reply(b->ids[i], &b->replies[i]);
	if (store_anchor_due(sv->s)) {
		/* the commit's increments, done now or once an owed increment is paid */
		budget_spend(sv->bud, budget_cost(sv->bud, inc), mono_us());
		if ((r = store_anchor_begin(sv->s, &sv->w->job)) != 0)
			die("cannot start the NV counter increment (%s); exiting", sv_strerror(r));
		worker_post(sv->w);
		sv->flight = b;
		sv->flight_t0 = t0;
		sv->cur = b == &sv->batch[0] ? &sv->batch[1] : &sv->batch[0];
		return;
	}
	if ((r = store_anchor(sv->s)) != 0) /* a flush frame: no TPM command */
		die("completing the journal flush failed (%s); exiting", sv_strerror(r));
	audit_anchored();
	for (size_t i = 0; i < b->n; i++) {
		if (b->anchored[i])
			send_reply(b->ids[i], &b->replies[i]);
		sv_buf_reset(&b->replies[i]);
	}
	b->n = 0;
}

/* The flight's anchor has finished: its replies leave (busy if the increment is owed, and then
 * those of the batch gathered meanwhile too). A failed anchor ends the process without
 * answering them. */
static void anchor_done(struct serve *sv)
{
	struct batch *b = sv->flight;
	int r = store_anchor_end(sv->s, &sv->w->job);
	sv->flight = NULL;
	int owed = 0;
	if (r == SV_ERR_BUSY) {
		owed = 1;
		throttle_begin(sv->d, mono_us());
	} else if (r != 0) {
		die("the NV counter increment failed (%s); exiting without answering "
		    "the requests of this batch that charged a guess or changed a record",
		    sv_strerror(r));
	} else {
		dispatch_note_commit(sv->d, mono_us() - sv->flight_t0, b->n);
		audit_anchored(); /* before the replies that confirm the changes */
	}
	log_retries(mono_us());
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
	b->n = 0;
	if (owed) {
		/* what the next batch staged stays staged, to be written after the owed
		 * increment; none of it may be confirmed before */
		b = sv->cur;
		for (size_t i = 0; i < b->n; i++) {
			send_busy(b->ids[i], &b->replies[i], busy_unconfirmed);
			sv_buf_reset(&b->replies[i]);
		}
		busy += b->n;
		b->n = 0;
	}
	dispatch_note_throttled_replies(sv->d, busy);
}

/* Answers a request that changes nothing (while an increment is owed) at once. */
static void answer_now(struct serve *sv, const struct sv_frame *f, uint64_t now_ms)
{
	struct sv_buf *reply = &sv->cur->replies[sv->cur->n];
	size_t before = store_pending(sv->s);
	int r = dispatch_request(sv->d, f, now_ms, reply);
	if (r != 0 || store_pending(sv->s) != before)
		die("internal error handling request type %u while throttled (%s); exiting",
		    f->type, sv_strerror(r));
	send_reply(f->req_id, reply);
	sv_buf_reset(reply);
}

/* A frame set aside because it needs the TPM, now that the TPM thread is idle: answered with
 * the next batch, or at once while an increment is owed (it changes nothing). */
static void handle_held(struct serve *sv)
{
	struct sv_frame f;
	if (sv->held_len == 0)
		return;
	if (frame_decode(sv->held, sv->held_len, &f) != 0)
		die("a frame set aside no longer decodes; exiting");
	if (tpmstate.owed)
		answer_now(sv, &f, mono_us() / 1000);
	else
		handle(sv, sv->cur, &f);
	sodium_memzero(sv->held, sv->held_len);
	sv->held_len = 0;
}

/* The requests whose handlers send TPM commands or read what the TPM thread updates. */
static int needs_tpm(uint16_t type)
{
	return type == SV_MSG_ATTESTATION || type == SV_MSG_ACTIVATE || type == SV_MSG_STATS;
}

/* While an anchor runs: reads frames into the next batch until none is ready, the batch is
 * full, a frame needs the TPM (set aside; reading stops until the anchor is done), or the anchor
 * has finished (its replies, and the next commit, go first). A reply that leaves nothing staged
 * (so it saw no unwritten change) is sent at once. */
static void drain_during_anchor(struct serve *sv)
{
	struct batch *b = sv->cur;
	allow_flush(sv->s, sv->bud);
	while (sv->held_len == 0 && b->n < b->cap && !worker_idle(sv->w)) {
		struct sv_frame f;
		int r = next_frame(sv, sv->rbuf, &f);
		if (r < 0)
			sv->ended = 1;
		if (r != 1)
			return;
		size_t len = SV_FRAME_HDR_LEN + f.len;
		if (needs_tpm(f.type)) {
			memcpy(sv->held, sv->rbuf, len);
			sv->held_len = len;
		} else {
			handle(sv, b, &f);
			if (store_pending(sv->s) == 0) {
				b->n--;
				send_reply(b->ids[b->n], &b->replies[b->n]);
				sv_buf_reset(&b->replies[b->n]);
			}
		}
		sodium_memzero(sv->rbuf, len);
	}
}

/* One wait while the flight's anchor runs: for it to finish, and (unless reading must pause:
 * the link ended, a frame is set aside, the batch is full, a snapshot is due, which needs a
 * commit that ends with nothing staged, or an admin request waits, which gather answers once
 * nothing is staged) for frames of the next batch. */
static void wait_anchor(struct serve *sv)
{
	int reading = !sv->ended && sv->held_len == 0 && sv->cur->n < sv->cur->cap &&
	              !store_snapshot_due(sv->s) && !sv->admin_waits;
	struct pollfd p[3] = {
	    {.fd = sv->w->pipe[0], .events = POLLIN},
	    {.fd = reading ? SANDBOX_IPC_FD : -1, .events = POLLIN},
	    {.fd = sv->admin_waits ? -1 : adminsrv_fd(sv->admin), .events = POLLIN}};
	int pr = wait_and_expire(sv, p, 3, EXPIRE_EVERY_MS);
	if (pr <= 0)
		return;
	sv->admin_waits |= p[2].revents != 0; /* so that the loop idles soon, under any load */
	if (p[0].revents != 0 && worker_done(sv->w)) {
		anchor_done(sv);
		handle_held(sv);
		return;
	}
	if (reading && p[1].revents != 0)
		drain_during_anchor(sv);
}

/* Holds the staged commit until the budget covers it, reading more requests into the batch
 * meanwhile (they share its increment); 1 if the link ended. */
static int space_commit(struct serve *sv)
{
	struct batch *b = sv->cur;
	uint64_t start = mono_us(), wait;
	int ended = 0, waited = 0;
	for (;;) {
		double cost = budget_cost(sv->bud, store_commit_cost(sv->s));
		if ((wait = budget_wait_us(sv->bud, cost, mono_us())) == 0)
			break;
		waited = 1;
		int ms = wait > 1000000 ? 1000 : (int)((wait + 999) / 1000);
		struct pollfd p = {.fd = SANDBOX_IPC_FD, .events = POLLIN};
		if (ended || b->n + b->ndeferred >= b->cap) {
			(void)poll(NULL, 0, ms);
			continue;
		}
		allow_flush(sv->s, sv->bud);
		if (poll(&p, 1, ms) > 0)
			ended = drain(sv, b, 0);
	}
	if (waited) {
		sv->bud->waits++;
		sv->bud->waited_us += mono_us() - start;
	}
	return ended;
}

/* While an NV increment is owed: answer what changes nothing (health, which says busy, metrics,
 * attestation) and refuse everything else busy without handling it, so nothing new is staged;
 * try the increment every OWED_RETRY_MS. 1 if the link ended. */
static int serve_owed(struct serve *sv)
{
	uint64_t now = mono_us();
	int ms = now >= tpmstate.next_us ? 0 : (int)((tpmstate.next_us - now + 999) / 1000);
	if (ms > EXPIRE_EVERY_MS)
		ms = EXPIRE_EVERY_MS;
	struct pollfd p = {.fd = SANDBOX_IPC_FD, .events = POLLIN};
	int pr = wait_and_expire(sv, &p, 1, ms);
	uint64_t now_ms = mono_us() / 1000;
	for (size_t k = 0; pr > 0 && k < sv->cur->cap; k++) {
		struct sv_frame f;
		int r = next_frame(sv, sv->rbuf, &f);
		if (r < 0)
			return 1;
		if (r == 0)
			break;
		if (msg_flags(f.type) & MSG_F_READONLY) {
			answer_now(sv, &f, now_ms);
		} else {
			send_busy(f.req_id, &sv->cur->replies[0], busy_refused);
			sv_buf_reset(&sv->cur->replies[0]);
			dispatch_note_throttled_replies(sv->d, 1);
		}
		sodium_memzero(sv->rbuf, SV_FRAME_HDR_LEN + f.len);
	}
	if (mono_us() >= tpmstate.next_us)
		(void)throttle_retry(sv->d, sv->s, mono_us());
	return 0;
}

/* One cycle with no anchor running and nothing gathered: wait for frames and answer them into
 * the batch, then give others up to batch-window-us to join its commit. 0 when nothing came. */
static int gather(struct serve *sv)
{
	struct batch *b = sv->cur;
	struct pollfd p[2] = {{.fd = SANDBOX_IPC_FD, .events = POLLIN},
	                      {.fd = adminsrv_fd(sv->admin), .events = POLLIN}};
	int pr = wait_and_expire(sv, p, 2, EXPIRE_EVERY_MS);
	/* sealvault-admin's requests, answered and committed while nothing else is staged */
	if (pr > 0 && p[1].revents != 0 && adminsrv_serve(sv->admin) == SV_ERR_BUSY)
		throttle_begin(sv->d, mono_us());
	sv->admin_waits = 0;
	if (pr <= 0 || p[0].revents == 0 || tpmstate.owed)
		return 0;
	allow_flush(sv->s, sv->bud);
	/* Login/starts (whose answers wait for an NV increment) are set aside while the rest of
	 * what is ready is answered; if none of that needs the increment (KE3s: guess resets,
	 * failed KE3s, health), it is flushed and answered first, so a KE3 does not wait for the
	 * KE2s computed with it, the batch window and the increment. Any order of requests that
	 * are in flight together is one a client could have seen. */
	sv->ended = drain(sv, b, 1);
	if (b->ndeferred > 0 && b->n > 0 && store_pending_anchored(sv->s) == 0)
		commit_and_reply(sv); /* a flush at most: no anchor */
	handle_deferred(sv, b);
	/* group commit: give other clients up to batch-window-us to join this commit (only for
	 * changes that need the NV increment; resets alone are flushed at once) */
	if (!sv->ended && store_pending_anchored(sv->s) > 0 && sv->pol->batch_window_us > 0) {
		uint64_t until = mono_us() + sv->pol->batch_window_us;
		while (!sv->ended && b->n < b->cap) {
			uint64_t t = mono_us();
			if (t >= until)
				break;
			int ms = (int)((until - t + 999) / 1000);
			p[0].revents = 0;
			if (poll(p, 1, ms) <= 0)
				break;
			sv->ended = drain(sv, b, 0);
		}
	}
	return 1;
}

int serve_new(struct serve **out, struct vault *v, struct store *s, struct dispatch *d,
              struct tpm *tpm, const struct sv_vault_policy *pol, struct budget *bud, char *why,
              size_t why_len)
{
	struct serve *sv = calloc(1, sizeof(*sv));
	if (sv == NULL || (sv->rbuf = malloc(SV_FRAME_BUF_LEN)) == NULL ||
	    (sv->held = malloc(SV_FRAME_BUF_LEN)) == NULL ||
	    batch_init(&sv->batch[0], pol->max_batch) != SV_OK ||
	    batch_init(&sv->batch[1], pol->max_batch) != SV_OK) {
		snprintf(why, why_len, "out of memory for two batches of %u replies",
		         (unsigned)pol->max_batch);
		serve_free(sv);
		return SV_ERR_NOMEM;
	}
	sv->v = v;
	sv->s = s;
	sv->d = d;
	sv->pol = pol;
	sv->bud = bud;
	sv->cur = &sv->batch[0];
	sv->w = &worker;
	dispatch_set_drain(d, &sv->drain);
	tpmstate.tpm = tpm;
	int r = worker_start(sv->w, why, why_len);
	if (r != SV_OK) {
		serve_free(sv);
		return r;
	}
	*out = sv;
	return SV_OK;
}

/* Tells the broker what the drain has reached, if anything is due (enclave/drain.h); called
 * only where no reply waits for a commit or an anchor. */
static void report_drain(struct serve *sv)
{
	uint8_t p[DRAIN_REPORT_LEN];
	size_t last, pending = vault_pending(sv->v, &last);
	while (drain_due(&sv->drain, mono_us() / 1000, pending, last, p))
		send_frame(SV_MSG_DRAIN_STATUS, 0, p, sizeof(p));
}

void serve_set_admin(struct serve *sv, struct adminsrv *a)
{
	sv->admin = a;
}

void serve_run(struct serve *sv)
{
	/* after a restart the broker answers 503 until it hears this (common/msg.h) */
	send_frame(SV_MSG_READY, 0, NULL, 0);
	fprintf(stderr, "sealvault-enclave: vault open, sandboxed, serving\n");
	sv->last_expire = mono_us() / 1000;
	for (;;) {
		if (tpmstate.owed) {
			report_drain(sv);
			if (serve_owed(sv))
				break;
			continue;
		}
		if (sv->flight != NULL) {
			wait_anchor(sv);
			continue;
		}
		/* What was gathered while the last anchor ran (or stays staged after an owed
		 * one) is committed at once: that anchor's time was its batch window. */
		if (sv->cur->n == 0 && store_pending(sv->s) == 0) {
			if (sv->ended)
				break;
			report_drain(sv);
			if (!gather(sv))
				continue;
		}
		if (store_pending_anchored(sv->s) > 0 && space_commit(sv))
			sv->ended = 1;
		commit_and_reply(sv);
	}
}

void serve_free(struct serve *sv)
{
	if (sv == NULL)
		return;
	/* the TPM thread stays parked (see struct worker); it has no job: serve_run returns
	 * with no anchor running */
	batch_free(&sv->batch[0]);
	batch_free(&sv->batch[1]);
	if (sv->rbuf != NULL)
		sodium_memzero(sv->rbuf, SV_FRAME_BUF_LEN);
	free(sv->rbuf);
	if (sv->held != NULL)
		sodium_memzero(sv->held, SV_FRAME_BUF_LEN);
	free(sv->held);
	free(sv);
}
