/*
 * `sealvault-admin authorize-pcrs`: signs, with the policy key init wrote, a new approved policy
 * for the current values of the boot PCRs (issue 6), after a firmware or boot loader upgrade.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "admin/admin.h"
#include "common/attest_stmt.h"
#include "common/err.h"
#include "enclave/attest.h"
#include "enclave/evidence.h"
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
	        "  current values of the boot PCRs (after a firmware or boot loader upgrade).\n"
	        "  Needs the vault stopped.\n",
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

static int read_policy_key(const char *path, EVP_PKEY **k, char *why, size_t why_len)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		snprintf(why, why_len, "cannot open the policy key file %s: %s", path,
		         strerror(errno));
		return SV_ERR_IO;
	}
	*k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (*k == NULL) {
		snprintf(why, why_len, "%s does not hold a PEM private key", path);
		return SV_ERR_CONFIG;
	}
	return SV_OK;
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
	if ((r = evidence_load(a->dir, st, old, why, why_len)) != SV_OK ||
	    (r = attest_check_ek(tpm, st, NULL, why, why_len)) != SV_OK ||
	    (r = read_policy_key(a->key_in, &k, why, why_len)) != SV_OK)
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
