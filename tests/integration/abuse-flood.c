/*
 * abuse-flood: N well-formed login/starts, each for identifier PREFIX-i (or PREFIX itself with
 * --same), sent from source address SRC and abandoned after KE2 (no login/finish), for
 * tests/integration/abuse.sh (test-only; not installed). Each holds a pending-login slot of the
 * enclave until login-timeout-s, as an attacker's would. With --token-dir DIR, the request for
 * identifier ID carries "Authorization: Bearer" and the token in the file DIR/ID. Prints one line
 * per HTTP status, "STATUS COUNT", and "retry-after N" for the first 429 that carried one.
 *
 *   abuse-flood URL CACERT SRC N PREFIX [--same] [--token-dir DIR]
 *
 * Exit 0 when every request got an HTTP answer, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <sodium.h>

#include "client/wire.h"
#include "common/buf.h"
#include "crypto/opaque.h"

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static long retry_after = -1;

static size_t header(char *p, size_t size, size_t n, void *arg)
{
	static const char name[] = "Retry-After:";
	(void)arg;
	if (size * n > sizeof(name) && strncasecmp(p, name, sizeof(name) - 1) == 0 &&
	    retry_after < 0)
		retry_after = strtol(p + sizeof(name) - 1, NULL, 10);
	return size * n;
}

/* The header "Authorization: Bearer TOKEN" with the token in dir/id (whitespace around it
 * dropped) into out; 0, or -1 when the file is missing, empty or too long. */
static int bearer(char *out, size_t cap, const char *dir, const char *id)
{
	static const char pre[] = "Authorization: Bearer ";
	char path[1024];
	size_t n;
	snprintf(path, sizeof(path), "%s/%s", dir, id);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	memcpy(out, pre, sizeof(pre) - 1);
	n = fread(out + sizeof(pre) - 1, 1, cap - sizeof(pre), f);
	int tail = fgetc(f) != EOF;
	fclose(f);
	while (n > 0 && (out[sizeof(pre) - 2 + n] == '\n' || out[sizeof(pre) - 2 + n] == ' ' ||
	                 out[sizeof(pre) - 2 + n] == '\r'))
		n--;
	out[sizeof(pre) - 1 + n] = 0;
	return n == 0 || tail ? -1 : 0;
}

int main(int argc, char **argv)
{
	long counts[600] = {0};
	int same = 0;
	const char *token_dir = NULL;
	int bad = argc < 6;
	for (int i = 6; i < argc && !bad; i++) {
		if (strcmp(argv[i], "--same") == 0)
			same = 1;
		else if (strcmp(argv[i], "--token-dir") == 0 && i + 1 < argc)
			token_dir = argv[++i];
		else
			bad = 1;
	}
	if (bad) {
		fprintf(stderr,
		        "usage: abuse-flood URL CACERT SRC N PREFIX [--same] [--token-dir DIR]\n");
		return 2;
	}
	int n = atoi(argv[4]);
	char url[512], id[128];
	snprintf(url, sizeof(url), "%s/v1/login/start", argv[1]);
	struct sv_buf req = {0};
	struct opaque_client_state *st = NULL;
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
	    sv_buf_init(&req, CLIENT_WIRE_BODY_MAX) != 0 ||
	    (st = sodium_malloc(sizeof(*st))) == NULL) {
		fprintf(stderr, "abuse-flood: set-up failed\n");
		return 1;
	}
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
	h = curl_slist_append(h, "Expect:");
	int failed = 0;
	for (int i = 0; i < n && c != NULL; i++) {
		uint8_t ke1[OPAQUE_KE1_LEN], pw[16];
		randombytes_buf(pw, sizeof(pw));
		if (same)
			snprintf(id, sizeof(id), "%s", argv[5]);
		else
			snprintf(id, sizeof(id), "%s-%d", argv[5], i);
		if (opaque_client_ke1(ke1, st, pw, sizeof(pw)) != 0 ||
		    client_wire_login_start(&req, (const uint8_t *)id, strlen(id), ke1) != 0) {
			fprintf(stderr, "abuse-flood: cannot make KE1\n");
			return 1;
		}
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_CAINFO, argv[2]);
		curl_easy_setopt(c, CURLOPT_INTERFACE, argv[3]);
		struct curl_slist *hh = h;
		if (token_dir != NULL) {
			static char auth[8192];
			if (bearer(auth, sizeof(auth), token_dir, id) != 0) {
				fprintf(stderr, "abuse-flood: no token in %s/%s\n", token_dir, id);
				return 1;
			}
			/* a fresh list each time: its first node is this request's token */
			hh = curl_slist_append(NULL, auth);
			for (struct curl_slist *x = h; x != NULL && hh != NULL; x = x->next)
				hh = curl_slist_append(hh, x->data);
			if (hh == NULL) {
				fprintf(stderr, "abuse-flood: out of memory\n");
				return 1;
			}
		}
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hh);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)req.data);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)req.len);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header);
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
		long code = 0;
		int ok = curl_easy_perform(c) == CURLE_OK &&
		         curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
		         code >= 100 && code < 600;
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		if (hh != h)
			curl_slist_free_all(hh);
		if (!ok) {
			failed++;
			continue;
		}
		counts[code]++;
	}
	for (int i = 100; i < 600; i++)
		if (counts[i] > 0)
			printf("%d %ld\n", i, counts[i]);
	if (retry_after >= 0)
		printf("retry-after %ld\n", retry_after);
	if (failed > 0)
		printf("failed %d\n", failed);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	sodium_free(st);
	sv_buf_free(&req);
	return failed == 0 ? 0 : 1;
}
