/* Unit tests for enclave/capacity: max-users parsing and the limit derived from free memory, on a
 * fake /proc and /sys/fs/cgroup tree in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "enclave/capacity.h"

static char root[64];

static void put(const char *rel, const char *text)
{
	char path[512], dir[512];
	snprintf(path, sizeof(path), "%s%s", root, rel);
	/* mkdir -p of the parent */
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		(void)mkdir(dir, 0700);
		*p = '/';
	}
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/sv-capacity.XXXXXX");
	assert_non_null(mkdtemp(root));
	put("/proc/meminfo", "MemTotal:       24000000 kB\nMemFree:         1000000 kB\n"
	                     "MemAvailable:    2048000 kB\nBuffers:          100 kB\n");
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_parse(void **state)
{
	uint64_t v = 7;
	assert_int_equal(capacity_parse("auto", &v), SV_OK);
	assert_int_equal(v, 0);
	assert_int_equal(capacity_parse("5", &v), SV_OK);
	assert_int_equal(v, 5);
	assert_int_equal(capacity_parse("4000000000", &v), SV_OK);
	assert_int_equal(v, CAPACITY_MAX_USERS);
	/* hostile values: zero, beyond the maximum, signs, junk, empty */
	const char *bad[] = {
	    "0", "4000000001", "18446744073709551616", "-1", "+5", "5x", " 5", "", "Auto", "0x10"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		assert_int_equal(capacity_parse(bad[i], &v), SV_ERR_CONFIG);
		assert_int_equal(v, 7);
	}
}

static void test_meminfo(void **state)
{
	uint64_t b = 0;
	assert_int_equal(capacity_meminfo_available("MemTotal: 10 kB\nMemAvailable:  3 kB\n", &b),
	                 SV_OK);
	assert_int_equal(b, 3072);
	assert_int_equal(capacity_meminfo_available("MemTotal: 10 kB\n", &b), SV_ERR_INVALID);
	assert_int_equal(capacity_meminfo_available("MemAvailable: kB\n", &b), SV_ERR_INVALID);
	assert_int_equal(capacity_meminfo_available("MemAvailable: 3 MB\n", &b), SV_ERR_INVALID);
	assert_int_equal(capacity_meminfo_available("MemAvailable: 99999999999999999999 kB\n", &b),
	                 SV_ERR_INVALID);
	assert_int_equal(capacity_meminfo_available("", &b), SV_ERR_INVALID);
}

static void test_derive(void **state)
{
	assert_int_equal(capacity_derive(0, 0), 1);
	assert_int_equal(capacity_derive(10, 0), 10);
	assert_int_equal(capacity_derive(10, 10 * CAPACITY_BYTES_PER_USER + 5), 20);
	assert_int_equal(capacity_derive(0, UINT64_MAX), CAPACITY_MAX_USERS);
	assert_int_equal(capacity_derive(UINT64_MAX, 1 << 20), CAPACITY_MAX_USERS);
}

static void test_probe_configured(void **state)
{
	struct capacity c;
	char why[256];
	assert_int_equal(capacity_probe(&c, 5, 100, "/nonexistent", why, sizeof(why)), SV_OK);
	assert_int_equal(c.max_users, 5);
	assert_int_equal(c.source, CAPACITY_CONFIGURED);
	assert_string_equal(capacity_source_name(c.source), "configured");
}

static void test_probe_memavailable(void **state)
{
	struct capacity c;
	char why[256];
	/* no cgroup file at all: MemAvailable (2048000 kB) */
	assert_int_equal(capacity_probe(&c, 0, 7, root, why, sizeof(why)), SV_OK);
	assert_int_equal(c.source, CAPACITY_MEMAVAILABLE);
	assert_int_equal(c.memory_bytes, 2048000ull * 1024);
	assert_int_equal(c.max_users, 7 + 2048000ull * 1024 / CAPACITY_BYTES_PER_USER);
	/* a cgroup without a limit ("max") changes nothing */
	put("/proc/self/cgroup", "0::/system.slice/sealvault.service\n");
	put("/sys/fs/cgroup/system.slice/sealvault.service/memory.max", "max\n");
	assert_int_equal(capacity_probe(&c, 0, 7, root, why, sizeof(why)), SV_OK);
	assert_int_equal(c.source, CAPACITY_MEMAVAILABLE);
	/* nor does one with more room than MemAvailable */
	put("/sys/fs/cgroup/system.slice/memory.max", "99999999999\n");
	put("/sys/fs/cgroup/system.slice/memory.current", "1\n");
	assert_int_equal(capacity_probe(&c, 0, 7, root, why, sizeof(why)), SV_OK);
	assert_int_equal(c.source, CAPACITY_MEMAVAILABLE);
}

static void test_probe_cgroup(void **state)
{
	struct capacity c;
	char why[256];
	put("/proc/self/cgroup", "0::/system.slice/sealvault.service\n");
	put("/sys/fs/cgroup/system.slice/sealvault.service/memory.max", "max\n");
	/* the parent's limit applies: 64 MiB, 16 MiB used */
	put("/sys/fs/cgroup/system.slice/memory.max", "67108864\n");
	put("/sys/fs/cgroup/system.slice/memory.current", "16777216\n");
	assert_int_equal(capacity_probe(&c, 0, 0, root, why, sizeof(why)), SV_OK);
	assert_int_equal(c.source, CAPACITY_CGROUP);
	assert_int_equal(c.memory_bytes, 48ull << 20);
	assert_int_equal(c.max_users, (48ull << 20) / CAPACITY_BYTES_PER_USER);
	/* the service's own, tighter limit wins; usage over the limit leaves no room */
	put("/sys/fs/cgroup/system.slice/sealvault.service/memory.max", "1048576\n");
	put("/sys/fs/cgroup/system.slice/sealvault.service/memory.current", "2000000\n");
	assert_int_equal(capacity_probe(&c, 0, 3, root, why, sizeof(why)), SV_OK);
	assert_int_equal(c.source, CAPACITY_CGROUP);
	assert_int_equal(c.memory_bytes, 0);
	assert_int_equal(c.max_users, 3);
}

static void test_probe_no_meminfo(void **state)
{
	struct capacity c;
	char why[256] = "";
	assert_int_equal(capacity_probe(&c, 0, 0, "/nonexistent", why, sizeof(why)), SV_ERR_IO);
	assert_non_null(strstr(why, "max-users"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_meminfo),
	    cmocka_unit_test(test_derive),
	    cmocka_unit_test(test_probe_configured),
	    cmocka_unit_test_setup_teardown(test_probe_memavailable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_cgroup, setup, teardown),
	    cmocka_unit_test(test_probe_no_meminfo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
