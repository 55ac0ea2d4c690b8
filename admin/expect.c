#include "admin/expect.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "client/expect.h"
#include "common/attest_stmt.h"
#include "common/err.h"
#include "common/config.h"
#include "enclave/attest.h"
#include "enclave/tenant.h"
#include "enclave/tpm.h"
#include "policy/vault.h"

#ifndef SV_LIBEXECDIR
#define SV_LIBEXECDIR "/usr/libexec/sealvault"
#endif

enum { EXPECT_OK = 0, EXPECT_FAIL = 1, EXPECT_USAGE = 2 };

static const char *prog = "sealvault-admin expect";

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: sealvault-admin expect [--config FILE] [--policy KEY=VALUE]...\n"
	        "       [--tenants-dir DIR]\n"
	        "       [--bindir DIR] [--boot-pcrs LIST] [--boot-pcrs-from-tpm TCTI]\n"
	        "       [--ima-allow FILE]... [--tpm-ca FILE]... [--server-public-key HEX]\n"
	        "  Prints the expected-values file (JSON) for `sealvault verify --expect`: the\n"
	        "  SHA-256 of sealvaultd, sealvault-enclave and sealvault-broker in --bindir\n"
	        "  (default: next to this program in a build tree, else the installed paths),\n"
	        "  the hash of the vault policy of --config (sealvault.conf) and --policy\n"
	        "  (default: the built-in policy) with, when auth is tokens, the tenants of\n"
	        "  --tenants-dir (or the config's tenants-dir; default /etc/sealvault/tenants.d),\n"
	        "  the boot PCR selection (default 0-7) and,\n"
	        "  with --boot-pcrs-from-tpm, their current values on that TPM. --ima-allow\n"
	        "  lists other files allowed to run ('<sha256 hex> /path' lines), --tpm-ca adds\n"
	        "  TPM manufacturer CA certificates (PEM), --server-public-key pins one vault.\n");
}

void admin_binary_paths(const char *bindir, char paths[ATTEST_NBINARIES][4096])
{
	char self[4096], probe[4096 + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	const char *here = n > 0 ? dirname(self) : ".";
	snprintf(probe, sizeof(probe), "%s/sealvault-enclave", here);
	const char *libexec = access(probe, F_OK) == 0 ? here : SV_LIBEXECDIR;
	for (int i = 0; i < ATTEST_NBINARIES; i++) {
		const char *d = bindir != NULL ? bindir : (i == 0 ? here : libexec);
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", d, attest_binary_names[i]);
	}
}

static int hash_binaries(struct client_expect *e, const char *bindir)
{
	char paths[ATTEST_NBINARIES][4096];
	admin_binary_paths(bindir, paths);
	for (int i = 0; i < ATTEST_NBINARIES; i++) {
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr,
			        "%s: cannot open %s: %s; give the directory of the built "
			        "binaries with --bindir DIR\n",
			        prog, paths[i], strerror(errno));
			return -1;
		}
		int r = attest_file_sha256_fd(fd, e->binaries[i]);
		close(fd);
		if (r != SV_OK) {
			fprintf(stderr, "%s: reading %s: %s\n", prog, paths[i], sv_strerror(r));
			return -1;
		}
	}
	attest_build_hash_digests((const uint8_t(*)[ATTEST_HASH_LEN])e->binaries, e->build_hash);
	return 0;
}

static const char *tenants_dir; /* --tenants-dir, or the config's tenants-dir */
static char *config_tenants_dir;

int admin_policy_hash(const struct sv_vault_policy *pol, const char *dir, uint8_t out[32])
{
	struct tenant_set set = {0};
	uint8_t digest[TENANT_DIGEST_LEN] = {0};
	char why[512];
	if (pol->auth == POLICY_AUTH_TOKENS) {
		if (dir == NULL)
			dir = TENANT_DIR_DEFAULT;
		if (tenant_set_load_dir(&set, dir, why, sizeof(why)) != SV_OK) {
			fprintf(stderr, "sealvault-admin: the tenants in %s: %s\n", dir, why);
			return -1;
		}
		tenant_set_digest(&set, digest);
		tenant_set_free(&set);
	}
	policy_vault_hash_tenants(pol, digest, out);
	return 0;
}

/* sealvault.conf: the policy options and tenants-dir; the daemon's other options are not part of
 * the hash. */
static int from_config(void *arg, const char *key, const char *value, char *why, size_t why_len)
{
	if (strcmp(key, "tenants-dir") == 0) {
		free(config_tenants_dir);
		config_tenants_dir = strdup(value);
		return config_tenants_dir != NULL ? SV_OK : SV_ERR_NOMEM;
	}
	if (!policy_vault_is_option(key))
		return SV_OK;
	return policy_vault_set(arg, key, value, why, why_len);
}

static int read_config(struct sv_vault_policy *p, const char *path)
{
	char why[512];
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		fprintf(stderr, "%s: cannot read %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	int r = config_parse_stream(f, path, from_config, p, why, sizeof(why));
	fclose(f);
	if (r != SV_OK) {
		fprintf(stderr, "%s: %s\n", prog, why);
		return -1;
	}
	return 0;
}

/* The current SHA-256 values of the boot PCRs, by PCR number. */
static int read_pcrs(struct client_expect *e, const char *tcti)
{
	struct tpm *t = NULL;
	char why[512];
	uint8_t values[ATTEST_PCR_COUNT][ATTEST_HASH_LEN];
	if (tpm_open(&t, tcti, why, sizeof(why)) != SV_OK) {
		fprintf(stderr, "%s: --boot-pcrs-from-tpm: %s\n", prog, why);
		return -1;
	}
	int r = attest_pcr_read(t, e->boot_pcrs, values);
	tpm_close(t);
	if (r != SV_OK) {
		fprintf(stderr,
		        "%s: the TPM at %s did not return the SHA-256 PCR values; does it "
		        "have a SHA-256 bank?\n",
		        prog, tcti);
		return -1;
	}
	for (uint32_t i = 0, k = 0; i < ATTEST_PCR_COUNT; i++)
		if (e->boot_pcrs & (1u << i))
			memcpy(e->boot_values[i], values[k++], ATTEST_HASH_LEN);
	e->has_boot_values = 1;
	return 0;
}

static int parse(int argc, char **argv, struct client_expect *e, struct sv_vault_policy *pol,
                 const char **bindir, const char **tcti)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"policy", required_argument, NULL, 'P'},
	    {"bindir", required_argument, NULL, 'B'},
	    {"boot-pcrs", required_argument, NULL, 'b'},
	    {"boot-pcrs-from-tpm", required_argument, NULL, 'T'},
	    {"ima-allow", required_argument, NULL, 'I'},
	    {"tpm-ca", required_argument, NULL, 'C'},
	    {"server-public-key", required_argument, NULL, 'k'},
	    {"tenants-dir", required_argument, NULL, 'N'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char why[512];
	const char *config = NULL;
	char *policy[32];
	size_t n_policy = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'N': tenants_dir = optarg; break;
		case 'B': *bindir = optarg; break;
		case 'T': *tcti = optarg; break;
		case 'b':
			if (attest_pcrs_parse(optarg, &e->boot_pcrs) != SV_OK ||
			    e->boot_pcrs == 0 || (e->boot_pcrs & (1u << ATTEST_PCR_IMA))) {
				fprintf(stderr,
				        "%s: --boot-pcrs %s: expected PCR numbers 0..23 but not 10 "
				        "(IMA's), e.g. 0-7 or 0,2,4,7\n",
				        prog, optarg);
				return EXPECT_USAGE;
			}
			break;
		case 'P':
			if (n_policy == sizeof(policy) / sizeof(policy[0])) {
				fprintf(stderr, "%s: too many --policy options\n", prog);
				return EXPECT_USAGE;
			}
			/* getopt_long sets optarg for every required_argument option; the static
			 * analyzer does not see it change between calls (make check-analyze) */
			assert(optarg != NULL);
			policy[n_policy++] = optarg;
			break;
		case 'I':
			if (client_expect_add_allow_file(e, optarg, why, sizeof(why)) != SV_OK) {
				fprintf(stderr, "%s: --ima-allow: %s\n", prog, why);
				return EXPECT_USAGE;
			}
			break;
		case 'C':
			if (client_expect_add_ca_file(e, optarg, why, sizeof(why)) != SV_OK) {
				fprintf(stderr, "%s: --tpm-ca: %s\n", prog, why);
				return EXPECT_USAGE;
			}
			break;
		case 'k': {
			size_t got = 0;
			const char *end = NULL;
			if (sodium_hex2bin(e->server_key, sizeof(e->server_key), optarg,
			                   strlen(optarg), NULL, &got, &end) != 0 ||
			    *end != '\0' || got != sizeof(e->server_key)) {
				fprintf(stderr, "%s: --server-public-key must be 64 hex digits\n",
				        prog);
				return EXPECT_USAGE;
			}
			e->has_server_key = 1;
			break;
		}
		case 'h': usage(stdout); exit(EXPECT_OK);
		default: usage(stderr); return EXPECT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		usage(stderr);
		return EXPECT_USAGE;
	}
	/* the configuration file first, then the flags, as sealvaultd applies them */
	if (config != NULL && read_config(pol, config) != 0)
		return EXPECT_USAGE;
	for (size_t i = 0; i < n_policy; i++) {
		char *eq = strchr(policy[i], '=');
		if (eq == NULL) {
			fprintf(stderr, "%s: --policy takes KEY=VALUE, not '%s'\n", prog,
			        policy[i]);
			return EXPECT_USAGE;
		}
		*eq = '\0';
		if (policy_vault_set(pol, policy[i], eq + 1, why, sizeof(why)) != SV_OK) {
			fprintf(stderr, "%s: --policy: %s\n", prog, why);
			return EXPECT_USAGE;
		}
	}
	return EXPECT_OK;
}

int admin_expect_main(int argc, char **argv)
{
	struct client_expect e;
	struct sv_vault_policy pol;
	const char *bindir = NULL, *tcti = NULL;
	char why[512], *text = NULL;
	int rc;

	memset(&e, 0, sizeof(e));
	policy_vault_defaults(&pol);
	if (sodium_init() < 0) {
		fprintf(stderr, "%s: libsodium failed to initialise\n", prog);
		return EXPECT_FAIL;
	}
	if ((rc = parse(argc, argv, &e, &pol, &bindir, &tcti)) != EXPECT_OK)
		goto out;
	if (e.boot_pcrs == 0)
		e.boot_pcrs = ATTEST_PCRS_DEFAULT;
	if (policy_vault_check(&pol, why, sizeof(why)) != SV_OK) {
		fprintf(stderr, "%s: %s\n", prog, why);
		rc = EXPECT_USAGE;
		goto out;
	}
	rc = EXPECT_FAIL;
	if (admin_policy_hash(&pol, tenants_dir != NULL ? tenants_dir : config_tenants_dir,
	                      e.policy_hash) != 0)
		goto out;
	if (hash_binaries(&e, bindir) != 0 || (tcti != NULL && read_pcrs(&e, tcti) != 0))
		goto out;
	if (client_expect_encode(&e, &text) != SV_OK) {
		fprintf(stderr, "%s: out of memory\n", prog);
		goto out;
	}
	if (fputs(text, stdout) < 0 || fflush(stdout) != 0) {
		fprintf(stderr, "%s: writing the file to stdout: %s\n", prog, strerror(errno));
		goto out;
	}
	rc = EXPECT_OK;
out:
	free(text);
	free(config_tenants_dir);
	config_tenants_dir = NULL;
	client_expect_clear(&e);
	return rc;
}
