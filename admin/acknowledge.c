/*
 * `sealvault-admin acknowledge-unclean-boots`: the operator has seen the power cuts of a hybrid
 * vault (docs/operations.md "Power cuts"). Each one charged every user one guess; above
 * unclean-boots-per-year in a year the vault stops starting until this runs. It charges the
 * penalty the refused start held back, then records the acknowledgement: the boots so far no
 * longer count against the yearly budget.
 */
#include <stdio.h>

#include "admin/admin.h"
#include "common/err.h"
#include "enclave/store.h"
#include "enclave/tpm.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s acknowledge-unclean-boots --state-dir DIR --tpm TCTI\n"
	        "  For a hybrid vault that refuses to start because the TPM lost power more\n"
	        "  than unclean-boots-per-year times in a year: charges the power-cut penalty\n"
	        "  that start held back (every user one guess) and records that the operator\n"
	        "  has seen the unclean boots so far. Needs the vault stopped. Find out why the\n"
	        "  machine loses power first: every power cut costs every user a guess.\n",
	        ADMIN_PROG);
}

int admin_acknowledge_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"tpm", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *tcti = NULL;
	struct tpm *tpm = NULL;
	char why[512] = "";
	int r, c, other = 0, penalty = 0;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 't': tcti = optarg; break;
		case 'h': usage(stdout); return ADMIN_EX_OK;
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	if (optind != argc || other || dir == NULL || tcti == NULL)
		return admin_bad_args("acknowledge-unclean-boots", usage);
	if ((r = admin_start(dir, tcti, 1, &tpm)) != ADMIN_EX_OK)
		return r;
	r = store_acknowledge_unclean(dir, tpm, NULL, &penalty, why, sizeof(why));
	if (r == SV_OK)
		printf("acknowledged the unclean boots of %s%s\n", dir,
		       penalty ? "; the power-cut penalty of the last one was charged (every "
		                 "user one guess)"
		               : "");
	int rc = admin_finish(r, why);
	tpm_close(tpm);
	return rc;
}
