#include "enclave/dispatch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/msg.h"
#include "enclave/audit.h"
#include "enclave/budget.h"
#include "enclave/drain.h"
#include "enclave/realm.h"
#include "enclave/store.h"
#include "enclave/tpm.h"
#include "enclave/vault.h"

struct dispatch;
typedef int (*handler_fn)(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                          struct sv_buf *reply);

static int handle_vault(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                        struct sv_buf *reply);
static int handle_realm(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                        struct sv_buf *reply);
static int handle_stats(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                        struct sv_buf *reply);
static int handle_health(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                         struct sv_buf *reply);
static int handle_attest(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                         struct sv_buf *reply);
static int handle_info(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                       struct sv_buf *reply);

/* Everything the broker may ask: the ROUTE rows of SV_MSG_TABLE (common/msgtable.h), each with
 * the handle_HANDLER its row names. Nothing else is answered. Expanding the table here, rather than
 * keeping a list of our own and checking it against the table at start, makes coverage a build
 * property: a new row whose handler does not exist does not compile, a handler no row names is an
 * unused static function (a warning, an error in CI), and no request can be left out. */
static const struct {
	uint16_t type;
	handler_fn fn;
} table[] = {
#define DISPATCH_ROUTE(name, num, method, path, ep, handler, flags)                                \
	{SV_MSG_##name, handle_##handler},
#define DISPATCH_FRAME(name, num, flags)
    SV_MSG_TABLE(DISPATCH_ROUTE, DISPATCH_FRAME)
#undef DISPATCH_ROUTE
#undef DISPATCH_FRAME
};

/* Commit latency histogram bounds, microseconds. */
static const uint64_t bounds_us[] = {250,   500,   1000,  2000,   5000,
                                     10000, 20000, 50000, 100000, 500000};
#define N_BOUNDS (sizeof(bounds_us) / sizeof(bounds_us[0]))

struct dispatch {
	struct vault *vault;
	struct store *store;
	struct realm_srv *realm; /* dispatch_set_realm, or NULL */
	uint64_t commit_buckets[N_BOUNDS];
	uint64_t commit_count, commit_sum_us, commit_requests;
	const struct budget *budget;
	unsigned budget_per_day;
	uint64_t requests;
	dispatch_attest_fn attest;
	void *attest_arg;
	struct tpm *tpm;
	uint64_t restarts, tpm_timeouts;
	int throttled;
	uint64_t throttled_since_us, throttled_us, throttled_replies;
	uint8_t *info; /* GET /v1/info's JSON (dispatch_set_info), or NULL */
	size_t info_len;
	struct drain *drain; /* the serve loop's (dispatch_set_drain), or NULL */
};

int dispatch_new(struct dispatch **out, struct vault *v, struct store *s)
{
	struct dispatch *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return SV_ERR_NOMEM;
	d->vault = v;
	d->store = s;
	*out = d;
	return SV_OK;
}

void dispatch_set_attest(struct dispatch *d, dispatch_attest_fn fn, void *arg)
{
	d->attest = fn;
	d->attest_arg = arg;
}

int dispatch_set_info(struct dispatch *d, const uint8_t *json, size_t len)
{
	uint8_t *copy = malloc(len > 0 ? len : 1);
	if (copy == NULL)
		return SV_ERR_NOMEM;
	if (len > 0)
		memcpy(copy, json, len);
	free(d->info);
	d->info = copy;
	d->info_len = len;
	return SV_OK;
}

void dispatch_free(struct dispatch *d)
{
	if (d != NULL)
		free(d->info);
	free(d);
}

int dispatch_permitted(uint16_t type)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].type == type)
			return 1;
	return 0;
}

void dispatch_set_realm(struct dispatch *d, struct realm_srv *r)
{
	d->realm = r;
}

void dispatch_set_drain(struct dispatch *d, struct drain *dr)
{
	d->drain = dr;
}

int dispatch_request(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                     struct sv_buf *reply)
{
	sv_buf_reset(reply);
	if (d->drain != NULL && dispatch_permitted(f->type) && drain_refuses(d->drain, f->type))
		return drain_refuse(d->drain, reply);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].type == f->type) {
			d->requests++;
			return table[i].fn(d, f, now_ms, reply);
		}
	return SV_ERR_PROTOCOL;
}

void dispatch_set_budget(struct dispatch *d, const struct budget *b, unsigned per_day)
{
	d->budget = b;
	d->budget_per_day = per_day;
}

void dispatch_note_commit(struct dispatch *d, uint64_t usec, size_t requests)
{
	d->commit_count++;
	d->commit_sum_us += usec;
	d->commit_requests += requests;
	for (size_t i = 0; i < N_BOUNDS; i++)
		if (usec <= bounds_us[i]) {
			d->commit_buckets[i]++;
			break;
		}
}

void dispatch_set_tpm(struct dispatch *d, struct tpm *t, uint64_t restarts, uint64_t tpm_timeouts)
{
	d->tpm = t;
	d->restarts = restarts;
	d->tpm_timeouts = tpm_timeouts;
}

void dispatch_set_throttled(struct dispatch *d, int on, uint64_t now_us)
{
	if (on && !d->throttled)
		d->throttled_since_us = now_us;
	else if (!on && d->throttled && now_us > d->throttled_since_us)
		d->throttled_us += now_us - d->throttled_since_us;
	d->throttled = on != 0;
}

void dispatch_note_throttled_replies(struct dispatch *d, size_t n)
{
	d->throttled_replies += n;
}

/* The access token in front of the body (common/msg.h): 0 with tok and body set, or 1 with the
 * 400 for a frame too short for its prefix (a malformed request, answered like any other) in
 * reply, or a negative error. */
static int split_token(const struct sv_frame *f, const uint8_t **tok, size_t *tok_len,
                       const uint8_t **body, size_t *body_len, struct sv_buf *reply)
{
	*tok = NULL;
	*tok_len = 0;
	*body = f->payload;
	*body_len = f->len;
	if ((msg_flags(f->type) & MSG_F_TOKEN) &&
	    msg_token_split(f->payload, f->len, tok, tok_len, body, body_len) != 0) {
		static const char msg[] = "request: the access token's length prefix is malformed";
		int r = sv_buf_put_u8(reply, SV_STATUS_BAD_REQUEST);
		r = r == 0 ? sv_buf_put(reply, msg, sizeof(msg) - 1) : r;
		return r == 0 ? 1 : r;
	}
	return 0;
}

static int handle_vault(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                        struct sv_buf *reply)
{
	const uint8_t *tok, *body;
	size_t tok_len, body_len;
	int r = split_token(f, &tok, &tok_len, &body, &body_len, reply);
	if (r != 0)
		return r < 0 ? r : SV_OK;
	r = vault_handle_token(d->vault, f->type, tok, tok_len, body, body_len, now_ms, reply);
	if (r != 0)
		return r;
	/* vault_handle promises a status byte; an empty reply would be a bug, not a client error */
	return reply->len >= 1 ? SV_OK : SV_ERR_INTERNAL;
}

static int handle_realm(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                        struct sv_buf *reply)
{
	const uint8_t *tok, *body;
	size_t tok_len, body_len;
	if (d->realm == NULL) {
		static const char msg[] = "threshold realms are not set up in this enclave";
		int r = sv_buf_put_u8(reply, SV_STATUS_INTERNAL);
		return r == 0 ? sv_buf_put(reply, msg, sizeof(msg) - 1) : r;
	}
	int r = split_token(f, &tok, &tok_len, &body, &body_len, reply);
	if (r != 0)
		return r < 0 ? r : SV_OK;
	r = realm_srv_handle(d->realm, f->type, tok, tok_len, body, body_len, now_ms, reply);
	if (r != 0)
		return r;
	return reply->len >= 1 ? SV_OK : SV_ERR_INTERNAL;
}

static int handle_attest(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                         struct sv_buf *reply)
{
	if (d->attest == NULL) {
		static const char msg[] = "attestation is not set up in this enclave";
		int r = sv_buf_put_u8(reply, SV_STATUS_INTERNAL);
		return r == 0 ? sv_buf_put(reply, msg, sizeof(msg) - 1) : r;
	}
	int r = d->attest(d->attest_arg, f->type, f->payload, f->len, reply);
	if (r != 0)
		return r;
	return reply->len >= 1 ? SV_OK : SV_ERR_INTERNAL;
}

static int handle_info(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                       struct sv_buf *reply)
{
	if (f->len != 0)
		return sv_buf_put_u8(reply, SV_STATUS_BAD_REQUEST);
	if (d->info == NULL) {
		static const char msg[] = "the vault information is not set up in this enclave";
		int r = sv_buf_put_u8(reply, SV_STATUS_INTERNAL);
		return r == 0 ? sv_buf_put(reply, msg, sizeof(msg) - 1) : r;
	}
	int r = sv_buf_put_u8(reply, SV_STATUS_OK);
	return r == 0 ? sv_buf_put(reply, d->info, d->info_len) : r;
}

static int handle_health(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                         struct sv_buf *reply)
{
	if (f->len != 0)
		return sv_buf_put_u8(reply, SV_STATUS_BAD_REQUEST);
	/* unhealthy while commits wait for a throttling TPM, and while stopping: a balancer sends
	 * clients elsewhere */
	int stopping = d->drain != NULL && d->drain->on;
	return sv_buf_put_u8(reply, d->throttled || stopping ? SV_STATUS_BUSY : SV_STATUS_OK);
}

static int put_text(struct sv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int put_text(struct sv_buf *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return SV_ERR_RANGE;
	return sv_buf_put(b, line, (size_t)n);
}

static int handle_stats(struct dispatch *d, const struct sv_frame *f, uint64_t now_ms,
                        struct sv_buf *reply)
{
	if (f->len != 0)
		return sv_buf_put_u8(reply, SV_STATUS_BAD_REQUEST);
	struct store_stats st;
	store_get_stats(d->store, &st);
	int r = sv_buf_put_u8(reply, SV_STATUS_OK);
	if (r == 0)
		r = vault_metrics(d->vault, reply);
	if (r == 0 && d->realm != NULL)
		r = realm_srv_metrics(d->realm, reply);
#define P(...)                                                                                     \
	do {                                                                                       \
		if (r == 0)                                                                        \
			r = put_text(reply, __VA_ARGS__);                                          \
	} while (0)
	P("# HELP sealvault_enclave_requests_total Requests the enclave answered.\n"
	  "# TYPE sealvault_enclave_requests_total counter\n"
	  "sealvault_enclave_requests_total %llu\n",
	  (unsigned long long)d->requests);
	P("# HELP sealvault_nv_writes_total TPM NV writes caused by this vault since init.\n"
	  "# TYPE sealvault_nv_writes_total counter\nsealvault_nv_writes_total %llu\n",
	  (unsigned long long)st.nv_writes);
	P("# HELP sealvault_tpm_counter The TPM NV counter value.\n"
	  "# TYPE sealvault_tpm_counter gauge\nsealvault_tpm_counter %llu\n",
	  (unsigned long long)st.counter);
	P("# HELP sealvault_commits_total Durable commits since start.\n"
	  "# TYPE sealvault_commits_total counter\nsealvault_commits_total %llu\n",
	  (unsigned long long)st.commits);
	P("# HELP sealvault_flushes_total Journal flushes since start: batches of guess resets "
	  "only, fsynced without an NV write.\n"
	  "# TYPE sealvault_flushes_total counter\nsealvault_flushes_total %llu\n",
	  (unsigned long long)st.flushes);
	P("# HELP sealvault_changes_total State changes committed since start.\n"
	  "# TYPE sealvault_changes_total counter\nsealvault_changes_total %llu\n",
	  (unsigned long long)st.changes);
	P("# HELP sealvault_users Active records.\n# TYPE sealvault_users gauge\n"
	  "sealvault_users %llu\n",
	  (unsigned long long)st.users);
	P("# HELP sealvault_users_destroyed Records destroyed at their guess limit (tombstones).\n"
	  "# TYPE sealvault_users_destroyed gauge\nsealvault_users_destroyed %llu\n",
	  (unsigned long long)st.destroyed);
	P("# HELP sealvault_commit_duration_seconds Group commit latency: journal append, fsync, "
	  "NV increment.\n# TYPE sealvault_commit_duration_seconds histogram\n");
	uint64_t cum = 0;
	for (size_t i = 0; i < N_BOUNDS; i++) {
		cum += d->commit_buckets[i];
		P("sealvault_commit_duration_seconds_bucket{le=\"%g\"} %llu\n",
		  (double)bounds_us[i] / 1e6, (unsigned long long)cum);
	}
	P("sealvault_commit_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	  "sealvault_commit_duration_seconds_sum %.6f\n"
	  "sealvault_commit_duration_seconds_count %llu\n",
	  (unsigned long long)d->commit_count, (double)d->commit_sum_us / 1e6,
	  (unsigned long long)d->commit_count);
	P("# HELP sealvault_commit_requests_total Requests answered after a durable commit.\n"
	  "# TYPE sealvault_commit_requests_total counter\nsealvault_commit_requests_total %llu\n",
	  (unsigned long long)d->commit_requests);
	P("# HELP sealvault_nv_increments_total NV counter increments of commits since start "
	  "(hybrid: a forced flush pads to the next NV write).\n"
	  "# TYPE sealvault_nv_increments_total counter\nsealvault_nv_increments_total %llu\n",
	  (unsigned long long)st.increments);
	P("# HELP sealvault_forced_flushes_total Commits that had to reach NV before their answers "
	  "(hybrid: registrations, deletions, second guesses).\n"
	  "# TYPE sealvault_forced_flushes_total counter\nsealvault_forced_flushes_total %llu\n",
	  (unsigned long long)st.forced_flushes);
	P("# HELP sealvault_power_cut_penalties_total Power cuts charged to every user since "
	  "init.\n# TYPE sealvault_power_cut_penalties_total counter\n"
	  "sealvault_power_cut_penalties_total %llu\n",
	  (unsigned long long)st.penalties);
	if (d->budget != NULL) {
		const struct budget *b = d->budget;
		double life = d->budget_per_day > 0 ? 1.0 / d->budget_per_day / 365.0 : 0.0;
		P("# HELP sealvault_nv_budget_writes_per_day The NV-write budget (0: unlimited).\n"
		  "# TYPE sealvault_nv_budget_writes_per_day gauge\n"
		  "sealvault_nv_budget_writes_per_day %u\n",
		  d->budget_per_day);
		P("# HELP sealvault_nv_budget_tokens NV writes the budget allows right now.\n"
		  "# TYPE sealvault_nv_budget_tokens gauge\nsealvault_nv_budget_tokens %.3f\n",
		  b->level);
		P("# HELP sealvault_nv_budget_spent_total NV writes charged to the budget since "
		  "start.\n# TYPE sealvault_nv_budget_spent_total counter\n"
		  "sealvault_nv_budget_spent_total %.3f\n",
		  b->spent);
		P("# HELP sealvault_commit_spacing_seconds_total Time commits waited for the "
		  "NV-write budget.\n# TYPE sealvault_commit_spacing_seconds_total counter\n"
		  "sealvault_commit_spacing_seconds_total %.6f\n",
		  (double)b->waited_us / 1e6);
		P("# HELP sealvault_commit_spacings_total Commits that waited for the budget.\n"
		  "# TYPE sealvault_commit_spacings_total counter\n"
		  "sealvault_commit_spacings_total %llu\n",
		  (unsigned long long)b->waits);
		P("# HELP sealvault_projected_tpm_life_years Years of NV endurance left at the "
		  "full "
		  "budget (0: unlimited budget, no projection).\n"
		  "# TYPE sealvault_projected_tpm_life_years gauge\n"
		  "sealvault_projected_tpm_life_years{endurance=\"1e5\"} %.1f\n"
		  "sealvault_projected_tpm_life_years{endurance=\"5e5\"} %.1f\n",
		  st.nv_writes >= 100000 ? 0.0 : (100000.0 - (double)st.nv_writes) * life,
		  st.nv_writes >= 500000 ? 0.0 : (500000.0 - (double)st.nv_writes) * life);
	}
	struct tpm_stats ts = {0};
	if (d->tpm != NULL)
		tpm_get_stats(d->tpm, &ts);
	uint64_t throttled_us = d->throttled_us;
	if (d->throttled && now_ms * 1000 > d->throttled_since_us)
		throttled_us += now_ms * 1000 - d->throttled_since_us;
	P("# HELP sealvault_tpm_retries_total TPM commands answered NV_RATE, RETRY, YIELDED, "
	  "NV_UNAVAILABLE or TESTING and retried.\n"
	  "# TYPE sealvault_tpm_retries_total counter\nsealvault_tpm_retries_total %llu\n",
	  (unsigned long long)ts.retries);
	P("# HELP sealvault_tpm_backoff_seconds_total Time spent waiting between those retries.\n"
	  "# TYPE sealvault_tpm_backoff_seconds_total counter\n"
	  "sealvault_tpm_backoff_seconds_total %.3f\n",
	  (double)ts.backoff_ns / 1e9);
	P("# HELP sealvault_tpm_retry_budget_exhausted_total TPM commands still refused with a "
	  "transient code after the whole retry budget.\n"
	  "# TYPE sealvault_tpm_retry_budget_exhausted_total counter\n"
	  "sealvault_tpm_retry_budget_exhausted_total %llu\n",
	  (unsigned long long)ts.gave_up);
	P("# HELP sealvault_tpm_throttled 1 while a commit waits for the TPM to accept its NV "
	  "increment (requests that change state are answered 503).\n"
	  "# TYPE sealvault_tpm_throttled gauge\nsealvault_tpm_throttled %d\n",
	  d->throttled);
	P("# HELP sealvault_tpm_throttled_seconds_total Time spent with sealvault_tpm_throttled "
	  "1.\n"
	  "# TYPE sealvault_tpm_throttled_seconds_total counter\n"
	  "sealvault_tpm_throttled_seconds_total %.3f\n",
	  (double)throttled_us / 1e6);
	P("# HELP sealvault_tpm_throttled_replies_total Requests answered 503 because the TPM "
	  "throttled NV writes.\n"
	  "# TYPE sealvault_tpm_throttled_replies_total counter\n"
	  "sealvault_tpm_throttled_replies_total %llu\n",
	  (unsigned long long)d->throttled_replies);
	P("# HELP sealvault_tpm_nv_write_recovery_seconds TPM_PT_NV_WRITE_RECOVERY as the TPM "
	  "reported it at start (0: not reported).\n"
	  "# TYPE sealvault_tpm_nv_write_recovery_seconds gauge\n"
	  "sealvault_tpm_nv_write_recovery_seconds %.3f\n",
	  (double)ts.nv_write_recovery_ms / 1e3);
	P("# HELP sealvault_tpm_timeouts_total TPM commands that got no answer within tpm-timeout "
	  "(each one restarted the enclave), counted by sealvaultd since it started.\n"
	  "# TYPE sealvault_tpm_timeouts_total counter\nsealvault_tpm_timeouts_total %llu\n",
	  (unsigned long long)d->tpm_timeouts);
	P("# HELP sealvault_enclave_restarts_total Restarts of the enclave and broker by "
	  "sealvaultd "
	  "since it started.\n"
	  "# TYPE sealvault_enclave_restarts_total counter\n"
	  "sealvault_enclave_restarts_total %llu\n",
	  (unsigned long long)d->restarts);
	uint64_t sent, waits, waited_us;
	audit_stats(&sent, &waits, &waited_us);
	P("# HELP sealvault_audit_records_total Audit records this enclave sent to sealvaultd.\n"
	  "# TYPE sealvault_audit_records_total counter\nsealvault_audit_records_total %llu\n"
	  "# HELP sealvault_audit_waits_total Audit records that waited for sealvaultd to read "
	  "(the vault waits rather than drop one).\n"
	  "# TYPE sealvault_audit_waits_total counter\nsealvault_audit_waits_total %llu\n"
	  "# HELP sealvault_audit_wait_seconds_total Time spent so.\n"
	  "# TYPE sealvault_audit_wait_seconds_total counter\n"
	  "sealvault_audit_wait_seconds_total %.3f\n",
	  (unsigned long long)sent, (unsigned long long)waits, (double)waited_us / 1e6);
#undef P
	if (r != 0) {
		/* the text did not fit a frame: say so rather than send half of it */
		sv_buf_reset(reply);
		return sv_buf_put_u8(reply, SV_STATUS_INTERNAL);
	}
	return SV_OK;
}
