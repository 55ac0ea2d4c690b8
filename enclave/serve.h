/*
 * The enclave's serve loop: reads requests from the broker link (SANDBOX_IPC_FD, non-blocking),
 * answers them through dispatch, and makes what they change durable and anchored (group commit,
 * the NV increment pipelined on a TPM thread: enclave/serve.c) before any reply that depends on
 * it leaves.
 */
#ifndef SV_ENCLAVE_SERVE_H
#define SV_ENCLAVE_SERVE_H

#include <stddef.h>

#include "policy/vault.h"

struct budget;
struct dispatch;
struct serve;
struct store;
struct tpm;
struct vault;

/* Allocates the batches and starts the TPM thread: call before sandbox_lockdown (the filter
 * allows no new thread), with every argument set up. From serve_run on, the TPM (tpm, and the
 * store's anchor) is used by that thread while an anchor runs and by nothing else then. */
int serve_new(struct serve **out, struct vault *v, struct store *s, struct dispatch *d,
              struct tpm *tpm, const struct sv_vault_policy *pol, struct budget *bud, char *why,
              size_t why_len) __attribute__((warn_unused_result));
/* sealvault-admin's online requests (enclave/adminsrv.h), answered while the loop is idle. */
struct adminsrv;
void serve_set_admin(struct serve *sv, struct adminsrv *a);
/* Tells the broker the vault serves (SV_MSG_READY), then serves until the broker closes the
 * link; returns with no anchor running. Every failure that could leave a request answered
 * before its state is durable and anchored ends the process without answering it. */
void serve_run(struct serve *sv);
/* Frees the batches; the TPM thread stays parked until the process exits (ending a thread
 * takes a system call the filter refuses). */
void serve_free(struct serve *sv);

#endif
