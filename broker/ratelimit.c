#include "broker/ratelimit.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "common/err.h"

#define PROBES 16

struct entry {
	uint8_t key[RATELIMIT_KEY_LEN];
	int used;
	unsigned conns;
	unsigned pending;         /* unfinished logins counted (ratelimit_login_begin) */
	uint64_t pending_till_ms; /* when they all stop counting */
	double tokens;
	uint64_t last_ms; /* last refill or use */
};

struct ratelimit {
	struct ratelimit_config cfg;
	struct entry *tab;
	uint8_t hkey[crypto_shorthash_KEYBYTES];
	double attest_tokens;
	uint64_t attest_last_ms;
	uint64_t refused_req, refused_conn, refused_attest, refused_pending;
};

/* The bounds of every field but table_size. */
static int config_ok(const struct ratelimit_config *cfg)
{
	return !(cfg->rate > 0 && cfg->burst < 1) &&
	       !(cfg->attest_rate > 0 && cfg->attest_burst < 1) && cfg->ipv6_prefix >= 32 &&
	       cfg->ipv6_prefix <= 128 &&
	       !(cfg->pending_per_ip > 0 && cfg->pending_timeout_ms < 1000);
}

int ratelimit_new(struct ratelimit **out, const struct ratelimit_config *cfg)
{
	if (cfg->table_size < 64 || cfg->table_size > (1u << 20) ||
	    (cfg->table_size & (cfg->table_size - 1)) != 0 || !config_ok(cfg))
		return SV_ERR_RANGE;
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	if (rl == NULL)
		return SV_ERR_NOMEM;
	rl->tab = calloc(cfg->table_size, sizeof(*rl->tab));
	if (rl->tab == NULL) {
		free(rl);
		return SV_ERR_NOMEM;
	}
	rl->cfg = *cfg;
	rl->attest_tokens = cfg->attest_burst;
	randombytes_buf(rl->hkey, sizeof(rl->hkey));
	*out = rl;
	return SV_OK;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	free(rl->tab);
	sodium_memzero(rl, sizeof(*rl));
	free(rl);
}

int ratelimit_configure(struct ratelimit *rl, const struct ratelimit_config *cfg)
{
	if (!config_ok(cfg))
		return SV_ERR_RANGE;
	size_t table_size = rl->cfg.table_size;
	rl->cfg = *cfg;
	rl->cfg.table_size = table_size;
	return SV_OK;
}

void ratelimit_config_get(const struct ratelimit *rl, struct ratelimit_config *out)
{
	*out = rl->cfg;
}

unsigned ratelimit_ipv6_prefix(const struct ratelimit *rl)
{
	return rl->cfg.ipv6_prefix;
}

int ratelimit_key(const struct sockaddr *sa, unsigned v6_prefix,
                  uint8_t key[static RATELIMIT_KEY_LEN])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (sa == NULL || v6_prefix < 32 || v6_prefix > 128)
		return SV_ERR_INVALID;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		memcpy(key, &s6->sin6_addr, RATELIMIT_KEY_LEN);
		if (memcmp(key, mapped, sizeof(mapped)) == 0)
			return SV_OK; /* an IPv4 client of a dual-stack socket: its whole address */
		for (unsigned bit = v6_prefix; bit < 128; bit++)
			key[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
		return SV_OK;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		memset(key, 0, 10);
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &s4->sin_addr, 4);
		return SV_OK;
	}
	return SV_ERR_INVALID;
}

/* The entry for key, creating or reusing one if needed; NULL when none can be had. */
static struct entry *find(struct ratelimit *rl, const uint8_t *key, uint64_t now_ms, int create)
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, key, RATELIMIT_KEY_LEN, rl->hkey);
	uint64_t hv;
	memcpy(&hv, h, sizeof(hv));
	size_t mask = rl->cfg.table_size - 1;
	struct entry *victim = NULL;
	for (size_t i = 0; i < PROBES; i++) {
		struct entry *e = &rl->tab[(hv + i) & mask];
		if (e->used && memcmp(e->key, key, RATELIMIT_KEY_LEN) == 0)
			return e;
		if (!e->used) {
			if (victim == NULL || victim->used)
				victim = e;
		} else if (e->conns == 0 && !(e->pending > 0 && e->pending_till_ms > now_ms) &&
		           (victim == NULL || (victim->used && e->last_ms < victim->last_ms))) {
			victim = e;
		}
	}
	if (!create || victim == NULL)
		return NULL;
	memcpy(victim->key, key, RATELIMIT_KEY_LEN);
	victim->used = 1;
	victim->conns = 0;
	victim->pending = 0;
	victim->pending_till_ms = 0;
	victim->tokens = rl->cfg.burst;
	victim->last_ms = now_ms;
	return victim;
}

int ratelimit_take(struct ratelimit *rl, const uint8_t key[static RATELIMIT_KEY_LEN],
                   uint64_t now_ms)
{
	if (rl->cfg.rate == 0)
		return SV_OK;
	struct entry *e = find(rl, key, now_ms, 1);
	if (e == NULL) {
		rl->refused_req++;
		return SV_ERR_BUSY;
	}
	if (now_ms > e->last_ms) {
		e->tokens += (double)(now_ms - e->last_ms) * rl->cfg.rate / 1000.0;
		if (e->tokens > rl->cfg.burst)
			e->tokens = rl->cfg.burst;
	}
	e->last_ms = now_ms;
	if (e->tokens < 1.0) {
		rl->refused_req++;
		return SV_ERR_BUSY;
	}
	e->tokens -= 1.0;
	return SV_OK;
}

int ratelimit_conn_open(struct ratelimit *rl, const uint8_t key[static RATELIMIT_KEY_LEN],
                        uint64_t now_ms)
{
	if (rl->cfg.conns_per_ip == 0)
		return SV_OK; /* not counted */
	struct entry *e = find(rl, key, now_ms, 1);
	if (e == NULL || e->conns >= rl->cfg.conns_per_ip) {
		rl->refused_conn++;
		return SV_ERR_BUSY;
	}
	e->conns++;
	if (now_ms > e->last_ms) {
		/* refill before last_ms moves, so the bucket does not lose time */
		if (rl->cfg.rate > 0) {
			e->tokens += (double)(now_ms - e->last_ms) * rl->cfg.rate / 1000.0;
			if (e->tokens > rl->cfg.burst)
				e->tokens = rl->cfg.burst;
		}
		e->last_ms = now_ms;
	}
	return 1;
}

void ratelimit_conn_close(struct ratelimit *rl, const uint8_t key[static RATELIMIT_KEY_LEN])
{
	struct entry *e = find(rl, key, 0, 0);
	if (e != NULL && e->conns > 0)
		e->conns--;
}

int ratelimit_attest_take(struct ratelimit *rl, uint64_t now_ms, unsigned *retry_s)
{
	if (rl->cfg.attest_rate == 0)
		return SV_OK;
	if (now_ms > rl->attest_last_ms) {
		rl->attest_tokens +=
		    (double)(now_ms - rl->attest_last_ms) * rl->cfg.attest_rate / 1000.0;
		if (rl->attest_tokens > rl->cfg.attest_burst)
			rl->attest_tokens = rl->cfg.attest_burst;
	}
	rl->attest_last_ms = now_ms;
	if (rl->attest_tokens < 1.0) {
		double wait_s = (1.0 - rl->attest_tokens) / rl->cfg.attest_rate;
		*retry_s = (unsigned)wait_s + 1;
		rl->refused_attest++;
		return SV_ERR_BUSY;
	}
	rl->attest_tokens -= 1.0;
	return SV_OK;
}

int ratelimit_login_begin(struct ratelimit *rl, const uint8_t key[static RATELIMIT_KEY_LEN],
                          uint64_t now_ms, unsigned *retry_s)
{
	if (rl->cfg.pending_per_ip == 0)
		return SV_OK;
	struct entry *e = find(rl, key, now_ms, 1);
	if (e == NULL) {
		*retry_s = 1;
		rl->refused_pending++;
		return SV_ERR_BUSY;
	}
	if (now_ms >= e->pending_till_ms)
		e->pending = 0;
	if (e->pending >= rl->cfg.pending_per_ip) {
		*retry_s = (unsigned)((e->pending_till_ms - now_ms + 999) / 1000);
		rl->refused_pending++;
		return SV_ERR_BUSY;
	}
	e->pending++;
	e->pending_till_ms = now_ms + rl->cfg.pending_timeout_ms;
	return SV_OK;
}

void ratelimit_login_end(struct ratelimit *rl, const uint8_t key[static RATELIMIT_KEY_LEN],
                         uint64_t now_ms)
{
	if (rl->cfg.pending_per_ip == 0)
		return;
	struct entry *e = find(rl, key, now_ms, 0);
	if (e != NULL && e->pending > 0)
		e->pending--;
}

uint64_t ratelimit_refused_attest(const struct ratelimit *rl)
{
	return rl->refused_attest;
}
uint64_t ratelimit_refused_pending(const struct ratelimit *rl)
{
	return rl->refused_pending;
}
uint64_t ratelimit_refused_requests(const struct ratelimit *rl)
{
	return rl->refused_req;
}
uint64_t ratelimit_refused_conns(const struct ratelimit *rl)
{
	return rl->refused_conn;
}
