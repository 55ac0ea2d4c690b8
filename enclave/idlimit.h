/*
 * The per-identifier login rate (issue 13, item 7): at most login-rate-per-id login/starts per
 * minute for one identifier, with bursts of login-burst-per-id, whoever sends them and whether
 * the identifier is registered or not (so the answer tells nobody which ones exist). Checked
 * before anything is charged; a refused login/start changes nothing (SV_STATUS_TOO_MANY, 429).
 *
 * A fixed table allocated once: each entry is a 16-byte BLAKE2b tag of the identifier under a key
 * drawn at random for each run (a client cannot aim identifiers at one set of the table), and the
 * time its bucket is full again (GCRA, the "theoretical arrival time"). An entry whose bucket is
 * full is worth nothing and is the only kind ever reused; a new identifier that finds none among
 * the entries it may use is refused (fail closed) rather than reset anyone else's bucket. Why an
 * attacker cannot fill the table cheaply: docs/threat-model.md, "The per-identifier login rate".
 * Single-threaded; nothing allocates after idlimit_new().
 */
#ifndef SV_ENCLAVE_IDLIMIT_H
#define SV_ENCLAVE_IDLIMIT_H

#include <stddef.h>
#include <stdint.h>

struct idlimit;

#define IDLIMIT_PROBES 16 /* entries an identifier may use */

/* cap: entries, a power of two >= 64; per_min: logins per minute per identifier, 0 = no limit
 * (then nothing is allocated); burst >= 1. */
int idlimit_new(struct idlimit **out, size_t cap, unsigned per_min, unsigned burst)
    __attribute__((warn_unused_result));
void idlimit_free(struct idlimit *t);

/* Who a limit is for: a tenant (empty until requests carry access tokens) and the identifier
 * within it (the token's sub). Each part at most 65535 bytes. */
struct idlimit_who {
	const uint8_t *tenant;
	size_t tenant_len;
	const uint8_t *id;
	size_t id_len;
};

/* Whether who may start a login now: 0 with *slot set for idlimit_charge, or SV_ERR_BUSY with
 * *retry_s the whole seconds until it may (>= 1). Changes nothing. */
int idlimit_check(struct idlimit *t, const struct idlimit_who *who, uint64_t now_ms, size_t *slot,
                  unsigned *retry_s) __attribute__((warn_unused_result));

/* Counts the login idlimit_check allowed (call it before anything else touches t). */
void idlimit_charge(struct idlimit *t, const struct idlimit_who *who, size_t slot, uint64_t now_ms);

/* Refusals so far: over the rate, and for want of a free entry. */
uint64_t idlimit_refused(const struct idlimit *t);
uint64_t idlimit_refused_full(const struct idlimit *t);
size_t idlimit_capacity(const struct idlimit *t);

#endif
