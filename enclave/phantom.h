/*
 * Phantom guess counters for identifiers that are not registered, so that login/start for an
 * unknown identifier reports attempts left like a real user with the default guess limit, and
 * locks out like one (docs/threat-model.md, "What an unauthenticated client learns").
 *
 * Held only in memory, in a fixed-size 4-way set-associative table allocated at start-up: a full
 * set forgets its least recently charged identifier. Identifiers are stored as keyed BLAKE2b
 * tags under a random per-process key, so a client cannot aim identifiers at one set.
 */
#ifndef SV_ENCLAVE_PHANTOM_H
#define SV_ENCLAVE_PHANTOM_H

#include <stddef.h>
#include <stdint.h>

struct phantom_table;

/* Room for at least cap identifiers (rounded up to a power of two of 4-way sets). */
int phantom_table_new(struct phantom_table **out, size_t cap) __attribute__((warn_unused_result));
void phantom_table_free(struct phantom_table *t);

/* Guesses charged so far to this identifier (0 when not tracked). Does not change anything. */
unsigned phantom_used(const struct phantom_table *t, const uint8_t *id, size_t id_len);

/* Charges one guess (saturating at 255) and returns the new count. */
unsigned phantom_charge(struct phantom_table *t, const uint8_t *id, size_t id_len, uint64_t now_ms);

/* The counter value of the commit of the identifier's last charge (0: none), so that a second
 * guess for an unknown identifier waits for NV like a real user's (enclave/store.h, hybrid);
 * set after phantom_charge. */
uint64_t phantom_charged_at(const struct phantom_table *t, const uint8_t *id, size_t id_len);
void phantom_set_charged_at(struct phantom_table *t, const uint8_t *id, size_t id_len,
                            uint64_t counter);

/* Forgets the identifier (it has been registered). */
void phantom_forget(struct phantom_table *t, const uint8_t *id, size_t id_len);

#endif
