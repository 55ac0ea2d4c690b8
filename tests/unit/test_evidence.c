/*
 * Unit tests for enclave/evidence (the two attestation files, the evidence JSON) and the activate
 * body decoder of enclave/attest: round trips, hostile lengths, trailing bytes, and a policy file
 * whose digest does not match its PCR values.
 */
#include <setjmp.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <sodium.h>

#include "common/err.h"
#include "common/attest_stmt.h"
#include "enclave/approval.h"
#include "enclave/attest.h"
#include "enclave/evidence.h"

/* A TPM2B_PUBLIC-shaped blob (size, type ECC, nameAlg SHA-256, filler) of n bytes in total. */
static void fake_public(struct attest_blob *b, size_t n, uint8_t fill)
{
	b->len = n;
	b->data[0] = (uint8_t)((n - 2) >> 8);
	b->data[1] = (uint8_t)(n - 2);
	b->data[2] = 0x00;
	b->data[3] = 0x23;
	b->data[4] = 0x00;
	b->data[5] = 0x0b;
	memset(b->data + 6, fill, n - 6);
}

static void fake_state(struct attest_state *st)
{
	memset(st, 0, sizeof(*st));
	fake_public(&st->ek_public, 314, 1);
	st->ek_cert_len = 900;
	memset(st->ek_cert, 0x30, st->ek_cert_len);
	fake_public(&st->ak_public, 90, 2);
	st->ak_private.len = 126;
	memset(st->ak_private.data, 3, 126);
	fake_public(&st->id_public, 122, 4);
	st->id_private.len = 126;
	memset(st->id_private.data, 5, 126);
	st->certify_attest.len = 150;
	memset(st->certify_attest.data, 6, 150);
	st->certify_signature.len = 72;
	memset(st->certify_signature.data, 7, 72);
	fake_public(&st->policy_key, 90, 8);
}

static void fake_policy(struct attest_policy *pol)
{
	memset(pol, 0, sizeof(*pol));
	pol->boot_pcrs = 0x8f; /* 0-3, 7 */
	for (int i = 0; i < 5; i++)
		memset(pol->values[i], 0x10 + i, 32);
	attest_policy_pcr(pol->boot_pcrs, (const uint8_t(*)[32])pol->values, pol->approved);
	pol->signature.len = 72;
	memset(pol->signature.data, 9, 72);
}

static char dir[64];

static int setup(void **state)
{
	strcpy(dir, "/tmp/test_evidence.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static uint8_t *slurp(const char *name, size_t *n)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "rb");
	assert_non_null(f);
	uint8_t *b = malloc(65536);
	*n = fread(b, 1, 65536, f);
	fclose(f);
	return b;
}

static void test_files_round_trip(void **state)
{
	static struct attest_state st, got;
	static struct attest_policy pol, gotp;
	char why[256];
	fake_state(&st);
	fake_policy(&pol);
	assert_int_equal(evidence_save(dir, &st, &pol, why, sizeof(why)), 0);
	assert_int_equal(evidence_load(dir, &got, &gotp, why, sizeof(why)), 0);
	assert_int_equal(got.ek_cert_len, 900);
	assert_memory_equal(got.ek_public.data, st.ek_public.data, st.ek_public.len);
	assert_memory_equal(got.certify_attest.data, st.certify_attest.data, 150);
	assert_int_equal(gotp.boot_pcrs, 0x8f);
	assert_memory_equal(gotp.approved, pol.approved, 32);
	/* names and init_identity are recomputed from the public areas */
	uint8_t name[34], ii[32];
	assert_int_equal(attest_name_from_public(st.ak_public.data, st.ak_public.len, name), 0);
	assert_memory_equal(got.ak_name, name, 34);
	attest_init_identity(got.ek_name, got.ak_name, got.id_name, ii);
	assert_memory_equal(got.init_identity, ii, 32);
	struct stat sb;
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, EVIDENCE_FN_STATE);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	/* written once: a second save is refused and leaves the first intact */
	assert_int_equal(evidence_save(dir, &st, &pol, why, sizeof(why)), SV_ERR_EXISTS);
	/* the policy file is replaced atomically */
	pol.boot_pcrs = 0x80;
	memset(pol.values[0], 0x77, 32);
	attest_policy_pcr(pol.boot_pcrs, (const uint8_t(*)[32])pol.values, pol.approved);
	assert_int_equal(evidence_save_policy(dir, &pol, why, sizeof(why)), 0);
	assert_int_equal(evidence_load(dir, &got, &gotp, why, sizeof(why)), 0);
	assert_int_equal(gotp.boot_pcrs, 0x80);
	evidence_remove(dir);
	assert_int_equal(evidence_load(dir, &got, &gotp, why, sizeof(why)), SV_ERR_NOTFOUND);
}

static void test_decoders_hostile(void **state)
{
	static struct attest_state st, got;
	static struct attest_policy pol, gotp;
	char why[256];
	size_t n, m;
	fake_state(&st);
	fake_policy(&pol);
	assert_int_equal(evidence_save(dir, &st, &pol, why, sizeof(why)), 0);
	uint8_t *a = slurp(EVIDENCE_FN_STATE, &n);
	uint8_t *p = slurp(EVIDENCE_FN_POLICY, &m);
	evidence_remove(dir);
	assert_int_equal(evidence_decode_state(a, n, &got), 0);
	assert_int_equal(evidence_decode_policy(p, m, &gotp), 0);
	/* every truncation and one trailing byte are refused */
	for (size_t k = 0; k < n; k++)
		assert_int_equal(evidence_decode_state(a, k, &got), SV_ERR_INVALID);
	for (size_t k = 0; k < m; k++)
		assert_int_equal(evidence_decode_policy(p, k, &gotp), SV_ERR_INVALID);
	a = realloc(a, n + 1);
	a[n] = 0;
	assert_int_equal(evidence_decode_state(a, n + 1, &got), SV_ERR_INVALID);
	/* a length field of 0xffff */
	a[8] = a[9] = 0xff;
	assert_int_equal(evidence_decode_state(a, n, &got), SV_ERR_INVALID);
	/* a policy whose stored digest does not match its PCR values */
	p[m - 2 - 72 - 1] ^= 1;
	assert_int_equal(evidence_decode_policy(p, m, &gotp), SV_ERR_INVALID);
	p[m - 2 - 72 - 1] ^= 1;
	p[12] ^= 1; /* a PCR value */
	assert_int_equal(evidence_decode_policy(p, m, &gotp), SV_ERR_INVALID);
	p[12] ^= 1;
	/* selection 0 or beyond PCR 23 */
	uint8_t sel[4];
	memcpy(sel, p + 8, 4);
	memset(p + 8, 0, 4);
	assert_int_equal(evidence_decode_policy(p, m, &gotp), SV_ERR_INVALID);
	memcpy(p + 8, "\x01\x00\x00\x8f", 4);
	assert_int_equal(evidence_decode_policy(p, m, &gotp), SV_ERR_INVALID);
	memcpy(p + 8, sel, 4);
	assert_int_equal(evidence_decode_policy(p, m, &gotp), 0);
	free(a);
	free(p);
}

/* vault-policy.bin (enclave/approval.h): the same body, K's public area after it. */
static void test_vault_approval_file(void **state)
{
	static struct approval_vault v, got;
	char why[256];
	size_t n;
	fake_policy(&v.pol);
	fake_public(&v.key, 90, 8);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_int_equal(approval_vault_load(dfd, dir, &got, why, sizeof(why)), SV_ERR_NOTFOUND);
	assert_int_equal(approval_vault_save(dfd, dir, &v, why, sizeof(why)), SV_OK);
	assert_int_equal(approval_vault_load(dfd, dir, &got, why, sizeof(why)), SV_OK);
	assert_int_equal(got.pol.boot_pcrs, v.pol.boot_pcrs);
	assert_memory_equal(got.pol.approved, v.pol.approved, 32);
	assert_int_equal(got.key.len, v.key.len);
	assert_memory_equal(got.key.data, v.key.data, v.key.len);
	uint8_t *p = slurp(APPROVAL_FN_VAULT, &n);
	for (size_t k = 0; k < n; k++)
		assert_int_equal(approval_vault_decode(p, k, &got), SV_ERR_INVALID);
	p = realloc(p, n + 1);
	p[n] = 0;
	assert_int_equal(approval_vault_decode(p, n + 1, &got), SV_ERR_INVALID);
	p[0] ^= 1; /* magic */
	assert_int_equal(approval_vault_decode(p, n, &got), SV_ERR_INVALID);
	p[0] ^= 1;
	p[12] ^= 1; /* a PCR value: the digest no longer matches */
	assert_int_equal(approval_vault_decode(p, n, &got), SV_ERR_INVALID);
	p[12] ^= 1;
	p[n - 90 + 4] ^= 0x0f; /* K's nameAlg is not SHA-256 */
	assert_int_equal(approval_vault_decode(p, n, &got), SV_ERR_INVALID);
	p[n - 90 + 4] ^= 0x0f;
	p[n - 92] = p[n - 91] = 0xff; /* K's length field */
	assert_int_equal(approval_vault_decode(p, n, &got), SV_ERR_INVALID);
	free(p);
	/* the vault key's authPolicy is PolicyAuthorize(K) with its own policyRef */
	uint8_t name[ATTEST_NAME_LEN], want[32], empty[32], got_pol[32];
	assert_int_equal(attest_name_from_public(v.key.data, v.key.len, name), SV_OK);
	attest_policy_authorize_ref(name, (const uint8_t *)ATTEST_REF_VAULT_KEY,
	                            ATTEST_REF_VAULT_KEY_LEN, want);
	attest_policy_authorize(name, empty);
	assert_int_equal(approval_vault_policy(&v.key, got_pol), SV_OK);
	assert_memory_equal(got_pol, want, 32);
	assert_memory_not_equal(got_pol, empty, 32);
	close(dfd);
}

static void test_activate_decode(void **state)
{
	static const uint8_t ok[] = {1, 0, 4, 0, 2, 0xaa, 0xbb, 0, 3, 0, 1, 0xcc};
	uint8_t b[sizeof(ok) + 1];
	const uint8_t *id, *sec;
	size_t il, sl;
	assert_int_equal(attest_activate_decode(ok, sizeof(ok), &id, &il, &sec, &sl), 0);
	assert_ptr_equal(id, ok + 3);
	assert_int_equal(il, 4);
	assert_ptr_equal(sec, ok + 9);
	assert_int_equal(sl, 3);
	for (size_t k = 0; k < sizeof(ok); k++)
		assert_int_equal(attest_activate_decode(ok, k, &id, &il, &sec, &sl),
		                 SV_ERR_INVALID);
	memcpy(b, ok, sizeof(ok));
	b[sizeof(ok)] = 0;
	assert_int_equal(attest_activate_decode(b, sizeof(b), &id, &il, &sec, &sl), SV_ERR_INVALID);
	b[0] = 2;
	assert_int_equal(attest_activate_decode(b, sizeof(ok), &id, &il, &sec, &sl),
	                 SV_ERR_INVALID);
	memcpy(b, ok, sizeof(ok));
	b[4] = 3; /* the TPM2B's own size disagrees with the outer length */
	assert_int_equal(attest_activate_decode(b, sizeof(ok), &id, &il, &sec, &sl),
	                 SV_ERR_INVALID);
	memcpy(b, ok, sizeof(ok));
	b[4] = 0; /* an empty TPM2B_ID_OBJECT: outer length 2 */
	b[2] = 2;
	assert_int_equal(attest_activate_decode(b, 2 + 1 + 2 + 5, &id, &il, &sec, &sl),
	                 SV_ERR_INVALID);
	/* a hostile outer length */
	memcpy(b, ok, sizeof(ok));
	b[1] = b[2] = 0xff;
	assert_int_equal(attest_activate_decode(b, sizeof(ok), &id, &il, &sec, &sl),
	                 SV_ERR_INVALID);
}

static void test_json(void **state)
{
	static struct attest_state st;
	static struct attest_policy pol;
	static struct attest_quote q;
	struct attest_blob sig = {.len = 72};
	struct attest_stmt s;
	uint8_t body[ATTEST_STMT_LEN], nonce[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct sv_buf out;
	fake_state(&st);
	fake_policy(&pol);
	q.pcrs = pol.boot_pcrs | (1u << 10);
	for (int i = 0; i < 6; i++)
		memset(q.values[i], i, 32);
	q.attest.len = 100;
	q.signature.len = 72;
	memset(&s, 0xab, sizeof(s));
	attest_stmt_encode(body, &s);
	assert_int_equal(sv_buf_init(&out, 65536), 0);
	assert_int_equal(evidence_json(&st, &pol, &q, nonce, 8, body, &sig, &out), 0);
	assert_true(out.len < 65536);
	assert_int_equal(sv_buf_put_u8(&out, 0), 0);
	struct json_object *j = json_tokener_parse((const char *)out.data), *v, *w;
	assert_non_null(j);
	assert_true(json_object_object_get_ex(j, "nonce", &v));
	assert_string_equal(json_object_get_string(v), "0102030405060708");
	assert_true(json_object_object_get_ex(j, "quote", &v));
	assert_true(json_object_object_get_ex(v, "pcrs", &w));
	assert_int_equal(json_object_object_length(w), 6);
	assert_true(json_object_object_get_ex(w, "10", &w));
	assert_true(json_object_object_get_ex(j, "identity", &v));
	assert_true(json_object_object_get_ex(v, "boot_pcrs", &w));
	assert_int_equal(json_object_array_length(w), 5);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(w, 4)), 7);
	assert_true(json_object_object_get_ex(j, "ek_certificate", &v));
	json_object_put(j);
	/* no certificate: the field is left out; a bad statement body is refused */
	st.ek_cert_len = 0;
	sv_buf_reset(&out);
	assert_int_equal(evidence_json(&st, &pol, &q, nonce, 8, body, &sig, &out), 0);
	assert_null(memmem(out.data, out.len, "ek_certificate", 14));
	body[0] ^= 1;
	sv_buf_reset(&out);
	assert_true(evidence_json(&st, &pol, &q, nonce, 8, body, &sig, &out) < 0);
	sv_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_files_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_decoders_hostile, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vault_approval_file, setup, teardown),
	    cmocka_unit_test(test_activate_decode),
	    cmocka_unit_test(test_json),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
