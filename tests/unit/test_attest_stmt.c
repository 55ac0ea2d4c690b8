/*
 * Unit tests for common/attest_stmt. The expected digests were derived independently of this
 * code: PolicyPCR and PolicyAuthorize with tpm2-tools on a swtpm (tpm2_pcrextend 0:sha256=aa..,
 * 3:sha256=bb..; tpm2_createpolicy --policy-pcr -l sha256:0,1,3; tpm2_policyauthorize in a trial
 * session with the name 000b 00 01 .. 1f), the rest with Python's hashlib.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/attest_stmt.h"
#include "common/err.h"

static void unhex(const char *hex, uint8_t *out, size_t n)
{
	assert_int_equal(strlen(hex), 2 * n);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void assert_hex(const uint8_t *got, const char *hex)
{
	uint8_t want[64];
	size_t n = strlen(hex) / 2;
	unhex(hex, want, n);
	assert_memory_equal(got, want, n);
}

static void test_stmt_round_trip(void **state)
{
	struct attest_stmt s, d;
	uint8_t out[ATTEST_STMT_LEN];

	assert_int_equal(ATTEST_STMT_LEN, 144);
	memset(s.server_public_key, 1, 32);
	memset(s.policy_hash, 2, 32);
	memset(s.build_hash, 3, 32);
	memset(s.init_identity, 4, 32);
	attest_stmt_encode(out, &s);
	assert_memory_equal(out, "sealvault-stmt-1", 16);
	assert_int_equal(out[16], 1);
	assert_int_equal(out[48], 2);
	assert_int_equal(out[80], 3);
	assert_int_equal(out[112], 4);
	assert_int_equal(out[143], 4);
	assert_int_equal(attest_stmt_decode(&d, out, sizeof(out)), 0);
	assert_memory_equal(&d, &s, sizeof(s));

	/* hostile lengths and a wrong magic */
	assert_int_equal(attest_stmt_decode(&d, out, 0), SV_ERR_INVALID);
	assert_int_equal(attest_stmt_decode(&d, out, 143), SV_ERR_INVALID);
	uint8_t longer[145] = {0};
	memcpy(longer, out, sizeof(out));
	assert_int_equal(attest_stmt_decode(&d, longer, sizeof(longer)), SV_ERR_INVALID);
	out[15] ^= 1;
	assert_int_equal(attest_stmt_decode(&d, out, sizeof(out)), SV_ERR_INVALID);
}

static int temp_file(const uint8_t *data, size_t n)
{
	char path[] = "/tmp/test_attest_stmt.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	return fd;
}

static void test_build_hash(void **state)
{
	int fds[3];
	uint8_t h[32];

	fds[0] = temp_file((const uint8_t *)"one", 3);
	fds[1] = temp_file((const uint8_t *)"two", 3);
	fds[2] = temp_file((const uint8_t *)"three", 5);
	/* the offsets are at the end after write: hashing must not depend on them */
	assert_int_equal(attest_build_hash_fds(fds, h), 0);
	assert_hex(h, "7a9c45f748775264268828ee3377825ba6cab81c8185d43460df102073445509");
	assert_int_equal(lseek(fds[0], 0, SEEK_CUR), 3);

	/* order matters: swapping two binaries changes the hash */
	int swapped[3] = {fds[1], fds[0], fds[2]};
	uint8_t h2[32];
	assert_int_equal(attest_build_hash_fds(swapped, h2), 0);
	assert_memory_not_equal(h, h2, 32);

	/* by path, through /proc/self/fd */
	char p[3][64];
	const char *paths[3];
	for (int i = 0; i < 3; i++) {
		snprintf(p[i], sizeof(p[i]), "/proc/self/fd/%d", fds[i]);
		paths[i] = p[i];
	}
	assert_int_equal(attest_build_hash_paths(paths, h2), 0);
	assert_memory_equal(h, h2, 32);
	const char *missing[3] = {p[0], "/nonexistent/sealvault-enclave", p[2]};
	assert_int_equal(attest_build_hash_paths(missing, h2), SV_ERR_IO);

	/* from digests */
	uint8_t d[3][32];
	crypto_hash_sha256(d[0], (const uint8_t *)"one", 3);
	crypto_hash_sha256(d[1], (const uint8_t *)"two", 3);
	crypto_hash_sha256(d[2], (const uint8_t *)"three", 5);
	attest_build_hash_digests((const uint8_t(*)[32])d, h2);
	assert_memory_equal(h, h2, 32);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	assert_int_equal(attest_build_hash_fds(fds, h2), SV_ERR_IO);
}

static void test_file_sha256_multi_chunk(void **state)
{
	uint8_t *big = malloc(40000);
	uint8_t h[32];
	assert_non_null(big);
	for (size_t i = 0; i < 40000; i++)
		big[i] = (uint8_t)((i * 7) & 0xff);
	int fd = temp_file(big, 40000);
	assert_int_equal(attest_file_sha256_fd(fd, h), 0);
	assert_hex(h, "bb34e9c26e2402d1f56b9b05c69d64cf7c145a9b65db5a23b8260f13754bf00a");
	close(fd);
	free(big);
}

static void test_init_identity(void **state)
{
	uint8_t ek[34], ak[34], id[34], h[32];
	ek[0] = ak[0] = id[0] = 0;
	ek[1] = ak[1] = id[1] = 0x0b;
	memset(ek + 2, 1, 32);
	memset(ak + 2, 2, 32);
	memset(id + 2, 3, 32);
	attest_init_identity(ek, ak, id, h);
	assert_hex(h, "1064b32729c270110aa32347274993b2bd2eb2342ed756d08c021ae1a209d874");
}

static void test_name_from_public(void **state)
{
	uint8_t pub[26], name[34];
	pub[0] = 0;
	pub[1] = 24;
	pub[2] = 0x00;
	pub[3] = 0x23; /* TPM_ALG_ECC */
	pub[4] = 0x00;
	pub[5] = 0x0b; /* nameAlg SHA-256 */
	for (int i = 0; i < 20; i++)
		pub[6 + i] = (uint8_t)i;
	assert_int_equal(attest_name_from_public(pub, sizeof(pub), name), 0);
	assert_hex(name, "000b1169de2d20c38751523560c3c8707f212d48c78e4a2be0ea067c63dc74f1319b");

	assert_int_equal(attest_name_from_public(pub, 0, name), SV_ERR_INVALID);
	assert_int_equal(attest_name_from_public(pub, 5, name), SV_ERR_INVALID);
	assert_int_equal(attest_name_from_public(pub, sizeof(pub) - 1, name), SV_ERR_INVALID);
	pub[1] = 0xff;
	assert_int_equal(attest_name_from_public(pub, sizeof(pub), name), SV_ERR_INVALID);
	pub[1] = 24;
	pub[5] = 0x04; /* SHA-1 */
	assert_int_equal(attest_name_from_public(pub, sizeof(pub), name), SV_ERR_INVALID);
}

static void test_pcrs_parse_format(void **state)
{
	uint32_t m;
	char s[80];

	assert_int_equal(attest_pcrs_parse("0-7", &m), 0);
	assert_int_equal(m, 0xff);
	assert_int_equal(attest_pcrs_parse("0,1,2,3,4,5,6,7", &m), 0);
	assert_int_equal(m, 0xff);
	assert_int_equal(attest_pcrs_parse("0-3,10,23", &m), 0);
	assert_int_equal(m, 0x80040f);
	assert_int_equal(attest_pcrs_parse("7", &m), 0);
	assert_int_equal(m, 0x80);
	assert_int_equal(attest_pcrs_count(0x80040f), 6);

	const char *bad[] = {"",  ",",   "0,",   ",0", "24", "0-24",        "7-0",
	                     "a", "0 1", "0--3", "-1", "1-", "99999999999", "0,,1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = 0x1234;
		assert_true(attest_pcrs_parse(bad[i], &m) < 0);
		assert_int_equal(m, 0x1234);
	}
	assert_true(attest_pcrs_parse(NULL, &m) < 0);

	assert_int_equal(attest_pcrs_format(0x80040f, s, sizeof(s)), 0);
	assert_string_equal(s, "0,1,2,3,10,23");
	assert_int_equal(attest_pcrs_format(0, s, sizeof(s)), 0);
	assert_string_equal(s, "");
	assert_int_equal(attest_pcrs_format(0xff, s, 5), SV_ERR_RANGE);
	assert_int_equal(attest_pcrs_format(0xff, s, 0), SV_ERR_RANGE);
}

static void test_pcrsel(void **state)
{
	uint8_t sel[ATTEST_PCRSEL_LEN];
	uint32_t m;

	attest_pcrsel_marshal(0x4ff, sel);
	assert_hex(sel, "00000001000b03ff0400");
	assert_int_equal(attest_pcrsel_parse(sel, sizeof(sel), &m), 0);
	assert_int_equal(m, 0x4ff);
	assert_int_equal(attest_pcrsel_parse(sel, sizeof(sel) - 1, &m), SV_ERR_INVALID);
	uint8_t longer[ATTEST_PCRSEL_LEN + 1];
	memcpy(longer, sel, sizeof(sel));
	longer[ATTEST_PCRSEL_LEN] = 0;
	assert_int_equal(attest_pcrsel_parse(longer, sizeof(longer), &m), SV_ERR_INVALID);
	sel[5] = 0x04; /* SHA-1 bank */
	assert_int_equal(attest_pcrsel_parse(sel, sizeof(sel), &m), SV_ERR_INVALID);
	sel[5] = 0x0b;
	sel[3] = 2; /* two banks */
	assert_int_equal(attest_pcrsel_parse(sel, sizeof(sel), &m), SV_ERR_INVALID);
}

static void test_policy_pcr_matches_tpm2_tools(void **state)
{
	uint8_t v[3][32], d[32];
	unhex("9ef814b42fa0be12d197c44d3e8e03441a4b1118237658368ba1351090e556ed", v[0], 32);
	memset(v[1], 0, 32);
	unhex("86bfbce7f88e77dab6bbfb923bb70e2411d374dc658db751c9bdec438f5cce54", v[2], 32);
	attest_policy_pcr(0x0b, (const uint8_t(*)[32])v, d);
	assert_hex(d, "656176aeca931cd12d9720c295a84c0a8c3f42a9a81689858837bbeca5039b4b");
	/* a changed PCR value changes the policy */
	v[1][31] = 1;
	attest_policy_pcr(0x0b, (const uint8_t(*)[32])v, d);
	assert_memory_not_equal(d, "\x65\x61\x76\xae", 4);

	uint8_t a[32];
	unhex("656176aeca931cd12d9720c295a84c0a8c3f42a9a81689858837bbeca5039b4b", d, 32);
	attest_policy_ahash(d, a);
	assert_hex(a, "a1716b0f413cea30a8efc2aded20cca15c96108fa3851ec1ce80c8414a761959");
}

static void test_policy_authorize_matches_tpm2_tools(void **state)
{
	uint8_t name[34], d[32];
	name[0] = 0;
	name[1] = 0x0b;
	for (int i = 0; i < 32; i++)
		name[2 + i] = (uint8_t)i;
	attest_policy_authorize(name, d);
	assert_hex(d, "3c2dab7276081bc296d40691314626af563749e6640a111387d7b1e402a8a2c0");
	/* with a policyRef: the second step hashes it after the first step's digest */
	uint8_t r[32], mid[32], step[64];
	attest_policy_authorize_ref(name, NULL, 0, r);
	assert_memory_equal(r, d, 32);
	attest_policy_authorize_ref(name, (const uint8_t *)"ref", 3, r);
	assert_memory_not_equal(r, d, 32);
	{
		uint8_t in[32 + 4 + 34] = {0};
		in[32] = 0x00, in[33] = 0x00, in[34] = 0x01, in[35] = 0x6a; /* PolicyAuthorize */
		memcpy(in + 36, name, 34);
		crypto_hash_sha256(mid, in, sizeof(in));
		memcpy(step, mid, 32);
		memcpy(step + 32, "ref", 3);
		crypto_hash_sha256(d, step, 35);
	}
	assert_memory_equal(r, d, 32);
	attest_policy_ahash_ref(mid, (const uint8_t *)"ref", 3, r);
	memcpy(step, mid, 32);
	crypto_hash_sha256(d, step, 35);
	assert_memory_equal(r, d, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stmt_round_trip),
	    cmocka_unit_test(test_build_hash),
	    cmocka_unit_test(test_file_sha256_multi_chunk),
	    cmocka_unit_test(test_init_identity),
	    cmocka_unit_test(test_name_from_public),
	    cmocka_unit_test(test_pcrs_parse_format),
	    cmocka_unit_test(test_pcrsel),
	    cmocka_unit_test(test_policy_pcr_matches_tpm2_tools),
	    cmocka_unit_test(test_policy_authorize_matches_tpm2_tools),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
