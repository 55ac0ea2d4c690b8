/* Unit tests for common/config: the sealvault.conf line format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/config.h"

struct seen {
	char key[64][64];
	char value[64][256];
	int n;
};

static int record(void *arg, const char *key, const char *value, char *why, size_t why_len)
{
	struct seen *s = arg;
	if (strcmp(key, "unknown") == 0) {
		snprintf(why, why_len, "unknown key '%s'", key);
		return SV_ERR_CONFIG;
	}
	snprintf(s->key[s->n], sizeof(s->key[0]), "%s", key);
	snprintf(s->value[s->n], sizeof(s->value[0]), "%s", value);
	s->n++;
	return SV_OK;
}

static int parse_text(const char *text, struct seen *s, char *why, size_t why_len)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(f);
	memset(s, 0, sizeof(*s));
	int r = config_parse_stream(f, "test.conf", record, s, why, why_len);
	fclose(f);
	return r;
}

static void test_good(void **state)
{
	struct seen s;
	char why[256];
	assert_int_equal(parse_text("# comment\n\n  state-dir = /var/lib/x  \n"
	                            "context =\n\tlisten=127.0.0.1:8443\n"
	                            "tpm = swtpm:host=127.0.0.1,port=2321\nlast = no newline",
	                            &s, why, sizeof(why)),
	                 0);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.key[0], "state-dir");
	assert_string_equal(s.value[0], "/var/lib/x");
	assert_string_equal(s.key[1], "context");
	assert_string_equal(s.value[1], ""); /* the empty value is kept */
	assert_string_equal(s.value[2], "127.0.0.1:8443");
	assert_string_equal(s.value[3], "swtpm:host=127.0.0.1,port=2321"); /* '=' in values */
	assert_string_equal(s.value[4], "no newline");
	assert_int_equal(parse_text("", &s, why, sizeof(why)), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(parse_text("a = b\r\n", &s, why, sizeof(why)), 0);
	assert_string_equal(s.value[0], "b");
}

static void test_bad(void **state)
{
	struct seen s;
	char why[256];
	assert_int_equal(parse_text("ok = 1\nno equals sign\n", &s, why, sizeof(why)),
	                 SV_ERR_INVALID);
	assert_non_null(strstr(why, "test.conf:2"));
	assert_int_equal(parse_text(" = value\n", &s, why, sizeof(why)), SV_ERR_INVALID);
	assert_int_equal(parse_text("Upper = 1\n", &s, why, sizeof(why)), SV_ERR_INVALID);
	assert_int_equal(parse_text("key with space = 1\n", &s, why, sizeof(why)), SV_ERR_INVALID);
	assert_int_equal(parse_text("unknown = 1\n", &s, why, sizeof(why)), SV_ERR_CONFIG);
	assert_non_null(strstr(why, "unknown key"));
	assert_int_equal(parse_text("a = b\x01\n", &s, why, sizeof(why)), SV_ERR_INVALID);
	static const char nul[] = "a = b\0c\n";
	FILE *f = fmemopen((void *)nul, sizeof(nul) - 1, "r");
	assert_non_null(f);
	assert_int_equal(config_parse_stream(f, "n", record, &s, why, sizeof(why)), SV_ERR_INVALID);
	fclose(f);
	/* a line one byte over the limit is refused, one at the limit is fine */
	char *long_line = malloc(CONFIG_LINE_MAX + 8);
	assert_non_null(long_line);
	memset(long_line, 'x', CONFIG_LINE_MAX + 7);
	memcpy(long_line, "k = ", 4);
	long_line[CONFIG_LINE_MAX + 1] = '\0';
	assert_int_equal(parse_text(long_line, &s, why, sizeof(why)), SV_ERR_INVALID);
	long_line[CONFIG_LINE_MAX] = '\0';
	assert_int_equal(parse_text(long_line, &s, why, sizeof(why)), 0);
	free(long_line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
