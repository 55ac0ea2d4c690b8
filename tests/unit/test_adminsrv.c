/* Unit tests for enclave/adminsrv: the admin end of the enclave (fd 5) on a real socketpair, the
 * store faked through --wrap (enclave/build.mk). Which frames it takes, the status it sends,
 * and the order of a deletion: staged, written, anchored, and only then answered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/adminmsg.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"
#include "enclave/adminsrv.h"
#include "enclave/audit.h"
#include "enclave/budget.h"
#include "enclave/store.h"

void __wrap_store_get_stats(const struct store *s, struct store_stats *out);
void __wrap_store_get_info(const struct store *s, struct store_info *out);
const struct store_secrets *__wrap_store_secrets(const struct store *s);
int __wrap_store_delete_user(struct store *s, const uint8_t *id, size_t id_len);
int __wrap_store_write(struct store *s);
uint64_t __wrap_store_counter(const struct store *s);
int __wrap_store_anchor(struct store *s);
uint64_t __wrap_store_commit_cost(const struct store *s);
uint64_t __wrap_store_flush_cost(const struct store *s);
void __wrap_store_set_flush_allowed(struct store *s, int ok);

static int delete_result, anchor_result;
static char calls[64]; /* d(elete) w(rite) a(nchor), in order */
static int flush_allowed = -1;
static struct store_secrets secrets = {.ake_pk = {7, 7, 7}};

static void call(char c)
{
	size_t n = strlen(calls);
	assert_true(n + 1 < sizeof(calls));
	calls[n] = c;
}

void __wrap_store_get_stats(const struct store *s, struct store_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->counter = 1283;
	out->journal_head = 1283;
	out->users = 2;
	out->nv_writes = 13;
}

void __wrap_store_get_info(const struct store *s, struct store_info *out)
{
	memset(out, 0, sizeof(*out));
	out->nv_index = 0x01005356;
	out->active_slot = 'b';
	out->roll_forward = 1;
	out->tail_bytes = 40;
}

const struct store_secrets *__wrap_store_secrets(const struct store *s)
{
	return &secrets;
}

int __wrap_store_delete_user(struct store *s, const uint8_t *id, size_t id_len)
{
	call('d');
	/* bob's /v1 record, or his realm record (0x01 | bob: sealvault-admin delete --realm) */
	if (id_len == 4 && id[0] == 0x01) {
		id++;
		id_len--;
	}
	assert_int_equal(id_len, 3);
	assert_memory_equal(id, "bob", 3);
	return delete_result;
}

/* the audit record the deletion notes (audit_note is wrapped: enclave/build.mk) */
static struct audit_note noted;
static int nnoted;
int __wrap_audit_note(const struct audit_note *n, const uint8_t *id, size_t id_len);
int __wrap_audit_note(const struct audit_note *n, const uint8_t *id, size_t id_len)
{
	(void)id;
	(void)id_len;
	noted = *n;
	nnoted++;
	return SV_OK;
}

uint64_t __wrap_store_counter(const struct store *s)
{
	(void)s;
	return 1; /* the deletion's audit record (enclave/audit.h; not opened here) */
}

int __wrap_store_write(struct store *s)
{
	call('w');
	return 0;
}

int __wrap_store_anchor(struct store *s)
{
	call('a');
	return anchor_result;
}

uint64_t __wrap_store_commit_cost(const struct store *s)
{
	return 1;
}

uint64_t __wrap_store_flush_cost(const struct store *s)
{
	return 3;
}

void __wrap_store_set_flush_allowed(struct store *s, int ok)
{
	flush_allowed = ok;
}

static int sv[2];
static struct adminsrv *a;
static struct budget bud;

static int setup(void **state)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	budget_init(&bud, 0, 25, 0, 0); /* unlimited */
	assert_int_equal(adminsrv_new(&a, sv[1], NULL, &bud, "/var/lib/sealvault"), 0);
	memset(calls, 0, sizeof(calls));
	delete_result = anchor_result = 0;
	flush_allowed = -1;
	return 0;
}

static int teardown(void **state)
{
	adminsrv_free(a);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

/* Sends a request on sealvaultd's end, runs the admin end, and reads its reply. */
static int ask(uint16_t type, const char *payload, size_t len, enum adminmsg_code *code,
               const uint8_t **body, size_t *n)
{
	static uint8_t buf[SV_FRAME_BUF_LEN];
	struct sv_frame f;
	assert_int_equal(frame_send(sv[0], type, 77, (const uint8_t *)payload, len), 0);
	int r = adminsrv_serve(a);
	assert_int_equal(frame_recv(sv[0], buf, &f), 0);
	assert_int_equal(f.type, SV_MSG_ADMIN_REPLY);
	assert_int_equal(f.req_id, 77);
	assert_int_equal(adminmsg_reply_decode(f.payload, f.len, code, body, n), 0);
	/* one reply per request */
	assert_int_equal(frame_recv(sv[0], buf, &f), SV_ERR_BUSY);
	return r;
}

static void test_permitted(void **state)
{
	for (uint32_t t = 0; t <= 0xffff; t++)
		assert_int_equal(adminsrv_permitted((uint16_t)t),
		                 t == SV_MSG_ADMIN_STATUS || t == SV_MSG_ADMIN_DELETE);
	/* none of the broker's requests, not the reply it sends itself */
	assert_false(adminsrv_permitted(SV_MSG_LOGIN_START));
	assert_false(adminsrv_permitted(SV_MSG_STATS));
	assert_false(adminsrv_permitted(SV_MSG_ADMIN_REPLY));
	assert_int_equal(adminsrv_fd(NULL), -1);
}

static void test_status(void **state)
{
	static struct adminmsg_status s;
	enum adminmsg_code code;
	const uint8_t *body;
	size_t n;
	assert_int_equal(ask(SV_MSG_ADMIN_STATUS, NULL, 0, &code, &body, &n), 0);
	assert_int_equal(code, ADMINMSG_OK);
	assert_int_equal(adminmsg_status_decode(body, n, &s), 0);
	assert_string_equal(s.state_dir, "/var/lib/sealvault");
	assert_int_equal(s.server_pk[0], 7);
	assert_int_equal(s.counter, 1283);
	assert_int_equal(s.users, 2);
	assert_int_equal(s.nv_index, 0x01005356);
	assert_int_equal(s.active_slot, 'b');
	/* settled when the running vault started: not reported as pending */
	assert_int_equal(s.roll_forward, 0);
	assert_int_equal(s.tail_bytes, 0);
	assert_string_equal(calls, ""); /* a status changes nothing */
	/* the offline fill reports them as the store does */
	adminsrv_status(NULL, "/x", &s);
	assert_int_equal(s.roll_forward, 1);
	assert_int_equal(s.tail_bytes, 40);
}

static void test_delete(void **state)
{
	enum adminmsg_code code;
	const uint8_t *body;
	size_t n;
	nnoted = 0;
	assert_int_equal(ask(SV_MSG_ADMIN_DELETE, "bob", 3, &code, &body, &n), 0);
	assert_int_equal(code, ADMINMSG_OK);
	assert_string_equal(calls, "dwa"); /* staged, written, anchored, then answered */
	assert_int_equal(flush_allowed, 1);
	assert_int_equal(nnoted, 1);
	assert_int_equal(noted.kind, AUDIT_DELETED);
	assert_int_equal(noted.operator, 1);

	/* a realm record (sealvault-admin delete --realm): the realm kind, by the operator */
	memset(calls, 0, sizeof(calls));
	assert_int_equal(ask(SV_MSG_ADMIN_DELETE,
	                     "\x01"
	                     "bob",
	                     4, &code, &body, &n),
	                 0);
	assert_int_equal(code, ADMINMSG_OK);
	assert_string_equal(calls, "dwa");
	assert_int_equal(nnoted, 2);
	assert_int_equal(noted.kind, AUDIT_REALM_DELETED);
	assert_int_equal(noted.operator, 1);

	memset(calls, 0, sizeof(calls));
	delete_result = SV_ERR_NOTFOUND;
	assert_int_equal(ask(SV_MSG_ADMIN_DELETE, "bob", 3, &code, &body, &n), 0);
	assert_int_equal(code, ADMINMSG_NOTFOUND);
	assert_string_equal(calls, "d"); /* nothing written */

	memset(calls, 0, sizeof(calls));
	delete_result = SV_ERR_BUSY; /* no forced flush affordable */
	assert_int_equal(ask(SV_MSG_ADMIN_DELETE, "bob", 3, &code, &body, &n), 0);
	assert_int_equal(code, ADMINMSG_BUSY);
	assert_string_equal(calls, "d");

	/* the TPM throttles: written, the increment owed, answered busy, and the loop told */
	memset(calls, 0, sizeof(calls));
	delete_result = 0;
	anchor_result = SV_ERR_BUSY;
	assert_int_equal(ask(SV_MSG_ADMIN_DELETE, "bob", 3, &code, &body, &n), SV_ERR_BUSY);
	assert_int_equal(code, ADMINMSG_BUSY);
	assert_string_equal(calls, "dwa");
}

/* A frame that is not an admin request on the admin end ends the process (exit 1). */
static void test_refused(void **state)
{
	static const struct {
		uint16_t type;
		const char *p;
		size_t n;
	} bad[] = {
	    {SV_MSG_LOGIN_START, "x", 1},   {SV_MSG_HEALTH, NULL, 0},
	    {SV_MSG_ADMIN_REPLY, "\0", 1},  {SV_MSG_ADMIN_STATUS, "x", 1},
	    {SV_MSG_ADMIN_DELETE, NULL, 0},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    frame_send(sv[0], bad[i].type, 1, (const uint8_t *)bad[i].p, bad[i].n), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			_exit(adminsrv_serve(a) == 0 ? 0 : 2);
		}
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 1);
		assert_string_equal(calls, "");
	}
	/* sealvaultd's end closed: no more polling, no exit */
	close(sv[0]);
	sv[0] = -1;
	while (adminsrv_fd(a) >= 0)
		assert_int_equal(adminsrv_serve(a), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_permitted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
