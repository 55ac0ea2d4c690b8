/*
 * `sealvault-admin reseal`: moves a vault key that init sealed with --pcrs before issue 12 (a
 * plain PolicyPCR at init's values, stranded by the next update that changes those PCRs) to the
 * signed policy of current vaults (PolicyAuthorize by the policy key, renewed by
 * authorize-pcrs). It must run while the PCRs still hold their values of init. The work, and why
 * it is safe to interrupt, is store_reseal's (enclave/store_upgrade.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "admin/admin.h"
#include "common/attest_stmt.h"
#include "common/err.h"
#include "enclave/approval.h"
#include "enclave/attest.h"
#include "enclave/store.h"
#include "enclave/tpm.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s reseal --state-dir DIR --tpm TCTI --policy-key FILE\n"
	        "  Moves a vault key sealed with --pcrs by an older sealvault (a plain PCR\n"
	        "  policy: the next update that changes those PCRs strands it) to a policy\n"
	        "  approved by the policy key K, so that authorize-pcrs can approve new PCR\n"
	        "  values after an update. Run it before the update, while the PCRs still hold\n"
	        "  their values of init. Keeps the vault key and every user. Needs the vault\n"
	        "  stopped. Safe to run again after an interruption.\n",
	        ADMIN_PROG);
}

static int reseal(struct tpm *tpm, const char *dir, const char *key_in, char *why, size_t why_len)
{
	struct attest_state *st = malloc(sizeof(*st));
	struct attest_policy *pol = malloc(sizeof(*pol));
	struct approval_vault *v = malloc(sizeof(*v));
	EVP_PKEY *k = NULL;
	uint32_t mask = 0, seal = 0;
	int r = SV_ERR_NOMEM, already = 0;
	if (st == NULL || pol == NULL || v == NULL)
		goto out;
	if ((r = store_read_seal(dir, &mask, &seal, why, why_len)) != SV_OK)
		goto out;
	if (mask == 0) {
		snprintf(
		    why, why_len,
		    "the vault key in %s is not sealed to PCRs (init without --pcrs): there is "
		    "nothing to reseal",
		    dir);
		r = SV_ERR_CONFIG;
		goto out;
	}
	if ((r = admin_policy_key(tpm, dir, key_in, st, pol, &k, why, why_len)) != SV_OK ||
	    (r = admin_vault_approval(tpm, mask, k, st, v, why, why_len)) != SV_OK ||
	    (r = store_reseal(dir, tpm, v, &already, why, why_len)) != SV_OK)
		goto out;
	char list[80];
	if (attest_pcrs_format(mask, list, sizeof(list)) != SV_OK)
		list[0] = '\0';
	if (already)
		printf(
		    "the vault key in %s is already sealed to PCRs %s approved by the policy key\n",
		    dir, list);
	else
		printf(
		    "resealed the vault key in %s to PCRs %s (sha256) approved by the policy key; "
		    "after an update that changes them, run authorize-pcrs\n",
		    dir, list);
out:
	EVP_PKEY_free(k);
	free(st);
	free(pol);
	free(v);
	return r;
}

int admin_reseal_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"tpm", required_argument, NULL, 't'},
	    {"policy-key", required_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *tcti = NULL, *key_in = NULL;
	struct tpm *tpm = NULL;
	char why[512] = "";
	int r, c, other = 0;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 't': tcti = optarg; break;
		case 'k': key_in = optarg; break;
		case 'h': usage(stdout); return ADMIN_EX_OK;
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	if (optind != argc || other || dir == NULL || tcti == NULL || key_in == NULL)
		return admin_bad_args("reseal", usage);
	if ((r = admin_start(dir, tcti, 1, &tpm)) != ADMIN_EX_OK)
		return r;
	r = reseal(tpm, dir, key_in, why, sizeof(why));
	int rc = admin_finish(r, why);
	tpm_close(tpm);
	return rc;
}
