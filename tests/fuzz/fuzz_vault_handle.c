/*
 * libFuzzer target: whole request handling (enclave/vault.c: sessions, phantom counters, guess
 * accounting, op MACs) on the in-memory fake store (tests/lib/fake_store.h), driven by a script
 * of requests the input spells out. Besides raw bodies of every type, the script can make real
 * logins (a real OPAQUE client), finish them with a correct KE3 and MAC, replay, tamper, and let
 * time pass, so the fuzzer reaches the authenticated paths too.
 *
 * Invariants: vault_handle never fails, every reply is a known status byte; a user's guesses used
 * never exceed its limit; and every 64 inputs a fresh registration, login and recovery work (the
 * next good request works, whatever came before).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/msg.h"
#include "crypto/hkdf.h"
#include "crypto/opaque.h"
#include "enclave/vault.h"
#include "enclave/vaultreq.h"
#include "policy/vault.h"
#include "tests/lib/fake_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct store S;
static struct sv_vault_policy P;
static struct vault *V;
static struct sv_buf R;
static uint64_t now_ms = 1000;
static const struct ksf_params KSF = {KSF_IDENTITY, 0, 0};
static const struct opaque_params PP = {NULL, 0, NULL, 0, NULL, 0};
static const char FZ[] = "fz"; /* a user the script logs in as, with the right password */

/* A real login of FZ: what a correct login/finish needs. */
static struct {
	int have;
	uint8_t sid[16], ke3[64], session_key[64];
} live;

static void die(const char *what)
{
	fprintf(stderr, "fuzz_vault_handle: %s\n", what);
	abort();
}

static uint8_t call(uint16_t type, const uint8_t *b, size_t n)
{
	if (vault_handle(V, type, b, n, now_ms, &R) != 0 || R.len < 1 ||
	    R.data[0] > SV_STATUS_INTERNAL || R.data[0] == SV_STATUS_INTERNAL)
		die("vault_handle failed or gave no valid status");
	if (store_commit(&S) != 0)
		die("commit");
	for (int i = 0; i < FAKE_USERS; i++)
		if (S.u[i].live && S.u[i].used > S.u[i].limit)
			die("guesses used above the limit");
	return R.data[0];
}

static size_t put_id(uint8_t *b, const char *id, size_t n)
{
	b[0] = 0;
	b[1] = (uint8_t)n;
	memcpy(b + 2, id, n);
	return 2 + n;
}

static uint8_t do_register(const char *id, size_t id_len, uint8_t limit)
{
	struct opaque_client_state st;
	uint8_t req[32], rec[OPAQUE_RECORD_LEN], ek[64], b[600];
	size_t n = 0;
	if (opaque_client_registration_request(req, &st, (const uint8_t *)"pw", 2) != 0)
		die("registration request");
	b[n++] = 1;
	n += put_id(b + n, id, id_len);
	memcpy(b + n, req, 32);
	uint8_t status = call(SV_MSG_REGISTER_START, b, n + 32);
	if (status != SV_STATUS_OK)
		return status;
	if (opaque_client_registration_finalize(rec, ek, &st, (const uint8_t *)"pw", 2, R.data + 1,
	                                        &PP, &KSF) != 0)
		die("registration finalize");
	n = 0;
	b[n++] = 1;
	n += put_id(b + n, id, id_len);
	memcpy(b + n, rec, sizeof(rec));
	n += sizeof(rec);
	b[n++] = limit;
	b[n++] = 0;
	b[n++] = 4;
	memcpy(b + n, "blob", 4);
	return call(SV_MSG_REGISTER_FINISH, b, n + 4);
}

/* login/start with the right password; fills live when the client accepts KE2. */
static uint8_t do_login(const char *id, size_t id_len)
{
	struct opaque_client_state st;
	uint8_t ke1[96], b[512], ek[64];
	size_t n = 0;
	live.have = 0;
	if (opaque_client_ke1(ke1, &st, (const uint8_t *)"pw", 2) != 0)
		die("ke1");
	b[n++] = 1;
	n += put_id(b + n, id, id_len);
	memcpy(b + n, ke1, 96);
	uint8_t status = call(SV_MSG_LOGIN_START, b, n + 96);
	if (status != SV_STATUS_OK) {
		opaque_client_state_wipe(&st);
		return status;
	}
	memcpy(live.sid, R.data + 1, 16);
	live.have = opaque_client_ke3(live.ke3, live.session_key, ek, NULL, &st,
	                              (const uint8_t *)"pw", 2, R.data + 17, &PP, &KSF) == 0;
	return status;
}

static void mac(uint8_t out[64], const uint8_t *msg, size_t len)
{
	uint8_t key[64];
	if (hkdf_sha512_expand(key, 64, live.session_key, 64, (const uint8_t *)"sealvault op mac",
	                       16, NULL, 0) != 0)
		die("mac key");
	hkdf_hmac_sha512(out, key, 64, msg, len, NULL, 0);
}

/* login/finish on the live login with a correct KE3 and MAC for op. */
static uint8_t do_finish(uint8_t op)
{
	struct opaque_client_state st;
	uint8_t b[256], macced[49];
	size_t n = 0, pl = op == VAULTREQ_OP_CHANGE ? 32 : 0;
	b[n++] = 1;
	memcpy(b + n, live.sid, 16);
	n += 16;
	memcpy(b + n, live.ke3, 64);
	n += 64;
	b[n++] = op;
	if (pl > 0) {
		if (opaque_client_registration_request(b + n, &st, (const uint8_t *)"pw", 2) != 0)
			die("registration request");
		opaque_client_state_wipe(&st);
	}
	memcpy(macced, live.sid, 16);
	macced[16] = op;
	memcpy(macced + 17, b + n, pl);
	n += pl;
	mac(b + n, macced, 17 + pl);
	return call(SV_MSG_LOGIN_FINISH, b, n + 64);
}

/* change-password/finish on the live login with a correct MAC (record from the fuzzer). */
static uint8_t do_change(const uint8_t *rec, uint8_t limit)
{
	uint8_t b[600];
	size_t n = 0;
	b[n++] = 1;
	memcpy(b + n, live.sid, 16);
	n += 16;
	memcpy(b + n, rec, OPAQUE_RECORD_LEN);
	n += OPAQUE_RECORD_LEN;
	b[n++] = limit;
	b[n++] = 0;
	b[n++] = 1;
	b[n++] = 'x';
	mac(b + n, b, n);
	return call(SV_MSG_CHANGE_FINISH, b, n + 64);
}

static void init(void)
{
	struct opaque_server_key k;
	uint8_t seed[32];
	if (sodium_init() < 0)
		die("sodium_init");
	memset(S.sec.oprf_seed, 0x11, sizeof(S.sec.oprf_seed));
	memset(S.sec.fake_seed, 0x33, sizeof(S.sec.fake_seed));
	memset(seed, 0x22, sizeof(seed));
	if (opaque_server_key_derive(&k, seed) != 0)
		die("server key");
	memcpy(S.sec.ake_sk, k.sk, 32);
	memcpy(S.sec.ake_pk, k.pk, 32);
	policy_vault_defaults(&P);
	P.max_guess_limit = 255;
	P.pending_login_max = 16; /* small, so that BUSY and the rescue pool are reached */
	P.login_rate_per_id = 0;  /* the fuzzer's clock stands still: it would refuse all */
	P.login_timeout_s = 5;
	struct vault_config cfg = {NULL, 0, &P, NULL, 0, NULL};
	if (vault_new(&V, &S, &cfg) != 0 || sv_buf_init(&R, 4096) != 0)
		die("vault_new");
}

/* The next good request works: a fresh identifier registers, logs in and recovers. */
static void canary(void)
{
	uint8_t rnd[8];
	char id[32];
	randombytes_buf(rnd, sizeof(rnd)); /* an identifier the script cannot have taken */
	int n = snprintf(id, sizeof(id), "canary%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
	                 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	uint8_t st = do_register(id, (size_t)n, 3);
	if (st == SV_STATUS_BUSY) { /* the fake store is full: start it again (secrets kept) */
		memset(S.u, 0, sizeof(S.u));
		st = do_register(id, (size_t)n, 3);
	}
	if (st != SV_STATUS_OK)
		die("canary registration refused");
	now_ms += (uint64_t)P.login_timeout_s * 1000; /* make room in the pending-login table */
	if (do_login(id, (size_t)n) != SV_STATUS_OK || !live.have)
		die("canary login refused");
	if (do_finish(VAULTREQ_OP_DELETE) != SV_STATUS_OK)
		die("canary login/finish refused");
	live.have = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned runs;
	static const uint16_t types[] = {SV_MSG_REGISTER_START, SV_MSG_REGISTER_FINISH,
	                                 SV_MSG_LOGIN_START,    SV_MSG_LOGIN_FINISH,
	                                 SV_MSG_CHANGE_FINISH,  SV_MSG_STATS};
	uint8_t rec[OPAQUE_RECORD_LEN];
	size_t i = 0;

	if (V == NULL)
		init();
	while (i < size) {
		uint8_t cmd = data[i++];
		size_t left = size - i, n;
		switch (cmd % 8) {
		case 0: /* a raw body of any type, its length in the next byte */
		case 1:
			n = left == 0 ? 0 : data[i++] * 4u;
			if (n > size - i)
				n = size - i;
			(void)call(types[cmd / 8 % 6], data + i, n);
			i += n;
			break;
		case 2: /* a raw login/finish for the live session id (fuzzer's KE3, op, MAC) */
			n = left < 150 ? left : 150;
			if (live.have && n >= 17) {
				uint8_t b[160];
				memcpy(b, data + i, n);
				b[0] = 1;
				memcpy(b + 1, live.sid, 16);
				(void)call(SV_MSG_LOGIN_FINISH, b, n);
			}
			i += n;
			break;
		case 3: /* a real login as FZ (registered again when destroyed or deleted) */
			if (do_login(FZ, 2) == SV_STATUS_LOCKED || !live.have)
				(void)do_register(FZ, 2, (uint8_t)(1 + cmd / 8 % 4));
			break;
		case 4: /* finish the live login correctly with an operation */
			if (live.have)
				(void)do_finish((uint8_t)(1 + cmd / 8 % 3));
			break;
		case 5: /* change-password/finish on the live login, fuzzer's record and limit */
			memset(rec, 0, sizeof(rec));
			n = left < sizeof(rec) ? left : sizeof(rec);
			memcpy(rec, data + i, n);
			i += n;
			if (live.have)
				(void)do_change(rec, cmd);
			break;
		case 6: /* time passes */
			now_ms += (uint64_t)(cmd / 8) * 500;
			vault_expire(V, now_ms);
			break;
		default: /* a real login/start for an identifier from the input */
			n = left == 0 ? 0 : 1 + data[i++] % 8;
			if (n > size - i)
				n = size - i;
			if (n > 0)
				(void)do_login((const char *)data + i, n);
			i += n;
			break;
		}
	}
	if (++runs % 64 == 0)
		canary();
	return 0;
}
