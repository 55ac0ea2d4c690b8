/* Unit tests for enclave/tpm.c with the ESYS calls, the TCTI and nanosleep replaced through
 * --wrap: NV_Increment answered TPM_RC_NV_RATE / RETRY / YIELDED is retried with growing
 * back-off and never reported as a failure; other errors are not retried; the retry budget ends;
 * an auth failure is reported as such (another run holds the counter); NV_ChangeAuth goes
 * through a PolicyCommandCode policy session with the new auth value encrypted, is retried like
 * an increment, and the new value is presented afterwards, and only on success. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <tss2/tss2_esys.h>

#include "common/err.h"
#include "enclave/tpm.h"

/* ---- fakes: tpm_open succeeds without a TPM ---- */
int __wrap_tcti_fd_connect(const char *spec, int *fd, char *why, size_t why_len);
int __wrap_tcti_fd_new(TSS2_TCTI_CONTEXT **out, int fd);
void __wrap_tcti_fd_free(TSS2_TCTI_CONTEXT *ctx);
TSS2_RC __wrap_Esys_Initialize(ESYS_CONTEXT **ctx, TSS2_TCTI_CONTEXT *tcti, TSS2_ABI_VERSION *v);
void __wrap_Esys_Finalize(ESYS_CONTEXT **ctx);
TSS2_RC __wrap_Esys_Startup(ESYS_CONTEXT *ctx, TPM2_SU su);
TSS2_RC __wrap_Esys_CreatePrimary(ESYS_CONTEXT *ctx, ESYS_TR h, ESYS_TR s1, ESYS_TR s2, ESYS_TR s3,
                                  const TPM2B_SENSITIVE_CREATE *in, const TPM2B_PUBLIC *pub,
                                  const TPM2B_DATA *outside, const TPML_PCR_SELECTION *pcr,
                                  ESYS_TR *obj, TPM2B_PUBLIC **op, TPM2B_CREATION_DATA **cd,
                                  TPM2B_DIGEST **ch, TPMT_TK_CREATION **ct);
TSS2_RC __wrap_Esys_TR_GetName(ESYS_CONTEXT *ctx, ESYS_TR h, TPM2B_NAME **name);
TSS2_RC __wrap_Esys_StartAuthSession(ESYS_CONTEXT *ctx, ESYS_TR key, ESYS_TR bind, ESYS_TR s1,
                                     ESYS_TR s2, ESYS_TR s3, const TPM2B_NONCE *nonce, TPM2_SE type,
                                     const TPMT_SYM_DEF *sym, TPMI_ALG_HASH hash, ESYS_TR *sess);
TSS2_RC __wrap_Esys_TRSess_SetAttributes(ESYS_CONTEXT *ctx, ESYS_TR s, TPMA_SESSION f,
                                         TPMA_SESSION m);
TSS2_RC __wrap_Esys_GetRandom(ESYS_CONTEXT *ctx, ESYS_TR s1, ESYS_TR s2, ESYS_TR s3, UINT16 n,
                              TPM2B_DIGEST **out);
TSS2_RC __wrap_Esys_FlushContext(ESYS_CONTEXT *ctx, ESYS_TR h);
TSS2_RC __wrap_Esys_TR_FromTPMPublic(ESYS_CONTEXT *ctx, TPM2_HANDLE h, ESYS_TR s1, ESYS_TR s2,
                                     ESYS_TR s3, ESYS_TR *obj);
TSS2_RC __wrap_Esys_NV_Increment(ESYS_CONTEXT *ctx, ESYS_TR auth, ESYS_TR nv, ESYS_TR s1,
                                 ESYS_TR s2, ESYS_TR s3);
int __wrap_nanosleep(const struct timespec *req, struct timespec *rem);
TSS2_RC __wrap_Esys_PolicyCommandCode(ESYS_CONTEXT *ctx, ESYS_TR policy, ESYS_TR s1, ESYS_TR s2,
                                      ESYS_TR s3, TPM2_CC code);
TSS2_RC __wrap_Esys_NV_ChangeAuth(ESYS_CONTEXT *ctx, ESYS_TR nv, ESYS_TR s1, ESYS_TR s2, ESYS_TR s3,
                                  const TPM2B_AUTH *auth);
TSS2_RC __wrap_Esys_TR_SetAuth(ESYS_CONTEXT *ctx, ESYS_TR h, const TPM2B_AUTH *auth);
TSS2_RC __wrap_Esys_GetCapability(ESYS_CONTEXT *ctx, ESYS_TR s1, ESYS_TR s2, ESYS_TR s3,
                                  TPM2_CAP cap, UINT32 prop, UINT32 count, TPMI_YES_NO *more,
                                  TPMS_CAPABILITY_DATA **data);

static int fake_ctx;

/* TPM_PT_NV_WRITE_RECOVERY as the fake TPM reports it (0: the next property instead, as a TPM
 * that does not implement it would answer). */
static uint32_t recovery_ms;
TSS2_RC __wrap_Esys_GetCapability(ESYS_CONTEXT *ctx, ESYS_TR s1, ESYS_TR s2, ESYS_TR s3,
                                  TPM2_CAP cap, UINT32 prop, UINT32 count, TPMI_YES_NO *more,
                                  TPMS_CAPABILITY_DATA **data)
{
	assert_int_equal(cap, TPM2_CAP_TPM_PROPERTIES);
	assert_int_equal(prop, TPM2_PT_NV_WRITE_RECOVERY);
	*data = calloc(1, sizeof(**data));
	(*data)->capability = TPM2_CAP_TPM_PROPERTIES;
	(*data)->data.tpmProperties.count = 1;
	(*data)->data.tpmProperties.tpmProperty[0].property =
	    recovery_ms != 0 ? TPM2_PT_NV_WRITE_RECOVERY : TPM2_PT_AUDIT_COUNTER_0;
	(*data)->data.tpmProperties.tpmProperty[0].value = recovery_ms != 0 ? recovery_ms : 77;
	*more = 0;
	return TSS2_RC_SUCCESS;
}

int __wrap_tcti_fd_connect(const char *spec, int *fd, char *why, size_t why_len)
{
	*fd = -1;
	return SV_OK;
}
int __wrap_tcti_fd_new(TSS2_TCTI_CONTEXT **out, int fd)
{
	*out = NULL;
	return SV_OK;
}
void __wrap_tcti_fd_free(TSS2_TCTI_CONTEXT *ctx) {}
TSS2_RC __wrap_Esys_Initialize(ESYS_CONTEXT **ctx, TSS2_TCTI_CONTEXT *tcti, TSS2_ABI_VERSION *v)
{
	*ctx = (ESYS_CONTEXT *)&fake_ctx;
	return TSS2_RC_SUCCESS;
}
void __wrap_Esys_Finalize(ESYS_CONTEXT **ctx)
{
	*ctx = NULL;
}
TSS2_RC __wrap_Esys_Startup(ESYS_CONTEXT *ctx, TPM2_SU su)
{
	return TSS2_RC_SUCCESS;
}
TSS2_RC __wrap_Esys_CreatePrimary(ESYS_CONTEXT *ctx, ESYS_TR h, ESYS_TR s1, ESYS_TR s2, ESYS_TR s3,
                                  const TPM2B_SENSITIVE_CREATE *in, const TPM2B_PUBLIC *pub,
                                  const TPM2B_DATA *outside, const TPML_PCR_SELECTION *pcr,
                                  ESYS_TR *obj, TPM2B_PUBLIC **op, TPM2B_CREATION_DATA **cd,
                                  TPM2B_DIGEST **ch, TPMT_TK_CREATION **ct)
{
	*obj = 0x100;
	*op = calloc(1, sizeof(**op));
	return TSS2_RC_SUCCESS;
}
TSS2_RC __wrap_Esys_TR_GetName(ESYS_CONTEXT *ctx, ESYS_TR h, TPM2B_NAME **name)
{
	*name = calloc(1, sizeof(**name));
	(*name)->size = 34;
	return TSS2_RC_SUCCESS;
}
TSS2_RC __wrap_Esys_StartAuthSession(ESYS_CONTEXT *ctx, ESYS_TR key, ESYS_TR bind, ESYS_TR s1,
                                     ESYS_TR s2, ESYS_TR s3, const TPM2B_NONCE *nonce, TPM2_SE type,
                                     const TPMT_SYM_DEF *sym, TPMI_ALG_HASH hash, ESYS_TR *sess)
{
	if (type == TPM2_SE_POLICY) { /* NV_ChangeAuth's policy session */
		*sess = 0x400;
		return TSS2_RC_SUCCESS;
	}
	/* The session must be salted with the primary and encrypt parameters with AES-CFB. */
	assert_int_equal(key, 0x100);
	assert_int_equal(type, TPM2_SE_HMAC);
	assert_int_equal(sym->algorithm, TPM2_ALG_AES);
	assert_int_equal(sym->mode.aes, TPM2_ALG_CFB);
	*sess = 0x200;
	return TSS2_RC_SUCCESS;
}
static TPMA_SESSION session_flags;
TSS2_RC __wrap_Esys_TRSess_SetAttributes(ESYS_CONTEXT *ctx, ESYS_TR s, TPMA_SESSION f,
                                         TPMA_SESSION m)
{
	if (s == 0x400) { /* the one-shot policy session of NV_ChangeAuth: closed after use */
		assert_false(f & TPMA_SESSION_CONTINUESESSION);
		assert_true(m & TPMA_SESSION_CONTINUESESSION);
		return TSS2_RC_SUCCESS;
	}
	assert_true(f & TPMA_SESSION_CONTINUESESSION);
	session_flags = f;
	return TSS2_RC_SUCCESS;
}
TSS2_RC __wrap_Esys_GetRandom(ESYS_CONTEXT *ctx, ESYS_TR s1, ESYS_TR s2, ESYS_TR s3, UINT16 n,
                              TPM2B_DIGEST **out)
{
	*out = calloc(1, sizeof(**out));
	(*out)->size = n;
	return TSS2_RC_SUCCESS;
}
static size_t flushed_policies;
TSS2_RC __wrap_Esys_FlushContext(ESYS_CONTEXT *ctx, ESYS_TR h)
{
	if (h == 0x400)
		flushed_policies++;
	return TSS2_RC_SUCCESS;
}
TSS2_RC __wrap_Esys_TR_FromTPMPublic(ESYS_CONTEXT *ctx, TPM2_HANDLE h, ESYS_TR s1, ESYS_TR s2,
                                     ESYS_TR s3, ESYS_TR *obj)
{
	*obj = 0x300;
	return TSS2_RC_SUCCESS;
}

/* NV_Increment answers come from a queue set by each test; the last answer repeats. */
static TSS2_RC answers[16];
static size_t n_answers, next_answer, increments;
static long sleeps[512];
static size_t n_sleeps;

TSS2_RC __wrap_Esys_NV_Increment(ESYS_CONTEXT *ctx, ESYS_TR auth, ESYS_TR nv, ESYS_TR s1,
                                 ESYS_TR s2, ESYS_TR s3)
{
	assert_int_equal(nv, 0x300);
	assert_int_equal(s1, 0x200); /* always through the salted session */
	increments++;
	TSS2_RC rc = answers[next_answer < n_answers ? next_answer : n_answers - 1];
	next_answer++;
	return rc;
}

/* NV_ChangeAuth: answers from the same queue; the auth value presented afterwards is kept. */
static size_t policies, change_auths;
static TPM2B_AUTH presented;

TSS2_RC __wrap_Esys_PolicyCommandCode(ESYS_CONTEXT *ctx, ESYS_TR policy, ESYS_TR s1, ESYS_TR s2,
                                      ESYS_TR s3, TPM2_CC code)
{
	assert_int_equal(policy, 0x400);
	assert_int_equal(code, TPM2_CC_NV_ChangeAuth);
	policies++;
	return TSS2_RC_SUCCESS;
}
TSS2_RC __wrap_Esys_NV_ChangeAuth(ESYS_CONTEXT *ctx, ESYS_TR nv, ESYS_TR s1, ESYS_TR s2, ESYS_TR s3,
                                  const TPM2B_AUTH *auth)
{
	assert_int_equal(nv, 0x300);
	assert_int_equal(s1, 0x400); /* ADMIN role: the policy session */
	assert_int_equal(s2, 0x200); /* the salted session encrypts newAuth */
	assert_true(session_flags & TPMA_SESSION_DECRYPT);
	assert_int_equal(auth->size, 32);
	assert_int_equal(policies, change_auths + 1); /* a fresh policy for every try */
	change_auths++;
	TSS2_RC rc = answers[next_answer < n_answers ? next_answer : n_answers - 1];
	next_answer++;
	return rc;
}
TSS2_RC __wrap_Esys_TR_SetAuth(ESYS_CONTEXT *ctx, ESYS_TR h, const TPM2B_AUTH *auth)
{
	assert_int_equal(h, 0x300);
	presented = *auth;
	return TSS2_RC_SUCCESS;
}

int __wrap_nanosleep(const struct timespec *req, struct timespec *rem)
{
	if (n_sleeps < sizeof(sleeps) / sizeof(sleeps[0]))
		sleeps[n_sleeps] = req->tv_sec * 1000000000L + req->tv_nsec;
	n_sleeps++;
	return 0;
}

static struct tpm *open_fake(void)
{
	struct tpm *t = NULL;
	char why[128];
	uint8_t name[TPM_NAME_MAX];
	size_t len;
	assert_int_equal(tpm_open(&t, "swtpm:host=127.0.0.1,port=1", why, sizeof(why)), SV_OK);
	assert_int_equal(tpm_counter_attach(t, TPM_NV_INDEX_DEFAULT, name, &len), SV_OK);
	n_answers = next_answer = increments = n_sleeps = 0;
	return t;
}

static void queue(size_t n, const TSS2_RC *rc)
{
	memcpy(answers, rc, n * sizeof(*rc));
	n_answers = n;
}

static void test_retry_then_success(void **state)
{
	struct tpm *t = open_fake();
	const TSS2_RC rc[] = {TPM2_RC_NV_RATE, TPM2_RC_NV_RATE,        TPM2_RC_RETRY,
	                      TPM2_RC_YIELDED, TPM2_RC_NV_UNAVAILABLE, TSS2_RC_SUCCESS};
	queue(6, rc);
	assert_int_equal(tpm_counter_increment(t), SV_OK);
	assert_int_equal(increments, 6);
	assert_int_equal(n_sleeps, 5);
	for (size_t i = 1; i < n_sleeps; i++)
		assert_true(sleeps[i] > sleeps[i - 1]); /* back-off grows */
	struct tpm_stats st;
	tpm_get_stats(t, &st);
	assert_int_equal(st.retries, 5);
	assert_int_equal(st.nv_increments, 1);
	tpm_close(t);
}

static void test_no_retry_on_real_errors(void **state)
{
	struct tpm *t = open_fake();
	const TSS2_RC fatal[] = {TPM2_RC_NV_LOCKED, TSS2_TCTI_RC_IO_ERROR,
	                         TSS2_ESYS_RC_MALFORMED_RESPONSE};
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
		n_answers = next_answer = increments = n_sleeps = 0;
		queue(1, &fatal[i]);
		assert_int_equal(tpm_counter_increment(t), SV_ERR_TPM);
		assert_int_equal(increments, 1);
		assert_int_equal(n_sleeps, 0);
	}
	tpm_close(t);
}

/* A wrong auth value (the counter was rebound by a later run) is neither retried nor a plain TPM
 * error, whichever session number the TPM names. */
static void test_auth_failure_is_reported(void **state)
{
	struct tpm *t = open_fake();
	const TSS2_RC refused[] = {TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1,
	                           TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_2,
	                           TPM2_RC_BAD_AUTH | TPM2_RC_S | TPM2_RC_1};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		n_answers = next_answer = increments = n_sleeps = 0;
		queue(1, &refused[i]);
		assert_int_equal(tpm_counter_increment(t), SV_ERR_AUTH);
		assert_int_equal(increments, 1);
		assert_int_equal(n_sleeps, 0);
	}
	tpm_close(t);
}

static void test_change_auth(void **state)
{
	struct tpm *t = open_fake();
	uint8_t auth[32];
	memset(auth, 0x42, sizeof(auth));
	policies = change_auths = flushed_policies = 0;
	memset(&presented, 0, sizeof(presented));
	/* NV_RATE twice, then success: three policy sessions, the failed two flushed */
	const TSS2_RC rc[] = {TPM2_RC_NV_RATE, TPM2_RC_RETRY, TSS2_RC_SUCCESS};
	queue(3, rc);
	assert_int_equal(tpm_counter_change_auth(t, auth, sizeof(auth)), SV_OK);
	assert_int_equal(change_auths, 3);
	assert_int_equal(flushed_policies, 2);
	assert_int_equal(n_sleeps, 2);
	assert_int_equal(presented.size, 32);
	assert_memory_equal(presented.buffer, auth, 32);
	assert_false(session_flags & TPMA_SESSION_DECRYPT); /* back to plain afterwards */
	struct tpm_stats st;
	tpm_get_stats(t, &st);
	assert_int_equal(st.nv_change_auths, 1);
	/* a real failure: not retried, and the old value stays presented */
	uint8_t other[32];
	memset(other, 0x43, sizeof(other));
	const TSS2_RC bad = TPM2_RC_POLICY_FAIL | TPM2_RC_S | TPM2_RC_1;
	n_answers = next_answer = n_sleeps = 0;
	change_auths = policies = 0;
	queue(1, &bad);
	assert_int_equal(tpm_counter_change_auth(t, other, sizeof(other)), SV_ERR_TPM);
	assert_int_equal(change_auths, 1);
	assert_memory_equal(presented.buffer, auth, 32);
	/* bad lengths never reach the TPM */
	assert_int_equal(tpm_counter_change_auth(t, other, 0), SV_ERR_RANGE);
	assert_int_equal(tpm_counter_change_auth(t, other, 65), SV_ERR_RANGE);
	assert_int_equal(change_auths, 1);
	tpm_close(t);
}

static void test_retry_budget_ends(void **state)
{
	struct tpm *t = open_fake();
	const TSS2_RC rc[] = {TPM2_RC_NV_RATE};
	queue(1, rc);
	/* BUSY, not TPM: every answer was transient, so the increment was never executed and the
	 * store may keep it owed (store.h) */
	assert_int_equal(tpm_counter_increment(t), SV_ERR_BUSY);
	struct tpm_stats st;
	tpm_get_stats(t, &st);
	assert_int_equal(st.gave_up, 1);
	assert_int_equal(st.retries, n_sleeps);
	assert_true(st.backoff_ns >= 60000000000ull);
	/* 60 s budget at a 256 ms cap: a few hundred tries, each after a sleep of at most 256 ms.
	 */
	assert_true(n_sleeps > 200 && n_sleeps < 300);
	assert_int_equal(increments, n_sleeps + 1);
	for (size_t i = 0; i < n_sleeps && i < 512; i++)
		assert_true(sleeps[i] >= 1000000L && sleeps[i] <= 256000000L);
	tpm_close(t);
}

/* A TPM that reports TPM_PT_NV_WRITE_RECOVERY: NV_RATE is retried after exactly that long; the
 * other transient codes still back off from 1 ms. A zero budget means one try. */
static void test_nv_write_recovery(void **state)
{
	recovery_ms = 300;
	struct tpm *t = open_fake();
	struct tpm_stats st;
	tpm_get_stats(t, &st);
	assert_int_equal(st.nv_write_recovery_ms, 300);
	const TSS2_RC rc[] = {TPM2_RC_NV_RATE, TPM2_RC_RETRY, TPM2_RC_NV_RATE, TSS2_RC_SUCCESS};
	queue(4, rc);
	assert_int_equal(tpm_counter_increment(t), SV_OK);
	assert_int_equal(n_sleeps, 3);
	assert_int_equal(sleeps[0], 300000000L);
	assert_int_equal(sleeps[1], 1000000L);
	assert_int_equal(sleeps[2], 300000000L);
	/* budget 0: one try, no sleep, BUSY */
	n_answers = next_answer = increments = n_sleeps = 0;
	const TSS2_RC rate[] = {TPM2_RC_NV_RATE};
	queue(1, rate);
	tpm_set_retry_budget(t, 0);
	assert_int_equal(tpm_counter_increment(t), SV_ERR_BUSY);
	assert_int_equal(increments, 1);
	assert_int_equal(n_sleeps, 0);
	/* back to the default: 60 s at 300 ms a try */
	n_answers = next_answer = increments = n_sleeps = 0;
	queue(1, rate);
	tpm_set_retry_budget(t, TPM_RETRY_BUDGET_MS);
	assert_int_equal(tpm_counter_increment(t), SV_ERR_BUSY);
	assert_int_equal(n_sleeps, 200);
	tpm_close(t);
	recovery_ms = 0;
	/* a TPM that does not report it (swtpm): 0, and NV_RATE backs off exponentially */
	t = open_fake();
	tpm_get_stats(t, &st);
	assert_int_equal(st.nv_write_recovery_ms, 0);
	tpm_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_retry_then_success),
	    cmocka_unit_test(test_no_retry_on_real_errors),
	    cmocka_unit_test(test_retry_budget_ends),
	    cmocka_unit_test(test_auth_failure_is_reported),
	    cmocka_unit_test(test_change_auth),
	    cmocka_unit_test(test_nv_write_recovery),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
