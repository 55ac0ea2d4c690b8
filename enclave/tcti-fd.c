/*
 * TCTI over one descriptor. A TPM command is a 10-byte header (tag u16, size u32, code u32) and
 * a body; the response has the same header shape and its size field bounds the read. One command
 * is outstanding at a time, so the whole response is read into a fixed buffer and handed out by
 * receive(), which ESYS may call first with response == NULL to learn the size.
 *
 * Deadline: transmit starts the clock; receive polls for at most what is left of it (or the
 * caller's shorter timeout, which gives TSS2_TCTI_RC_TRY_AGAIN as before). ESYS always asks to
 * block, so without the deadline a TPM that stops answering would hang the enclave for good.
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
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "common/err.h"

#define TCTI_FD_MAGIC    0x73766663746931ULL /* "svfcti1" */
#define TPM_HDR_LEN      10
#define TPM_MAX_RESPONSE 4096

/* ST_DEAD: a command timed out; its answer may still come, so nothing else may be sent. */
enum tcti_state { ST_IDLE, ST_SENT, ST_RECEIVED, ST_DEAD };

struct tcti_fd {
	TSS2_TCTI_CONTEXT_COMMON_V2 common; /* must be first */
	int fd;
	enum tcti_state state;
	unsigned timeout_ms;
	tcti_fd_timeout_fn on_timeout;
	void *timeout_arg;
	uint64_t deadline_ms; /* of the command in flight (CLOCK_MONOTONIC) */
	uint32_t cc;          /* its command code */
	size_t resp_len;
	uint8_t resp[TPM_MAX_RESPONSE];
};

static const struct {
	uint32_t cc;
	const char *name;
} cc_names[] = {
    {TPM2_CC_NV_Increment, "TPM2_CC_NV_Increment"},
    {TPM2_CC_NV_Read, "TPM2_CC_NV_Read"},
    {TPM2_CC_NV_ReadPublic, "TPM2_CC_NV_ReadPublic"},
    {TPM2_CC_NV_ChangeAuth, "TPM2_CC_NV_ChangeAuth"},
    {TPM2_CC_NV_DefineSpace, "TPM2_CC_NV_DefineSpace"},
    {TPM2_CC_NV_UndefineSpace, "TPM2_CC_NV_UndefineSpace"},
    {TPM2_CC_Startup, "TPM2_CC_Startup"},
    {TPM2_CC_CreatePrimary, "TPM2_CC_CreatePrimary"},
    {TPM2_CC_Create, "TPM2_CC_Create"},
    {TPM2_CC_Load, "TPM2_CC_Load"},
    {TPM2_CC_LoadExternal, "TPM2_CC_LoadExternal"},
    {TPM2_CC_Unseal, "TPM2_CC_Unseal"},
    {TPM2_CC_StartAuthSession, "TPM2_CC_StartAuthSession"},
    {TPM2_CC_PolicyPCR, "TPM2_CC_PolicyPCR"},
    {TPM2_CC_PolicyCommandCode, "TPM2_CC_PolicyCommandCode"},
    {TPM2_CC_PolicyGetDigest, "TPM2_CC_PolicyGetDigest"},
    {TPM2_CC_PolicyAuthorize, "TPM2_CC_PolicyAuthorize"},
    {TPM2_CC_PolicySecret, "TPM2_CC_PolicySecret"},
    {TPM2_CC_FlushContext, "TPM2_CC_FlushContext"},
    {TPM2_CC_GetCapability, "TPM2_CC_GetCapability"},
    {TPM2_CC_GetRandom, "TPM2_CC_GetRandom"},
    {TPM2_CC_ReadPublic, "TPM2_CC_ReadPublic"},
    {TPM2_CC_PCR_Read, "TPM2_CC_PCR_Read"},
    {TPM2_CC_Quote, "TPM2_CC_Quote"},
    {TPM2_CC_Sign, "TPM2_CC_Sign"},
    {TPM2_CC_Certify, "TPM2_CC_Certify"},
    {TPM2_CC_ActivateCredential, "TPM2_CC_ActivateCredential"},
    {TPM2_CC_VerifySignature, "TPM2_CC_VerifySignature"},
    {TPM2_CC_Hash, "TPM2_CC_Hash"},
};

const char *tcti_fd_cc_name(uint32_t cc)
{
	for (size_t i = 0; i < sizeof(cc_names) / sizeof(cc_names[0]); i++)
		if (cc_names[i].cc == cc)
			return cc_names[i].name;
	return NULL;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds left of the command's deadline, at most INT32_MAX; 0 once it has passed. */
static int32_t left_ms(const struct tcti_fd *t)
{
	uint64_t now = mono_ms();
	if (now >= t->deadline_ms)
		return 0;
	uint64_t left = t->deadline_ms - now;
	return left > INT32_MAX ? INT32_MAX : (int32_t)left;
}

/* The command in flight missed its deadline: the context is dead from now on. */
static TSS2_RC timed_out(struct tcti_fd *t)
{
	t->state = ST_DEAD;
	if (t->on_timeout != NULL)
		t->on_timeout(t->timeout_arg, t->cc, t->timeout_ms);
	return TSS2_TCTI_RC_IO_ERROR;
}

/* The connection ended under a command (end of file, a reset, a failed write): whether the TPM
 * ran it is unknown, so the context is dead from now on, as after a timeout. */
static TSS2_RC lost(struct tcti_fd *t)
{
	t->state = ST_DEAD;
	if (t->on_timeout != NULL)
		t->on_timeout(t->timeout_arg, t->cc, 0);
	return TSS2_TCTI_RC_IO_ERROR;
}

void tcti_fd_set_timeout(TSS2_TCTI_CONTEXT *ctx, unsigned timeout_ms, tcti_fd_timeout_fn fn,
                         void *arg)
{
	struct tcti_fd *t = (struct tcti_fd *)ctx;
	if (t == NULL || t->common.v1.magic != TCTI_FD_MAGIC)
		return;
	if (timeout_ms < 1)
		timeout_ms = 1;
	if (timeout_ms > TCTI_FD_TIMEOUT_MAX_MS)
		timeout_ms = TCTI_FD_TIMEOUT_MAX_MS;
	t->timeout_ms = timeout_ms;
	t->on_timeout = fn;
	t->timeout_arg = arg;
}

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
	if (t->state == ST_DEAD)
		return TSS2_TCTI_RC_IO_ERROR;
	if (t->state != ST_IDLE)
		return TSS2_TCTI_RC_BAD_SEQUENCE;
	if (size < TPM_HDR_LEN)
		return TSS2_TCTI_RC_BAD_VALUE;
	t->cc = (uint32_t)cmd[6] << 24 | (uint32_t)cmd[7] << 16 | (uint32_t)cmd[8] << 8 | cmd[9];
	t->deadline_ms = mono_ms() + t->timeout_ms;
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(t->fd, cmd + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* the non-blocking device: wait for room, within the deadline */
			struct pollfd p = {.fd = t->fd, .events = POLLOUT};
			int32_t left = left_ms(t);
			if (left == 0)
				return timed_out(t);
			if (poll(&p, 1, left) < 0 && errno != EINTR)
				return TSS2_TCTI_RC_IO_ERROR;
			continue;
		}
		if (n <= 0)
			return lost(t);
		done += (size_t)n;
	}
	t->state = ST_SENT;
	return TSS2_RC_SUCCESS;
}

/* Reads until a full response (as declared by its header) is buffered, within the command's
 * deadline; a caller's timeout (>= 0) that ends first gives TSS2_TCTI_RC_TRY_AGAIN. */
static TSS2_RC read_response(struct tcti_fd *t, int32_t timeout)
{
	size_t have = 0, want = TPM_HDR_LEN;
	while (have < want) {
		struct pollfd p = {.fd = t->fd, .events = POLLIN};
		int32_t left = left_ms(t);
		if (left == 0)
			return timed_out(t);
		int caller = timeout >= 0 && timeout < left;
		int r = poll(&p, 1, caller ? timeout : left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return TSS2_TCTI_RC_IO_ERROR;
		if (r == 0) {
			if (caller && have == 0)
				return TSS2_TCTI_RC_TRY_AGAIN;
			continue; /* the deadline is checked at the top */
		}
		ssize_t n = read(t->fd, t->resp + have, sizeof(t->resp) - have);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return lost(t);
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
	if (t->state == ST_DEAD)
		return TSS2_TCTI_RC_IO_ERROR;
	if (t->state == ST_IDLE)
		return TSS2_TCTI_RC_BAD_SEQUENCE;
	if (t->state == ST_SENT) {
		TSS2_RC rc = read_response(t, timeout);
		if (rc != TSS2_RC_SUCCESS) {
			if (rc != TSS2_TCTI_RC_TRY_AGAIN && t->state != ST_DEAD)
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
	t->timeout_ms = TCTI_FD_TIMEOUT_DEFAULT_MS;
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
		/* Non-blocking, as tpm2-tss' device TCTI: the kernel queues the command and poll()
		 * reports the answer, so a hung chip runs into our deadline (a blocking write would
		 * wait for the driver's own, up to minutes). */
		int d = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
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
