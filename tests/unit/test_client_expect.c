/*
 * client/expect.c: the expected-values file. Encoding then decoding gives the same values; the
 * allow-list file and lookups (hash, hash + path); refusals name the member that is wrong.
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

#include "client/expect.h"
#include "common/err.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/test_client_expect_XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void fill(struct client_expect *e)
{
	memset(e, 0, sizeof(*e));
	for (int i = 0; i < ATTEST_NBINARIES; i++)
		memset(e->binaries[i], 0x10 + i, 32);
	attest_build_hash_digests((const uint8_t(*)[ATTEST_HASH_LEN])e->binaries, e->build_hash);
	memset(e->policy_hash, 0x20, 32);
	e->boot_pcrs = 0x8f; /* 0-3, 7 */
	e->has_boot_values = 1;
	for (int i = 0; i < 24; i++)
		memset(e->boot_values[i], i, 32);
	e->has_server_key = 1;
	memset(e->server_key, 0x30, 32);
}

static void test_round_trip(void **state)
{
	struct client_expect e, d;
	char *text = NULL, why[256];
	fill(&e);
	char *allow = write_tmp("# comment\n\n"
	                        "0101010101010101010101010101010101010101010101010101010101010101 "
	                        "/usr/bin/a b\r\n"
	                        "0202020202020202020202020202020202020202020202020202020202020202  "
	                        "/lib/x.so\n" /* sha256sum's two spaces */
	                        "0303030303030303030303030303030303030303030303030303030303030303 "
	                        "*/bin/y\n"); /* and its binary mode */
	assert_int_equal(client_expect_add_allow_file(&e, allow, why, sizeof(why)), SV_OK);
	unlink(allow);
	char *ca = write_tmp("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
	assert_int_equal(client_expect_add_ca_file(&e, ca, why, sizeof(why)), SV_OK);
	unlink(ca);
	assert_int_equal(client_expect_encode(&e, &text), SV_OK);
	assert_int_equal(client_expect_decode(&d, text, strlen(text), why, sizeof(why)), SV_OK);
	assert_memory_equal(d.build_hash, e.build_hash, 32);
	assert_memory_equal(d.binaries, e.binaries, sizeof(e.binaries));
	assert_memory_equal(d.policy_hash, e.policy_hash, 32);
	assert_int_equal(d.boot_pcrs, 0x8f);
	assert_true(d.has_boot_values);
	assert_memory_equal(d.boot_values[7], e.boot_values[7], 32);
	assert_true(d.has_server_key);
	assert_int_equal(d.n_allow, 3);
	assert_int_equal(d.n_ca, 1);
	assert_string_equal(d.ca[0], e.ca[0]);
	uint8_t h[32];
	memset(h, 1, 32);
	assert_true(client_expect_allowed(&d, h, "/usr/bin/a b"));
	assert_false(client_expect_allowed(&d, h, "/usr/bin/a"));
	memset(h, 2, 32);
	assert_true(client_expect_allowed(&d, h, "/lib/x.so"));
	memset(h, 0x11, 32); /* sealvault-enclave: allowed at any path */
	assert_true(client_expect_allowed(&d, h, "/anywhere"));
	memset(h, 3, 32);
	assert_false(client_expect_allowed(&d, h, "/lib/x.so"));
	assert_true(client_expect_allowed(&d, h, "/bin/y"));
	free(text);
	client_expect_clear(&d);
	client_expect_clear(&e);
}

static void refused(const char *json, const char *text)
{
	struct client_expect d;
	char why[256];
	assert_int_not_equal(client_expect_decode(&d, json, strlen(json), why, sizeof(why)), SV_OK);
	assert_non_null(strstr(why, text));
	assert_null(d.allow);
	assert_null(d.ca);
}

#define Z "0000000000000000000000000000000000000000000000000000000000000000"
#define BINS                                                                                       \
	"\"binaries\":{\"sealvaultd\":\"" Z "\",\"sealvault-enclave\":\"" Z                        \
	"\",\"sealvault-broker\":\"" Z "\"}"
#define HEAD "{\"version\":1,\"build_hash\":\"" Z "\"," BINS ",\"policy_hash\":\"" Z "\""

static void test_refusals(void **state)
{
	struct client_expect d;
	char why[256];
	const char *ok = HEAD ",\"boot_pcrs\":[0,7]}";
	assert_int_equal(client_expect_decode(&d, ok, strlen(ok), why, sizeof(why)), SV_OK);
	assert_int_equal(d.boot_pcrs, 0x81);
	assert_false(d.has_boot_values);
	assert_false(d.has_server_key);
	client_expect_clear(&d);
	refused(HEAD "}", "boot_pcrs");
	refused("{\"version\":2}", "unsupported version");
	refused("{\"version\":1,\"build_hash\":\"" Z "\"}", "binaries");
	refused(HEAD ",\"boot_pcrs\":[0],\"boot_pcr_values\":{\"1\":\"" Z "\"}}",
	        "exactly the PCRs of boot_pcrs");
	refused(HEAD ",\"boot_pcrs\":[0],\"ima_allow\":[{\"path\":\"/x\"}]}", "entry 1");
	refused(HEAD ",\"boot_pcrs\":[0],\"ima_allow\":[{\"sha256\":\"" Z "\",\"path\":\"\"}]}",
	        "entry 1");
	refused(HEAD ",\"boot_pcrs\":[0],\"ima_allow\":{}}", "not an array");
	refused(HEAD ",\"boot_pcrs\":[0],\"tpm_ca\":[\"not pem\"]}", "tpm_ca");
	refused(HEAD ",\"boot_pcrs\":[0],\"server_public_key\":\"00\"}", "server_public_key");
	refused(HEAD ",\"boot_pcrs\":[0]} trailing", "not valid JSON");
}

static void test_files(void **state)
{
	struct client_expect e;
	char why[256];
	memset(&e, 0, sizeof(e));
	assert_int_equal(client_expect_load(&e, "/nonexistent/e.json", why, sizeof(why)),
	                 SV_ERR_IO);
	assert_non_null(strstr(why, "cannot open /nonexistent/e.json"));
	char *p = write_tmp("00 /x\n");
	assert_int_equal(client_expect_add_allow_file(&e, p, why, sizeof(why)), SV_ERR_INVALID);
	assert_non_null(strstr(why, "line 1"));
	unlink(p);
	p = write_tmp(Z " relative/path\n");
	assert_int_equal(client_expect_add_allow_file(&e, p, why, sizeof(why)), SV_ERR_INVALID);
	unlink(p);
	p = write_tmp("no certificate here\n");
	assert_int_equal(client_expect_add_ca_file(&e, p, why, sizeof(why)), SV_ERR_INVALID);
	unlink(p);
	p = write_tmp(HEAD ",\"boot_pcrs\":[0,1]}\n");
	assert_int_equal(client_expect_load(&e, p, why, sizeof(why)), SV_OK);
	assert_int_equal(e.boot_pcrs, 3);
	unlink(p);
	client_expect_clear(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_files),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
