/*
 * libFuzzer target: the realm side's request handling (enclave/realm.c: the access to records,
 * guess charging, sessions, the last-guess rescue) on the in-memory fake store
 * (tests/lib/fake_store.h), driven by a script of requests the input spells out. Besides raw and
 * mutated bodies of every /v2/realm/ type, the script can register a valid registration (made at
 * start with crypto/realm.c), open a session with recover2 and finish it with a right or the
 * fuzzer's tag proof, delete, and let time pass, so the fuzzer reaches the charged paths too.
 * (The body decoders alone have their own target, realm_wire.)
 *
 * Invariants: realm_srv_handle never fails, every reply is a known status byte and never 500; a
 * record's guesses used never exceed its limit; a recover2 answered 200 followed at once by a
 * right recover3 is answered 200; and every 64 inputs a fresh registration, recover2 and recover3
 * work (the next good request works, whatever came before).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/msg.h"
#include "crypto/opaque.h"
#include "crypto/oprf.h"
#include "crypto/realm.h"
#include "crypto/realm_wire.h"
#include "enclave/realm.h"
#include "enclave/vault.h"
#include "policy/vault.h"
#include "tests/lib/fake_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define E 32

static struct store S;
static struct sv_vault_policy P;
static struct vault *V;
static struct realm_srv *RS;
static struct sv_buf R, B;
static uint64_t now_ms = 1000;
static const uint8_t RID[REALM_ID_LEN] = {0x5a};
static const struct ksf_params KSF = {KSF_IDENTITY, 0, 0};

/* A valid registration at index 2 of 2-of-3 for a uid, and what a recovery needs. */
struct fz_reg {
	uint8_t uid[16];
	size_t uid_len;
	uint8_t body[REALM_WIRE_MAX];
	size_t body_len;
	uint8_t version[REALM_VERSION_LEN], tag[32];
};
static struct fz_reg fz, canary_reg;
static uint8_t blinded[E];
static uint8_t live_sid[REALM_SESSION_LEN];
static int live;
static int fz_valid; /* what the realm holds for fz is fz's valid registration (or nothing) */

static void die(const char *what)
{
	fprintf(stderr, "fuzz_realm_handle: %s\n", what);
	abort();
}

static uint8_t call(uint16_t type, const uint8_t *b, size_t n)
{
	if (realm_srv_handle(RS, type, NULL, 0, b, n, now_ms, &R) != 0 || R.len < 1 ||
	    R.data[0] > SV_STATUS_NOT_FOUND || R.data[0] == SV_STATUS_INTERNAL)
		die("realm_srv_handle failed or gave no valid status");
	if (store_commit(&S) != 0)
		die("commit");
	for (int i = 0; i < FAKE_USERS; i++)
		if (S.u[i].live && S.u[i].used > S.u[i].limit)
			die("guesses used above the limit");
	return R.data[0];
}

static void make_reg(struct fz_reg *g, const char *uid, uint8_t limit)
{
	struct realm_share k[3], s[3];
	uint8_t key[32], sc[32], com[3 * E], check[32], smac[32], ct[REALM_SEALED_LEN(8)];
	uint8_t prk[64];
	g->uid_len = strlen(uid);
	memcpy(g->uid, uid, g->uid_len);
	randombytes_buf(g->version, sizeof g->version);
	randombytes_buf(prk, sizeof prk);
	if (oprf_generate_keypair(key, NULL) != 0 || realm_shamir_split(k, key, 2, 3) != 0)
		die("split");
	crypto_core_ristretto255_scalar_random(sc);
	if (realm_shamir_split(s, sc, 2, 3) != 0)
		die("split s");
	for (int i = 0; i < 3; i++)
		if (realm_commitment(com + i * E, k[i].value) != 0)
			die("commitment");
	if (realm_unlock_check(check, prk) != 0 || realm_unlock_tag(g->tag, prk, RID, 2) != 0 ||
	    realm_share_mac(smac, prk, RID, 2, s[1].value) != 0)
		die("derivations");
	randombytes_buf(ct, sizeof ct);
	struct realm_register_req q = {.uid = g->uid,
	                               .uid_len = g->uid_len,
	                               .realm_id = RID,
	                               .version = g->version,
	                               .ksf = KSF,
	                               .t = 2,
	                               .n = 3,
	                               .index = 2,
	                               .guess_limit = limit,
	                               .oprf_share = k[1].value,
	                               .commitments = com,
	                               .unlock_check = check,
	                               .unlock_tag = g->tag,
	                               .enc_share = s[1].value,
	                               .share_mac = smac,
	                               .ct = ct,
	                               .ct_len = sizeof ct};
	sv_buf_reset(&B);
	if (realm_wire_register_encode(&B, &q) != 0 || B.len > sizeof g->body)
		die("register encode");
	memcpy(g->body, B.data, B.len);
	g->body_len = B.len;
}

static uint8_t uid_req(uint16_t type, const struct fz_reg *g)
{
	struct realm_uid_req q = {g->uid, g->uid_len};
	sv_buf_reset(&B);
	if (realm_wire_uid_encode(&B, &q) != 0)
		die("uid encode");
	return call(type, B.data, B.len);
}

static uint8_t recover2(const struct fz_reg *g)
{
	struct realm_recover2_req q = {g->uid, g->uid_len, g->version, blinded};
	sv_buf_reset(&B);
	if (realm_wire_recover2_encode(&B, &q) != 0)
		die("recover2 encode");
	uint8_t st = call(SV_MSG_REALM_RECOVER2, B.data, B.len);
	live = st == SV_STATUS_OK;
	if (live)
		memcpy(live_sid, R.data + 1, REALM_SESSION_LEN);
	return st;
}

static uint8_t recover3(const uint8_t proof[32])
{
	struct realm_recover3_req q = {live_sid, proof};
	sv_buf_reset(&B);
	if (realm_wire_recover3_encode(&B, &q) != 0)
		die("recover3 encode");
	return call(SV_MSG_REALM_RECOVER3, B.data, B.len);
}

static uint8_t recover3_right(const struct fz_reg *g)
{
	uint8_t proof[32];
	if (realm_tag_proof(proof, g->tag, live_sid) != 0)
		die("tag proof");
	return recover3(proof);
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
	if (vault_new(&V, &S, &cfg) != 0 || realm_srv_new(&RS, V, RID) != 0 ||
	    sv_buf_init(&R, 4096) != 0 || sv_buf_init(&B, REALM_WIRE_MAX) != 0)
		die("setup");
	crypto_core_ristretto255_random(blinded);
	make_reg(&fz, "fz", 3);
	make_reg(&canary_reg, "canary", 3);
}

/* The next good request works: a fresh registration is recovered from. */
static void canary(void)
{
	if (uid_req(SV_MSG_REALM_DELETE, &canary_reg) != SV_STATUS_OK)
		die("canary delete refused");
	uint8_t st = call(SV_MSG_REALM_REGISTER, canary_reg.body, canary_reg.body_len);
	if (st == SV_STATUS_BUSY) { /* the fake store is full: start it again (secrets kept) */
		memset(S.u, 0, sizeof(S.u));
		st = call(SV_MSG_REALM_REGISTER, canary_reg.body, canary_reg.body_len);
	}
	if (st != SV_STATUS_OK)
		die("canary registration refused");
	now_ms += (uint64_t)P.login_timeout_s * 1000; /* make room in the session table */
	vault_expire(V, now_ms);
	if (recover2(&canary_reg) != SV_STATUS_OK || recover3_right(&canary_reg) != SV_STATUS_OK)
		die("canary recovery refused");
	live = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned runs;
	static const uint16_t types[] = {SV_MSG_REALM_REGISTER, SV_MSG_REALM_RECOVER1,
	                                 SV_MSG_REALM_RECOVER2, SV_MSG_REALM_RECOVER3,
	                                 SV_MSG_REALM_DELETE,   SV_MSG_REALM_STATUS};
	uint8_t b[REALM_WIRE_MAX];
	size_t i = 0;

	if (V == NULL)
		init();
	while (i < size) {
		uint8_t cmd = data[i++];
		size_t left = size - i, n;
		switch (cmd % 8) {
		case 0: /* a raw body of any type, its length in the next byte */
			n = left == 0 ? 0 : data[i++] * 4u;
			if (n > size - i)
				n = size - i;
			if (call(types[cmd / 8 % 6], data + i, n) == SV_STATUS_OK &&
			    types[cmd / 8 % 6] == SV_MSG_REALM_REGISTER)
				fz_valid = 0; /* it may have replaced fz's */
			i += n;
			break;
		case 1: /* the valid registration with a few bytes changed (a changed tag or share
		         * is accepted: only the client can tell) */
			memcpy(b, fz.body, fz.body_len);
			for (int k = 0; k < 3 && left >= 2; k++, left -= 2, i += 2)
				b[(data[i] * 7u + k) % fz.body_len] ^= data[i + 1];
			if (call(SV_MSG_REALM_REGISTER, b, fz.body_len) == SV_STATUS_OK)
				fz_valid = 0;
			break;
		case 2: /* the valid registration, with a guess limit from the command */
			memcpy(b, fz.body, fz.body_len);
			b[3 + fz.uid_len + 16 + 16 + 9 + 3] = (uint8_t)(cmd / 8 % 5);
			if (call(SV_MSG_REALM_REGISTER, b, fz.body_len) == SV_STATUS_OK)
				fz_valid = 1;
			break;
		case 3: /* recover2 then at once a right recover3: both work or recover2 refused */
			if (recover2(&fz) == SV_STATUS_OK && recover3_right(&fz) != SV_STATUS_OK &&
			    fz_valid)
				die("a right tag proof was refused");
			live = 0;
			break;
		case 4: /* recover2, kept open */ (void)recover2(&fz); break;
		case 5: /* recover3 on the live (or a stale) session with the fuzzer's proof */
			if (left >= 32) {
				(void)recover3(data + i);
				i += 32;
			} else {
				(void)recover3_right(&fz);
			}
			break;
		case 6: /* recover1, status or delete of fz */
			(void)uid_req(cmd / 8 % 3 == 0   ? SV_MSG_REALM_RECOVER1
			              : cmd / 8 % 3 == 1 ? SV_MSG_REALM_STATUS
			                                 : SV_MSG_REALM_DELETE,
			              &fz);
			break;
		default: /* time passes */
			now_ms += (uint64_t)(cmd / 8) * 250;
			vault_expire(V, now_ms);
			break;
		}
	}
	if (++runs % 64 == 0)
		canary();
	return 0;
}
