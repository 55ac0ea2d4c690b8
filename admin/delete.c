/*
 * `sealvault-admin delete`: destroys one user's record for good and commits the change. It never
 * shows a record or resets a guess counter.
 */
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "common/err.h"
#include "enclave/store.h"
#include "enclave/tpm.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s delete --state-dir DIR --tpm TCTI --user ID\n"
	        "  Removes the record of ID for good and commits the change. Needs the vault\n"
	        "  stopped. The record is never shown and guess counters are never reset.\n",
	        ADMIN_PROG);
}

static int delete_user(struct store *st, const char *user, char *why, size_t why_len)
{
	int r = store_delete_user(st, (const uint8_t *)user, strlen(user));
	if (r == SV_ERR_NOTFOUND || r == SV_ERR_RANGE) {
		snprintf(why, why_len, "no user '%s' in this vault", user);
		return SV_ERR_NOTFOUND;
	}
	if (r != SV_OK)
		return r;
	if ((r = store_commit(st)) != SV_OK) {
		snprintf(why, why_len,
		         "the deletion could not be committed (%s); it is not durable, run the "
		         "command again",
		         sv_strerror(r));
		return r;
	}
	printf("deleted user '%s'\n", user);
	return SV_OK;
}

int admin_delete_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"tpm", required_argument, NULL, 't'},
	    {"user", required_argument, NULL, 'u'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *tcti = NULL, *user = NULL;
	struct tpm *tpm = NULL;
	struct store *st = NULL;
	char why[512] = "";
	int r, c, other = 0;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 't': tcti = optarg; break;
		case 'u': user = optarg; break;
		case 'h': usage(stdout); return ADMIN_EX_OK;
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	if (optind != argc || other || dir == NULL || tcti == NULL || user == NULL)
		return admin_bad_args("delete", usage);
	if ((r = admin_start(dir, tcti, 1, &tpm)) != ADMIN_EX_OK)
		return r;
	/* Lazy: the counter is taken over (one NV write) only when there is a deletion to commit.
	 */
	r = store_open_lazy(&st, dir, tpm, NULL, why, sizeof(why));
	if (r == SV_OK)
		r = delete_user(st, user, why, sizeof(why));
	int rc = admin_finish(r, why);
	store_close(st);
	tpm_close(tpm);
	return rc;
}
