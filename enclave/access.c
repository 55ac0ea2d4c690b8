#include "enclave/access.h"

#include "common/recordkey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/err.h"
#include "common/msg.h"

/* Tokens verified lately, by a keyed hash of their bytes: the same token comes back for every
 * request of one operation (a recovery is login/start then login/finish), and a token that
 * verified once verifies again until it expires, so only exp is judged again. Direct-mapped, a
 * newer token replaces an older one in its slot; filled only after a full verification. */
#define MEMO_SLOTS 256
#define MEMO_HASH  32

struct memo {
	uint8_t hash[MEMO_HASH];
	uint8_t used;
	struct token_claims claims;
};

struct access {
	enum access_mode mode;
	struct tenant_set tenants;
	struct token_policy pol;
	int64_t fixed_now; /* access_set_clock; 0: the wall clock */
	uint64_t accepted, unauthorized, forbidden, memo_hits;
	uint8_t memo_key[crypto_generichash_KEYBYTES];
	struct memo *memo; /* MEMO_SLOTS; tokens mode only */
};

int access_new(struct access **out, enum access_mode mode, struct tenant_set *set,
               const struct token_policy *pol)
{
	*out = NULL;
	if (mode != ACCESS_OPEN && mode != ACCESS_TOKENS)
		return SV_ERR_CONFIG;
	if (mode == ACCESS_TOKENS &&
	    (pol == NULL || pol->max_lifetime_s < 1 || pol->skew_s < 0 || pol->aud[0] == '\0'))
		return SV_ERR_CONFIG;
	struct access *a = calloc(1, sizeof(*a));
	if (a == NULL || sodium_init() < 0 ||
	    (mode == ACCESS_TOKENS && (a->memo = calloc(MEMO_SLOTS, sizeof(*a->memo))) == NULL)) {
		free(a);
		return SV_ERR_NOMEM;
	}
	randombytes_buf(a->memo_key, sizeof(a->memo_key));
	a->mode = mode;
	if (pol != NULL)
		a->pol = *pol;
	if (set != NULL) {
		a->tenants = *set;
		memset(set, 0, sizeof(*set));
	}
	*out = a;
	return SV_OK;
}

void access_free(struct access *a)
{
	if (a == NULL)
		return;
	tenant_set_free(&a->tenants);
	free(a->memo);
	free(a);
}

enum access_mode access_mode(const struct access *a)
{
	return a->mode;
}

void access_set_clock(struct access *a, int64_t now)
{
	a->fixed_now = now;
}

static int64_t now_s(const struct access *a)
{
	struct timespec ts;
	if (a->fixed_now != 0)
		return a->fixed_now;
	/* the vDSO, or clock_gettime(2), which the enclave's filter allows */
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return 0; /* every token then looks issued in the future: refused */
	return (int64_t)ts.tv_sec;
}

static int refuse(struct access *a, int status, const char *reason, const char **why)
{
	if (status == SV_STATUS_FORBIDDEN)
		a->forbidden++;
	else
		a->unauthorized++;
	*why = reason;
	return status;
}

int access_verify(struct access *a, const uint8_t *tok, size_t len, unsigned all, unsigned any,
                  struct access_grant *g, const char **why)
{
	memset(g, 0, sizeof(*g));
	if (a->mode == ACCESS_OPEN) {
		g->open = 1;
		return SV_OK;
	}
	if (len == 0)
		return refuse(a, SV_STATUS_UNAUTHORIZED, TOKEN_WHY_NONE, why);
	int64_t now = now_s(a);
	uint8_t h[MEMO_HASH];
	crypto_generichash(h, sizeof(h), tok, len, a->memo_key, sizeof(a->memo_key));
	struct memo *m = &a->memo[(h[0] | (unsigned)h[1] << 8) % MEMO_SLOTS];
	if (m->used && sodium_memcmp(m->hash, h, sizeof(h)) == 0) {
		if (now >= m->claims.exp + a->pol.skew_s) /* as token_verify judges exp */
			return refuse(a, SV_STATUS_UNAUTHORIZED, "the token has expired", why);
		g->claims = m->claims;
		a->memo_hits++;
	} else {
		if (token_verify(&a->tenants, &a->pol, now, (const char *)tok, len, &g->claims,
		                 why) != SV_OK)
			return refuse(a, SV_STATUS_UNAUTHORIZED, *why, why);
		memcpy(m->hash, h, sizeof(h));
		m->claims = g->claims;
		m->used = 1;
	}
	if (!token_scope_covers(g->claims.scope, all) || (any != 0 && !(g->claims.scope & any))) {
		memset(g, 0, sizeof(*g));
		return refuse(a, SV_STATUS_FORBIDDEN, TOKEN_WHY_SCOPE, why);
	}
	a->accepted++;
	return SV_OK;
}

/* The tokens-mode key of the grant's (tenant, sub): SV_OK, or SV_ERR_RANGE when it does not fit. */
static int grant_key(const struct access *a, const struct access_grant *g,
                     uint8_t key[static STORE_ID_MAX], size_t *key_len)
{
	const struct tenant *t = &a->tenants.tenants[g->claims.tenant];
	return record_key_tenant(t->name, g->claims.sub, g->claims.sub_len, key, STORE_ID_MAX,
	                         key_len) == 0
	           ? SV_OK
	           : SV_ERR_RANGE;
}

int access_key(struct access *a, const struct access_grant *g, const uint8_t *id, size_t id_len,
               uint8_t key[static STORE_ID_MAX], size_t *key_len, const char **why)
{
	if (g->open) {
		if (id_len < 1 || id_len > STORE_ID_MAX || id[0] == ACCESS_KEY_TAG ||
		    id[0] == RECORD_KEY_REALM) {
			*why = "an identifier may not begin with a 0 or 1 byte (kept for tenants' "
			       "users and realm records)";
			return SV_STATUS_BAD_REQUEST;
		}
		memcpy(key, id, id_len);
		*key_len = id_len;
		return SV_OK;
	}
	if (g->claims.sub_len != id_len || memcmp(g->claims.sub, id, id_len) != 0)
		return refuse(a, SV_STATUS_UNAUTHORIZED,
		              "the token's sub is not the identifier of this request", why);
	if (grant_key(a, g, key, key_len) != SV_OK) {
		*why = "the identifier is too long for this tenant: tenant name and identifier "
		       "together may have at most 253 bytes";
		return SV_STATUS_BAD_REQUEST;
	}
	return SV_OK;
}

int access_owns(struct access *a, const struct access_grant *g, const uint8_t *key, size_t key_len,
                const char **why)
{
	uint8_t mine[STORE_ID_MAX];
	size_t n = 0;
	if (g->open)
		return SV_OK;
	if (grant_key(a, g, mine, &n) != SV_OK || n != key_len || memcmp(mine, key, n) != 0)
		return refuse(a, SV_STATUS_UNAUTHORIZED,
		              "the token is for another user than the login it finishes", why);
	return SV_OK;
}

int access_request(struct access *a, const uint8_t *tok, size_t tok_len, unsigned all, unsigned any,
                   const uint8_t *id, size_t id_len, uint8_t key[static STORE_ID_MAX],
                   size_t *key_len, const char **why)
{
	struct access_grant g;
	int st;
	if (a == NULL) {
		if (id != NULL) {
			if (id_len < 1 || id_len > STORE_ID_MAX) {
				*why = "the identifier must have 1 to 255 bytes";
				return SV_STATUS_BAD_REQUEST;
			}
			memcpy(key, id, id_len);
			*key_len = id_len;
		}
		return SV_OK;
	}
	st = access_verify(a, tok, tok_len, all, any, &g, why);
	if (st == SV_OK)
		st = id != NULL ? access_key(a, &g, id, id_len, key, key_len, why)
		                : access_owns(a, &g, key, *key_len, why);
	sodium_memzero(&g, sizeof(g));
	return st;
}

void access_digest(const struct access *a, uint8_t out[static TENANT_DIGEST_LEN])
{
	if (a->mode == ACCESS_OPEN)
		memset(out, 0, TENANT_DIGEST_LEN);
	else
		tenant_set_digest(&a->tenants, out);
}

int access_metrics(const struct access *a, struct sv_buf *out)
{
	size_t keys = 0;
	char text[1536];
	for (size_t i = 0; i < a->tenants.n; i++)
		keys += a->tenants.tenants[i].n_keys;
	int n = snprintf(
	    text, sizeof(text),
	    "# HELP sealvault_auth_mode Which access check runs: tokens (every request needs a "
	    "tenant's token) or open (none; set explicitly).\n"
	    "# TYPE sealvault_auth_mode gauge\n"
	    "sealvault_auth_mode{mode=\"tokens\"} %d\nsealvault_auth_mode{mode=\"open\"} %d\n"
	    "# HELP sealvault_tenants Tenants whose tokens the vault accepts.\n"
	    "# TYPE sealvault_tenants gauge\nsealvault_tenants %zu\n"
	    "# HELP sealvault_tenant_keys Signing keys of those tenants.\n"
	    "# TYPE sealvault_tenant_keys gauge\nsealvault_tenant_keys %zu\n"
	    "# HELP sealvault_tokens_accepted_total Access tokens that passed the check.\n"
	    "# TYPE sealvault_tokens_accepted_total counter\n"
	    "sealvault_tokens_accepted_total %llu\n"
	    "# HELP sealvault_tokens_memo_hits_total Tokens that had verified for an earlier "
	    "request "
	    "(of the same operation): only their expiry and scope were judged again.\n"
	    "# TYPE sealvault_tokens_memo_hits_total counter\n"
	    "sealvault_tokens_memo_hits_total %llu\n"
	    "# HELP sealvault_tokens_refused_total Requests refused for their access token "
	    "(401: missing or invalid; 403: scope), changing nothing.\n"
	    "# TYPE sealvault_tokens_refused_total counter\n"
	    "sealvault_tokens_refused_total{status=\"401\"} %llu\n"
	    "sealvault_tokens_refused_total{status=\"403\"} %llu\n",
	    a->mode == ACCESS_TOKENS, a->mode == ACCESS_OPEN,
	    a->mode == ACCESS_TOKENS ? a->tenants.n : 0, a->mode == ACCESS_TOKENS ? keys : 0,
	    (unsigned long long)a->accepted, (unsigned long long)a->memo_hits,
	    (unsigned long long)a->unauthorized, (unsigned long long)a->forbidden);
	if (n < 0 || (size_t)n >= sizeof(text))
		return SV_ERR_INTERNAL;
	return sv_buf_put(out, text, (size_t)n);
}
