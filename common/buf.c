#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"

int sv_buf_init(struct sv_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
	return SV_OK;
}

void sv_buf_from(struct sv_buf *b, const uint8_t *data, size_t len)
{
	memset(b, 0, sizeof(*b));
	b->data = (uint8_t *)data;
	b->cap = b->len = b->max = len;
	b->borrowed = 1;
}

void sv_buf_free(struct sv_buf *b)
{
	if (!b->borrowed && b->data != NULL) {
		sodium_memzero(b->data, b->cap);
		free(b->data);
	}
	size_t max = b->borrowed ? 0 : b->max;
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void sv_buf_reset(struct sv_buf *b)
{
	if (!b->borrowed && b->data != NULL)
		sodium_memzero(b->data, b->cap);
	b->off = b->len = 0;
}

static int grow(struct sv_buf *b, size_t n)
{
	if (b->borrowed)
		return SV_ERR_INTERNAL;
	if (n > b->max - b->len)
		return SV_ERR_RANGE;
	size_t need = b->len + n;
	if (need <= b->cap)
		return SV_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > b->max / 2 ? b->max : cap * 2;
	uint8_t *p = malloc(cap);
	if (p == NULL)
		return SV_ERR_NOMEM;
	if (b->data != NULL) {
		memcpy(p, b->data, b->len);
		sodium_memzero(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return SV_OK;
}

int sv_buf_reserve(struct sv_buf *b, size_t n, uint8_t **out)
{
	int r = grow(b, n);
	if (r != 0)
		return r;
	*out = b->data + b->len;
	b->len += n;
	return SV_OK;
}

int sv_buf_put(struct sv_buf *b, const void *p, size_t n)
{
	uint8_t *dst;
	int r = sv_buf_reserve(b, n, &dst);
	if (r != 0)
		return r;
	if (n > 0)
		memcpy(dst, p, n);
	return SV_OK;
}

int sv_buf_put_u8(struct sv_buf *b, uint8_t v)
{
	return sv_buf_put(b, &v, 1);
}

int sv_buf_put_u16(struct sv_buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	return sv_buf_put(b, x, sizeof(x));
}

int sv_buf_put_u32(struct sv_buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	return sv_buf_put(b, x, sizeof(x));
}

int sv_buf_put_u64(struct sv_buf *b, uint64_t v)
{
	int r = sv_buf_put_u32(b, (uint32_t)(v >> 32));
	return r != 0 ? r : sv_buf_put_u32(b, (uint32_t)v);
}

int sv_buf_put_str16(struct sv_buf *b, const void *p, size_t n)
{
	if (n > UINT16_MAX)
		return SV_ERR_RANGE;
	if (n + 2 > b->max - b->len)
		return SV_ERR_RANGE;
	int r = sv_buf_put_u16(b, (uint16_t)n);
	return r != 0 ? r : sv_buf_put(b, p, n);
}

int sv_buf_get_ref(struct sv_buf *b, size_t n, const uint8_t **p)
{
	if (n > sv_buf_remaining(b))
		return SV_ERR_INVALID;
	*p = b->data + b->off;
	b->off += n;
	return SV_OK;
}

int sv_buf_get(struct sv_buf *b, void *p, size_t n)
{
	const uint8_t *src;
	int r = sv_buf_get_ref(b, n, &src);
	if (r != 0)
		return r;
	if (n > 0)
		memcpy(p, src, n);
	return SV_OK;
}

int sv_buf_get_u8(struct sv_buf *b, uint8_t *v)
{
	return sv_buf_get(b, v, 1);
}

int sv_buf_get_u16(struct sv_buf *b, uint16_t *v)
{
	const uint8_t *x;
	int r = sv_buf_get_ref(b, 2, &x);
	if (r != 0)
		return r;
	*v = (uint16_t)((x[0] << 8) | x[1]);
	return SV_OK;
}

int sv_buf_get_u32(struct sv_buf *b, uint32_t *v)
{
	const uint8_t *x;
	int r = sv_buf_get_ref(b, 4, &x);
	if (r != 0)
		return r;
	*v = ((uint32_t)x[0] << 24) | ((uint32_t)x[1] << 16) | ((uint32_t)x[2] << 8) | x[3];
	return SV_OK;
}

int sv_buf_get_u64(struct sv_buf *b, uint64_t *v)
{
	if (sv_buf_remaining(b) < 8)
		return SV_ERR_INVALID;
	uint32_t hi, lo;
	if (sv_buf_get_u32(b, &hi) != 0 || sv_buf_get_u32(b, &lo) != 0)
		return SV_ERR_INTERNAL;
	*v = ((uint64_t)hi << 32) | lo;
	return SV_OK;
}

int sv_buf_get_str16(struct sv_buf *b, size_t max, const uint8_t **p, size_t *n)
{
	size_t off = b->off;
	uint16_t len;
	int r = sv_buf_get_u16(b, &len);
	if (r != 0)
		return r;
	if (len > max) {
		b->off = off;
		return SV_ERR_RANGE;
	}
	if ((r = sv_buf_get_ref(b, len, p)) != 0) {
		b->off = off;
		return r;
	}
	*n = len;
	return SV_OK;
}

int sv_buf_expect_end(const struct sv_buf *b)
{
	return sv_buf_remaining(b) == 0 ? SV_OK : SV_ERR_INVALID;
}
