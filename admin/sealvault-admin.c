/*
 * sealvault-admin: provision a vault (init), inspect it (status), destroy one record (delete),
 * upgrade a vault of sealvault 0.2 (upgrade), approve new PCR values (authorize-pcrs), move a
 * vault key sealed to plain PCR values to a signed policy (reseal), print attestation evidence
 * (attest), the expected values clients verify it against (expect) and the hash under which the
 * audit trail names an identifier (audit-id), manage the tenants that sign access tokens
 * (tenant) and mint one for tests (token). It can
 * destroy but never read a record or reset a guess counter.
 *
 * Each command is one row of the table below and one file, admin/COMMAND.c, with its own
 * options, --help, argument checks and exit codes (admin/admin.h lists the codes, also in
 * sealvault-admin(8)).
 */
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/expect.h"

static const struct {
	const char *name;
	int (*main)(int argc, char **argv); /* argv[0] is the command's name */
	const char *description;
} commands[] = {
    {"init", admin_init_main, "provision a new vault in a state directory on a TPM"},
    {"status", admin_status_main, "show counter, journal head, users, NV writes and TPM agreement"},
    {"delete", admin_delete_main, "destroy one user's record for good (never reads or resets)"},
    {"acknowledge-unclean-boots", admin_acknowledge_main,
     "let a hybrid vault start again after more power cuts than its yearly budget"},
    {"upgrade", admin_upgrade_main,
     "upgrade a sealvault 0.2 vault in place, so forked copies are refused"},
    {"authorize-pcrs", admin_authorize_pcrs_main,
     "approve the current PCR values for the identity key and the vault key"},
    {"reseal", admin_reseal_main,
     "move a vault key sealed to plain PCR values to a policy authorize-pcrs renews"},
    {"attest", admin_attest_main, "print attestation evidence (TPM quote over a nonce) as JSON"},
    {"expect", admin_expect_main, "print the expected values clients verify attestation against"},
    {"audit-id", admin_audit_id_main,
     "print the hash under which the audit trail names an identifier"},
    {"tenant", admin_tenant_main,
     "add, rotate, remove or list the tenants whose access tokens the vault accepts"},
    {"token", admin_token_main, "mint an access token with a tenant's private key (tests, demos)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: %s COMMAND [OPTIONS]\ncommands:\n", ADMIN_PROG);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s\n      %s\n", commands[i].name, commands[i].description);
	fprintf(f, "Run '%s COMMAND --help' for a command's options; see sealvault-admin(8).\n",
	        ADMIN_PROG);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return ADMIN_EX_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return ADMIN_EX_OK;
	}
	admin_argv0 = argv[0];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command '%s'\n", ADMIN_PROG, cmd);
	usage(stderr);
	return ADMIN_EX_USAGE;
}
