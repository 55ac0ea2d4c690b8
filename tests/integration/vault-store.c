/*
 * vault-store: the vault's semantics on the real durable store and a real TPM (swtpm), restarting
 * vault + store between steps (close, then open again from the state directory, as the enclave
 * does at start). Driven by tests/integration/vault-store.sh on a vault made by
 * `sealvault-admin init`. Every step prints "ok: ..." or stops with "FAIL: ..." and exit 1.
 *
 * It checks what only the real store can show: a charged guess is durable before KE2 leaves; a
 * no-op journal record (unknown identifier) replays; a last-guess login that restarts leaves the
 * record destroyed; a tombstone can be registered again and written back; deletion is durable.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static const struct ksf_params KSF = { KSF_IDENTITY, 0, 0 };
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
	struct vault_config cfg = { CONTEXT, sizeof(CONTEXT) - 1, &P };
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
	struct opaque_params pp = { CONTEXT, sizeof(CONTEXT) - 1, NULL, 0, NULL, 0 };
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
	struct opaque_params pp = { CONTEXT, sizeof(CONTEXT) - 1, NULL, 0, NULL, 0 };
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
		      crypto_aead_xchacha20poly1305_ietf_decrypt(out, &n, NULL, R.data + 25,
								 R.len - 25, L->sid, 16,
								 R.data + 1, key) == 0,
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

int main(int argc, char **argv)
{
	char why[256] = "";
	struct login L;
	struct store_user_view u;
	struct store_stats st;
	int found;

	if (argc != 3) {
		fprintf(stderr, "usage: vault-store STATE_DIR TCTI\n");
		return 2;
	}
	dir = argv[1];
	CHECK(sodium_init() >= 0, "sodium_init");
	CHECK(tpm_open(&tpm, argv[2], why, sizeof(why)) == 0, "tpm_open: %s", why);
	policy_vault_defaults(&P);
	CHECK(sv_buf_init(&R, 4096) == 0, "buffer");
	vault_up();

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
