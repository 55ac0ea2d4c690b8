/*
 * The single-vault steps without I/O (client/vaultsteps.c): a registration and logins driven
 * step by step against the OPAQUE server functions of crypto/opaque.c in the test, no network and
 * no libsealvault context: the request bytes of each step are what the vault reads, and its
 * answers are what the next step takes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "client/vaultsteps.h"
#include "common/err.h"

static const uint8_t user[] = "alice";
static const uint8_t pw[] = "correct horse";
static const uint8_t secret[] = "a backup key";
static const struct ksf_params ksf = {KSF_IDENTITY, 0, 0};
#define ID_OFF (1 + 2 + sizeof(user) - 1) /* version | u16 len | id */

struct vault {
	struct opaque_server_key key;
	uint8_t oprf_seed[OPAQUE_OPRF_SEED_LEN];
	uint8_t record[OPAQUE_RECORD_LEN];
	struct opaque_params p;
};

static void do_register(struct vault *v, struct vaultsteps *s)
{
	struct sv_buf req;
	uint8_t response[OPAQUE_REGISTRATION_RESPONSE_LEN];
	const char *what = "unset";
	assert_int_equal(sv_buf_init(&req, CLIENT_WIRE_BODY_MAX), 0);
	assert_int_equal(
	    vaultsteps_register_start(s, &req, user, sizeof(user) - 1, pw, sizeof(pw) - 1), 0);
	assert_int_equal(req.len, ID_OFF + OPAQUE_REGISTRATION_REQUEST_LEN);
	/* the vault's side */
	assert_int_equal(opaque_server_registration_response(response, req.data + ID_OFF, v->key.pk,
	                                                     v->oprf_seed, user, sizeof(user) - 1),
	                 0);
	/* a reply of the wrong length is refused, the right one names the server key */
	assert_int_equal(vaultsteps_register_reply(s, response, sizeof(response) - 1),
	                 SV_ERR_INVALID);
	assert_int_equal(vaultsteps_register_reply(s, response, sizeof(response)), 0);
	assert_memory_equal(s->server_pk, v->key.pk, OPAQUE_PK_LEN);
	assert_int_equal(vaultsteps_register_finish(s, &req, user, sizeof(user) - 1, pw,
	                                            sizeof(pw) - 1, secret, sizeof(secret), &v->p,
	                                            &ksf, 5, &what),
	                 0);
	/* register/finish: version | id | record | guess limit | u16 | blob */
	assert_true(req.len > ID_OFF + OPAQUE_RECORD_LEN + 1);
	assert_int_equal(req.data[ID_OFF + OPAQUE_RECORD_LEN], 5);
	memcpy(v->record, req.data + ID_OFF, OPAQUE_RECORD_LEN);
	sv_buf_free(&req);
}

/* One login up to KE3; returns s->wrong. */
static int login(struct vault *v, struct vaultsteps *s, const uint8_t *password, size_t len)
{
	struct sv_buf req;
	struct opaque_server_state st;
	uint8_t reply[CLIENT_WIRE_SESSION_ID_LEN + OPAQUE_KE2_LEN + 1];
	int left = -1;
	assert_int_equal(sv_buf_init(&req, CLIENT_WIRE_BODY_MAX), 0);
	assert_int_equal(vaultsteps_login_start(s, &req, user, sizeof(user) - 1, password, len), 0);
	assert_int_equal(req.len, ID_OFF + OPAQUE_KE1_LEN);
	randombytes_buf(reply, CLIENT_WIRE_SESSION_ID_LEN);
	assert_int_equal(opaque_server_ke2(reply + CLIENT_WIRE_SESSION_ID_LEN, &st,
	                                   req.data + ID_OFF, v->record, user, sizeof(user) - 1,
	                                   v->oprf_seed, &v->key, &v->p),
	                 0);
	reply[sizeof(reply) - 1] = 4;
	assert_int_equal(
	    vaultsteps_login_ke2(s, reply, sizeof(reply) - 1, password, len, &v->p, &ksf, &left),
	    SV_ERR_INVALID);
	assert_int_equal(
	    vaultsteps_login_ke2(s, reply, sizeof(reply), password, len, &v->p, &ksf, &left), 0);
	assert_int_equal(left, 4);
	int wrong = s->wrong;
	if (!wrong) {
		/* the server accepts the KE3 the finish step sends */
		uint8_t session_key[OPAQUE_SESSION_KEY_LEN];
		assert_int_equal(vaultsteps_login_finish(s, &req, CLIENT_WIRE_OP_DELETE, NULL, 0),
		                 0);
		assert_int_equal(opaque_server_finish(session_key, &st,
		                                      req.data + 1 + CLIENT_WIRE_SESSION_ID_LEN),
		                 0);
		assert_memory_equal(session_key, s->session_key, OPAQUE_SESSION_KEY_LEN);
		assert_memory_equal(s->server_pk, v->key.pk, OPAQUE_PK_LEN);
	} else {
		uint8_t session_key[OPAQUE_SESSION_KEY_LEN];
		assert_int_equal(vaultsteps_login_finish(s, &req, CLIENT_WIRE_OP_DELETE, NULL, 0),
		                 0);
		/* random bytes: the server refuses them, and the op was turned into recover */
		assert_int_not_equal(
		    opaque_server_finish(session_key, &st,
		                         req.data + 1 + CLIENT_WIRE_SESSION_ID_LEN),
		    0);
		assert_int_equal(req.data[1 + CLIENT_WIRE_SESSION_ID_LEN + OPAQUE_KE3_LEN],
		                 CLIENT_WIRE_OP_RECOVER);
	}
	sv_buf_free(&req);
	return wrong;
}

static void test_register_and_login(void **state)
{
	(void)state;
	struct vault *v = sodium_malloc(sizeof(*v));
	struct vaultsteps *s = sodium_malloc(sizeof(*s));
	assert_non_null(v);
	assert_non_null(s);
	memset(v, 0, sizeof(*v));
	memset(s, 0, sizeof(*s));
	assert_int_equal(opaque_server_key_generate(&v->key), 0);
	randombytes_buf(v->oprf_seed, sizeof(v->oprf_seed));
	v->p.context = (const uint8_t *)"sealvault-v1";
	v->p.context_len = 12;
	do_register(v, s);
	vaultsteps_wipe(s);
	assert_int_equal(login(v, s, pw, sizeof(pw) - 1), 0);
	vaultsteps_wipe(s);
	assert_int_equal(login(v, s, (const uint8_t *)"wrong", 5), 1);
	vaultsteps_wipe(s);
	sodium_free(s);
	sodium_free(v);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_register_and_login),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
