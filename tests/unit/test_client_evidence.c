/*
 * client/evidence.c (with client/jfield.c): the evidence JSON decoder. A complete document
 * decodes into the right fields; every required member missing, of the wrong type or badly
 * encoded is refused with its name; hostile sizes and trailing bytes are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <sodium.h>

#include "client/evidence.h"
#include "common/err.h"

static char *b64(const void *p, size_t n)
{
	size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(cap);
	assert_non_null(s);
	return sodium_bin2base64(s, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
}

static void put_b64(json_object *o, const char *k, const void *p, size_t n)
{
	char *s = b64(p, n);
	json_object_object_add(o, k, json_object_new_string(s));
	free(s);
}

static json_object *pcrs(const int *list, int n, uint8_t fill)
{
	json_object *m = json_object_new_object();
	char k[4], h[65];
	uint8_t v[32];
	for (int i = 0; i < n; i++) {
		memset(v, fill + list[i], 32);
		sodium_bin2hex(h, sizeof(h), v, 32);
		snprintf(k, sizeof(k), "%d", list[i]);
		json_object_object_add(m, k, json_object_new_string(h));
	}
	return m;
}

/* A syntactically complete evidence document (the values are not a real TPM's). */
static json_object *doc(void)
{
	static const int quoted[] = {0, 1, 2, 3, 4, 5, 6, 7, 10}, boot[] = {0, 1, 2, 3, 4, 5, 6, 7};
	uint8_t blob[100], stmt[ATTEST_STMT_LEN];
	json_object *o = json_object_new_object(), *q = json_object_new_object();
	json_object *id = json_object_new_object(), *st = json_object_new_object();
	json_object *bp = json_object_new_array();
	memset(blob, 0xab, sizeof(blob));
	memset(stmt, 0x5a, sizeof(stmt));
	json_object_object_add(o, "version", json_object_new_int(1));
	json_object_object_add(o, "nonce", json_object_new_string("00112233445566778899"));
	put_b64(o, "ek_public", blob, 90);
	put_b64(o, "ek_certificate", blob, 100);
	put_b64(o, "ak_public", blob, 80);
	put_b64(q, "attest", blob, 70);
	put_b64(q, "signature", blob, 72);
	json_object_object_add(q, "pcrs", pcrs(quoted, 9, 0));
	json_object_object_add(o, "quote", q);
	put_b64(id, "public", blob, 60);
	put_b64(id, "certify_attest", blob, 61);
	put_b64(id, "certify_signature", blob, 62);
	put_b64(id, "policy_key", blob, 63);
	for (int i = 0; i < 8; i++)
		json_object_array_add(bp, json_object_new_int(boot[i]));
	json_object_object_add(id, "boot_pcrs", bp);
	json_object_object_add(id, "approved_policy",
	                       json_object_new_string("ABABABABABABABABABABABABABABABAB"
	                                              "abababababababababababababababab"));
	json_object_object_add(id, "approved_pcrs", pcrs(boot, 8, 0x40));
	put_b64(id, "policy_signature", blob, 64);
	json_object_object_add(o, "identity", id);
	put_b64(st, "body", stmt, sizeof(stmt));
	put_b64(st, "signature", blob, 65);
	json_object_object_add(o, "statement", st);
	put_b64(o, "event_log", "EVENTLOG", 8);
	put_b64(o, "ima_log", "10 x\n", 5);
	json_object_object_add(o, "unknown_future_member", json_object_new_int(7));
	return o;
}

static int decode(json_object *o, struct client_evidence *ev, char *why, size_t why_len)
{
	const char *s = json_object_to_json_string(o);
	return client_evidence_decode(ev, s, strlen(s), why, why_len);
}

static void test_complete(void **state)
{
	struct client_evidence *ev = calloc(1, sizeof(*ev));
	char why[256];
	json_object *o = doc();
	assert_int_equal(decode(o, ev, why, sizeof(why)), SV_OK);
	assert_int_equal(ev->nonce_len, 10);
	assert_int_equal(ev->ek_public.len, 90);
	assert_int_equal(ev->ek_cert_len, 100);
	assert_int_equal(ev->quote_signature.len, 72);
	assert_int_equal(ev->quote_pcrs, 0x4ff);
	assert_int_equal(ev->quote_values[10][0], 10);
	assert_int_equal(ev->boot_pcrs, 0xff);
	assert_int_equal(ev->approved_pcrs, 0xff);
	assert_int_equal(ev->approved_values[7][31], 0x47);
	assert_int_equal(ev->approved_policy[0], 0xab);
	assert_int_equal(ev->statement[143], 0x5a);
	assert_int_equal(ev->event_log_len, 8);
	assert_memory_equal(ev->event_log, "EVENTLOG", 8);
	assert_int_equal(ev->ima_log_len, 5);
	client_evidence_clear(ev);
	/* optional members may be absent */
	json_object_object_del(o, "ek_certificate");
	json_object_object_del(o, "event_log");
	json_object_object_del(o, "ima_log");
	assert_int_equal(decode(o, ev, why, sizeof(why)), SV_OK);
	assert_int_equal(ev->ek_cert_len, 0);
	assert_null(ev->event_log);
	assert_null(ev->ima_log);
	json_object_put(o);
	free(ev);
}

/* Deletes or replaces one member (path "a" or "a.b") and expects its name in the refusal. */
static void refused(const char *outer, const char *member, json_object *value, const char *text)
{
	struct client_evidence *ev = calloc(1, sizeof(*ev));
	char why[256];
	json_object *o = doc(), *p = o;
	if (outer != NULL)
		assert_true(json_object_object_get_ex(o, outer, &p));
	if (value == NULL)
		json_object_object_del(p, member);
	else
		json_object_object_add(p, member, value);
	assert_int_not_equal(decode(o, ev, why, sizeof(why)), SV_OK);
	assert_non_null(strstr(why, text));
	assert_null(ev->event_log); /* nothing left allocated */
	json_object_put(o);
	free(ev);
}

static void test_members(void **state)
{
	static const char *top[] = {"version", "nonce",    "ek_public", "ak_public",
	                            "quote",   "identity", "statement"};
	static const char *quote[] = {"attest", "signature", "pcrs"};
	static const char *ident[] = {"public",        "certify_attest",  "certify_signature",
	                              "policy_key",    "boot_pcrs",       "approved_policy",
	                              "approved_pcrs", "policy_signature"};
	for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
		refused(NULL, top[i], NULL, top[i]);
	for (size_t i = 0; i < sizeof(quote) / sizeof(quote[0]); i++)
		refused("quote", quote[i], NULL, quote[i]);
	for (size_t i = 0; i < sizeof(ident) / sizeof(ident[0]); i++)
		refused("identity", ident[i], NULL, ident[i]);
	refused("statement", "body", NULL, "body");
	refused("statement", "signature", NULL, "signature");
}

static void test_bad_values(void **state)
{
	char big[2 * 1100 + 1];
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	refused(NULL, "version", json_object_new_int(2), "unsupported version");
	refused(NULL, "version", json_object_new_string("1"), "wrong type");
	refused(NULL, "nonce", json_object_new_string("0011"), "nonce"); /* 2 bytes */
	refused(NULL, "nonce", json_object_new_string("001"), "nonce");  /* odd */
	refused(NULL, "nonce", json_object_new_string("zz11223344556677"), "nonce");
	refused(NULL, "ek_public", json_object_new_string("AAA"), "ek_public"); /* no padding */
	refused(NULL, "ek_public", json_object_new_string(""), "ek_public");
	refused(NULL, "ek_public", json_object_new_string("AA==AA=="), "ek_public");
	refused(NULL, "ek_public", json_object_new_string(big), "ek_public"); /* > 1024 bytes */
	refused(NULL, "ek_certificate", json_object_new_int(5), "ek_certificate");
	refused(NULL, "event_log", json_object_new_string("!!!!"), "event_log");
	refused("statement", "body", json_object_new_string("AAAA"), "not 144 bytes");
	refused("identity", "boot_pcrs", json_object_new_array(), "1 to 24 PCRs");
	json_object *a = json_object_new_array();
	json_object_array_add(a, json_object_new_int(3));
	json_object_array_add(a, json_object_new_int(3));
	refused("identity", "boot_pcrs", a, "increasing");
	a = json_object_new_array();
	json_object_array_add(a, json_object_new_int(24));
	refused("identity", "boot_pcrs", a, "0-23");
	static const char *keys[] = {"08", "24", "-1", "x", ""};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_object *m = json_object_new_object();
		json_object_object_add(m, keys[i], json_object_new_string("00"));
		refused("quote", "pcrs", m, "pcrs");
	}
	json_object *m = json_object_new_object();
	json_object_object_add(m, "1", json_object_new_string("0011"));
	refused("quote", "pcrs", m, "64 hex");
	refused("quote", "pcrs", json_object_new_object(), "lists no PCR");
	refused("identity", "approved_policy", json_object_new_string("00"), "approved_policy");
}

static void test_not_json(void **state)
{
	struct client_evidence *ev = calloc(1, sizeof(*ev));
	char why[256];
	json_object *o = doc();
	const char *s = json_object_to_json_string(o);
	size_t n = strlen(s);
	char *t = malloc(n + 3);
	memcpy(t, s, n);
	memcpy(t + n, " x", 2);
	assert_int_not_equal(client_evidence_decode(ev, t, n + 2, why, sizeof(why)), SV_OK);
	assert_non_null(strstr(why, "not valid JSON"));
	memcpy(t + n, " \n", 2);
	assert_int_equal(client_evidence_decode(ev, t, n + 2, why, sizeof(why)), SV_OK);
	client_evidence_clear(ev);
	for (size_t k = 0; k < n; k += 97) /* every truncation is refused */
		assert_int_not_equal(client_evidence_decode(ev, t, k, why, sizeof(why)), SV_OK);
	assert_int_not_equal(client_evidence_decode(ev, "[1,2]", 5, why, sizeof(why)), SV_OK);
	assert_non_null(strstr(why, "not an object"));
	assert_int_equal(
	    client_evidence_decode(ev, t, CLIENT_EVIDENCE_JSON_MAX + 1, why, sizeof(why)),
	    SV_ERR_RANGE);
	free(t);
	json_object_put(o);
	free(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_complete),
	    cmocka_unit_test(test_members),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_not_json),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
