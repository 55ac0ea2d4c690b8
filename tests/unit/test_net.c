/* Unit tests for common/net: the listening socket and the port file written for it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <netinet/in.h>

#include "common/err.h"
#include "common/net.h"

static int bound_port(int fd)
{
	struct sockaddr_in sa = {0};
	socklen_t sl = sizeof(sa);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	return ntohs(sa.sin_port);
}

static void test_listen_bad_spec(void **state)
{
	char why[256];
	assert_int_equal(net_listen("no-port", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "HOST:PORT"));
	assert_int_equal(net_listen(":443", why, sizeof(why)), -1);
	assert_int_equal(net_listen("127.0.0.1:", why, sizeof(why)), -1);
}

static void test_port_file(void **state)
{
	char why[256], dir[] = "/tmp/test_net.XXXXXX", path[512], tmp[520], line[32];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/port", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);

	int fd = net_listen("127.0.0.1:0", why, sizeof(why));
	assert_true(fd >= 0);
	assert_int_equal(net_write_port_file(path, fd), SV_OK);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	char expect[32];
	snprintf(expect, sizeof(expect), "%d\n", bound_port(fd));
	assert_string_equal(line, expect);
	assert_int_equal(access(tmp, F_OK), -1);

	/* a directory in the way of the rename: an error, and no .tmp left behind */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(net_write_port_file(path, fd), SV_ERR_IO);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(rmdir(path), 0);

	/* not a socket */
	assert_int_equal(net_write_port_file(path, 99), SV_ERR_IO);

	/* a path with no room for ".tmp" */
	char *long_path = malloc(PATH_MAX + 1);
	assert_non_null(long_path);
	memset(long_path, 'a', PATH_MAX);
	long_path[PATH_MAX] = '\0';
	assert_int_equal(net_write_port_file(long_path, fd), SV_ERR_RANGE);
	free(long_path);

	close(fd);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_listen_bad_spec),
	    cmocka_unit_test(test_port_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
