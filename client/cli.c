/*
 * sealvault: the command-line client over libsealvault.
 *
 * Passwords come from a prompt without echo, a file, or stdin (--password-file -); never from the
 * command line. Exit codes: 0 success, 2 wrong password or unknown user (attempts left on stderr
 * when the server says), 3 locked out (the record was destroyed), 4 the server failed
 * attestation (`verify`, or --expect on the other commands), 5 the vault refused the access
 * token (--token FILE; docs/tokens.md), 1 anything else. The token, like a password, is read
 * from a file or stdin, never taken from the command line. With --realms FILE, register, recover
 * and delete work on threshold realms (cli_realms.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "client/cli.h"
#include "client/sealvault.h"

void cli_secret_free(struct secret *s)
{
	if (s->p != NULL)
		sodium_free(s->p);
	s->p = NULL;
	s->len = 0;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage:\n"
	    "  sealvault register --server URL --cacert FILE --user ID\n"
	    "            [--password-file FILE | --generate-code] --secret-file FILE\n"
	    "            [--max-attempts N]\n"
	    "  sealvault recover  --server URL --cacert FILE --user ID [--password-file FILE]\n"
	    "            --out FILE\n"
	    "  sealvault delete   --server URL --cacert FILE --user ID [--password-file FILE]\n"
	    "  sealvault change-password --server URL --cacert FILE --user ID\n"
	    "            [--password-file FILE] [--new-password-file FILE | --generate-code]\n"
	    "            [--max-attempts N]\n"
	    "            (register, recover, delete, change-password: --token FILE, the access\n"
	    "            token from the provider; - reads it from stdin, before a password)\n"
	    "  sealvault verify   --server URL --cacert FILE --expect FILE [--tpm-ca FILE]\n"
	    "            [--evidence FILE --nonce HEX]\n"
	    "threshold realms (one secret over n vaults, any t recover it; docs/realms.md):\n"
	    "  sealvault register --realms FILE [--threshold T] --user ID\n"
	    "            [--password-file FILE | --generate-code] --secret-file FILE\n"
	    "            [--max-attempts TOTAL] [--min-realms R]\n"
	    "  sealvault recover  --realms FILE [--threshold T] --user ID [--password-file FILE]\n"
	    "            --out FILE\n"
	    "  sealvault delete   --realms FILE --user ID\n"
	    "            (the realm list names each realm's URL, CA file, id, and optional expect\n"
	    "            and token files; TOTAL is the number of guesses across all realms,\n"
	    "            default 10; R is how many realms must take a registration, default all)\n"
	    "options for every command: --context STR, --ksf-t N, --ksf-m KIB, --timeout SECONDS,\n"
	    "--verbose (say more about a failure);\n"
	    "register, recover, delete, change-password: --expect FILE [--tpm-ca FILE] verify the\n"
	    "server's attestation first and refuse a server that fails it.\n"
	    "Without --password-file the password is read from the terminal without echo;\n"
	    "'-' reads it from stdin (first line). Passwords are never taken from arguments.\n"
	    "Exit: 0 ok, 2 wrong password or unknown user, 3 locked out, 4 verification failed,\n"
	    "5 the vault refused the access token, 1 other error.\n"
	    "See sealvault(1).\n");
}

static int parse_num(const char *name, const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "sealvault: %s must be a number from %ld to %ld, not '%s'\n", name,
		        lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* Reads one line (without its end of line) from f into a fresh secret, byte by byte so that no
 * stdio buffer keeps a copy and a second line stays unread for the next caller. */
static int read_line(FILE *f, struct secret *s, const char *what)
{
	s->p = sodium_malloc(SV_PASSWORD_MAX_LEN + 1);
	s->len = 0;
	if (s->p == NULL) {
		fprintf(stderr, "sealvault: out of memory\n");
		return -1;
	}
	int c;
	while ((c = getc(f)) != EOF && c != '\n') {
		if (s->len == SV_PASSWORD_MAX_LEN) {
			fprintf(stderr, "sealvault: %s is longer than %d bytes\n", what,
			        SV_PASSWORD_MAX_LEN);
			cli_secret_free(s);
			return -1;
		}
		s->p[s->len++] = (uint8_t)c;
	}
	if (s->len > 0 && s->p[s->len - 1] == '\r')
		s->len--;
	if (ferror(f) || s->len == 0) {
		fprintf(stderr,
		        "sealvault: %s is empty or unreadable; put the password on the first "
		        "line\n",
		        what);
		cli_secret_free(s);
		return -1;
	}
	return 0;
}

/* The access token of --token FILE ('-': the first line of stdin): one line of at most
 * SV_TOKEN_MAX_LEN characters, surrounding blanks dropped, as a NUL-terminated string in s. */
static int read_token(const char *path, struct secret *s)
{
	int in = strcmp(path, "-") == 0;
	FILE *f = in ? stdin : fopen(path, "re");
	int c, r = -1;
	if (f == NULL) {
		fprintf(stderr, "sealvault: cannot open token file %s: %s\n", path,
		        strerror(errno));
		return -1;
	}
	setvbuf(f, NULL, _IONBF, 0); /* a password on the next line of stdin stays unread */
	s->len = 0;
	if ((s->p = sodium_malloc(SV_TOKEN_MAX_LEN + 1)) == NULL) {
		fprintf(stderr, "sealvault: out of memory\n");
		goto out;
	}
	while ((c = getc(f)) != EOF && c != '\n') {
		if (c == ' ' || c == '\t' || c == '\r')
			continue;
		if (s->len == SV_TOKEN_MAX_LEN) {
			fprintf(stderr, "sealvault: the token in %s is longer than %d characters\n",
			        in ? "stdin" : path, SV_TOKEN_MAX_LEN);
			goto out;
		}
		s->p[s->len++] = (uint8_t)c;
	}
	s->p[s->len] = '\0';
	if (ferror(f) || s->len == 0) {
		fprintf(stderr, "sealvault: %s holds no access token; put it on the first line\n",
		        in ? "stdin" : path);
		goto out;
	}
	r = 0;
out:
	if (!in)
		fclose(f);
	if (r != 0)
		cli_secret_free(s);
	return r;
}

static int read_password_file(const char *path, struct secret *s)
{
	if (strcmp(path, "-") == 0) {
		setvbuf(stdin, NULL, _IONBF, 0);
		return read_line(stdin, s, "the password on stdin");
	}
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		fprintf(stderr, "sealvault: cannot open password file %s: %s\n", path,
		        strerror(errno));
		return -1;
	}
	setvbuf(f, NULL, _IONBF, 0);
	int r = read_line(f, s, path);
	fclose(f);
	return r;
}

static int prompt(const char *text, struct secret *s)
{
	struct termios old, quiet;
	FILE *tty = fopen("/dev/tty", "r+e");
	if (tty == NULL) {
		fprintf(stderr, "sealvault: no terminal to ask for the password; use "
		                "--password-file FILE (or - for stdin)\n");
		return -1;
	}
	setvbuf(tty, NULL, _IONBF, 0);
	int fd = fileno(tty);
	int have = tcgetattr(fd, &old) == 0;
	if (have) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	fputs(text, tty);
	int r = read_line(tty, s, "the password");
	if (have)
		tcsetattr(fd, TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	return r;
}

/* The password to log in with: from a file or stdin, otherwise prompted for. */
int cli_get_password(const char *file, const char *text, struct secret *s)
{
	return file != NULL ? read_password_file(file, s) : prompt(text, s);
}

/* A new password: from a file, generated as a recovery code (left in code, for the caller to
 * show once the server has accepted it), or prompted for twice. */
int cli_get_new_password(const struct opts *o, const char *file, struct secret *s,
                         char code[SV_CODE_LEN + 1])
{
	if (o->generate_code) {
		s->p = sodium_malloc(SV_CODE_LEN);
		if (s->p == NULL || sv_generate_code(code) != 0) {
			fprintf(stderr, "sealvault: cannot generate a recovery code\n");
			return -1;
		}
		memcpy(s->p, code, SV_CODE_LEN);
		s->len = SV_CODE_LEN;
		return 0;
	}
	if (file != NULL)
		return read_password_file(file, s);
	struct secret again = {0};
	if (prompt("New password: ", s) != 0)
		return -1;
	if (prompt("New password again: ", &again) != 0) {
		cli_secret_free(s);
		return -1;
	}
	int same = s->len == again.len && sodium_memcmp(s->p, again.p, s->len) == 0;
	cli_secret_free(&again);
	if (!same) {
		fprintf(stderr, "sealvault: the two passwords differ; nothing was changed\n");
		cli_secret_free(s);
		return -1;
	}
	return 0;
}

int cli_read_secret_file(const char *path, struct secret *s)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "sealvault: cannot open secret file %s: %s\n", path,
		        strerror(errno));
		return -1;
	}
	s->p = sodium_malloc(SV_SECRET_MAX_LEN + 1);
	s->len = 0;
	int r = -1;
	if (s->p == NULL) {
		fprintf(stderr, "sealvault: out of memory\n");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, s->p + s->len, SV_SECRET_MAX_LEN + 1 - s->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "sealvault: reading %s: %s\n", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		s->len += (size_t)n;
		if (s->len > SV_SECRET_MAX_LEN) {
			fprintf(stderr,
			        "sealvault: %s is larger than %d bytes; store a key, not a "
			        "file\n",
			        path, SV_SECRET_MAX_LEN);
			goto out;
		}
	}
	if (s->len == 0) {
		fprintf(stderr, "sealvault: %s is empty; nothing to store\n", path);
		goto out;
	}
	r = 0;
out:
	if (fd != STDIN_FILENO)
		close(fd);
	if (r != 0)
		cli_secret_free(s);
	return r;
}

int cli_write_out(const char *path, const uint8_t *p, size_t len)
{
	int fd = strcmp(path, "-") == 0
	             ? STDOUT_FILENO
	             : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		fprintf(stderr,
		        "sealvault: cannot create %s: %s; the key was recovered but not "
		        "saved, run recover again with another --out\n",
		        path, strerror(errno));
		return -1;
	}
	int r = 0;
	if (fd != STDOUT_FILENO && fchmod(fd, 0600) != 0)
		r = -1;
	size_t off = 0;
	while (r == 0 && off < len) {
		ssize_t n = write(fd, p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -1;
		else
			off += (size_t)n;
	}
	if (r == 0 && fd != STDOUT_FILENO && fsync(fd) != 0)
		r = -1;
	if (fd != STDOUT_FILENO && close(fd) != 0)
		r = -1;
	if (r != 0)
		fprintf(stderr, "sealvault: writing %s: %s\n", path, strerror(errno));
	return r;
}

void cli_show_code(const char *code)
{
	fprintf(stderr, "sealvault: your recovery code is the password from now on; write it down, "
	                "nobody can show it again:\n");
	printf("%s\n", code);
	fflush(stdout);
}

/* Maps a library result to the exit code, saying what happened. A wrong password is said in plain
 * words; the library's details (KSF profile, context) only with --verbose. */
static int report(const struct sv_ctx *ctx, enum sv_result res, int attempts_left, int verbose)
{
	switch (res) {
	case SV_RESULT_OK: return 0;
	case SV_RESULT_WRONG_PASSWORD:
		if (verbose)
			fprintf(stderr, "sealvault: %s\n", sv_ctx_error(ctx));
		else
			fprintf(stderr, "sealvault: wrong password or unknown user; check both "
			                "(--verbose says more)\n");
		if (attempts_left >= 0)
			fprintf(stderr, "attempts left: %d\n", attempts_left);
		return EXIT_WRONG;
	case SV_RESULT_LOCKED:
		fprintf(stderr, "sealvault: %s\n", sv_ctx_error(ctx));
		fprintf(stderr, "sealvault: the stored key cannot be recovered by anyone; register "
		                "again with a new key\n");
		return EXIT_LOCKED;
	case SV_RESULT_UNVERIFIED:
		fprintf(stderr, "sealvault: verification failed: %s\n", sv_ctx_error(ctx));
		fprintf(stderr,
		        "sealvault: nothing was sent to this vault; do not use it until its "
		        "provider explains the failed check\n");
		return EXIT_UNVERIFIED;
	case SV_RESULT_TOKEN_REFUSED:
		/* "the vault refused the access token: <the server's reason>" */
		fprintf(stderr, "sealvault: %s\n", sv_ctx_error(ctx));
		return EXIT_TOKEN;
	case SV_RESULT_FULL:
		fprintf(stderr, "sealvault: %s\n", sv_ctx_error(ctx));
		return EXIT_FULL;
	case SV_RESULT_BUSY:
		fprintf(stderr, "sealvault: %s\n", sv_ctx_error(ctx));
		fprintf(stderr, "sealvault: nothing was charged; try again later\n");
		return EXIT_RETRY;
	case SV_RESULT_EXISTS:
	case SV_RESULT_ERROR: break;
	}
	fprintf(stderr, "sealvault: %s\n", sv_ctx_error(ctx));
	return 1;
}

static int parse(int argc, char **argv, struct opts *o)
{
	enum {
		O_SERVER = 256,
		O_CACERT,
		O_USER,
		O_PWFILE,
		O_NEWPWFILE,
		O_SECRET,
		O_OUT,
		O_MAX,
		O_GEN,
		O_CONTEXT,
		O_KSFT,
		O_KSFM,
		O_TIMEOUT,
		O_EXPECT,
		O_TPMCA,
		O_EVIDENCE,
		O_NONCE,
		O_VERBOSE,
		O_VERSION,
		O_TOKEN,
		O_REALMS,
		O_THRESHOLD,
		O_MINREALMS
	};
	static const struct option longopts[] = {
	    {"server", required_argument, NULL, O_SERVER},
	    {"cacert", required_argument, NULL, O_CACERT},
	    {"user", required_argument, NULL, O_USER},
	    {"password-file", required_argument, NULL, O_PWFILE},
	    {"new-password-file", required_argument, NULL, O_NEWPWFILE},
	    {"secret-file", required_argument, NULL, O_SECRET},
	    {"out", required_argument, NULL, O_OUT},
	    {"max-attempts", required_argument, NULL, O_MAX},
	    {"generate-code", no_argument, NULL, O_GEN},
	    {"context", required_argument, NULL, O_CONTEXT},
	    {"ksf-t", required_argument, NULL, O_KSFT},
	    {"ksf-m", required_argument, NULL, O_KSFM},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"expect", required_argument, NULL, O_EXPECT},
	    {"tpm-ca", required_argument, NULL, O_TPMCA},
	    {"evidence", required_argument, NULL, O_EVIDENCE},
	    {"nonce", required_argument, NULL, O_NONCE},
	    {"verbose", no_argument, NULL, O_VERBOSE},
	    {"token", required_argument, NULL, O_TOKEN},
	    {"realms", required_argument, NULL, O_REALMS},
	    {"threshold", required_argument, NULL, O_THRESHOLD},
	    {"min-realms", required_argument, NULL, O_MINREALMS},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, O_VERSION},
	    {NULL, 0, NULL, 0},
	};
	/* getopt_long accepts unambiguous abbreviations, so "--password x" would silently mean
	 * "--password-file x"; options must be spelled out. */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strncmp(argv[i], "--", 2) != 0)
			continue;
		size_t len = strcspn(argv[i] + 2, "=");
		int known = 0;
		for (const struct option *lo = longopts; lo->name != NULL; lo++)
			known |=
			    strlen(lo->name) == len && strncmp(lo->name, argv[i] + 2, len) == 0;
		if (!known) {
			fprintf(stderr,
			        "sealvault: unknown option '%.*s'; passwords are never given "
			        "as arguments (see --help)\n",
			        (int)(len + 2), argv[i]);
			return -1;
		}
		/* skip the value of an option that takes one */
		for (const struct option *lo = longopts; lo->name != NULL; lo++)
			if (strlen(lo->name) == len && strncmp(lo->name, argv[i] + 2, len) == 0 &&
			    lo->has_arg == required_argument && argv[i][2 + len] == '\0')
				i++;
	}
	int c;
	const char *max_arg = NULL;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_SERVER: o->server = optarg; break;
		case O_CACERT: o->cacert = optarg; break;
		case O_USER: o->user = optarg; break;
		case O_PWFILE: o->password_file = optarg; break;
		case O_NEWPWFILE: o->new_password_file = optarg; break;
		case O_SECRET: o->secret_file = optarg; break;
		case O_OUT: o->out = optarg; break;
		case O_GEN: o->generate_code = 1; break;
		case O_VERBOSE: o->verbose = 1; break;
		case O_CONTEXT: o->context = optarg; break;
		case O_EXPECT: o->expect = optarg; break;
		case O_TPMCA: o->tpm_ca = optarg; break;
		case O_EVIDENCE: o->evidence = optarg; break;
		case O_NONCE: o->nonce = optarg; break;
		case O_TOKEN: o->token_file = optarg; break;
		case O_REALMS: o->realms = optarg; break;
		case O_THRESHOLD:
			if (parse_num("--threshold", optarg, 1, 16, &o->threshold) != 0)
				return -1;
			break;
		case O_MINREALMS:
			if (parse_num("--min-realms", optarg, 1, 16, &o->min_realms) != 0)
				return -1;
			break;
		case O_MAX: max_arg = optarg; break;
		case O_KSFT:
			if (parse_num("--ksf-t", optarg, SV_KSF_MIN_T, 64, &o->ksf_t) != 0)
				return -1;
			break;
		case O_KSFM:
			if (parse_num("--ksf-m", optarg, SV_KSF_MIN_M_KIB, SV_KSF_MAX_M_KIB,
			              &o->ksf_m) != 0)
				return -1;
			break;
		case O_TIMEOUT:
			if (parse_num("--timeout", optarg, 1, 3600, &o->timeout) != 0)
				return -1;
			break;
		case 'h': usage(stdout); exit(0);
		case O_VERSION: printf("sealvault %s\n", SV_CLI_VERSION); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr,
		        "sealvault: give exactly one command (register, recover, delete, "
		        "change-password, verify)%s\n",
		        optind < argc - 1 ? "; passwords never go on the "
		                            "command line"
		                          : "");
		usage(stderr);
		return -1;
	}
	o->cmd = argv[optind];
	/* --max-attempts: one vault's guess limit, or with --realms the total across them (at
	 * most 16 realms of 255) */
	if (max_arg != NULL &&
	    parse_num("--max-attempts", max_arg, 1,
	              o->realms != NULL ? 16 * SV_MAX_ATTEMPTS_MAX : SV_MAX_ATTEMPTS_MAX,
	              &o->max_attempts) != 0)
		return -1;
	if (o->realms != NULL)
		return cli_realms_check(o);
	if (o->threshold || o->min_realms) {
		fprintf(stderr, "sealvault: --threshold and --min-realms need --realms FILE\n");
		return -1;
	}
	int verify = strcmp(o->cmd, "verify") == 0;
	const char *missing = o->server == NULL             ? "--server URL"
	                      : verify && o->expect == NULL ? "--expect FILE"
	                      : !verify && o->user == NULL  ? "--user ID"
	                                                    : NULL;
	if (missing == NULL && verify && (o->evidence == NULL) != (o->nonce == NULL))
		missing = o->evidence == NULL
		              ? "--evidence FILE with --nonce"
		              : "--nonce HEX (the nonce the evidence was fetched for)";
	if (missing == NULL && strcmp(o->cmd, "register") == 0 && o->secret_file == NULL)
		missing = "--secret-file FILE";
	if (missing == NULL && strcmp(o->cmd, "recover") == 0 && o->out == NULL)
		missing = "--out FILE";
	if (missing != NULL) {
		fprintf(stderr, "sealvault: %s needs %s\n", o->cmd, missing);
		return -1;
	}
	if (!verify && (o->evidence != NULL || o->nonce != NULL)) {
		fprintf(stderr, "sealvault: --evidence and --nonce are options of verify only\n");
		return -1;
	}
	if (verify && o->token_file != NULL) {
		fprintf(stderr, "sealvault: verify sends no vault request: drop --token\n");
		return -1;
	}
	if (o->tpm_ca != NULL && o->expect == NULL) {
		fprintf(stderr, "sealvault: --tpm-ca is used only with --expect FILE\n");
		return -1;
	}
	if (o->generate_code && strcmp(o->cmd, "register") == 0 && o->password_file != NULL) {
		fprintf(stderr,
		        "sealvault: --generate-code makes the password; drop --password-file\n");
		return -1;
	}
	if (o->generate_code && o->new_password_file != NULL) {
		fprintf(stderr, "sealvault: --generate-code makes the new password; drop "
		                "--new-password-file\n");
		return -1;
	}
	return 0;
}

static int setup(const struct opts *o, struct sv_ctx **ctx)
{
	if (sv_ctx_new(ctx, o->server) != 0) {
		fprintf(stderr,
		        "sealvault: cannot use server URL '%s': it must start with https://\n",
		        o->server);
		return -1;
	}
	if (o->cacert != NULL && sv_ctx_set_cacert(*ctx, o->cacert) != 0)
		return -1;
	if (o->context != NULL &&
	    sv_ctx_set_context(*ctx, (const uint8_t *)o->context, strlen(o->context)) != 0) {
		fprintf(stderr, "sealvault: --context is too long\n");
		return -1;
	}
	if ((o->ksf_t || o->ksf_m) &&
	    sv_ctx_set_ksf(*ctx, o->ksf_t ? (uint32_t)o->ksf_t : SV_KSF_DEFAULT_T,
	                   o->ksf_m ? (uint32_t)o->ksf_m : SV_KSF_DEFAULT_M_KIB) != 0) {
		fprintf(stderr, "sealvault: --ksf-t/--ksf-m out of range\n");
		return -1;
	}
	if (o->timeout)
		sv_ctx_set_timeout(*ctx, (unsigned)o->timeout);
	if (o->expect != NULL && sv_ctx_set_expect(*ctx, o->expect) != 0) {
		fprintf(stderr, "sealvault: %s\n", sv_ctx_error(*ctx));
		return -1;
	}
	if (o->tpm_ca != NULL && sv_ctx_set_tpm_ca(*ctx, o->tpm_ca) != 0) {
		fprintf(stderr, "sealvault: --tpm-ca: %s\n", sv_ctx_error(*ctx));
		return -1;
	}
	return 0;
}

/* The whole evidence file into a malloc'd buffer. */
static int read_evidence(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long size;
	if (f == NULL) {
		fprintf(stderr, "sealvault: cannot open evidence file %s: %s\n", path,
		        strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    size == 0 || size > EVIDENCE_MAX) {
		fprintf(stderr,
		        "sealvault: evidence file %s is empty, unreadable or larger than %ld "
		        "bytes\n",
		        path, EVIDENCE_MAX);
		fclose(f);
		return -1;
	}
	buf = malloc((size_t)size);
	if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "sealvault: reading %s failed\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	*out = buf;
	*len = (size_t)size;
	return 0;
}

/* `sealvault verify`: prints "verified: <summary>" and exits 0, or names the failed check. */
static int cmd_verify(const struct opts *o, struct sv_ctx *ctx)
{
	uint8_t nonce[NONCE_MAX];
	size_t nonce_len = 0, ev_len = 0;
	char *ev = NULL, summary[512];
	const char *end = NULL;
	if (o->nonce != NULL && (sodium_hex2bin(nonce, sizeof(nonce), o->nonce, strlen(o->nonce),
	                                        NULL, &nonce_len, &end) != 0 ||
	                         *end != '\0' || nonce_len < NONCE_MIN)) {
		fprintf(stderr, "sealvault: --nonce must be %d to %d bytes in hex\n", NONCE_MIN,
		        NONCE_MAX);
		return 1;
	}
	if (o->evidence != NULL && read_evidence(o->evidence, &ev, &ev_len) != 0)
		return 1;
	enum sv_result res =
	    sv_verify(ctx, ev ? nonce : NULL, nonce_len, ev, ev_len, summary, sizeof(summary));
	free(ev);
	if (res == SV_RESULT_OK) {
		printf("verified: %s\n", summary);
		return 0;
	}
	if (res == SV_RESULT_UNVERIFIED) {
		fprintf(stderr, "sealvault: verification failed: %s\n", sv_ctx_error(ctx));
		return EXIT_UNVERIFIED;
	}
	fprintf(stderr, "sealvault: %s\n", sv_ctx_error(ctx));
	return 1;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct sv_ctx *ctx = NULL;
	struct secret pw = {0}, newpw = {0}, sec = {0}, tok = {0};
	char code[SV_CODE_LEN + 1] = "";
	uint8_t *out = NULL;
	size_t out_len = 0;
	int attempts_left = -1;
	int rc = 1;
	enum sv_result res;

	if (sodium_init() < 0) {
		fprintf(stderr, "sealvault: libsodium failed to initialise\n");
		return 1;
	}
	if (parse(argc, argv, &o) != 0)
		return 1;
	if (o.realms != NULL)
		return cli_realms(&o);
	if (setup(&o, &ctx) != 0)
		goto out;
	/* the token first: with --token - and --password-file -, its line comes first on stdin */
	if (o.token_file != NULL && read_token(o.token_file, &tok) != 0)
		goto out;
	/* NULL: no token (a vault with auth = open); a refusal still exits 5 */
	const char *token = (const char *)tok.p;
	if (strcmp(o.cmd, "verify") == 0) {
		rc = cmd_verify(&o, ctx);
	} else if (strcmp(o.cmd, "register") == 0) {
		if (cli_read_secret_file(o.secret_file, &sec) != 0 ||
		    cli_get_new_password(&o, o.password_file, &pw, code) != 0)
			goto out;
		res = sv_register_token(ctx, token, o.user, pw.p, pw.len, sec.p, sec.len,
		                        (unsigned)o.max_attempts);
		rc = report(ctx, res, -1, o.verbose);
		if (rc == 0) {
			fprintf(stderr, "sealvault: registered '%s'\n", o.user);
			if (o.generate_code)
				cli_show_code(code);
		}
	} else if (strcmp(o.cmd, "recover") == 0) {
		if (cli_get_password(o.password_file, "Password: ", &pw) != 0)
			goto out;
		res = sv_recover_token(ctx, token, o.user, pw.p, pw.len, &out, &out_len,
		                       &attempts_left);
		rc = report(ctx, res, attempts_left, o.verbose);
		if (rc == 0 && cli_write_out(o.out, out, out_len) != 0)
			rc = 1;
	} else if (strcmp(o.cmd, "delete") == 0) {
		if (cli_get_password(o.password_file, "Password: ", &pw) != 0)
			goto out;
		res = sv_delete_token(ctx, token, o.user, pw.p, pw.len, &attempts_left);
		rc = report(ctx, res, attempts_left, o.verbose);
		if (rc == 0)
			fprintf(stderr, "sealvault: deleted '%s'\n", o.user);
	} else if (strcmp(o.cmd, "change-password") == 0) {
		if (cli_get_password(o.password_file, "Current password: ", &pw) != 0 ||
		    cli_get_new_password(&o, o.new_password_file, &newpw, code) != 0)
			goto out;
		res = sv_change_password_token(ctx, token, o.user, pw.p, pw.len, newpw.p, newpw.len,
		                               (unsigned)o.max_attempts, &attempts_left);
		rc = report(ctx, res, attempts_left, o.verbose);
		if (rc == 0) {
			fprintf(stderr, "sealvault: changed the password of '%s'\n", o.user);
			if (o.generate_code)
				cli_show_code(code);
		}
	} else {
		fprintf(stderr, "sealvault: unknown command '%s'\n", o.cmd);
		usage(stderr);
	}
out:
	sodium_memzero(code, sizeof(code));
	sv_secret_free(out, out_len);
	cli_secret_free(&pw);
	cli_secret_free(&newpw);
	cli_secret_free(&sec);
	cli_secret_free(&tok);
	sv_ctx_free(ctx);
	return rc;
}
