/*
 * The sealvault CLI's parts shared by its files: cli.c (options, the single-vault commands) and
 * cli_realms.c (the commands with --realms, threshold realms).
 */
#ifndef SV_CLIENT_CLI_H
#define SV_CLIENT_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "client/sealvault.h"

#define EXIT_WRONG      2
#define EXIT_LOCKED     3
#define EXIT_UNVERIFIED 4
#define EXIT_TOKEN      5 /* the vault refused the access token (401/403) */
#define EXIT_RETRY      6 /* busy or over a rate limit: nothing was charged, retry later */
#define EXIT_FULL       7 /* register: the vault is full (HTTP 507) */
#define EVIDENCE_MAX    (48L * 1024 * 1024) /* CLIENT_EVIDENCE_JSON_MAX */
#define NONCE_MIN       8
#define NONCE_MAX       64

struct opts {
	const char *cmd;
	const char *server;
	const char *cacert;
	const char *user;
	const char *password_file;
	const char *new_password_file;
	const char *secret_file;
	const char *out;
	const char *context;
	const char *expect;
	const char *tpm_ca;
	const char *evidence;
	const char *nonce;
	const char *token_file;
	const char *realms; /* --realms FILE: threshold realms (cli_realms.c) */
	long threshold;     /* --threshold T (0: the realm list's) */
	long min_realms;    /* --min-realms R (0: every realm) */
	int generate_code;
	int verbose;
	long max_attempts;
	long ksf_t;
	long ksf_m;
	long timeout;
};

/* A password or secret in sodium_malloc'd memory. */
struct secret {
	uint8_t *p;
	size_t len;
};

void cli_secret_free(struct secret *s);
/* The password to log in with: from a file or stdin ('-'), otherwise prompted for. */
int cli_get_password(const char *file, const char *text, struct secret *s);
/* A new password: from a file, generated as a recovery code (left in code), or prompted twice. */
int cli_get_new_password(const struct opts *o, const char *file, struct secret *s,
                         char code[SV_CODE_LEN + 1]);
/* The secret to store, from a file or stdin ('-'): 1..SV_SECRET_MAX_LEN bytes. */
int cli_read_secret_file(const char *path, struct secret *s);
/* Writes the recovered secret to path ('-': stdout), mode 0600, fsync'd. */
int cli_write_out(const char *path, const uint8_t *p, size_t len);
/* Shows a generated recovery code once the vault(s) took it. */
void cli_show_code(const char *code);
/* The option checks of the commands with --realms (after the common parse): 0 or -1 (said). */
int cli_realms_check(const struct opts *o);
/* `sealvault register|recover|delete --realms FILE`: the exit status. */
int cli_realms(const struct opts *o);

#endif
