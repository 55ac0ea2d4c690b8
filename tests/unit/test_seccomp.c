/* Unit tests for policy/seccomp (after systemd's test-seccomp.c): fork, install the filter in the
 * child, make one call, and have the parent check how the child ended. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "policy/seccomp.h"

enum probe {
	P_NOTHING,
	P_SOCKET,
	P_EXECVE,
	P_OPENAT,
	P_WRITE_PINNED,
	P_WRITE_OTHER,
	P_MMAP_EXEC,
	P_SODIUM,
	P_FSTAT,
	P_ACCEPT_OTHER,
	P_ACCEPT_METRICS,
	P_CONNECT,
	P_HOOK,
	P_PAUSE,
	P_STOP_CONT,
	P_PREAD_LOG,
	P_PREAD_OTHER,
	P_THREAD_SOCKET,
	P_AUDIT_WRITE,
	P_AUDIT_READ,
};

/* P_THREAD_SOCKET: a thread started before the filter (as the enclave's TPM thread is) makes a
 * forbidden call after it: the filter must cover it too (SECCOMP_FILTER_FLAG_TSYNC). */
static pthread_mutex_t go_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go_cond = PTHREAD_COND_INITIALIZER;
static int go;

static void *early_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&go_lock);
	while (!go)
		pthread_cond_wait(&go_cond, &go_lock);
	pthread_mutex_unlock(&go_lock);
	socket(AF_INET, SOCK_STREAM, 0);
	return NULL;
}

/* Runs probe p in a child under the enclave (broker = 0) or broker filter; returns wait status.
 * The child exits 0 when the probe's allowed call worked. */
static int run(int broker, enum probe p)
{
	int pipefd[2], other[2];
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(pipe(other), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char why[256];
		int r;
		pthread_t th;
		if (p == P_THREAD_SOCKET && pthread_create(&th, NULL, early_thread, NULL) != 0)
			_exit(5);
		int afd = dup(other[1]); /* the enclave's audit link: write only */
		int epfd = epoll_create1(0);
		struct epoll_event want = {.events = EPOLLIN};
		if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, pipefd[0], &want) != 0)
			_exit(5);
		if (broker) {
			/* other[0] stands for a log descriptor: pread64 is allowed on it only;
			 * pipefd[1] for the metrics listener */
			struct policy_seccomp_broker cfg = {.listen_fd = pipefd[0],
			                                    .metrics_fd = pipefd[1],
			                                    .log_fds = {other[0], -1}};
			r = policy_seccomp_broker_install(&cfg, why, sizeof(why));
		} else {
			struct policy_seccomp_enclave cfg = {
			    .fds = {0, 1, 2, pipefd[0], pipefd[1]}, .n_fds = 5, .audit_fd = afd};
			r = policy_seccomp_enclave_install(&cfg, why, sizeof(why));
		}
		if (r != 0) {
			fprintf(stderr, "%s\n", why);
			_exit(2);
		}
		char c = 'x';
		switch (p) {
		case P_NOTHING: _exit(0);
		case P_SOCKET: socket(AF_INET, SOCK_STREAM, 0); _exit(0);
		case P_EXECVE: {
			char *const argv[] = {(char *)"/bin/true", NULL};
			execve("/bin/true", argv, argv + 1);
			_exit(0);
		}
		case P_OPENAT: openat(AT_FDCWD, "/etc/hostname", O_RDONLY); _exit(0);
		case P_WRITE_PINNED: _exit(write(pipefd[1], &c, 1) == 1 ? 0 : 3);
		case P_WRITE_OTHER: _exit(write(other[1], &c, 1) == 1 ? 0 : 3);
		case P_MMAP_EXEC:
			mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			_exit(0);
		case P_SODIUM: {
			unsigned char *s = sodium_malloc(100);
			if (s == NULL)
				_exit(3);
			randombytes_buf(s, 100);
			sodium_free(s);
			_exit(0);
		}
		case P_FSTAT: {
			struct stat st;
			_exit(fstat(0, &st) == -1 && errno == EACCES ? 0 : 3);
		}
		case P_ACCEPT_OTHER: accept4(other[0], NULL, NULL, 0); _exit(0);
		case P_ACCEPT_METRICS: /* allowed: fails with ENOTSOCK instead of SIGSYS */
			_exit(accept4(pipefd[1], NULL, NULL, 0) < 0 && errno == ENOTSOCK ? 0 : 3);
		case P_CONNECT: connect(0, NULL, 0); _exit(0);
		case P_HOOK:
			_exit(policy_seccomp_test_hook(broker ? "broker" : "enclave") == 0 ? 0 : 3);
		case P_STOP_CONT: {
			/* a timed wait stopped and continued (SIGSTOP/SIGCONT, a debugger
			 * attaching) resumes, for poll through restart_syscall */
			if (broker) {
				struct epoll_event ev;
				int n;
				do
					n = epoll_wait(epfd, &ev, 1, 3000);
				while (n < 0 && errno == EINTR);
				_exit(n == 1 ? 0 : 3);
			}
			struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
			_exit(poll(&pfd, 1, 3000) == 1 ? 0 : 3);
		}
		case P_PREAD_LOG:
			/* allowed by the filter; a pipe answers ESPIPE */
			_exit(pread(other[0], &c, 1, 0) < 0 && errno == ESPIPE ? 0 : 3);
		case P_PREAD_OTHER: _exit(pread(pipefd[1], &c, 1, 0) < 0 ? 0 : 3);
		case P_AUDIT_WRITE: _exit(write(afd, &c, 1) == 1 ? 0 : 3);
		case P_AUDIT_READ: _exit(read(afd, &c, 1) < 0 ? 0 : 3);
		case P_THREAD_SOCKET:
			pthread_mutex_lock(&go_lock);
			go = 1;
			pthread_cond_signal(&go_cond);
			pthread_mutex_unlock(&go_lock);
			pthread_join(th, NULL);
			_exit(0);
		case P_PAUSE:
			/* wait until the parent has inspected /proc/PID/status */
			_exit(read(pipefd[0], &c, 1) == 1 ? 0 : 3);
		}
		_exit(4);
	}
	if (p == P_STOP_CONT) {
		usleep(100 * 1000);
		assert_int_equal(kill(pid, SIGSTOP), 0);
		usleep(100 * 1000);
		assert_int_equal(kill(pid, SIGCONT), 0);
		usleep(100 * 1000);
		assert_int_equal(write(pipefd[1], "g", 1), 1);
	}
	if (p == P_PAUSE) {
		char path[64], line[256];
		int seccomp = -1, nnp = -1;
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
		for (int tries = 0; tries < 1000 && seccomp != 2; tries++) {
			FILE *f = fopen(path, "r");
			assert_non_null(f);
			while (fgets(line, sizeof(line), f) != NULL) {
				sscanf(line, "Seccomp: %d", &seccomp);
				sscanf(line, "NoNewPrivs: %d", &nnp);
			}
			fclose(f);
			if (seccomp != 2)
				usleep(1000);
		}
		assert_int_equal(seccomp, 2);
		assert_int_equal(nnp, 1);
		assert_int_equal(write(pipefd[1], "g", 1), 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	close(pipefd[0]), close(pipefd[1]), close(other[0]), close(other[1]);
	return st;
}

static void assert_sigsys(int st)
{
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

static void assert_ok(int st)
{
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_enclave_allowed(void **state)
{
	assert_ok(run(0, P_NOTHING));
	assert_ok(run(0, P_WRITE_PINNED));
	assert_ok(run(0, P_SODIUM));
	assert_ok(run(0, P_FSTAT));
	assert_ok(run(0, P_PAUSE)); /* Seccomp: 2, NoNewPrivs: 1 */
	assert_ok(run(0, P_STOP_CONT));
	assert_ok(run(0, P_AUDIT_WRITE));
}

static void test_enclave_killed(void **state)
{
	assert_sigsys(run(0, P_SOCKET));
	assert_sigsys(run(0, P_THREAD_SOCKET)); /* the TPM thread is filtered too */
	assert_sigsys(run(0, P_EXECVE));
	assert_sigsys(run(0, P_OPENAT));
	assert_sigsys(run(0, P_WRITE_OTHER)); /* a descriptor opened after lock-down */
	assert_sigsys(run(0, P_MMAP_EXEC));
	assert_sigsys(run(0, P_CONNECT));
	assert_sigsys(run(0, P_AUDIT_READ)); /* the audit link is written, never read */
}

static void test_broker(void **state)
{
	assert_ok(run(1, P_NOTHING));
	assert_ok(run(1, P_WRITE_OTHER));
	assert_ok(run(1, P_PAUSE));
	assert_ok(run(1, P_STOP_CONT));
	assert_sigsys(run(1, P_SOCKET));
	assert_sigsys(run(1, P_EXECVE));
	assert_sigsys(run(1, P_OPENAT));
	assert_sigsys(run(1, P_CONNECT));
	assert_sigsys(run(1, P_MMAP_EXEC));
	assert_sigsys(run(1, P_ACCEPT_OTHER));
	assert_ok(run(1, P_ACCEPT_METRICS));
	assert_ok(run(1, P_PREAD_LOG));
	assert_sigsys(run(1, P_PREAD_OTHER));
}

static void test_hook(void **state)
{
	unsetenv("SV_TEST_SANDBOX");
	assert_ok(run(0, P_HOOK));
	const char *kinds[] = {"socket", "execve", "openat", "openat:/proc/self/status"};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		setenv("SV_TEST_SANDBOX", kinds[i], 1);
		assert_sigsys(run(0, P_HOOK));
		assert_sigsys(run(1, P_HOOK));
	}
	setenv("SV_TEST_SANDBOX", "broker:socket", 1);
	assert_ok(run(0, P_HOOK));
	assert_sigsys(run(1, P_HOOK));
	setenv("SV_TEST_SANDBOX", "enclave:openat:/etc/hostname", 1);
	assert_sigsys(run(0, P_HOOK));
	assert_ok(run(1, P_HOOK));
	setenv("SV_TEST_SANDBOX", "nonsense", 1);
	assert_ok(run(0, P_HOOK));
	unsetenv("SV_TEST_SANDBOX");
	/* without a filter the hook's call succeeds and it reports failure */
	setenv("SV_TEST_SANDBOX", "openat", 1);
	assert_int_equal(policy_seccomp_test_hook("enclave"), SV_ERR_INTERNAL);
	unsetenv("SV_TEST_SANDBOX");
}

static void test_open_fds(void **state)
{
	struct policy_seccomp_enclave cfg;
	char why[128];
	int fd = open("/dev/null", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(policy_seccomp_open_fds(&cfg, why, sizeof(why)), 0);
	int seen = 0;
	for (size_t i = 0; i < cfg.n_fds; i++)
		seen |= cfg.fds[i] == fd;
	assert_true(seen);
	close(fd);
	assert_int_equal(policy_seccomp_open_fds(&cfg, why, sizeof(why)), 0);
	for (size_t i = 0; i < cfg.n_fds; i++)
		assert_int_not_equal(cfg.fds[i], fd);
	assert_int_equal(cfg.audit_fd, 0);
	struct policy_seccomp_enclave none = {.n_fds = 0};
	assert_int_equal(policy_seccomp_enclave_install(&none, why, sizeof(why)), SV_ERR_RANGE);
	/* the audit link gets write only: it must not also be among the read-write descriptors */
	struct policy_seccomp_enclave both = {.fds = {2, 4}, .n_fds = 2, .audit_fd = 4};
	assert_int_equal(policy_seccomp_enclave_install(&both, why, sizeof(why)), SV_ERR_INVALID);
	struct policy_seccomp_broker nolisten = {
	    .listen_fd = -1, .metrics_fd = -1, .log_fds = {-1, -1}};
	assert_int_equal(policy_seccomp_broker_install(&nolisten, why, sizeof(why)),
	                 SV_ERR_INVALID);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_enclave_allowed), cmocka_unit_test(test_enclave_killed),
	    cmocka_unit_test(test_broker),          cmocka_unit_test(test_hook),
	    cmocka_unit_test(test_open_fds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
