/* The realm list file reader (client/realmlist.c): the format of docs/realms.md, errors that name
 * the bad key or entry, relative paths against the file's directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/realmlist.h"
#include "common/err.h"

#define ID1 "0123456789abcdef0123456789ABCDEF"
#define ID2 "fedcba9876543210fedcba9876543210"

static int parse(struct realmlist *l, const char *json, char *why, size_t n)
{
	return realmlist_parse(l, json, strlen(json), "/etc/sv", why, n);
}

static void test_good_list(void **state)
{
	(void)state;
	struct realmlist l;
	char why[256];
	const char *j = "{\"threshold\": 2, \"realms\": ["
	                "{\"name\": \"east\", \"url\": \"https://127.0.0.1:18443\", \"ca\": "
	                "\"east-ca.pem\", \"id\": \"" ID1 "\", \"expect\": \"e.json\", \"token\": "
	                "\"/abs/east.jwt\"},"
	                "{\"url\": \"https://west.example:443\", \"ca\": \"/ca/west.pem\", \"id\": "
	                "\"" ID2 "\"}]}";
	assert_int_equal(parse(&l, j, why, sizeof(why)), 0);
	assert_int_equal(l.threshold, 2);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.realms[0].name, "east");
	assert_string_equal(l.realms[0].ca, "/etc/sv/east-ca.pem");
	assert_string_equal(l.realms[0].expect, "/etc/sv/e.json");
	assert_string_equal(l.realms[0].token, "/abs/east.jwt");
	assert_int_equal(l.realms[0].id[0], 0x01);
	assert_int_equal(l.realms[0].id[15], 0xef);
	/* no name: the url; absolute paths stay */
	assert_string_equal(l.realms[1].name, "https://west.example:443");
	assert_string_equal(l.realms[1].ca, "/ca/west.pem");
	assert_null(l.realms[1].expect);
	assert_null(l.realms[1].token);
	realmlist_clear(&l);
	/* threshold is optional */
	assert_int_equal(parse(&l,
	                       "{\"realms\": [{\"url\": \"https://a\", \"ca\": \"c\", \"id\": "
	                       "\"" ID1 "\"}]}",
	                       why, sizeof(why)),
	                 0);
	assert_int_equal(l.threshold, 0);
	realmlist_clear(&l);
}

struct bad {
	const char *json;
	const char *why; /* a part of the message */
};

static void test_bad_lists(void **state)
{
	(void)state;
	static const struct bad cases[] = {
	    {"[]", "not an object"},
	    {"{\"realms\": [], \"threshold\": 1}", "1 to 16"},
	    {"{\"threshold\": 1}", "\"realms\" is missing"},
	    {"{\"realms\": [{\"url\": \"https://a\", \"ca\": \"c\", \"id\": \"" ID1 "\"}], "
	     "\"thresold\": 1}",
	     "unknown key \"thresold\""},
	    {"{\"realms\": [{\"url\": \"https://a\", \"ca\": \"c\", \"id\": \"" ID1 "\", "
	     "\"tokn\": \"x\"}]}",
	     "realms[1]: unknown key \"tokn\""},
	    {"{\"realms\": [{\"url\": \"https://a\", \"ca\": \"c\", \"id\": \"" ID1 "\"}, "
	     "{\"url\": \"https://b\", \"id\": \"" ID2 "\"}]}",
	     "realms[2]: \"ca\" is missing"},
	    {"{\"realms\": [{\"url\": \"http://a\", \"ca\": \"c\", \"id\": \"" ID1 "\"}]}",
	     "realms[1]: \"url\" must be https://"},
	    {"{\"realms\": [{\"url\": \"https://a\", \"ca\": \"c\", \"id\": \"0123\"}]}",
	     "realms[1]: \"id\" must be the realm's vault_id"},
	    {"{\"realms\": [{\"url\": \"https://a\", \"ca\": \"c\", \"id\": \"" ID1 "\"}], "
	     "\"threshold\": 2}",
	     "\"threshold\" must be a whole number from 1 to 1"},
	    {"{\"realms\": [{\"url\": \"https://a\", \"ca\": \"c\", \"id\": \"" ID1 "\"}], "
	     "\"threshold\": \"1\"}",
	     "\"threshold\" must be"},
	    {"{\"realms\": [{\"url\": \"https://a\", \"ca\": \"c\", \"id\": \"" ID1 "\"}, "
	     "{\"url\": \"https://b\", \"ca\": \"c\", \"id\": \"" ID1 "\"}]}",
	     "realms[1] and realms[2] have the same \"id\""},
	    {"{\"realms\": [{\"url\": \"https://a\", \"ca\": 5, \"id\": \"" ID1 "\"}]}",
	     "realms[1]: \"ca\" is not a string"},
	    {"{\"realms\": [7]}", "realms[1] is not an object"},
	    {"{\"realms\": [{\"url\": \"https://a\", \"ca\": \"c\", \"id\": \"" ID1 "\"}]} x",
	     "not valid JSON"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct realmlist l;
		char why[256] = "";
		assert_int_equal(parse(&l, cases[i].json, why, sizeof(why)), SV_ERR_INVALID);
		if (strstr(why, cases[i].why) == NULL)
			fail_msg("case %zu: '%s' does not say '%s'", i, why, cases[i].why);
		assert_int_equal(l.n, 0);
	}
	/* 17 realms */
	char big[8192] = "{\"realms\": [";
	for (int i = 0; i < 17; i++) {
		char e[200];
		snprintf(e, sizeof(e),
		         "%s{\"url\": \"https://a%d\", \"ca\": \"c\", \"id\": \"%032x\"}",
		         i ? "," : "", i, i);
		strcat(big, e);
	}
	strcat(big, "]}");
	struct realmlist l;
	char why[256];
	assert_int_equal(parse(&l, big, why, sizeof(why)), SV_ERR_INVALID);
	assert_non_null(strstr(why, "lists 17 realms"));
}

static void test_load_relative_to_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/svrealmlist.XXXXXX", path[128], why[512];
	struct realmlist l;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/realms.json", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "{\"realms\": [{\"url\": \"https://a\", \"ca\": \"sub/ca.pem\", \"id\": \"" ID1
	           "\", \"token\": \"a.jwt\"}]}\n");
	fclose(f);
	assert_int_equal(realmlist_load(&l, path, why, sizeof(why)), 0);
	char want[160];
	snprintf(want, sizeof(want), "%s/sub/ca.pem", dir);
	assert_string_equal(l.realms[0].ca, want);
	realmlist_clear(&l);
	unlink(path);
	assert_int_equal(realmlist_load(&l, path, why, sizeof(why)), SV_ERR_IO);
	assert_non_null(strstr(why, "realms.json"));
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_list),
	    cmocka_unit_test(test_bad_lists),
	    cmocka_unit_test(test_load_relative_to_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
