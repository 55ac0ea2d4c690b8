#include "common/adminmsg.h"

#include <string.h>

#include "common/err.h"

static int check(const struct adminmsg_status *s, size_t dir_len)
{
	if (dir_len > ADMINMSG_DIR_MAX)
		return SV_ERR_RANGE;
	if ((s->active_slot != 'a' && s->active_slot != 'b') || s->power_cut > 1 ||
	    s->roll_forward > 1)
		return SV_ERR_INVALID;
	return SV_OK;
}

int adminmsg_status_encode(const struct adminmsg_status *s, struct sv_buf *b)
{
	size_t dl = strnlen(s->state_dir, sizeof(s->state_dir));
	size_t start = b->len;
	int r = check(s, dl);
	if (r != 0)
		return r;
	const uint32_t u32[] = {s->nv_index, s->pcr_mask, s->seal, s->orderly_mask,
	                        s->unclean_index};
	const uint64_t u64[] = {
	    s->init_time,        s->durable,    s->unclean_boots, s->unclean_year,
	    s->unclean_year_all, s->counter,    s->journal_head,  s->snapshot_counter,
	    s->journal_bytes,    s->tail_bytes, s->users,         s->destroyed,
	    s->nv_writes};
	_Static_assert(sizeof(u32) / 4 == 5 && sizeof(u64) / 8 == 13, "ADMINMSG_STATUS_FIXED");
	r = sv_buf_put_str16(b, s->state_dir, dl);
	if (r == 0)
		r = sv_buf_put(b, s->server_pk, ADMINMSG_PK_LEN);
	for (size_t i = 0; r == 0 && i < 5; i++)
		r = sv_buf_put_u32(b, u32[i]);
	for (size_t i = 0; r == 0 && i < 13; i++)
		r = sv_buf_put_u64(b, u64[i]);
	if (r == 0)
		r = sv_buf_put_u8(b, (uint8_t)s->active_slot);
	if (r == 0)
		r = sv_buf_put_u8(b, s->power_cut);
	if (r == 0)
		r = sv_buf_put_u8(b, s->roll_forward);
	if (r != 0)
		b->len = start;
	return r;
}

int adminmsg_status_decode(const uint8_t *p, size_t n, struct adminmsg_status *s)
{
	static struct adminmsg_status d; /* 4 KiB: not on the stack */
	struct sv_buf b;
	const uint8_t *dir;
	size_t dl = 0;
	uint8_t slot = 0;
	uint32_t *u32[] = {&d.nv_index, &d.pcr_mask, &d.seal, &d.orderly_mask, &d.unclean_index};
	uint64_t *u64[] = {
	    &d.init_time,        &d.durable,    &d.unclean_boots, &d.unclean_year,
	    &d.unclean_year_all, &d.counter,    &d.journal_head,  &d.snapshot_counter,
	    &d.journal_bytes,    &d.tail_bytes, &d.users,         &d.destroyed,
	    &d.nv_writes};
	if (p == NULL || n < ADMINMSG_STATUS_FIXED)
		return SV_ERR_INVALID;
	memset(&d, 0, sizeof(d));
	sv_buf_from(&b, p, n);
	int r = sv_buf_get_str16(&b, ADMINMSG_DIR_MAX, &dir, &dl);
	if (r == 0 && memchr(dir, '\0', dl) != NULL)
		r = SV_ERR_INVALID;
	if (r == 0) {
		memcpy(d.state_dir, dir, dl);
		r = sv_buf_get(&b, d.server_pk, ADMINMSG_PK_LEN);
	}
	for (size_t i = 0; r == 0 && i < 5; i++)
		r = sv_buf_get_u32(&b, u32[i]);
	for (size_t i = 0; r == 0 && i < 13; i++)
		r = sv_buf_get_u64(&b, u64[i]);
	if (r == 0)
		r = sv_buf_get_u8(&b, &slot);
	if (r == 0)
		r = sv_buf_get_u8(&b, &d.power_cut);
	if (r == 0)
		r = sv_buf_get_u8(&b, &d.roll_forward);
	if (r == 0)
		r = sv_buf_expect_end(&b);
	d.active_slot = (char)slot;
	if (r == 0)
		r = check(&d, dl);
	if (r != 0)
		return SV_ERR_INVALID;
	*s = d;
	return SV_OK;
}

int adminmsg_delete_check(const uint8_t *p, size_t n)
{
	return p != NULL && n >= 1 && n <= ADMINMSG_ID_MAX ? SV_OK : SV_ERR_RANGE;
}

int adminmsg_reply_encode(struct sv_buf *b, enum adminmsg_code code, const void *body, size_t n)
{
	if ((unsigned)code > ADMINMSG_CODE_MAX)
		return SV_ERR_INVALID;
	if (code != ADMINMSG_OK && (n == 0 || memchr(body, '\0', n) != NULL))
		return SV_ERR_INVALID;
	if (code != ADMINMSG_OK && n > ADMINMSG_TEXT_MAX)
		n = ADMINMSG_TEXT_MAX;
	sv_buf_reset(b);
	int r = sv_buf_put_u8(b, (uint8_t)code);
	if (r == 0 && n > 0)
		r = sv_buf_put(b, body, n);
	return r;
}

int adminmsg_reply_decode(const uint8_t *p, size_t n, enum adminmsg_code *code,
                          const uint8_t **body, size_t *body_len)
{
	if (p == NULL || n < 1 || p[0] > ADMINMSG_CODE_MAX)
		return SV_ERR_INVALID;
	if (p[0] != ADMINMSG_OK &&
	    (n < 2 || n - 1 > ADMINMSG_TEXT_MAX || memchr(p + 1, '\0', n - 1) != NULL))
		return SV_ERR_INVALID;
	*code = (enum adminmsg_code)p[0];
	*body = p + 1;
	*body_len = n - 1;
	return SV_OK;
}
