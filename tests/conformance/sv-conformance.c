/*
 * sv-conformance: replays the CFRG test vectors (JSON, as published upstream) through crypto/.
 *
 *   sv-conformance [-v] FILE.json...
 *
 * Understands three layouts: the RFC 9380 expand_message_xmd file (an object with "tests"), the
 * RFC 9497 file (an array of suites with "identifier"/"mode"/"vectors") and the RFC 9807 file (an
 * array of vectors with "config"/"inputs"/"intermediates"/"outputs"), plus the team's own
 * threshold-realm file (an object named "sealvault-realms-v1", docs/realms.md). Suites this
 * project does not implement are skipped by name and counted. Every field of every vector that is
 * run is either an input or compared with what crypto/ computes; a field the runner does not know
 * fails the vector, so nothing goes unchecked silently. The last line is "N passed, M failed, K
 * skipped"; the exit status is 0 only with no failures and at least one vector passed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "common/err.h"
#include "crypto/h2c.h"
#include "crypto/opaque.h"
#include "crypto/opaque_trace.h"
#include "crypto/oprf.h"
#include "crypto/realm.h"

#define MAXB  1024 /* largest decoded field */
#define MAXN  8    /* largest batch in the vectors we run */
#define MAXUS 48   /* fields per JSON object */

static int verbose;
static unsigned n_passed, n_failed, n_skipped;

/* ---- one vector: name, failure flag, the JSON fields used ---- */

struct vec {
	char name[160];
	int bad;
	struct json_object *objs[4];
	const char *used[4][MAXUS];
	size_t nused[4];
};

static void vfail(struct vec *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vfail(struct vec *v, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL %s: ", v->name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	v->bad = 1;
}

static void mark_used(struct vec *v, struct json_object *o, const char *key)
{
	for (size_t i = 0; i < 4; i++)
		if (v->objs[i] == o && v->nused[i] < MAXUS) {
			v->used[i][v->nused[i]++] = key;
			return;
		}
}

static void track(struct vec *v, size_t slot, struct json_object *o)
{
	v->objs[slot] = o;
	v->nused[slot] = 0;
}

/* Every key of every tracked object must have been used as an input or checked. */
static void check_all_used(struct vec *v)
{
	for (size_t i = 0; i < 4; i++) {
		if (v->objs[i] == NULL)
			continue;
		json_object_object_foreach(v->objs[i], key, val)
		{
			size_t j;

			(void)val;
			for (j = 0; j < v->nused[i]; j++)
				if (strcmp(v->used[i][j], key) == 0)
					break;
			if (j == v->nused[i])
				vfail(v, "field %s is not checked by this runner", key);
		}
	}
}

static const char *str_field(struct vec *v, struct json_object *o, const char *key)
{
	struct json_object *f;

	if (!json_object_object_get_ex(o, key, &f) || !json_object_is_type(f, json_type_string))
		return NULL;
	mark_used(v, o, key);
	return json_object_get_string(f);
}

/* Decodes hex into out (at most cap bytes); -1 on bad hex. */
static int unhex(uint8_t *out, size_t cap, size_t *len, const char *hex, size_t hex_len)
{
	const char *end;

	if (sodium_hex2bin(out, cap, hex, hex_len, NULL, len, &end) != 0 || end != hex + hex_len)
		return -1;
	return 0;
}

/* A hex field; when want != 0 it must decode to exactly want bytes. */
static int hex_field(struct vec *v, struct json_object *o, const char *key, uint8_t *out,
                     size_t cap, size_t *len, size_t want)
{
	const char *s = str_field(v, o, key);
	size_t n;

	if (s == NULL) {
		vfail(v, "field %s missing or not a string", key);
		return -1;
	}
	if (unhex(out, cap, &n, s, strlen(s)) < 0 || (want != 0 && n != want)) {
		vfail(v, "field %s: bad hex or length (want %zu bytes)", key, want);
		return -1;
	}
	if (len != NULL)
		*len = n;
	return 0;
}

/* A comma-separated list of hex values (RFC 9497 batches). */
static int hex_list(struct vec *v, struct json_object *o, const char *key, uint8_t out[][MAXB],
                    size_t lens[], size_t *n)
{
	const char *s = str_field(v, o, key), *p, *c;

	if (s == NULL) {
		vfail(v, "field %s missing", key);
		return -1;
	}
	*n = 0;
	for (p = s;; p = c + 1) {
		c = strchr(p, ',');
		if (c == NULL)
			c = p + strlen(p);
		if (*n == MAXN || unhex(out[*n], MAXB, &lens[*n], p, (size_t)(c - p)) < 0) {
			vfail(v, "field %s: bad hex list", key);
			return -1;
		}
		(*n)++;
		if (*c == '\0')
			return 0;
	}
}

static void expect_bytes(struct vec *v, const char *what, const uint8_t *want, size_t want_len,
                         const uint8_t *got, size_t got_len)
{
	char hex[2 * MAXB + 1];

	if (want_len == got_len && memcmp(want, got, got_len) == 0) {
		if (verbose)
			printf("  ok %s: %s\n", v->name, what);
		return;
	}
	sodium_bin2hex(hex, sizeof hex, got, got_len < MAXB ? got_len : MAXB);
	vfail(v, "%s differs; computed %s", what, hex);
}

/* Compares computed bytes with a hex field of o. */
static void expect_field(struct vec *v, struct json_object *o, const char *key, const uint8_t *got,
                         size_t got_len)
{
	uint8_t want[MAXB];
	size_t n;

	if (hex_field(v, o, key, want, sizeof want, &n, 0) == 0)
		expect_bytes(v, key, want, n, got, got_len);
}

static void expect_ok(struct vec *v, const char *what, int ret)
{
	if (ret != 0)
		vfail(v, "%s failed: %s", what, sv_strerror(ret));
}

static void vec_begin(struct vec *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vec_begin(struct vec *v, const char *fmt, ...)
{
	va_list ap;

	memset(v, 0, sizeof *v);
	va_start(ap, fmt);
	vsnprintf(v->name, sizeof v->name, fmt, ap);
	va_end(ap);
}

static void vec_end(struct vec *v)
{
	check_all_used(v);
	if (v->bad) {
		n_failed++;
	} else {
		n_passed++;
		printf("pass %s\n", v->name);
	}
}

static void skip(const char *file, const char *what, unsigned n)
{
	printf("skip %s: %s (%u vector%s)\n", file, what, n, n == 1 ? "" : "s");
	n_skipped += n;
}

/* ---- RFC 9380 expand_message_xmd ---- */

static void run_xmd(const char *file, struct json_object *root)
{
	struct json_object *tests, *f;
	const char *dst, *hash, *name;
	size_t i, n;

	if (!json_object_object_get_ex(root, "tests", &tests) ||
	    !json_object_is_type(tests, json_type_array)) {
		printf("FAIL %s: no \"tests\" array\n", file);
		n_failed++;
		return;
	}
	n = json_object_array_length(tests);
	name = json_object_get_string(json_object_object_get(root, "name"));
	hash = json_object_get_string(json_object_object_get(root, "hash"));
	if (name == NULL || strcmp(name, "expand_message_xmd") != 0 || hash == NULL ||
	    strcmp(hash, "SHA512") != 0) {
		skip(file, name != NULL && hash != NULL ? hash : "unknown expander", (unsigned)n);
		return;
	}
	for (i = 0; i < n; i++) {
		struct json_object *t = json_object_array_get_idx(tests, i);
		uint8_t dst_prime[300], msg_prime[MAXB], out[MAXB];
		const char *msg, *lenstr;
		unsigned long len;
		size_t dl, ml, k;
		struct h2c_part part;
		struct vec v;

		vec_begin(&v, "%s RFC9380 K.3 #%zu", file, i + 1);
		track(&v, 0, root);
		track(&v, 1, t);
		mark_used(&v, root, "tests");
		mark_used(&v, root, "name");
		mark_used(&v, root, "hash");
		dst = str_field(&v, root, "DST");
		if (!json_object_object_get_ex(root, "k", &f) || json_object_get_int(f) != 256)
			vfail(&v, "k is not 256");
		mark_used(&v, root, "k");
		msg = str_field(&v, t, "msg");
		lenstr = str_field(&v, t, "len_in_bytes");
		if (dst == NULL || msg == NULL || lenstr == NULL) {
			vfail(&v, "DST, msg or len_in_bytes missing");
			vec_end(&v);
			continue;
		}
		len = strtoul(lenstr, NULL, 16);
		dl = strlen(dst);
		ml = strlen(msg);
		if (dl > 255 || 128 + ml + 3 + dl + 1 > sizeof msg_prime) {
			vfail(&v, "DST or msg longer than this runner handles");
			vec_end(&v);
			continue;
		}
		/* DST_prime and msg_prime as RFC 9380 §5.3.1 lays them out */
		memcpy(dst_prime, dst, dl);
		dst_prime[dl] = (uint8_t)dl;
		expect_field(&v, t, "DST_prime", dst_prime, dl + 1);
		memset(msg_prime, 0, 128);
		k = 128;
		memcpy(msg_prime + k, msg, ml);
		k += ml;
		msg_prime[k++] = (uint8_t)(len >> 8);
		msg_prime[k++] = (uint8_t)len;
		msg_prime[k++] = 0;
		memcpy(msg_prime + k, dst_prime, dl + 1);
		k += dl + 1;
		expect_field(&v, t, "msg_prime", msg_prime, k);
		part.p = (const uint8_t *)msg;
		part.n = ml;
		if (len == 0 || len > sizeof out) {
			vfail(&v, "len_in_bytes %lu out of range", len);
		} else {
			expect_ok(
			    &v, "expand_message_xmd",
			    h2c_expand_xmd_sha512(out, len, &part, 1, (const uint8_t *)dst, dl));
			expect_field(&v, t, "uniform_bytes", out, len);
		}
		vec_end(&v);
	}
}

/* ---- RFC 9497 OPRF / VOPRF / POPRF ---- */

static void run_oprf_vector(struct vec *v, struct json_object *suite, struct json_object *t,
                            int mode, const uint8_t sk[32], const uint8_t pk[32])
{
	static uint8_t inputs[MAXN][MAXB], blinds[MAXN][MAXB], tmp[MAXN][MAXB];
	uint8_t blinded[MAXN * 32], evaluated[MAXN * 32], proof[64], r[32], info[MAXB], out[64];
	uint8_t tweaked[32];
	size_t in_len[MAXN], b_len[MAXN], t_len[MAXN], n, nb, nt, info_len = 0, i;
	struct json_object *pr, *f;
	const char *s;

	track(v, 1, t);
	if (hex_list(v, t, "Input", inputs, in_len, &n) < 0 ||
	    hex_list(v, t, "Blind", blinds, b_len, &nb) < 0)
		return;
	if (!json_object_object_get_ex(t, "Batch", &f) || (size_t)json_object_get_int(f) != n ||
	    nb != n) {
		vfail(v, "Batch does not match the number of inputs and blinds");
		return;
	}
	mark_used(v, t, "Batch");
	if (mode == OPRF_MODE_POPRF && hex_field(v, t, "Info", info, sizeof info, &info_len, 0) < 0)
		return;
	for (i = 0; i < n; i++) {
		if (b_len[i] != 32) {
			vfail(v, "Blind %zu is not 32 bytes", i);
			return;
		}
		expect_ok(v, "Blind",
		          oprf_blind_det(blinded + 32 * i, mode, blinds[i], inputs[i], in_len[i]));
	}
	/* BlindedElement and EvaluationElement are comma-separated lists for batches. */
	if (hex_list(v, t, "BlindedElement", tmp, t_len, &nt) < 0 || nt != n)
		return;
	for (i = 0; i < n; i++)
		expect_bytes(v, "BlindedElement", tmp[i], t_len[i], blinded + 32 * i, 32);

	if (mode == OPRF_MODE_OPRF) {
		for (i = 0; i < n; i++)
			expect_ok(v, "BlindEvaluate",
			          oprf_blind_evaluate(evaluated + 32 * i, sk, blinded + 32 * i));
	} else {
		if (!json_object_object_get_ex(t, "Proof", &pr)) {
			vfail(v, "Proof missing");
			return;
		}
		mark_used(v, t, "Proof");
		track(v, 2, pr);
		if (hex_field(v, pr, "r", r, sizeof r, NULL, 32) < 0)
			return;
		if (mode == OPRF_MODE_VOPRF)
			expect_ok(v, "BlindEvaluateBatch (VOPRF)",
			          oprf_voprf_evaluate_det(evaluated, proof, sk, pk, blinded, n, r));
		else
			expect_ok(v, "BlindEvaluateBatch (POPRF)",
			          oprf_poprf_evaluate_det(evaluated, proof, sk, blinded, n, info,
			                                  info_len, r));
		expect_field(v, pr, "proof", proof, 64);
		/* The client side must accept the proof, and refuse it with one bit changed. */
		if (mode == OPRF_MODE_VOPRF) {
			expect_ok(v, "VerifyProof (VOPRF)",
			          oprf_voprf_verify(pk, blinded, evaluated, n, proof));
			proof[63] ^= 1;
			if (oprf_voprf_verify(pk, blinded, evaluated, n, proof) == 0)
				vfail(v, "VerifyProof accepted a modified proof");
		} else {
			expect_ok(v, "tweak key", oprf_poprf_tweak(tweaked, pk, info, info_len));
			expect_ok(v, "VerifyProof (POPRF)",
			          oprf_poprf_verify(tweaked, blinded, evaluated, n, proof));
			proof[0] ^= 1;
			if (oprf_poprf_verify(tweaked, blinded, evaluated, n, proof) == 0)
				vfail(v, "VerifyProof accepted a modified proof");
		}
	}
	if (hex_list(v, t, "EvaluationElement", tmp, t_len, &nt) < 0 || nt != n)
		return;
	for (i = 0; i < n; i++)
		expect_bytes(v, "EvaluationElement", tmp[i], t_len[i], evaluated + 32 * i, 32);

	if (hex_list(v, t, "Output", tmp, t_len, &nt) < 0 || nt != n)
		return;
	for (i = 0; i < n; i++) {
		if (mode == OPRF_MODE_POPRF)
			expect_ok(v, "Finalize",
			          oprf_poprf_finalize(out, inputs[i], in_len[i], info, info_len,
			                              blinds[i], evaluated + 32 * i));
		else
			expect_ok(v, "Finalize",
			          oprf_finalize(out, inputs[i], in_len[i], blinds[i],
			                        evaluated + 32 * i));
		expect_bytes(v, "Output (client Finalize)", tmp[i], t_len[i], out, 64);
		expect_ok(v, "Evaluate",
		          oprf_evaluate(out, mode, sk, inputs[i], in_len[i], info, info_len));
		expect_bytes(v, "Output (server Evaluate)", tmp[i], t_len[i], out, 64);
	}
	s = NULL;
	(void)s;
	(void)suite;
}

static void run_oprf(const char *file, struct json_object *root)
{
	size_t ns = json_object_array_length(root);

	for (size_t si = 0; si < ns; si++) {
		struct json_object *suite = json_object_array_get_idx(root, si), *vecs, *f;
		const char *id =
		    json_object_get_string(json_object_object_get(suite, "identifier"));
		int mode;
		size_t nv;

		if (!json_object_object_get_ex(suite, "vectors", &vecs) ||
		    !json_object_is_type(vecs, json_type_array)) {
			printf("FAIL %s: suite %zu has no vectors\n", file, si);
			n_failed++;
			continue;
		}
		nv = json_object_array_length(vecs);
		if (id == NULL || strcmp(id, "ristretto255-SHA512") != 0) {
			char what[96];

			snprintf(what, sizeof what, "RFC 9497 suite %s not implemented",
			         id ? id : "(unnamed)");
			skip(file, what, (unsigned)nv);
			continue;
		}
		mode = json_object_object_get_ex(suite, "mode", &f) ? json_object_get_int(f) : -1;
		for (size_t vi = 0; vi < nv; vi++) {
			uint8_t seed[32], info[MAXB], sk[32], pk[32], dst[64];
			size_t info_len, dl;
			struct vec v;
			const char *hash;

			vec_begin(&v, "%s RFC9497 %s mode %d #%zu", file, id, mode, vi + 1);
			track(&v, 0, suite);
			mark_used(&v, suite, "identifier");
			mark_used(&v, suite, "mode");
			mark_used(&v, suite, "vectors");
			if (mode < 0 || mode > 2) {
				vfail(&v, "mode %d unknown", mode);
				vec_end(&v);
				continue;
			}
			hash = str_field(&v, suite, "hash");
			if (hash == NULL || strcmp(hash, "SHA512") != 0)
				vfail(&v, "hash is not SHA512");
			dl = (size_t)snprintf((char *)dst, sizeof dst,
			                      "HashToGroup-OPRFV1-%c-ristretto255-SHA512", 'x');
			dst[19] = (uint8_t)mode;
			expect_field(&v, suite, "groupDST", dst, dl);
			if (hex_field(&v, suite, "seed", seed, sizeof seed, NULL, 32) == 0 &&
			    hex_field(&v, suite, "keyInfo", info, sizeof info, &info_len, 0) == 0) {
				expect_ok(&v, "DeriveKeyPair",
				          oprf_derive_keypair(sk, pk, mode, seed, info, info_len));
				expect_field(&v, suite, "skSm", sk, 32);
				if (mode != OPRF_MODE_OPRF)
					expect_field(&v, suite, "pkSm", pk, 32);
				if (!v.bad)
					run_oprf_vector(&v, suite,
					                json_object_array_get_idx(vecs, vi), mode,
					                sk, pk);
			}
			sodium_memzero(sk, sizeof sk);
			vec_end(&v);
		}
	}
}

/* ---- RFC 9807 OPAQUE ---- */

struct trace_entry {
	const char *name;
	uint8_t value[128];
	size_t len;
};
static struct trace_entry traces[64];
static size_t ntraces;

void opaque_trace_record(const char *name, const uint8_t *value, size_t len)
{
	if (ntraces < sizeof traces / sizeof traces[0] && len <= sizeof traces[0].value) {
		traces[ntraces].name = name;
		memcpy(traces[ntraces].value, value, len);
		traces[ntraces].len = len;
		ntraces++;
	}
}

/* Each intermediate must have been computed at least once, and every time with its value. */
static void check_intermediates(struct vec *v, struct json_object *im)
{
	json_object_object_foreach(im, key, val)
	{
		uint8_t want[MAXB];
		size_t n, seen = 0;

		(void)val;
		if (hex_field(v, im, key, want, sizeof want, &n, 0) < 0)
			continue;
		for (size_t i = 0; i < ntraces; i++)
			if (strcmp(traces[i].name, key) == 0) {
				seen++;
				expect_bytes(v, key, want, n, traces[i].value, traces[i].len);
			}
		if (seen == 0 && strcmp(key, "client_public_key") != 0)
			vfail(v, "intermediate %s was never computed", key);
	}
}

static const struct {
	const char *key, *value;
} opaque_config[] = {
    {"Group", "ristretto255"},
    {"Hash", "SHA512"},
    {"KDF", "HKDF-SHA512"},
    {"KSF", "Identity"},
    {"MAC", "HMAC-SHA512"},
    {"Name", "3DH"},
    {"Nh", "64"},
    {"Nm", "64"},
    {"Nok", "32"},
    {"Npk", "32"},
    {"Nsk", "32"},
    {"Nx", "64"},
    {"OPRF", "ristretto255-SHA512"},
};

#define IN(key, buf, want) hex_field(&v, in, key, buf, sizeof buf, NULL, want)

static void run_opaque_vector(struct vec *vp, struct json_object *cfg, struct json_object *in,
                              struct json_object *im, struct json_object *out, int fake)
{
	struct vec v = *vp;
	uint8_t ctx[MAXB], cid[MAXB], sid[MAXB], cred[MAXB], pw[MAXB], oprf_seed[64], sk[32],
	    pk[32];
	uint8_t blind_r[32], blind_l[32], env_nonce[32], cnonce[32], cseed[32], mnonce[32];
	uint8_t snonce[32], sseed[32], req[32], resp[64], record[192], export_key[64];
	uint8_t ke1[96], ke2[320], ke3[64], skey_c[64], skey_s[64], ekey2[64], csk[32], cpk[32];
	size_t ctx_len, cid_len = 0, sid_len = 0, cred_len, pw_len;
	struct opaque_client_state cst;
	struct opaque_server_state sst;
	struct opaque_server_key key;
	struct opaque_params p = {0};
	struct ksf_params ksf = {KSF_IDENTITY, 0, 0};
	struct json_object *f;

	if (hex_field(&v, cfg, "Context", ctx, sizeof ctx, &ctx_len, 0) < 0)
		goto out;
	p.context = ctx;
	p.context_len = ctx_len;
	if (json_object_object_get_ex(in, "client_identity", &f)) {
		if (hex_field(&v, in, "client_identity", cid, sizeof cid, &cid_len, 0) < 0)
			goto out;
		p.client_identity = cid;
		p.client_identity_len = cid_len;
	}
	if (json_object_object_get_ex(in, "server_identity", &f)) {
		if (hex_field(&v, in, "server_identity", sid, sizeof sid, &sid_len, 0) < 0)
			goto out;
		p.server_identity = sid;
		p.server_identity_len = sid_len;
	}
	if (hex_field(&v, in, "credential_identifier", cred, sizeof cred, &cred_len, 0) < 0 ||
	    IN("oprf_seed", oprf_seed, 64) < 0 || IN("server_private_key", sk, 32) < 0 ||
	    IN("masking_nonce", mnonce, 32) < 0 || IN("server_nonce", snonce, 32) < 0 ||
	    IN("server_keyshare_seed", sseed, 32) < 0 || IN("client_keyshare_seed", cseed, 32) < 0)
		goto out;
	expect_ok(&v, "server key", opaque_server_key_from_sk(&key, sk));
	expect_field(&v, in, "server_public_key", key.pk, 32);
	ntraces = 0;

	if (fake) {
		/* The server answers an unknown identifier from a fake record: client_public_key,
		 * masking_key and an all-zero envelope (RFC 9807 §10.9). */
		if (IN("KE1", ke1, 96) < 0 || IN("client_private_key", csk, 32) < 0 ||
		    IN("client_public_key", record, 32) < 0 ||
		    IN("masking_key", record + 32, 64) < 0)
			goto out;
		memset(record + 96, 0, 96);
		expect_ok(&v, "client key pair", crypto_scalarmult_ristretto255_base(cpk, csk));
		expect_bytes(&v, "client_public_key", record, 32, cpk, 32);
		expect_ok(&v, "KE2 (fake record)",
		          opaque_server_ke2_det(ke2, &sst, ke1, record, cred, cred_len, oprf_seed,
		                                &key, &p, mnonce, snonce, sseed));
		expect_field(&v, out, "KE2", ke2, sizeof ke2);
		goto out;
	}

	if (hex_field(&v, in, "password", pw, sizeof pw, &pw_len, 0) < 0 ||
	    IN("blind_registration", blind_r, 32) < 0 || IN("blind_login", blind_l, 32) < 0 ||
	    IN("envelope_nonce", env_nonce, 32) < 0 || IN("client_nonce", cnonce, 32) < 0)
		goto out;
	/* Registration */
	expect_ok(&v, "CreateRegistrationRequest",
	          opaque_client_registration_request_det(req, &cst, pw, pw_len, blind_r));
	expect_field(&v, out, "registration_request", req, sizeof req);
	expect_ok(
	    &v, "CreateRegistrationResponse",
	    opaque_server_registration_response(resp, req, key.pk, oprf_seed, cred, cred_len));
	expect_field(&v, out, "registration_response", resp, sizeof resp);
	expect_ok(&v, "FinalizeRegistrationRequest",
	          opaque_client_registration_finalize_det(record, export_key, &cst, pw, pw_len,
	                                                  resp, &p, &ksf, env_nonce));
	expect_field(&v, out, "registration_upload", record, sizeof record);
	expect_field(&v, out, "export_key", export_key, sizeof export_key);
	expect_ok(&v, "record check", opaque_record_check(record, sizeof record));
	expect_field(&v, im, "client_public_key", record, 32);
	/* Login */
	expect_ok(&v, "GenerateKE1",
	          opaque_client_ke1_det(ke1, &cst, pw, pw_len, blind_l, cnonce, cseed));
	expect_field(&v, out, "KE1", ke1, sizeof ke1);
	expect_ok(&v, "GenerateKE2",
	          opaque_server_ke2_det(ke2, &sst, ke1, record, cred, cred_len, oprf_seed, &key, &p,
	                                mnonce, snonce, sseed));
	expect_field(&v, out, "KE2", ke2, sizeof ke2);
	expect_ok(&v, "GenerateKE3",
	          opaque_client_ke3(ke3, skey_c, ekey2, pk, &cst, pw, pw_len, ke2, &p, &ksf));
	expect_field(&v, out, "KE3", ke3, sizeof ke3);
	expect_field(&v, out, "session_key", skey_c, sizeof skey_c);
	expect_field(&v, out, "export_key", ekey2, sizeof ekey2);
	expect_field(&v, in, "server_public_key", pk, sizeof pk);
	expect_ok(&v, "ServerFinish", opaque_server_finish(skey_s, &sst, ke3));
	expect_field(&v, out, "session_key", skey_s, sizeof skey_s);
	check_intermediates(&v, im);
out:
	sodium_memzero(&key, sizeof key);
	sodium_memzero(&sst, sizeof sst);
	*vp = v;
}

static void run_opaque(const char *file, struct json_object *root)
{
	size_t n = json_object_array_length(root);

	for (size_t i = 0; i < n; i++) {
		struct json_object *t = json_object_array_get_idx(root, i), *cfg, *in, *im, *out;
		const char *group, *fake;
		int supported = 1, is_fake;
		struct vec v;
		size_t c;

		if (!json_object_object_get_ex(t, "config", &cfg) ||
		    !json_object_object_get_ex(t, "inputs", &in) ||
		    !json_object_object_get_ex(t, "intermediates", &im) ||
		    !json_object_object_get_ex(t, "outputs", &out)) {
			printf("FAIL %s: vector %zu lacks config/inputs/intermediates/outputs\n",
			       file, i);
			n_failed++;
			continue;
		}
		group = json_object_get_string(json_object_object_get(cfg, "Group"));
		fake = json_object_get_string(json_object_object_get(cfg, "Fake"));
		for (c = 0; c < sizeof opaque_config / sizeof opaque_config[0]; c++) {
			const char *val = json_object_get_string(
			    json_object_object_get(cfg, opaque_config[c].key));
			if (val == NULL || strcmp(val, opaque_config[c].value) != 0)
				supported = 0;
		}
		if (!supported) {
			char what[128];

			snprintf(what, sizeof what,
			         "RFC 9807 vector %zu, group %s%s not implemented", i + 1,
			         group ? group : "?",
			         fake && strcmp(fake, "True") == 0 ? " (fake)" : "");
			skip(file, what, 1);
			continue;
		}
		is_fake = fake != NULL && strcmp(fake, "True") == 0;
		vec_begin(&v, "%s RFC9807 #%zu %s%s", file, i + 1, group, is_fake ? " fake" : "");
		track(&v, 0, cfg);
		track(&v, 1, in);
		track(&v, 2, im);
		track(&v, 3, out);
		for (c = 0; c < sizeof opaque_config / sizeof opaque_config[0]; c++)
			mark_used(&v, cfg, opaque_config[c].key);
		mark_used(&v, cfg, "Fake");
		run_opaque_vector(&v, cfg, in, im, out, is_fake);
		vec_end(&v);
	}
}

/* ---- sealvault threshold realms (tests/vectors/realms.json, docs/realms.md) ---- */

/* A JSON integer field in lo..hi. */
static int int_field(struct vec *v, struct json_object *o, const char *key, int lo, int hi,
                     unsigned *out)
{
	struct json_object *f;
	int x;

	if (!json_object_object_get_ex(o, key, &f) || !json_object_is_type(f, json_type_int) ||
	    (x = json_object_get_int(f)) < lo || x > hi) {
		vfail(v, "field %s missing or not an integer in %d..%d", key, lo, hi);
		return -1;
	}
	mark_used(v, o, key);
	*out = (unsigned)x;
	return 0;
}

/* A hex list of exactly n values of each bytes, packed into out. */
static int packed_list(struct vec *v, struct json_object *o, const char *key, size_t each, size_t n,
                       uint8_t *out)
{
	static uint8_t tmp[MAXN][MAXB];
	size_t lens[MAXN], got;

	if (hex_list(v, o, key, tmp, lens, &got) < 0)
		return -1;
	if (got != n) {
		vfail(v, "field %s: %zu values, want %zu", key, got, n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (lens[i] != each) {
			vfail(v, "field %s: value %zu is not %zu bytes", key, i, each);
			return -1;
		}
		memcpy(out + i * each, tmp[i], each);
	}
	return 0;
}

/* Compares computed packed values with a hex list field. */
static void expect_list(struct vec *v, struct json_object *o, const char *key, size_t each,
                        size_t n, const uint8_t *got)
{
	uint8_t want[MAXN * MAXB];
	char what[64];

	if (packed_list(v, o, key, each, n, want) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		snprintf(what, sizeof what, "%s[%zu]", key, i);
		expect_bytes(v, what, want + i * each, each, got + i * each, each);
	}
}

/* The RFC 9497 A.1 key split t of n: every realm's evaluation and proof, and every subset of
 * at least t realms combining to the RFC's EvaluationElement and Output. */
static void realms_threshold(struct vec *v, struct json_object *t)
{
	struct realm_share sh[MAXN];
	struct realm_evaluation ev[MAXN], sub[MAXN];
	uint8_t sk[32], coeffs[MAXN * 32], vals[MAXN * 32], com[MAXN * 32], r[MAXN * 32];
	uint8_t evs[MAXN * 32], prs[MAXN * 64], input[MAXB], blind[32], blinded[32], want_ev[32];
	uint8_t want_out[64], comb[32], out[64];
	size_t in_len, bad;
	unsigned tt, n, i, mask;

	if (int_field(v, t, "t", 2, MAXN, &tt) < 0 || int_field(v, t, "n", (int)tt, MAXN, &n) < 0)
		return;
	if (hex_field(v, t, "skSm", sk, sizeof sk, NULL, 32) < 0 ||
	    packed_list(v, t, "coefficients", 32, tt - 1, coeffs) < 0 ||
	    hex_field(v, t, "Input", input, sizeof input, &in_len, 0) < 0 ||
	    hex_field(v, t, "Blind", blind, sizeof blind, NULL, 32) < 0 ||
	    packed_list(v, t, "proofRandomness", 32, n, r) < 0 ||
	    hex_field(v, t, "EvaluationElement", want_ev, sizeof want_ev, NULL, 32) < 0 ||
	    hex_field(v, t, "Output", want_out, sizeof want_out, NULL, 64) < 0)
		return;
	expect_ok(v, "split", realm_shamir_split_det(sh, sk, tt, n, coeffs));
	expect_ok(v, "Blind", oprf_blind_det(blinded, OPRF_MODE_OPRF, blind, input, in_len));
	expect_field(v, t, "BlindedElement", blinded, 32);
	for (i = 0; i < n; i++) {
		memcpy(vals + 32 * i, sh[i].value, 32);
		expect_ok(v, "commitment", realm_commitment(com + 32 * i, sh[i].value));
		expect_ok(v, "realm evaluate",
		          realm_evaluate_det(evs + 32 * i, prs + 64 * i, sh[i].value, com + 32 * i,
		                             blinded, r + 32 * i));
		ev[i].index = sh[i].index;
		memcpy(ev[i].commitment, com + 32 * i, 32);
		memcpy(ev[i].evaluated, evs + 32 * i, 32);
		memcpy(ev[i].proof, prs + 64 * i, 64);
	}
	expect_list(v, t, "shares", 32, n, vals);
	expect_list(v, t, "commitments", 32, n, com);
	expect_list(v, t, "evaluations", 32, n, evs);
	expect_list(v, t, "proofs", 64, n, prs);
	if (v->bad)
		return;
	for (mask = 1; mask < (1u << n); mask++) {
		size_t k = 0;

		for (i = 0; i < n; i++)
			if (mask & (1u << i))
				sub[k++] = ev[i];
		expect_ok(v, "combine", realm_combine(comb, &bad, blinded, sub, k));
		if (k < tt) { /* fewer than t realms: not the key's evaluation */
			if (memcmp(comb, want_ev, 32) == 0)
				vfail(v, "%zu of %u realms gave the evaluation", k, tt);
			continue;
		}
		expect_bytes(v, "EvaluationElement (combined)", want_ev, 32, comb, 32);
		expect_ok(v, "Finalize", oprf_finalize(out, input, in_len, blind, comb));
		expect_bytes(v, "Output (combined)", want_out, 64, out, 64);
	}
	/* a changed evaluation is caught by its proof and named */
	sub[0] = ev[0];
	sub[1] = ev[1];
	sub[1].evaluated[0] ^= 1;
	if (realm_combine(comb, &bad, blinded, sub, 2) == 0 || bad != 1)
		vfail(v, "a changed evaluation was not refused and named");
}

/* One registration at n realms and the recovery through every t-subset. */
static void realms_registration(struct vec *v, struct json_object *t)
{
	struct realm_share ks[MAXN], ss[MAXN], got[MAXN];
	struct realm_evaluation ev[MAXN];
	struct ksf_params ksf;
	uint8_t pw[MAXB], uid[MAXB], version[16], prof[KSF_PARAMS_LEN], rid[MAXN * 16], k[32];
	uint8_t kc[MAXN * 32], s[32], sc[MAXN * 32], secret[MAXB], nonce[24], access[64], seed[32];
	uint8_t kv[MAXN * 32], com[MAXN * 32], h[64], y[64], prk[64], check[32], tags[MAXN * 32];
	uint8_t sv[MAXN * 32], macs[MAXN * 32], key[32], ct[MAXB], blind[32], blinded[32];
	uint8_t r[MAXN * 32], evs[MAXN * 32], prs[MAXN * 64], sid[MAXN * 16], tp[MAXN * 32];
	uint8_t rn[MAXN * 24], rel[MAXN * REALM_RELEASE_LEN], comb[32], mac[32], opened[MAXB];
	size_t pw_len, uid_len, secret_len, opened_len, bad;
	unsigned tt, n, i, mask;

	if (int_field(v, t, "t", 1, MAXN, &tt) < 0 || int_field(v, t, "n", (int)tt, MAXN, &n) < 0)
		return;
	if (hex_field(v, t, "password", pw, sizeof pw, &pw_len, 0) < 0 ||
	    hex_field(v, t, "uid", uid, sizeof uid, &uid_len, 0) < 0 ||
	    hex_field(v, t, "version", version, sizeof version, NULL, 16) < 0 ||
	    hex_field(v, t, "ksfProfile", prof, sizeof prof, NULL, KSF_PARAMS_LEN) < 0 ||
	    packed_list(v, t, "realmIds", 16, n, rid) < 0 ||
	    hex_field(v, t, "oprfKey", k, sizeof k, NULL, 32) < 0 ||
	    packed_list(v, t, "oprfCoefficients", 32, tt - 1, kc) < 0 ||
	    hex_field(v, t, "encScalar", s, sizeof s, NULL, 32) < 0 ||
	    packed_list(v, t, "encCoefficients", 32, tt - 1, sc) < 0 ||
	    hex_field(v, t, "secret", secret, sizeof secret, &secret_len, 0) < 0 ||
	    hex_field(v, t, "secretNonce", nonce, sizeof nonce, NULL, 24) < 0 ||
	    hex_field(v, t, "blind", blind, sizeof blind, NULL, 32) < 0 ||
	    packed_list(v, t, "proofRandomness", 32, n, r) < 0 ||
	    packed_list(v, t, "sessionIds", 16, n, sid) < 0 ||
	    packed_list(v, t, "releaseNonces", 24, n, rn) < 0)
		return;
	if (ksf_params_decode(&ksf, prof, sizeof prof) < 0 || secret_len > REALM_SECRET_MAX) {
		vfail(v, "ksfProfile or secret out of bounds");
		return;
	}
	/* registration, as the client computes it */
	expect_ok(v, "stretch",
	          realm_stretch(access, seed, pw, pw_len, version, uid, uid_len, &ksf));
	expect_field(v, t, "accessKey", access, 64);
	expect_field(v, t, "encSeed", seed, 32);
	expect_ok(v, "split OPRF key", realm_shamir_split_det(ks, k, tt, n, kc));
	expect_ok(v, "split encryption scalar", realm_shamir_split_det(ss, s, tt, n, sc));
	for (i = 0; i < n; i++) {
		memcpy(kv + 32 * i, ks[i].value, 32);
		memcpy(sv + 32 * i, ss[i].value, 32);
		expect_ok(v, "commitment", realm_commitment(com + 32 * i, ks[i].value));
	}
	expect_list(v, t, "oprfShares", 32, n, kv);
	expect_list(v, t, "encShares", 32, n, sv);
	expect_list(v, t, "commitments", 32, n, com);
	expect_ok(v, "registration hash",
	          realm_registration_hash(h, version, &ksf, tt, n, uid, uid_len, com));
	expect_field(v, t, "registrationHash", h, 64);
	expect_ok(v, "OPRF", oprf_evaluate(y, OPRF_MODE_OPRF, k, access, 64, NULL, 0));
	expect_field(v, t, "oprfOutput", y, 64);
	realm_unlock_prk(prk, y, h);
	expect_ok(v, "unlock check", realm_unlock_check(check, prk));
	expect_field(v, t, "unlockCheck", check, 32);
	for (i = 0; i < n; i++) {
		expect_ok(v, "unlock tag",
		          realm_unlock_tag(tags + 32 * i, prk, rid + 16 * i, i + 1));
		expect_ok(v, "share mac",
		          realm_share_mac(macs + 32 * i, prk, rid + 16 * i, i + 1, sv + 32 * i));
	}
	expect_list(v, t, "unlockTags", 32, n, tags);
	expect_list(v, t, "shareMacs", 32, n, macs);
	expect_ok(v, "secret key", realm_secret_key(key, seed, s, h));
	expect_field(v, t, "secretKey", key, 32);
	expect_ok(v, "secret seal", realm_secret_seal_det(ct, key, h, secret, secret_len, nonce));
	expect_field(v, t, "ciphertext", ct, REALM_SEALED_LEN(secret_len));

	/* recovery: every realm's answers, then every t-subset combined */
	expect_ok(v, "blind", oprf_blind_det(blinded, OPRF_MODE_OPRF, blind, access, 64));
	expect_field(v, t, "blindedElement", blinded, 32);
	for (i = 0; i < n; i++) {
		expect_ok(v, "realm evaluate",
		          realm_evaluate_det(evs + 32 * i, prs + 64 * i, kv + 32 * i, com + 32 * i,
		                             blinded, r + 32 * i));
		expect_ok(v, "tag proof",
		          realm_tag_proof(tp + 32 * i, tags + 32 * i, sid + 16 * i));
		expect_ok(v, "tag check",
		          realm_tag_check(tags + 32 * i, sid + 16 * i, tp + 32 * i));
		expect_ok(v, "release",
		          realm_release_seal_det(rel + REALM_RELEASE_LEN * i, tags + 32 * i,
		                                 sid + 16 * i, sv + 32 * i, macs + 32 * i,
		                                 rn + 24 * i));
	}
	expect_list(v, t, "evaluations", 32, n, evs);
	expect_list(v, t, "proofs", 64, n, prs);
	expect_list(v, t, "tagProofs", 32, n, tp);
	expect_list(v, t, "releases", REALM_RELEASE_LEN, n, rel);
	if (v->bad)
		return;
	for (mask = 1; mask < (1u << n); mask++) {
		size_t c = 0;

		for (i = 0; i < n; i++)
			if (mask & (1u << i))
				c++;
		if (c != tt)
			continue;
		c = 0;
		for (i = 0; i < n; i++) {
			if (!(mask & (1u << i)))
				continue;
			ev[c].index = (uint8_t)(i + 1);
			memcpy(ev[c].commitment, com + 32 * i, 32);
			memcpy(ev[c].evaluated, evs + 32 * i, 32);
			memcpy(ev[c].proof, prs + 64 * i, 64);
			got[c].index = (uint8_t)(i + 1);
			expect_ok(v, "release open",
			          realm_release_open(got[c].value, mac, tags + 32 * i, sid + 16 * i,
			                             rel + REALM_RELEASE_LEN * i));
			expect_bytes(v, "released share mac", macs + 32 * i, 32, mac, 32);
			c++;
		}
		expect_ok(v, "combine", realm_combine(comb, &bad, blinded, ev, c));
		expect_ok(v, "finalize", oprf_finalize(y, access, 64, blind, comb));
		expect_field(v, t, "oprfOutput", y, 64);
		expect_ok(v, "combine shares", realm_shamir_combine(comb, got, c));
		expect_bytes(v, "encScalar (combined)", s, 32, comb, 32);
		expect_ok(v, "secret open",
		          realm_secret_open(opened, &opened_len, key, h, ct,
		                            REALM_SEALED_LEN(secret_len)));
		expect_bytes(v, "secret (opened)", secret, secret_len, opened, opened_len);
	}
}

static void run_realms(const char *file, struct json_object *root)
{
	struct json_object *vecs;
	size_t nv;

	if (!json_object_object_get_ex(root, "vectors", &vecs) ||
	    !json_object_is_type(vecs, json_type_array)) {
		printf("FAIL %s: no \"vectors\" array\n", file);
		n_failed++;
		return;
	}
	nv = json_object_array_length(vecs);
	for (size_t i = 0; i < nv; i++) {
		struct json_object *t = json_object_array_get_idx(vecs, i);
		const char *kind = json_object_get_string(json_object_object_get(t, "kind"));
		struct vec v;

		vec_begin(&v, "%s realms %zu (%s)", file, i + 1, kind != NULL ? kind : "?");
		track(&v, 0, t);
		mark_used(&v, t, "kind");
		mark_used(&v, t, "comment");
		if (kind != NULL && strcmp(kind, "threshold-oprf") == 0)
			realms_threshold(&v, t);
		else if (kind != NULL && strcmp(kind, "registration") == 0)
			realms_registration(&v, t);
		else
			vfail(&v, "unknown kind");
		vec_end(&v);
	}
}

static int run_file(const char *file)
{
	struct json_object *root = json_object_from_file(file), *first;

	if (root == NULL) {
		printf("FAIL %s: cannot read or parse JSON: %s\n", file, json_util_get_last_err());
		n_failed++;
		return -1;
	}
	if (json_object_is_type(root, json_type_object) &&
	    json_object_object_get_ex(root, "name", &first) &&
	    json_object_is_type(first, json_type_string) &&
	    strcmp(json_object_get_string(first), "sealvault-realms-v1") == 0) {
		run_realms(file, root);
	} else if (json_object_is_type(root, json_type_object)) {
		run_xmd(file, root);
	} else if (json_object_is_type(root, json_type_array) &&
	           json_object_array_length(root) > 0) {
		first = json_object_array_get_idx(root, 0);
		if (json_object_object_get_ex(first, "config", NULL))
			run_opaque(file, root);
		else if (json_object_object_get_ex(first, "identifier", NULL))
			run_oprf(file, root);
		else {
			printf("FAIL %s: unknown vector layout\n", file);
			n_failed++;
		}
	} else {
		printf("FAIL %s: unknown vector layout\n", file);
		n_failed++;
	}
	json_object_put(root);
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;

	if (sodium_init() < 0) {
		fprintf(stderr, "sv-conformance: libsodium failed to initialise\n");
		return 2;
	}
	if (i < argc && strcmp(argv[i], "-v") == 0) {
		verbose = 1;
		i++;
	}
	if (i == argc) {
		fprintf(stderr, "usage: sv-conformance [-v] FILE.json...\n");
		return 2;
	}
	for (; i < argc; i++)
		run_file(argv[i]);
	printf("%u passed, %u failed, %u skipped\n", n_passed, n_failed, n_skipped);
	return n_failed == 0 && n_passed > 0 ? 0 : 1;
}
