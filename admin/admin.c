#include "admin/admin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "common/err.h"
#include "enclave/approval.h"
#include "enclave/attest.h"
#include "enclave/evidence.h"
#include "enclave/store.h"
#include "enclave/tpm.h"

const char *admin_argv0 = ADMIN_PROG;

int admin_exit_for(int r)
{
	switch (r) {
	case SV_OK: return ADMIN_EX_OK;
	case SV_ERR_STATE: return ADMIN_EX_REFUSED;
	case SV_ERR_BUSY: return ADMIN_EX_INUSE;
	case SV_ERR_EXISTS:
	case SV_ERR_NOTFOUND: return ADMIN_EX_EXISTS;
	case SV_ERR_CONFIG: return ADMIN_EX_USAGE;
	default: return ADMIN_EX_FAIL;
	}
}

/* The long options of every command but expect, in the order of the one getopt table that served
 * them all before each command had its own. The commands that do not take --event-log or
 * --ima-log have always accepted and ignored them. */
static const struct {
	const char *name;
	int ignored; /* by the commands that do not take it */
} known[] = {
    {"state-dir", 0},      {"tpm", 0},        {"nv-index", 0},  {"user", 0},  {"pcrs", 0},
    {"policy-key-out", 0}, {"policy-key", 0}, {"boot-pcrs", 0}, {"nonce", 0}, {"event-log", 1},
    {"ima-log", 1},        {"bindir", 0},     {"policy", 0},    {"help", 0},
};
#define N_KNOWN  (sizeof(known) / sizeof(known[0]))
#define OPT_MAX  32
#define OPT_FREE 0x100 /* val of another command's option: OPT_FREE + its index in known[] */

/* The index of name in opts, or -1. */
static int find(const struct option *opts, const char *name)
{
	for (int i = 0; opts[i].name != NULL; i++)
		if (strcmp(opts[i].name, name) == 0)
			return i;
	return -1;
}

static int is_known(const char *name)
{
	for (size_t i = 0; i < N_KNOWN; i++)
		if (strcmp(known[i].name, name) == 0)
			return 1;
	return 0;
}

/* opts and every other known option, in known[]'s order; a command's own new names at the end. */
static const struct option *merge(const struct option *opts)
{
	static struct option all[OPT_MAX + 1];
	size_t n = 0;
	for (size_t i = 0; i < N_KNOWN && n < OPT_MAX; i++) {
		int j = find(opts, known[i].name);
		all[n++] = j >= 0 ? opts[j]
		                  : (struct option){known[i].name, required_argument, NULL,
		                                    OPT_FREE + (int)i};
	}
	for (size_t j = 0; opts[j].name != NULL && n < OPT_MAX; j++)
		if (!is_known(opts[j].name))
			all[n++] = opts[j];
	all[n] = (struct option){NULL, 0, NULL, 0};
	return all;
}

int admin_getopt(int argc, char **argv, const struct option *opts, int *other)
{
	const struct option *all = merge(opts);
	char *cmd = argv[0];
	int c;
	argv[0] = (char *)admin_argv0; /* getopt only prints it */
	while ((c = getopt_long(argc, argv, "h", all, NULL)) >= OPT_FREE)
		*other |= !known[c - OPT_FREE].ignored;
	argv[0] = cmd;
	return c;
}

int admin_bad_args(const char *cmd, void (*usage)(FILE *))
{
	fprintf(stderr, "%s %s: missing or unexpected arguments\n", ADMIN_PROG, cmd);
	usage(stderr);
	return ADMIN_EX_USAGE;
}

int admin_parse_boot_pcrs(const char *arg, uint32_t *mask)
{
	if (attest_pcrs_parse(arg, mask) != SV_OK || *mask == 0) {
		fprintf(stderr,
		        "%s: --boot-pcrs %s: expected PCR numbers 0..23 as a list and ranges, e.g. "
		        "0-7 or 0,2,4,7\n",
		        ADMIN_PROG, arg);
		return -1;
	}
	return 0;
}

int admin_parse_nv_index(const char *arg, uint32_t *index)
{
	char *end = NULL;
	errno = 0;
	unsigned long v = strtoul(arg, &end, 16);
	if (errno != 0 || *end != '\0' || v < 0x01000000ul || v > 0x013ffffful) {
		fprintf(stderr,
		        "%s: --nv-index %s: expected a hex index in the owner range "
		        "0x01000000..0x013fffff\n",
		        ADMIN_PROG, arg);
		return -1;
	}
	*index = (uint32_t)v;
	return 0;
}

int admin_start(const char *dir, const char *tcti, int probe_lock, struct tpm **tpm)
{
	char why[512] = "";
	int r;
	if (sodium_init() < 0) {
		fprintf(stderr, "%s: libsodium failed to initialise\n", ADMIN_PROG);
		return ADMIN_EX_FAIL;
	}
	if (probe_lock && (r = store_check_unlocked(dir, why, sizeof(why))) != SV_OK) {
		fprintf(stderr, "%s: %s\n", ADMIN_PROG, why);
		return admin_exit_for(r);
	}
	if (tpm_open(tpm, tcti, why, sizeof(why)) != SV_OK) {
		fprintf(stderr, "%s: %s\n", ADMIN_PROG, why);
		return ADMIN_EX_FAIL;
	}
	return ADMIN_EX_OK;
}

int admin_finish(int r, const char *why)
{
	if (r != SV_OK)
		fprintf(stderr, "%s: %s\n", ADMIN_PROG, why[0] ? why : sv_strerror(r));
	return admin_exit_for(r);
}

int admin_policy_key(struct tpm *tpm, const char *dir, const char *path, struct attest_state *st,
                     struct attest_policy *pol, EVP_PKEY **k, char *why, size_t why_len)
{
	int r;
	*k = NULL;
	if ((r = evidence_load(dir, st, pol, why, why_len)) != SV_OK ||
	    (r = attest_check_ek(tpm, st, NULL, why, why_len)) != SV_OK)
		return r;
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

int admin_vault_approval(struct tpm *tpm, uint32_t pcr_mask, EVP_PKEY *k,
                         const struct attest_state *st, struct approval_vault *v, char *why,
                         size_t why_len)
{
	v->key = st->policy_key;
	return attest_approve(tpm, pcr_mask, (const uint8_t *)ATTEST_REF_VAULT_KEY,
	                      ATTEST_REF_VAULT_KEY_LEN, k, st, &v->pol, why, why_len);
}
