/*
 * An in-tree TCTI (TSS2_TCTI_CONTEXT_COMMON_V2) over ONE already-open descriptor: the kernel's
 * resource manager (/dev/tpmrm0) or one connected TCP socket to swtpm's server port, which speaks
 * the raw TPM command protocol. Unlike the upstream swtpm TCTI it never reconnects, so after
 * tcti_fd_connect() it needs only poll/read/write on that descriptor (seccomp-friendly).
 *
 * Every command has a deadline (issue 12): a TPM that has not answered within the timeout
 * (TCTI_FD_TIMEOUT_DEFAULT_MS unless tcti_fd_set_timeout says otherwise) counts as hung. The
 * context is then dead for good (a late answer could be taken for the next command's), receive
 * fails with TSS2_TCTI_RC_IO_ERROR, and the timeout hook, if set, is called first (the enclave's
 * exits with a message naming the command). The device is opened non-blocking, so that the
 * kernel's resource manager queues the command and the deadline is ours, not the driver's.
 */
#ifndef SV_ENCLAVE_TCTI_FD_H
#define SV_ENCLAVE_TCTI_FD_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tcti.h>

/* 90 s: far above what a slow discrete chip needs for any command sealvault sends (an RSA
 * CreatePrimary, the slowest, takes seconds to tens of seconds), and below the 120 s after which
 * the Linux TPM driver gives up on most commands itself. */
#define TCTI_FD_TIMEOUT_DEFAULT_MS 90000u
#define TCTI_FD_TIMEOUT_MAX_MS     3600000u

/* Opens the descriptor named by spec: "device:/dev/tpmrm0" or "swtpm:host=H,port=P" (H numeric
 * or a name, resolved now). Returns the fd in *fd, or a negative SV_ERR_* with a reason in why. */
int tcti_fd_connect(const char *spec, int *fd, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* Wraps fd in a TCTI context that owns it (finalize closes it). */
int tcti_fd_new(TSS2_TCTI_CONTEXT **out, int fd) __attribute__((warn_unused_result));
/* Called once when a command got no complete answer within timeout_ms (cc is its command code),
 * or with timeout_ms 0 when the connection ended under it (end of file, a reset, a failed write:
 * whether the TPM ran it is unknown). May end the process; if it returns, the command fails with
 * TSS2_TCTI_RC_IO_ERROR and the context refuses every later one. */
typedef void (*tcti_fd_timeout_fn)(void *arg, uint32_t cc, unsigned timeout_ms);
/* Sets the per-command deadline (1..TCTI_FD_TIMEOUT_MAX_MS ms; others are clamped) and the hook
 * (NULL: none) for the commands sent from now on. */
void tcti_fd_set_timeout(TSS2_TCTI_CONTEXT *ctx, unsigned timeout_ms, tcti_fd_timeout_fn fn,
                         void *arg);
/* "TPM2_CC_NV_Increment" for the command codes sealvault sends, else NULL. */
const char *tcti_fd_cc_name(uint32_t cc);

/* Finalizes and frees a context from tcti_fd_new (closes the fd). NULL is ignored. */
void tcti_fd_free(TSS2_TCTI_CONTEXT *ctx);

#endif
