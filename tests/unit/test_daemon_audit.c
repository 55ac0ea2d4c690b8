/* Unit tests for daemon/audit: how sealvaultd tells the journal from a plain stderr, the journal
 * fields it sends (sd_journal_sendv is faked through --wrap: no journald is needed), the line it
 * writes otherwise, the key file, and bad frames on the audit pair. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/audit.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"
#include "daemon/audit.h"

/* What the fake journal received: the fields of each call, joined with '\n'. */
static char sent[8][2048];
static int nsent;

int __wrap_sd_journal_sendv(const struct iovec *iov, int n);
int __wrap_sd_journal_sendv(const struct iovec *iov, int n)
{
	char *p = sent[nsent % 8];
	size_t used = 0;
	for (int i = 0; i < n; i++)
		used += (size_t)snprintf(p + used, sizeof(sent[0]) - used, "%.*s\n",
		                         (int)iov[i].iov_len, (const char *)iov[i].iov_base);
	nsent++;
	return 0;
}

/* stderr goes to a file while fn runs; its text comes back in out. */
static void capture_stderr(void (*fn)(void *), void *arg, char *out, size_t len)
{
	char path[] = "/tmp/sv-test-audit.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(2);
	assert_int_equal(dup2(fd, 2), 2);
	fn(arg);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	ssize_t n = pread(fd, out, len - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
}

static void stream_of(int fd, char *out, size_t len)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(out, len, "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
}

static void test_is_journal(void **state)
{
	char s[64], other[64];
	int fd = open("/dev/null", O_RDONLY);
	stream_of(fd, s, sizeof(s));
	stream_of(0 == fd ? 1 : 0, other, sizeof(other));
	assert_int_equal(daemon_audit_is_journal(s, fd), 1);
	assert_int_equal(daemon_audit_is_journal(NULL, fd), 0);
	assert_int_equal(daemon_audit_is_journal("", fd), 0);
	assert_int_equal(daemon_audit_is_journal("1:2", fd), 0);
	char trailing[80];
	snprintf(trailing, sizeof(trailing), "%sx", s);
	assert_int_equal(daemon_audit_is_journal(trailing, fd), 0);
	assert_int_equal(daemon_audit_is_journal(s, -1), 0);
	close(fd);
}

static struct audit_record guess(void)
{
	struct audit_record r = {.kind = AUDIT_GUESS,
	                         .seq = 3,
	                         .counter = 40,
	                         .attempts_left = 2,
	                         .guess_limit = 3,
	                         .known = 1};
	memset(r.id_hash, 0xab, sizeof(r.id_hash));
	return r;
}

static void write_guess(void *arg)
{
	struct audit_record r = guess();
	(void)arg;
	daemon_audit_write(&r);
}

/* Under journald (JOURNAL_STREAM names stderr): one sd_journal_sendv with every field. */
static void test_journal_fields(void **state)
{
	char s[64], out[512];
	stream_of(2, s, sizeof(s));
	setenv("JOURNAL_STREAM", s, 1);
	daemon_audit_open(-1, NULL);
	nsent = 0;
	capture_stderr(write_guess, NULL, out, sizeof(out));
	assert_int_equal(nsent, 1);
	assert_string_equal(out, "");
	assert_string_equal(sent[0], "MESSAGE=sealvault audit: guess charged for "
	                             "abababababababababababababababab (2 attempts left)\n"
	                             "PRIORITY=6\n"
	                             "MESSAGE_ID=c74c402f1e3c4e8c83df2890fc67f47c\n"
	                             "SEALVAULT_EVENT=guess\n"
	                             "SEALVAULT_SEQ=3\n"
	                             "SEALVAULT_COUNTER=40\n"
	                             "SEALVAULT_ID_HASH=abababababababababababababababab\n"
	                             "SEALVAULT_ATTEMPTS_LEFT=2\n"
	                             "SEALVAULT_GUESS_LIMIT=3\n"
	                             "SEALVAULT_KNOWN=yes\n"
	                             "SYSLOG_IDENTIFIER=sealvaultd\n");
	unsetenv("JOURNAL_STREAM");
}

/* Not under journald: one line on stderr, nothing to the journal. */
static void test_stderr_line(void **state)
{
	char out[512];
	setenv("JOURNAL_STREAM", "1:1", 1); /* another stream: not ours */
	daemon_audit_open(-1, NULL);
	nsent = 0;
	capture_stderr(write_guess, NULL, out, sizeof(out));
	assert_int_equal(nsent, 0);
	assert_string_equal(out, "sealvaultd: audit: event=guess seq=3 counter=40 "
	                         "id_hash=abababababababababababababababab attempts_left=2 "
	                         "guess_limit=3 known=yes\n");
	unsetenv("JOURNAL_STREAM");
}

static void send_record(int fd, const struct audit_record *r)
{
	uint8_t p[AUDIT_PAYLOAD_MAX];
	size_t n = 0;
	assert_int_equal(audit_encode(r, p, &n), SV_OK);
	assert_int_equal(frame_send(fd, SV_MSG_AUDIT, 0, p, n), SV_OK);
}

static void readable(void *arg)
{
	(void)arg;
	daemon_audit_readable();
}

/* The pair: the key goes to the key file (0600, hex) and nowhere else; records are written; a
 * bad payload, another frame type and trailing bytes are reported and dropped. */
static void test_pair(void **state)
{
	int sv[2];
	char dir[] = "/tmp/sv-test-audit-dir.XXXXXX", path[256], out[2048], hex[80];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/audit-id.key", dir);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	unsetenv("JOURNAL_STREAM");
	daemon_audit_open(sv[0], path);

	struct audit_record key = {.kind = AUDIT_KEY}, g = guess();
	memset(key.key, 0x11, sizeof(key.key));
	send_record(sv[1], &key);
	send_record(sv[1], &g);
	uint8_t p[AUDIT_PAYLOAD_MAX + 1];
	size_t n = 0;
	assert_int_equal(audit_encode(&g, p, &n), SV_OK);
	p[n] = 0;
	assert_int_equal(frame_send(sv[1], SV_MSG_AUDIT, 0, p, n + 1), SV_OK); /* trailing byte */
	assert_int_equal(frame_send(sv[1], SV_MSG_READY, 0, NULL, 0), SV_OK);  /* another type */
	p[0] = 9;
	assert_int_equal(frame_send(sv[1], SV_MSG_AUDIT, 0, p, n), SV_OK); /* another version */
	capture_stderr(readable, NULL, out, sizeof(out));

	assert_non_null(strstr(out, "sealvaultd: audit: event=guess seq=3 "));
	assert_null(strstr(out, "1111111111"));
	const char *bad = out;
	int nbad = 0;
	while ((bad = strstr(bad, "malformed audit record")) != NULL) {
		nbad++;
		bad++;
	}
	assert_int_equal(nbad, 3);

	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	int fd = open(path, O_RDONLY);
	ssize_t r = read(fd, hex, sizeof(hex));
	close(fd);
	assert_int_equal(r, 65);
	assert_memory_equal(
	    hex, "1111111111111111111111111111111111111111111111111111111111111111\n", 65);
	unlink(path);
	rmdir(dir);
	daemon_audit_open(-1, NULL); /* nothing left for the read at exit */
	close(sv[0]);
	close(sv[1]);
}

/* Realm records off the pair: each with its own event and MESSAGE_ID in the journal, and its own
 * event on the stderr line, never a /v1 kind's. */
static void test_realm_kinds(void **state)
{
	int sv[2];
	char s[64], out[2048];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	struct audit_record reg = {.kind = AUDIT_REALM_REGISTER,
	                           .seq = 4,
	                           .counter = 41,
	                           .guess_limit = 5},
	                    rec = {.kind = AUDIT_REALM_RECOVERED, .seq = 5, .counter = 42};
	memset(reg.id_hash, 0xcd, sizeof(reg.id_hash));
	memset(rec.id_hash, 0xcd, sizeof(rec.id_hash));

	stream_of(2, s, sizeof(s));
	setenv("JOURNAL_STREAM", s, 1);
	daemon_audit_open(sv[0], NULL);
	nsent = 0;
	send_record(sv[1], &reg);
	send_record(sv[1], &rec);
	capture_stderr(readable, NULL, out, sizeof(out));
	assert_string_equal(out, "");
	assert_int_equal(nsent, 2);
	assert_string_equal(sent[0], "MESSAGE=sealvault audit: realm share registered: "
	                             "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\n"
	                             "PRIORITY=6\n"
	                             "MESSAGE_ID=7723956f803543719a6ec89fcef92f09\n"
	                             "SEALVAULT_EVENT=realm-register\n"
	                             "SEALVAULT_SEQ=4\n"
	                             "SEALVAULT_COUNTER=41\n"
	                             "SEALVAULT_ID_HASH=cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\n"
	                             "SEALVAULT_GUESS_LIMIT=5\n"
	                             "SYSLOG_IDENTIFIER=sealvaultd\n");
	assert_non_null(strstr(sent[1], "MESSAGE_ID=7690d79d3bbe48dca218449ef485dc96\n"));
	assert_non_null(strstr(sent[1], "SEALVAULT_EVENT=realm-recovered\n"));
	assert_null(strstr(sent[1], "MESSAGE_ID=d73d877d20b2480086b3c80a6b86fe46")); /* /v1's */

	setenv("JOURNAL_STREAM", "1:1", 1); /* not ours: stderr lines */
	daemon_audit_open(sv[0], NULL);
	nsent = 0;
	send_record(sv[1], &rec);
	capture_stderr(readable, NULL, out, sizeof(out));
	assert_int_equal(nsent, 0);
	assert_string_equal(out, "sealvaultd: audit: event=realm-recovered seq=5 counter=42 "
	                         "id_hash=cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd restored=no\n");
	unsetenv("JOURNAL_STREAM");
	daemon_audit_open(-1, NULL);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_is_journal),  cmocka_unit_test(test_journal_fields),
	    cmocka_unit_test(test_stderr_line), cmocka_unit_test(test_pair),
	    cmocka_unit_test(test_realm_kinds),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
