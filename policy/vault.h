/*
 * Vault policy: the limits and budgets an operator may set, each with hard bounds. The effective
 * policy is fixed at start-up (config file / flags) and is hashed into the attestation statement.
 */
#ifndef SV_POLICY_VAULT_H
#define SV_POLICY_VAULT_H

#include <stddef.h>
#include <stdint.h>

enum policy_counter_scheme {
	/* one NV write per commit (group commit shares it) */
	POLICY_COUNTER_PLAIN = 1,
	/* orderly counter: an NV write every TPM_PT_ORDERLY_COUNT + 1 increments and on forced
	 * flushes (docs/threat-model.md "The hybrid counter"); the default for new vaults */
	POLICY_COUNTER_HYBRID = 2,
};

/* Who may act (sealvault.conf(5) `auth`, docs/tokens.md; enclave/access.h). */
enum policy_auth {
	POLICY_AUTH_OPEN = 1,   /* no access token asked for: set only explicitly */
	POLICY_AUTH_TOKENS = 2, /* a tenant-signed access token on every request; the default */
};

#define POLICY_NV_WRITES_PER_DAY_HYBRID 100 /* about 14 years at 5e5 writes of endurance */

struct sv_vault_policy {
	unsigned default_guess_limit; /* used when a registration names none; default 10 */
	unsigned max_guess_limit; /* highest limit a registration may ask for; 1..255, default 10 */
	unsigned batch_window_us; /* group commit: wait this long for more changes; 0..100000 */
	unsigned max_batch;       /* state changes per commit; 1..4096 */
	unsigned pending_login_max; /* logins between KE2 and KE3 held in memory; 16..1048576 */
	unsigned login_timeout_s;   /* a pending login expires after this; 1..600 */
	unsigned nv_writes_per_day; /* NV writes the vault may cause per 24 h; 0..1000000; 0
	                               (default): POLICY_NV_WRITES_PER_DAY_HYBRID for a hybrid
	                               vault, unlimited for a plain one */
	unsigned nv_writes_burst;   /* ... of which at most this many at once; 1..100000, 25 */
	unsigned unclean_boots_per_year; /* power cuts before an operator must acknowledge; 12 */
	unsigned counter_scheme;         /* enum policy_counter_scheme, for sealvault-admin init */
	unsigned login_rate_per_id;      /* login/starts per minute per identifier; 0..60000, 0 = no
	                                    limit; default 5 */
	unsigned login_burst_per_id;     /* ... of which at most this many at once; 1..1000, 5 */
	unsigned auth;                   /* enum policy_auth; default tokens */
	unsigned token_max_lifetime_s;   /* exp - iat of an access token at most; 1..86400, 600 */
	unsigned token_clock_skew_s;     /* clock skew allowed on exp, iat, nbf; 0..3600, 60 */
};

/* Fills in the documented defaults. */
void policy_vault_defaults(struct sv_vault_policy *p);
/* Sets one option by its config-file name (e.g. "max-guess-limit", "batch-window-us"); rejects
 * unknown names and out-of-bounds values with a one-line reason in why. */
int policy_vault_set(struct sv_vault_policy *p, const char *key, const char *value, char *why,
                     size_t why_len) __attribute__((warn_unused_result));
/* 1 when key names a policy option (what policy_vault_set accepts), else 0. */
int policy_vault_is_option(const char *key);
/* Checks every bound and the relations between fields (default <= max). */
int policy_vault_check(const struct sv_vault_policy *p, char *why, size_t why_len)
    __attribute__((warn_unused_result));
/* SHA-256 over a canonical encoding of the policy, for attestation statements. */
void policy_vault_hash(const struct sv_vault_policy *p, uint8_t out[32]);
/* The policy hash the attestation statement signs: policy_vault_hash in open mode; in tokens
 * mode SHA-256 over a tag, that hash and the tenant set digest (enclave/tenant.h
 * tenant_set_digest), so that a client's --expect pins which tenants may act. */
void policy_vault_hash_tenants(const struct sv_vault_policy *p, const uint8_t tenants[32],
                               uint8_t out[32]);

#endif
