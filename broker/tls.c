#include "broker/tls.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/ssl.h>

#include "broker/ratelimit.h"
#include "common/err.h"

struct tls {
	SSL_CTX *ctx;
	struct event_base *base;
	struct tls_config cfg;
	int ex_idx;
	uint64_t open, refused;
};

struct conn {
	struct tls *t;
	SSL *ssl;
	struct event *deadline;
	struct event *admit; /* one-shot: apply the caps once the descriptor is attached */
	uint8_t key[RATELIMIT_KEY_LEN];
	int checked;  /* the ClientHello was seen and the caps applied */
	int admitted; /* ... and they let it in */
	int counted;  /* holds a per-address connection slot */
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void ssl_why(const char *what, const char *file, char *why, size_t why_len)
{
	char e[200];
	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	snprintf(why, why_len, "%s%s%s: %s", what, *file ? " " : "", file, e);
	ERR_clear_error();
}

/* Runs when OpenSSL frees the connection's SSL object (evhttp freeing the bufferevent). */
static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct conn *c = ptr;
	if (c == NULL)
		return;
	if (c->counted)
		ratelimit_conn_close(c->t->cfg.rl, c->key);
	c->t->open--;
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->admit != NULL)
		event_free(c->admit);
	free(c);
}

static void arm(struct conn *c)
{
	struct timeval tv = {.tv_sec = c->t->cfg.request_timeout_s};
	if (event_add(c->deadline, &tv) != 0)
		fprintf(stderr, "sealvault-broker: cannot arm a request deadline; the connection "
		                "relies on the inactivity timeout only\n");
}

static void on_deadline(evutil_socket_t unused, short what, void *arg)
{
	struct conn *c = arg;
	int fd = SSL_get_fd(c->ssl);
	/* evhttp sees the end of the stream and frees the connection through its own path */
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

/* Applies the connection caps once per connection, as soon as its descriptor is known: 0 to
 * admit, -1 to refuse. */
static int admit(struct conn *c)
{
	struct tls *t = c->t;
	if (c->checked)
		return c->admitted ? 0 : -1;
	int fd = SSL_get_fd(c->ssl);
	if (fd < 0)
		return 0; /* not attached yet: decided later */
	c->checked = 1;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int r;
	if (t->open > t->cfg.max_conns || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    ratelimit_key((struct sockaddr *)&ss, ratelimit_ipv6_prefix(t->cfg.rl), c->key) != 0 ||
	    (r = ratelimit_conn_open(t->cfg.rl, c->key, now_ms())) < 0) {
		t->refused++;
		return -1;
	}
	c->admitted = 1;
	c->counted = r == 1;
	/* answers are small and written in pieces (headers, body): without this, Nagle's algorithm
	 * and the client's delayed ACK add ~40 ms to every answer */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

/* Runs on the loop iteration after the connection was accepted (evhttp attaches the descriptor
 * right after tls_bevcb returns), so that a client that never sends a ClientHello still counts
 * against its address's cap. A refused connection is shut down; evhttp then frees it. */
static void on_admit(evutil_socket_t unused, short what, void *arg)
{
	struct conn *c = arg;
	if (admit(c) != 0) {
		int fd = SSL_get_fd(c->ssl);
		if (fd >= 0)
			shutdown(fd, SHUT_RDWR);
	}
}

static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
	struct tls *t = arg;
	struct conn *c = SSL_get_ex_data(ssl, t->ex_idx);
	if (c == NULL || admit(c) != 0 || !c->checked) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* A server context with the broker's versions, suites and options, and no certificate yet. */
static SSL_CTX *ctx_base(struct tls *t, char *why, size_t why_len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		ssl_why("TLS: cannot create a context", "", why, why_len);
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
		ssl_why("TLS: cannot restrict versions and suites", "", why, why_len);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	                             SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_client_hello_cb(ctx, on_client_hello, t);
	return ctx;
}

static int check_limits(unsigned max_conns, unsigned request_timeout_s)
{
	return max_conns >= 1 && max_conns <= 1000000 && request_timeout_s >= 1 &&
	               request_timeout_s <= 3600
	           ? SV_OK
	           : SV_ERR_RANGE;
}

int tls_new(struct tls **out, struct event_base *base, const struct tls_config *cfg, char *why,
            size_t why_len)
{
	struct tls *t = NULL;
	int r = SV_ERR_CONFIG;
	if (check_limits(cfg->max_conns, cfg->request_timeout_s) != 0 || cfg->rl == NULL) {
		snprintf(why, why_len, "TLS: connection cap or request timeout out of bounds");
		return SV_ERR_RANGE;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return SV_ERR_NOMEM;
	t->cfg = *cfg;
	t->base = base;
	t->ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
	if (t->ex_idx < 0) {
		snprintf(why, why_len, "TLS: no OpenSSL ex_data index");
		r = SV_ERR_INTERNAL;
		goto out;
	}
	if ((t->ctx = ctx_base(t, why, why_len)) == NULL)
		goto out;
	if (SSL_CTX_use_certificate_chain_file(t->ctx, cfg->cert_file) != 1) {
		ssl_why("TLS: cannot load the certificate chain", cfg->cert_file, why, why_len);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(t->ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
		ssl_why("TLS: cannot load the private key", cfg->key_file, why, why_len);
		goto out;
	}
	if (SSL_CTX_check_private_key(t->ctx) != 1) {
		ssl_why("TLS: the private key does not match the certificate", cfg->key_file, why,
		        why_len);
		goto out;
	}
	/* Create and free one connection object now so that everything OpenSSL loads lazily is
	 * loaded before the seccomp filter goes in. */
	SSL *probe = SSL_new(t->ctx);
	if (probe == NULL) {
		ssl_why("TLS: cannot create a connection", "", why, why_len);
		r = SV_ERR_NOMEM;
		goto out;
	}
	SSL_free(probe);
	*out = t;
	t = NULL;
	r = SV_OK;
out:
	tls_free(t);
	return r;
}

/* A key file is never encrypted here (sealvault.conf(5)): refuse rather than prompt. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* Loads a PEM chain (leaf first, then its intermediates) and key from memory into ctx. */
static int load_pem(SSL_CTX *ctx, const uint8_t *cert, size_t cert_len, const uint8_t *key,
                    size_t key_len, char *why, size_t why_len)
{
	int r = SV_ERR_CONFIG;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	BIO *b = NULL;
	if (cert_len > INT_MAX || key_len > INT_MAX)
		return SV_ERR_RANGE;
	if ((b = BIO_new_mem_buf(cert, (int)cert_len)) == NULL) {
		r = SV_ERR_NOMEM;
		goto out;
	}
	if ((x = PEM_read_bio_X509_AUX(b, NULL, no_passphrase, NULL)) == NULL ||
	    SSL_CTX_use_certificate(ctx, x) != 1) {
		ssl_why("cannot load the certificate chain", "", why, why_len);
		goto out;
	}
	X509_free(x); /* ctx holds its own reference */
	x = NULL;
	while ((x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			ssl_why("cannot add an intermediate certificate", "", why, why_len);
			goto out;
		}
		x = NULL; /* owned by ctx */
	}
	/* the end of the chain is "no start line"; anything else is a broken certificate */
	unsigned long e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
		ssl_why("cannot read an intermediate certificate", "", why, why_len);
		goto out;
	}
	ERR_clear_error();
	BIO_free(b);
	if ((b = BIO_new_mem_buf(key, (int)key_len)) == NULL) {
		r = SV_ERR_NOMEM;
		goto out;
	}
	if ((k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL)) == NULL) {
		ssl_why("cannot load the private key", "", why, why_len);
		goto out;
	}
	/* SSL_CTX_use_PrivateKey compares it with the certificate already */
	if (SSL_CTX_use_PrivateKey(ctx, k) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ssl_why("the private key does not match the certificate", "", why, why_len);
		goto out;
	}
	r = SV_OK;
out:
	X509_free(x);
	EVP_PKEY_free(k);
	BIO_free(b);
	ERR_clear_error();
	return r;
}

int tls_reload(struct tls *t, const uint8_t *cert, size_t cert_len, const uint8_t *key,
               size_t key_len, unsigned max_conns, unsigned request_timeout_s, char *why,
               size_t why_len)
{
	if (check_limits(max_conns, request_timeout_s) != 0) {
		snprintf(why, why_len, "max-conns or request-timeout out of bounds");
		return SV_ERR_RANGE;
	}
	SSL_CTX *ctx = ctx_base(t, why, why_len);
	if (ctx == NULL)
		return SV_ERR_NOMEM;
	int r = load_pem(ctx, cert, cert_len, key, key_len, why, why_len);
	if (r != 0) {
		SSL_CTX_free(ctx);
		return r;
	}
	/* every open connection holds a reference to the context it began with */
	SSL_CTX_free(t->ctx);
	t->ctx = ctx;
	t->cfg.max_conns = max_conns;
	t->cfg.request_timeout_s = request_timeout_s;
	return SV_OK;
}

int tls_fingerprint(const struct tls *t, char out[static TLS_FINGERPRINT_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	X509 *x = SSL_CTX_get0_certificate(t->ctx);
	if (x == NULL || X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32) {
		ERR_clear_error();
		snprintf(out, TLS_FINGERPRINT_LEN, "unknown");
		return SV_ERR_INTERNAL;
	}
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 3 * i, TLS_FINGERPRINT_LEN - 3 * i, i + 1 < n ? "%02X:" : "%02X",
		         md[i]);
	return SV_OK;
}

void tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	if (t->ctx != NULL)
		SSL_CTX_free(t->ctx);
	free(t);
}

/* evhttp falls back to a plain-text bufferevent if this returns NULL, so it never does: when
 * memory runs out the broker exits (sealvaultd restarts the pair) rather than serve without TLS. A
 * connection whose bookkeeping could not be allocated has no conn and fails its handshake. */
struct bufferevent *tls_bevcb(struct event_base *base, void *arg)
{
	struct tls *t = arg;
	SSL *ssl = SSL_new(t->ctx);
	if (ssl == NULL)
		goto fatal;
	struct conn *c = calloc(1, sizeof(*c));
	if (c != NULL) {
		c->t = t;
		c->ssl = ssl;
		c->deadline = evtimer_new(base, on_deadline, c);
		c->admit = evtimer_new(base, on_admit, c);
		if (c->deadline == NULL || c->admit == NULL ||
		    SSL_set_ex_data(ssl, t->ex_idx, c) != 1) {
			if (c->deadline != NULL)
				event_free(c->deadline);
			if (c->admit != NULL)
				event_free(c->admit);
			free(c);
			c = NULL;
		} else {
			t->open++; /* from here on conn_free runs on SSL_free */
		}
	}
	struct bufferevent *bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		goto fatal;
	if (c != NULL) {
		arm(c);
		event_active(c->admit, EV_TIMEOUT, 1);
	}
	return bev;
fatal:
	fprintf(stderr, "sealvault-broker: out of memory for a new TLS connection; exiting\n");
	_exit(1);
}

static struct conn *conn_of(struct tls *t, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (evcon == NULL)
		return NULL;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	if (bev == NULL)
		return NULL;
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	return ssl != NULL ? SSL_get_ex_data(ssl, t->ex_idx) : NULL;
}

void tls_request_started(struct tls *t, struct evhttp_request *req)
{
	struct conn *c = conn_of(t, req);
	if (c != NULL)
		event_del(c->deadline);
}

void tls_request_answered(struct tls *t, struct evhttp_request *req)
{
	struct conn *c = conn_of(t, req);
	if (c != NULL)
		arm(c);
}

uint64_t tls_open_connections(const struct tls *t)
{
	return t->open;
}
uint64_t tls_refused_connections(const struct tls *t)
{
	return t->refused;
}
