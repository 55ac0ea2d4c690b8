/*
 * vault-store: the vault's semantics on the real durable store and a real TPM (swtpm), restarting
 * vault + store between steps (close, then open again from the state directory, as the enclave
 * does at start). Driven by tests/integration/vault-store.sh on a vault made by
 * `sealvault-admin init`. Every step prints "ok: ..." or stops with "FAIL: ..." and exit 1.
 *
 * It checks what only the real store can show: a charged guess is durable before KE2 leaves; a
 * no-op journal record (unknown identifier) replays; a last-guess login that restarts leaves the
 * record destroyed; a tombstone can be registered again and written back; deletion is durable.
 *
 * With a third argument `bench` it instead measures (for `make bench`) the time login/start takes
 * for a registered identifier, an unknown one and a registered one on its last guess: the handler
 * alone, and the handler plus the durable commit every reply waits for.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/msg.h"
#include "crypto/hkdf.h"
#include "crypto/opaque.h"
#include "enclave/store.h"
#include "enclave/tpm.h"
#include "enclave/vault.h"
#include "enclave/vaultreq.h"
#include "policy/vault.h"

static const char *dir;
static struct tpm *tpm;
static struct store *S;
static struct vault *V;
static struct sv_vault_policy P;
static struct sv_buf R;
static uint64_t NOW = 1000;
static const struct ksf_params KSF = {KSF_IDENTITY, 0, 0};
static const uint8_t CONTEXT[] = "sealvault vault-store test";

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL: ", stdout);
	vprintf(fmt, ap);
	fputs("\n", stdout);
	va_end(ap);
	exit(1);
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail(__VA_ARGS__);                                                         \
	} while (0)

static void vault_up(void)
{
	char why[256] = "";
	int r = store_open(&S, dir, tpm, &P, why, sizeof(why));
	CHECK(r == 0, "store_open: %s (%s)", why, sv_strerror(r));
	struct vault_config cfg = {CONTEXT, sizeof(CONTEXT) - 1, &P, NULL, 0, NULL};
	CHECK(vault_new(&V, S, &cfg) == 0, "vault_new");
}

/* A restart: everything in memory (pending logins, phantom counters) is gone. */
static void restart(void)
{
	vault_free(V);
	store_close(S);
	V = NULL;
	S = NULL;
	vault_up();
}

/* One request, then the serve loop's commit, then the reply is "sent". Returns the status. */
static uint8_t call(uint16_t type, const uint8_t *b, size_t n)
{
	CHECK(vault_handle(V, type, b, n, NOW, &R) == 0 && R.len >= 1, "vault_handle type %u",
	      type);
	CHECK(store_commit(S) == 0, "store_commit");
	CHECK(store_pending(S) == 0, "changes left after commit");
	return R.data[0];
}

static size_t put_id(uint8_t *b, const char *id)
{
	size_t n = strlen(id);
	b[0] = 0;
	b[1] = (uint8_t)n;
	memcpy(b + 2, id, n);
	return 2 + n;
}

static uint8_t do_register(const char *id, const char *pw, uint8_t limit, const char *blob)
{
	struct opaque_client_state st;
	struct opaque_params pp = {CONTEXT, sizeof(CONTEXT) - 1, NULL, 0, NULL, 0};
	uint8_t req[32], rec[OPAQUE_RECORD_LEN], ek[64], b[1024];
	size_t n = 0, bl = strlen(blob);

	CHECK(opaque_client_registration_request(req, &st, (const uint8_t *)pw, strlen(pw)) == 0,
	      "registration request");
	b[n++] = 1;
	n += put_id(b + n, id);
	memcpy(b + n, req, 32);
	uint8_t status = call(SV_MSG_REGISTER_START, b, n + 32);
	if (status != SV_STATUS_OK)
		return status;
	CHECK(opaque_client_registration_finalize(rec, ek, &st, (const uint8_t *)pw, strlen(pw),
	                                          R.data + 1, &pp, &KSF) == 0,
	      "registration finalize");
	n = 0;
	b[n++] = 1;
	n += put_id(b + n, id);
	memcpy(b + n, rec, sizeof(rec));
	n += sizeof(rec);
	b[n++] = limit;
	b[n++] = 0;
	b[n++] = (uint8_t)bl;
	memcpy(b + n, blob, bl);
	return call(SV_MSG_REGISTER_FINISH, b, n + bl);
}

struct login {
	uint8_t sid[16], ke3[64], session_key[64], left;
	int authed;
};

static uint8_t do_login(const char *id, const char *pw, struct login *L)
{
	struct opaque_client_state st;
	struct opaque_params pp = {CONTEXT, sizeof(CONTEXT) - 1, NULL, 0, NULL, 0};
	uint8_t ke1[96], b[512], ek[64];
	size_t n = 0;

	memset(L, 0, sizeof(*L));
	CHECK(opaque_client_ke1(ke1, &st, (const uint8_t *)pw, strlen(pw)) == 0, "ke1");
	b[n++] = 1;
	n += put_id(b + n, id);
	memcpy(b + n, ke1, 96);
	uint8_t status = call(SV_MSG_LOGIN_START, b, n + 96);
	if (status != SV_STATUS_OK) {
		opaque_client_state_wipe(&st);
		return status;
	}
	CHECK(R.len == 1 + 16 + OPAQUE_KE2_LEN + 1, "login/start reply length %zu", R.len);
	memcpy(L->sid, R.data + 1, 16);
	L->left = R.data[R.len - 1];
	int r = opaque_client_ke3(L->ke3, L->session_key, ek, NULL, &st, (const uint8_t *)pw,
	                          strlen(pw), R.data + 1 + 16, &pp, &KSF);
	L->authed = r == 0;
	if (!L->authed) {
		randombytes_buf(L->ke3, sizeof(L->ke3));
		randombytes_buf(L->session_key, sizeof(L->session_key));
	}
	return status;
}

static uint8_t do_finish(const struct login *L, uint8_t op)
{
	uint8_t b[256], key[64], macced[17];
	size_t n = 0;
	b[n++] = 1;
	memcpy(b + n, L->sid, 16);
	n += 16;
	memcpy(b + n, L->ke3, 64);
	n += 64;
	b[n++] = op;
	memcpy(macced, L->sid, 16);
	macced[16] = op;
	CHECK(hkdf_sha512_expand(key, 64, L->session_key, 64, (const uint8_t *)"sealvault op mac",
	                         16, NULL, 0) == 0,
	      "mac key");
	hkdf_hmac_sha512(b + n, key, 64, macced, sizeof(macced), NULL, 0);
	return call(SV_MSG_LOGIN_FINISH, b, n + 64);
}

static void recovered(const struct login *L, const char *blob)
{
	uint8_t key[32], out[STORE_BLOB_MAX];
	unsigned long long n;
	CHECK(hkdf_sha512_expand(key, 32, L->session_key, 64,
	                         (const uint8_t *)"sealvault recover seal", 22, NULL, 0) == 0,
	      "seal key");
	CHECK(R.len > 1 + 24 + 16 &&
	          crypto_aead_xchacha20poly1305_ietf_decrypt(out, &n, NULL, R.data + 25, R.len - 25,
	                                                     L->sid, 16, R.data + 1, key) == 0,
	      "recover reply does not open");
	CHECK(n == strlen(blob) && memcmp(out, blob, n) == 0, "recovered blob differs");
}

static struct store_user_view look(const char *id, int *found)
{
	struct store_user_view u;
	memset(&u, 0, sizeof(u));
	int r = store_lookup(S, (const uint8_t *)id, strlen(id), &u);
	CHECK(r == 0 || r == SV_ERR_NOTFOUND, "store_lookup: %s", sv_strerror(r));
	*found = r == 0;
	return u;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double q)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return (double)v[(size_t)(q * (double)(n - 1))] / 1000.0;
}

#define BENCH_N 200

/* login/start for id; returns the handler time, and in *total handler + commit (ns). */
static uint64_t timed_login(const char *id, uint64_t *total, uint8_t expect_left, int check_left)
{
	struct opaque_client_state st;
	uint8_t ke1[96], b[512];
	size_t n = 0;
	CHECK(opaque_client_ke1(ke1, &st, (const uint8_t *)"pw", 2) == 0, "ke1");
	opaque_client_state_wipe(&st);
	b[n++] = 1;
	n += put_id(b + n, id);
	memcpy(b + n, ke1, 96);
	uint64_t t0 = now_ns();
	CHECK(vault_handle(V, SV_MSG_LOGIN_START, b, n + 96, NOW, &R) == 0, "vault_handle");
	uint64_t t1 = now_ns();
	CHECK(store_commit(S) == 0, "store_commit");
	uint64_t t2 = now_ns();
	CHECK(R.len == 1 + 16 + OPAQUE_KE2_LEN + 1 && R.data[0] == SV_STATUS_OK,
	      "bench login/start for %s: status %u", id, R.data[0]);
	CHECK(!check_left || R.data[R.len - 1] == expect_left, "attempts left %u for %s",
	      R.data[R.len - 1], id);
	*total = t2 - t0;
	return t1 - t0;
}

static int bench(void)
{
	static uint64_t h[3][BENCH_N], t[3][BENCH_N];
	static const char *what[3] = {"known", "unknown", "last-guess"};
	char id[32];

	for (int i = 0; i < BENCH_N; i++) {
		snprintf(id, sizeof(id), "k%d", i);
		CHECK(do_register(id, "pw", 10, "blob") == SV_STATUS_OK, "register %s", id);
		snprintf(id, sizeof(id), "l%d", i);
		CHECK(do_register(id, "pw", 1, "blob") == SV_STATUS_OK, "register %s", id);
	}
	/* interleaved, in a rotating order, so that drift of the machine or the TPM and the
	 * position after another kind of request hit all three alike */
	static const char prefix[3] = {'k', 'u', 'l'};
	for (int i = 0; i < BENCH_N; i++) {
		for (int j = 0; j < 3; j++) {
			int k = (i + j) % 3;
			snprintf(id, sizeof(id), "%c%d", prefix[k], i);
			h[k][i] = timed_login(id, &t[k][i], k == 2 ? 0 : 9, 1);
		}
	}
	double hm[3], tm[3];
	for (int k = 0; k < 3; k++) {
		hm[k] = pct(h[k], BENCH_N, 0.5);
		tm[k] = pct(t[k], BENCH_N, 0.5);
		printf("vault-login-start-%s-handler-p50: %.1f us\n", what[k], hm[k]);
		printf("vault-login-start-%s-handler-p90: %.1f us\n", what[k],
		       pct(h[k], BENCH_N, 0.9));
		printf("vault-login-start-%s-with-commit-p50: %.1f us\n", what[k], tm[k]);
		printf("vault-login-start-%s-with-commit-p90: %.1f us\n", what[k],
		       pct(t[k], BENCH_N, 0.9));
	}
	printf("vault-handler-unknown/known: %.3f\n", hm[1] / hm[0]);
	printf("vault-handler-last-guess/known: %.3f\n", hm[2] / hm[0]);
	printf("vault-with-commit-unknown/known: %.3f\n", tm[1] / tm[0]);
	printf("vault-with-commit-last-guess/known: %.3f\n", tm[2] / tm[0]);
	return 0;
}

int main(int argc, char **argv)
{
	char why[256] = "";
	struct login L;
	struct store_user_view u;
	struct store_stats st;
	int found;

	if (argc != 3 && !(argc == 4 && strcmp(argv[3], "bench") == 0)) {
		fprintf(stderr, "usage: vault-store STATE_DIR TCTI [bench]\n");
		return 2;
	}
	dir = argv[1];
	CHECK(sodium_init() >= 0, "sodium_init");
	CHECK(tpm_open(&tpm, argv[2], why, sizeof(why)) == 0, "tpm_open: %s", why);
	policy_vault_defaults(&P);
	P.login_rate_per_id = 0; /* logins here come faster than any per-identifier rate */
	CHECK(sv_buf_init(&R, 4096) == 0, "buffer");
	vault_up();
	if (argc == 4)
		return bench();

	CHECK(do_register("alice", "right", 3, "alice's sealed key") == SV_STATUS_OK, "register");
	restart();
	u = look("alice", &found);
	CHECK(found && !u.destroyed && u.guess_limit == 3, "registration not durable");
	CHECK(do_register("alice", "other", 3, "x") == SV_STATUS_CONFLICT, "re-register active");
	printf("ok: registration is durable; an active identifier gets 409\n");

	store_get_stats(S, &st);
	uint64_t counter = st.counter;
	CHECK(do_login("nobody", "pw", &L) == SV_STATUS_OK && !L.authed &&
	          L.left == P.default_guess_limit - 1,
	      "unknown identifier login/start");
	store_get_stats(S, &st);
	CHECK(st.counter == counter + 1, "unknown identifier did not commit (counter %llu -> %llu)",
	      (unsigned long long)counter, (unsigned long long)st.counter);
	restart();
	look("nobody", &found);
	CHECK(!found, "the no-op created a user");
	printf("ok: unknown identifier: fake KE2 through one NV increment; the no-op replays\n");

	for (int i = 0; i < 2; i++) {
		CHECK(do_login("alice", "wrong", &L) == SV_STATUS_OK && L.left == 2 - i,
		      "wrong guess %d", i);
		restart(); /* no login/finish: a missing KE3 stays charged */
		u = look("alice", &found);
		CHECK(found && u.guesses_used == (unsigned)i + 1, "guess %d not durable", i);
	}
	CHECK(do_login("alice", "right", &L) == SV_STATUS_OK && L.authed && L.left == 0,
	      "last guess");
	restart(); /* the last-guess login dies with the enclave */
	u = look("alice", &found);
	CHECK(found && u.destroyed && u.record == NULL, "last guess + restart: not destroyed");
	CHECK(do_login("alice", "right", &L) == SV_STATUS_LOCKED, "destroyed: not 410");
	printf("ok: charges are durable before KE2; a last guess cut by a restart destroys\n");

	CHECK(do_register("alice", "new", 1, "alice's new sealed key") == SV_STATUS_OK,
	      "register a tombstone again");
	restart();
	CHECK(do_login("alice", "new", &L) == SV_STATUS_OK && L.authed && L.left == 0,
	      "login after re-registration");
	u = look("alice", &found);
	CHECK(u.destroyed, "last guess (limit 1) did not destroy at the charge");
	CHECK(do_finish(&L, VAULTREQ_OP_RECOVER) == SV_STATUS_OK, "last guess recover");
	recovered(&L, "alice's new sealed key");
	restart();
	u = look("alice", &found);
	CHECK(found && !u.destroyed && u.guesses_used == 0, "written-back record not durable");
	printf("ok: a tombstone can be registered again; a successful last guess writes back\n");

	CHECK(do_login("alice", "new", &L) == SV_STATUS_OK && L.authed, "login for delete");
	CHECK(do_finish(&L, VAULTREQ_OP_DELETE) == SV_STATUS_OK, "delete");
	restart();
	look("alice", &found);
	CHECK(!found, "deletion not durable");
	printf("ok: deletion is durable\n");

	vault_free(V);
	store_close(S);
	tpm_close(tpm);
	sv_buf_free(&R);
	printf("vault-store: all steps passed\n");
	return 0;
}
