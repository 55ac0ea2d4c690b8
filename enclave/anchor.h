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
 *
 * Counter schemes (issue 12, docs/threat-model.md "The hybrid counter"): plain, every increment
 * is an NV write; hybrid, the counter is orderly (TPMA_NV_ORDERLY) and only an increment that
 * makes the bits under the orderly mask M (TPM_PT_ORDERLY_COUNT, 255 on libtpms) all zero
 * writes NV. After a power cut the TPM reads back its last NV copy with those bits set, so it
 * never goes back but may be up to M ahead of the journal. A value v is durable (survives a
 * power cut) once the counter has reached v rounded up to a multiple of M + 1; a forced flush
 * increments the counter to that multiple. Everything here works on the plain scheme too, with
 * M = 0.
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

/* Provisioning (sealvault-admin init): defines the counter (orderly for the hybrid scheme),
 * makes it readable (first increment), binds it to run and returns its value and name (taken
 * after the first increment, which sets the WRITTEN attribute the name covers). *nv_writes
 * receives the NV writes this cost. SV_ERR_EXISTS when the index is taken; on any other failure
 * the index may stay defined: call anchor_undefine. */
int anchor_define(struct anchor *a, const uint8_t run[ANCHOR_RUN_LEN], int orderly, uint64_t *value,
                  uint8_t name[TPM_NAME_MAX], size_t *name_len, uint64_t *nv_writes)
    __attribute__((warn_unused_result));

/* The hybrid scheme's orderly mask M of this TPM (TPM_PT_ORDERLY_COUNT); SV_ERR_CONFIG when
 * M + 1 is not a power of two >= 2 (the scheme needs the low bits to roll over). */
int anchor_orderly_mask(struct tpm *tpm, uint32_t *mask) __attribute__((warn_unused_result));
/* The counter's scheme for what follows: M (0: plain). */
void anchor_set_orderly(struct anchor *a, uint32_t mask);

/* Counter arithmetic of a scheme with orderly mask m (0: plain). */
/* The highest value <= c that is durable: c & ~m. */
uint64_t anchor_durable(uint32_t m, uint64_t c);
/* Where a forced flush from c goes: the next multiple of m + 1 above c (c + 1 for plain). */
uint64_t anchor_flush_target(uint32_t m, uint64_t c);
/* NV writes that incrementing from c to t causes: the multiples of m + 1 in (c, t]. */
uint64_t anchor_nv_writes(uint32_t m, uint64_t c, uint64_t t);

/* The unclean-boots counter of the hybrid scheme: a plain counter at index that only the
 * vault can increment (bound to a key derived from the vault key), readable by the owner.
 * define: at init, before anchor_define, which then attaches the main counter (3 NV writes);
 * bump: one increment, returns the new value; read: owner read, for status. bump and read
 * leave the main counter attached and presenting the current run's auth. */
int anchor_unclean_define(struct anchor *a, uint32_t index, uint64_t *nv_writes)
    __attribute__((warn_unused_result));
int anchor_unclean_bump(struct anchor *a, uint32_t index, uint64_t *value)
    __attribute__((warn_unused_result));
int anchor_unclean_read(struct anchor *a, uint32_t index, uint64_t *value)
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

/* Increments the counter from `from` (its current value) to `to` (salted session,
 * authenticated), then reads it back (owner read, see tpm_counter_read_owner): it must give
 * `to`, the value the record being anchored was sealed under. *done receives the increments
 * that succeeded. SV_ERR_SUPERSEDED when the TPM refuses this run's auth value (a later run
 * took the counter over) or reports another value (another writer); SV_ERR_TPM when the TPM
 * fails otherwise; SV_ERR_BUSY when the TPM answered an increment with transient codes (NV_RATE
 * ...) for the whole retry budget and did not execute it: the counter is at from + *done, and
 * calling anchor_advance(from + *done, to) later is safe (each increment's success is
 * authenticated, so *done is exact). In every failure case nothing may be answered. */
int anchor_advance(struct anchor *a, uint64_t from, uint64_t to, uint64_t *done)
    __attribute__((warn_unused_result));

/* The start-up rule: journal head h against TPM counter c, for a scheme with orderly mask m.
 * from: the counter before the journal's last commit frame (its increments may be incomplete;
 * start and flush frames after it repeat its counter).
 *   h == c                                clean
 *   from <= c < h                         roll forward: a crash during the last commit's
 *                                         increments; the caller completes them
 *   hybrid, c & m == m, c & ~m <= h < c   power cut: the TPM lost increments that were only in
 *                                         its RAM, and the journal may have lost frames after
 *                                         the last NV copy (c & ~m); the caller charges the
 *                                         penalty (docs/threat-model.md)
 * Otherwise SV_ERR_STATE and an operator-readable reason in why. jlen/tail_bytes: the valid
 * journal length and the bytes after it that failed to verify. */
enum anchor_verdict { ANCHOR_CLEAN = 0, ANCHOR_ROLL_FORWARD = 1, ANCHOR_POWER_CUT = 2 };
int anchor_judge(uint64_t h, uint64_t from, uint64_t c, uint32_t m, uint64_t jlen,
                 uint64_t tail_bytes, int *verdict, char *why, size_t why_len)
    __attribute__((warn_unused_result));

#endif
