/*
 * `sealvault-admin attest`: prints the evidence JSON of GET /v1/attestation (issue 6,
 * docs/attestation.md) for a nonce, with the stopped vault's TPM.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "admin/admin.h"
#include "admin/expect.h"
#include "common/attest_log.h"
#include "common/attest_stmt.h"
#include "common/buf.h"
#include "common/err.h"
#include "enclave/attest.h"
#include "enclave/attestsrv.h"
#include "enclave/store.h"
#include "enclave/tpm.h"
#include "policy/vault.h"

struct attest_args {
	const char *dir, *tcti, *nonce, *bindir, *event_log, *ima_log;
	struct sv_vault_policy vpol;
	const char *tenants_dir; /* --tenants-dir; NULL: the default */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s attest --state-dir DIR --tpm TCTI --nonce HEX\n"
	        "       [--event-log PATH] [--ima-log PATH] [--bindir DIR] [--policy "
	        "KEY=VALUE]...\n"
	        "       [--tenants-dir DIR]\n"
	        "  Prints the evidence JSON of GET /v1/attestation (docs/attestation.md) for\n"
	        "  a nonce of 8..64 bytes. The statement hashes the binaries in --bindir\n"
	        "  (default: next to this program, else the installed paths) and the vault\n"
	        "  policy given with --policy (default: the default policy) with, for auth\n"
	        "  tokens, the tenants of --tenants-dir (default /etc/sealvault/tenants.d).\n"
	        "  Needs the vault stopped.\n",
	        ADMIN_PROG);
}

/* --policy KEY=VALUE: 0, or a message on stderr and -1. */
static int parse_policy(struct sv_vault_policy *vpol, char *arg)
{
	char *eq = strchr(arg, '=');
	char why[256];
	if (eq == NULL) {
		fprintf(stderr, "%s: --policy takes KEY=VALUE, not '%s'\n", ADMIN_PROG, arg);
		return -1;
	}
	*eq = '\0';
	if (policy_vault_set(vpol, arg, eq + 1, why, sizeof(why)) != 0) {
		fprintf(stderr, "%s: --policy: %s\n", ADMIN_PROG, why);
		return -1;
	}
	return 0;
}

/* ADMIN_EX_OK, or the exit code after a message. */
static int parse(int argc, char **argv, struct attest_args *a)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"tpm", required_argument, NULL, 't'},
	    {"nonce", required_argument, NULL, 'N'},
	    {"event-log", required_argument, NULL, 'E'},
	    {"ima-log", required_argument, NULL, 'I'},
	    {"bindir", required_argument, NULL, 'B'},
	    {"policy", required_argument, NULL, 'P'},
	    {"tenants-dir", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char why[512];
	int c, other = 0;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'd': a->dir = optarg; break;
		case 't': a->tcti = optarg; break;
		case 'N': a->nonce = optarg; break;
		case 'E': a->event_log = optarg; break;
		case 'I': a->ima_log = optarg; break;
		case 'B': a->bindir = optarg; break;
		case 'T': a->tenants_dir = optarg; break;
		case 'P':
			if (parse_policy(&a->vpol, optarg) != 0)
				return ADMIN_EX_USAGE;
			break;
		case 'h': usage(stdout); exit(ADMIN_EX_OK);
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	if (optind != argc || other || a->dir == NULL || a->tcti == NULL || a->nonce == NULL)
		return admin_bad_args("attest", usage);
	if (policy_vault_check(&a->vpol, why, sizeof(why)) != 0) {
		fprintf(stderr, "%s: --policy: %s\n", ADMIN_PROG, why);
		return ADMIN_EX_USAGE;
	}
	return ADMIN_EX_OK;
}

/* Adds the log at path, base64, as root[key]; a missing file is left out. */
static int add_log(struct json_object *root, const char *key, const char *path, char *why,
                   size_t why_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *data = NULL;
	size_t len = 0;
	if (fd < 0)
		return errno == ENOENT
		           ? SV_OK
		           : (snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno)),
		              SV_ERR_IO);
	int r = attest_log_read(fd, &data, &len);
	close(fd);
	if (r != SV_OK) {
		snprintf(why, why_len, "cannot read %s (%s; the cap is %u bytes)", path,
		         sv_strerror(r), ATTEST_LOG_MAX);
		return r;
	}
	char *b64 = attest_log_b64(data, len);
	free(data);
	struct json_object *v = b64 != NULL ? json_object_new_string(b64) : NULL;
	free(b64);
	if (v == NULL || json_object_object_add(root, key, v) != 0) {
		json_object_put(v);
		return SV_ERR_NOMEM;
	}
	return SV_OK;
}

static int attest(struct tpm *tpm, const struct attest_args *a, char *why, size_t why_len)
{
	uint8_t nonce[ATTEST_NONCE_MAX + 1], phash[ATTEST_HASH_LEN];
	size_t nlen = 0;
	char paths[ATTEST_NBINARIES][4096];
	const char *bins[ATTEST_NBINARIES];
	struct store *st = NULL;
	struct attestsrv *srv = NULL;
	struct json_object *root = NULL;
	struct sv_buf out;
	int r;
	if (sv_buf_init(&out, 1u << 20) != SV_OK)
		return SV_ERR_NOMEM;
	if (sodium_hex2bin(nonce, sizeof(nonce), a->nonce, strlen(a->nonce), NULL, &nlen, NULL) !=
	        0 ||
	    nlen < ATTEST_NONCE_MIN || nlen > ATTEST_NONCE_MAX) {
		snprintf(why, why_len, "--nonce: expected 8 to 64 bytes in hex (16..128 digits)");
		r = SV_ERR_CONFIG;
		goto out;
	}
	if ((r = store_open_readonly(&st, a->dir, tpm, &a->vpol, why, why_len)) != SV_OK)
		goto out;
	admin_binary_paths(a->bindir, paths);
	for (int i = 0; i < ATTEST_NBINARIES; i++)
		bins[i] = paths[i];
	if (admin_policy_hash(&a->vpol, a->tenants_dir, phash) != 0) {
		snprintf(why, why_len, "the tenants of the policy hash did not load");
		r = SV_ERR_CONFIG;
		goto out;
	}
	if ((r = attestsrv_open(&srv, tpm, a->dir, bins, store_secrets(st)->ake_pk, phash, why,
	                        why_len)) != SV_OK)
		goto out;
	if ((r = attestsrv_evidence(srv, nonce, nlen, &out)) != SV_OK ||
	    (r = sv_buf_put_u8(&out, 0)) != SV_OK) {
		snprintf(why, why_len, "the TPM did not produce a quote (%s)", sv_strerror(r));
		goto out;
	}
	r = SV_ERR_INVALID;
	if ((root = json_tokener_parse((const char *)out.data)) == NULL)
		goto out;
	if ((r = add_log(root, "event_log", a->event_log, why, why_len)) != SV_OK ||
	    (r = add_log(root, "ima_log", a->ima_log, why, why_len)) != SV_OK)
		goto out;
	printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
	                                                        JSON_C_TO_STRING_NOSLASHESCAPE));
out:
	json_object_put(root);
	attestsrv_free(srv);
	store_close(st);
	sv_buf_free(&out);
	return r;
}

int admin_attest_main(int argc, char **argv)
{
	struct attest_args a = {
	    .event_log = "/sys/kernel/security/tpm0/binary_bios_measurements",
	    .ima_log = "/sys/kernel/security/ima/ascii_runtime_measurements",
	};
	struct tpm *tpm = NULL;
	char why[512] = "";
	policy_vault_defaults(&a.vpol);
	int r = parse(argc, argv, &a);
	if (r != ADMIN_EX_OK || (r = admin_start(a.dir, a.tcti, 1, &tpm)) != ADMIN_EX_OK)
		return r;
	r = attest(tpm, &a, why, sizeof(why));
	int rc = admin_finish(r, why);
	tpm_close(tpm);
	return rc;
}
