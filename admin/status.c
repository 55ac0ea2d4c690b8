/*
 * `sealvault-admin status`: verifies a stopped vault read-only and prints one "name: value" line
 * per figure (tests and operators grep them; keep the names).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sodium.h>

#include "admin/admin.h"
#include "common/err.h"
#include "common/info.h"
#include "enclave/journal.h"
#include "enclave/store.h"
#include "enclave/tpm.h"
#include "policy/vault.h"

#define NV_ENDURANCE 100000 /* conservative flash endurance (research/tpm-engineering.md §3) */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s status --state-dir DIR --tpm TCTI\n"
	        "  Verifies the state read-only (unseal, replay, compare with the TPM counter)\n"
	        "  and prints one 'name: value' line per figure. Needs the vault stopped.\n",
	        ADMIN_PROG);
}

static void print_pcrs(uint32_t mask)
{
	printf("pcr-policy: ");
	if (mask == 0)
		printf("none");
	for (int i = 0, first = 1; i < 24; i++)
		if (mask & (1u << i)) {
			printf(first ? "sha256:%d" : ",%d", i);
			first = 0;
		}
	printf("\n");
}

/* NV writes per day since init and the days left at that rate before NV_ENDURANCE writes. */
static void print_projection(const struct store_stats *s, const struct store_info *in)
{
	time_t now = time(NULL);
	double days =
	    now > (time_t)in->init_time ? (double)(now - (time_t)in->init_time) / 86400.0 : 0.0;
	if (days < 1.0 / 24) {
		printf("nv-writes-per-day: unknown (vault younger than an hour)\n");
		return;
	}
	double rate = (double)s->nv_writes / days;
	printf("nv-writes-per-day: %.1f\n", rate);
	if (s->nv_writes >= NV_ENDURANCE)
		printf("projected-nv-lifetime: exhausted\n");
	else
		printf("projected-nv-lifetime: %.0f days\n",
		       (double)(NV_ENDURANCE - s->nv_writes) / rate);
	printf("projected-tpm-life-years: %.1f (1e5 writes) / %.1f (5e5 writes)\n",
	       s->nv_writes >= 100000 ? 0.0 : (100000.0 - (double)s->nv_writes) / rate / 365.0,
	       s->nv_writes >= 500000 ? 0.0 : (500000.0 - (double)s->nv_writes) / rate / 365.0);
}

/* The hybrid scheme's figures, and what the default budget allows. */
static void print_scheme(const struct store_stats *s, const struct store_info *in)
{
	struct sv_vault_policy pol;
	policy_vault_defaults(&pol);
	if (in->orderly_mask == 0) {
		printf("counter-scheme: plain (one NV write per commit)\n");
	} else {
		printf("counter-scheme: hybrid\n");
		printf("orderly-count: %u (an NV write every %llu increments, or a forced flush)\n",
		       in->orderly_mask, (unsigned long long)in->orderly_mask + 1);
		printf("durable-counter: %llu\n", (unsigned long long)s->durable);
		printf("unclean-boots-counter: 0x%08x = %llu\n", in->unclean_index,
		       (unsigned long long)s->unclean_boots);
		printf("unclean-boots-last-year: %llu (not acknowledged: %llu)\n",
		       (unsigned long long)in->unclean_year_all,
		       (unsigned long long)in->unclean_year);
		if (in->power_cut)
			printf(
			    "power-cut: detected; the next start charges every user one guess\n");
	}
	printf("nv-writes-budget: %u per day, burst %u (defaults; nv-writes-per-day, "
	       "nv-writes-burst in sealvault.conf)\n",
	       pol.nv_writes_per_day, pol.nv_writes_burst);
	printf("budget-tpm-life-years: %.1f (1e5 writes) / %.1f (5e5 writes) at the full default "
	       "budget\n",
	       100000.0 / pol.nv_writes_per_day / 365.0, 500000.0 / pol.nv_writes_per_day / 365.0);
}

static void print_status(struct store *st)
{
	struct store_stats s;
	struct store_info in;
	store_get_stats(st, &s);
	store_get_info(st, &in);
	/* the vault id of GET /v1/info (common/info.h), to match a client's view with this vault */
	uint8_t id[INFO_VAULT_ID_LEN];
	char hex[2 * INFO_PK_LEN + 1];
	info_vault_id(id, store_secrets(st)->ake_pk);
	printf("vault-id: %s\n", sodium_bin2hex(hex, sizeof(hex), id, sizeof(id)));
	printf("server-public-key: %s\n",
	       sodium_bin2hex(hex, sizeof(hex), store_secrets(st)->ake_pk, INFO_PK_LEN));
	printf("nv-index: 0x%08x\n", in.nv_index);
	print_pcrs(in.pcr_mask);
	printf("pcr-sealing: %s\n", in.pcr_mask == 0 ? "none"
	                            : in.seal == JOURNAL_SEAL_AUTHORIZED
	                                ? "signed (values approved by the policy key)"
	                                : "plain (run sealvault-admin reseal before the "
	                                  "next update that changes these PCRs)");
	print_scheme(&s, &in);
	printf("tpm-counter: %llu\n", (unsigned long long)s.counter);
	printf("journal-head: %llu\n", (unsigned long long)s.journal_head);
	printf("snapshot: slot %c at counter %llu\n", in.active_slot,
	       (unsigned long long)in.snapshot_counter);
	printf("journal-bytes: %llu\n", (unsigned long long)in.journal_bytes);
	printf("uncommitted-tail-bytes: %llu\n", (unsigned long long)in.tail_bytes);
	printf("users: %llu\n", (unsigned long long)s.users);
	printf("destroyed: %llu\n", (unsigned long long)s.destroyed);
	printf("nv-writes: %llu\n", (unsigned long long)s.nv_writes);
	printf("nv-endurance-used: %.3f %% of %u writes\n",
	       100.0 * (double)s.nv_writes / NV_ENDURANCE, NV_ENDURANCE);
	print_projection(&s, &in);
	printf("agree: yes%s\n", in.roll_forward ? " (journal one ahead: an interrupted commit, "
	                                           "completed at the next start)"
	                                         : "");
}

int admin_status_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"tpm", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *tcti = NULL;
	struct tpm *tpm = NULL;
	struct store *st = NULL;
	char why[512] = "";
	int r, c, other = 0;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 't': tcti = optarg; break;
		case 'h': usage(stdout); return ADMIN_EX_OK;
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	if (optind != argc || other || dir == NULL || tcti == NULL)
		return admin_bad_args("status", usage);
	if ((r = admin_start(dir, tcti, 1, &tpm)) != ADMIN_EX_OK)
		return r;
	printf("state-dir: %s\n", dir);
	r = store_open_readonly(&st, dir, tpm, NULL, why, sizeof(why));
	if (r == SV_OK)
		print_status(st);
	else if (r == SV_ERR_STATE)
		printf("agree: no\n");
	int rc = admin_finish(r, why);
	store_close(st);
	tpm_close(tpm);
	return rc;
}
