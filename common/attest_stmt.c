#include "common/attest_stmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"

#define TPM_CC_POLICY_PCR       0x0000017fu
#define TPM_CC_POLICY_AUTHORIZE 0x0000016au

const char *const attest_binary_names[ATTEST_NBINARIES] = {
    "sealvaultd",
    "sealvault-enclave",
    "sealvault-broker",
};

void attest_stmt_encode(uint8_t out[static ATTEST_STMT_LEN], const struct attest_stmt *s)
{
	uint8_t *p = out;
	memcpy(p, ATTEST_STMT_MAGIC, ATTEST_STMT_MAGIC_LEN);
	p += ATTEST_STMT_MAGIC_LEN;
	memcpy(p, s->server_public_key, ATTEST_HASH_LEN);
	p += ATTEST_HASH_LEN;
	memcpy(p, s->policy_hash, ATTEST_HASH_LEN);
	p += ATTEST_HASH_LEN;
	memcpy(p, s->build_hash, ATTEST_HASH_LEN);
	p += ATTEST_HASH_LEN;
	memcpy(p, s->init_identity, ATTEST_HASH_LEN);
}

int attest_stmt_decode(struct attest_stmt *s, const uint8_t *in, size_t len)
{
	if (len != ATTEST_STMT_LEN || memcmp(in, ATTEST_STMT_MAGIC, ATTEST_STMT_MAGIC_LEN) != 0)
		return SV_ERR_INVALID;
	const uint8_t *p = in + ATTEST_STMT_MAGIC_LEN;
	memcpy(s->server_public_key, p, ATTEST_HASH_LEN);
	memcpy(s->policy_hash, p + ATTEST_HASH_LEN, ATTEST_HASH_LEN);
	memcpy(s->build_hash, p + 2 * ATTEST_HASH_LEN, ATTEST_HASH_LEN);
	memcpy(s->init_identity, p + 3 * ATTEST_HASH_LEN, ATTEST_HASH_LEN);
	return SV_OK;
}

int attest_file_sha256_fd(int fd, uint8_t out[static ATTEST_HASH_LEN])
{
	crypto_hash_sha256_state st;
	uint8_t chunk[16384];
	off_t off = 0;

	crypto_hash_sha256_init(&st);
	for (;;) {
		ssize_t n = pread(fd, chunk, sizeof(chunk), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return SV_ERR_IO;
		if (n == 0)
			break;
		crypto_hash_sha256_update(&st, chunk, (unsigned long long)n);
		off += n;
	}
	crypto_hash_sha256_final(&st, out);
	return SV_OK;
}

void attest_build_hash_digests(const uint8_t digests[ATTEST_NBINARIES][ATTEST_HASH_LEN],
                               uint8_t out[static ATTEST_HASH_LEN])
{
	crypto_hash_sha256_state st;
	static const uint8_t zero = 0;

	crypto_hash_sha256_init(&st);
	for (size_t i = 0; i < ATTEST_NBINARIES; i++) {
		crypto_hash_sha256_update(&st, (const uint8_t *)attest_binary_names[i],
		                          strlen(attest_binary_names[i]));
		crypto_hash_sha256_update(&st, &zero, 1);
		crypto_hash_sha256_update(&st, digests[i], ATTEST_HASH_LEN);
	}
	crypto_hash_sha256_final(&st, out);
}

int attest_build_hash_fds(const int fds[static ATTEST_NBINARIES],
                          uint8_t out[static ATTEST_HASH_LEN])
{
	uint8_t digests[ATTEST_NBINARIES][ATTEST_HASH_LEN];
	int rc;

	for (size_t i = 0; i < ATTEST_NBINARIES; i++) {
		rc = attest_file_sha256_fd(fds[i], digests[i]);
		if (rc < 0)
			return rc;
	}
	attest_build_hash_digests((const uint8_t(*)[ATTEST_HASH_LEN])digests, out);
	return SV_OK;
}

int attest_build_hash_paths(const char *const paths[static ATTEST_NBINARIES],
                            uint8_t out[static ATTEST_HASH_LEN])
{
	int fds[ATTEST_NBINARIES] = {-1, -1, -1};
	int rc = SV_OK;

	for (size_t i = 0; i < ATTEST_NBINARIES; i++) {
		fds[i] = open(paths[i], O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			rc = SV_ERR_IO;
			goto out;
		}
	}
	rc = attest_build_hash_fds(fds, out);
out:
	for (size_t i = 0; i < ATTEST_NBINARIES; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

void attest_init_identity(const uint8_t ek_name[static ATTEST_NAME_LEN],
                          const uint8_t ak_name[static ATTEST_NAME_LEN],
                          const uint8_t id_name[static ATTEST_NAME_LEN],
                          uint8_t out[static ATTEST_HASH_LEN])
{
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)ATTEST_INIT_MAGIC,
	                          strlen(ATTEST_INIT_MAGIC));
	crypto_hash_sha256_update(&st, ek_name, ATTEST_NAME_LEN);
	crypto_hash_sha256_update(&st, ak_name, ATTEST_NAME_LEN);
	crypto_hash_sha256_update(&st, id_name, ATTEST_NAME_LEN);
	crypto_hash_sha256_final(&st, out);
}

int attest_name_from_public(const uint8_t *tpm2b_public, size_t len,
                            uint8_t name[static ATTEST_NAME_LEN])
{
	/* size(2) type(2) nameAlg(2) ... */
	if (len < 6)
		return SV_ERR_INVALID;
	size_t size = ((size_t)tpm2b_public[0] << 8) | tpm2b_public[1];
	if (size != len - 2)
		return SV_ERR_INVALID;
	uint16_t alg = (uint16_t)((tpm2b_public[4] << 8) | tpm2b_public[5]);
	if (alg != ATTEST_ALG_SHA256)
		return SV_ERR_INVALID;
	name[0] = (uint8_t)(ATTEST_ALG_SHA256 >> 8);
	name[1] = (uint8_t)(ATTEST_ALG_SHA256 & 0xff);
	crypto_hash_sha256(name + 2, tpm2b_public + 2, size);
	return SV_OK;
}

static int parse_pcr_number(const char **sp, unsigned *out)
{
	const char *s = *sp;
	unsigned v = 0;

	if (*s < '0' || *s > '9')
		return SV_ERR_INVALID;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (unsigned)(*s - '0');
		if (v >= ATTEST_PCR_COUNT)
			return SV_ERR_RANGE;
		s++;
	}
	*sp = s;
	*out = v;
	return SV_OK;
}

int attest_pcrs_parse(const char *list, uint32_t *mask)
{
	uint32_t m = 0;
	const char *s = list;
	int rc;

	if (list == NULL || *list == '\0')
		return SV_ERR_INVALID;
	for (;;) {
		unsigned lo, hi;
		rc = parse_pcr_number(&s, &lo);
		if (rc < 0)
			return rc;
		hi = lo;
		if (*s == '-') {
			s++;
			rc = parse_pcr_number(&s, &hi);
			if (rc < 0)
				return rc;
			if (hi < lo)
				return SV_ERR_INVALID;
		}
		for (unsigned i = lo; i <= hi; i++)
			m |= 1u << i;
		if (*s == '\0')
			break;
		if (*s != ',')
			return SV_ERR_INVALID;
		s++;
	}
	*mask = m;
	return SV_OK;
}

int attest_pcrs_format(uint32_t mask, char *out, size_t outlen)
{
	size_t used = 0;

	if (outlen == 0)
		return SV_ERR_RANGE;
	out[0] = '\0';
	for (unsigned i = 0; i < ATTEST_PCR_COUNT; i++) {
		if (!(mask & (1u << i)))
			continue;
		int n = snprintf(out + used, outlen - used, "%s%u", used ? "," : "", i);
		if (n < 0 || (size_t)n >= outlen - used)
			return SV_ERR_RANGE;
		used += (size_t)n;
	}
	return SV_OK;
}

unsigned attest_pcrs_count(uint32_t mask)
{
	return (unsigned)__builtin_popcount(mask & ((1u << ATTEST_PCR_COUNT) - 1));
}

void attest_pcrsel_marshal(uint32_t mask, uint8_t out[static ATTEST_PCRSEL_LEN])
{
	out[0] = 0;
	out[1] = 0;
	out[2] = 0;
	out[3] = 1; /* count */
	out[4] = (uint8_t)(ATTEST_ALG_SHA256 >> 8);
	out[5] = (uint8_t)(ATTEST_ALG_SHA256 & 0xff);
	out[6] = 3; /* sizeofSelect */
	out[7] = (uint8_t)(mask & 0xff);
	out[8] = (uint8_t)((mask >> 8) & 0xff);
	out[9] = (uint8_t)((mask >> 16) & 0xff);
}

int attest_pcrsel_parse(const uint8_t *in, size_t len, uint32_t *mask)
{
	struct sv_buf b;
	uint32_t count;
	uint16_t alg;
	uint8_t size, sel[3];

	sv_buf_from(&b, in, len);
	if (sv_buf_get_u32(&b, &count) < 0 || count != 1 || sv_buf_get_u16(&b, &alg) < 0 ||
	    alg != ATTEST_ALG_SHA256 || sv_buf_get_u8(&b, &size) < 0 || size != 3 ||
	    sv_buf_get(&b, sel, sizeof(sel)) < 0 || sv_buf_expect_end(&b) < 0)
		return SV_ERR_INVALID;
	*mask = (uint32_t)sel[0] | ((uint32_t)sel[1] << 8) | ((uint32_t)sel[2] << 16);
	return SV_OK;
}

void attest_pcr_digest(uint32_t mask, const uint8_t (*values)[ATTEST_HASH_LEN],
                       uint8_t out[static ATTEST_HASH_LEN])
{
	crypto_hash_sha256_state st;
	unsigned n = attest_pcrs_count(mask);

	crypto_hash_sha256_init(&st);
	for (unsigned i = 0; i < n; i++)
		crypto_hash_sha256_update(&st, values[i], ATTEST_HASH_LEN);
	crypto_hash_sha256_final(&st, out);
}

static void put_u32be(uint8_t out[4], uint32_t v)
{
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}

void attest_policy_pcr(uint32_t mask, const uint8_t (*values)[ATTEST_HASH_LEN],
                       uint8_t out[static ATTEST_HASH_LEN])
{
	crypto_hash_sha256_state st;
	uint8_t zero[ATTEST_HASH_LEN] = {0};
	uint8_t cc[4], sel[ATTEST_PCRSEL_LEN], pcr_digest[ATTEST_HASH_LEN];

	attest_pcr_digest(mask, values, pcr_digest);
	attest_pcrsel_marshal(mask, sel);
	put_u32be(cc, TPM_CC_POLICY_PCR);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, zero, sizeof(zero));
	crypto_hash_sha256_update(&st, cc, sizeof(cc));
	crypto_hash_sha256_update(&st, sel, sizeof(sel));
	crypto_hash_sha256_update(&st, pcr_digest, sizeof(pcr_digest));
	crypto_hash_sha256_final(&st, out);
}

void attest_policy_authorize_ref(const uint8_t key_name[static ATTEST_NAME_LEN], const uint8_t *ref,
                                 size_t ref_len, uint8_t out[static ATTEST_HASH_LEN])
{
	crypto_hash_sha256_state st;
	uint8_t zero[ATTEST_HASH_LEN] = {0};
	uint8_t cc[4], mid[ATTEST_HASH_LEN];

	/* PolicyUpdate(TPM_CC_PolicyAuthorize, keyName, policyRef): two hash steps from zero. */
	put_u32be(cc, TPM_CC_POLICY_AUTHORIZE);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, zero, sizeof(zero));
	crypto_hash_sha256_update(&st, cc, sizeof(cc));
	crypto_hash_sha256_update(&st, key_name, ATTEST_NAME_LEN);
	crypto_hash_sha256_final(&st, mid);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, mid, sizeof(mid));
	if (ref_len > 0)
		crypto_hash_sha256_update(&st, ref, ref_len);
	crypto_hash_sha256_final(&st, out);
}

void attest_policy_authorize(const uint8_t key_name[static ATTEST_NAME_LEN],
                             uint8_t out[static ATTEST_HASH_LEN])
{
	attest_policy_authorize_ref(key_name, NULL, 0, out);
}

void attest_policy_ahash_ref(const uint8_t approved[static ATTEST_HASH_LEN], const uint8_t *ref,
                             size_t ref_len, uint8_t out[static ATTEST_HASH_LEN])
{
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, approved, ATTEST_HASH_LEN);
	if (ref_len > 0)
		crypto_hash_sha256_update(&st, ref, ref_len);
	crypto_hash_sha256_final(&st, out);
}

void attest_policy_ahash(const uint8_t approved[static ATTEST_HASH_LEN],
                         uint8_t out[static ATTEST_HASH_LEN])
{
	attest_policy_ahash_ref(approved, NULL, 0, out);
}
