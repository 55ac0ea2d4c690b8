/* Unit tests for GET /v1/info's document: common/info.c (vault id, encoder, as the enclave builds
 * it) and client/info.c (decoder, the comparison before the first guess). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "client/info.h"
#include "common/err.h"
#include "common/info.h"

static struct sv_info sample(const char *context)
{
	struct sv_info in = {.context_len = strlen(context),
	                     .guess_default = 10,
	                     .guess_max = 20,
	                     .versions = {1},
	                     .n_versions = 1,
	                     .ksf_t = INFO_KSF_T,
	                     .ksf_m_kib = INFO_KSF_M_KIB};
	snprintf(in.suite, sizeof(in.suite), "%s", INFO_SUITE);
	memcpy(in.context, context, in.context_len);
	for (size_t i = 0; i < INFO_PK_LEN; i++)
		in.server_pk[i] = (uint8_t)(0xa0 + i);
	info_vault_id(in.vault_id, in.server_pk);
	return in;
}

/* The encoding of in as a NUL-terminated string in text. */
static size_t encode(const struct sv_info *in, char *text, size_t n)
{
	struct sv_buf b;
	assert_int_equal(sv_buf_init(&b, INFO_JSON_MAX), 0);
	assert_int_equal(info_encode(in, &b), 0);
	assert_true(b.len < n);
	memcpy(text, b.data, b.len);
	text[b.len] = '\0';
	size_t len = b.len;
	sv_buf_free(&b);
	return len;
}

static void test_vault_id(void **state)
{
	/* SHA-256("sealvault-vault-id-1" | pk), first 16 bytes, computed independently */
	uint8_t pk[INFO_PK_LEN] = {0}, id[INFO_VAULT_ID_LEN], h[32];
	uint8_t msg[20 + INFO_PK_LEN];
	memcpy(msg, "sealvault-vault-id-1", 20);
	memset(msg + 20, 0, INFO_PK_LEN);
	crypto_hash_sha256(h, msg, sizeof(msg));
	info_vault_id(id, pk);
	assert_memory_equal(id, h, INFO_VAULT_ID_LEN);
	pk[31] = 1;
	info_vault_id(id, pk);
	assert_memory_not_equal(id, h, INFO_VAULT_ID_LEN);
}

static void test_round_trip(void **state)
{
	struct sv_info in = sample("sealvault-v1"), out;
	char text[INFO_JSON_MAX + 1], why[256];
	size_t len = encode(&in, text, sizeof(text));
	/* the fields docs/protocol.md names, as a curl user sees them */
	assert_non_null(strstr(text, "\"suite\":\"OPAQUE-3DH-ristretto255-SHA512\""));
	assert_non_null(strstr(text, "\"context\":\"sealvault-v1\""));
	assert_non_null(strstr(text, "\"context_hex\":\"7365616c7661756c742d7631\""));
	assert_non_null(strstr(text, "\"guess_limit\":{\"default\":10,\"max\":20}"));
	assert_non_null(strstr(text, "\"protocol_versions\":[1]"));
	assert_non_null(
	    strstr(text, "\"ksf\":{\"type\":\"argon2id\",\"t\":3,\"m_kib\":65536,\"p\":1}"));
	assert_int_equal(client_info_decode(&out, text, len, why, sizeof(why)), 0);
	assert_string_equal(out.suite, INFO_SUITE);
	assert_int_equal(out.context_len, 12);
	assert_memory_equal(out.context, "sealvault-v1", 12);
	assert_int_equal(out.guess_default, 10);
	assert_int_equal(out.guess_max, 20);
	assert_memory_equal(out.server_pk, in.server_pk, INFO_PK_LEN);
	assert_memory_equal(out.vault_id, in.vault_id, INFO_VAULT_ID_LEN);
	assert_int_equal(out.n_versions, 1);
	assert_int_equal(out.versions[0], 1);
	assert_int_equal(out.ksf_t, INFO_KSF_T);
	assert_int_equal(out.ksf_m_kib, INFO_KSF_M_KIB);
	assert_int_equal(
	    client_info_check(&out, (const uint8_t *)"sealvault-v1", 12, 1, why, sizeof(why)), 0);
}

/* A context that is not printable text is null as text and exact in hex; the longest one fits. */
static void test_binary_and_long_context(void **state)
{
	struct sv_info in = sample(""), out;
	char text[INFO_JSON_MAX + 1], why[256];
	in.context_len = 3;
	memcpy(in.context, "a\0\xff", 3);
	size_t len = encode(&in, text, sizeof(text));
	assert_non_null(strstr(text, "\"context\":null"));
	assert_non_null(strstr(text, "\"context_hex\":\"6100ff\""));
	assert_int_equal(client_info_decode(&out, text, len, why, sizeof(why)), 0);
	assert_int_equal(out.context_len, 3);
	assert_memory_equal(out.context, "a\0\xff", 3);
	/* empty context */
	in.context_len = 0;
	len = encode(&in, text, sizeof(text));
	assert_int_equal(client_info_decode(&out, text, len, why, sizeof(why)), 0);
	assert_int_equal(out.context_len, 0);
	assert_int_equal(client_info_check(&out, NULL, 0, 1, why, sizeof(why)), 0);
	/* 1024 bytes of '"' (escaped twice over in the text field) */
	in.context_len = INFO_CONTEXT_MAX;
	memset(in.context, '"', INFO_CONTEXT_MAX);
	len = encode(&in, text, sizeof(text));
	assert_int_equal(client_info_decode(&out, text, len, why, sizeof(why)), 0);
	assert_int_equal(out.context_len, INFO_CONTEXT_MAX);
	in.context_len = INFO_CONTEXT_MAX + 1;
	struct sv_buf b;
	assert_int_equal(sv_buf_init(&b, INFO_JSON_MAX), 0);
	assert_int_equal(info_encode(&in, &b), SV_ERR_RANGE);
	in = sample("x");
	in.guess_max = 256;
	assert_int_equal(info_encode(&in, &b), SV_ERR_RANGE);
	in = sample("x");
	in.n_versions = 0;
	assert_int_equal(info_encode(&in, &b), SV_ERR_RANGE);
	sv_buf_free(&b);
}

static void test_mismatch_messages(void **state)
{
	struct sv_info in = sample("prod-v1");
	char why[512];
	assert_int_equal(client_info_check(&in, (const uint8_t *)"test-v1", 7, 1, why, sizeof(why)),
	                 SV_ERR_CONFIG);
	assert_string_equal(why, "the server's OPAQUE context is 'prod-v1', this client uses "
	                         "'test-v1' (set --context to the server's)");
	/* a prefix is not the context */
	assert_int_equal(client_info_check(&in, (const uint8_t *)"prod-v", 6, 1, why, sizeof(why)),
	                 SV_ERR_CONFIG);
	assert_int_equal(client_info_check(&in, (const uint8_t *)"a\n", 2, 1, why, sizeof(why)),
	                 SV_ERR_CONFIG);
	assert_non_null(strstr(why, "this client uses hex 610a"));
	snprintf(in.suite, sizeof(in.suite), "OPAQUE-3DH-P256-SHA256");
	assert_int_equal(client_info_check(&in, (const uint8_t *)"prod-v1", 7, 1, why, sizeof(why)),
	                 SV_ERR_CONFIG);
	assert_string_equal(why, "the server's OPAQUE suite is 'OPAQUE-3DH-P256-SHA256', this "
	                         "client uses 'OPAQUE-3DH-ristretto255-SHA512' (this client "
	                         "cannot use this server)");
	in = sample("prod-v1");
	in.versions[0] = 2;
	in.versions[1] = 3;
	in.n_versions = 2;
	assert_int_equal(client_info_check(&in, (const uint8_t *)"prod-v1", 7, 1, why, sizeof(why)),
	                 SV_ERR_CONFIG);
	assert_non_null(strstr(why, "version(s) 2, 3, this client speaks 1"));
	assert_int_equal(client_info_check(&in, (const uint8_t *)"prod-v1", 7, 3, why, sizeof(why)),
	                 0);
}

/* Replaces the first occurrence of from in text (NUL-terminated) by to. */
static size_t edit(char *text, size_t n, const char *from, const char *to)
{
	char *p = strstr(text, from);
	assert_non_null(p);
	size_t tail = strlen(p + strlen(from));
	assert_true(strlen(text) - strlen(from) + strlen(to) < n);
	memmove(p + strlen(to), p + strlen(from), tail + 1);
	memcpy(p, to, strlen(to));
	return strlen(text);
}

static void test_hostile(void **state)
{
	static const struct {
		const char *from, *to;
		const char *why;
	} cases[] = {
	    {"\"suite\":", "\"suitX\":", "suite"},
	    {"\"suite\":\"OPAQUE-3DH-ristretto255-SHA512\"", "\"suite\":\"\"", "suite"},
	    {"\"suite\":\"OPAQUE-3DH-ristretto255-SHA512\"", "\"suite\":7", "suite"},
	    {"\"context_hex\":\"7365616c7661756c742d7631\"", "\"context_hex\":\"736\"",
	     "context_hex"},
	    {"\"context_hex\":\"7365616c7661756c742d7631\"", "\"context_hex\":\"zz\"",
	     "context_hex"},
	    {"\"default\":10", "\"default\":0", "default"},
	    {"\"max\":20", "\"max\":256", "max"},
	    {"\"max\":20", "\"max\":\"20\"", "max"},
	    {"\"guess_limit\":{", "\"guess_limiX\":{", "guess_limit"},
	    {"\"server_public_key\":\"a0", "\"server_public_key\":\"", "server_public_key"},
	    {"\"vault_id\":\"", "\"vault_id\":\"00", "vault_id"},
	    {"\"protocol_versions\":[1]", "\"protocol_versions\":[]", "protocol_versions"},
	    {"\"protocol_versions\":[1]", "\"protocol_versions\":[0]", "protocol_versions"},
	    {"\"protocol_versions\":[1]", "\"protocol_versions\":[1,2,3,4,5,6,7,8,9]",
	     "protocol_versions"},
	    {"\"protocol_versions\":[1]", "\"protocol_versions\":1", "protocol_versions"},
	    {"\"t\":3", "\"t\":0", "\"t\""},
	    {"\"m_kib\":65536", "\"m_kib\":4294967296", "m_kib"},
	    {"\"ksf\":{", "\"ksX\":{", "ksf"},
	};
	struct sv_info in = sample("sealvault-v1"), out;
	char orig[INFO_JSON_MAX + 1], text[INFO_JSON_MAX + 64], why[256];
	size_t olen = encode(&in, orig, sizeof(orig));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(text, orig, olen + 1);
		size_t len = edit(text, sizeof(text), cases[i].from, cases[i].to);
		why[0] = '\0';
		assert_int_equal(client_info_decode(&out, text, len, why, sizeof(why)),
		                 SV_ERR_INVALID);
		assert_non_null(strstr(why, cases[i].why));
		assert_int_equal(out.context_len, 0); /* nothing half-filled */
	}
	/* truncated at every length, trailing bytes, not an object, too long */
	for (size_t n = 0; n < olen; n++)
		assert_int_equal(client_info_decode(&out, orig, n, why, sizeof(why)),
		                 SV_ERR_INVALID);
	memcpy(text, orig, olen);
	memcpy(text + olen, " {}", 3);
	assert_int_equal(client_info_decode(&out, text, olen + 3, why, sizeof(why)),
	                 SV_ERR_INVALID);
	assert_int_equal(client_info_decode(&out, "[1]", 3, why, sizeof(why)), SV_ERR_INVALID);
	assert_int_equal(client_info_decode(&out, orig, INFO_JSON_MAX + 1, why, sizeof(why)),
	                 SV_ERR_INVALID);
	/* unknown members are ignored; an unknown KSF is advice we cannot follow, not an error */
	memcpy(text, orig, olen + 1);
	size_t len = edit(text, sizeof(text), "\"ksf\":{\"type\":\"argon2id\"",
	                  "\"later\":[{}],\"ksf\":{\"type\":\"scrypt\"");
	assert_int_equal(client_info_decode(&out, text, len, why, sizeof(why)), 0);
	assert_int_equal(out.ksf_t, 0);
	assert_int_equal(out.ksf_m_kib, 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vault_id),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_binary_and_long_context),
	    cmocka_unit_test(test_mismatch_messages),
	    cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
