/*
 * `sealvault-admin upgrade`: upgrades a stopped vault of sealvault 0.2 (state version 1) in place
 * to a counter bound to the run that started last, so that forked copies of its state directory
 * are refused (issue 11); with --counter-scheme hybrid, migrates a stopped plain-counter vault to
 * the hybrid counter (issue 12). The work, and why every step is safe to interrupt, is
 * store_upgrade's and store_migrate_hybrid's (enclave/store_upgrade.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "common/err.h"
#include "enclave/store.h"
#include "enclave/tpm.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s upgrade --state-dir DIR --tpm TCTI [--nv-index HEX]\n"
	        "       [--counter-scheme hybrid]\n"
	        "  Upgrades a vault made by sealvault 0.2 in place: moves it to a new NV counter\n"
	        "  (--nv-index, default the first free index after the old one) that each start\n"
	        "  binds to its run, so that forked copies of DIR are refused, and removes the\n"
	        "  old counter: every other copy of the 0.2 DIR becomes unusable. Needs the vault\n"
	        "  stopped. Safe to run again after an interruption: it finishes the upgrade.\n"
	        "  --counter-scheme hybrid migrates a current vault on the plain counter (one NV\n"
	        "  write per commit) to the hybrid counter: an orderly counter at --nv-index and\n"
	        "  the unclean-boots counter at --nv-index + 0x10000 (default: the first index\n"
	        "  after the old one where both are free) replace the old counter, which is\n"
	        "  removed; users, guess counts and the vault key stay. About ten NV writes.\n"
	        "  Needs the vault stopped; safe to interrupt and run again. A 0.2 vault must be\n"
	        "  upgraded without it first.\n",
	        ADMIN_PROG);
}

int admin_upgrade_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"tpm", required_argument, NULL, 't'},
	    {"nv-index", required_argument, NULL, 'n'},
	    {"counter-scheme", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *tcti = NULL;
	uint32_t nv_index = 0; /* 0: the store chooses */
	struct store_upgrade_result res;
	struct tpm *tpm = NULL;
	char why[512] = "";
	int r, c, other = 0, hybrid = 0;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 't': tcti = optarg; break;
		case 'n':
			if (admin_parse_nv_index(optarg, &nv_index) != 0)
				return ADMIN_EX_USAGE;
			break;
		case 'S':
			if (strcmp(optarg, "hybrid") != 0) {
				fprintf(stderr,
				        "%s: upgrade --counter-scheme %s: only hybrid (migrates a "
				        "plain-counter vault); a vault never goes back to plain\n",
				        ADMIN_PROG, optarg);
				return ADMIN_EX_USAGE;
			}
			hybrid = 1;
			break;
		case 'h': usage(stdout); return ADMIN_EX_OK;
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	if (optind != argc || other || dir == NULL || tcti == NULL)
		return admin_bad_args("upgrade", usage);
	if ((r = admin_start(dir, tcti, 1, &tpm)) != ADMIN_EX_OK)
		return r;
	if (hybrid) {
		r = store_migrate_hybrid(dir, tpm, nv_index, &res, why, sizeof(why));
		if (r == SV_OK && res.already_current && res.old_index == 0)
			printf("vault in %s is already hybrid (NV counter 0x%08x)\n", dir,
			       res.new_index);
		else if (r == SV_OK)
			printf("migrated vault in %s to the hybrid counter: NV counter 0x%08x "
			       "replaces 0x%08x (%llu users)\n",
			       dir, res.new_index, res.old_index, (unsigned long long)res.users);
		int rc = admin_finish(r, why);
		tpm_close(tpm);
		return rc;
	}
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
