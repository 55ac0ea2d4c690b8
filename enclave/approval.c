/*
 * Approved policies and their files (approval.h). Shared by the store (the vault key's approval,
 * read before the sandbox), the attestation evidence (attest-policy.bin) and sealvault-admin.
 */
#include "enclave/approval.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/attest_stmt.h"
#include "common/err.h"
#include "enclave/tpm.h"

#define MAGIC_VAULT "SVVKPOL1"
#define MAGIC_LEN   8

int approval_get_blob(struct sv_buf *b, struct attest_blob *out)
{
	const uint8_t *p;
	size_t n;
	int r = sv_buf_get_str16(b, sizeof(out->data), &p, &n);
	if (r != SV_OK)
		return r;
	memcpy(out->data, p, n);
	out->len = n;
	return SV_OK;
}

int approval_encode(const struct attest_policy *pol, struct sv_buf *b)
{
	unsigned n = attest_pcrs_count(pol->boot_pcrs);
	int r = sv_buf_put_u32(b, pol->boot_pcrs);
	for (unsigned i = 0; r == SV_OK && i < n; i++)
		r = sv_buf_put(b, pol->values[i], ATTEST_HASH_LEN);
	if (r == SV_OK)
		r = sv_buf_put(b, pol->approved, ATTEST_HASH_LEN);
	if (r == SV_OK)
		r = sv_buf_put_str16(b, pol->signature.data, pol->signature.len);
	return r;
}

int approval_decode(struct sv_buf *b, struct attest_policy *pol)
{
	uint8_t check[ATTEST_HASH_LEN];
	memset(pol, 0, sizeof(*pol));
	if (sv_buf_get_u32(b, &pol->boot_pcrs) != SV_OK || pol->boot_pcrs == 0 ||
	    pol->boot_pcrs >= (1u << ATTEST_PCR_COUNT))
		return SV_ERR_INVALID;
	for (unsigned i = 0; i < attest_pcrs_count(pol->boot_pcrs); i++)
		if (sv_buf_get(b, pol->values[i], ATTEST_HASH_LEN) != SV_OK)
			return SV_ERR_INVALID;
	if (sv_buf_get(b, pol->approved, ATTEST_HASH_LEN) != SV_OK ||
	    approval_get_blob(b, &pol->signature) != SV_OK)
		return SV_ERR_INVALID;
	attest_policy_pcr(pol->boot_pcrs, (const uint8_t(*)[ATTEST_HASH_LEN])pol->values, check);
	return memcmp(check, pol->approved, ATTEST_HASH_LEN) == 0 ? SV_OK : SV_ERR_INVALID;
}

int approval_vault_encode(const struct approval_vault *v, struct sv_buf *b)
{
	int r = sv_buf_put(b, MAGIC_VAULT, MAGIC_LEN);
	if (r == SV_OK)
		r = approval_encode(&v->pol, b);
	if (r == SV_OK)
		r = sv_buf_put_str16(b, v->key.data, v->key.len);
	return r;
}

int approval_vault_decode(const uint8_t *p, size_t len, struct approval_vault *v)
{
	struct sv_buf b;
	uint8_t magic[MAGIC_LEN], name[ATTEST_NAME_LEN];
	memset(v, 0, sizeof(*v));
	sv_buf_from(&b, p, len);
	if (sv_buf_get(&b, magic, MAGIC_LEN) != SV_OK ||
	    memcmp(magic, MAGIC_VAULT, MAGIC_LEN) != 0 || approval_decode(&b, &v->pol) != SV_OK ||
	    approval_get_blob(&b, &v->key) != SV_OK || sv_buf_expect_end(&b) != SV_OK ||
	    attest_name_from_public(v->key.data, v->key.len, name) != SV_OK)
		return SV_ERR_INVALID;
	return SV_OK;
}

int approval_vault_policy(const struct attest_blob *key, uint8_t out[ATTEST_HASH_LEN])
{
	uint8_t name[ATTEST_NAME_LEN];
	if (attest_name_from_public(key->data, key->len, name) != SV_OK)
		return SV_ERR_INVALID;
	attest_policy_authorize_ref(name, (const uint8_t *)ATTEST_REF_VAULT_KEY,
	                            ATTEST_REF_VAULT_KEY_LEN, out);
	return SV_OK;
}

void approval_vault_tpm(const struct approval_vault *v, struct tpm_approval *a)
{
	*a = (struct tpm_approval){.pcrs = v->pol.boot_pcrs,
	                           .approved = v->pol.approved,
	                           .ref = (const uint8_t *)ATTEST_REF_VAULT_KEY,
	                           .ref_len = ATTEST_REF_VAULT_KEY_LEN,
	                           .key = v->key.data,
	                           .key_len = v->key.len,
	                           .sig = v->pol.signature.data,
	                           .sig_len = v->pol.signature.len};
}

int approval_vault_load(int dfd, const char *dir, struct approval_vault *v, char *why,
                        size_t why_len)
{
	uint8_t buf[2 * ATTEST_BLOB_MAX + ATTEST_PCR_COUNT * ATTEST_HASH_LEN + 64];
	size_t n = 0;
	int r = approval_read(dfd, dir, APPROVAL_FN_VAULT, buf, sizeof(buf), &n, why, why_len);
	if (r == SV_OK && (r = approval_vault_decode(buf, n, v)) != SV_OK)
		snprintf(
		    why, why_len,
		    "%s/%s is damaged (does not decode, or its digest does not match its PCR "
		    "values): approve the PCR values again with sealvault-admin authorize-pcrs",
		    dir, APPROVAL_FN_VAULT);
	return r;
}

int approval_vault_save(int dfd, const char *dir, const struct approval_vault *v, char *why,
                        size_t why_len)
{
	struct sv_buf b;
	int r = sv_buf_init(&b, APPROVAL_FILE_MAX);
	if (r != SV_OK)
		return r;
	if ((r = approval_vault_encode(v, &b)) == SV_OK)
		r = approval_replace(dfd, dir, APPROVAL_FN_VAULT, &b, why, why_len);
	sv_buf_free(&b);
	return r;
}

int approval_write(int dfd, const char *dir, const char *name, const struct sv_buf *b, int excl,
                   char *why, size_t why_len)
{
	int fd =
	    openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : O_TRUNC), 0600);
	if (fd < 0) {
		snprintf(why, why_len, "cannot create %s/%s: %s", dir, name, strerror(errno));
		return errno == EEXIST ? SV_ERR_EXISTS : SV_ERR_IO;
	}
	size_t done = 0;
	while (done < b->len) {
		ssize_t n = write(fd, b->data + done, b->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	int r = done == b->len && fsync(fd) == 0 ? SV_OK : SV_ERR_IO;
	if (r != SV_OK)
		snprintf(why, why_len, "cannot write %s/%s: %s", dir, name, strerror(errno));
	close(fd);
	return r;
}

int approval_replace(int dfd, const char *dir, const char *name, const struct sv_buf *b, char *why,
                     size_t why_len)
{
	char tmp[256];
	int r;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", name) >= sizeof(tmp))
		return SV_ERR_RANGE;
	if ((r = approval_write(dfd, dir, tmp, b, 0, why, why_len)) != SV_OK)
		return r;
	/* keep the owner (the vault's user) when root runs sealvault-admin: the old file's, or
	 * the directory's for a new file */
	struct stat old;
	if ((fstatat(dfd, name, &old, AT_SYMLINK_NOFOLLOW) == 0 || fstat(dfd, &old) == 0) &&
	    fchownat(dfd, tmp, old.st_uid, old.st_gid, AT_SYMLINK_NOFOLLOW) != 0 &&
	    errno != EPERM) {
		snprintf(why, why_len, "cannot give %s/%s its previous owner: %s", dir, name,
		         strerror(errno));
		(void)unlinkat(dfd, tmp, 0);
		return SV_ERR_IO;
	}
	if (renameat(dfd, tmp, dfd, name) != 0 || fsync(dfd) != 0) {
		snprintf(why, why_len, "cannot replace %s/%s: %s", dir, name, strerror(errno));
		(void)unlinkat(dfd, tmp, 0);
		return SV_ERR_IO;
	}
	return SV_OK;
}

int approval_read(int dfd, const char *dir, const char *name, uint8_t *buf, size_t max, size_t *len,
                  char *why, size_t why_len)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(why, why_len,
		         "cannot open %s/%s: %s (it is written by sealvault-admin init)", dir, name,
		         strerror(errno));
		return errno == ENOENT ? SV_ERR_NOTFOUND : SV_ERR_IO;
	}
	size_t n = 0;
	for (;;) {
		ssize_t k = read(fd, buf + n, max - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			close(fd);
			snprintf(why, why_len, "cannot read %s/%s: %s", dir, name, strerror(errno));
			return SV_ERR_IO;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n == max) {
			close(fd);
			snprintf(why, why_len, "%s/%s is too large for what it should hold", dir,
			         name);
			return SV_ERR_INVALID;
		}
	}
	close(fd);
	*len = n;
	return SV_OK;
}
