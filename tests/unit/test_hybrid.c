/* Unit tests for the hybrid counter's arithmetic and start-up rule (enclave/anchor.c) and the
 * NV-write budget (enclave/budget.c), and a randomized model check of the rule: an orderly
 * counter as libtpms implements it (NV copy at every multiple of M + 1; a power cut leaves the
 * last NV copy with the low bits set), a journal written with the vault's write order (forced
 * flushes for a user's second non-durable charge), power cuts at random points and every
 * truncation of the journal: whatever anchor_judge accepts, plus the penalty, never charges a
 * user fewer guesses than were answered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "enclave/anchor.h"
#include "enclave/budget.h"

#define M 255u

static void test_arithmetic(void **state)
{
	(void)state;
	assert_int_equal(anchor_durable(M, 511), 256);
	assert_int_equal(anchor_durable(M, 512), 512);
	assert_int_equal(anchor_durable(0, 77), 77);
	assert_int_equal(anchor_flush_target(M, 300), 512);
	assert_int_equal(anchor_flush_target(M, 511), 512);
	assert_int_equal(anchor_flush_target(M, 512), 768); /* always moves on */
	assert_int_equal(anchor_flush_target(0, 41), 42);
	assert_int_equal(anchor_nv_writes(M, 300, 512), 1);
	assert_int_equal(anchor_nv_writes(M, 300, 301), 0);
	assert_int_equal(anchor_nv_writes(M, 511, 1024), 3); /* 512, 768, 1024 */
	assert_int_equal(anchor_nv_writes(0, 10, 13), 3);
	assert_int_equal(anchor_nv_writes(M, 10, 10), 0);
}

static int judge(uint64_t h, uint64_t from, uint64_t c, uint32_t m, int *v)
{
	char why[256];
	return anchor_judge(h, from, c, m, 1000, 0, v, why, sizeof(why));
}

static void test_judge(void **state)
{
	int v = -1;
	(void)state;
	assert_int_equal(judge(300, 299, 300, M, &v), SV_OK);
	assert_int_equal(v, ANCHOR_CLEAN);
	assert_int_equal(judge(301, 300, 300, M, &v), SV_OK); /* plain crash */
	assert_int_equal(v, ANCHOR_ROLL_FORWARD);
	assert_int_equal(judge(512, 300, 400, M, &v), SV_OK); /* flush cut half-way */
	assert_int_equal(v, ANCHOR_ROLL_FORWARD);
	assert_int_equal(judge(300, 299, 511, M, &v), SV_OK); /* power cut */
	assert_int_equal(v, ANCHOR_POWER_CUT);
	assert_int_equal(judge(256, 255, 511, M, &v), SV_OK); /* the window's lowest head */
	assert_int_equal(v, ANCHOR_POWER_CUT);
	assert_int_equal(judge(255, 254, 511, M, &v), SV_ERR_STATE); /* below the NV copy */
	assert_int_equal(judge(300, 299, 510, M, &v), SV_ERR_STATE); /* low bits not all set */
	assert_int_equal(judge(300, 299, 511, 0, &v), SV_ERR_STATE); /* plain: a rollback */
	assert_int_equal(judge(520, 519, 511, M, &v), SV_ERR_STATE); /* ahead of the counter */
	assert_int_equal(judge(302, 300, 300, 0, &v), SV_OK);        /* the frame's own start */
	assert_int_equal(judge(303, 301, 300, 0, &v), SV_ERR_STATE);
}

static void test_budget(void **state)
{
	struct budget b;
	(void)state;
	budget_init(&b, 86400, 3, M, 0); /* one token a second, burst 3 */
	assert_true(budget_cost(&b, 256) > 0.999 && budget_cost(&b, 256) < 1.001);
	assert_int_equal(budget_wait_us(&b, 3.0, 0), 0);
	budget_spend(&b, 3.0, 0);
	assert_true(budget_wait_us(&b, 1.0, 0) >= 999999);
	assert_int_equal(budget_wait_us(&b, 1.0, 1000000), 0);
	assert_int_equal(budget_wait_us(&b, 0.5, 600000), 0);
	budget_spend(&b, 5.0, 2000000); /* a start's NV write may overdraw */
	assert_true(b.level < 0);
	assert_true(budget_wait_us(&b, 1.0, 2000000) > 3000000);
	/* refill never exceeds the burst */
	assert_true(budget_wait_us(&b, 3.0, 100000000) == 0);
	assert_true(budget_wait_us(&b, 3.5, 100000000) > 0);
	budget_init(&b, 0, 1, 0, 0); /* unlimited */
	budget_spend(&b, 1000.0, 0);
	assert_int_equal(budget_wait_us(&b, 1.0, 0), 0);
	assert_true(budget_cost(&b, 3) > 2.999); /* plain: each increment is a write */
}

/* ---- the randomized model ---- */

#define USERS 8
#define MAXF  4096

struct tpm_model {
	uint64_t ram, nv; /* value, last NV copy */
};

static void tpm_inc(struct tpm_model *t)
{
	if ((++t->ram & M) == 0)
		t->nv = t->ram;
}

static void tpm_cut(struct tpm_model *t)
{
	t->ram = t->nv | M;
}

struct frame {
	uint64_t counter, from;
	int user; /* charged user, -1: penalty */
};

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void test_model(void **state)
{
	(void)state;
	static struct frame j[MAXF];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned trials = 0, accepted_cut = 0;
	for (int run = 0; run < 400; run++) {
		struct tpm_model t = {.ram = 1000, .nv = 1000};
		size_t n = 0;
		unsigned answered[USERS] = {0};
		uint64_t charged_at[USERS] = {0};
		/* the journal's head counter and the counter the next commit starts from */
		uint64_t head = 1000;
		int steps = (int)(rnd(&x) % 900) + 10;
		for (int k = 0; k < steps && n < MAXF - 1; k++) {
			int u = (int)(rnd(&x) % USERS);
			int flush = charged_at[u] > anchor_durable(M, t.ram);
			uint64_t target = flush ? anchor_flush_target(M, t.ram) : t.ram + 1;
			j[n++] = (struct frame){.counter = target, .from = t.ram, .user = u};
			head = target;
			/* the power may fail during the increments: then nothing is answered */
			uint64_t cut_at =
			    rnd(&x) % 40 == 0 ? rnd(&x) % (target - t.ram + 1) : UINT64_MAX;
			int cut = 0;
			for (uint64_t i = t.ram; i < target; i++) {
				if (i - j[n - 1].from == cut_at) {
					cut = 1;
					break;
				}
				tpm_inc(&t);
			}
			if (cut)
				break;
			answered[u]++;
			charged_at[u] = target;
		}
		tpm_cut(&t);
		/* every truncation the start-up rule accepts must charge at least what was
		 * answered: its own charges plus the penalty */
		for (size_t len = 0; len <= n; len++) {
			uint64_t h = len == 0 ? 1000 : j[len - 1].counter;
			uint64_t from = len == 0 ? 1000 : j[len - 1].from;
			int v = -1;
			trials++;
			if (judge(h, from, t.ram, M, &v) != SV_OK)
				continue;
			unsigned have[USERS] = {0};
			for (size_t i = 0; i < len; i++)
				have[j[i].user]++;
			if (v == ANCHOR_POWER_CUT) {
				accepted_cut++;
				for (int u = 0; u < USERS; u++)
					have[u]++;
			}
			for (int u = 0; u < USERS; u++)
				if (have[u] < answered[u])
					fail_msg("run %d, truncation to %zu of %zu (head %llu, TPM "
					         "%llu): "
					         "user %d answered %u, charged %u",
					         run, len, n, (unsigned long long)h,
					         (unsigned long long)t.ram, u, answered[u],
					         have[u]);
		}
		(void)head;
	}
	assert_true(trials > 10000);
	assert_true(accepted_cut > 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_arithmetic),
	    cmocka_unit_test(test_judge),
	    cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
