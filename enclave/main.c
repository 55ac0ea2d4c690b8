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
#include "enclave/tpm.h"
#include "enclave/vault.h"
#include "policy/seccomp.h"
#include "policy/vault.h"

#define DEFAULT_CONTEXT "sealvault-v1"
#define CONTEXT_MAX     1024
#define EXPIRE_EVERY_MS 1000

struct options {
	const char *state_dir;
	const char *tpm;
	const char *context;
	const char *daemon_bin; /* hashed into the attestation statement (build_hash) */
	const char *broker_bin;
	struct sv_vault_policy policy;
};

static const char usage[] =
    "usage: sealvault-enclave --state-dir DIR --tpm TCTI [--context STRING]\n"
    "       [--policy KEY=VALUE]... [--daemon-bin PATH] [--broker-bin PATH]\n"
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
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char why[256];
	int c;
	memset(o, 0, sizeof(*o));
	o->context = DEFAULT_CONTEXT;
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

/* Reads and answers frames until none is ready or the batch is full; 1 if the link ended. With
 * defer, login/start frames are only copied aside, for serve to answer after the rest. */
static int drain(struct dispatch *d, struct store *s, struct batch *b, uint8_t *rbuf, int defer)
{
	while (b->n + b->ndeferred < b->cap) {
		struct sv_frame f;
		int r = frame_recv(SANDBOX_IPC_FD, rbuf, &f);
		if (r == SV_ERR_BUSY)
			return 0;
		if (r == SV_ERR_IO) {
			if (errno == 0)
				return 1;
			die("reading from the broker failed: %s", strerror(errno));
		}
		if (r != 0)
			die("malformed frame from the broker (%s): protocol violation, exiting",
			    sv_strerror(r));
		if (!dispatch_permitted(f.type))
			die("frame type %u is not a permitted request: protocol violation, exiting",
			    f.type);
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

/* Tells the store whether a forced flush fits the NV-write budget now. */
static void allow_flush(struct store *s, struct budget *bud)
{
	uint64_t inc = 0;
	store_flush_cost(s, &inc);
	store_set_flush_allowed(s, budget_wait_us(bud, budget_cost(bud, inc), mono_us()) == 0);
}

/* Makes what is staged durable and sends the replies that need no anchor (store_write); then,
 * if the frame was a commit, increments the NV counter (store_anchor), charges the budget and
 * sends the rest. */
static void commit_and_reply(struct dispatch *d, struct store *s, struct batch *b,
                             struct budget *bud)
{
	uint64_t t0 = mono_us(), inc = 0, writes = 0;
	store_commit_cost(s, &inc, &writes);
	int r = store_write(s);
	if (r != 0)
		die("writing the journal failed (%s); exiting without answering the %zu "
		    "requests of this batch",
		    sv_strerror(r), b->n);
	for (size_t i = 0; i < b->n; i++)
		if (!b->anchored[i])
			send_reply(b->ids[i], &b->replies[i]);
	if (store_pending(s) > 0) {
		if ((r = store_anchor(s)) != 0)
			die("the NV counter increment failed (%s); exiting without answering "
			    "the requests of this batch that charged a guess or changed a record",
			    sv_strerror(r));
		budget_spend(bud, budget_cost(bud, inc), mono_us());
		dispatch_note_commit(d, mono_us() - t0, b->n);
	}
	for (size_t i = 0; i < b->n; i++) {
		if (b->anchored[i])
			send_reply(b->ids[i], &b->replies[i]);
		sv_buf_reset(&b->replies[i]);
	}
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
		uint64_t inc = 0, writes = 0, t = mono_us();
		store_commit_cost(s, &inc, &writes);
		if ((wait = budget_wait_us(bud, budget_cost(bud, inc), t)) == 0)
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
	if (tpm_open(&tpm, o.tpm, why, sizeof(why)) != 0)
		die("cannot open the TPM (%s): %s", o.tpm, why);
	if (store_open(&store, o.state_dir, tpm, &o.policy, why, sizeof(why)) != 0)
		die("refusing to serve: %s", why);
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
		        "migrate to the hybrid scheme to save the TPM (docs/operations.md \"NV "
		        "wear\")\n",
		        per_day == 0 ? "no NV-write budget" : "NV-write budget set");
	int fl = fcntl(SANDBOX_IPC_FD, F_GETFL);
	if (fl < 0 || fcntl(SANDBOX_IPC_FD, F_SETFL, fl | O_NONBLOCK) != 0)
		die("cannot make the broker link non-blocking: %s", strerror(errno));
	if (sandbox_lockdown(why, sizeof(why)) != 0)
		die("refusing to run without a sandbox: %s", why);
	if (policy_seccomp_test_hook("enclave") != 0)
		exit(1);
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
