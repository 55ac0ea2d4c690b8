/*
 * bench-crypto: the server's and client's OPAQUE costs on one pinned core, and the ratio of the
 * server's KE1->KE2 cost to the cost of the scalar multiplications it cannot avoid (4 variable-
 * base + 1 base ristretto255 multiplications), all measured in the same run.
 *
 *   bench-crypto [-n ROUNDS] [-c CPU]
 *
 * Time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so that being preempted by other
 * processes on a shared machine does not count. Each figure is the median over ROUNDS rounds of
 * the mean time of a batch; the rounds of the different operations are interleaved so that
 * frequency changes hit them all alike, and R is the ratio of the KE2 and scalar-mult medians.
 * Output is `name: value unit` lines, then `ke2/scalarmults: R`, then the cost of verifying one
 * access token (EdDSA, ES256; docs/tokens.md) as a ratio to one KE1->KE2, `token-verify/ke2: R`
 * being the dearer algorithm's.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"
#include "crypto/opaque.h"
#include "enclave/tenant.h"
#include "enclave/token.h"
#include "tests/tokens/pyjwt_vectors.h"

#define MAX_ROUNDS 101

static const uint8_t pw[] = "benchmark password";
static const uint8_t cred_id[] = "bench-user";

struct bench {
	struct opaque_server_key key;
	uint8_t oprf_seed[OPAQUE_OPRF_SEED_LEN];
	uint8_t req[OPAQUE_REGISTRATION_REQUEST_LEN];
	uint8_t record[OPAQUE_RECORD_LEN];
	uint8_t record_argon[OPAQUE_RECORD_LEN]; /* registered with ksf_argon */
	uint8_t ke1[OPAQUE_KE1_LEN];
	struct opaque_params params;
	uint8_t scalar[32], point[32];
	struct ksf_params ksf_id, ksf_argon;
	struct tenant_set tenants; /* access tokens (issue 13): the PyJWT vectors' tenant */
	struct token_policy token_policy;
	const char *token_eddsa, *token_es256;
	volatile uint8_t sink;
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "bench-crypto: %s failed; the crypto module is broken, run `make check`\n",
	        what);
	exit(1);
}

/* An operation; one that must leave part of its work untimed adds its own timed part to *self. */
typedef void (*op_fn)(struct bench *b, double *self);

static void op_reg_response(struct bench *b, double *self)
{
	uint8_t resp[OPAQUE_REGISTRATION_RESPONSE_LEN];

	if (opaque_server_registration_response(resp, b->req, b->key.pk, b->oprf_seed, cred_id,
	                                        sizeof cred_id - 1) != 0)
		die("registration response");
	b->sink ^= resp[0];
}

static void op_ke2(struct bench *b, double *self)
{
	uint8_t ke2[OPAQUE_KE2_LEN];
	struct opaque_server_state st;

	if (opaque_server_ke2(ke2, &st, b->ke1, b->record, cred_id, sizeof cred_id - 1,
	                      b->oprf_seed, &b->key, &b->params) != 0)
		die("KE2");
	b->sink ^= ke2[0] ^ st.session_key[0];
}

/* The scalar multiplications of one KE2: 4 variable-base, 1 base. */
static void op_scalarmults(struct bench *b, double *self)
{
	uint8_t out[32];

	for (int i = 0; i < 4; i++) {
		if (crypto_scalarmult_ristretto255(out, b->scalar, b->point) != 0)
			die("scalarmult");
		b->sink ^= out[0];
	}
	if (crypto_scalarmult_ristretto255_base(out, b->scalar) != 0)
		die("scalarmult_base");
	b->sink ^= out[0];
}

static void op_varbase(struct bench *b, double *self)
{
	uint8_t out[32];

	if (crypto_scalarmult_ristretto255(out, b->scalar, b->point) != 0)
		die("scalarmult");
	b->sink ^= out[0];
}

static void op_base(struct bench *b, double *self)
{
	uint8_t out[32];

	if (crypto_scalarmult_ristretto255_base(out, b->scalar) != 0)
		die("scalarmult_base");
	b->sink ^= out[0];
}

/* One access-token verification, as the enclave will run it per request. */
static void token_verify_one(struct bench *b, const char *tok)
{
	struct token_claims c;
	const char *why;

	if (token_verify(&b->tenants, &b->token_policy, PYJWT_NOW, tok, strlen(tok), &c, &why) !=
	    SV_OK)
		die("token verify");
	b->sink ^= c.sub[0];
}

static void op_token_eddsa(struct bench *b, double *self)
{
	token_verify_one(b, b->token_eddsa);
}

static void op_token_es256(struct bench *b, double *self)
{
	token_verify_one(b, b->token_es256);
}

/* A whole client login: KE1, then (after the server's KE2, not timed) KE3. */
static void client_login(struct bench *b, const uint8_t record[OPAQUE_RECORD_LEN],
                         const struct ksf_params *ksf, double *us)
{
	struct opaque_client_state cst;
	struct opaque_server_state sst;
	uint8_t ke1[OPAQUE_KE1_LEN], ke2[OPAQUE_KE2_LEN], ke3[OPAQUE_KE3_LEN], sk[64], ek[64];
	double t0, t1, t2;

	t0 = now_us();
	if (opaque_client_ke1(ke1, &cst, pw, sizeof pw - 1) != 0)
		die("KE1");
	t1 = now_us();
	if (opaque_server_ke2(ke2, &sst, ke1, record, cred_id, sizeof cred_id - 1, b->oprf_seed,
	                      &b->key, &b->params) != 0)
		die("KE2");
	t2 = now_us();
	if (opaque_client_ke3(ke3, sk, ek, NULL, &cst, pw, sizeof pw - 1, ke2, &b->params, ksf) !=
	    0)
		die("KE3");
	*us = (t1 - t0) + (now_us() - t2);
	b->sink ^= ke3[0];
}

static void op_client_login(struct bench *b, double *self)
{
	double us;

	client_login(b, b->record, &b->ksf_id, &us);
	*self += us;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return v[n / 2];
}

static void setup(struct bench *b)
{
	struct opaque_client_state cst;
	uint8_t resp[OPAQUE_REGISTRATION_RESPONSE_LEN], ek[64];

	memset(b, 0, sizeof *b);
	b->params.context = (const uint8_t *)"sealvault-bench";
	b->params.context_len = 15;
	b->ksf_id.type = KSF_IDENTITY;
	b->ksf_argon = (struct ksf_params){KSF_ARGON2ID, 2, 65536};
	randombytes_buf(b->oprf_seed, sizeof b->oprf_seed);
	if (opaque_server_key_generate(&b->key) != 0 ||
	    opaque_client_registration_request(b->req, &cst, pw, sizeof pw - 1) != 0 ||
	    opaque_server_registration_response(resp, b->req, b->key.pk, b->oprf_seed, cred_id,
	                                        sizeof cred_id - 1) != 0 ||
	    opaque_client_registration_finalize(b->record, ek, &cst, pw, sizeof pw - 1, resp,
	                                        &b->params, &b->ksf_id) != 0)
		die("registration");
	if (opaque_client_registration_request(b->req, &cst, pw, sizeof pw - 1) != 0 ||
	    opaque_server_registration_response(resp, b->req, b->key.pk, b->oprf_seed, cred_id,
	                                        sizeof cred_id - 1) != 0 ||
	    opaque_client_registration_finalize(b->record_argon, ek, &cst, pw, sizeof pw - 1, resp,
	                                        &b->params, &b->ksf_argon) != 0)
		die("registration (Argon2id)");
	if (opaque_client_registration_request(b->req, &cst, pw, sizeof pw - 1) != 0 ||
	    opaque_client_ke1(b->ke1, &cst, pw, sizeof pw - 1) != 0)
		die("KE1");
	crypto_core_ristretto255_scalar_random(b->scalar);
	crypto_core_ristretto255_random(b->point);
	struct tenant t;
	char why[256];
	if (tenant_parse_jwks(&t, "acme", (const uint8_t *)pyjwt_jwks_acme, strlen(pyjwt_jwks_acme),
	                      why, sizeof why) != SV_OK ||
	    tenant_set_add(&b->tenants, &t) != SV_OK)
		die("tenant set");
	memcpy(b->token_policy.aud, PYJWT_REALM, sizeof PYJWT_REALM);
	b->token_policy.max_lifetime_s = TOKEN_MAX_LIFETIME_DEFAULT;
	b->token_policy.skew_s = TOKEN_SKEW_DEFAULT;
	for (size_t i = 0; i < sizeof pyjwt_vectors / sizeof pyjwt_vectors[0]; i++) {
		if (strcmp(pyjwt_vectors[i].name, "ok_eddsa") == 0)
			b->token_eddsa = pyjwt_vectors[i].token;
		if (strcmp(pyjwt_vectors[i].name, "ok_es256") == 0)
			b->token_es256 = pyjwt_vectors[i].token;
	}
	if (b->token_eddsa == NULL || b->token_es256 == NULL)
		die("token vectors");
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		op_fn fn;
		int batch;
		int self_timed; /* the op times itself (client login: not the server's KE2) */
	} ops[] = {
	    {"server registration response", op_reg_response, 200, 0},
	    {"server KE1->KE2", op_ke2, 50, 0},
	    {"scalarmults (4 var-base + 1 base)", op_scalarmults, 50, 0},
	    {"ristretto255 var-base scalarmult", op_varbase, 200, 0},
	    {"ristretto255 base scalarmult", op_base, 400, 0},
	    {"client login (KE1+KE3, Identity KSF)", op_client_login, 30, 1},
	    {"token verify (EdDSA)", op_token_eddsa, 100, 0},
	    {"token verify (ES256)", op_token_es256, 100, 0},
	};
	enum { NOPS = sizeof ops / sizeof ops[0] };
	static double samples[NOPS][MAX_ROUNDS];
	double med[NOPS], argon[5], us;
	int rounds = 31, cpu = -1, opt;
	struct bench b;
	cpu_set_t set;

	while ((opt = getopt(argc, argv, "n:c:")) != -1) {
		switch (opt) {
		case 'n': rounds = atoi(optarg); break;
		case 'c': cpu = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench-crypto [-n ROUNDS (1..%d)] [-c CPU]\n",
			        MAX_ROUNDS);
			return 2;
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "bench-crypto: -n must be 1..%d\n", MAX_ROUNDS);
		return 2;
	}
	/* Pin to one core: the CPU given, else the one we are on now. */
	if (cpu < 0)
		cpu = sched_getcpu();
	CPU_ZERO(&set);
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0) {
		fprintf(stderr, "bench-crypto: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
		return 1;
	}
	if (sodium_init() < 0)
		die("sodium_init");
	setup(&b);
	for (int i = 0; i < NOPS; i++) { /* warm-up */
		double self = 0;

		ops[i].fn(&b, &self);
	}
	for (int r = 0; r < rounds; r++)
		for (int i = 0; i < NOPS; i++) {
			double t0 = now_us(), self = 0;

			for (int k = 0; k < ops[i].batch; k++)
				ops[i].fn(&b, &self);
			samples[i][r] = (ops[i].self_timed ? self : now_us() - t0) / ops[i].batch;
		}
	for (int i = 0; i < NOPS; i++)
		med[i] = median(samples[i], rounds);
	for (int i = 0; i < 5; i++) {
		client_login(&b, b.record_argon, &b.ksf_argon, &us);
		argon[i] = us;
	}

	printf("cpu: %d\n", cpu);
	printf("rounds: %d\n", rounds);
	for (int i = 0; i < NOPS; i++)
		printf("%s: %.1f us\n", ops[i].name, med[i]);
	printf("client login (KE1+KE3, Argon2id t=%u m=%u KiB): %.1f us\n", b.ksf_argon.t,
	       b.ksf_argon.m_kib, median(argon, 5));
	printf("server KE2 per second (this core): %.0f\n", 1e6 / med[1]);
	printf("ke2/scalarmults: %.3f\n", med[1] / med[2]);
	/* issue 13: one access-token verification per request, against one KE1->KE2; the line
	 * without a suffix is the dearer of the two algorithms */
	printf("token-verify-eddsa/ke2: %.3f\n", med[6] / med[1]);
	printf("token-verify-es256/ke2: %.3f\n", med[7] / med[1]);
	printf("token-verify/ke2: %.3f\n", (med[6] > med[7] ? med[6] : med[7]) / med[1]);
	tenant_set_free(&b.tenants);
	return 0;
}
