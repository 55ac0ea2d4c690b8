/*
 * sealvault-admin: provision a vault (init), inspect it (status), and destroy one record
 * (delete). It can destroy but never read a record or reset a guess counter.
 *
 * Exit codes (also in sealvault-admin(8)): 0 success; 1 failure (TPM, I/O); 2 usage error;
 * 3 state and TPM disagree (refused); 4 the vault is in use (state-dir lock held); 5 init: a
 * vault or NV index already exists / delete: no such user.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/err.h"
#include "enclave/journal.h"
#include "enclave/store.h"
#include "enclave/tpm.h"
#include "policy/vault.h"

enum { EX_OK = 0, EX_FAIL = 1, EX_USAGE = 2, EX_REFUSED = 3, EX_INUSE = 4, EX_EXISTS = 5 };

#define NV_ENDURANCE 100000 /* conservative flash endurance (research/tpm-engineering.md §3) */

static const char *prog = "sealvault-admin";

static void usage_main(FILE *f)
{
	fprintf(f,
		"usage: %s COMMAND [OPTIONS]\n"
		"commands:\n"
		"  init    provision a new vault in a state directory on a TPM\n"
		"  status  show counter, journal head, users, NV writes and TPM agreement\n"
		"  delete  destroy one user's record for good (never reads or resets)\n"
		"Run '%s COMMAND --help' for a command's options; see sealvault-admin(8).\n",
		prog, prog);
}

static void usage_cmd(FILE *f, const char *cmd)
{
	if (strcmp(cmd, "init") == 0)
		fprintf(f,
			"usage: %s init --state-dir DIR --tpm TCTI [--nv-index HEX] [--pcrs LIST]\n"
			"  Defines a plain NV counter (default index 0x%08x), seals a new vault "
			"key\n"
			"  under a noDA primary key, generates the OPRF seed and AKE key pair "
			"(stored\n"
			"  only encrypted) and writes an empty snapshot and journal to DIR.\n"
			"  Refuses to overwrite an existing vault. TCTI: device:/dev/tpmrm0 or\n"
			"  swtpm:host=H,port=P. --pcrs 0,2,7 seals the vault key to the current\n"
			"  values of those SHA-256 PCRs (it then unseals only in that boot "
			"state).\n",
			prog, TPM_NV_INDEX_DEFAULT);
	else if (strcmp(cmd, "status") == 0)
		fprintf(f,
			"usage: %s status --state-dir DIR --tpm TCTI\n"
			"  Verifies the state read-only (unseal, replay, compare with the TPM "
			"counter)\n"
			"  and prints one 'name: value' line per figure. Needs the vault "
			"stopped.\n",
			prog);
	else
		fprintf(f,
			"usage: %s delete --state-dir DIR --tpm TCTI --user ID\n"
			"  Removes the record of ID for good and commits the change. Needs the "
			"vault\n"
			"  stopped. The record is never shown and guess counters are never "
			"reset.\n",
			prog);
}

/* "0,2,7" -> bits; 0 on success. */
static int parse_pcrs(const char *s, uint32_t *mask)
{
	uint32_t m = 0;
	while (*s != '\0') {
		char *end = NULL;
		if (*s < '0' || *s > '9')
			return -1;
		unsigned long v = strtoul(s, &end, 10);
		if (v > 23 || (*end != ',' && *end != '\0') || (*end == ',' && end[1] == '\0'))
			return -1;
		m |= 1u << v;
		s = *end == ',' ? end + 1 : end;
	}
	if (m == 0)
		return -1;
	*mask = m;
	return 0;
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
}

static int exit_for(int r)
{
	switch (r) {
	case SV_OK: return EX_OK;
	case SV_ERR_STATE: return EX_REFUSED;
	case SV_ERR_BUSY: return EX_INUSE;
	case SV_ERR_EXISTS:
	case SV_ERR_NOTFOUND: return EX_EXISTS;
	case SV_ERR_CONFIG: return EX_USAGE;
	default: return EX_FAIL;
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"state-dir", required_argument, NULL, 'd'},
		{"tpm", required_argument, NULL, 't'},
		{"nv-index", required_argument, NULL, 'n'},
		{"user", required_argument, NULL, 'u'},
		{"pcrs", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *tcti = NULL, *user = NULL;
	uint32_t nv_index = TPM_NV_INDEX_DEFAULT, pcr_mask = 0;
	char why[512] = "";
	struct tpm *tpm = NULL;
	struct store *st = NULL;
	int r, c;
	if (argc < 2) {
		usage_main(stderr);
		return EX_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage_main(stdout);
		return EX_OK;
	}
	if (strcmp(cmd, "init") != 0 && strcmp(cmd, "status") != 0 && strcmp(cmd, "delete") != 0) {
		fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
		usage_main(stderr);
		return EX_USAGE;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 't': tcti = optarg; break;
		case 'u': user = optarg; break;
		case 'n': {
			char *end = NULL;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 16);
			if (errno != 0 || *end != '\0' || v < 0x01000000ul || v > 0x013ffffful) {
				fprintf(stderr,
					"%s: --nv-index %s: expected a hex index in the owner "
					"range "
					"0x01000000..0x013fffff\n",
					prog, optarg);
				return EX_USAGE;
			}
			nv_index = (uint32_t)v;
			break;
		}
		case 'p':
			if (parse_pcrs(optarg, &pcr_mask) != 0) {
				fprintf(stderr,
					"%s: --pcrs %s: expected a comma-separated list of PCR "
					"numbers 0..23, e.g. 7 or 0,2,4,7\n",
					prog, optarg);
				return EX_USAGE;
			}
			break;
		case 'h': usage_cmd(stdout, cmd); return EX_OK;
		default: usage_cmd(stderr, cmd); return EX_USAGE;
		}
	}
	if (optind != argc || dir == NULL || tcti == NULL ||
	    (strcmp(cmd, "delete") == 0) != (user != NULL) ||
	    (strcmp(cmd, "init") != 0 && (nv_index != TPM_NV_INDEX_DEFAULT || pcr_mask != 0))) {
		fprintf(stderr, "%s %s: missing or unexpected arguments\n", prog, cmd);
		usage_cmd(stderr, cmd);
		return EX_USAGE;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "%s: libsodium failed to initialise\n", prog);
		return EX_FAIL;
	}
	if (strcmp(cmd, "init") != 0 &&
	    (r = store_check_unlocked(dir, why, sizeof(why))) != SV_OK) {
		fprintf(stderr, "%s: %s\n", prog, why);
		return exit_for(r);
	}
	r = tpm_open(&tpm, tcti, why, sizeof(why));
	if (r != SV_OK) {
		fprintf(stderr, "%s: %s\n", prog, why);
		return EX_FAIL;
	}
	if (strcmp(cmd, "init") == 0) {
		r = store_init(dir, tpm, nv_index, pcr_mask, why, sizeof(why));
		if (r == SV_OK)
			printf("initialised vault in %s (NV counter 0x%08x, counter scheme "
			       "plain)\n",
			       dir, nv_index);
	} else if (strcmp(cmd, "status") == 0) {
		printf("state-dir: %s\n", dir);
		r = store_open_readonly(&st, dir, tpm, NULL, why, sizeof(why));
		if (r == SV_OK) {
			struct store_stats s;
			struct store_info in;
			store_get_stats(st, &s);
			store_get_info(st, &in);
			printf("nv-index: 0x%08x\n", in.nv_index);
			print_pcrs(in.pcr_mask);
			printf("counter-scheme: %s\n",
			       in.counter_scheme == JOURNAL_SCHEME_PLAIN ? "plain" : "unknown");
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
			printf("agree: yes%s\n",
			       in.roll_forward ? " (journal one ahead: an interrupted commit, "
						 "completed at the next start)"
					       : "");
		} else if (r == SV_ERR_STATE) {
			printf("agree: no\n");
		}
	} else {
		r = store_open(&st, dir, tpm, NULL, why, sizeof(why));
		if (r == SV_OK) {
			r = store_delete_user(st, (const uint8_t *)user, strlen(user));
			if (r == SV_ERR_NOTFOUND || r == SV_ERR_RANGE) {
				snprintf(why, sizeof(why), "no user '%s' in this vault", user);
				r = SV_ERR_NOTFOUND;
			} else if (r == SV_OK && (r = store_commit(st)) != SV_OK) {
				snprintf(why, sizeof(why),
					 "the deletion could not be committed (%s); it is not "
					 "durable, run the command again",
					 sv_strerror(r));
			} else if (r == SV_OK) {
				printf("deleted user '%s'\n", user);
			}
		}
	}
	if (r != SV_OK)
		fprintf(stderr, "%s: %s\n", prog, why[0] ? why : sv_strerror(r));
	store_close(st);
	tpm_close(tpm);
	return exit_for(r);
}
