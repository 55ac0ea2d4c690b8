/*
 * TCTI over one descriptor. A TPM command is a 10-byte header (tag u16, size u32, code u32) and
 * a body; the response has the same header shape and its size field bounds the read. One command
 * is outstanding at a time, so the whole response is read into a fixed buffer and handed out by
 * receive(), which ESYS may call first with response == NULL to learn the size.
 */
#include "enclave/tcti-fd.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "common/err.h"

#define TCTI_FD_MAGIC    0x73766663746931ULL /* "svfcti1" */
#define TPM_HDR_LEN      10
#define TPM_MAX_RESPONSE 4096

enum tcti_state { ST_IDLE, ST_SENT, ST_RECEIVED };

struct tcti_fd {
	TSS2_TCTI_CONTEXT_COMMON_V2 common; /* must be first */
	int fd;
	enum tcti_state state;
	size_t resp_len;
	uint8_t resp[TPM_MAX_RESPONSE];
};

static struct tcti_fd *from_ctx(TSS2_TCTI_CONTEXT *ctx)
{
	struct tcti_fd *t = (struct tcti_fd *)ctx;
	if (t == NULL || t->common.v1.magic != TCTI_FD_MAGIC)
		return NULL;
	return t;
}

static TSS2_RC fd_transmit(TSS2_TCTI_CONTEXT *ctx, size_t size, const uint8_t *cmd)
{
	struct tcti_fd *t = from_ctx(ctx);
	if (t == NULL)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	if (cmd == NULL)
		return TSS2_TCTI_RC_BAD_REFERENCE;
	if (t->state != ST_IDLE)
		return TSS2_TCTI_RC_BAD_SEQUENCE;
	if (size < TPM_HDR_LEN)
		return TSS2_TCTI_RC_BAD_VALUE;
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(t->fd, cmd + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return TSS2_TCTI_RC_IO_ERROR;
		done += (size_t)n;
	}
	t->state = ST_SENT;
	return TSS2_RC_SUCCESS;
}

/* Reads until a full response (as declared by its header) is buffered. */
static TSS2_RC read_response(struct tcti_fd *t, int32_t timeout)
{
	size_t have = 0, want = TPM_HDR_LEN;
	while (have < want) {
		struct pollfd p = {.fd = t->fd, .events = POLLIN};
		int r = poll(&p, 1, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return TSS2_TCTI_RC_IO_ERROR;
		if (r == 0)
			return TSS2_TCTI_RC_TRY_AGAIN;
		ssize_t n = read(t->fd, t->resp + have, sizeof(t->resp) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return TSS2_TCTI_RC_IO_ERROR;
		have += (size_t)n;
		if (have >= TPM_HDR_LEN) {
			const uint8_t *h = t->resp;
			uint32_t sz = (uint32_t)h[2] << 24 | (uint32_t)h[3] << 16 |
			              (uint32_t)h[4] << 8 | h[5];
			if (sz < TPM_HDR_LEN || sz > sizeof(t->resp))
				return TSS2_TCTI_RC_MALFORMED_RESPONSE;
			want = sz;
		}
	}
	if (have != want)
		return TSS2_TCTI_RC_MALFORMED_RESPONSE;
	t->resp_len = have;
	t->state = ST_RECEIVED;
	return TSS2_RC_SUCCESS;
}

static TSS2_RC fd_receive(TSS2_TCTI_CONTEXT *ctx, size_t *size, uint8_t *resp, int32_t timeout)
{
	struct tcti_fd *t = from_ctx(ctx);
	if (t == NULL)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	if (size == NULL)
		return TSS2_TCTI_RC_BAD_REFERENCE;
	if (t->state == ST_IDLE)
		return TSS2_TCTI_RC_BAD_SEQUENCE;
	if (t->state == ST_SENT) {
		TSS2_RC rc = read_response(t, timeout);
		if (rc != TSS2_RC_SUCCESS) {
			if (rc != TSS2_TCTI_RC_TRY_AGAIN)
				t->state = ST_IDLE;
			return rc;
		}
	}
	if (resp == NULL) {
		*size = t->resp_len;
		return TSS2_RC_SUCCESS;
	}
	if (*size < t->resp_len) {
		*size = t->resp_len;
		return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
	}
	memcpy(resp, t->resp, t->resp_len);
	*size = t->resp_len;
	t->resp_len = 0;
	t->state = ST_IDLE;
	return TSS2_RC_SUCCESS;
}

static void fd_finalize(TSS2_TCTI_CONTEXT *ctx)
{
	struct tcti_fd *t = from_ctx(ctx);
	if (t == NULL)
		return;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->common.v1.magic = 0;
}

static TSS2_RC fd_cancel(TSS2_TCTI_CONTEXT *ctx)
{
	return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static TSS2_RC fd_get_poll_handles(TSS2_TCTI_CONTEXT *ctx, TSS2_TCTI_POLL_HANDLE *handles,
                                   size_t *num)
{
	struct tcti_fd *t = from_ctx(ctx);
	if (t == NULL)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	if (num == NULL)
		return TSS2_TCTI_RC_BAD_REFERENCE;
	if (handles != NULL) {
		if (*num < 1)
			return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
		handles[0].fd = t->fd;
		handles[0].events = POLLIN;
	}
	*num = 1;
	return TSS2_RC_SUCCESS;
}

static TSS2_RC fd_set_locality(TSS2_TCTI_CONTEXT *ctx, uint8_t locality)
{
	return locality == 0 ? TSS2_RC_SUCCESS : TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static TSS2_RC fd_make_sticky(TSS2_TCTI_CONTEXT *ctx, TPM2_HANDLE *handle, uint8_t sticky)
{
	return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

int tcti_fd_new(TSS2_TCTI_CONTEXT **out, int fd)
{
	struct tcti_fd *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return SV_ERR_NOMEM;
	t->common.v1.magic = TCTI_FD_MAGIC;
	t->common.v1.version = 2;
	t->common.v1.transmit = fd_transmit;
	t->common.v1.receive = fd_receive;
	t->common.v1.finalize = fd_finalize;
	t->common.v1.cancel = fd_cancel;
	t->common.v1.getPollHandles = fd_get_poll_handles;
	t->common.v1.setLocality = fd_set_locality;
	t->common.makeSticky = fd_make_sticky;
	t->fd = fd;
	t->state = ST_IDLE;
	*out = (TSS2_TCTI_CONTEXT *)t;
	return SV_OK;
}

void tcti_fd_free(TSS2_TCTI_CONTEXT *ctx)
{
	if (ctx == NULL)
		return;
	fd_finalize(ctx);
	free(ctx);
}

/* "host=H,port=P" in either order; both required; nothing else allowed. */
static int parse_swtpm(const char *conf, char *host, size_t host_len, char *port, size_t port_len)
{
	host[0] = port[0] = '\0';
	const char *p = conf;
	while (*p != '\0') {
		const char *end = strchr(p, ',');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n > 5 && strncmp(p, "host=", 5) == 0 && n - 5 < host_len) {
			memcpy(host, p + 5, n - 5);
			host[n - 5] = '\0';
		} else if (n > 5 && strncmp(p, "port=", 5) == 0 && n - 5 < port_len) {
			memcpy(port, p + 5, n - 5);
			port[n - 5] = '\0';
		} else {
			return SV_ERR_INVALID;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (host[0] == '\0' || port[0] == '\0' || strspn(port, "0123456789") != strlen(port))
		return SV_ERR_INVALID;
	return SV_OK;
}

static int connect_tcp(const char *host, const char *port, int *fd, char *why, size_t why_len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		snprintf(why, why_len, "TPM: cannot resolve swtpm host %s: %s", host,
		         gai_strerror(gai));
		return SV_ERR_IO;
	}
	int err = 0, s = -1;
	for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
		s = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (s < 0) {
			err = errno;
			continue;
		}
		if (connect(s, a->ai_addr, a->ai_addrlen) == 0)
			break;
		err = errno;
		close(s);
		s = -1;
	}
	freeaddrinfo(res);
	if (s < 0) {
		snprintf(why, why_len,
		         "TPM: cannot connect to swtpm at %s port %s: %s (is swtpm running?)", host,
		         port, strerror(err));
		return SV_ERR_IO;
	}
	int one = 1;
	(void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*fd = s;
	return SV_OK;
}

/* What to do about a TPM device that would not open, by errno ("" when there is no advice). */
static const char *device_hint(int e)
{
	switch (e) {
	case ENOENT:
	case ENODEV:
	case ENXIO:
		return "; this machine shows no TPM device: it has no TPM 2.0, the TPM is disabled "
		       "in "
		       "the firmware, or its kernel driver (tpm_crb, tpm_tis) is not loaded; for a "
		       "test, use swtpm:host=H,port=P";
	case EACCES:
	case EPERM:
		return "; the user needs read and write access to the device: add it to group tss "
		       "(the Debian package does for user sealvault)";
	case EBUSY:
		return "; another program holds the TPM: use the resource manager /dev/tpmrm0, not "
		       "/dev/tpm0";
	default: return "";
	}
}

int tcti_fd_connect(const char *spec, int *fd, char *why, size_t why_len)
{
	if (strncmp(spec, "device:", 7) == 0) {
		const char *path = spec + 7;
		if (path[0] != '/') {
			snprintf(why, why_len,
			         "TPM: '%s': device needs an absolute path, e.g. "
			         "device:/dev/tpmrm0",
			         spec);
			return SV_ERR_CONFIG;
		}
		int d = open(path, O_RDWR | O_CLOEXEC);
		if (d < 0) {
			int e = errno;
			snprintf(why, why_len, "TPM: cannot open %s: %s%s", path, strerror(e),
			         device_hint(e));
			return SV_ERR_IO;
		}
		*fd = d;
		return SV_OK;
	}
	if (strncmp(spec, "swtpm:", 6) == 0) {
		char host[256], port[16];
		if (parse_swtpm(spec + 6, host, sizeof(host), port, sizeof(port)) != SV_OK) {
			snprintf(why, why_len, "TPM: '%s' is not of the form swtpm:host=H,port=P",
			         spec);
			return SV_ERR_CONFIG;
		}
		return connect_tcp(host, port, fd, why, why_len);
	}
	snprintf(why, why_len,
	         "TPM: unknown TPM descriptor '%s'; use device:/dev/tpmrm0 or swtpm:host=H,port=P",
	         spec);
	return SV_ERR_CONFIG;
}
