/* The NV-write token bucket (see budget.h). */
#include "enclave/budget.h"

#include <math.h>
#include <string.h>

void budget_init(struct budget *b, unsigned per_day, unsigned burst, uint32_t orderly_mask,
                 uint64_t now_us)
{
	memset(b, 0, sizeof(*b));
	b->burst = burst;
	b->level = burst;
	b->per_us = per_day == 0 ? 0.0 : (double)per_day / 86400e6;
	b->per_inc = 1.0 / ((double)orderly_mask + 1.0);
	b->last_us = now_us;
}

static void refill(struct budget *b, uint64_t now_us)
{
	if (now_us > b->last_us) {
		b->level += (double)(now_us - b->last_us) * b->per_us;
		if (b->level > b->burst)
			b->level = b->burst;
	}
	b->last_us = now_us;
}

double budget_cost(const struct budget *b, uint64_t increments)
{
	return (double)increments * b->per_inc;
}

uint64_t budget_wait_us(struct budget *b, double cost, uint64_t now_us)
{
	if (b->per_us == 0.0)
		return 0;
	refill(b, now_us);
	if (b->level >= cost)
		return 0;
	return (uint64_t)ceil((cost - b->level) / b->per_us);
}

void budget_spend(struct budget *b, double cost, uint64_t now_us)
{
	refill(b, now_us);
	b->level -= cost;
	b->spent += cost;
}
