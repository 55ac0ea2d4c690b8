/*
 * hybrid-driver: the vault's store under load for check-state-hybrid (issue 12): guesses,
 * registrations and deletions on a hybrid vault, each printed once it is acknowledged, and a
 * verifier that holds a state directory against everything ever acknowledged.
 *
 *   hybrid-driver setup  --state-dir D --tpm T --users N
 *       Registers users u0..u(N-1) (guess limit 255) in one commit; prints "ack put u<i>".
 *   hybrid-driver load   --state-dir D --tpm T --users N --seed S
 *       Opens the vault as the enclave does (a power cut is charged at once), then commits
 *       forever: mostly one charged guess on a random user (the store forces a flush for a
 *       user whose previous guess is not yet on NV), sometimes a registration or deletion of
 *       an extra user x<k>, or the re-registration of a destroyed user. After each commit
 *       returns it prints, and flushes, one line per op: "ack charge u<i>", "ack put <id>",
 *       "ack del <id>"; before, "try put|del <id>" (a registration or deletion cut off by the
 *       kill may or may not have happened). Killed by the test (kill -9, with or without the
 *       TPM).
 *   hybrid-driver verify --state-dir D --tpm T --acks FILE
 *       Opens the directory read-only, as the start-up check would judge it, and checks the
 *       invariants against the acknowledgements in FILE (all runs, in order):
 *         every user: guesses charged in the state, plus the penalty the start would charge,
 *         >= the charges acknowledged since its last acknowledged registration (or it is
 *         destroyed), and those charges never exceed its guess limit;
 *         every acknowledged registration or deletion is there.
 * Exit: 0 ok ("accepted ..." on stdout), 3 the start-up check refuses the directory (reason on
 * stderr), 4 an invariant does not hold (on stderr), 1 other errors.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "common/err.h"
#include "enclave/store.h"
#include "enclave/tpm.h"
#include "policy/vault.h"

#define LIMIT    255
#define EXTRA    16 /* extra users x0..x15, registered and deleted */
#define MAX_IDS  (1024 + EXTRA)
#define ID_BYTES 24

struct model {
	char id[ID_BYTES];
	int exists;     /* an acknowledged registration not followed by an acknowledged deletion */
	unsigned acked; /* charges acknowledged since the last acknowledged registration */
	int ever_put;   /* the identifier was ever acknowledged as registered */
	int tried_put;  /* a registration was tried after the last acknowledgement (the run was
	                   killed before it printed one: it may or may not have happened) */
	int tried_del;
};

static struct model users[MAX_IDS];
static size_t nusers;

static struct model *find(const char *id)
{
	for (size_t i = 0; i < nusers; i++)
		if (strcmp(users[i].id, id) == 0)
			return &users[i];
	if (nusers == MAX_IDS)
		return NULL;
	snprintf(users[nusers].id, ID_BYTES, "%.*s", ID_BYTES - 1, id);
	return &users[nusers++];
}

static void record(uint8_t rec[STORE_RECORD_LEN], const char *id)
{
	crypto_generichash(rec, STORE_RECORD_LEN, (const uint8_t *)id, strlen(id), NULL, 0);
}

static int open_store(struct store **s, struct tpm **t, const char *dir, const char *tcti,
                      int readonly)
{
	char why[512];
	struct sv_vault_policy pol;
	policy_vault_defaults(&pol);
	pol.unclean_boots_per_year = 1000; /* the test cuts the power hundreds of times */
	int r = tpm_open(t, tcti, why, sizeof(why));
	if (r == SV_OK)
		r = readonly ? store_open_readonly(s, dir, *t, &pol, why, sizeof(why))
		             : store_open(s, dir, *t, &pol, why, sizeof(why));
	if (r != SV_OK) {
		fprintf(stderr, "hybrid-driver: %s\n", why);
		return r == SV_ERR_STATE ? 3 : 1;
	}
	return 0;
}

static int put(struct store *s, const char *id)
{
	uint8_t rec[STORE_RECORD_LEN], blob[8] = {0};
	record(rec, id);
	return store_put_user(s, (const uint8_t *)id, strlen(id), rec, blob, sizeof(blob), LIMIT);
}

static int cmd_setup(struct store *s, unsigned n)
{
	char id[ID_BYTES];
	for (unsigned i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "u%u", i);
		if (put(s, id) != SV_OK)
			return 1;
	}
	if (store_commit(s) != SV_OK)
		return 1;
	for (unsigned i = 0; i < n; i++)
		printf("ack put u%u\n", i);
	return 0;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static int cmd_load(struct store *s, unsigned n, uint64_t seed)
{
	char id[ID_BYTES], line[64];
	uint64_t x = seed | 1;
	struct store_user_view v;
	for (;;) {
		unsigned k = (unsigned)(rnd(&x) % 100);
		int r;
		if (k < 2) { /* an extra user comes or goes: both are forced flushes */
			snprintf(id, sizeof(id), "x%u", (unsigned)(rnd(&x) % EXTRA));
			if (store_lookup(s, (const uint8_t *)id, strlen(id), &v) == SV_OK) {
				r = store_delete_user(s, (const uint8_t *)id, strlen(id));
				snprintf(line, sizeof(line), "ack del %s", id);
			} else {
				r = put(s, id);
				snprintf(line, sizeof(line), "ack put %s", id);
			}
		} else {
			unsigned left = 0;
			snprintf(id, sizeof(id), "u%u", (unsigned)(rnd(&x) % n));
			r = store_charge_guess(s, (const uint8_t *)id, strlen(id), &left);
			snprintf(line, sizeof(line), "ack charge %s", id);
			if (r == SV_ERR_LOCKED) { /* destroyed: a new registration of it */
				r = put(s, id);
				snprintf(line, sizeof(line), "ack put %s", id);
			}
		}
		if (r != SV_OK) {
			fprintf(stderr, "hybrid-driver: staging for %s: %s\n", id, sv_strerror(r));
			return 1;
		}
		if (strncmp(line, "ack charge", 10) != 0) {
			printf("try%s\n", line + 3);
			fflush(stdout);
		}
		if ((r = store_commit(s)) != SV_OK) {
			fprintf(stderr, "hybrid-driver: commit: %s\n", sv_strerror(r));
			return 1;
		}
		puts(line);
		fflush(stdout);
	}
}

static int cmd_verify(struct store *s, const char *acks)
{
	char a[16], b[16], id[ID_BYTES + 8];
	FILE *f = fopen(acks, "r");
	if (f == NULL) {
		perror(acks);
		return 1;
	}
	char line[128];
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%15s %15s %23s", a, b, id) != 3 ||
		    (strcmp(a, "ack") != 0 && strcmp(a, "try") != 0))
			continue; /* a line cut by the kill */
		struct model *m = find(id);
		if (m == NULL) {
			fclose(f);
			return 1;
		}
		if (strcmp(a, "try") == 0) {
			m->tried_put = strcmp(b, "put") == 0;
			m->tried_del = strcmp(b, "del") == 0;
			continue;
		}
		m->tried_put = m->tried_del = 0;
		if (strcmp(b, "put") == 0) {
			m->exists = m->ever_put = 1;
			m->acked = 0;
		} else if (strcmp(b, "del") == 0) {
			m->exists = 0;
		} else if (strcmp(b, "charge") == 0) {
			m->acked++;
		}
	}
	fclose(f);
	struct store_stats st;
	store_get_stats(s, &st);
	unsigned penalty = st.power_cut ? 1 : 0, violations = 0;
	uint64_t charged = 0;
	for (size_t i = 0; i < nusers; i++) {
		struct model *m = &users[i];
		struct store_user_view v;
		int r = store_lookup(s, (const uint8_t *)m->id, strlen(m->id), &v);
		if (m->acked > LIMIT) {
			fprintf(stderr, "FAIL: %s was answered %u guesses, limit %u\n", m->id,
			        m->acked, LIMIT);
			violations++;
		}
		if (m->tried_put || m->tried_del)
			continue; /* cut off: either outcome is right */
		if (!m->exists) {
			if (m->ever_put && r == SV_OK && strncmp(m->id, "x", 1) == 0) {
				fprintf(stderr, "FAIL: acknowledged deletion of %s is lost\n",
				        m->id);
				violations++;
			}
			continue;
		}
		if (r != SV_OK) {
			fprintf(stderr, "FAIL: acknowledged registration of %s is lost\n", m->id);
			violations++;
			continue;
		}
		unsigned used = v.destroyed ? LIMIT : v.guesses_used + penalty;
		charged += m->acked;
		if (used < m->acked) {
			fprintf(
			    stderr,
			    "FAIL: %s: %u guesses acknowledged since its registration, the state "
			    "charges %u (penalty included): a guess was given back\n",
			    m->id, m->acked, used);
			violations++;
		}
	}
	if (violations > 0)
		return 4;
	printf("accepted counter %llu head %llu penalty %u users %zu acked-charges %llu\n",
	       (unsigned long long)st.counter, (unsigned long long)st.journal_head, penalty, nusers,
	       (unsigned long long)charged);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'}, {"tpm", required_argument, NULL, 't'},
	    {"users", required_argument, NULL, 'u'},     {"seed", required_argument, NULL, 's'},
	    {"acks", required_argument, NULL, 'a'},      {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *tcti = NULL, *acks = NULL;
	unsigned n = 64;
	uint64_t seed = 1;
	int c;
	if (argc < 2) {
		fputs("usage: hybrid-driver setup|load|verify --state-dir D --tpm T [--users N] "
		      "[--seed S] [--acks FILE]\n",
		      stderr);
		return 1;
	}
	const char *cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 't': tcti = optarg; break;
		case 'u': n = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'a': acks = optarg; break;
		default: return 1;
		}
	}
	if (dir == NULL || tcti == NULL || n == 0 || n > 1024 ||
	    (strcmp(cmd, "verify") == 0 && acks == NULL))
		return 1;
	/* as the enclave does (enclave/main.c) */
	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
	                            OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
	                        NULL) != 1 ||
	    sodium_init() < 0)
		return 1;
	struct store *s = NULL;
	struct tpm *t = NULL;
	int verify = strcmp(cmd, "verify") == 0;
	int ex = open_store(&s, &t, dir, tcti, verify);
	if (ex != 0)
		return ex;
	if (strcmp(cmd, "setup") == 0)
		ex = cmd_setup(s, n);
	else if (strcmp(cmd, "load") == 0)
		ex = cmd_load(s, n, seed);
	else if (verify)
		ex = cmd_verify(s, acks);
	else
		ex = 1;
	store_close(s);
	tpm_close(t);
	return ex;
}
