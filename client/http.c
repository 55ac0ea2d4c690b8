#include "client/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/err.h"

struct client_http {
	CURL *curl;
	struct curl_slist *headers;
	char *base;
	char *cacert;
	const char *bearer; /* client_http_set_bearer, the caller's */
	unsigned timeout_s;
};

struct sink {
	struct sv_buf *buf;
	int overflow;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n;
	if (sv_buf_put(s->buf, p, len) != 0) {
		s->overflow = 1;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	return len;
}

int client_http_new(struct client_http **out, const char *base_url)
{
	static int global_done;
	struct client_http *h = NULL;
	int r = SV_ERR_NOMEM;

	*out = NULL;
	if (strncmp(base_url, "https://", 8) != 0 || base_url[8] == '\0')
		return SV_ERR_CONFIG;
	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return SV_ERR_INTERNAL;
		global_done = 1;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		goto out;
	h->timeout_s = 30;
	h->base = strdup(base_url);
	if (h->base == NULL)
		goto out;
	size_t n = strlen(h->base);
	while (n > 8 && h->base[n - 1] == '/')
		h->base[--n] = '\0';
	h->curl = curl_easy_init();
	if (h->curl == NULL)
		goto out;
	struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/octet-stream");
	if (l == NULL)
		goto out;
	h->headers = l;
	l = curl_slist_append(h->headers, "Expect:"); /* no 100-continue round trip */
	if (l == NULL)
		goto out;
	h->headers = l;
	*out = h;
	h = NULL;
	r = SV_OK;
out:
	client_http_free(h);
	return r;
}

void client_http_free(struct client_http *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->headers);
	free(h->base);
	free(h->cacert);
	free(h);
}

int client_http_set_cacert(struct client_http *h, const char *path)
{
	char *c = NULL;
	if (path != NULL && (c = strdup(path)) == NULL)
		return SV_ERR_NOMEM;
	free(h->cacert);
	h->cacert = c;
	return SV_OK;
}

void client_http_set_timeout(struct client_http *h, unsigned seconds)
{
	h->timeout_s = seconds ? seconds : 1;
}

void client_http_set_bearer(struct client_http *h, const char *token)
{
	h->bearer = token;
}

int client_http_tls_policy(CURL *c, const char *cacert)
{
	int bad = 0;
	bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https") != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK;
	if (cacert != NULL)
		bad |= curl_easy_setopt(c, CURLOPT_CAINFO, cacert) != CURLE_OK;
	return bad;
}

static int setopts(struct client_http *h, const char *url, const uint8_t *body, size_t len,
                   struct sink *sink, char *errbuf)
{
	CURL *c = h->curl;
	curl_easy_reset(c);
	int bad = 0;
	bad |= curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK;
	bad |= client_http_tls_policy(c, h->cacert);
	if (body != NULL) {
		bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers) != CURLE_OK;
		bad |= curl_easy_setopt(c, CURLOPT_POST, 1L) != CURLE_OK;
		bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body) != CURLE_OK;
		bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len) != CURLE_OK;
		if (h->bearer != NULL) {
			bad |= curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER) != CURLE_OK;
			bad |= curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, h->bearer) != CURLE_OK;
		}
	} else {
		bad |= curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) != CURLE_OK;
	}
	bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, sink) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)h->timeout_s) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, "libsealvault/0.2") != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK;
	return bad ? SV_ERR_INTERNAL : SV_OK;
}

static int request(struct client_http *h, const char *path, const uint8_t *body, size_t len,
                   long *status, struct sv_buf *reply, char *err, size_t err_len)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	char url[2048];
	struct sink sink = {.buf = reply};
	int n = snprintf(url, sizeof(url), "%s%s", h->base, path);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		snprintf(err, err_len, "server URL too long");
		return SV_ERR_CONFIG;
	}
	sv_buf_reset(reply);
	int r = setopts(h, url, body, len, &sink, errbuf);
	if (r != 0) {
		snprintf(err, err_len, "libcurl refused an option; is libcurl older than 7.85?");
		return r;
	}
	CURLcode cr = curl_easy_perform(h->curl);
	if (cr != CURLE_OK) {
		if (sink.overflow)
			snprintf(err, err_len,
			         "%s: the reply is longer than %zu bytes; is this a "
			         "sealvault server?",
			         url, reply->max);
		else
			snprintf(err, err_len, "%s: %s", url,
			         errbuf[0] ? errbuf : curl_easy_strerror(cr));
		sv_buf_reset(reply);
		return SV_ERR_IO;
	}
	if (curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, status) != CURLE_OK) {
		snprintf(err, err_len, "%s: no HTTP status", url);
		return SV_ERR_IO;
	}
	return SV_OK;
}

int client_http_post(struct client_http *h, const char *path, const uint8_t *body, size_t len,
                     long *status, struct sv_buf *reply, char *err, size_t err_len)
{
	static const uint8_t empty[1];
	return request(h, path, body != NULL ? body : empty, len, status, reply, err, err_len);
}

int client_http_get(struct client_http *h, const char *path, long *status, struct sv_buf *reply,
                    char *err, size_t err_len)
{
	return request(h, path, NULL, 0, status, reply, err, err_len);
}
