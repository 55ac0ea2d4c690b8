/*
 * The NV-write budget (issue 12): a token bucket over every NV write the vault causes, so that no
 * request of any client, authenticated or not, can wear the TPM out faster than the operator
 * allows. Tokens are NV writes; the bucket refills at nv-writes-per-day / 86400 per second up to
 * nv-writes-burst.
 *
 * What a commit costs: under the plain scheme every increment is an NV write (cost 1); under the
 * hybrid scheme an increment is 1/(M + 1) of the NV write that the (M + 1)-th causes, so a
 * commit costs 1/(M + 1) and a forced flush of k increments k/(M + 1). Over any window the NV
 * writes of the counter exceed the tokens spent by at most one (the write of a block the window
 * starts inside), so over any 24 h they stay under nv-writes-per-day + nv-writes-burst + 1, plus
 * the NV_ChangeAuth of each start (spent too, and rare).
 *
 * When tokens are short the vault waits, it never writes more: the serve loop holds a commit
 * (more requests join it, so more guesses share one increment) until the bucket covers it, and
 * answers "busy" to requests that need a forced flush (a user's second guess while the first is
 * not yet on NV, a registration, a password change, a deletion) until one is affordable.
 */
#ifndef SV_ENCLAVE_BUDGET_H
#define SV_ENCLAVE_BUDGET_H

#include <stdint.h>

struct budget {
	double level;   /* tokens (NV writes) available; may go below 0 after a start */
	double burst;   /* capacity */
	double per_us;  /* refill rate, tokens per microsecond; 0: unlimited */
	double per_inc; /* tokens per NV increment: 1 (plain) or 1/(M + 1) (hybrid) */
	uint64_t last_us;
	double spent;              /* tokens spent since start */
	uint64_t waited_us, waits; /* commit spacing: time commits waited for tokens */
};

/* per_day 0: unlimited (nothing is refused or delayed; spending is still counted). */
void budget_init(struct budget *b, unsigned per_day, unsigned burst, uint32_t orderly_mask,
                 uint64_t now_us);
/* Tokens that k increments cost. */
double budget_cost(const struct budget *b, uint64_t increments);
/* Microseconds until the bucket holds cost tokens (0: now). */
uint64_t budget_wait_us(struct budget *b, double cost, uint64_t now_us);
/* Takes cost tokens (the level may go below zero: NV writes that had to happen, e.g. a start). */
void budget_spend(struct budget *b, double cost, uint64_t now_us);

#endif
