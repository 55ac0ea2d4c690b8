/* Unit tests for broker/ratelimit: token bucket, refill, per-address connection cap, address
 * keys, and a full table failing closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>

#include "broker/ratelimit.h"
#include "common/err.h"

static void key_prefix(const char *ip, unsigned prefix, uint8_t key[RATELIMIT_KEY_LEN])
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	assert_int_equal(ratelimit_key((struct sockaddr *)&ss, prefix, key), 0);
}

static void key_of(const char *ip, uint8_t key[RATELIMIT_KEY_LEN])
{
	key_prefix(ip, 64, key);
}

/* A reload of the three limits the older tests change; the rest as ratelimit_new had them. */
static int reconf(struct ratelimit *rl, unsigned rate, unsigned burst, unsigned conns)
{
	struct ratelimit_config c;
	ratelimit_config_get(rl, &c);
	c.rate = rate;
	c.burst = burst;
	c.conns_per_ip = conns;
	return ratelimit_configure(rl, &c);
}

static void test_bucket(void **state)
{
	struct ratelimit *rl;
	struct ratelimit_config cfg = {.rate = 10, .burst = 3, .ipv6_prefix = 64, .table_size = 64};
	uint8_t a[RATELIMIT_KEY_LEN], b[RATELIMIT_KEY_LEN];
	assert_int_equal(ratelimit_new(&rl, &cfg), 0);
	key_of("192.0.2.1", a);
	key_of("192.0.2.2", b);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, a, 1000), 0);
	assert_int_equal(ratelimit_take(rl, a, 1000), SV_ERR_BUSY);
	assert_int_equal(ratelimit_take(rl, b, 1000), 0); /* another address is not affected */
	assert_int_equal(ratelimit_take(rl, a, 1050), SV_ERR_BUSY); /* half a token */
	assert_int_equal(ratelimit_take(rl, a, 1100), 0);           /* one token after 100 ms */
	assert_int_equal(ratelimit_take(rl, a, 1100), SV_ERR_BUSY);
	for (int i = 0; i < 3; i++) /* a long pause refills only up to the burst */
		assert_int_equal(ratelimit_take(rl, a, 100000), 0);
	assert_int_equal(ratelimit_take(rl, a, 100000), SV_ERR_BUSY);
	assert_int_equal(ratelimit_refused_requests(rl), 4);
	ratelimit_free(rl);
}

static void test_unlimited_and_bounds(void **state)
{
	struct ratelimit *rl;
	struct ratelimit_config cfg = {.rate = 0, .burst = 0, .ipv6_prefix = 64, .table_size = 64};
	uint8_t a[RATELIMIT_KEY_LEN];
	assert_int_equal(ratelimit_new(&rl, &cfg), 0);
	key_of("2001:db8::1", a);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ratelimit_take(rl, a, 0), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ratelimit_conn_open(rl, a, 0), 0);
	ratelimit_free(rl);
	struct ratelimit_config bad[] = {
	    {.rate = 1, .burst = 0, .ipv6_prefix = 64, .table_size = 64},
	    {.rate = 1, .burst = 1, .ipv6_prefix = 64, .table_size = 63},
	    {.rate = 1, .burst = 1, .ipv6_prefix = 64, .table_size = 100},
	    {.rate = 1, .burst = 1, .ipv6_prefix = 64, .table_size = 32},
	    {.rate = 1, .burst = 1, .ipv6_prefix = 64, .table_size = 1u << 21},
	    {.rate = 1, .burst = 1, .ipv6_prefix = 31, .table_size = 64},
	    {.rate = 1, .burst = 1, .ipv6_prefix = 129, .table_size = 64},
	    {.rate = 1, .burst = 1, .ipv6_prefix = 64, .attest_rate = 1, .table_size = 64},
	    {.rate = 1, .burst = 1, .ipv6_prefix = 64, .pending_per_ip = 1, .table_size = 64},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ratelimit_new(&rl, &bad[i]), SV_ERR_RANGE);
}

static void test_keys(void **state)
{
	uint8_t a[RATELIMIT_KEY_LEN], b[RATELIMIT_KEY_LEN];
	key_of("198.51.100.7", a);
	key_of("::ffff:198.51.100.7", b);
	assert_memory_equal(a, b, RATELIMIT_KEY_LEN); /* the same client over v4 and v4-mapped v6 */
	struct sockaddr sa = {.sa_family = AF_UNIX};
	assert_int_equal(ratelimit_key(&sa, 64, a), SV_ERR_INVALID);
	assert_int_equal(ratelimit_key(NULL, 64, a), SV_ERR_INVALID);
	/* IPv6: one /64 is one client by default, the next /64 another */
	key_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd", a);
	key_of("2001:db8:1:2::1", b);
	assert_memory_equal(a, b, RATELIMIT_KEY_LEN);
	key_of("2001:db8:1:3::1", b);
	assert_memory_not_equal(a, b, RATELIMIT_KEY_LEN);
	/* other prefix lengths, at and off byte boundaries */
	key_prefix("2001:db8:1:2:aaaa::", 128, a);
	key_prefix("2001:db8:1:2:aaab::", 128, b);
	assert_memory_not_equal(a, b, RATELIMIT_KEY_LEN);
	key_prefix("2001:db8:1:2:aaaa::", 79, a);
	key_prefix("2001:db8:1:2:aaab::", 79, b); /* differ in bit 79 only */
	assert_memory_equal(a, b, RATELIMIT_KEY_LEN);
	key_prefix("2001:db8:1:2:aaaa::", 80, a);
	key_prefix("2001:db8:1:2:aaab::", 80, b);
	assert_memory_not_equal(a, b, RATELIMIT_KEY_LEN);
	key_prefix("2001:db8:ffff:1::", 48, a);
	key_prefix("2001:db8:ffff:2::", 48, b);
	assert_memory_equal(a, b, RATELIMIT_KEY_LEN);
	/* IPv4-mapped IPv6 keeps its whole IPv4 address whatever the prefix */
	key_prefix("::ffff:198.51.100.7", 32, a);
	key_prefix("::ffff:198.51.100.8", 32, b);
	assert_memory_not_equal(a, b, RATELIMIT_KEY_LEN);
	key_of("198.51.100.7", b);
	assert_memory_equal(a, b, RATELIMIT_KEY_LEN);
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	assert_int_equal(ratelimit_key((struct sockaddr *)&s6, 31, a), SV_ERR_INVALID);
	assert_int_equal(ratelimit_key((struct sockaddr *)&s6, 129, a), SV_ERR_INVALID);
}

/* Two addresses of one /64 share one bucket; a reload to /128 separates them. */
static void test_ipv6_prefix_shares_bucket(void **state)
{
	struct ratelimit *rl;
	struct ratelimit_config cfg = {.rate = 1, .burst = 2, .ipv6_prefix = 64, .table_size = 64};
	uint8_t a[RATELIMIT_KEY_LEN], b[RATELIMIT_KEY_LEN];
	assert_int_equal(ratelimit_new(&rl, &cfg), 0);
	key_prefix("2001:db8:5:6::1", ratelimit_ipv6_prefix(rl), a);
	key_prefix("2001:db8:5:6:ffff::2", ratelimit_ipv6_prefix(rl), b);
	assert_int_equal(ratelimit_take(rl, a, 0), 0);
	assert_int_equal(ratelimit_take(rl, b, 0), 0);
	assert_int_equal(ratelimit_take(rl, a, 0), SV_ERR_BUSY);
	assert_int_equal(ratelimit_take(rl, b, 0), SV_ERR_BUSY);
	cfg.ipv6_prefix = 128;
	assert_int_equal(ratelimit_configure(rl, &cfg), 0);
	assert_int_equal(ratelimit_ipv6_prefix(rl), 128);
	key_prefix("2001:db8:5:6::1", ratelimit_ipv6_prefix(rl), a);
	key_prefix("2001:db8:5:6:ffff::2", ratelimit_ipv6_prefix(rl), b);
	assert_int_equal(ratelimit_take(rl, a, 0), 0);
	assert_int_equal(ratelimit_take(rl, b, 0), 0);
	ratelimit_free(rl);
}

/* The global attestation bucket: burst, refill, Retry-After. */
static void test_attestation(void **state)
{
	struct ratelimit *rl;
	struct ratelimit_config cfg = {.rate = 100,
	                               .burst = 100,
	                               .ipv6_prefix = 64,
	                               .attest_rate = 2,
	                               .attest_burst = 3,
	                               .table_size = 64};
	unsigned retry = 0;
	assert_int_equal(ratelimit_new(&rl, &cfg), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_attest_take(rl, 1000, &retry), 0);
	assert_int_equal(ratelimit_attest_take(rl, 1000, &retry), SV_ERR_BUSY);
	assert_int_equal(retry, 1);
	assert_int_equal(ratelimit_attest_take(rl, 1500, &retry), 0); /* one token per 500 ms */
	assert_int_equal(ratelimit_attest_take(rl, 1500, &retry), SV_ERR_BUSY);
	assert_int_equal(ratelimit_refused_attest(rl), 2);
	cfg.attest_rate = 0; /* unlimited after a reload */
	assert_int_equal(ratelimit_configure(rl, &cfg), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(ratelimit_attest_take(rl, 1500, &retry), 0);
	ratelimit_free(rl);
}

/* Unfinished logins per address: capped, released by login_end, aged out after the timeout. */
static void test_pending_logins(void **state)
{
	struct ratelimit *rl;
	struct ratelimit_config cfg = {.rate = 100,
	                               .burst = 100,
	                               .ipv6_prefix = 64,
	                               .pending_per_ip = 2,
	                               .pending_timeout_ms = 60000,
	                               .table_size = 64};
	uint8_t a[RATELIMIT_KEY_LEN], b[RATELIMIT_KEY_LEN];
	unsigned retry = 0;
	assert_int_equal(ratelimit_new(&rl, &cfg), 0);
	key_of("192.0.2.10", a);
	key_of("192.0.2.11", b);
	assert_int_equal(ratelimit_login_begin(rl, a, 1000, &retry), 0);
	assert_int_equal(ratelimit_login_begin(rl, a, 2000, &retry), 0);
	assert_int_equal(ratelimit_login_begin(rl, a, 3000, &retry), SV_ERR_BUSY);
	assert_int_equal(retry, 59); /* the last one counted at 2000 ms ends at 62000 ms */
	assert_int_equal(ratelimit_login_begin(rl, b, 3000, &retry), 0); /* another address */
	ratelimit_login_end(rl, a, 3000);
	assert_int_equal(ratelimit_login_begin(rl, a, 3000, &retry), 0);
	assert_int_equal(ratelimit_login_begin(rl, a, 3000, &retry), SV_ERR_BUSY);
	/* all of them age out together after the timeout */
	assert_int_equal(ratelimit_login_begin(rl, a, 63000, &retry), 0);
	assert_int_equal(ratelimit_login_begin(rl, a, 63000, &retry), 0);
	assert_int_equal(ratelimit_login_begin(rl, a, 63000, &retry), SV_ERR_BUSY);
	assert_int_equal(ratelimit_refused_pending(rl), 3);
	/* an end without a begin never goes below zero */
	for (int i = 0; i < 5; i++)
		ratelimit_login_end(rl, b, 63000);
	assert_int_equal(ratelimit_login_begin(rl, b, 63000, &retry), 0);
	assert_int_equal(ratelimit_login_begin(rl, b, 63000, &retry), 0);
	assert_int_equal(ratelimit_login_begin(rl, b, 63000, &retry), SV_ERR_BUSY);
	ratelimit_free(rl);
}

static void test_connections(void **state)
{
	struct ratelimit *rl;
	struct ratelimit_config cfg = {
	    .rate = 5, .burst = 5, .conns_per_ip = 2, .ipv6_prefix = 64, .table_size = 64};
	uint8_t a[RATELIMIT_KEY_LEN];
	assert_int_equal(ratelimit_new(&rl, &cfg), 0);
	key_of("203.0.113.9", a);
	assert_int_equal(ratelimit_conn_open(rl, a, 0), 1);
	assert_int_equal(ratelimit_conn_open(rl, a, 0), 1);
	assert_int_equal(ratelimit_conn_open(rl, a, 0), SV_ERR_BUSY);
	ratelimit_conn_close(rl, a);
	assert_int_equal(ratelimit_conn_open(rl, a, 0), 1);
	assert_int_equal(ratelimit_refused_conns(rl), 1);
	ratelimit_free(rl);
}

/* A reload changes the caps under open connections: the counted ones are released whatever the
 * cap is by then, so going through "unlimited" and back leaves no stale count behind. */
static void test_configure(void **state)
{
	struct ratelimit *rl;
	struct ratelimit_config cfg = {
	    .rate = 5, .burst = 5, .conns_per_ip = 2, .ipv6_prefix = 64, .table_size = 64};
	uint8_t a[RATELIMIT_KEY_LEN];
	assert_int_equal(ratelimit_new(&rl, &cfg), 0);
	key_of("203.0.113.7", a);
	assert_int_equal(ratelimit_conn_open(rl, a, 0), 1);
	assert_int_equal(ratelimit_conn_open(rl, a, 0), 1);
	assert_int_equal(reconf(rl, 5, 5, 0), 0);
	assert_int_equal(ratelimit_conn_open(rl, a, 0), 0); /* unlimited: not counted */
	ratelimit_conn_close(rl, a);                        /* the two counted ones close */
	ratelimit_conn_close(rl, a);
	assert_int_equal(reconf(rl, 5, 5, 1), 0);
	assert_int_equal(ratelimit_conn_open(rl, a, 0), 1);
	assert_int_equal(ratelimit_conn_open(rl, a, 0), SV_ERR_BUSY);
	/* a lower burst caps the bucket at its next refill; rate 0 lets everything through */
	assert_int_equal(reconf(rl, 1, 2, 1), 0);
	int ok = 0;
	for (int i = 0; i < 10; i++)
		ok += ratelimit_take(rl, a, 1000) == 0;
	assert_int_equal(ok, 2);
	assert_int_equal(reconf(rl, 0, 0, 1), 0);
	assert_int_equal(ratelimit_take(rl, a, 1000), 0);
	assert_int_equal(reconf(rl, 1, 0, 1), SV_ERR_RANGE);
	assert_int_equal(ratelimit_take(rl, a, 1000), 0); /* unchanged */
	ratelimit_free(rl);
}

static void test_full_table(void **state)
{
	struct ratelimit *rl;
	struct ratelimit_config cfg = {
	    .rate = 5, .burst = 5, .conns_per_ip = 4, .ipv6_prefix = 64, .table_size = 64};
	uint8_t k[RATELIMIT_KEY_LEN];
	char ip[32];
	assert_int_equal(ratelimit_new(&rl, &cfg), 0);
	/* addresses holding connections are never evicted; with the table full of them, a new
	 * address is refused rather than let through */
	int refused = 0, held = 0;
	for (int i = 0; i < 200; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 250, i % 250);
		key_of(ip, k);
		if (ratelimit_conn_open(rl, k, (uint64_t)i) == 1)
			held++;
		else
			refused++;
	}
	assert_true(held <= 64);
	assert_true(refused >= 200 - 64);
	/* idle addresses (no connection) are reused */
	ratelimit_free(rl);
	assert_int_equal(ratelimit_new(&rl, &cfg), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250);
		key_of(ip, k);
		assert_int_equal(ratelimit_take(rl, k, (uint64_t)i), 0);
	}
	ratelimit_free(rl);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket),
	    cmocka_unit_test(test_unlimited_and_bounds),
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_connections),
	    cmocka_unit_test(test_full_table),
	    cmocka_unit_test(test_configure),
	    cmocka_unit_test(test_ipv6_prefix_shares_bucket),
	    cmocka_unit_test(test_attestation),
	    cmocka_unit_test(test_pending_logins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
