/*
 * token-verify: the enclave's token check (enclave/token.c) on a tenants directory, for the
 * tests of tests/tokens/check-tokens.sh (tokens minted by sealvault-admin, PyJWT and jose).
 *
 *   token-verify --tenants DIR --aud REALM [--now T] [--max-lifetime S] [--skew S] < TOKEN
 *
 * Prints `ok tenant=NAME sub=SUB scope=MASK` and exits 0, or `refused: WHY` and exits 1; 2 for
 * a usage error or a directory that does not load.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/err.h"
#include "enclave/tenant.h"
#include "enclave/token.h"

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"tenants", required_argument, NULL, 'd'},
	    {"aud", required_argument, NULL, 'a'},
	    {"now", required_argument, NULL, 'n'},
	    {"max-lifetime", required_argument, NULL, 'l'},
	    {"skew", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *aud = NULL;
	struct token_policy pol = {.max_lifetime_s = TOKEN_MAX_LIFETIME_DEFAULT,
	                           .skew_s = TOKEN_SKEW_DEFAULT};
	long long now = (long long)time(NULL);
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'a': aud = optarg; break;
		case 'n': now = atoll(optarg); break;
		case 'l': pol.max_lifetime_s = atoll(optarg); break;
		case 's': pol.skew_s = atoll(optarg); break;
		default: return 2;
		}
	}
	if (dir == NULL || aud == NULL || strlen(aud) > TOKEN_AUD_MAX || optind != argc) {
		fprintf(stderr, "usage: token-verify --tenants DIR --aud REALM [--now T] "
		                "[--max-lifetime S] [--skew S] < TOKEN\n");
		return 2;
	}
	memcpy(pol.aud, aud, strlen(aud));
	if (sodium_init() < 0)
		return 2;
	struct tenant_set set;
	char why[512], tok[TOKEN_MAX_LEN + 2];
	if (tenant_set_load_dir(&set, dir, why, sizeof(why)) != SV_OK) {
		fprintf(stderr, "token-verify: %s\n", why);
		return 2;
	}
	size_t len = fread(tok, 1, sizeof(tok), stdin);
	while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r'))
		len--;
	struct token_claims cl;
	const char *reason;
	int r = token_verify(&set, &pol, now, tok, len, &cl, &reason);
	if (r == SV_OK)
		printf("ok tenant=%s sub=%.*s scope=%u\n", set.tenants[cl.tenant].name,
		       (int)cl.sub_len, (const char *)cl.sub, cl.scope);
	else
		printf("refused: %s\n", reason);
	tenant_set_free(&set);
	return r == SV_OK ? 0 : 1;
}
