/*
 * drain-login: one recovery login in two halves, for tests/integration/drain.sh (test-only; not
 * installed). It is the client library's own login (client/wire.c, client/blob.c, client/http.c
 * and the OPAQUE code of crypto/), split where a real client would be slow: after login/start it
 * prints "ke2 attempts-left N" and waits for a line on stdin before it computes KE3 and sends
 * login/finish, so that the test can stop the server in between.
 *
 *   drain-login URL CACERT CONTEXT USER PASSWORD-FILE OUT-FILE KSF-T KSF-M-KIB
 *
 * Exit: 0 the secret was recovered (written to OUT-FILE), 2 wrong password (403), 3 locked
 * (410), 4 busy (503, its text printed), 1 anything else. Every outcome is printed on stdout as
 * "login/start HTTP N: text" or "login/finish HTTP N: text".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/blob.h"
#include "client/http.h"
#include "client/wire.h"
#include "common/buf.h"
#include "common/msg.h"
#include "crypto/ksf.h"
#include "crypto/opaque.h"

/* The exit code of a non-200 answer, after printing it. */
static int outcome(const char *step, long status, const struct sv_buf *rep)
{
	size_t n = sv_buf_remaining(rep);
	const uint8_t *p = sv_buf_ptr(rep);
	int text = n > 0;
	for (size_t i = 0; i < n; i++)
		text &= (p[i] >= 0x20 && p[i] <= 0x7e) || p[i] == '\n';
	printf("%s HTTP %ld: %.*s\n", step, status, text ? (int)n : 0, text ? (const char *)p : "");
	fflush(stdout);
	switch (status) {
	case 403: return 2;
	case 410: return 3;
	case 503: return 4;
	default: return 1;
	}
}

int main(int argc, char **argv)
{
	struct client_http *http = NULL;
	struct sv_buf req = {0}, rep = {0};
	struct opaque_client_state *st = NULL;
	struct client_wire_keys *keys = NULL;
	uint8_t ke1[OPAQUE_KE1_LEN], ke2[OPAQUE_KE2_LEN], ke3[OPAQUE_KE3_LEN];
	uint8_t sid[CLIENT_WIRE_SESSION_ID_LEN], left, pw[256];
	uint8_t session_key[OPAQUE_SESSION_KEY_LEN], export_key[OPAQUE_EXPORT_KEY_LEN];
	uint8_t blob[CLIENT_BLOB_MAX], secret[CLIENT_SECRET_MAX];
	size_t blob_len, secret_len, pw_len;
	char err[512], line[16];
	long status = 0;
	int rc = 1;

	if (argc != 9) {
		fprintf(stderr, "usage: drain-login URL CACERT CONTEXT USER PASSWORD-FILE OUT-FILE "
		                "KSF-T KSF-M-KIB\n");
		return 1;
	}
	const char *user = argv[4];
	struct opaque_params params = {.context = (const uint8_t *)argv[3],
	                               .context_len = strlen(argv[3])};
	struct ksf_params ksf = {.type = KSF_ARGON2ID,
	                         .t = (uint32_t)strtoul(argv[7], NULL, 10),
	                         .m_kib = (uint32_t)strtoul(argv[8], NULL, 10)};
	FILE *f = fopen(argv[5], "re");
	if (f == NULL || fgets((char *)pw, sizeof(pw), f) == NULL) {
		fprintf(stderr, "drain-login: cannot read %s\n", argv[5]);
		if (f != NULL)
			fclose(f);
		return 1;
	}
	fclose(f);
	pw_len = strcspn((char *)pw, "\n");
	if (sodium_init() < 0 || (st = sodium_malloc(sizeof(*st))) == NULL ||
	    (keys = sodium_malloc(sizeof(*keys))) == NULL ||
	    sv_buf_init(&req, CLIENT_WIRE_BODY_MAX) != 0 ||
	    sv_buf_init(&rep, CLIENT_WIRE_REPLY_MAX) != 0 || client_http_new(&http, argv[1]) != 0 ||
	    client_http_set_cacert(http, argv[2]) != 0) {
		fprintf(stderr, "drain-login: set-up failed\n");
		goto out;
	}
	/* login/start: the guess is charged here */
	if (opaque_client_ke1(ke1, st, pw, pw_len) != 0 ||
	    client_wire_login_start(&req, (const uint8_t *)user, strlen(user), ke1) != 0 ||
	    client_http_post(http, msg_path(SV_MSG_LOGIN_START), req.data, req.len, &status, &rep,
	                     err, sizeof(err)) != 0) {
		fprintf(stderr, "drain-login: login/start failed: %s\n", err);
		goto out;
	}
	if (status != 200) {
		rc = outcome("login/start", status, &rep);
		goto out;
	}
	if (client_wire_parse_login_start(sid, ke2, &left, sv_buf_ptr(&rep),
	                                  sv_buf_remaining(&rep)) != 0) {
		fprintf(stderr, "drain-login: malformed KE2\n");
		goto out;
	}
	printf("ke2 attempts-left %u\n", left);
	fflush(stdout);
	/* the pause: the test stops the server here */
	if (fgets(line, sizeof(line), stdin) == NULL) {
		fprintf(stderr, "drain-login: stdin closed before the go\n");
		goto out;
	}
	if (opaque_client_ke3(ke3, session_key, export_key, NULL, st, pw, pw_len, ke2, &params,
	                      &ksf) != 0 ||
	    client_wire_keys_derive(keys, session_key) != 0 ||
	    client_wire_login_finish(&req, keys, sid, ke3, CLIENT_WIRE_OP_RECOVER, NULL, 0) != 0) {
		fprintf(stderr, "drain-login: wrong password for this test, or KE2 forged\n");
		goto out;
	}
	if (client_http_post(http, msg_path(SV_MSG_LOGIN_FINISH), req.data, req.len, &status, &rep,
	                     err, sizeof(err)) != 0) {
		printf("login/finish failed: %s\n", err);
		goto out;
	}
	if (status != 200) {
		rc = outcome("login/finish", status, &rep);
		goto out;
	}
	if (client_wire_parse_recover(blob, sizeof(blob), &blob_len, keys, sid, sv_buf_ptr(&rep),
	                              sv_buf_remaining(&rep)) != 0 ||
	    client_blob_open(secret, &secret_len, NULL, blob, blob_len, export_key,
	                     (const uint8_t *)user, strlen(user)) != 0) {
		fprintf(stderr, "drain-login: the released blob does not open\n");
		goto out;
	}
	f = fopen(argv[6], "we");
	if (f == NULL || fwrite(secret, 1, secret_len, f) != secret_len || fclose(f) != 0) {
		fprintf(stderr, "drain-login: cannot write %s\n", argv[6]);
		goto out;
	}
	printf("login/finish HTTP 200: recovered %zu bytes\n", secret_len);
	rc = 0;
out:
	sodium_memzero(pw, sizeof(pw));
	sodium_memzero(session_key, sizeof(session_key));
	sodium_memzero(export_key, sizeof(export_key));
	sodium_memzero(secret, sizeof(secret));
	if (st != NULL)
		sodium_free(st);
	if (keys != NULL)
		sodium_free(keys);
	sv_buf_free(&req);
	sv_buf_free(&rep);
	client_http_free(http);
	return rc;
}
