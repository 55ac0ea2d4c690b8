/*
 * `sealvault-admin audit-id`: the keyed hash under which the audit trail names an identifier
 * (SEALVAULT_ID_HASH, docs/operations.md "Audit trail"), from the audit key that sealvaultd keeps
 * in its audit-key-file (root only). It needs neither the TPM nor the state directory, and works
 * while the vault runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "admin/admin.h"
#include "common/audit.h"
#include "common/recordkey.h"
#include "enclave/store.h"

#define DEFAULT_KEY_FILE "/run/sealvault/audit-id.key"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: %s audit-id [--key-file FILE] [--tenant NAME] [--realm] IDENTIFIER\n"
	    "  Prints the hash under which the audit trail names IDENTIFIER (SEALVAULT_ID_HASH),\n"
	    "  computed with the audit key sealvaultd writes to FILE (its audit-key-file,\n"
	    "  default %s; readable by root only) at every start of the vault.\n"
	    "  With --tenant (auth = tokens): the user IDENTIFIER (a token's sub) of tenant "
	    "NAME.\n"
	    "  With --realm: the name of the user's threshold-realm record (/v2/realm/ events).\n",
	    ADMIN_PROG, DEFAULT_KEY_FILE);
}

/* The key file: 64 hex digits and an optional newline. 0, or a message on stderr and -1. */
static int read_key(const char *path, uint8_t key[AUDIT_KEY_LEN])
{
	char hex[2 * AUDIT_KEY_LEN + 2];
	size_t bin = 0;
	const char *end = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, hex, sizeof(hex));
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (n < 0) {
		fprintf(
		    stderr,
		    "%s: cannot read the audit key %s: %s (it is written by sealvaultd when the "
		    "vault starts; run as root, or give --key-file)\n",
		    ADMIN_PROG, path, strerror(e));
		return -1;
	}
	if ((n == 2 * AUDIT_KEY_LEN + 1 && hex[2 * AUDIT_KEY_LEN] == '\n'))
		n--;
	int ok = n == 2 * AUDIT_KEY_LEN &&
	         sodium_hex2bin(key, AUDIT_KEY_LEN, hex, (size_t)n, NULL, &bin, &end) == 0 &&
	         bin == AUDIT_KEY_LEN;
	sodium_memzero(hex, sizeof(hex));
	if (!ok) {
		fprintf(stderr, "%s: %s is not an audit key (64 hex digits)\n", ADMIN_PROG, path);
		return -1;
	}
	return 0;
}

int admin_audit_id_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key-file", required_argument, NULL, 'k'},
	    {"tenant", required_argument, NULL, 'T'},
	    {"realm", no_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = DEFAULT_KEY_FILE, *tenant = NULL;
	uint8_t key[AUDIT_KEY_LEN], h[AUDIT_ID_HASH_LEN], rec[STORE_ID_MAX];
	size_t rec_len;
	char out[2 * AUDIT_ID_HASH_LEN + 1];
	int c, other = 0, realm = 0;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'R': realm = 1; break;
		case 'k': path = optarg != NULL ? optarg : path; break;
		case 'T': tenant = optarg; break;
		case 'h': usage(stdout); return ADMIN_EX_OK;
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	if (optind + 1 != argc || other || argv[optind][0] == '\0')
		return admin_bad_args("audit-id", usage);
	if (sodium_init() < 0) {
		fprintf(stderr, "%s: cannot initialise libsodium\n", ADMIN_PROG);
		return ADMIN_EX_FAIL;
	}
	/* in tokens mode the vault's records (and so its audit records) are keyed by tenant and sub
	 */
	const char *id = argv[optind];
	if (tenant == NULL) {
		rec_len = strlen(id);
		if (rec_len > STORE_ID_MAX) {
			fprintf(stderr, "%s: audit-id: the identifier is over %d bytes\n",
			        ADMIN_PROG, STORE_ID_MAX);
			return ADMIN_EX_USAGE;
		}
		memcpy(rec, id, rec_len);
	} else if (*tenant == '\0' || record_key_tenant(tenant, (const uint8_t *)id, strlen(id),
	                                                rec, sizeof(rec), &rec_len) != 0) {
		fprintf(stderr,
		        "%s: audit-id: tenant name and identifier together may have at most %d "
		        "bytes\n",
		        ADMIN_PROG, STORE_ID_MAX - 2);
		return ADMIN_EX_USAGE;
	}
	/* a threshold realm's record: 0x01 | the record key (common/recordkey.h) */
	if (realm) {
		uint8_t v1[STORE_ID_MAX];
		memcpy(v1, rec, rec_len);
		if (record_key_realm(v1, rec_len, rec, sizeof(rec), &rec_len) != 0) {
			fprintf(stderr,
			        "%s: audit-id: the identifier is too long for a realm record\n",
			        ADMIN_PROG);
			return ADMIN_EX_USAGE;
		}
	}
	if (read_key(path, key) != 0)
		return ADMIN_EX_FAIL;
	audit_id_hash(h, key, rec, rec_len);
	sodium_memzero(key, sizeof(key));
	printf("%s\n", sodium_bin2hex(out, sizeof(out), h, sizeof(h)));
	return ADMIN_EX_OK;
}
