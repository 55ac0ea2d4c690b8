/*
 * The anchor: the TPM NV counter every journal commit is bound to, and the run authority over
 * it. This module is the only caller of tpm_counter_*; the store asks it three questions (what
 * is the counter, may this state directory start, did my commit land where I sealed it) and
 * never touches the TPM counter itself.
 *
 * Run authority (issue 11, docs/threat-model.md "Forks"): every run of the vault (an enclave
 * start, an admin-tool change) draws a fresh random run nonce, writes it into its journal as a
 * start frame, fsyncs, and then rebinds the counter's auth value to a key derived from the vault
 * key and that nonce (NV_ChangeAuth, allowed to anyone by the index's policy). From then on the
 * TPM refuses the increments of every older run, and a state directory can start only if the TPM
 * accepts the auth value of the last run nonce it holds: only the lineage of the most recently
 * started run can ever be served again. Each increment is read back and compared with the value
 * the record was sealed under.
 *
 * Costs, in NV writes: one NV_ChangeAuth per run (starts are rare: a restart, an upgrade, an
 * admin delete), plus the increments of the commits themselves.
 */
#ifndef SV_ENCLAVE_ANCHOR_H
#define SV_ENCLAVE_ANCHOR_H

#include <stddef.h>
#include <stdint.h>

#include "enclave/tpm.h"

#define ANCHOR_RUN_LEN 32 /* run nonce: random, in the start frame and every snapshot */

struct anchor;

/* An anchor for the counter at index; nothing is sent to the TPM yet. */
int anchor_new(struct anchor **out, struct tpm *tpm, uint32_t index)
    __attribute__((warn_unused_result));
void anchor_free(struct anchor *a);

/* Derives the run-auth key from the vault key (both stay in sodium_malloc'd memory). Must be
 * called before anything that presents a run's auth value. */
void anchor_set_vault_key(struct anchor *a, const uint8_t vault_key[TPM_VAULT_KEY_LEN]);

/* A fresh random run nonce. */
void anchor_new_run(uint8_t run[ANCHOR_RUN_LEN]);

/* Provisioning (sealvault-admin init): defines the counter, makes it readable (first increment),
 * binds it to run and returns its value and name (taken after the first increment, which sets
 * the WRITTEN attribute the name covers). *nv_writes receives the NV writes this cost.
 * SV_ERR_EXISTS when the index is taken; on any other failure the index may stay defined: call
 * anchor_undefine. */
int anchor_define(struct anchor *a, const uint8_t run[ANCHOR_RUN_LEN], uint64_t *value,
                  uint8_t name[TPM_NAME_MAX], size_t *name_len, uint64_t *nv_writes)
    __attribute__((warn_unused_result));
int anchor_undefine(struct anchor *a) __attribute__((warn_unused_result));

/* Any counter index, by number (sealvault-admin upgrade, which handles two counters): what is
 * there (TPM_COUNTER_ABSENT, _SEALVAULT: a counter of anchor_define's shape, _OTHER), and
 * removing one. */
int anchor_index_probe(struct tpm *tpm, uint32_t index, int *shape)
    __attribute__((warn_unused_result));
int anchor_index_undefine(struct tpm *tpm, uint32_t index) __attribute__((warn_unused_result));

/* Binds to the existing counter and returns its name for comparison with the pinned one.
 * SV_ERR_NOTFOUND when the index does not exist. */
int anchor_attach(struct anchor *a, uint8_t name[TPM_NAME_MAX], size_t *name_len)
    __attribute__((warn_unused_result));

/* Reads the counter presenting run's auth value. SV_ERR_AUTH: the TPM refuses it, i.e. the
 * counter is bound to another run (this state directory is not the one that started last). */
int anchor_read_as(struct anchor *a, const uint8_t run[ANCHOR_RUN_LEN], uint64_t *value)
    __attribute__((warn_unused_result));

/* Reads a sealvault 0.2 counter, which has the empty auth value and no run; anchor_advance then
 * presents the empty value too. For store_upgrade only. */
int anchor_read_legacy(struct anchor *a, uint64_t *value) __attribute__((warn_unused_result));

/* Reads the counter without a run's auth value (owner authorization): to tell an operator how
 * far behind a refused copy is. Never the basis of a decision to serve. */
int anchor_read_owner(struct anchor *a, uint64_t *value) __attribute__((warn_unused_result));

/* Takes the counter over for run (one NV write). The caller must have made run durable first
 * (start frame fsynced): a crash after this call must leave a state directory that knows the
 * new auth value. */
int anchor_take(struct anchor *a, const uint8_t run[ANCHOR_RUN_LEN])
    __attribute__((warn_unused_result));

/* Reads the counter with the current run's auth value. */
int anchor_read(struct anchor *a, uint64_t *value) __attribute__((warn_unused_result));

/* One increment (salted session, authenticated), then a read-back (owner read, see
 * tpm_counter_read_owner) that must give expect: the value the record being anchored was
 * sealed under. SV_ERR_SUPERSEDED when the TPM refuses this run's auth value (a later run
 * took the counter over) or reports another value (another writer); SV_ERR_TPM when the TPM
 * fails otherwise; SV_ERR_BUSY when the TPM answered the increment with transient codes (NV_RATE
 * ...) for the whole retry budget and did not execute it: calling anchor_advance(expect) again
 * later is safe. In every failure case nothing may be answered. */
int anchor_advance(struct anchor *a, uint64_t expect) __attribute__((warn_unused_result));

/* The start-up rule for the plain counter: journal head h against TPM counter c. SV_OK when h == c
 * (clean) or h == c + 1 (*roll_forward = 1: a crash between fsync and increment; the caller
 * completes the increment). Otherwise SV_ERR_STATE and an operator-readable reason in why.
 * jlen/tail_bytes: the valid journal length and the bytes after it that failed to verify. */
int anchor_judge(uint64_t h, uint64_t c, uint64_t jlen, uint64_t tail_bytes, int *roll_forward,
                 char *why, size_t why_len) __attribute__((warn_unused_result));

#endif
