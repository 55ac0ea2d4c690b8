#include "common/reload.h"

#include <string.h>

#include "common/err.h"
#include "common/frame.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int check(const struct reload_msg *m)
{
	if (m->settings_len > RELOAD_SETTINGS_MAX || m->cert_len < 1 ||
	    m->cert_len > SV_FRAME_MAX || m->key_len < 1 || m->key_len > SV_FRAME_MAX)
		return SV_ERR_RANGE;
	if (m->settings_len > 0 && memchr(m->settings, '\0', m->settings_len) != NULL)
		return SV_ERR_INVALID;
	return SV_OK;
}

int reload_encode(uint8_t *out, size_t out_len, const struct reload_msg *m, size_t *written)
{
	int r = check(m);
	if (r != 0)
		return r;
	size_t total = RELOAD_OVERHEAD + m->settings_len + m->cert_len + m->key_len;
	if (out_len < total)
		return SV_ERR_RANGE;
	uint8_t *p = out;
	put32(p, (uint32_t)m->settings_len);
	if (m->settings_len > 0)
		memcpy(p + 4, m->settings, m->settings_len);
	p += 4 + m->settings_len;
	put32(p, (uint32_t)m->cert_len);
	memcpy(p + 4, m->cert, m->cert_len);
	p += 4 + m->cert_len;
	put32(p, (uint32_t)m->key_len);
	memcpy(p + 4, m->key, m->key_len);
	*written = total;
	return SV_OK;
}

/* One length-prefixed part at *off: its start and length, or SV_ERR_INVALID past the end. */
static int part(const uint8_t *p, size_t n, size_t *off, const uint8_t **start, size_t *len)
{
	if (n - *off < 4)
		return SV_ERR_INVALID;
	uint32_t l = get32(p + *off);
	*off += 4;
	if (l > n - *off)
		return SV_ERR_INVALID;
	*start = p + *off;
	*len = l;
	*off += l;
	return SV_OK;
}

int reload_decode(const uint8_t *p, size_t n, struct reload_msg *m)
{
	struct reload_msg d;
	const uint8_t *s;
	size_t off = 0;
	if (p == NULL && n > 0)
		return SV_ERR_INVALID;
	if (part(p, n, &off, &s, &d.settings_len) != 0 ||
	    part(p, n, &off, &d.cert, &d.cert_len) != 0 ||
	    part(p, n, &off, &d.key, &d.key_len) != 0 || off != n)
		return SV_ERR_INVALID;
	d.settings = (const char *)s;
	int r = check(&d);
	if (r != 0)
		return r;
	*m = d;
	return SV_OK;
}
