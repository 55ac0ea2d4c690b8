/*
 * state-driver: drives the real store + TPM modules for the integration tests and the bench.
 *
 *   state-driver run   --state-dir D --tpm T --seed S --ops N [--batch B] [--acked A]
 *       Opens the vault, finds where a deterministic stream of registrations, guess charges,
 *       resets, password changes and deletions (over 64 users, generated from S) stands, checks
 *       that every acknowledged op (index <= A) is present, and every op up to --min-pos (where
 *       the previous run found the vault), then continues the stream in commits
 *       of B ops. After each store_commit returns it prints "ack I counter C" for every op of
 *       the batch: an op is acknowledged only once it is durable. --snapshot-every K takes a
 *       snapshot after every K-th commit. --snapshot-chunk BYTES (any command) writes
 *       snapshots in chunks of that many plaintext bytes (1: one op per chunk), so that the
 *       tests' small vaults have snapshots of many chunks. --snapshot-async takes them on the
 *       store's snapshot thread while the commits go on (store_snapshot_start).
 *   state-driver check ... same options: only the verification; prints "position P counter C".
 *   state-driver put|lookup|charge --state-dir D --tpm T --user ID
 *       Register one user (guess limit 3) / show it / charge it one wrong guess.
 *   state-driver bench-commit --state-dir D --tpm T --writers W --changes N
 *   state-driver bench-startup --state-dir D --tpm T --users N [--during-snapshot]
 *       Generates N users, reopens the vault (start-up time, enclave bytes per user); with
 *       --during-snapshot it then commits at a steady pace around a snapshot of all N users
 *       (commit p99 without and while it is written; on the snapshot thread, or with
 *       --snapshot-sync before the next commit, as without one).
 *   state-driver reseal-plain --state-dir D --tpm T
 *       Reseals the vault key of a stopped vault initialised with --pcrs to a plain PolicyPCR at
 *       the current values, as sealvault did before signed PCR policies (issue 12): the tests
 *       make such a vault to check `sealvault-admin reseal` on it.
 * Exit: 0 ok, 3 refused by the store (reason on stderr), 4 acknowledged state missing, 1 other.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "common/err.h"
#include "enclave/store.h"
#include "enclave/tpm.h"
#include "policy/vault.h"

#define NUSERS 64

struct muser {
	int exists, destroyed;
	unsigned limit, used;
	uint64_t gen; /* op index of the last PUT: determines record and blob bytes */
};

struct op {
	int type; /* 1 put, 2 charge, 3 reset, 4 delete */
	unsigned user, limit;
};

static uint64_t seed;

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void user_id(unsigned u, uint8_t id[16], size_t *n)
{
	*n = (size_t)snprintf((char *)id, 16, "user-%02u", u);
}

static void content(uint64_t gen, uint8_t record[STORE_RECORD_LEN], uint8_t *blob, size_t *blen)
{
	for (size_t i = 0; i < STORE_RECORD_LEN; i++)
		record[i] = (uint8_t)mix(seed ^ gen << 16 ^ i);
	*blen = 16 + gen % 48;
	for (size_t i = 0; i < *blen; i++)
		blob[i] = (uint8_t)mix(~seed ^ gen << 16 ^ i);
}

static struct op gen_op(const struct muser *m, uint64_t i)
{
	uint64_t r = mix(seed * 31 + i);
	struct op o = {.user = (unsigned)(r % NUSERS)};
	const struct muser *u = &m[o.user];
	unsigned pick = (unsigned)(r >> 32) % 100;
	if (!u->exists) {
		o.type = 1;
	} else if (u->destroyed) {
		o.type = pick < 50 ? 4 : 1;
	} else if (pick < 60) {
		o.type = 2;
	} else if (pick < 80) {
		o.type = 3;
	} else if (pick < 90) {
		o.type = 1;
	} else {
		o.type = 4;
	}
	o.limit = 2 + (unsigned)(r >> 48) % 6;
	return o;
}

static void model_apply(struct muser *m, const struct op *o, uint64_t i)
{
	struct muser *u = &m[o->user];
	switch (o->type) {
	case 1: *u = (struct muser){.exists = 1, .limit = o->limit, .gen = i}; break;
	case 2:
		if (++u->used >= u->limit)
			u->destroyed = 1;
		break;
	case 3: u->used = 0; break;
	case 4: memset(u, 0, sizeof(*u)); break;
	}
}

static int store_apply(struct store *s, const struct op *o, uint64_t i)
{
	uint8_t id[16], rec[STORE_RECORD_LEN], blob[64];
	size_t n, blen;
	unsigned left;
	user_id(o->user, id, &n);
	switch (o->type) {
	case 1:
		content(i, rec, blob, &blen);
		return store_put_user(s, id, n, rec, blob, blen, o->limit);
	case 2: return store_charge_guess(s, id, n, &left);
	case 3: return store_reset_guesses(s, id, n);
	default: return store_delete_user(s, id, n);
	}
}

static int model_matches(const struct store *s, const struct muser *m)
{
	for (unsigned u = 0; u < NUSERS; u++) {
		uint8_t id[16], rec[STORE_RECORD_LEN], blob[64];
		size_t n, blen;
		struct store_user_view v;
		user_id(u, id, &n);
		int r = store_lookup(s, id, n, &v);
		if (!m[u].exists) {
			if (r != SV_ERR_NOTFOUND)
				return 0;
			continue;
		}
		if (r != SV_OK || v.guess_limit != m[u].limit || v.destroyed != m[u].destroyed)
			return 0;
		if (m[u].destroyed) {
			if (v.record != NULL)
				return 0;
			continue;
		}
		content(m[u].gen, rec, blob, &blen);
		if (v.guesses_used != m[u].used || v.blob_len != blen ||
		    memcmp(v.record, rec, sizeof(rec)) != 0 || memcmp(v.blob, blob, blen) != 0)
			return 0;
	}
	return 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t chunk_bytes; /* --snapshot-chunk (0: the store's default) */

static int open_vault(struct store **s, struct tpm **t, const char *dir, const char *tcti,
                      const struct sv_vault_policy *pol)
{
	char why[512];
	int r = tpm_open(t, tcti, why, sizeof(why));
	/* Lazy: `check` only looks, so it must not supersede the run that wrote the state (the
	 * rollback and bit-flip tests check copies, then the original); `run` takes the counter
	 * over before its first commit. */
	if (r == SV_OK)
		r = store_open_lazy(s, dir, *t, pol, why, sizeof(why));
	if (r == SV_OK && chunk_bytes != 0 && store_set_snapshot_chunk(*s, chunk_bytes) != SV_OK) {
		snprintf(why, sizeof(why), "--snapshot-chunk %zu is out of range", chunk_bytes);
		store_close(*s);
		*s = NULL;
		r = SV_ERR_RANGE;
	}
	if (r != SV_OK) {
		fprintf(stderr, "state-driver: %s\n", why);
		return r == SV_ERR_STATE ? 3 : 1;
	}
	return 0;
}

static uint64_t min_pos; /* --min-pos: where the previous run found the vault */

/* Finds the largest batch boundary whose model state equals the store; checks it covers every
 * acknowledged op and is at most one batch beyond them (one commit may be durable but not yet
 * acknowledged: killed after store_commit, or between fsync and NV increment). */
static int locate(const struct store *s, struct muser *m, uint64_t ops, uint64_t batch,
                  long long acked, uint64_t *pos)
{
	struct muser cur[NUSERS] = {{0}};
	int found = 0;
	uint64_t need = acked < 0 ? 0 : ((uint64_t)acked / batch + 1) * batch;
	if (min_pos > need)
		need = min_pos; /* a previous start already found the vault there: durable */
	if (ops > need + batch)
		ops = need + batch; /* no later point can be valid */
	for (uint64_t i = 0;; i++) {
		if (i % batch == 0 && i >= need && model_matches(s, cur)) {
			found = 1;
			*pos = i;
			memcpy(m, cur, sizeof(cur));
		}
		if (i >= ops)
			break;
		struct op o = gen_op(cur, i);
		model_apply(cur, &o, i);
	}
	if (!found) {
		fprintf(stderr, "state-driver: vault state matches no point of the stream\n");
		return 4;
	}
	if (*pos < need || *pos > need + batch) {
		fprintf(stderr,
		        "state-driver: vault is at op %llu but ops up to %lld were acknowledged "
		        "(allowed: %llu or %llu)\n",
		        (unsigned long long)*pos, acked, (unsigned long long)need,
		        (unsigned long long)(need + batch));
		return 4;
	}
	return 0;
}

static unsigned snapshot_every; /* run: store_snapshot after every N commits (0: never) */
static int snapshot_async;      /* --snapshot-async: store_snapshot_start instead */

static int cmd_run(const char *dir, const char *tcti, uint64_t ops, uint64_t batch, long long acked,
                   int do_run)
{
	struct store *s = NULL;
	struct tpm *t = NULL;
	struct muser m[NUSERS];
	struct store_stats st;
	uint64_t pos = 0;
	int ex = open_vault(&s, &t, dir, tcti, NULL);
	if (ex != 0)
		goto out;
	if ((ex = locate(s, m, ops, batch, acked, &pos)) != 0)
		goto out;
	store_get_stats(s, &st);
	printf("position %llu counter %llu\n", (unsigned long long)pos,
	       (unsigned long long)st.counter);
	fflush(stdout);
	if (!do_run)
		goto out;
	for (uint64_t i = pos; i < ops; i += batch) {
		uint64_t end = i + batch < ops ? i + batch : ops;
		for (uint64_t k = i; k < end; k++) {
			struct op o = gen_op(m, k);
			int r = store_apply(s, &o, k);
			if (r != SV_OK) {
				fprintf(stderr, "state-driver: op %llu failed: %s\n",
				        (unsigned long long)k, sv_strerror(r));
				ex = 1;
				goto out;
			}
			model_apply(m, &o, k);
		}
		int r = store_commit(s);
		if (r != SV_OK) {
			fprintf(stderr, "state-driver: commit failed: %s\n", sv_strerror(r));
			ex = 1;
			goto out;
		}
		if (snapshot_every != 0 && (i / batch + 1) % snapshot_every == 0 &&
		    (r = !snapshot_async          ? store_snapshot(s)
		         : store_snapshot_busy(s) ? SV_OK
		                                  : store_snapshot_start(s)) != SV_OK) {
			fprintf(stderr, "state-driver: snapshot failed: %s\n", sv_strerror(r));
			ex = 1;
			goto out;
		}
		store_get_stats(s, &st);
		for (uint64_t k = i; k < end; k++)
			printf("ack %llu counter %llu\n", (unsigned long long)k,
			       (unsigned long long)st.counter);
		fflush(stdout);
	}
out:
	store_close(s);
	tpm_close(t);
	return ex;
}

/* ---- bench: W writer threads, one committer (the enclave's serve loop in miniature) ---- */

struct bench {
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	struct store *s;
	unsigned waiting; /* submitted, not yet taken */
	unsigned *queue;  /* user index per submitted request */
	uint64_t *epoch;  /* per writer: commit epoch its request completed in */
	uint64_t epoch_now;
	unsigned writers;
	unsigned window_us; /* group commit: after the first request, wait this long for more */
	int stop, failed;
};

struct writer {
	struct bench *b;
	unsigned idx;
	unsigned n;
	double *lat;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct bench *b = w->b;
	for (unsigned k = 0; k < w->n; k++) {
		double t0 = now_s();
		pthread_mutex_lock(&b->mu);
		uint64_t want = b->epoch_now + 1;
		b->queue[b->waiting++] = w->idx;
		b->epoch[w->idx] = 0;
		pthread_cond_signal(&b->work);
		while (b->epoch[w->idx] == 0 && !b->failed)
			pthread_cond_wait(&b->done, &b->mu);
		(void)want;
		pthread_mutex_unlock(&b->mu);
		w->lat[k] = now_s() - t0;
	}
	return NULL;
}

static void *committer_main(void *arg)
{
	struct bench *b = arg;
	unsigned *taken = calloc(b->writers, sizeof(*taken));
	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (b->waiting == 0 && !b->stop)
			pthread_cond_wait(&b->work, &b->mu);
		if (b->waiting == 0 && b->stop)
			break;
		if (b->window_us > 0) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += (long)b->window_us * 1000;
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			while (b->waiting < b->writers &&
			       pthread_cond_timedwait(&b->work, &b->mu, &until) == 0)
				;
		}
		unsigned n = b->waiting;
		memcpy(taken, b->queue, n * sizeof(*taken));
		b->waiting = 0;
		pthread_mutex_unlock(&b->mu);
		int r = SV_OK;
		for (unsigned k = 0; k < n && r == SV_OK; k++) {
			uint8_t id[16];
			size_t len;
			unsigned left = 0;
			struct store_user_view v;
			user_id(taken[k], id, &len);
			r = store_lookup(b->s, id, len, &v);
			if (r == SV_OK)
				r = v.guesses_used + 2 >= v.guess_limit
				        ? store_reset_guesses(b->s, id, len)
				        : store_charge_guess(b->s, id, len, &left);
		}
		if (r == SV_OK)
			r = store_commit(b->s);
		pthread_mutex_lock(&b->mu);
		if (r != SV_OK)
			b->failed = 1;
		b->epoch_now++;
		for (unsigned k = 0; k < n; k++)
			b->epoch[taken[k]] = b->epoch_now;
		pthread_cond_broadcast(&b->done);
		if (b->failed)
			break;
	}
	pthread_mutex_unlock(&b->mu);
	free(taken);
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int bench_round(struct store *s, unsigned writers, unsigned per_writer, unsigned window_us)
{
	struct bench b = {.s = s, .writers = writers, .window_us = window_us};
	pthread_mutex_init(&b.mu, NULL);
	pthread_cond_init(&b.work, NULL);
	pthread_cond_init(&b.done, NULL);
	b.queue = calloc(writers, sizeof(*b.queue));
	b.epoch = calloc(writers, sizeof(*b.epoch));
	struct writer *w = calloc(writers, sizeof(*w));
	double *lat = calloc((size_t)writers * per_writer, sizeof(*lat));
	pthread_t *th = calloc(writers, sizeof(*th)), ct;
	struct store_stats s0, s1;
	store_get_stats(s, &s0);
	pthread_create(&ct, NULL, committer_main, &b);
	for (unsigned i = 0; i < writers; i++) {
		w[i] = (struct writer){
		    .b = &b, .idx = i, .n = per_writer, .lat = lat + (size_t)i * per_writer};
		pthread_create(&th[i], NULL, writer_main, &w[i]);
	}
	for (unsigned i = 0; i < writers; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_lock(&b.mu);
	b.stop = 1;
	pthread_cond_signal(&b.work);
	pthread_mutex_unlock(&b.mu);
	pthread_join(ct, NULL);
	store_get_stats(s, &s1);
	size_t n = (size_t)writers * per_writer;
	qsort(lat, n, sizeof(*lat), cmp_d);
	uint64_t commits = s1.commits - s0.commits, changes = s1.changes - s0.changes;
	char wn[64];
	snprintf(wn, sizeof(wn), "%u-writer%s%s", writers, writers == 1 ? "" : "s",
	         window_us ? "-window" : "");
	printf("commit-latency-%s-p50: %.2f ms\n", wn, lat[n / 2] * 1e3);
	printf("commit-latency-%s-p99: %.2f ms\n", wn, lat[n * 99 / 100] * 1e3);
	printf("changes/nv-increment-%s: %.1f changes\n", wn, (double)changes / (double)commits);
	if (writers == 1 || window_us)
		printf("nv-writes/1000-changes-%s: %.0f\n", wn,
		       1000.0 * (double)commits / (double)changes);
	else
		printf("nv-writes/1000-changes: %.0f\n",
		       1000.0 * (double)commits / (double)changes);
	int failed = b.failed;
	free(b.queue);
	free(b.epoch);
	free(w);
	free(lat);
	free(th);
	return failed ? 1 : 0;
}

static int cmd_bench_commit(const char *dir, const char *tcti, unsigned writers, unsigned changes)
{
	struct store *s = NULL;
	struct tpm *t = NULL;
	int ex = open_vault(&s, &t, dir, tcti, NULL);
	if (ex != 0)
		return ex;
	for (unsigned u = 0; u < writers; u++) {
		uint8_t id[16], rec[STORE_RECORD_LEN], blob[64];
		size_t n, blen;
		user_id(u, id, &n);
		content(u, rec, blob, &blen);
		if (store_put_user(s, id, n, rec, blob, blen, 10) != SV_OK) {
			ex = 1;
			goto out;
		}
	}
	if (store_commit(s) != SV_OK) {
		ex = 1;
		goto out;
	}
	/* Without a window (a commit takes whatever queued during the previous one), then with
	 * the policy's default window, as the enclave's serve loop does. */
	struct sv_vault_policy pol;
	policy_vault_defaults(&pol);
	ex = bench_round(s, 1, changes / 8 > 0 ? changes / 8 : 1, 0);
	if (ex == 0)
		ex = bench_round(s, writers, changes / writers > 0 ? changes / writers : 1, 0);
	if (ex == 0) {
		printf("batch-window: %u us\n", pol.batch_window_us);
		ex = bench_round(s, writers, changes / writers > 0 ? changes / writers : 1,
		                 pol.batch_window_us);
	}
out:
	store_close(s);
	tpm_close(t);
	return ex;
}

/* put: registers id with a fixed record (limit 3); lookup: prints what the vault holds. */
static int cmd_reseal_plain(const char *dir, const char *tcti)
{
	struct tpm *t = NULL;
	char why[512] = "";
	int already = 0, r;
	if (tpm_open(&t, tcti, why, sizeof(why)) != SV_OK) {
		fprintf(stderr, "state-driver: %s\n", why);
		return 1;
	}
	r = store_reseal(dir, t, NULL, &already, why, sizeof(why));
	tpm_close(t);
	if (r != SV_OK)
		fprintf(stderr, "state-driver: %s\n", why);
	else
		printf("vault key %s sealed to a plain PolicyPCR\n", already ? "already" : "now");
	return r == SV_OK ? 0 : r == SV_ERR_STATE ? 3 : 1;
}

enum user_cmd { USER_LOOKUP, USER_PUT, USER_CHARGE };

static int cmd_user(const char *dir, const char *tcti, const char *id, enum user_cmd cmd)
{
	struct store *s = NULL;
	struct tpm *t = NULL;
	struct store_user_view v;
	uint8_t rec[STORE_RECORD_LEN], blob[64];
	size_t blen;
	int ex = open_vault(&s, &t, dir, tcti, NULL), r;
	if (ex != 0)
		return ex;
	if (cmd == USER_CHARGE) {
		unsigned left = 0;
		r = store_charge_guess(s, (const uint8_t *)id, strlen(id), &left);
		if (r == SV_OK)
			r = store_commit(s);
		ex = r == SV_OK ? 0 : 1;
		printf("charge %s: %s, %u left\n", id, sv_strerror(r), left);
	} else if (cmd == USER_PUT) {
		content(7, rec, blob, &blen);
		r = store_put_user(s, (const uint8_t *)id, strlen(id), rec, blob, blen, 3);
		if (r == SV_OK)
			r = store_commit(s);
		ex = r == SV_OK ? 0 : 1;
		printf("put %s: %s\n", id, sv_strerror(r));
	} else {
		r = store_lookup(s, (const uint8_t *)id, strlen(id), &v);
		if (r == SV_OK)
			printf("user %s: used %u limit %u destroyed %d\n", id, v.guesses_used,
			       v.guess_limit, v.destroyed);
		else
			printf("user %s: absent\n", id);
	}
	store_close(s);
	tpm_close(t);
	return ex;
}

static size_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

/* Commits at a steady pace, one change every PACE_S as clients would send them, grouped as the
 * serve loop groups them: every change whose time has come goes into the next commit. A change's
 * latency runs from its scheduled time to the end of its commit, so changes that wait behind
 * something count with their wait. With snap, a snapshot is started after the commit at 0.2 s,
 * as the serve loop starts one (between commits, nothing staged): on the snapshot thread, the
 * commits going on (store_snapshot_start), or, with --snapshot-sync, written before the next
 * commit (store_snapshot, as without a snapshot thread). Returns the p99 in seconds of the
 * changes scheduled after that commit and before the snapshot was switched to (snap) or of all
 * (!snap), or -1; *snap_s: how long the snapshot took. */
#define PACE_S 0.002
static int snapshot_sync; /* bench-startup --snapshot-sync */
static double paced_commits(struct store *s, int snap, double seconds, double *snap_s)
{
	/* room for a snapshot of up to 10 minutes */
	size_t cap = (size_t)((seconds + (snap ? 600 : 0)) / PACE_S) + 16, n = 0, next = 0;
	double *lat = calloc(cap, sizeof(*lat)), t0 = now_s(), s0 = -1, s1 = -1;
	size_t first = 0, last = 0;
	int r = SV_ERR_RANGE; /* no change was scheduled while the snapshot was written */
	if (lat == NULL)
		return -1;
	for (;;) {
		double now = now_s(), due_t = t0 + (double)next * PACE_S;
		/* run for `seconds`, and with a snapshot until 0.5 s after it was switched to */
		if (now - t0 > seconds && (!snap || (s1 >= 0 && due_t > s1 + 0.5)))
			break;
		if (due_t > now) {
			struct timespec ts = {0, (long)((due_t - now) * 1e9)};
			nanosleep(&ts, NULL);
			continue;
		}
		size_t from = next;
		while (next < cap && t0 + (double)next * PACE_S <= now) {
			if ((r = store_stage_noop(s)) != SV_OK)
				goto fail;
			next++;
		}
		if ((r = store_commit(s)) != SV_OK)
			goto fail;
		double end = now_s();
		for (size_t k = from; k < next; k++)
			lat[n++] = end - (t0 + (double)k * PACE_S);
		if (next >= cap)
			break;
		if (snap && s0 < 0 && end - t0 >= 0.2) {
			first = n;
			s0 = now_s();
			if ((r = snapshot_sync ? store_snapshot(s) : store_snapshot_start(s)) !=
			    SV_OK)
				goto fail;
		}
		if (s0 >= 0 && s1 < 0 && !store_snapshot_busy(s)) {
			s1 = now_s();
			*snap_s = s1 - s0;
		}
		if (s1 >= 0 && last == 0 && t0 + (double)next * PACE_S > s1)
			last = n;
	}
	if (!snap) {
		first = 0;
		last = n;
	}
	if (last <= first)
		goto fail;
	qsort(lat + first, last - first, sizeof(*lat), cmp_d);
	double p99 = lat[first + (last - first) * 99 / 100];
	free(lat);
	return p99;
fail:
	fprintf(stderr, "state-driver: paced commits: %s\n", sv_strerror(r));
	free(lat);
	return -1;
}

static int during_snapshot; /* bench-startup --during-snapshot */

static int cmd_bench_startup(const char *dir, const char *tcti, unsigned users)
{
	struct store *s = NULL;
	struct tpm *t = NULL;
	int ex = open_vault(&s, &t, dir, tcti, NULL);
	if (ex != 0)
		return ex;
	double t0 = now_s();
	for (unsigned u = 0; u < users && ex == 0; u++) {
		uint8_t id[32], rec[STORE_RECORD_LEN], blob[64];
		size_t n = (size_t)snprintf((char *)id, sizeof(id), "bench-user-%08u", u), blen;
		content(u, rec, blob, &blen);
		if (store_put_user(s, id, n, rec, blob, blen, 10) != SV_OK)
			ex = 1;
		if (ex == 0 && (store_pending(s) == 100000 || u + 1 == users) &&
		    store_commit(s) != SV_OK)
			ex = 1;
	}
	if (ex == 0 && store_snapshot(s) != SV_OK)
		ex = 1;
	store_close(s);
	s = NULL;
	if (ex != 0) {
		fprintf(stderr, "state-driver: generating %u users failed\n", users);
		goto out;
	}
	fprintf(stderr, "generated %u users in %.1f s\n", users, now_s() - t0);
	malloc_trim(0);
	size_t before = heap_bytes();
	char why[512];
	struct timespec c0, c1;
	t0 = now_s();
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	int r = store_open(&s, dir, t, NULL, why, sizeof(why));
	double dt = now_s() - t0;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	double cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	if (r != SV_OK) {
		fprintf(stderr, "state-driver: %s\n", why);
		ex = 1;
		goto out;
	}
	malloc_trim(0);
	struct store_stats st;
	store_get_stats(s, &st);
	if (st.users != users) {
		fprintf(stderr, "state-driver: reopened vault has %llu users, expected %u\n",
		        (unsigned long long)st.users, users);
		ex = 1;
		goto out;
	}
	printf("bytes/user: %.0f\n", (double)(heap_bytes() - before) / users);
	printf("startup-%uM-users: %.2f s\n", users / 1000000, dt);
	/* CPU seconds of both threads: what the start costs on a machine others do not share */
	printf("startup-%uM-users-cpu: %.2f s\n", users / 1000000, cpu);
	fflush(stdout);
	/* without a snapshot; while one is written on the snapshot thread; with --snapshot-sync
	 * also while one is written before the next commit, as before the thread (a baseline) */
	for (int round = 0; during_snapshot && round < (snapshot_sync ? 3 : 2); round++) {
		double snap_s = 0;
		int sync = round == 2, saved = snapshot_sync;
		snapshot_sync = sync;
		double p99 = paced_commits(s, round > 0, round == 0 ? 2.0 : 1.0, &snap_s);
		snapshot_sync = saved;
		if (p99 < 0) {
			fprintf(stderr, "state-driver: paced commits failed\n");
			ex = 1;
			goto out;
		}
		const char *how = sync ? "sync-" : "";
		if (round == 0) {
			printf("commit-p99-no-snapshot: %.1f ms\n", p99 * 1e3);
			continue;
		}
		printf("snapshot-%swrite-%uM-users: %.2f s\n", how, users / 1000000, snap_s);
		printf("commit-p99-during-%ssnapshot-%uM: %.1f ms\n", how, users / 1000000,
		       p99 * 1e3);
		fflush(stdout);
	}
out:
	store_close(s);
	tpm_close(t);
	return ex;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"tpm", required_argument, NULL, 't'},
	    {"seed", required_argument, NULL, 's'},
	    {"ops", required_argument, NULL, 'o'},
	    {"batch", required_argument, NULL, 'b'},
	    {"acked", required_argument, NULL, 'a'},
	    {"writers", required_argument, NULL, 'w'},
	    {"changes", required_argument, NULL, 'c'},
	    {"users", required_argument, NULL, 'u'},
	    {"user", required_argument, NULL, 'U'},
	    {"snapshot-every", required_argument, NULL, 'S'},
	    {"min-pos", required_argument, NULL, 'P'},
	    {"snapshot-chunk", required_argument, NULL, 'C'},
	    {"during-snapshot", no_argument, NULL, 'N'},
	    {"snapshot-async", no_argument, NULL, 'A'},
	    {"snapshot-sync", no_argument, NULL, 'Y'},
	    {NULL, 0, NULL, 0},
	};
	/* As the enclave does (enclave/main.c): tpm2-tss 3.2 makes an OpenSSL library context per
	 * hash, and filling each one's legacy name tables would dominate a TPM command's CPU. */
	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
	                            OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
	                        NULL) != 1)
		return 1;
	const char *dir = NULL, *tcti = NULL, *user = NULL;
	uint64_t ops = 1000, batch = 4;
	long long acked = -1;
	unsigned writers = 64, changes = 4096, users = 1000000;
	int c;
	if (argc < 2 || sodium_init() < 0) {
		fprintf(stderr, "usage: state-driver run|check|bench-commit|bench-startup ...\n");
		return 1;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 't': tcti = optarg; break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'o': ops = strtoull(optarg, NULL, 10); break;
		case 'b': batch = strtoull(optarg, NULL, 10); break;
		case 'a': acked = strtoll(optarg, NULL, 10); break;
		case 'w': writers = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'c': changes = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'u': users = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'U': user = optarg; break;
		case 'P': min_pos = strtoull(optarg, NULL, 10); break;
		case 'S': snapshot_every = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'C': chunk_bytes = (size_t)strtoull(optarg, NULL, 10); break;
		case 'N': during_snapshot = 1; break;
		case 'A': snapshot_async = 1; break;
		case 'Y': snapshot_sync = 1; break;
		default: return 1;
		}
	}
	if (dir == NULL || tcti == NULL || batch == 0 || writers == 0 || writers > NUSERS * 64 ||
	    users == 0) {
		fprintf(stderr, "state-driver: --state-dir and --tpm are required\n");
		return 1;
	}
	if (strcmp(argv[1], "run") == 0 || strcmp(argv[1], "check") == 0)
		return cmd_run(dir, tcti, ops, batch, acked, strcmp(argv[1], "run") == 0);
	if (strcmp(argv[1], "put") == 0 && user != NULL)
		return cmd_user(dir, tcti, user, USER_PUT);
	if (strcmp(argv[1], "lookup") == 0 && user != NULL)
		return cmd_user(dir, tcti, user, USER_LOOKUP);
	if (strcmp(argv[1], "charge") == 0 && user != NULL)
		return cmd_user(dir, tcti, user, USER_CHARGE);
	if (strcmp(argv[1], "bench-commit") == 0)
		return cmd_bench_commit(dir, tcti, writers, changes);
	if (strcmp(argv[1], "reseal-plain") == 0)
		return cmd_reseal_plain(dir, tcti);
	if (strcmp(argv[1], "bench-startup") == 0)
		return cmd_bench_startup(dir, tcti, users);
	fprintf(stderr, "state-driver: unknown command %s\n", argv[1]);
	return 1;
}
