/*
 * `sealvault-admin status`: asks the running vault through sealvaultd's admin socket, or verifies
 * a stopped vault read-only (admin/online.h says which), and prints one "name: value" line per
 * figure (tests and operators grep them; keep the names). Both ways fill one struct
 * adminmsg_status (enclave/adminsrv.c) and print it with print_status below, so that the two
 * outputs cannot drift apart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sodium.h>

#include "admin/admin.h"
#include "admin/online.h"
#include "common/adminmsg.h"
#include "common/err.h"
#include "common/msg.h"
#include "enclave/adminsrv.h"
#include "common/info.h"
#include "enclave/journal.h"
#include "enclave/store.h"
#include "enclave/tpm.h"
#include "policy/vault.h"

#define NV_ENDURANCE 100000 /* conservative flash endurance (research/tpm-engineering.md §3) */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s status [--config FILE] [--admin-socket PATH]\n"
	        "       %s status --state-dir DIR --tpm TCTI\n"
	        "  Prints one 'name: value' line per figure. The first form asks the running\n"
	        "  vault through sealvaultd's admin socket (root or group sealvault-admin) and,\n"
	        "  when the vault is stopped, verifies the state of sealvault.conf's state-dir\n"
	        "  offline; the second always works offline and needs the vault stopped.\n"
	        "  Offline: read-only (unseal, replay, compare with the TPM counter).\n",
	        ADMIN_PROG, ADMIN_PROG);
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
static void print_projection(const struct adminmsg_status *s)
{
	time_t now = time(NULL);
	double days =
	    now > (time_t)s->init_time ? (double)(now - (time_t)s->init_time) / 86400.0 : 0.0;
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
static void print_scheme(const struct adminmsg_status *s)
{
	struct sv_vault_policy pol;
	policy_vault_defaults(&pol);
	if (s->orderly_mask == 0) {
		printf("counter-scheme: plain (one NV write per commit)\n");
	} else {
		printf("counter-scheme: hybrid\n");
		printf("orderly-count: %u (an NV write every %llu increments, or a forced flush)\n",
		       s->orderly_mask, (unsigned long long)s->orderly_mask + 1);
		printf("durable-counter: %llu\n", (unsigned long long)s->durable);
		printf("unclean-boots-counter: 0x%08x = %llu\n", s->unclean_index,
		       (unsigned long long)s->unclean_boots);
		printf("unclean-boots-last-year: %llu (not acknowledged: %llu)\n",
		       (unsigned long long)s->unclean_year_all,
		       (unsigned long long)s->unclean_year);
		if (s->power_cut)
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

static void print_status(const struct adminmsg_status *s)
{
	/* the vault id of GET /v1/info (common/info.h), to match a client's view with this vault */
	uint8_t id[INFO_VAULT_ID_LEN];
	char hex[2 * INFO_PK_LEN + 1];
	_Static_assert(ADMINMSG_PK_LEN == INFO_PK_LEN, "the server key of the status");
	info_vault_id(id, s->server_pk);
	printf("vault-id: %s\n", sodium_bin2hex(hex, sizeof(hex), id, sizeof(id)));
	printf("server-public-key: %s\n",
	       sodium_bin2hex(hex, sizeof(hex), s->server_pk, INFO_PK_LEN));
	printf("nv-index: 0x%08x\n", s->nv_index);
	print_pcrs(s->pcr_mask);
	printf("pcr-sealing: %s\n", s->pcr_mask == 0 ? "none"
	                            : s->seal == JOURNAL_SEAL_AUTHORIZED
	                                ? "signed (values approved by the policy key)"
	                                : "plain (run sealvault-admin reseal before the "
	                                  "next update that changes these PCRs)");
	print_scheme(s);
	printf("tpm-counter: %llu\n", (unsigned long long)s->counter);
	printf("journal-head: %llu\n", (unsigned long long)s->journal_head);
	printf("snapshot: slot %c at counter %llu\n", s->active_slot,
	       (unsigned long long)s->snapshot_counter);
	printf("journal-bytes: %llu\n", (unsigned long long)s->journal_bytes);
	printf("uncommitted-tail-bytes: %llu\n", (unsigned long long)s->tail_bytes);
	printf("users: %llu\n", (unsigned long long)s->users);
	printf("destroyed: %llu\n", (unsigned long long)s->destroyed);
	printf("nv-writes: %llu\n", (unsigned long long)s->nv_writes);
	printf("nv-endurance-used: %.3f %% of %u writes\n",
	       100.0 * (double)s->nv_writes / NV_ENDURANCE, NV_ENDURANCE);
	print_projection(s);
	printf("agree: yes%s\n", s->roll_forward ? " (journal one ahead: an interrupted commit, "
	                                           "completed at the next start)"
	                                         : "");
}

/* The running vault's answer: its figures, printed as offline. */
static int online(enum adminmsg_code code, const uint8_t *body, size_t len)
{
	static struct adminmsg_status s;
	if (code != ADMINMSG_OK)
		return admin_online_refused(code, body, len);
	if (adminmsg_status_decode(body, len, &s) != 0) {
		fprintf(stderr,
		        "%s: the vault's status does not decode (a sealvaultd of another "
		        "version?)\n",
		        ADMIN_PROG);
		return ADMIN_EX_FAIL;
	}
	printf("state-dir: %s\n", s.state_dir);
	print_status(&s);
	return ADMIN_EX_OK;
}

int admin_status_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"tpm", required_argument, NULL, 't'},
	    {"config", required_argument, NULL, 'c'},
	    {"admin-socket", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static struct adminmsg_status s;
	struct admin_target t = {0};
	struct tpm *tpm = NULL;
	struct store *st = NULL;
	char why[512] = "";
	int r, c, other = 0;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'd': t.dir = optarg; break;
		case 't': t.tcti = optarg; break;
		case 'c': t.config = optarg; break;
		case 'a': t.sock = optarg; break;
		case 'h': usage(stdout); return ADMIN_EX_OK;
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	if (optind != argc || other)
		return admin_bad_args("status", usage);
	enum adminmsg_code code;
	const uint8_t *body;
	size_t len;
	r = admin_online(&t, SV_MSG_ADMIN_STATUS, NULL, 0, &code, &body, &len);
	if (r == ADMIN_ONLINE_ANSWERED)
		r = online(code, body, len);
	if (r != ADMIN_ONLINE_OFFLINE || (r = admin_start(t.dir, t.tcti, 1, &tpm)) != ADMIN_EX_OK) {
		admin_target_free(&t);
		return r;
	}
	printf("state-dir: %s\n", t.dir);
	r = store_open_readonly(&st, t.dir, tpm, NULL, why, sizeof(why));
	if (r == SV_OK) {
		adminsrv_status(st, t.dir, &s);
		print_status(&s);
	} else if (r == SV_ERR_STATE) {
		printf("agree: no\n");
	}
	int rc = admin_finish(r, why);
	store_close(st);
	tpm_close(tpm);
	admin_target_free(&t);
	return rc;
}
