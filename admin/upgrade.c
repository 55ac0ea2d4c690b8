/*
 * `sealvault-admin upgrade`: upgrades a stopped vault of sealvault 0.2 (state version 1) in place
 * to a counter bound to the run that started last, so that forked copies of its state directory
 * are refused (issue 11). The work, and why every step is safe to interrupt, is store_upgrade's
 * (enclave/store_upgrade.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "admin/admin.h"
#include "common/err.h"
#include "enclave/store.h"
#include "enclave/tpm.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s upgrade --state-dir DIR --tpm TCTI [--nv-index HEX]\n"
	        "  Upgrades a vault made by sealvault 0.2 in place: moves it to a new NV counter\n"
	        "  (--nv-index, default the first free index after the old one) that each start\n"
	        "  binds to its run, so that forked copies of DIR are refused, and removes the\n"
	        "  old counter: every other copy of the 0.2 DIR becomes unusable. Needs the vault\n"
	        "  stopped. Safe to run again after an interruption: it finishes the upgrade.\n",
	        ADMIN_PROG);
}

int admin_upgrade_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"tpm", required_argument, NULL, 't'},
	    {"nv-index", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *tcti = NULL;
	uint32_t nv_index = 0; /* 0: the store chooses */
	struct store_upgrade_result res;
	struct tpm *tpm = NULL;
	char why[512] = "";
	int r, c, other = 0;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 't': tcti = optarg; break;
		case 'n':
			if (admin_parse_nv_index(optarg, &nv_index) != 0)
				return ADMIN_EX_USAGE;
			break;
		case 'h': usage(stdout); return ADMIN_EX_OK;
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	if (optind != argc || other || dir == NULL || tcti == NULL)
		return admin_bad_args("upgrade", usage);
	if ((r = admin_start(dir, tcti, 1, &tpm)) != ADMIN_EX_OK)
		return r;
	r = store_upgrade(dir, tpm, nv_index, &res, why, sizeof(why));
	if (r == SV_OK && res.already_current)
		printf("vault in %s is already current (NV counter 0x%08x)\n", dir, res.new_index);
	else if (r == SV_OK)
		printf(
		    "upgraded vault in %s: NV counter 0x%08x replaces 0x%08x (%llu users, counter "
		    "%llu)\n",
		    dir, res.new_index, res.old_index, (unsigned long long)res.users,
		    (unsigned long long)res.counter);
	int rc = admin_finish(r, why);
	tpm_close(tpm);
	return rc;
}
