/*
 * Vault policy: defaults, bounds, and a canonical hash. Every option has a documented range;
 * anything outside it is refused with a message that names the option and the range.
 */
#include "policy/vault.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"

struct opt {
	const char *name;
	size_t offset;
	unsigned min;
	unsigned max;
};

#define OPT(n, f, lo, hi)                                                                          \
	{                                                                                          \
		n, offsetof(struct sv_vault_policy, f), lo, hi                                     \
	}

static const struct opt opts[] = {
    OPT("default-guess-limit", default_guess_limit, 1, 255),
    OPT("max-guess-limit", max_guess_limit, 1, 255),
    OPT("batch-window-us", batch_window_us, 0, 100000),
    OPT("max-batch", max_batch, 1, 4096),
    OPT("pending-login-max", pending_login_max, 16, 1048576),
    OPT("login-timeout-s", login_timeout_s, 1, 600),
    OPT("nv-writes-per-day", nv_writes_per_day, 0, 1000000),
    OPT("nv-writes-burst", nv_writes_burst, 1, 100000),
    OPT("unclean-boots-per-year", unclean_boots_per_year, 0, 1000),
    OPT("counter-scheme", counter_scheme, POLICY_COUNTER_PLAIN, POLICY_COUNTER_HYBRID),
    OPT("login-rate-per-id", login_rate_per_id, 0, 60000),
    OPT("login-burst-per-id", login_burst_per_id, 1, 1000),
    OPT("auth", auth, POLICY_AUTH_OPEN, POLICY_AUTH_TOKENS),
    OPT("token-max-lifetime-s", token_max_lifetime_s, 1, 86400),
    OPT("token-clock-skew-s", token_clock_skew_s, 0, 3600),
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static unsigned *field(struct sv_vault_policy *p, const struct opt *o)
{
	return (unsigned *)((char *)p + o->offset);
}

static unsigned cfield(const struct sv_vault_policy *p, const struct opt *o)
{
	return *(const unsigned *)((const char *)p + o->offset);
}

void policy_vault_defaults(struct sv_vault_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->default_guess_limit = 10;
	p->max_guess_limit = 10;
	p->batch_window_us = 2000;
	p->max_batch = 256;
	p->pending_login_max = 65536;
	p->login_timeout_s = 60;
	p->nv_writes_per_day = 0; /* automatic: see vault.h */
	p->nv_writes_burst = 25;
	p->unclean_boots_per_year = 12;
	p->counter_scheme = POLICY_COUNTER_HYBRID;
	p->login_rate_per_id = 5;
	p->login_burst_per_id = 5;
	p->auth = POLICY_AUTH_TOKENS;
	p->token_max_lifetime_s = 600;
	p->token_clock_skew_s = 60;
}

/* Accepts "plain" or "hybrid" for the counter scheme, otherwise a decimal number without sign or
 * junk. */
static int parse_value(const struct opt *o, const char *value, unsigned *out)
{
	if (strcmp(o->name, "counter-scheme") == 0) {
		if (strcmp(value, "plain") == 0) {
			*out = POLICY_COUNTER_PLAIN;
			return SV_OK;
		}
		if (strcmp(value, "hybrid") == 0) {
			*out = POLICY_COUNTER_HYBRID;
			return SV_OK;
		}
		return SV_ERR_INVALID;
	}
	if (strcmp(o->name, "auth") == 0) {
		if (strcmp(value, "open") == 0) {
			*out = POLICY_AUTH_OPEN;
			return SV_OK;
		}
		if (strcmp(value, "tokens") == 0) {
			*out = POLICY_AUTH_TOKENS;
			return SV_OK;
		}
		return SV_ERR_INVALID;
	}
	if (value[0] < '0' || value[0] > '9')
		return SV_ERR_INVALID;
	errno = 0;
	char *end = NULL;
	unsigned long v = strtoul(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v > UINT_MAX)
		return SV_ERR_INVALID;
	*out = (unsigned)v;
	return SV_OK;
}

int policy_vault_set(struct sv_vault_policy *p, const char *key, const char *value, char *why,
                     size_t why_len)
{
	/* the name of 0.3, when the budget counted forced flushes only and nothing read it */
	if (strcmp(key, "nv-flush-budget-per-day") == 0)
		key = "nv-writes-per-day";
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		if (strcmp(o->name, key) != 0)
			continue;
		unsigned v = 0;
		if (parse_value(o, value, &v) != SV_OK) {
			snprintf(why, why_len, "policy option %s: '%s' is not a valid value", key,
			         value);
			return SV_ERR_CONFIG;
		}
		if (v < o->min || v > o->max) {
			snprintf(why, why_len, "policy option %s: %u is out of bounds (%u..%u)",
			         key, v, o->min, o->max);
			return SV_ERR_CONFIG;
		}
		*field(p, o) = v;
		return SV_OK;
	}
	snprintf(why, why_len, "unknown policy option '%s' (see docs/operations.md)", key);
	return SV_ERR_CONFIG;
}

int policy_vault_is_option(const char *key)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strcmp(opts[i].name, key) == 0)
			return 1;
	return 0;
}

int policy_vault_check(const struct sv_vault_policy *p, char *why, size_t why_len)
{
	for (size_t i = 0; i < NOPTS; i++) {
		unsigned v = cfield(p, &opts[i]);
		if (v < opts[i].min || v > opts[i].max) {
			snprintf(why, why_len, "policy option %s: %u is out of bounds (%u..%u)",
			         opts[i].name, v, opts[i].min, opts[i].max);
			return SV_ERR_CONFIG;
		}
	}
	if (p->default_guess_limit > p->max_guess_limit) {
		snprintf(why, why_len,
		         "policy: default-guess-limit %u exceeds max-guess-limit %u; lower the "
		         "default or raise the maximum",
		         p->default_guess_limit, p->max_guess_limit);
		return SV_ERR_CONFIG;
	}
	return SV_OK;
}

void policy_vault_hash(const struct sv_vault_policy *p, uint8_t out[32])
{
	/* Canonical encoding: a domain tag, then each option as name, NUL, big-endian u32. */
	crypto_hash_sha256_state st;
	static const char tag[] = "sealvault vault policy v1";
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)tag, sizeof(tag));
	for (size_t i = 0; i < NOPTS; i++) {
		unsigned v = cfield(p, &opts[i]);
		uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
		                 (uint8_t)v};
		crypto_hash_sha256_update(&st, (const uint8_t *)opts[i].name,
		                          strlen(opts[i].name) + 1);
		crypto_hash_sha256_update(&st, be, sizeof(be));
	}
	crypto_hash_sha256_final(&st, out);
}

void policy_vault_hash_tenants(const struct sv_vault_policy *p, const uint8_t tenants[32],
                               uint8_t out[32])
{
	static const char tag[] = "sealvault vault policy and tenants v1";
	uint8_t h[32];
	crypto_hash_sha256_state st;
	policy_vault_hash(p, h);
	if (p->auth != POLICY_AUTH_TOKENS) {
		memcpy(out, h, sizeof(h));
		return;
	}
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)tag, sizeof(tag));
	crypto_hash_sha256_update(&st, h, sizeof(h));
	crypto_hash_sha256_update(&st, tenants, 32);
	crypto_hash_sha256_final(&st, out);
}
