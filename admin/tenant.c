/*
 * `sealvault-admin tenant add|rotate|remove|list|keygen`: the tenants a vault trusts to sign
 * access tokens, one public JWK Set per tenant in DIR/NAME.jwks (default TENANT_DIR_DEFAULT,
 * docs/tokens.md). Every file is checked as the enclave reads it (enclave/tenant.c) before it is
 * written, and written atomically (a temporary file, fsync, rename, fsync of the directory) as
 * root-owned mode 0644. The vault reads the directory when it starts: a change takes effect at
 * the next start and changes the tenants digest that `list` prints.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "admin/admin.h"
#include "admin/jwk.h"
#include "common/err.h"
#include "enclave/tenant.h"

/* A path in the tenants directory; --dir is at most DIR_MAX bytes. */
#define DIR_MAX  900
#define PATH_LEN (DIR_MAX + TENANT_NAME_MAX + 16)

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: %s tenant add NAME JWKS-FILE [--dir DIR]\n"
	    "       %s tenant rotate NAME JWKS-FILE [--dir DIR]\n"
	    "       %s tenant remove NAME [--dir DIR]\n"
	    "       %s tenant list [--dir DIR]\n"
	    "       %s tenant keygen NAME --out FILE [--alg EdDSA|ES256] [--kid KID]\n"
	    "  The tenants whose signed access tokens the vault accepts: one public JWK Set\n"
	    "  (Ed25519 or P-256 keys, each with a kid) per tenant, in DIR/NAME.jwks\n"
	    "  (default %s). add and rotate check the set (JWKS-FILE, or - for standard\n"
	    "  input) and write it atomically; the vault reads the directory when it starts.\n"
	    "  keygen writes a new private key as a private JWK to FILE (mode 0600) and prints\n"
	    "  its public JWK Set, for tests and demos.\n",
	    ADMIN_PROG, ADMIN_PROG, ADMIN_PROG, ADMIN_PROG, ADMIN_PROG, TENANT_DIR_DEFAULT);
}

/* Reads a JWK Set from path (- for stdin) into buf (TENANT_JWKS_MAX + 1 bytes). */
static int read_jwks(const char *path, uint8_t *buf, size_t *len, char *why, size_t why_len)
{
	int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	*len = 0;
	if (fd < 0) {
		snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
		return SV_ERR_IO;
	}
	int r = SV_OK;
	for (;;) {
		ssize_t n = read(fd, buf + *len, TENANT_JWKS_MAX + 1 - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0) {
				snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
				r = SV_ERR_IO;
			}
			break;
		}
		if ((*len += (size_t)n) > TENANT_JWKS_MAX) {
			snprintf(why, why_len, "%s is over %d bytes", path, TENANT_JWKS_MAX);
			r = SV_ERR_RANGE;
			break;
		}
	}
	if (fd != 0)
		close(fd);
	return r;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	close(fd);
	return r;
}

/* Writes text to DIR/NAME.jwks through a temporary file; replace = 0 refuses an existing file. */
static int write_tenant(const char *dir, const char *name, const uint8_t *text, size_t len,
                        int replace, char *why, size_t why_len)
{
	char tmp[PATH_LEN], path[PATH_LEN];
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		snprintf(why, why_len, "cannot create %s: %s", dir, strerror(errno));
		return SV_ERR_IO;
	}
	snprintf(path, sizeof(path), "%s/%s%s", dir, name, TENANT_FILE_SUFFIX);
	snprintf(tmp, sizeof(tmp), "%s/.%s%s.tmp", dir, name, TENANT_FILE_SUFFIX);
	unlink(tmp); /* left by an interrupted run */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(why, why_len, "cannot create %s: %s", tmp, strerror(errno));
		return SV_ERR_IO;
	}
	int ok = fchmod(fd, 0644) == 0 && (geteuid() != 0 || fchown(fd, 0, 0) == 0) &&
	         write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (ok)
		ok = (replace ? rename(tmp, path)
		              : renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE)) == 0;
	if (!ok) {
		int e = errno;
		unlink(tmp);
		if (e == EEXIST) {
			snprintf(why, why_len,
			         "tenant %s exists already (%s); use `tenant rotate` to replace "
			         "its keys",
			         name, path);
			return SV_ERR_EXISTS;
		}
		snprintf(why, why_len, "cannot write %s: %s", path, strerror(e));
		return SV_ERR_IO;
	}
	if (fsync_dir(dir) != 0) {
		snprintf(why, why_len, "wrote %s but cannot fsync %s: %s", path, dir,
		         strerror(errno));
		return SV_ERR_IO;
	}
	return SV_OK;
}

static void print_digest(const struct tenant_set *set)
{
	uint8_t d[TENANT_DIGEST_LEN];
	char hex[2 * TENANT_DIGEST_LEN + 1];
	tenant_set_digest(set, d);
	sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
	printf("tenants digest: %s\n", hex);
}

/* Loads the whole directory as the vault will, and prints the digest. */
static int check_dir(const char *dir, int list, char *why, size_t why_len)
{
	struct tenant_set set;
	int r = tenant_set_load_dir(&set, dir, why, why_len);
	if (r != SV_OK)
		return r;
	for (size_t i = 0; list && i < set.n; i++) {
		const struct tenant *t = &set.tenants[i];
		printf("%s\n", t->name);
		for (size_t j = 0; j < t->n_keys; j++)
			printf("  %s %s\n",
			       t->keys[j].type == TENANT_KEY_ED25519 ? "EdDSA" : "ES256",
			       t->keys[j].kid);
	}
	printf("tenants: %zu\n", set.n);
	print_digest(&set);
	tenant_set_free(&set);
	return SV_OK;
}

static int add_or_rotate(const char *dir, const char *name, const char *file, int rotate, char *why,
                         size_t why_len)
{
	uint8_t *buf = malloc(TENANT_JWKS_MAX + 1);
	struct tenant t;
	size_t len;
	char kwhy[300], path[PATH_LEN];
	int r;
	if (buf == NULL)
		return SV_ERR_NOMEM;
	if ((r = read_jwks(file, buf, &len, why, why_len)) != SV_OK)
		goto out;
	if ((r = tenant_parse_jwks(&t, name, buf, len, kwhy, sizeof(kwhy))) != SV_OK) {
		snprintf(why, why_len, "%s: %s; nothing was changed", file, kwhy);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s%s", dir, name, TENANT_FILE_SUFFIX);
	if (rotate) {
		struct tenant_set set;
		const struct tenant *cur = NULL;
		r = tenant_set_load_dir(&set, dir, kwhy, sizeof(kwhy));
		if (r == SV_OK && (cur = tenant_set_find(&set, name, strlen(name), NULL)) != NULL) {
			for (size_t i = 0; i < cur->n_keys; i++)
				if (tenant_find_key(&t, cur->keys[i].kid,
				                    strlen(cur->keys[i].kid)) == NULL)
					printf("key removed: %s\n", cur->keys[i].kid);
			for (size_t i = 0; i < t.n_keys; i++)
				if (tenant_find_key(cur, t.keys[i].kid, strlen(t.keys[i].kid)) ==
				    NULL)
					printf("key added: %s\n", t.keys[i].kid);
		}
		tenant_set_free(&set);
		if (r == SV_OK && cur == NULL) {
			snprintf(why, why_len, "no tenant %s in %s; use `tenant add`", name, dir);
			r = SV_ERR_NOTFOUND;
		} else if (r != SV_OK) {
			snprintf(why, why_len, "%s; fix the directory first", kwhy);
		}
	}
	tenant_clear(&t);
	if (r == SV_OK)
		r = write_tenant(dir, name, buf, len, rotate, why, why_len);
	if (r == SV_OK) {
		printf("%s tenant %s (%s)\n", rotate ? "rotated" : "added", name, path);
		r = check_dir(dir, 0, why, why_len);
	}
out:
	free(buf);
	return r;
}

static int remove_tenant(const char *dir, const char *name, char *why, size_t why_len)
{
	char path[PATH_LEN];
	snprintf(path, sizeof(path), "%s/%s%s", dir, name, TENANT_FILE_SUFFIX);
	if (unlink(path) != 0) {
		int e = errno;
		snprintf(why, why_len, "cannot remove tenant %s (%s): %s", name, path, strerror(e));
		return e == ENOENT ? SV_ERR_NOTFOUND : SV_ERR_IO;
	}
	if (fsync_dir(dir) != 0) {
		snprintf(why, why_len, "removed %s but cannot fsync %s: %s", path, dir,
		         strerror(errno));
		return SV_ERR_IO;
	}
	printf("removed tenant %s\n", name);
	return check_dir(dir, 0, why, why_len);
}

static int keygen(const char *name, const char *out, const char *alg, const char *kid, char *why,
                  size_t why_len)
{
	struct admin_jwk k;
	enum tenant_key_type type;
	if (strcmp(alg, "EdDSA") == 0) {
		type = TENANT_KEY_ED25519;
	} else if (strcmp(alg, "ES256") == 0) {
		type = TENANT_KEY_P256;
	} else {
		snprintf(why, why_len, "--alg must be EdDSA or ES256");
		return SV_ERR_CONFIG;
	}
	int r = admin_jwk_generate(&k, type, kid);
	if (r != SV_OK) {
		snprintf(why, why_len, "cannot make a key (%s)",
		         r == SV_ERR_RANGE ? "--kid must be 1..128 characters" : sv_strerror(r));
		return r == SV_ERR_RANGE ? SV_ERR_CONFIG : r;
	}
	char *pub = admin_jwk_public_jwks(&k);
	r = pub == NULL ? SV_ERR_NOMEM : admin_jwk_write_private(&k, out, why, why_len);
	if (r == SV_OK) {
		/* The public set must be one that `tenant add` accepts. */
		struct tenant t;
		char kwhy[200];
		r = tenant_parse_jwks(&t, name, (const uint8_t *)pub, strlen(pub), kwhy,
		                      sizeof(kwhy));
		tenant_clear(&t);
		if (r != SV_OK)
			snprintf(why, why_len, "internal error: the new key does not parse: %s",
			         kwhy);
	}
	if (r == SV_OK) {
		printf("%s\n", pub);
		fprintf(stderr, "wrote the private key of tenant %s, kid %s, to %s\n", name, k.kid,
		        out);
	}
	free(pub);
	admin_jwk_free(&k);
	return r;
}

int admin_tenant_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'D'}, {"out", required_argument, NULL, 'o'},
	    {"alg", required_argument, NULL, 'a'}, {"kid", required_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
	};
	const char *dir = TENANT_DIR_DEFAULT, *out = NULL, *alg = "EdDSA", *kid = NULL;
	char why[4 * PATH_LEN] = "";
	int c, other = 0;
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return ADMIN_EX_OK;
	}
	if (argc < 2)
		return admin_bad_args("tenant", usage);
	const char *verb = argv[1];
	argc--;
	argv++;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 'o': out = optarg; break;
		case 'a': alg = optarg; break;
		case 'k': kid = optarg; break;
		case 'h': usage(stdout); return ADMIN_EX_OK;
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	int nargs = argc - optind, is_keygen = strcmp(verb, "keygen") == 0;
	const char *name = nargs >= 1 ? argv[optind] : ""; /* "" only for list, which takes none */
	if (strlen(dir) > DIR_MAX) {
		fprintf(stderr, "%s: --dir is longer than %d bytes\n", ADMIN_PROG, DIR_MAX);
		return ADMIN_EX_USAGE;
	}
	if (other || (!is_keygen && (out != NULL || kid != NULL)) || (is_keygen && out == NULL))
		return admin_bad_args("tenant", usage);
	if (nargs >= 1 && !tenant_name_valid(name)) {
		fprintf(
		    stderr,
		    "%s: invalid tenant name '%s': 1..%d of a-z 0-9 . _ -, starting with a letter "
		    "or digit\n",
		    ADMIN_PROG, name, TENANT_NAME_MAX);
		return ADMIN_EX_USAGE;
	}
	if (sodium_init() < 0)
		return admin_finish(SV_ERR_INTERNAL, "libsodium could not be initialised");
	int r;
	if (strcmp(verb, "add") == 0 && nargs == 2)
		r = add_or_rotate(dir, name, argv[optind + 1], 0, why, sizeof(why));
	else if (strcmp(verb, "rotate") == 0 && nargs == 2)
		r = add_or_rotate(dir, name, argv[optind + 1], 1, why, sizeof(why));
	else if (strcmp(verb, "remove") == 0 && nargs == 1)
		r = remove_tenant(dir, name, why, sizeof(why));
	else if (strcmp(verb, "list") == 0 && nargs == 0)
		r = check_dir(dir, 1, why, sizeof(why));
	else if (is_keygen && nargs == 1)
		r = keygen(name, out, alg, kid, why, sizeof(why));
	else
		return admin_bad_args("tenant", usage);
	return admin_finish(r, why);
}
