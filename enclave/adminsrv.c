#include "enclave/adminsrv.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/msg.h"
#include "common/recordkey.h"
#include "enclave/audit.h"
#include "enclave/budget.h"
#include "enclave/store.h"

struct adminsrv {
	int fd;
	struct store *s;
	struct budget *bud;
	const char *dir;
	uint8_t *rbuf;       /* SV_FRAME_BUF_LEN */
	struct sv_buf reply; /* SV_MSG_ADMIN_REPLY payload */
	struct sv_buf body;  /* the encoded status */
	struct adminmsg_status st;
};

static void die(const char *what, int r) __attribute__((noreturn));

/* As serve.c's: _exit, the TPM thread may be inside ESYS. */
static void die(const char *what, int r)
{
	fprintf(stderr, "sealvault-enclave: admin link: %s (%s); exiting\n", what, sv_strerror(r));
	_exit(1);
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int adminsrv_new(struct adminsrv **out, int fd, struct store *s, struct budget *bud,
                 const char *dir)
{
	struct adminsrv *a = calloc(1, sizeof(*a));
	if (a == NULL || (a->rbuf = malloc(SV_FRAME_BUF_LEN)) == NULL ||
	    sv_buf_init(&a->reply, 1 + ADMINMSG_STATUS_FIXED + ADMINMSG_DIR_MAX) != 0 ||
	    sv_buf_init(&a->body, ADMINMSG_STATUS_FIXED + ADMINMSG_DIR_MAX) != 0) {
		adminsrv_free(a);
		return SV_ERR_NOMEM;
	}
	/* grow both buffers to their maximum now: no allocation after the filter */
	uint8_t *p;
	if (sv_buf_reserve(&a->reply, a->reply.max, &p) != 0 ||
	    sv_buf_reserve(&a->body, a->body.max, &p) != 0) {
		adminsrv_free(a);
		return SV_ERR_NOMEM;
	}
	sv_buf_reset(&a->reply);
	sv_buf_reset(&a->body);
	a->fd = fd;
	a->s = s;
	a->bud = bud;
	a->dir = dir;
	*out = a;
	return SV_OK;
}

void adminsrv_free(struct adminsrv *a)
{
	if (a == NULL)
		return;
	if (a->rbuf != NULL)
		sodium_memzero(a->rbuf, SV_FRAME_BUF_LEN);
	free(a->rbuf);
	sv_buf_free(&a->reply);
	sv_buf_free(&a->body);
	free(a);
}

int adminsrv_fd(const struct adminsrv *a)
{
	return a != NULL ? a->fd : -1;
}

int adminsrv_permitted(uint16_t type)
{
	return (type == SV_MSG_ADMIN_STATUS || type == SV_MSG_ADMIN_DELETE) &&
	       (msg_flags(type) & MSG_F_ADMIN) != 0;
}

void adminsrv_status(const struct store *s, const char *dir, struct adminmsg_status *o)
{
	struct store_stats st;
	struct store_info in;
	store_get_stats(s, &st);
	store_get_info(s, &in);
	memset(o, 0, sizeof(*o));
	snprintf(o->state_dir, sizeof(o->state_dir), "%s", dir);
	memcpy(o->server_pk, store_secrets(s)->ake_pk, ADMINMSG_PK_LEN);
	o->nv_index = in.nv_index;
	o->pcr_mask = in.pcr_mask;
	o->seal = in.seal;
	o->orderly_mask = in.orderly_mask;
	o->unclean_index = in.unclean_index;
	o->init_time = in.init_time;
	o->durable = st.durable;
	o->unclean_boots = st.unclean_boots;
	o->unclean_year = in.unclean_year;
	o->unclean_year_all = in.unclean_year_all;
	o->counter = st.counter;
	o->journal_head = st.journal_head;
	o->snapshot_counter = in.snapshot_counter;
	o->journal_bytes = in.journal_bytes;
	o->tail_bytes = in.tail_bytes;
	o->users = st.users;
	o->destroyed = st.destroyed;
	o->nv_writes = st.nv_writes;
	o->active_slot = in.active_slot == 'b' ? 'b' : 'a';
	o->power_cut = in.power_cut ? 1 : 0;
	o->roll_forward = in.roll_forward ? 1 : 0;
}

/* Sends the reply to request id, waiting for room (sealvaultd reads it at once). */
static void send_reply(struct adminsrv *a, uint32_t id)
{
	for (;;) {
		int r = frame_send(a->fd, SV_MSG_ADMIN_REPLY, id, a->reply.data, a->reply.len);
		if (r == 0)
			break;
		if (r != SV_ERR_BUSY)
			die("cannot send a reply to sealvaultd", r);
		struct pollfd p = {.fd = a->fd, .events = POLLOUT};
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			die("poll failed", SV_ERR_IO);
	}
	sv_buf_reset(&a->reply);
}

static void reply_text(struct adminsrv *a, enum adminmsg_code code, const char *text)
{
	if (adminmsg_reply_encode(&a->reply, code, text, strlen(text)) != 0)
		die("cannot encode a reply", SV_ERR_INTERNAL);
}

static void status(struct adminsrv *a)
{
	adminsrv_status(a->s, a->dir, &a->st);
	/* what a read-only open reports as pending was settled when this vault started: an
	 * interrupted commit completed, an uncommitted tail dropped, a power cut charged */
	a->st.roll_forward = 0;
	a->st.tail_bytes = 0;
	a->st.power_cut = 0;
	sv_buf_reset(&a->body);
	if (adminmsg_status_encode(&a->st, &a->body) != 0 ||
	    adminmsg_reply_encode(&a->reply, ADMINMSG_OK, a->body.data, a->body.len) != 0)
		die("cannot encode the status", SV_ERR_INTERNAL);
}

/* Stages the deletion and commits it alone (nothing else is staged when the loop calls
 * adminsrv_serve); the reply is written only once the commit is anchored. SV_ERR_BUSY: the
 * increment is owed. */
static int delete (struct adminsrv *a, const struct sv_frame *f)
{
	uint64_t now = mono_us();
	double flush = budget_cost(a->bud, store_flush_cost(a->s));
	store_set_flush_allowed(a->s, budget_wait_us(a->bud, flush, now) == 0);
	int r = store_delete_user(a->s, f->payload, f->len);
	if (r == SV_ERR_NOTFOUND || r == SV_ERR_RANGE) {
		reply_text(a, ADMINMSG_NOTFOUND, "no such user in this vault");
		return SV_OK;
	}
	if (r == SV_ERR_BUSY) {
		reply_text(a, ADMINMSG_BUSY,
		           "the NV-write budget allows no forced flush now, so nothing was "
		           "deleted; try again later (nv-writes-per-day in sealvault.conf)");
		return SV_OK;
	}
	if (r != 0)
		die("staging a deletion failed", r);
	/* a realm record (sealvault-admin delete --realm) has its own kind, as at /v2/realm/ */
	struct audit_note an = {.kind = f->len > 0 && f->payload[0] == RECORD_KEY_REALM
	                                    ? AUDIT_REALM_DELETED
	                                    : AUDIT_DELETED,
	                        .operator= 1 };
	if ((r = audit_note(&an, f->payload, f->len)) != 0)
		die("noting the deletion's audit record failed", r);
	uint64_t inc = store_commit_cost(a->s);
	if ((r = store_write(a->s)) != 0)
		die("writing the journal failed; the deletion was not confirmed", r);
	audit_written(store_counter(a->s));
	budget_spend(a->bud, budget_cost(a->bud, inc), mono_us());
	r = store_anchor(a->s);
	if (r == SV_ERR_BUSY) {
		reply_text(
		    a, ADMINMSG_BUSY,
		    "the TPM is throttling NV writes: the deletion is written but not yet "
		    "confirmed; it takes effect once the TPM accepts the increment (the vault "
		    "keeps trying); check with sealvault-admin status");
		return SV_ERR_BUSY;
	}
	if (r != 0)
		die("the NV counter increment failed; the deletion was not confirmed", r);
	audit_anchored(); /* before the reply */
	if (adminmsg_reply_encode(&a->reply, ADMINMSG_OK, NULL, 0) != 0)
		die("cannot encode a reply", SV_ERR_INTERNAL);
	fprintf(stderr, "sealvault-enclave: deleted a user at sealvault-admin's request\n");
	return SV_OK;
}

int adminsrv_serve(struct adminsrv *a)
{
	int ret = SV_OK;
	while (a != NULL && a->fd >= 0 && ret == SV_OK) {
		struct sv_frame f;
		int r = frame_recv(a->fd, a->rbuf, &f);
		if (r == SV_ERR_BUSY)
			break;
		if (r == SV_ERR_IO && errno == 0) {
			/* sealvaultd is gone; so will this process be (PR_SET_DEATHSIG) */
			fprintf(stderr, "sealvault-enclave: sealvaultd closed the admin link\n");
			a->fd = -1;
			break;
		}
		if (r != 0)
			die("malformed frame from sealvaultd", r);
		if (!adminsrv_permitted(f.type) || (f.type == SV_MSG_ADMIN_STATUS && f.len != 0) ||
		    (f.type == SV_MSG_ADMIN_DELETE && adminmsg_delete_check(f.payload, f.len) != 0))
			die("a frame that is not a well-formed admin request", SV_ERR_PROTOCOL);
		if (f.type == SV_MSG_ADMIN_STATUS)
			status(a);
		else
			ret = delete (a, &f);
		send_reply(a, f.req_id);
		sodium_memzero(a->rbuf, SV_FRAME_HDR_LEN + f.len);
	}
	return ret;
}
