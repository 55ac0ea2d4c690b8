/*
 * `sealvault-admin authorize-pcrs`: signs, with the policy key init wrote, a new approved policy
 * for the current values of the boot PCRs (issue 6), after a firmware or boot loader upgrade, and
 * for a vault key sealed with --pcrs one for the current values of its PCRs (issue 12).
 */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "admin/admin.h"
#include "common/attest_stmt.h"
#include "common/err.h"
#include "enclave/approval.h"
#include "enclave/attest.h"
#include "enclave/evidence.h"
#include "enclave/journal.h"
#include "enclave/store.h"
#include "enclave/tpm.h"

struct authorize_args {
	const char *dir, *tcti, *key_in;
	uint32_t boot_pcrs; /* 0: those of the current policy */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s authorize-pcrs --state-dir DIR --tpm TCTI --policy-key FILE\n"
	        "       [--boot-pcrs LIST]\n"
	        "  Signs, with the policy key written by init, a new approved policy for the\n"
	        "  current values of the boot PCRs (after a firmware or boot loader upgrade)\n"
	        "  and, for a vault key sealed with --pcrs, one for the current values of those\n"
	        "  PCRs (checked by unsealing the key with it). Needs the vault stopped.\n",
	        ADMIN_PROG);
}

/* ADMIN_EX_OK, or the exit code after a message. */
static int parse(int argc, char **argv, struct authorize_args *a)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"tpm", required_argument, NULL, 't'},
	    {"policy-key", required_argument, NULL, 'k'},
	    {"boot-pcrs", required_argument, NULL, 'b'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c, other = 0;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'd': a->dir = optarg; break;
		case 't': a->tcti = optarg; break;
		case 'k': a->key_in = optarg; break;
		case 'b':
			if (admin_parse_boot_pcrs(optarg, &a->boot_pcrs) != 0)
				return ADMIN_EX_USAGE;
			break;
		case 'h': usage(stdout); exit(ADMIN_EX_OK);
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	if (optind != argc || other || a->dir == NULL || a->tcti == NULL)
		return admin_bad_args("authorize-pcrs", usage);
	if (a->key_in == NULL) {
		fprintf(
		    stderr,
		    "%s authorize-pcrs: --policy-key FILE is required (the file init wrote with "
		    "--policy-key-out)\n",
		    ADMIN_PROG);
		return ADMIN_EX_USAGE;
	}
	return ADMIN_EX_OK;
}

/* The vault key's part: a new approval of the vault PCRs' current values, checked by unsealing
 * before it replaces vault-policy.bin. Nothing to do without --pcrs at init; a key sealed with a
 * plain PolicyPCR (before issue 12) cannot be renewed: say how to move it. */
static int authorize_vault(struct tpm *tpm, const char *dir, EVP_PKEY *k,
                           const struct attest_state *st, char *why, size_t why_len)
{
	uint32_t mask = 0, seal = 0;
	int r = store_read_seal(dir, &mask, &seal, why, why_len);
	if (r != SV_OK || mask == 0)
		return r;
	char list[80];
	if (attest_pcrs_format(mask, list, sizeof(list)) != SV_OK)
		list[0] = '\0';
	if (seal != JOURNAL_SEAL_AUTHORIZED) {
		fprintf(
		    stderr,
		    "%s: warning: the vault key is sealed with a plain PCR policy (PCRs %s, made "
		    "before signed PCR policies) that authorize-pcrs cannot renew; while those "
		    "PCRs "
		    "still hold their values of init, move it once with: %s reseal --state-dir %s "
		    "--tpm TCTI --policy-key FILE\n",
		    ADMIN_PROG, list, ADMIN_PROG, dir);
		return SV_OK;
	}
	struct approval_vault *v = malloc(sizeof(*v));
	if (v == NULL)
		return SV_ERR_NOMEM;
	if ((r = admin_vault_approval(tpm, mask, k, st, v, why, why_len)) == SV_OK &&
	    (r = store_approve(dir, tpm, v, why, why_len)) == SV_OK) {
		char hex[2 * ATTEST_HASH_LEN + 1];
		sodium_bin2hex(hex, sizeof(hex), v->pol.approved, ATTEST_HASH_LEN);
		printf("approved vault key PCRs %s (sha256) at their current values: policy %s\n",
		       list, hex);
	}
	free(v);
	return r;
}

static int authorize(struct tpm *tpm, const struct authorize_args *a, char *why, size_t why_len)
{
	struct attest_state *st = malloc(sizeof(*st));
	struct attest_policy *old = malloc(sizeof(*old)), *pol = malloc(sizeof(*pol));
	EVP_PKEY *k = NULL;
	uint32_t boot_pcrs = a->boot_pcrs;
	int r = SV_ERR_NOMEM;
	if (st == NULL || old == NULL || pol == NULL)
		goto out;
	if ((r = admin_policy_key(tpm, a->dir, a->key_in, st, old, &k, why, why_len)) != SV_OK)
		goto out;
	if (boot_pcrs == 0)
		boot_pcrs = old->boot_pcrs;
	if ((r = attest_authorize(tpm, boot_pcrs, k, st, pol, why, why_len)) != SV_OK)
		goto out;
	/* the identity key must sign with it before it replaces the old one */
	uint8_t stmt[ATTEST_STMT_LEN] = {0};
	struct attest_blob sig;
	if ((r = attest_sign_statement(tpm, st, pol, stmt, &sig)) != SV_OK) {
		snprintf(why, why_len, "the identity key does not sign under the new policy");
		goto out;
	}
	if ((r = evidence_save_policy(a->dir, pol, why, why_len)) != SV_OK)
		goto out;
	char list[80];
	if (attest_pcrs_format(pol->boot_pcrs, list, sizeof(list)) != SV_OK)
		list[0] = '\0';
	char hex[2 * ATTEST_HASH_LEN + 1];
	sodium_bin2hex(hex, sizeof(hex), pol->approved, ATTEST_HASH_LEN);
	printf("approved boot PCRs %s (sha256) at their current values: policy %s\n", list, hex);
	r = authorize_vault(tpm, a->dir, k, st, why, why_len);
out:
	EVP_PKEY_free(k);
	free(st);
	free(old);
	free(pol);
	return r;
}

int admin_authorize_pcrs_main(int argc, char **argv)
{
	struct authorize_args a = {0};
	struct tpm *tpm = NULL;
	char why[512] = "";
	int r = parse(argc, argv, &a);
	if (r != ADMIN_EX_OK || (r = admin_start(a.dir, a.tcti, 1, &tpm)) != ADMIN_EX_OK)
		return r;
	r = authorize(tpm, &a, why, sizeof(why));
	int rc = admin_finish(r, why);
	tpm_close(tpm);
	return rc;
}
