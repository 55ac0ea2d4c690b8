#include "client/realmnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "client/http.h"
#include "common/buf.h"
#include "common/err.h"

struct slot {
	CURL *easy;
	struct sv_buf rep;
	int overflow;
	int busy;
	char url[2200];
	char errbuf[CURL_ERROR_SIZE];
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct slot *s = arg;
	size_t len = size * n;
	if (sv_buf_put(&s->rep, p, len) != 0) {
		s->overflow = 1;
		return 0; /* aborts the transfer */
	}
	return len;
}

static int setup(struct slot *s, const struct realmnet_realm *realm,
                 const struct realmcore_request *q, struct curl_slist *headers, unsigned timeout_s)
{
	CURL *c = s->easy;
	size_t blen = strlen(realm->url);
	while (blen > 8 && realm->url[blen - 1] == '/')
		blen--;
	int n = snprintf(s->url, sizeof(s->url), "%.*s%s", (int)blen, realm->url, q->path);
	if (n < 0 || (size_t)n >= sizeof(s->url))
		return SV_ERR_CONFIG;
	curl_easy_reset(c);
	sv_buf_reset(&s->rep);
	s->overflow = 0;
	s->errbuf[0] = '\0';
	int bad = 0;
	bad |= curl_easy_setopt(c, CURLOPT_URL, s->url) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_PRIVATE, (void *)s) != CURLE_OK;
	bad |= client_http_tls_policy(c, realm->cacert);
	if (q->post) {
		static const uint8_t empty[1];
		bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers) != CURLE_OK;
		bad |= curl_easy_setopt(c, CURLOPT_POST, 1L) != CURLE_OK;
		bad |=
		    curl_easy_setopt(c, CURLOPT_POSTFIELDS,
		                     (const char *)(q->body != NULL ? q->body : empty)) != CURLE_OK;
		bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)q->len) != CURLE_OK;
		if (realm->token != NULL) {
			bad |= curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER) != CURLE_OK;
			bad |=
			    curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, realm->token) != CURLE_OK;
		}
	} else {
		bad |= curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) != CURLE_OK;
	}
	bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, s) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)timeout_s) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, "libsealvault/realms") != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf) != CURLE_OK;
	return bad ? SV_ERR_INTERNAL : SV_OK;
}

/* One finished transfer back to the core. */
static int finish(struct realmcore *rc, struct slot *slots, CURLMsg *m)
{
	struct slot *s = NULL;
	char why[CURL_ERROR_SIZE + 2300];
	long status = 0;
	if (curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s) != CURLE_OK ||
	    s == NULL)
		return SV_ERR_INTERNAL;
	size_t i = (size_t)(s - slots);
	s->busy = 0;
	if (m->data.result != CURLE_OK) {
		if (s->overflow)
			snprintf(why, sizeof(why), "%s: the reply is longer than %d bytes", s->url,
			         REALMCORE_REPLY_MAX);
		else
			snprintf(why, sizeof(why), "%s: %s", s->url,
			         s->errbuf[0] ? s->errbuf : curl_easy_strerror(m->data.result));
		return realmcore_transport_error(rc, i, why);
	}
	if (curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) {
		snprintf(why, sizeof(why), "%s: no HTTP status", s->url);
		return realmcore_transport_error(rc, i, why);
	}
	return realmcore_reply(rc, i, status, sv_buf_ptr(&s->rep), sv_buf_remaining(&s->rep));
}

int realmnet_run(struct realmcore *rc, const struct realmnet_realm *realms, size_t n,
                 unsigned timeout_s, char *err, size_t err_len)
{
	struct slot *slots = NULL;
	struct curl_slist *headers = NULL, *l;
	CURLM *multi = NULL;
	size_t active = 0;
	int r = SV_ERR_NOMEM;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, err_len, "libcurl failed to initialise");
		return SV_ERR_INTERNAL;
	}
	if (timeout_s == 0)
		timeout_s = 30;
	slots = calloc(n ? n : 1, sizeof(*slots));
	multi = curl_multi_init();
	if (slots == NULL || multi == NULL)
		goto out;
	if ((l = curl_slist_append(NULL, "Content-Type: application/octet-stream")) == NULL)
		goto out;
	headers = l;
	if ((l = curl_slist_append(headers, "Expect:")) == NULL) /* no 100-continue round trip */
		goto out;
	headers = l;
	for (size_t i = 0; i < n; i++)
		if ((slots[i].easy = curl_easy_init()) == NULL ||
		    sv_buf_init(&slots[i].rep, REALMCORE_REPLY_MAX) != 0)
			goto out;
	r = SV_OK;
	while (r == SV_OK && !realmcore_done(rc)) {
		struct realmcore_request q;
		while (r == SV_OK && realmcore_next(rc, &q)) {
			struct slot *s = &slots[q.realm];
			if (q.realm >= n || s->busy) {
				snprintf(err, err_len, "two requests at once for one realm");
				r = SV_ERR_INTERNAL;
				break;
			}
			if (setup(s, &realms[q.realm], &q, headers, timeout_s) != SV_OK) {
				r = realmcore_transport_error(
				    rc, q.realm,
				    "libcurl refused an option (is libcurl "
				    "older than 7.85?) or the URL is too long");
				continue;
			}
			if (curl_multi_add_handle(multi, s->easy) != CURLM_OK) {
				snprintf(err, err_len, "libcurl refused a transfer");
				r = SV_ERR_INTERNAL;
				break;
			}
			s->busy = 1;
			active++;
		}
		if (r != SV_OK || realmcore_done(rc))
			break;
		if (active == 0) {
			snprintf(err, err_len,
			         "the realm client stalled (nothing to send, not done)");
			r = SV_ERR_INTERNAL;
			break;
		}
		int running = 0;
		if (curl_multi_perform(multi, &running) != CURLM_OK) {
			snprintf(err, err_len, "libcurl's multi interface failed");
			r = SV_ERR_INTERNAL;
			break;
		}
		CURLMsg *m;
		int left;
		int finished = 0;
		while ((m = curl_multi_info_read(multi, &left)) != NULL) {
			if (m->msg != CURLMSG_DONE)
				continue;
			CURL *e = m->easy_handle;
			int fr = finish(rc, slots, m); /* m is invalid after remove_handle */
			curl_multi_remove_handle(multi, e);
			active--;
			finished = 1;
			if (fr != SV_OK && r == SV_OK) {
				snprintf(err, err_len, "the realm client lost track of a request");
				r = SV_ERR_INTERNAL;
			}
		}
		if (!finished && running > 0 &&
		    curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK) {
			snprintf(err, err_len, "libcurl's multi interface failed to wait");
			r = SV_ERR_INTERNAL;
		}
	}
out:
	if (r == SV_ERR_NOMEM)
		snprintf(err, err_len, "out of memory");
	if (slots != NULL) {
		for (size_t i = 0; i < n; i++) {
			if (slots[i].easy != NULL) {
				if (slots[i].busy && multi != NULL)
					curl_multi_remove_handle(multi, slots[i].easy);
				curl_easy_cleanup(slots[i].easy);
			}
			sv_buf_free(&slots[i].rep);
		}
		free(slots);
	}
	if (multi != NULL)
		curl_multi_cleanup(multi);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	return r;
}
