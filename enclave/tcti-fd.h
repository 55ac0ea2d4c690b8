/*
 * An in-tree TCTI (TSS2_TCTI_CONTEXT_COMMON_V2) over ONE already-open descriptor: the kernel's
 * resource manager (/dev/tpmrm0) or one connected TCP socket to swtpm's server port, which speaks
 * the raw TPM command protocol. Unlike the upstream swtpm TCTI it never reconnects, so after
 * tcti_fd_connect() it needs only poll/read/write on that descriptor (seccomp-friendly).
 */
#ifndef SV_ENCLAVE_TCTI_FD_H
#define SV_ENCLAVE_TCTI_FD_H

#include <stddef.h>

#include <tss2/tss2_tcti.h>

/* Opens the descriptor named by spec: "device:/dev/tpmrm0" or "swtpm:host=H,port=P" (H numeric
 * or a name, resolved now). Returns the fd in *fd, or a negative SV_ERR_* with a reason in why. */
int tcti_fd_connect(const char *spec, int *fd, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* Wraps fd in a TCTI context that owns it (finalize closes it). */
int tcti_fd_new(TSS2_TCTI_CONTEXT **out, int fd) __attribute__((warn_unused_result));
/* Finalizes and frees a context from tcti_fd_new (closes the fd). NULL is ignored. */
void tcti_fd_free(TSS2_TCTI_CONTEXT *ctx);

#endif
