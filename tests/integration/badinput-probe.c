/*
 * Bad-input probe for a running sealvault (tests/integration/badinput.sh starts it): sends random,
 * truncated, oversized and mistyped bodies, malformed Authorization headers (answered 401 by the
 * broker), requests out of order and replayed login/finish
 * messages over real HTTPS, and checks every answer's status. Valid messages are built with the
 * project's OPAQUE code (crypto/), so every bad message has a good twin that is shown to work,
 * and the guess counter is read back to show that nothing was charged by a rejected message.
 *
 * usage: badinput-probe URL CACERT CONTEXT     (prints one line per check; exit 0 = all passed)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "crypto/hkdf.h"
#include "crypto/ksf.h"
#include "crypto/opaque.h"

#define LIMIT 5

static const char *base_url, *cacert;
static struct opaque_params params;
static const struct ksf_params ksf = {.type = KSF_ARGON2ID, .t = 1, .m_kib = 8};
static int failures, checks;
static CURL *curl;
static struct curl_slist *extra; /* headers added to every request (bad_authorization) */

struct resp {
	long code;
	uint8_t body[65536];
	size_t len;
};

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t k = size * n;
	if (k > sizeof(r->body) - r->len)
		k = sizeof(r->body) - r->len;
	memcpy(r->body + r->len, p, k);
	r->len += k;
	return size * n;
}

/* One request on the shared handle (connection reuse, like a real client). ctype NULL: none. */
static void request(const char *method, const char *path, const char *ctype, const uint8_t *body,
                    size_t len, struct resp *r)
{
	char url[512];
	struct curl_slist *h = NULL;
	char hdr[128];
	snprintf(url, sizeof(url), "%s%s", base_url, path);
	memset(r, 0, sizeof(*r));
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CAINFO, cacert);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	h = curl_slist_append(h, "Expect:");
	snprintf(hdr, sizeof(hdr), "Content-Type:%s%s", ctype ? " " : "", ctype ? ctype : "");
	h = curl_slist_append(h, hdr);
	for (const struct curl_slist *e = extra; e != NULL; e = e->next)
		h = curl_slist_append(h, e->data);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)len);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	}
	CURLcode c = curl_easy_perform(curl);
	if (c != CURLE_OK) {
		fprintf(stderr, "probe: %s %s: %s\n", method, path, curl_easy_strerror(c));
		r->code = -1;
	} else {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->code);
	}
	curl_slist_free_all(h);
}

static const char *OCTET = "application/octet-stream";

static void post(const char *path, const uint8_t *body, size_t len, struct resp *r)
{
	request("POST", path, OCTET, body, len, r);
}

static void expect(const char *what, const struct resp *r, long want)
{
	checks++;
	if (r->code != want) {
		failures++;
		printf("FAIL %s: HTTP %ld, expected %ld (%.*s)\n", what, r->code, want,
		       (int)(r->len < 120 ? r->len : 120), (const char *)r->body);
	}
}

static void ok(const char *what, int cond)
{
	checks++;
	if (!cond) {
		failures++;
		printf("FAIL %s\n", what);
	}
}

static size_t put_id(uint8_t *p, const char *id)
{
	size_t n = strlen(id);
	p[0] = 1;
	p[1] = (uint8_t)(n >> 8);
	p[2] = (uint8_t)n;
	memcpy(p + 3, id, n);
	return 3 + n;
}

static void die(const char *what)
{
	printf("FAIL %s (cannot continue)\n", what);
	exit(1);
}

static const uint8_t blob[48] = "the backup key as the client encrypted it......";

static void do_register(const char *id, const char *pw)
{
	uint8_t body[1200], resp[OPAQUE_REGISTRATION_RESPONSE_LEN], rec[OPAQUE_RECORD_LEN];
	uint8_t export_key[OPAQUE_EXPORT_KEY_LEN];
	struct opaque_client_state st;
	struct resp r;
	size_t n = put_id(body, id);
	if (opaque_client_registration_request(body + n, &st, (const uint8_t *)pw, strlen(pw)) != 0)
		die("registration request");
	post("/v1/register/start", body, n + OPAQUE_REGISTRATION_REQUEST_LEN, &r);
	expect("register/start (valid)", &r, 200);
	if (r.code != 200 || r.len != sizeof(resp))
		die("register/start");
	memcpy(resp, r.body, sizeof(resp));
	if (opaque_client_registration_finalize(rec, export_key, &st, (const uint8_t *)pw,
	                                        strlen(pw), resp, &params, &ksf) != 0)
		die("registration finalize");
	n = put_id(body, id);
	memcpy(body + n, rec, sizeof(rec));
	n += sizeof(rec);
	body[n++] = LIMIT;
	body[n++] = 0;
	body[n++] = sizeof(blob);
	memcpy(body + n, blob, sizeof(blob));
	n += sizeof(blob);
	/* every truncation of a valid register/finish is refused and registers nothing */
	for (size_t cut = 0; cut < n; cut += 7) {
		post("/v1/register/finish", body, cut, &r);
		expect("register/finish truncated", &r, 400);
	}
	body[n] = 0;
	post("/v1/register/finish", body, n + 1, &r);
	expect("register/finish with a trailing byte", &r, 400);
	post("/v1/register/finish", body, n, &r);
	expect("register/finish (valid)", &r, 200);
	post("/v1/register/finish", body, n, &r);
	expect("register/finish replayed for an active id", &r, 409);
}

struct login {
	uint8_t sid[16];
	uint8_t session_key[OPAQUE_SESSION_KEY_LEN];
	uint8_t ke3[OPAQUE_KE3_LEN];
	int attempts_left;
	int ke3_ok;
};

/* login/start (checked 200) and, with the right password, KE3. */
static void login_start(const char *id, const char *pw, struct login *l)
{
	uint8_t body[512], export_key[OPAQUE_EXPORT_KEY_LEN];
	struct opaque_client_state st;
	struct resp r;
	size_t n = put_id(body, id);
	if (opaque_client_ke1(body + n, &st, (const uint8_t *)pw, strlen(pw)) != 0)
		die("KE1");
	n += OPAQUE_KE1_LEN;
	post("/v1/login/start", body, n, &r);
	expect("login/start (valid)", &r, 200);
	if (r.code != 200 || r.len != 16 + OPAQUE_KE2_LEN + 1)
		die("login/start reply");
	memcpy(l->sid, r.body, 16);
	l->attempts_left = r.body[16 + OPAQUE_KE2_LEN];
	l->ke3_ok =
	    opaque_client_ke3(l->ke3, l->session_key, export_key, NULL, &st, (const uint8_t *)pw,
	                      strlen(pw), r.body + 16, &params, &ksf) == 0;
	if (!l->ke3_ok)
		memset(l->ke3, 0x42, sizeof(l->ke3)); /* a wrong password: send a wrong KE3 */
}

/* The login/finish body for op 1 (recover), MAC'd under the session key. */
static size_t finish_body(const struct login *l, uint8_t *body)
{
	uint8_t mac_key[64], op = 1;
	static const char info[] = "sealvault op mac";
	if (hkdf_sha512_expand(mac_key, sizeof(mac_key), l->session_key, sizeof(l->session_key),
	                       (const uint8_t *)info, sizeof(info) - 1, NULL, 0) != 0)
		die("HKDF");
	size_t n = 0;
	body[n++] = 1;
	memcpy(body + n, l->sid, 16), n += 16;
	memcpy(body + n, l->ke3, OPAQUE_KE3_LEN), n += OPAQUE_KE3_LEN;
	body[n++] = op;
	hkdf_hmac_sha512(body + n, mac_key, sizeof(mac_key), l->sid, 16, &op, 1);
	return n + 64;
}

/* A recovery that must succeed and return the blob byte-identical. */
static void recover_ok(const char *id, const char *pw, int want_left)
{
	struct login l;
	struct resp r;
	uint8_t body[256], seal_key[32], out[sizeof(blob)];
	unsigned long long outlen = 0;
	static const char info[] = "sealvault recover seal";
	login_start(id, pw, &l);
	ok("KE2 authenticates with the right password", l.ke3_ok);
	if (want_left >= 0) {
		char what[96];
		snprintf(what, sizeof(what), "attempts left after login/start = %d (got %d)",
		         want_left, l.attempts_left);
		ok(what, l.attempts_left == want_left);
	}
	size_t n = finish_body(&l, body);
	post("/v1/login/finish", body, n, &r);
	expect("login/finish recover (valid)", &r, 200);
	if (hkdf_sha512_expand(seal_key, sizeof(seal_key), l.session_key, sizeof(l.session_key),
	                       (const uint8_t *)info, sizeof(info) - 1, NULL, 0) != 0)
		die("HKDF");
	ok("recovered blob decrypts and is byte-identical",
	   r.code == 200 && r.len == 24 + sizeof(blob) + 16 &&
	       crypto_aead_xchacha20poly1305_ietf_decrypt(
	           out, &outlen, NULL, r.body + 24, r.len - 24, l.sid, 16, r.body, seal_key) == 0 &&
	       outlen == sizeof(blob) && memcmp(out, blob, sizeof(blob)) == 0);
	post("/v1/login/finish", body, n, &r);
	expect("login/finish replayed (valid KE3, consumed session)", &r, 409);
}

static void random_bodies(void)
{
	static const char *const paths[] = {"/v1/register/start", "/v1/register/finish",
	                                    "/v1/login/start", "/v1/login/finish",
	                                    "/v1/change-password/finish"};
	static const size_t sizes[] = {0, 1, 2, 3, 17, 100, 135, 146, 178, 500, 965, 4096};
	static uint8_t buf[80000];
	uint8_t seed[randombytes_SEEDBYTES] = {7};
	struct resp r;
	char what[128];
	randombytes_buf_deterministic(buf, sizeof(buf), seed);
	for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			buf[0] = (uint8_t)(s & 1); /* half of them with the right version byte */
			post(paths[p], buf, sizes[s], &r);
			snprintf(what, sizeof(what), "%s: %zu random bytes", paths[p], sizes[s]);
			expect(what, &r, 400);
		}
		post(paths[p], buf, 4097, &r);
		snprintf(what, sizeof(what), "%s: body over max-body", paths[p]);
		expect(what, &r, 413);
		/* answered 413 as soon as the Content-Length is read, and closed: a client still
		 * sending may see the close first (curl: "Failed sending data") */
		post(paths[p], buf, sizeof(buf), &r);
		snprintf(what, sizeof(what), "%s: 80000-byte body (413, or closed while sending)",
		         paths[p]);
		if (r.code == -1)
			r.code = 413;
		expect(what, &r, 413);
		static const char *const types[] = {"text/plain", "application/json",
		                                    "application/octet-streams",
		                                    "multipart/form-data"};
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
			request("POST", paths[p], types[t], buf, 40, &r);
			snprintf(what, sizeof(what), "%s: Content-Type %s", paths[p], types[t]);
			expect(what, &r, 415);
		}
		request("POST", paths[p], NULL, buf, 40, &r);
		snprintf(what, sizeof(what), "%s: no Content-Type", paths[p]);
		expect(what, &r, 415);
		request("GET", paths[p], NULL, NULL, 0, &r);
		snprintf(what, sizeof(what), "GET %s", paths[p]);
		expect(what, &r, 405);
		request("PUT", paths[p], OCTET, buf, 10, &r);
		snprintf(what, sizeof(what), "PUT %s", paths[p]);
		expect(what, &r, 405);
	}
	request("GET", "/v1/nothing-here", NULL, NULL, 0, &r);
	expect("unknown route", &r, 404);
	request("POST", "/healthz", OCTET, buf, 1, &r);
	expect("POST /healthz", &r, 405);
	/* GET /v1/info takes no body and no other method; a query changes nothing */
	static const char *const info_methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
	for (size_t m = 0; m < sizeof(info_methods) / sizeof(info_methods[0]); m++) {
		request(info_methods[m], "/v1/info", OCTET, buf, 1, &r);
		snprintf(what, sizeof(what), "%s /v1/info", info_methods[m]);
		expect(what, &r, 405);
	}
	request("GET", "/v1/info?context=x", NULL, NULL, 0, &r);
	expect("GET /v1/info with a query", &r, 200);
	checks++;
	if (r.len == 0 || r.body[0] != '{' ||
	    memmem(r.body, r.len, "\"suite\":\"OPAQUE-3DH-ristretto255-SHA512\"", 40) == NULL) {
		failures++;
		printf("FAIL GET /v1/info: not the vault's JSON (%.*s)\n",
		       (int)(r.len < 120 ? r.len : 120), (const char *)r.body);
	}
	request("GET", "/v1/attestation?nonce=zz", NULL, NULL, 0, &r);
	expect("attestation with a non-hex nonce", &r, 400);
	/* a decoded NUL would cut the nonce short where libevent hands it out as a C string */
	request("GET", "/v1/attestation?nonce=0011223344556677%00", NULL, NULL, 0, &r);
	expect("attestation with %00 after an 8-byte nonce", &r, 400);
	request("GET", "/v1/attestation?nonce=0011223344556677%00aabb", NULL, NULL, 0, &r);
	expect("attestation with %00 inside the nonce", &r, 400);
	request("GET", "/v1/attestation?nonce=00112233%2044556677", NULL, NULL, 0, &r);
	expect("attestation with a %20 in the nonce", &r, 400);
	request("GET", "/v1/attestation?nonce=0011223344556677&x=%00", NULL, NULL, 0, &r);
	expect("attestation with %00 in another parameter", &r, 400);
	/* HEAD on the probe: the GET's status, no body */
	request("HEAD", "/healthz", NULL, NULL, 0, &r);
	expect("HEAD /healthz", &r, 200);
	ok("HEAD /healthz has no body", r.len == 0);
	request("HEAD", "/v1/attestation?nonce=0011223344556677", NULL, NULL, 0, &r);
	expect("HEAD /v1/attestation (not a probe: no quote for it)", &r, 405);
	request("HEAD", "/v1/login/start", NULL, NULL, 0, &r);
	expect("HEAD /v1/login/start", &r, 405);
	request("GET", "/v1/attestation", NULL, NULL, 0, &r);
	expect("attestation without a nonce", &r, 400);
	request("GET", "/v1/attestation?nonce=00112233445566", NULL, NULL, 0, &r);
	expect("attestation with a 7-byte nonce", &r, 400);
	request(
	    "GET",
	    "/v1/attestation?nonce=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00",
	    NULL, NULL, 0, &r);
	expect("attestation with a 65-byte nonce", &r, 400);
	request("GET", "/v1/attestation?nonce=0011223344556677", NULL, NULL, 0, &r);
	expect("attestation with an 8-byte nonce", &r, 200);
	/* activate bodies: v=1 | u16 len | TPM2B_ID_OBJECT | u16 len | TPM2B_ENCRYPTED_SECRET */
	static const uint8_t good_shape[] = {1, 0, 4, 0, 2, 0xaa, 0xbb, 0, 3, 0, 1, 0xcc};
	uint8_t act[sizeof(good_shape) + 1];
	memcpy(act, good_shape, sizeof(good_shape));
	request("POST", "/v1/attestation/activate", OCTET, act, 0, &r);
	expect("activate: empty body", &r, 400);
	act[0] = 2;
	request("POST", "/v1/attestation/activate", OCTET, act, sizeof(good_shape), &r);
	expect("activate: version 2", &r, 400);
	act[0] = 1;
	for (size_t n = 1; n < sizeof(good_shape); n++) {
		request("POST", "/v1/attestation/activate", OCTET, act, n, &r);
		snprintf(what, sizeof(what), "activate: truncated to %zu bytes", n);
		expect(what, &r, 400);
	}
	act[sizeof(good_shape)] = 0;
	request("POST", "/v1/attestation/activate", OCTET, act, sizeof(act), &r);
	expect("activate: a trailing byte", &r, 400);
	act[2] = 5; /* outer length disagrees with the TPM2B's own size */
	request("POST", "/v1/attestation/activate", OCTET, act, sizeof(good_shape), &r);
	expect("activate: inconsistent lengths", &r, 400);
	act[2] = 4;
	/* well-formed, but not made for this TPM: the TPM refuses it */
	request("POST", "/v1/attestation/activate", OCTET, act, sizeof(good_shape), &r);
	expect("activate: a credential the TPM refuses", &r, 403);
}

static void out_of_order(const char *id, const char *pw)
{
	struct resp r;
	uint8_t body[512];
	struct login l;
	memset(&l, 0, sizeof(l));
	randombytes_buf(l.sid, sizeof(l.sid));
	randombytes_buf(l.session_key, sizeof(l.session_key));
	size_t n = finish_body(&l, body);
	post("/v1/login/finish", body, n, &r);
	expect("login/finish for a session that never started", &r, 409);

	/* change-password/finish without a change-password login */
	size_t m = 0;
	body[m++] = 1;
	memcpy(body + m, l.sid, 16), m += 16;
	memset(body + m, 0, 192), m += 192;
	body[m++] = 0;
	body[m++] = 0;
	body[m++] = 8;
	memset(body + m, 1, 8 + 64), m += 8 + 64;
	post("/v1/change-password/finish", body, m, &r);
	ok("change-password/finish out of order is refused with 400 or 409",
	   r.code == 409 || r.code == 400);

	/* truncations of a valid login/start: 400, nothing charged (checked by the caller) */
	uint8_t ls[512];
	struct opaque_client_state st;
	size_t k = put_id(ls, id);
	if (opaque_client_ke1(ls + k, &st, (const uint8_t *)pw, strlen(pw)) != 0)
		die("KE1");
	k += OPAQUE_KE1_LEN;
	for (size_t cut = 0; cut < k; cut++) {
		post("/v1/login/start", ls, cut, &r);
		expect("login/start truncated", &r, 400);
	}
	ls[k] = 0;
	post("/v1/login/start", ls, k + 1, &r);
	expect("login/start with a trailing byte", &r, 400);
	opaque_client_state_wipe(&st);

	/* a wrong password: 403 with the attempts left, then the replay of that KE3: 409 */
	login_start(id, "not the password", &l);
	ok("wrong password does not authenticate KE2", !l.ke3_ok);
	int left = l.attempts_left;
	n = finish_body(&l, body);
	post("/v1/login/finish", body, n, &r);
	expect("login/finish with a wrong KE3", &r, 403);
	ok("403 body is attempts_left", r.len == 1 && r.body[0] == left);
	post("/v1/login/finish", body, n, &r);
	expect("login/finish with a wrong KE3 replayed", &r, 409);
	/* truncated and extended login/finish for a live session: 400, and the session survives */
	login_start(id, pw, &l);
	ok("KE2 authenticates", l.ke3_ok);
	n = finish_body(&l, body);
	for (size_t cut = 0; cut < n; cut += 5) {
		post("/v1/login/finish", body, cut, &r);
		expect("login/finish truncated", &r, 400);
	}
	body[n] = 0;
	post("/v1/login/finish", body, n + 1, &r);
	expect("login/finish with a trailing byte", &r, 400);
	post("/v1/login/finish", body, n, &r);
	expect("login/finish after the bad ones (session intact)", &r, 200);
}

/* Malformed Authorization headers on a vault request: the broker answers 401 with a Bearer
 * challenge (RFC 6750) and the enclave never sees them, so nothing is charged. */
static void bad_authorization(const char *id)
{
	static char huge[64 + 4097];
	uint8_t body[1 + 2 + 64 + OPAQUE_KE1_LEN];
	size_t n = put_id(body + 1, id) + 1;
	struct resp r;
	body[0] = 1;
	memset(body + n, 0, OPAQUE_KE1_LEN); /* never parsed: refused before the enclave */
	n += OPAQUE_KE1_LEN;
	snprintf(huge, sizeof(huge), "Authorization: Bearer ");
	memset(huge + strlen(huge), 'a', 4097); /* one over the 4096 the vault accepts */
	const char *const cases[][2] = {
	    {huge, NULL},
	    {"Authorization;", NULL}, /* curl: an empty header */
	    {"Authorization: Bearer ", NULL},
	    {"Authorization: Bearer caf\xc3\xa9", NULL},
	    {"Authorization: Bearer a\x01b", NULL},
	    {"Authorization: Basic YWxpY2U6cHc=", NULL},
	    {"Authorization: Bearer abc", "Authorization: Bearer abc"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char what[96];
		extra = curl_slist_append(NULL, cases[i][0]);
		if (cases[i][1] != NULL)
			extra = curl_slist_append(extra, cases[i][1]);
		post("/v1/login/start", body, n, &r);
		curl_slist_free_all(extra);
		extra = NULL;
		snprintf(what, sizeof(what), "malformed Authorization #%zu (%.24s)", i,
		         cases[i][0]);
		expect(what, &r, 401);
	}
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: badinput-probe URL CACERT CONTEXT\n");
		return 2;
	}
	base_url = argv[1];
	cacert = argv[2];
	params.context = (const uint8_t *)argv[3];
	params.context_len = strlen(argv[3]);
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
	    (curl = curl_easy_init()) == NULL)
		die("init");
	char id[64];
	static const char pw[] = "correct horse battery staple";
	uint8_t rnd[6];
	randombytes_buf(rnd, sizeof(rnd));
	snprintf(id, sizeof(id), "probe-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
	         rnd[4], rnd[5]);

	do_register(id, pw);
	random_bodies();
	bad_authorization(id);
	recover_ok(id, pw, LIMIT - 1); /* nothing above charged a guess */
	out_of_order(id, pw);
	/* the wrong password above was charged once, then reset by the good login */
	recover_ok(id, pw, LIMIT - 1);
	printf("%d checks, %d failed\n", checks, failures);
	curl_easy_cleanup(curl);
	return failures == 0 ? 0 : 1;
}
