#include "common/attest_log.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"

int attest_log_read(int fd, uint8_t **out, size_t *len)
{
	size_t cap = 65536, n = 0;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		return SV_ERR_NOMEM;
	for (;;) {
		if (n == cap) {
			if (cap > ATTEST_LOG_MAX) {
				free(buf);
				return SV_ERR_RANGE;
			}
			uint8_t *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				free(buf);
				return SV_ERR_NOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t k = pread(fd, buf + n, cap - n, (off_t)n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			free(buf);
			return SV_ERR_IO;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (n > ATTEST_LOG_MAX) {
		free(buf);
		return SV_ERR_RANGE;
	}
	*out = buf;
	*len = n;
	return SV_OK;
}

char *attest_log_b64(const uint8_t *p, size_t n)
{
	size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(cap);
	if (s != NULL)
		sodium_bin2base64(s, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
	return s;
}
