/*
 * sealvault-admin: provision a vault (init), inspect it (status), and destroy one record
 * (delete). It can destroy but never read a record or reset a guess counter.
 *
 * Exit codes (also in sealvault-admin(8)): 0 success; 1 failure (TPM, I/O); 2 usage error;
 * 3 state and TPM disagree (refused); 4 the vault is in use (state-dir lock held); 5 init: a
 * vault or NV index already exists / delete: no such user.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "admin/expect.h"
#include "common/attest_log.h"
#include "common/attest_stmt.h"
#include "common/err.h"
#include "enclave/attest.h"
#include "enclave/attestsrv.h"
#include "enclave/evidence.h"
#include "enclave/journal.h"
#include "enclave/store.h"
#include "enclave/tpm.h"
#include "policy/vault.h"

enum { EX_OK = 0, EX_FAIL = 1, EX_USAGE = 2, EX_REFUSED = 3, EX_INUSE = 4, EX_EXISTS = 5 };

#ifndef SV_LIBEXECDIR
#define SV_LIBEXECDIR "/usr/libexec/sealvault"
#endif
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
	        "  authorize-pcrs  approve the current boot PCR values for the identity key\n"
	        "  attest  print attestation evidence (TPM quote over a nonce) as JSON\n"
	        "  expect  print the expected values clients verify attestation against\n"
	        "Run '%s COMMAND --help' for a command's options; see sealvault-admin(8).\n",
	        prog, prog);
}

static void usage_cmd(FILE *f, const char *cmd)
{
	if (strcmp(cmd, "init") == 0)
		fprintf(
		    f,
		    "usage: %s init --state-dir DIR --tpm TCTI --policy-key-out FILE\n"
		    "       [--boot-pcrs LIST] [--nv-index HEX] [--pcrs LIST]\n"
		    "  Defines a plain NV counter (default index 0x%08x), seals a new vault "
		    "key\n"
		    "  under a noDA primary key, generates the OPRF seed and AKE key pair "
		    "(stored\n"
		    "  only encrypted) and writes an empty snapshot and journal to DIR.\n"
		    "  Refuses to overwrite an existing vault. TCTI: device:/dev/tpmrm0 or\n"
		    "  swtpm:host=H,port=P. --pcrs 0,2,7 seals the vault key to the current\n"
		    "  values of those SHA-256 PCRs (it then unseals only in that boot "
		    "state).\n"
		    "  Attestation: creates an attestation key bound to the TPM's EK and a "
		    "vault\n"
		    "  identity key that signs only while the --boot-pcrs (default 0-7) hold "
		    "the\n"
		    "  values approved by the policy key K; K's private key is written only to\n"
		    "  --policy-key-out FILE (new file, 0600): keep it offline.\n",
		    prog, TPM_NV_INDEX_DEFAULT);
	else if (strcmp(cmd, "authorize-pcrs") == 0)
		fprintf(f,
		        "usage: %s authorize-pcrs --state-dir DIR --tpm TCTI --policy-key FILE\n"
		        "       [--boot-pcrs LIST]\n"
		        "  Signs, with the policy key written by init, a new approved policy for "
		        "the\n"
		        "  current values of the boot PCRs (after a firmware or boot loader "
		        "upgrade).\n"
		        "  Needs the vault stopped.\n",
		        prog);
	else if (strcmp(cmd, "attest") == 0)
		fprintf(
		    f,
		    "usage: %s attest --state-dir DIR --tpm TCTI --nonce HEX\n"
		    "       [--event-log PATH] [--ima-log PATH] [--bindir DIR] [--policy "
		    "KEY=VALUE]...\n"
		    "  Prints the evidence JSON of GET /v1/attestation (docs/attestation.md) "
		    "for\n"
		    "  a nonce of 8..64 bytes. The statement hashes the binaries in --bindir\n"
		    "  (default: next to this program, else the installed paths) and the vault\n"
		    "  policy given with --policy (default: the default policy). Needs the "
		    "vault\n"
		    "  stopped.\n",
		    prog);
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

/* ---- attestation (issue 6) ---- */

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

static int read_policy_key(const char *path, EVP_PKEY **k, char *why, size_t why_len)
{
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

/* init's attestation part, before store_init: K, AK, identity key, certification, policy. */
static int init_attest(struct tpm *tpm, const char *dir, uint32_t boot_pcrs, const char *key_out,
                       char *why, size_t why_len)
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
	if (warn)
		fprintf(stderr,
		        "%s: warning: this TPM has no EK certificate (NV 0x%08x); verifiers "
		        "cannot check that it is a genuine TPM\n",
		        prog, ATTEST_EK_CERT_NV);
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

static int cmd_authorize(struct tpm *tpm, const char *dir, const char *key_path, uint32_t boot_pcrs,
                         char *why, size_t why_len)
{
	struct attest_state *st = malloc(sizeof(*st));
	struct attest_policy *old = malloc(sizeof(*old)), *pol = malloc(sizeof(*pol));
	EVP_PKEY *k = NULL;
	int r = SV_ERR_NOMEM;
	if (st == NULL || old == NULL || pol == NULL)
		goto out;
	if ((r = evidence_load(dir, st, old, why, why_len)) != SV_OK ||
	    (r = attest_check_ek(tpm, st, NULL, why, why_len)) != SV_OK ||
	    (r = read_policy_key(key_path, &k, why, why_len)) != SV_OK)
		goto out;
	if (boot_pcrs == 0)
		boot_pcrs = old->boot_pcrs;
	if ((r = attest_authorize(tpm, boot_pcrs, k, st, pol, why, why_len)) != SV_OK)
		goto out;
	/* the identity key must sign with it before it replaces the old one */
	uint8_t stmt[ATTEST_STMT_LEN] = {0};
	struct attest_blob sig;
	if ((r = attest_sign_statement(tpm, st, pol, stmt, &sig)) != SV_OK) {
		snprintf(why, why_len, "the identity key does not sign under the new policy");
		goto out;
	}
	if ((r = evidence_save_policy(dir, pol, why, why_len)) != SV_OK)
		goto out;
	char list[80];
	if (attest_pcrs_format(pol->boot_pcrs, list, sizeof(list)) != SV_OK)
		list[0] = '\0';
	char hex[2 * ATTEST_HASH_LEN + 1];
	sodium_bin2hex(hex, sizeof(hex), pol->approved, ATTEST_HASH_LEN);
	printf("approved boot PCRs %s (sha256) at their current values: policy %s\n", list, hex);
out:
	EVP_PKEY_free(k);
	free(st);
	free(old);
	free(pol);
	return r;
}

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

static int cmd_attest(struct tpm *tpm, const char *dir, const char *nonce_hex,
                      const struct sv_vault_policy *vpol, const char *bindir, const char *event_log,
                      const char *ima_log, char *why, size_t why_len)
{
	uint8_t nonce[ATTEST_NONCE_MAX + 1], phash[ATTEST_HASH_LEN];
	size_t nlen = 0;
	char paths[ATTEST_NBINARIES][4096];
	const char *bins[ATTEST_NBINARIES];
	struct store *st = NULL;
	struct attestsrv *a = NULL;
	struct json_object *root = NULL;
	struct sv_buf out;
	int r;
	if (sv_buf_init(&out, 1u << 20) != SV_OK)
		return SV_ERR_NOMEM;
	if (sodium_hex2bin(nonce, sizeof(nonce), nonce_hex, strlen(nonce_hex), NULL, &nlen, NULL) !=
	        0 ||
	    nlen < ATTEST_NONCE_MIN || nlen > ATTEST_NONCE_MAX) {
		snprintf(why, why_len, "--nonce: expected 8 to 64 bytes in hex (16..128 digits)");
		r = SV_ERR_CONFIG;
		goto out;
	}
	if ((r = store_open_readonly(&st, dir, tpm, vpol, why, why_len)) != SV_OK)
		goto out;
	admin_binary_paths(bindir, paths);
	for (int i = 0; i < ATTEST_NBINARIES; i++)
		bins[i] = paths[i];
	policy_vault_hash(vpol, phash);
	if ((r = attestsrv_open(&a, tpm, dir, bins, store_secrets(st)->ake_pk, phash, why,
	                        why_len)) != SV_OK)
		goto out;
	if ((r = attestsrv_evidence(a, nonce, nlen, &out)) != SV_OK ||
	    (r = sv_buf_put_u8(&out, 0)) != SV_OK) {
		snprintf(why, why_len, "the TPM did not produce a quote (%s)", sv_strerror(r));
		goto out;
	}
	r = SV_ERR_INVALID;
	if ((root = json_tokener_parse((const char *)out.data)) == NULL)
		goto out;
	if ((r = add_log(root, "event_log", event_log, why, why_len)) != SV_OK ||
	    (r = add_log(root, "ima_log", ima_log, why, why_len)) != SV_OK)
		goto out;
	printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
	                                                        JSON_C_TO_STRING_NOSLASHESCAPE));
out:
	json_object_put(root);
	attestsrv_free(a);
	store_close(st);
	sv_buf_free(&out);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"tpm", required_argument, NULL, 't'},
	    {"nv-index", required_argument, NULL, 'n'},
	    {"user", required_argument, NULL, 'u'},
	    {"pcrs", required_argument, NULL, 'p'},
	    {"policy-key-out", required_argument, NULL, 'K'},
	    {"policy-key", required_argument, NULL, 'k'},
	    {"boot-pcrs", required_argument, NULL, 'b'},
	    {"nonce", required_argument, NULL, 'N'},
	    {"event-log", required_argument, NULL, 'E'},
	    {"ima-log", required_argument, NULL, 'I'},
	    {"bindir", required_argument, NULL, 'B'},
	    {"policy", required_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *tcti = NULL, *user = NULL;
	const char *key_out = NULL, *key_in = NULL, *nonce = NULL, *bindir = NULL;
	const char *event_log = "/sys/kernel/security/tpm0/binary_bios_measurements";
	const char *ima_log = "/sys/kernel/security/ima/ascii_runtime_measurements";
	uint32_t nv_index = TPM_NV_INDEX_DEFAULT, pcr_mask = 0, boot_pcrs = 0;
	struct sv_vault_policy vpol;
	int n_policy = 0;
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
	if (strcmp(cmd, "expect") ==
	    0) /* no state directory, no TPM unless asked: admin/expect.c */
		return admin_expect_main(argc - 1, argv + 1);
	int is_init = strcmp(cmd, "init") == 0, is_auth = strcmp(cmd, "authorize-pcrs") == 0,
	    is_attest = strcmp(cmd, "attest") == 0;
	if (!is_init && !is_auth && !is_attest && strcmp(cmd, "status") != 0 &&
	    strcmp(cmd, "delete") != 0) {
		fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
		usage_main(stderr);
		return EX_USAGE;
	}
	policy_vault_defaults(&vpol);
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
		case 'K': key_out = optarg; break;
		case 'k': key_in = optarg; break;
		case 'N': nonce = optarg; break;
		case 'E': event_log = optarg; break;
		case 'I': ima_log = optarg; break;
		case 'B': bindir = optarg; break;
		case 'b':
			if (attest_pcrs_parse(optarg, &boot_pcrs) != SV_OK || boot_pcrs == 0) {
				fprintf(stderr,
				        "%s: --boot-pcrs %s: expected PCR numbers 0..23 as a list "
				        "and ranges, e.g. 0-7 or 0,2,4,7\n",
				        prog, optarg);
				return EX_USAGE;
			}
			break;
		case 'P': {
			char *eq = strchr(optarg, '=');
			char pwhy[256];
			if (eq == NULL) {
				fprintf(stderr, "%s: --policy takes KEY=VALUE, not '%s'\n", prog,
				        optarg);
				return EX_USAGE;
			}
			*eq = '\0';
			if (policy_vault_set(&vpol, optarg, eq + 1, pwhy, sizeof(pwhy)) != 0) {
				fprintf(stderr, "%s: --policy: %s\n", prog, pwhy);
				return EX_USAGE;
			}
			n_policy++;
			break;
		}
		case 'h': usage_cmd(stdout, cmd); return EX_OK;
		default: usage_cmd(stderr, cmd); return EX_USAGE;
		}
	}
	if (optind != argc || dir == NULL || tcti == NULL ||
	    (strcmp(cmd, "delete") == 0) != (user != NULL) ||
	    (!is_init && (nv_index != TPM_NV_INDEX_DEFAULT || pcr_mask != 0)) ||
	    (!is_init && key_out != NULL) || (!is_auth && key_in != NULL) ||
	    (!is_init && !is_auth && boot_pcrs != 0) || is_attest != (nonce != NULL) ||
	    (!is_attest && (bindir != NULL || n_policy > 0))) {
		fprintf(stderr, "%s %s: missing or unexpected arguments\n", prog, cmd);
		usage_cmd(stderr, cmd);
		return EX_USAGE;
	}
	if (is_init && key_out == NULL) {
		fprintf(stderr,
		        "%s init: --policy-key-out FILE is required: the private policy key that "
		        "approves boot PCR values is written there (keep it offline)\n",
		        prog);
		return EX_USAGE;
	}
	if (is_auth && key_in == NULL) {
		fprintf(stderr,
		        "%s authorize-pcrs: --policy-key FILE is required (the file init "
		        "wrote with --policy-key-out)\n",
		        prog);
		return EX_USAGE;
	}
	if (is_init && boot_pcrs == 0)
		boot_pcrs = ATTEST_PCRS_DEFAULT;
	if (policy_vault_check(&vpol, why, sizeof(why)) != 0) {
		fprintf(stderr, "%s: --policy: %s\n", prog, why);
		return EX_USAGE;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "%s: libsodium failed to initialise\n", prog);
		return EX_FAIL;
	}
	if (!is_init && (r = store_check_unlocked(dir, why, sizeof(why))) != SV_OK) {
		fprintf(stderr, "%s: %s\n", prog, why);
		return exit_for(r);
	}
	r = tpm_open(&tpm, tcti, why, sizeof(why));
	if (r != SV_OK) {
		fprintf(stderr, "%s: %s\n", prog, why);
		return EX_FAIL;
	}
	if (is_init) {
		if (access(dir, F_OK) == 0 && store_check_unlocked(dir, why, sizeof(why)) != SV_OK)
			r = SV_ERR_BUSY;
		else
			r = init_attest(tpm, dir, boot_pcrs, key_out, why, sizeof(why));
		if (r == SV_OK) {
			r = store_init(dir, tpm, nv_index, pcr_mask, why, sizeof(why));
			if (r != SV_OK) {
				evidence_remove(dir);
				(void)unlink(key_out);
			}
		}
		if (r == SV_OK)
			printf("initialised vault in %s (NV counter 0x%08x, counter scheme "
			       "plain)\n",
			       dir, nv_index);
	} else if (is_auth) {
		r = cmd_authorize(tpm, dir, key_in, boot_pcrs, why, sizeof(why));
	} else if (is_attest) {
		r = cmd_attest(tpm, dir, nonce, &vpol, bindir, event_log, ima_log, why,
		               sizeof(why));
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
