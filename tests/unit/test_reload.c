/* Unit tests for common/reload: the SV_MSG_RELOAD payload (settings, certificate, key). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/reload.h"

static uint8_t buf[RELOAD_OVERHEAD + RELOAD_SETTINGS_MAX + 2 * SV_FRAME_MAX + 16];

static const char settings[] = "rate-limit = 5\nmax-body = 4096\n";
static const uint8_t cert[] = "-----BEGIN CERTIFICATE-----\n...";
static const uint8_t key[] = "-----BEGIN PRIVATE KEY-----\n...";

static size_t encode_sample(void)
{
	struct reload_msg m = {settings, sizeof(settings) - 1, cert, sizeof(cert),
	                       key,      sizeof(key)};
	size_t n = 0;
	assert_int_equal(reload_encode(buf, sizeof(buf), &m, &n), 0);
	assert_int_equal(n, RELOAD_OVERHEAD + m.settings_len + m.cert_len + m.key_len);
	return n;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void test_roundtrip(void **state)
{
	size_t n = encode_sample();
	struct reload_msg d;
	assert_int_equal(reload_decode(buf, n, &d), 0);
	assert_int_equal(d.settings_len, sizeof(settings) - 1);
	assert_memory_equal(d.settings, settings, d.settings_len);
	assert_int_equal(d.cert_len, sizeof(cert));
	assert_memory_equal(d.cert, cert, sizeof(cert));
	assert_int_equal(d.key_len, sizeof(key));
	assert_memory_equal(d.key, key, sizeof(key));
	/* no settings at all is valid: every reloadable key back to its default */
	struct reload_msg m = {NULL, 0, cert, 1, key, 1};
	assert_int_equal(reload_encode(buf, sizeof(buf), &m, &n), 0);
	assert_int_equal(n, RELOAD_OVERHEAD + 2);
	assert_int_equal(reload_decode(buf, n, &d), 0);
	assert_int_equal(d.settings_len, 0);
}

/* Every length field at 0, 1, the size that fits minus one and plus one, the cap + 1, and
 * 0xffffffff: only the right one decodes; a failure leaves the output untouched. */
static void test_hostile_lengths(void **state)
{
	size_t n = encode_sample();
	size_t offs[3] = {0, 4 + sizeof(settings) - 1, 8 + sizeof(settings) - 1 + sizeof(cert)};
	size_t right[3] = {sizeof(settings) - 1, sizeof(cert), sizeof(key)};
	for (int i = 0; i < 3; i++) {
		const uint32_t vals[] = {0,
		                         1,
		                         (uint32_t)right[i] - 1,
		                         (uint32_t)right[i] + 1,
		                         SV_FRAME_MAX + 1,
		                         0x7fffffffu,
		                         0xffffffffu};
		for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
			encode_sample();
			put32(buf + offs[i], vals[v]);
			struct reload_msg d;
			memset(&d, 0xa5, sizeof(d));
			int r = reload_decode(buf, n, &d);
			assert_true(r == SV_ERR_INVALID || r == SV_ERR_RANGE);
			assert_int_equal(((uint8_t *)&d)[0], 0xa5);
		}
	}
	encode_sample();
	struct reload_msg d;
	for (size_t k = 0; k < n; k++) /* every truncation */
		assert_int_equal(reload_decode(buf, k, &d), SV_ERR_INVALID);
	assert_int_equal(reload_decode(buf, n + 1, &d), SV_ERR_INVALID); /* a trailing byte */
	assert_int_equal(reload_decode(NULL, 0, &d), SV_ERR_INVALID);
}

static void test_bounds(void **state)
{
	static char big[RELOAD_SETTINGS_MAX + 1];
	static uint8_t huge[SV_FRAME_MAX + 1];
	memset(big, 'a', sizeof(big));
	size_t n = 7;
	struct reload_msg m = {big, sizeof(big), cert, sizeof(cert), key, sizeof(key)};
	assert_int_equal(reload_encode(buf, sizeof(buf), &m, &n), SV_ERR_RANGE);
	m.settings_len = RELOAD_SETTINGS_MAX;
	assert_int_equal(reload_encode(buf, sizeof(buf), &m, &n), 0);
	struct reload_msg d;
	assert_int_equal(reload_decode(buf, n, &d), 0);
	m.settings_len = 0;
	m.cert_len = 0;
	assert_int_equal(reload_encode(buf, sizeof(buf), &m, &n), SV_ERR_RANGE);
	m.cert_len = sizeof(cert);
	m.key_len = 0;
	assert_int_equal(reload_encode(buf, sizeof(buf), &m, &n), SV_ERR_RANGE);
	m.key = huge;
	m.key_len = sizeof(huge);
	assert_int_equal(reload_encode(buf, sizeof(buf), &m, &n), SV_ERR_RANGE);
	/* an empty key on the wire */
	m.key = key;
	m.key_len = sizeof(key);
	assert_int_equal(reload_encode(buf, sizeof(buf), &m, &n), 0);
	put32(buf + n - sizeof(key) - 4, 0);
	assert_int_equal(reload_decode(buf, n - sizeof(key), &d), SV_ERR_RANGE);
	/* out too small: nothing written */
	size_t w = 99;
	memset(buf, 0, 8);
	assert_int_equal(
	    reload_encode(buf, RELOAD_OVERHEAD + sizeof(cert) + sizeof(key) - 1, &m, &w),
	    SV_ERR_RANGE);
	assert_int_equal(w, 99);
	assert_int_equal(buf[3], 0);
}

static void test_nul_in_settings(void **state)
{
	static const char bad[] = "rate-limit = 5\0max-body = 1";
	struct reload_msg m = {bad, sizeof(bad) - 1, cert, sizeof(cert), key, sizeof(key)};
	size_t n;
	assert_int_equal(reload_encode(buf, sizeof(buf), &m, &n), SV_ERR_INVALID);
	encode_sample();
	n = encode_sample();
	buf[4 + 3] = '\0';
	struct reload_msg d;
	assert_int_equal(reload_decode(buf, n, &d), SV_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_hostile_lengths),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_nul_in_settings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
