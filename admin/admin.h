/*
 * What the commands of sealvault-admin share: exit codes, the mapping of SV_ERR_* to them, the
 * start of a command that uses the TPM (libsodium, the state-dir lock probe, the TPM), usage
 * errors and --nv-index parsing. admin/sealvault-admin.c holds the table of commands; each
 * command is one file (admin/init.c, admin/status.c, ...) whose admin_CMD_main() takes the
 * arguments after the program name (argv[0] is the command's name) and returns the exit code.
 */
#ifndef SV_ADMIN_ADMIN_H
#define SV_ADMIN_ADMIN_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

struct tpm;

#define ADMIN_PROG "sealvault-admin"

/* Exit codes, also in sealvault-admin(8). */
enum {
	ADMIN_EX_OK = 0,
	ADMIN_EX_FAIL = 1,    /* TPM, I/O */
	ADMIN_EX_USAGE = 2,   /* usage error */
	ADMIN_EX_REFUSED = 3, /* state and TPM disagree */
	ADMIN_EX_INUSE = 4,   /* the vault is in use (state-dir lock held) */
	ADMIN_EX_EXISTS = 5,  /* init/upgrade: a vault or NV index exists; delete: no such user */
};

/* The program as invoked (argv[0] of main), which getopt names in its own messages. */
extern const char *admin_argv0;

/* SV_OK or SV_ERR_* -> exit code. */
int admin_exit_for(int r);

/* getopt_long(argc, argv, "h", opts, NULL) for a command's arguments (argv[0] is its name) that
 * behaves as the one getopt table that served every command before each had its own: another
 * command's option (--user for status) sets *other, for the caller to refuse as "missing or
 * unexpected arguments" (--event-log and --ima-log are ignored, as they always were), and
 * abbreviations resolve against every command's names, so `init --policy X` is refused rather
 * than taken for --policy-key-out. getopt's own messages ("unrecognized option") name
 * admin_argv0. The names are admin.c's known[]; a command's new options need not join them. */
int admin_getopt(int argc, char **argv, const struct option *opts, int *other);

/* "sealvault-admin CMD: missing or unexpected arguments" and the command's usage on stderr;
 * returns ADMIN_EX_USAGE. */
int admin_bad_args(const char *cmd, void (*usage)(FILE *));

/* --nv-index HEX, an index in the owner range 0x01000000..0x013fffff: 0, or a message on stderr
 * and -1. */
int admin_parse_nv_index(const char *arg, uint32_t *index);

/* --boot-pcrs LIST, PCR numbers 0..23 as a list and ranges (at least one): 0, or a message on
 * stderr and -1. */
int admin_parse_boot_pcrs(const char *arg, uint32_t *mask);

/* Initialises libsodium, then, with probe_lock, checks that no process holds dir's lock (the
 * vault is stopped), then opens the TPM at tcti. ADMIN_EX_OK with *tpm set, or a message on
 * stderr and the exit code. */
int admin_start(const char *dir, const char *tcti, int probe_lock, struct tpm **tpm);

/* The end of a command: with r != SV_OK, "sealvault-admin: WHY" (or r's text when why is empty)
 * on stderr. Returns admin_exit_for(r). */
int admin_finish(int r, const char *why);

/* For the commands that sign with the policy key K: the attestation state of dir (attest.bin and
 * attest-policy.bin) checked against the TPM's endorsement key, and K read from path (PEM; *k to
 * EVP_PKEY_free, also on failure). */
struct attest_state;
struct attest_policy;
struct approval_vault;
struct evp_pkey_st;
int admin_policy_key(struct tpm *tpm, const char *dir, const char *path, struct attest_state *st,
                     struct attest_policy *pol, struct evp_pkey_st **k, char *why, size_t why_len);
/* K's approval of the current values of the PCRs in pcr_mask for the sealed vault key. */
int admin_vault_approval(struct tpm *tpm, uint32_t pcr_mask, struct evp_pkey_st *k,
                         const struct attest_state *st, struct approval_vault *v, char *why,
                         size_t why_len);

int admin_init_main(int argc, char **argv);
int admin_status_main(int argc, char **argv);
int admin_delete_main(int argc, char **argv);
int admin_acknowledge_main(int argc, char **argv);
int admin_authorize_pcrs_main(int argc, char **argv);
int admin_attest_main(int argc, char **argv);
int admin_upgrade_main(int argc, char **argv);
int admin_reseal_main(int argc, char **argv);
int admin_audit_id_main(int argc, char **argv);
int admin_tenant_main(int argc, char **argv);
int admin_token_main(int argc, char **argv);

#endif
