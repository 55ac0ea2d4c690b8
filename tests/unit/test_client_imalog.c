/*
 * client/imalog.c: ima-ng ascii log parsing, template hashes, PCR 10 replay (with a log that
 * grew after the quote), the allow-list callback, and the refusal of malformed lines. The
 * expected template data and PCR values are computed here from the ima-ng layout directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "client/imalog.h"
#include "common/err.h"

struct ima {
	char text[8192];
	size_t n;
	uint8_t pcr[32];      /* PCR 10 after every line so far */
	uint8_t after[8][32]; /* PCR 10 after line i+1 */
	int lines;
};

/* Appends one ima-ng entry; sha1col: the template hash column as SHA-1 (else SHA-256). */
static void add(struct ima *m, const uint8_t file[32], const char *path, int sha1col)
{
	uint8_t t[512], th[32], sha1[20], buf[64];
	size_t o = 0, pl = strlen(path) + 1;
	char fh[65], col[65];
	t[o++] = 40, t[o++] = 0, t[o++] = 0, t[o++] = 0;
	memcpy(t + o, "sha256:\0", 8), o += 8;
	memcpy(t + o, file, 32), o += 32;
	t[o++] = (uint8_t)pl, t[o++] = (uint8_t)(pl >> 8), t[o++] = 0, t[o++] = 0;
	memcpy(t + o, path, pl), o += pl;
	crypto_hash_sha256(th, t, o);
	unsigned int n = 0;
	assert_int_equal(EVP_Digest(t, o, sha1, &n, EVP_sha1(), NULL), 1);
	sodium_bin2hex(fh, sizeof(fh), file, 32);
	if (sha1col)
		sodium_bin2hex(col, sizeof(col), sha1, 20);
	else
		sodium_bin2hex(col, sizeof(col), th, 32);
	m->n += (size_t)snprintf(m->text + m->n, sizeof(m->text) - m->n,
	                         "10 %s ima-ng sha256:%s %s\n", col, fh, path);
	memcpy(buf, m->pcr, 32);
	memcpy(buf + 32, th, 32);
	crypto_hash_sha256(m->pcr, buf, 64);
	memcpy(m->after[m->lines++], m->pcr, 32);
}

static uint8_t F1[32], F2[32], F3[32];

/* Allows F1 anywhere and F2 only at /usr/bin/ok. */
static int allow(void *arg, const uint8_t sha[32], const char *path)
{
	(*(int *)arg)++;
	return memcmp(sha, F1, 32) == 0 ||
	       (memcmp(sha, F2, 32) == 0 && strcmp(path, "/usr/bin/ok") == 0);
}

static void sample(struct ima *m)
{
	uint8_t agg[32];
	memset(m, 0, sizeof(*m));
	memset(agg, 0x42, 32);
	add(m, agg, "boot_aggregate", 1);
	add(m, F1, "/usr/libexec/sealvault/sealvault-enclave", 1);
	add(m, F2, "/usr/bin/ok", 0);
	add(m, F3, "/usr/bin/with space", 1); /* not allowed */
}

static void test_replay_and_prefix(void **state)
{
	struct ima m;
	struct client_imalog_result r;
	char why[512];
	int calls = 0;
	sample(&m);
	/* the quote saw three entries; the fourth (not allowed) came later and is not judged */
	assert_int_equal(
	    client_imalog_check(&r, m.text, m.n, m.after[2], allow, &calls, why, sizeof(why)),
	    SV_OK);
	assert_int_equal(r.entries, 3);
	assert_int_equal(r.total, 4);
	assert_int_equal(calls, 2); /* boot_aggregate needs no allowance */
	/* the quote saw all four: the path with a space is named */
	assert_int_equal(
	    client_imalog_check(&r, m.text, m.n, m.after[3], allow, &calls, why, sizeof(why)),
	    SV_ERR_AUTH);
	assert_non_null(strstr(why, "line 4: /usr/bin/with space ran on the host"));
	/* no prefix replays to this value */
	uint8_t other[32];
	memset(other, 7, 32);
	assert_int_equal(
	    client_imalog_check(&r, m.text, m.n, other, allow, &calls, why, sizeof(why)),
	    SV_ERR_AUTH);
	assert_non_null(strstr(why, "does not replay"));
}

static void test_path_bound_allowance(void **state)
{
	struct ima m;
	struct client_imalog_result r;
	char why[512];
	int calls = 0;
	memset(&m, 0, sizeof(m));
	add(&m, F2, "/usr/bin/elsewhere", 1);
	assert_int_equal(
	    client_imalog_check(&r, m.text, m.n, m.pcr, allow, &calls, why, sizeof(why)),
	    SV_ERR_AUTH);
	assert_non_null(strstr(why, "/usr/bin/elsewhere"));
	/* boot_aggregate is only exempt as the first entry */
	memset(&m, 0, sizeof(m));
	add(&m, F1, "/x", 1);
	add(&m, F3, "boot_aggregate", 1);
	assert_int_equal(
	    client_imalog_check(&r, m.text, m.n, m.pcr, allow, &calls, why, sizeof(why)),
	    SV_ERR_AUTH);
	assert_non_null(strstr(why, "line 2"));
}

/* A violation entry (zero template hash) extends 0xff.. and is never allowed. */
static void test_violation(void **state)
{
	struct ima m;
	struct client_imalog_result r;
	char why[512], fh[65];
	uint8_t ff[64];
	int calls = 0;
	memset(&m, 0, sizeof(m));
	sodium_bin2hex(fh, sizeof(fh), F1, 32);
	m.n = (size_t)snprintf(
	    m.text, sizeof(m.text),
	    "10 0000000000000000000000000000000000000000 ima-ng sha256:%s /tmp/f\n", fh);
	memset(ff, 0, 32);
	memset(ff + 32, 0xff, 32);
	crypto_hash_sha256(m.pcr, ff, 64);
	assert_int_equal(
	    client_imalog_check(&r, m.text, m.n, m.pcr, allow, &calls, why, sizeof(why)),
	    SV_ERR_AUTH);
	assert_non_null(strstr(why, "measurement violation"));
}

static void malformed(const char *line, const char *text)
{
	struct client_imalog_result r;
	char why[512];
	uint8_t pcr[32] = {1};
	int calls = 0;
	assert_int_equal(
	    client_imalog_check(&r, line, strlen(line), pcr, allow, &calls, why, sizeof(why)),
	    SV_ERR_INVALID);
	assert_non_null(strstr(why, text));
}

static void test_malformed(void **state)
{
	struct ima m;
	sample(&m);
	char line[600];
	const char *h40 = "0123456789abcdef0123456789abcdef01234567";
	const char *h64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	snprintf(line, sizeof(line), "%.*s", (int)(m.n - 1), m.text); /* last newline cut */
	malformed(line, "line 4: no end of line");
	snprintf(line, sizeof(line), "11 %s ima-ng sha256:%s /x\n", h40, h64);
	malformed(line, "not a PCR 10 entry");
	snprintf(line, sizeof(line), "10 %s ima-buf sha256:%s /x\n", h40, h64);
	malformed(line, "not an ima-ng or ima-sig entry");
	snprintf(line, sizeof(line), "10 %s ima-ng sha1:%s /x\n", h40, h40);
	malformed(line, "sha256:<64 hex>");
	snprintf(line, sizeof(line), "10 %.39s ima-ng sha256:%s /x\n", h40, h64);
	malformed(line, "40 or 64 hex");
	snprintf(line, sizeof(line), "10 %s ima-ng sha256:%s\n", h40, h64);
	malformed(line, "fewer than five fields");
	snprintf(line, sizeof(line), "10 %s ima-ng sha256:%s \n", h40, h64);
	malformed(line, "path is empty");
	snprintf(line, sizeof(line), "10 %s ima-ng sha256:%s /x\n", h40, h64);
	malformed(line, "template hash does not match");
	snprintf(line, sizeof(line), "10 %s ima-ng sha256:%.63sG /x\n", h40, h64);
	malformed(line, "sha256:<64 hex>");
	malformed("\n", "fewer than five fields");
	/* a NUL inside the path */
	char nul[200];
	int n = snprintf(nul, sizeof(nul), "10 %s ima-ng sha256:%s /a", h40, h64);
	nul[n] = '\0', nul[n + 1] = 'b', nul[n + 2] = '\n';
	struct client_imalog_result r;
	char why[512];
	uint8_t pcr[32] = {1};
	int calls = 0;
	assert_int_equal(
	    client_imalog_check(&r, nul, (size_t)n + 3, pcr, allow, &calls, why, sizeof(why)),
	    SV_ERR_INVALID);
	/* an over-long path */
	static char big[CLIENT_IMALOG_PATH_MAX + 200];
	n = snprintf(big, sizeof(big), "10 %s ima-ng sha256:%s /", h40, h64);
	memset(big + n, 'a', CLIENT_IMALOG_PATH_MAX);
	big[n + CLIENT_IMALOG_PATH_MAX] = '\n';
	assert_int_equal(client_imalog_check(&r, big, (size_t)n + CLIENT_IMALOG_PATH_MAX + 1, pcr,
	                                     allow, &calls, why, sizeof(why)),
	                 SV_ERR_INVALID);
	assert_non_null(strstr(why, "too long"));
	assert_int_equal(calls, 0);
}

/* An empty log attests nothing (IMA logs boot_aggregate first); every truncation of a real
 * log is handled. */
static void test_empty_and_truncations(void **state)
{
	struct ima m;
	struct client_imalog_result r;
	char why[512];
	uint8_t zero[32] = {0};
	int calls = 0;
	assert_int_equal(client_imalog_check(&r, "", 0, zero, allow, &calls, why, sizeof(why)),
	                 SV_ERR_AUTH);
	sample(&m);
	for (size_t n = 0; n < m.n; n++) {
		int rc =
		    client_imalog_check(&r, m.text, n, m.after[0], allow, &calls, why, sizeof(why));
		assert_true(rc == SV_OK || rc == SV_ERR_INVALID || rc == SV_ERR_AUTH);
	}
}

/* ima-sig (appraisal set-ups): a third template field, the signature, printed in hex after the
 * path (nothing after the separating space when the file has none); paths may hold spaces. */
static void add_sig(struct ima *m, const uint8_t file[32], const char *path, const uint8_t *sig,
                    size_t sig_len)
{
	uint8_t t[1024], th[32], buf[64];
	size_t o = 0, pl = strlen(path) + 1;
	char fh[65], col[65], sh[2 * 300 + 1] = "";
	t[o++] = 40, t[o++] = 0, t[o++] = 0, t[o++] = 0;
	memcpy(t + o, "sha256:\0", 8), o += 8;
	memcpy(t + o, file, 32), o += 32;
	t[o++] = (uint8_t)pl, t[o++] = (uint8_t)(pl >> 8), t[o++] = 0, t[o++] = 0;
	memcpy(t + o, path, pl), o += pl;
	t[o++] = (uint8_t)sig_len, t[o++] = (uint8_t)(sig_len >> 8), t[o++] = 0, t[o++] = 0;
	if (sig_len) /* sig may be NULL; memcpy's arguments must not be, even for 0 bytes */
		memcpy(t + o, sig, sig_len), o += sig_len;
	crypto_hash_sha256(th, t, o);
	sodium_bin2hex(fh, sizeof(fh), file, 32);
	sodium_bin2hex(col, sizeof(col), th, 32);
	if (sig_len)
		sodium_bin2hex(sh, sizeof(sh), sig, sig_len);
	m->n += (size_t)snprintf(m->text + m->n, sizeof(m->text) - m->n,
	                         "10 %s ima-sig sha256:%s %s %s\n", col, fh, path, sh);
	memcpy(buf, m->pcr, 32);
	memcpy(buf + 32, th, 32);
	crypto_hash_sha256(m->pcr, buf, 64);
	memcpy(m->after[m->lines++], m->pcr, 32);
}

static void test_ima_sig(void **state)
{
	struct ima m;
	struct client_imalog_result r;
	char why[512];
	uint8_t sig[264];
	int calls = 0;
	memset(&m, 0, sizeof(m));
	memset(sig, 0x03, sizeof(sig));
	add_sig(&m, F1, "/usr/bin/signed file", sig, sizeof(sig));
	add_sig(&m, F1, "/usr/bin/unsigned", NULL, 0);
	add(&m, F1, "/usr/bin/ng", 1); /* the templates may mix */
	assert_int_equal(
	    client_imalog_check(&r, m.text, m.n, m.pcr, allow, &calls, why, sizeof(why)), SV_OK);
	assert_int_equal(r.entries, 3);
	/* the signature is covered by the template hash */
	char *p = strstr(m.text, " 0303");
	assert_non_null(p);
	p[2] = '4';
	assert_int_equal(
	    client_imalog_check(&r, m.text, m.n, m.pcr, allow, &calls, why, sizeof(why)),
	    SV_ERR_INVALID);
	assert_non_null(strstr(why, "line 1: the template hash does not match"));
	p[2] = 'x';
	assert_int_equal(
	    client_imalog_check(&r, m.text, m.n, m.pcr, allow, &calls, why, sizeof(why)),
	    SV_ERR_INVALID);
	assert_non_null(strstr(why, "signature field"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_replay_and_prefix),
	    cmocka_unit_test(test_path_bound_allowance),
	    cmocka_unit_test(test_violation),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_empty_and_truncations),
	    cmocka_unit_test(test_ima_sig),
	};
	if (sodium_init() < 0)
		return 1;
	memset(F1, 1, 32);
	memset(F2, 2, 32);
	memset(F3, 3, 32);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
