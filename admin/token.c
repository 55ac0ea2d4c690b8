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
		static char tok[TOKEN_MAX_LEN + 1];
		r = admin_jwk_mint(&k, tenant, sub, aud, scope, now, ttl, tok, sizeof(tok), why,
		                   sizeof(why));
		if (r == SV_OK) {
			printf("%s\n", tok);
			r = fflush(stdout) == 0 ? SV_OK : SV_ERR_IO;
		}
		admin_jwk_free(&k);
	}
	return admin_finish(r, why);
}
