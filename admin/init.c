/*
 * `sealvault-admin init`: provisions a new vault in a state directory on a TPM, with its
 * attestation keys (issue 6); the private policy key goes only to --policy-key-out.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "admin/admin.h"
#include "common/err.h"
#include "enclave/approval.h"
#include "enclave/attest.h"
#include "enclave/evidence.h"
#include "enclave/store.h"
#include "enclave/tpm.h"

struct init_args {
	const char *dir, *tcti, *key_out;
	uint32_t nv_index, pcr_mask, boot_pcrs;
	int plain; /* --counter-scheme plain */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s init --state-dir DIR --tpm TCTI --policy-key-out FILE\n"
	        "       [--boot-pcrs LIST] [--nv-index HEX] [--pcrs LIST]\n"
	        "       [--counter-scheme hybrid|plain]\n"
	        "  Defines the NV counter (default index 0x%08x; hybrid, the default: an\n"
	        "  orderly counter, plus the unclean-boots counter at index + 0x10000), seals\n"
	        "  a new vault key under a noDA primary key, generates the OPRF seed and AKE\n"
	        "  key pair (stored\n"
	        "  only encrypted) and writes an empty snapshot and journal to DIR.\n"
	        "  Refuses to overwrite an existing vault. TCTI: device:/dev/tpmrm0 or\n"
	        "  swtpm:host=H,port=P. --pcrs 0,2,7 seals the vault key to the current\n"
	        "  values of those SHA-256 PCRs as approved by the policy key K (it then\n"
	        "  unseals only in a boot state K approved; after an update that changes\n"
	        "  them, approve the new values with authorize-pcrs).\n"
	        "  Attestation: creates an attestation key bound to the TPM's EK and a vault\n"
	        "  identity key that signs only while the --boot-pcrs (default 0-7) hold the\n"
	        "  values approved by the policy key K; K's private key is written only to\n"
	        "  --policy-key-out FILE (new file, 0600): keep it offline.\n",
	        ADMIN_PROG, TPM_NV_INDEX_DEFAULT);
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

/* ADMIN_EX_OK, or the exit code after a message. */
static int parse(int argc, char **argv, struct init_args *a)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"tpm", required_argument, NULL, 't'},
	    {"nv-index", required_argument, NULL, 'n'},
	    {"pcrs", required_argument, NULL, 'p'},
	    {"policy-key-out", required_argument, NULL, 'K'},
	    {"boot-pcrs", required_argument, NULL, 'b'},
	    {"counter-scheme", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c, other = 0;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'd': a->dir = optarg; break;
		case 't': a->tcti = optarg; break;
		case 'n':
			if (admin_parse_nv_index(optarg, &a->nv_index) != 0)
				return ADMIN_EX_USAGE;
			break;
		case 'p':
			if (parse_pcrs(optarg, &a->pcr_mask) != 0) {
				fprintf(stderr,
				        "%s: --pcrs %s: expected a comma-separated list of PCR "
				        "numbers 0..23, e.g. 7 or 0,2,4,7\n",
				        ADMIN_PROG, optarg);
				return ADMIN_EX_USAGE;
			}
			break;
		case 'K': a->key_out = optarg; break;
		case 'S':
			if (strcmp(optarg, "plain") != 0 && strcmp(optarg, "hybrid") != 0) {
				fprintf(stderr,
				        "%s: --counter-scheme %s: expected hybrid (the default) or "
				        "plain\n",
				        ADMIN_PROG, optarg);
				return ADMIN_EX_USAGE;
			}
			a->plain = strcmp(optarg, "plain") == 0;
			break;
		case 'b':
			if (admin_parse_boot_pcrs(optarg, &a->boot_pcrs) != 0)
				return ADMIN_EX_USAGE;
			break;
		case 'h': usage(stdout); exit(ADMIN_EX_OK);
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	if (optind != argc || other || a->dir == NULL || a->tcti == NULL)
		return admin_bad_args("init", usage);
	if (a->key_out == NULL) {
		fprintf(stderr,
		        "%s init: --policy-key-out FILE is required: the private policy key that "
		        "approves boot PCR values is written there (keep it offline)\n",
		        ADMIN_PROG);
		return ADMIN_EX_USAGE;
	}
	if (a->boot_pcrs == 0)
		a->boot_pcrs = ATTEST_PCRS_DEFAULT;
	return ADMIN_EX_OK;
}

/* Writes K's private key (PKCS#8 PEM) to a NEW file, mode 0600. */
static int write_policy_key(const char *path, EVP_PKEY *k, char *why, size_t why_len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(why, why_len,
		         "cannot create the policy key file %s: %s (it must not exist; init never "
		         "overwrites a key)",
		         path, strerror(errno));
		return errno == EEXIST ? SV_ERR_EXISTS : SV_ERR_IO;
	}
	FILE *f = fdopen(fd, "w");
	int ok = f != NULL && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1 &&
	         fflush(f) == 0 && fsync(fd) == 0;
	if (f != NULL)
		ok &= fclose(f) == 0;
	else
		close(fd);
	if (!ok) {
		snprintf(why, why_len, "cannot write the policy key file %s", path);
		(void)unlink(path);
		return SV_ERR_IO;
	}
	return SV_OK;
}

/* init's attestation part, before store_init: K, AK, identity key, certification, policy; with
 * pcr_mask non-zero also K's approval of those PCRs' current values for the vault key. */
static int init_attest(struct tpm *tpm, const char *dir, uint32_t boot_pcrs, uint32_t pcr_mask,
                       const char *key_out, struct approval_vault *vault, char *why, size_t why_len)
{
	struct attest_state *st = malloc(sizeof(*st));
	struct attest_policy *pol = malloc(sizeof(*pol));
	EVP_PKEY *k = EVP_EC_gen("P-256");
	int r = SV_ERR_NOMEM, warn = 0, key_written = 0;
	if (st == NULL || pol == NULL || k == NULL) {
		snprintf(why, why_len, "cannot generate the policy key (ECC P-256)");
		goto out;
	}
	if ((r = write_policy_key(key_out, k, why, why_len)) != SV_OK)
		goto out;
	key_written = 1;
	if ((r = attest_provision(tpm, boot_pcrs, k, st, pol, &warn, why, why_len)) != SV_OK)
		goto out;
	vault->key = st->policy_key;
	if (pcr_mask != 0 &&
	    (r = attest_approve(tpm, pcr_mask, (const uint8_t *)ATTEST_REF_VAULT_KEY,
	                        ATTEST_REF_VAULT_KEY_LEN, k, st, &vault->pol, why, why_len)) !=
	        SV_OK)
		goto out;
	if (warn)
		fprintf(stderr,
		        "%s: warning: this TPM has no EK certificate (NV 0x%08x); verifiers "
		        "cannot check that it is a genuine TPM\n",
		        ADMIN_PROG, ATTEST_EK_CERT_NV);
	r = evidence_save(dir, st, pol, why, why_len);
	if (r == SV_ERR_EXISTS)
		snprintf(why, why_len,
		         "%s already holds a vault (%s exists): refusing to overwrite it; choose "
		         "an empty --state-dir",
		         dir, EVIDENCE_FN_STATE);
out:
	if (r != SV_OK && key_written)
		(void)unlink(key_out);
	EVP_PKEY_free(k);
	free(st);
	free(pol);
	return r;
}

int admin_init_main(int argc, char **argv)
{
	struct init_args a = {.nv_index = TPM_NV_INDEX_DEFAULT};
	struct approval_vault *vault = calloc(1, sizeof(*vault));
	struct tpm *tpm = NULL;
	char why[512] = "";
	int r = parse(argc, argv, &a);
	if (vault == NULL)
		return admin_finish(SV_ERR_NOMEM, "");
	if (r != ADMIN_EX_OK) {
		free(vault);
		return r;
	}
	/* parse() returns admin_bad_args()'s ADMIN_EX_USAGE without them, which the static
	 * analyzer cannot see from this file (make check-analyze) */
	assert(a.dir != NULL && a.tcti != NULL && a.key_out != NULL);
	if ((r = admin_start(a.dir, a.tcti, 0, &tpm)) != ADMIN_EX_OK) {
		free(vault);
		return r;
	}
	/* the lock is probed only when DIR exists: init creates it */
	if (access(a.dir, F_OK) == 0 && store_check_unlocked(a.dir, why, sizeof(why)) != SV_OK)
		r = SV_ERR_BUSY;
	else
		r = init_attest(tpm, a.dir, a.boot_pcrs, a.pcr_mask, a.key_out, vault, why,
		                sizeof(why));
	if (r == SV_OK) {
		r = store_init(a.dir, tpm, a.nv_index, a.pcr_mask, !a.plain,
		               a.pcr_mask != 0 ? vault : NULL, why, sizeof(why));
		if (r != SV_OK) {
			evidence_remove(a.dir);
			(void)unlink(a.key_out);
		}
	}
	if (r == SV_OK)
		printf("initialised vault in %s (NV counter 0x%08x, counter scheme %s)\n", a.dir,
		       a.nv_index, a.plain ? "plain" : "hybrid");
	int rc = admin_finish(r, why);
	tpm_close(tpm);
	free(vault);
	return rc;
}
