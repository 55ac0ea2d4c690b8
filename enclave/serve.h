/*
 * The enclave's serve loop: reads requests from the broker link (SANDBOX_IPC_FD, non-blocking),
 * answers them through dispatch, and makes what they change durable and anchored (group commit,
 * enclave/serve.c) before any reply that depends on it leaves.
 */
#ifndef SV_ENCLAVE_SERVE_H
#define SV_ENCLAVE_SERVE_H

#include "policy/vault.h"

struct budget;
struct dispatch;
struct store;
struct tpm;
struct vault;

/* Serves until the broker closes the link. Every failure that could leave a request answered
 * before its state is durable and anchored ends the process without answering it. */
void serve_run(struct vault *v, struct store *s, struct dispatch *d, struct tpm *tpm,
               const struct sv_vault_policy *pol, struct budget *bud);

#endif
