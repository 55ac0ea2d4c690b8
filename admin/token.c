/*
 * `sealvault-admin token`: mints one access token (docs/tokens.md) with a tenant's private JWK
 * (from `tenant keygen`), for tests and demos; providers mint theirs in their own backends with
 * any JWT library. The token is printed on standard output, never stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <sodium.h>

#include "admin/admin.h"
#include "admin/jwk.h"
#include "common/err.h"
#include "enclave/tenant.h"
#include "enclave/token.h"

#define TTL_DEFAULT 300
#define TTL_MAX     86400

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s token --tenant NAME --key FILE --sub ID --aud REALM [--ttl S]\n"
	        "                       [--scope 'register recover delete'] [--now T]\n"
	        "  Prints an access token for user ID of tenant NAME, signed with the private JWK\n"
	        "  in FILE (from `tenant keygen`), addressed to the vault whose id is REALM (the\n"
	        "  vault id of `status` and /v1/info), valid for S seconds (default %d; the vault\n"
	        "  refuses more than its maximum, 600 by default). Without --scope the token\n"
	        "  allows every operation. --now sets the issue time (seconds since 1970), for\n"
	        "  tests.\n",
	        ADMIN_PROG, TTL_DEFAULT);
}

static int parse_num(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Appends the base64url of text to out. */
static void append_b64(char *out, size_t out_max, const void *p, size_t n)
{
	size_t used = strlen(out);
	sodium_bin2base64(out + used, out_max - used, p, n,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static int add(struct json_object *o, const char *key, struct json_object *v)
{
	if (v == NULL || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static int mint(const struct admin_jwk *k, const char *tenant, const char *sub, const char *aud,
                const char *scope, long long now, long long ttl, char *why, size_t why_len)
{
	static char tok[TOKEN_MAX_LEN + 1];
	struct json_object *h = json_object_new_object(), *c = json_object_new_object();
	uint8_t sig[ADMIN_JWK_SIG_LEN];
	int r = SV_ERR_NOMEM;
	if (h == NULL || c == NULL || add(h, "alg", json_object_new_string(admin_jwk_alg(k))) ||
	    add(h, "kid", json_object_new_string(k->kid)) ||
	    add(h, "typ", json_object_new_string("JWT")) ||
	    add(c, "iss", json_object_new_string(tenant)) ||
	    add(c, "sub", json_object_new_string(sub)) ||
	    add(c, "aud", json_object_new_string(aud)) ||
	    add(c, "iat", json_object_new_int64(now)) ||
	    add(c, "exp", json_object_new_int64(now + ttl)) ||
	    (scope != NULL && add(c, "scope", json_object_new_string(scope))))
		goto out;
	const int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
	const char *hs = json_object_to_json_string_ext(h, flags);
	const char *cs = json_object_to_json_string_ext(c, flags);
	size_t need =
	    sodium_base64_ENCODED_LEN(strlen(hs), sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
	    sodium_base64_ENCODED_LEN(strlen(cs), sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
	    sodium_base64_ENCODED_LEN(sizeof(sig), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (need > sizeof(tok)) {
		snprintf(why, why_len, "the token would be over %d bytes", TOKEN_MAX_LEN);
		r = SV_ERR_RANGE;
		goto out;
	}
	tok[0] = '\0';
	append_b64(tok, sizeof(tok), hs, strlen(hs));
	strcat(tok, ".");
	append_b64(tok, sizeof(tok), cs, strlen(cs));
	if ((r = admin_jwk_sign(k, (const uint8_t *)tok, strlen(tok), sig)) != SV_OK) {
		snprintf(why, why_len, "signing failed");
		goto out;
	}
	strcat(tok, ".");
	append_b64(tok, sizeof(tok), sig, sizeof(sig));
	printf("%s\n", tok);
	r = fflush(stdout) == 0 ? SV_OK : SV_ERR_IO;
out:
	json_object_put(h);
	json_object_put(c);
	return r;
}

int admin_token_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"tenant", required_argument, NULL, 'T'},
	    {"key", required_argument, NULL, 'k'},
	    {"sub", required_argument, NULL, 's'},
	    {"aud", required_argument, NULL, 'a'},
	    {"ttl", required_argument, NULL, 't'},
	    {"scope", required_argument, NULL, 'S'},
	    {"now", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *tenant = NULL, *key = NULL, *sub = NULL, *aud = NULL, *scope = NULL;
	const char *ttl_s = NULL, *now_s = NULL;
	long long ttl = TTL_DEFAULT, now = (long long)time(NULL);
	char why[1024] = "";
	int c, other = 0;
	unsigned mask;
	while ((c = admin_getopt(argc, argv, opts, &other)) != -1) {
		switch (c) {
		case 'T': tenant = optarg; break;
		case 'k': key = optarg; break;
		case 's': sub = optarg; break;
		case 'a': aud = optarg; break;
		case 't': ttl_s = optarg; break;
		case 'S': scope = optarg; break;
		case 'n': now_s = optarg; break;
		case 'h': usage(stdout); return ADMIN_EX_OK;
		default: usage(stderr); return ADMIN_EX_USAGE;
		}
	}
	if (optind != argc || other || tenant == NULL || key == NULL || sub == NULL || aud == NULL)
		return admin_bad_args("token", usage);
	if (!tenant_name_valid(tenant) || strlen(sub) < 1 || strlen(sub) > TOKEN_SUB_MAX ||
	    strlen(aud) < 1 || strlen(aud) > TOKEN_AUD_MAX ||
	    (ttl_s != NULL && parse_num(ttl_s, 1, TTL_MAX, &ttl) != 0) ||
	    (now_s != NULL && parse_num(now_s, 0, TOKEN_TIME_MAX - TTL_MAX, &now) != 0) ||
	    (scope != NULL &&
	     (token_scope_parse(scope, strlen(scope), &mask) != SV_OK || mask == 0))) {
		fprintf(
		    stderr,
		    "%s token: invalid value: --tenant is a tenant name, --sub 1..%d bytes, --aud "
		    "1..%d bytes, --ttl 1..%d, --now 0..2^40, --scope words of 'register recover "
		    "delete' separated by single spaces\n",
		    ADMIN_PROG, TOKEN_SUB_MAX, TOKEN_AUD_MAX, TTL_MAX);
		return ADMIN_EX_USAGE;
	}
	if (sodium_init() < 0)
		return admin_finish(SV_ERR_INTERNAL, "libsodium could not be initialised");
	struct admin_jwk k;
	int r = admin_jwk_read(&k, key, why, sizeof(why));
	if (r == SV_OK) {
		r = mint(&k, tenant, sub, aud, scope, now, ttl, why, sizeof(why));
		admin_jwk_free(&k);
	}
	return admin_finish(r, why);
}
