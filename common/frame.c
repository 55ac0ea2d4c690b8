#include "common/frame.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"
#include "common/msg.h"

int frame_type_known(uint16_t type)
{
	/* a switch rather than msg_flags(): two rows with one number do not compile */
	switch (type) {
#define KNOWN_ROUTE(name, num, method, path, ep, handler, flags) case SV_MSG_##name:
#define KNOWN_FRAME(name, num, flags)                            case SV_MSG_##name:
		SV_MSG_TABLE(KNOWN_ROUTE, KNOWN_FRAME)
#undef KNOWN_ROUTE
#undef KNOWN_FRAME
		return 1;
	default: return 0;
	}
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int frame_encode(uint8_t *out, size_t out_len, uint16_t type, uint32_t req_id,
                 const uint8_t *payload, size_t len, size_t *written)
{
	if (!frame_type_known(type))
		return SV_ERR_INVALID;
	if (len > SV_FRAME_MAX || out_len < SV_FRAME_HDR_LEN || len > out_len - SV_FRAME_HDR_LEN)
		return SV_ERR_RANGE;
	if (len > 0 && payload == NULL)
		return SV_ERR_INVALID;
	put16(out, SV_IPC_VERSION);
	put16(out + 2, type);
	put32(out + 4, (uint32_t)len);
	put32(out + 8, req_id);
	if (len > 0)
		memmove(out + SV_FRAME_HDR_LEN, payload, len);
	*written = SV_FRAME_HDR_LEN + len;
	return SV_OK;
}

int frame_decode(const uint8_t *msg, size_t n, struct sv_frame *out)
{
	if (n < SV_FRAME_HDR_LEN)
		return SV_ERR_INVALID;
	if (n > SV_FRAME_HDR_LEN + SV_FRAME_MAX)
		return SV_ERR_RANGE;
	uint16_t version = get16(msg);
	uint16_t type = get16(msg + 2);
	uint32_t len = get32(msg + 4);
	if (version != SV_IPC_VERSION)
		return SV_ERR_PROTOCOL;
	if (!frame_type_known(type))
		return SV_ERR_PROTOCOL;
	if (len > SV_FRAME_MAX)
		return SV_ERR_RANGE;
	if (len != n - SV_FRAME_HDR_LEN)
		return SV_ERR_INVALID;
	out->version = version;
	out->type = type;
	out->len = len;
	out->req_id = get32(msg + 8);
	out->payload = msg + SV_FRAME_HDR_LEN;
	return SV_OK;
}

int frame_send(int fd, uint16_t type, uint32_t req_id, const uint8_t *payload, size_t len)
{
	static uint8_t out[SV_FRAME_HDR_LEN + SV_FRAME_MAX];
	size_t n;
	int r = frame_encode(out, sizeof(out), type, req_id, payload, len, &n);
	if (r != 0)
		return r;
	ssize_t w;
	do {
		w = write(fd, out, n);
	} while (w < 0 && errno == EINTR);
	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		r = SV_ERR_BUSY;
	else if (w < 0 || (size_t)w != n)
		r = SV_ERR_IO;
	sodium_memzero(out, n);
	return r;
}

int frame_recv(int fd, uint8_t buf[static SV_FRAME_BUF_LEN], struct sv_frame *out)
{
	ssize_t n;
	do {
		n = read(fd, buf, SV_FRAME_BUF_LEN);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? SV_ERR_BUSY : SV_ERR_IO;
	if (n == 0) {
		errno = 0;
		return SV_ERR_IO;
	}
	return frame_decode(buf, (size_t)n, out);
}
