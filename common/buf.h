/*
 * A bounded byte buffer, after OpenSSH's sshbuf: every put/get checks bounds and returns 0 or a
 * negative SV_ERR_*; a failed get consumes nothing; free wipes the memory. Integers are big-endian.
 */
#ifndef SV_COMMON_BUF_H
#define SV_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

#define SV_WUR __attribute__((warn_unused_result))

struct sv_buf {
	uint8_t *data; /* storage: owned unless borrowed */
	size_t cap;    /* bytes allocated */
	size_t max;    /* hard upper bound on len */
	size_t off;    /* read position */
	size_t len;    /* bytes written */
	int borrowed;  /* 1: data points into caller memory, read-only */
};

/* Writable buffer that may grow up to max bytes. */
SV_WUR int sv_buf_init(struct sv_buf *b, size_t max);
/* Read-only view of caller memory; never freed or wiped by sv_buf_free. */
void sv_buf_from(struct sv_buf *b, const uint8_t *data, size_t len);
/* Wipes and frees owned storage; the struct is left empty and reusable after sv_buf_init. */
void sv_buf_free(struct sv_buf *b);
/* Wipes contents and rewinds; keeps storage. */
void sv_buf_reset(struct sv_buf *b);

static inline size_t sv_buf_remaining(const struct sv_buf *b)
{
	return b->len - b->off;
}
/* NULL for a buffer without storage (an empty one never written to): NULL + 0 is undefined. */
static inline const uint8_t *sv_buf_ptr(const struct sv_buf *b)
{
	return b->data != NULL ? b->data + b->off : NULL;
}

SV_WUR int sv_buf_put(struct sv_buf *b, const void *p, size_t n);
SV_WUR int sv_buf_put_u8(struct sv_buf *b, uint8_t v);
SV_WUR int sv_buf_put_u16(struct sv_buf *b, uint16_t v);
SV_WUR int sv_buf_put_u32(struct sv_buf *b, uint32_t v);
SV_WUR int sv_buf_put_u64(struct sv_buf *b, uint64_t v);
/* u16 length prefix then bytes; n must fit in 16 bits. */
SV_WUR int sv_buf_put_str16(struct sv_buf *b, const void *p, size_t n);
/* Reserve n bytes at the end and return a pointer to them (valid until the next put). */
SV_WUR int sv_buf_reserve(struct sv_buf *b, size_t n, uint8_t **out);

SV_WUR int sv_buf_get(struct sv_buf *b, void *p, size_t n);
SV_WUR int sv_buf_get_u8(struct sv_buf *b, uint8_t *v);
SV_WUR int sv_buf_get_u16(struct sv_buf *b, uint16_t *v);
SV_WUR int sv_buf_get_u32(struct sv_buf *b, uint32_t *v);
SV_WUR int sv_buf_get_u64(struct sv_buf *b, uint64_t *v);
/* Points *p at n bytes inside the buffer (no copy) and consumes them. */
SV_WUR int sv_buf_get_ref(struct sv_buf *b, size_t n, const uint8_t **p);
/* u16 length prefix, then a reference to that many bytes; rejects lengths above max. */
SV_WUR int sv_buf_get_str16(struct sv_buf *b, size_t max, const uint8_t **p, size_t *n);
/* 0 when every byte was consumed, SV_ERR_INVALID when trailing bytes remain. */
SV_WUR int sv_buf_expect_end(const struct sv_buf *b);

#endif
