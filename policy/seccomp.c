/*
 * Seccomp allowlists, one reviewed table per process. Every entry says who needs the call. Anything
 * not listed kills the process (SCMP_ACT_KILL_PROCESS). Argument rules:
 *   FD       arg0 is one of the enclave's descriptors open at install time
 *   AUDITFD  arg0 is the enclave's audit link to sealvaultd (write only: it reads nothing there)
 *   NOEXEC   the protection argument (arg2) has no PROT_EXEC bit
 *   MADVISE  arg2 is one of the advice values glibc malloc and libsodium use
 *   FCNTL    arg1 is F_GETFL, F_SETFL, F_GETFD or F_SETFD
 *   FIONREAD arg1 == FIONREAD (libevent sizes reads with it)
 *   LISTEN   arg0 is one of the broker's listening sockets (public, metrics)
 *   LOGFD    arg0 is one of the broker's boot/IMA log descriptors (attestation evidence)
 *   EACCES   not allowed, but fails with EACCES instead of killing (library probing of fstat)
 *
 * The ASan/UBSan build of `make check-asan` (tests/asan/build.mk) defines SV_SANITIZE: install()
 * then has the sanitizer runtime cache /proc/self/maps before the filter goes in and appends
 * sanitizer_rules, the calls the runtime makes and the product never does, to both tables.
 * Without SV_SANITIZE neither exists: the production filters are the two tables above, unchanged.
 */
#include "policy/seccomp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"

#ifdef SV_SANITIZE
#include <sanitizer/common_interface_defs.h>
#endif

enum arg_rule {
	ANY,
	FD,
	AUDITFD,
	NOEXEC,
	MADVISE,
	FCNTL,
	FIONREAD_ONLY,
	LISTEN,
	LOGFD,
	EACCES_ERR
};

struct sc_rule {
	int nr;
	enum arg_rule arg;
};

/* The enclave: after set-up it only reads and writes descriptors it already holds. */
static const struct sc_rule enclave_rules[] = {
    {SCMP_SYS(read), FD},           /* IPC frames, TPM responses, state files */
    {SCMP_SYS(write), FD},          /* IPC replies, TPM commands, journal, stderr */
    {SCMP_SYS(write), AUDITFD},     /* audit records to sealvaultd (enclave/audit.c) */
    {SCMP_SYS(writev), FD},         /* glibc stdio on stderr */
    {SCMP_SYS(pread64), FD},        /* state files */
    {SCMP_SYS(pwrite64), FD},       /* state files */
    {SCMP_SYS(lseek), FD},          /* state files */
    {SCMP_SYS(ftruncate), FD},      /* journal truncation after a snapshot */
    {SCMP_SYS(fsync), FD},          /* durability of journal and snapshot */
    {SCMP_SYS(fdatasync), FD},      /* durability of the journal */
    {SCMP_SYS(close), FD},          /* teardown (ESYS finalize, store_close) */
    {SCMP_SYS(poll), ANY},          /* serve loop, TPM receive; poll takes no descriptor argument */
    {SCMP_SYS(ppoll), ANY},         /* same, as glibc may implement poll */
    {SCMP_SYS(mmap), NOEXEC},       /* malloc, sodium_malloc guard pages */
    {SCMP_SYS(mprotect), NOEXEC},   /* sodium_malloc guard pages, sodium_mprotect_* */
    {SCMP_SYS(munmap), ANY},        /* free, sodium_free */
    {SCMP_SYS(mremap), ANY},        /* realloc of large blocks */
    {SCMP_SYS(brk), ANY},           /* malloc */
    {SCMP_SYS(madvise), MADVISE},   /* malloc trim, sodium_malloc DONTDUMP */
    {SCMP_SYS(mlock), ANY},         /* sodium_malloc */
    {SCMP_SYS(munlock), ANY},       /* sodium_free */
    {SCMP_SYS(getrandom), ANY},     /* libsodium randombytes, OpenSSL DRBG */
    {SCMP_SYS(getpid), ANY},        /* OpenSSL fork detection */
    {SCMP_SYS(gettid), ANY},        /* glibc internals */
    {SCMP_SYS(clock_gettime), ANY}, /* timestamps when the vDSO falls back */
    {SCMP_SYS(gettimeofday), ANY},  /* same */
    {SCMP_SYS(nanosleep), ANY},     /* back-off on TPM_RC_NV_RATE/RETRY */
    {SCMP_SYS(clock_nanosleep), ANY}, /* same, as glibc implements nanosleep */
    {SCMP_SYS(futex), ANY},           /* OpenSSL and glibc locks */
    {SCMP_SYS(rt_sigreturn), ANY},    /* return from a signal handler */
    {SCMP_SYS(restart_syscall), ANY}, /* poll/nanosleep resumed after SIGSTOP/SIGCONT */
    {SCMP_SYS(exit), ANY},
    {SCMP_SYS(exit_group), ANY},
    {SCMP_SYS(fstat), EACCES_ERR},      /* stdio probing; harmless to refuse */
    {SCMP_SYS(newfstatat), EACCES_ERR}, /* same (glibc >= 2.33 fstat) */
    {SCMP_SYS(statx), EACCES_ERR},
};

/* The broker: TLS and HTTP on sockets it accepts; it opens no files and makes no connections. */
static const struct sc_rule broker_rules[] = {
    {SCMP_SYS(accept4), LISTEN},      /* new client connections (evconnlistener) */
    {SCMP_SYS(accept), LISTEN},       /* same, older code paths */
    {SCMP_SYS(pread64), LOGFD},       /* boot and IMA logs, re-read for each attestation */
    {SCMP_SYS(read), ANY},            /* client sockets (OpenSSL socket BIO), enclave link */
    {SCMP_SYS(write), ANY},           /* same, and stderr */
    {SCMP_SYS(readv), ANY},           /* evbuffer_read */
    {SCMP_SYS(writev), ANY},          /* evbuffer_write */
    {SCMP_SYS(recvfrom), ANY},        /* recv() as glibc implements it */
    {SCMP_SYS(sendto), ANY},          /* send() as glibc implements it */
    {SCMP_SYS(close), ANY},           /* closing client connections */
    {SCMP_SYS(shutdown), ANY},        /* TLS close_notify then shutdown */
    {SCMP_SYS(epoll_wait), ANY},      /* libevent's epoll backend */
    {SCMP_SYS(epoll_pwait), ANY},     /* same */
    {SCMP_SYS(epoll_ctl), ANY},       /* same */
    {SCMP_SYS(fcntl), FCNTL},         /* evutil_make_socket_nonblocking / closeonexec */
    {SCMP_SYS(ioctl), FIONREAD_ONLY}, /* evbuffer_read sizing */
    {SCMP_SYS(setsockopt), ANY},      /* TCP_NODELAY, SO_KEEPALIVE on accepted sockets */
    {SCMP_SYS(getsockopt), ANY},      /* SO_ERROR */
    {SCMP_SYS(getsockname), ANY},     /* evhttp connection addresses */
    {SCMP_SYS(getpeername), ANY},     /* same */
    {SCMP_SYS(mmap), NOEXEC},         /* malloc */
    {SCMP_SYS(mprotect), NOEXEC},     /* malloc arenas */
    {SCMP_SYS(munmap), ANY},
    {SCMP_SYS(mremap), ANY},
    {SCMP_SYS(brk), ANY},
    {SCMP_SYS(madvise), MADVISE},
    {SCMP_SYS(getrandom), ANY}, /* OpenSSL DRBG, libevent's arc4random */
    {SCMP_SYS(getpid), ANY},    /* OpenSSL fork detection */
    {SCMP_SYS(gettid), ANY},
    {SCMP_SYS(clock_gettime), ANY}, /* libevent timers when the vDSO falls back */
    {SCMP_SYS(gettimeofday), ANY},
    {SCMP_SYS(futex), ANY},           /* OpenSSL and glibc locks */
    {SCMP_SYS(rt_sigreturn), ANY},    /* libevent signal handlers (SIGTERM, SIGINT) */
    {SCMP_SYS(restart_syscall), ANY}, /* a timed wait resumed after SIGSTOP/SIGCONT */
    {SCMP_SYS(exit), ANY},
    {SCMP_SYS(exit_group), ANY},
    {SCMP_SYS(fstat), EACCES_ERR},
    {SCMP_SYS(newfstatat), EACCES_ERR},
    {SCMP_SYS(statx), EACCES_ERR},
};

#ifdef SV_SANITIZE
/* Sanitizer build only (see the top of this file); never compiled into a production filter. */
static const struct sc_rule sanitizer_rules[] = {
    {SCMP_SYS(sigaltstack), ANY}, /* __asan_handle_no_return, before every noreturn call */
    {SCMP_SYS(open), EACCES_ERR}, /* a report re-reads /proc/self/maps (raw SYS_open; glibc
                                    uses openat, which stays fatal), then takes the cached copy */
    {SCMP_SYS(stat), EACCES_ERR}, /* looks for llvm-symbolizer (raw SYS_stat): not found, so the
                                    report gives binary+offset frames instead of spawning it */
};
#endif

static const int madvise_ok[] = {MADV_NORMAL, MADV_DONTNEED, MADV_FREE, MADV_DONTDUMP, MADV_DODUMP};
static const int fcntl_ok[] = {F_GETFL, F_SETFL, F_GETFD, F_SETFD};

static int add(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned n,
               const struct scmp_arg_cmp *a)
{
	return seccomp_rule_add_array(ctx, action, nr, n, a);
}

/* Adds one table entry; fds/n_fds are the pinned descriptors (FD, LISTEN and LOGFD rules), the
 * first n_listen of them the broker's listeners; audit_fd the enclave's audit link (0: none, and
 * an AUDITFD rule adds nothing). */
static int add_rule(scmp_filter_ctx ctx, const struct sc_rule *r, const int *fds, size_t n_fds,
                    size_t n_listen, int audit_fd)
{
	struct scmp_arg_cmp a;
	int rc = 0;
	switch (r->arg) {
	case ANY: return add(ctx, SCMP_ACT_ALLOW, r->nr, 0, NULL);
	case AUDITFD:
		if (audit_fd <= 0)
			return 0;
		a = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)audit_fd);
		return add(ctx, SCMP_ACT_ALLOW, r->nr, 1, &a);
	case EACCES_ERR: return add(ctx, SCMP_ACT_ERRNO(EACCES), r->nr, 0, NULL);
	case NOEXEC:
		a = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
		return add(ctx, SCMP_ACT_ALLOW, r->nr, 1, &a);
	case FIONREAD_ONLY:
		a = SCMP_A1(SCMP_CMP_EQ, FIONREAD);
		return add(ctx, SCMP_ACT_ALLOW, r->nr, 1, &a);
	case MADVISE:
		for (size_t i = 0; rc == 0 && i < sizeof(madvise_ok) / sizeof(madvise_ok[0]); i++) {
			a = SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)madvise_ok[i]);
			rc = add(ctx, SCMP_ACT_ALLOW, r->nr, 1, &a);
		}
		return rc;
	case FCNTL:
		for (size_t i = 0; rc == 0 && i < sizeof(fcntl_ok) / sizeof(fcntl_ok[0]); i++) {
			a = SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)fcntl_ok[i]);
			rc = add(ctx, SCMP_ACT_ALLOW, r->nr, 1, &a);
		}
		return rc;
	case FD:
	case LISTEN: /* the broker's fds: [0, n_listen) its listeners, then the log descriptors */
	case LOGFD:
		for (size_t i = r->arg == LOGFD ? n_listen : 0;
		     rc == 0 && i < (r->arg == LISTEN ? n_listen : n_fds); i++) {
			a = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fds[i]);
			rc = add(ctx, SCMP_ACT_ALLOW, r->nr, 1, &a);
		}
		return rc;
	}
	return -EINVAL;
}

static int install(const char *who, const struct sc_rule *rules, size_t n_rules, const int *fds,
                   size_t n_fds, size_t n_listen, int audit_fd, char *why, size_t why_len)
{
	scmp_filter_ctx ctx = NULL;
	int r = SV_ERR_INTERNAL;
	int rc;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(why, why_len, "%s: PR_SET_NO_NEW_PRIVS failed: %s", who, strerror(errno));
		goto out;
	}
	/* NULL also when KILL_PROCESS is unsupported, e.g. under a parent filter that forbids the
	 * seccomp(2) probe: refuse rather than fall back to something weaker. */
	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL) {
		snprintf(
		    why, why_len,
		    "%s: seccomp_init(KILL_PROCESS) failed; the kernel or a parent sandbox does "
		    "not allow seccomp (systemd units must list 'seccomp' in SystemCallFilter=)",
		    who);
		goto out;
	}
	/* TSYNC: the filter goes on every thread of the process, not only the caller (the
	 * enclave's TPM thread is started before it, since clone is not allowed after); the load
	 * fails rather than leave a thread unfiltered. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) != 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1)) != 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) != 0) {
		snprintf(why, why_len, "%s: seccomp_attr_set failed: %s", who, strerror(-rc));
		goto out;
	}
	for (size_t i = 0; i < n_rules; i++) {
		if ((rc = add_rule(ctx, &rules[i], fds, n_fds, n_listen, audit_fd)) != 0) {
			snprintf(why, why_len, "%s: adding seccomp rule for syscall %d failed: %s",
			         who, rules[i].nr, strerror(-rc));
			goto out;
		}
	}
#ifdef SV_SANITIZE
	/* the runtime caches /proc/self/maps now, for the stack traces of a report after
	 * lock-down */
	__sanitizer_sandbox_on_notify(NULL);
	for (size_t i = 0; i < sizeof(sanitizer_rules) / sizeof(sanitizer_rules[0]); i++) {
		if ((rc = add_rule(ctx, &sanitizer_rules[i], fds, n_fds, n_listen, audit_fd)) !=
		    0) {
			snprintf(why, why_len,
			         "%s: adding sanitizer rule for syscall %d failed: %s", who,
			         sanitizer_rules[i].nr, strerror(-rc));
			goto out;
		}
	}
#endif
	if ((rc = seccomp_load(ctx)) != 0) {
		snprintf(why, why_len, "%s: seccomp_load failed: %s", who, strerror(-rc));
		goto out;
	}
	r = SV_OK;
out:
	if (ctx != NULL)
		seccomp_release(ctx);
	return r;
}

int policy_seccomp_open_fds(struct policy_seccomp_enclave *cfg, char *why, size_t why_len)
{
	DIR *d = opendir("/proc/self/fd");
	int r = SV_OK;
	if (d == NULL) {
		snprintf(why, why_len, "cannot list /proc/self/fd: %s", strerror(errno));
		return SV_ERR_IO;
	}
	int self = dirfd(d);
	cfg->n_fds = 0;
	cfg->audit_fd = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end != '\0' || fd < 0 || fd == self)
			continue;
		if (cfg->n_fds == POLICY_SECCOMP_MAX_FDS) {
			snprintf(why, why_len, "more than %d descriptors open at lock-down",
			         POLICY_SECCOMP_MAX_FDS);
			r = SV_ERR_RANGE;
			break;
		}
		cfg->fds[cfg->n_fds++] = (int)fd;
	}
	closedir(d);
	return r;
}

int policy_seccomp_enclave_install(const struct policy_seccomp_enclave *cfg, char *why,
                                   size_t why_len)
{
	if (cfg->n_fds == 0 || cfg->n_fds > POLICY_SECCOMP_MAX_FDS) {
		snprintf(why, why_len, "enclave filter: %zu descriptors, need 1..%d", cfg->n_fds,
		         POLICY_SECCOMP_MAX_FDS);
		return SV_ERR_RANGE;
	}
	for (size_t i = 0; cfg->audit_fd > 0 && i < cfg->n_fds; i++)
		if (cfg->fds[i] == cfg->audit_fd) {
			snprintf(why, why_len, "enclave filter: the audit link %d is also in fds",
			         cfg->audit_fd);
			return SV_ERR_INVALID;
		}
	return install("enclave filter", enclave_rules,
	               sizeof(enclave_rules) / sizeof(enclave_rules[0]), cfg->fds, cfg->n_fds, 0,
	               cfg->audit_fd, why, why_len);
}

int policy_seccomp_broker_install(const struct policy_seccomp_broker *cfg, char *why,
                                  size_t why_len)
{
	if (cfg->listen_fd < 0) {
		snprintf(why, why_len, "broker filter: no listening socket");
		return SV_ERR_INVALID;
	}
	int fds[4] = {cfg->listen_fd};
	size_t n = 1;
	if (cfg->metrics_fd >= 0)
		fds[n++] = cfg->metrics_fd;
	size_t n_listen = n;
	for (size_t i = 0; i < 2; i++)
		if (cfg->log_fds[i] >= 0)
			fds[n++] = cfg->log_fds[i];
	return install("broker filter", broker_rules,
	               sizeof(broker_rules) / sizeof(broker_rules[0]), fds, n, n_listen, 0, why,
	               why_len);
}

int policy_seccomp_test_hook(const char *who)
{
	const char *what = getenv("SV_TEST_SANDBOX");
	if (what == NULL || *what == '\0')
		return 0;
	/* "enclave:openat" is for the enclave only, "broker:socket" for the broker only */
	const char *colon = strchr(what, ':');
	if (colon != NULL &&
	    (strncmp(what, "enclave:", 8) == 0 || strncmp(what, "broker:", 7) == 0)) {
		size_t n = (size_t)(colon - what);
		if (strlen(who) != n || strncmp(what, who, n) != 0)
			return 0;
		what = colon + 1;
	}
	if (strcmp(what, "socket") == 0) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		fprintf(stderr, "sandbox test: socket() was not stopped (returned %d)\n", s);
	} else if (strcmp(what, "execve") == 0) {
		char *const argv[] = {(char *)"/bin/true", NULL};
		char *const envp[] = {NULL};
		int e = execve("/bin/true", argv, envp);
		fprintf(stderr, "sandbox test: execve() was not stopped (returned %d)\n", e);
	} else if (strncmp(what, "openat", 6) == 0 && (what[6] == '\0' || what[6] == ':')) {
		const char *path = what[6] == ':' ? what + 7 : "/etc/hostname";
		int fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
		fprintf(stderr, "sandbox test: openat(%s) was not stopped (returned %d)\n", path,
		        fd);
	} else {
		fprintf(stderr,
		        "sandbox test: SV_TEST_SANDBOX=%s names no test (socket, execve, "
		        "openat[:PATH]); ignored\n",
		        what);
		return 0;
	}
	return SV_ERR_INTERNAL;
}
