/*
 * The serve loop of sealvault-enclave (enclave/main.c sets up, then calls serve_run).
 *
 * Group commit: read every frame that is ready (up to the policy's max-batch), answer each into
 * its own buffer (login/starts last: when nothing else needs the NV increment, the rest is
 * flushed and answered before them), wait up to batch-window-us for more if anything that needs
 * the increment is staged, make the batch durable with ONE journal frame and fsync
 * (store_write), send the answers that need no anchor (guess resets, requests that changed
 * nothing), increment the NV counter (store_anchor), and only then send the rest. A failed commit
 * ends the process without answering what it had not answered (nothing acknowledged is lost,
 * nothing undurable is acknowledged). See sealvault-enclave(8).
 *
 * The NV-write budget (enclave/budget.h) spaces commits out: a commit waits, gathering more
 * requests, until the bucket covers its NV increments; and before each batch the store is told
 * whether a forced flush fits now (if not, the requests that need one are answered busy).
 * A TPM that throttles NV writes past the retry budget leaves the commit's increment owed
 * (store_anchor: SV_ERR_BUSY): the replies that waited for it are answered busy (503) instead,
 * and until the increment succeeds (tried every OWED_RETRY_MS) only requests that change nothing
 * are served (serve_owed); then service resumes.
 */
#include "enclave/serve.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"
#include "enclave/budget.h"
#include "enclave/dispatch.h"
#include "enclave/sandbox.h"
#include "enclave/store.h"
#include "enclave/tpm.h"
#include "enclave/vault.h"

#define EXPIRE_EVERY_MS 1000
#define OWED_RETRY_MS   2000 /* an owed NV increment is tried again this often */
#define TPM_LOG_EVERY_S 60   /* at most one line per minute about retries or throttling */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* As main.c's: a message and exit 1 (sealvaultd restarts the pair). */
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

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
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
		if (f.type == SV_MSG_HEALTH || f.type == SV_MSG_STATS ||
		    f.type == SV_MSG_ATTESTATION || f.type == SV_MSG_ACTIVATE) {
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

void serve_run(struct vault *v, struct store *s, struct dispatch *d, struct tpm *tpm,
               const struct sv_vault_policy *pol, struct budget *bud)
{
	struct batch b = {.cap = pol->max_batch};
	tpmstate.tpm = tpm;
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
}
