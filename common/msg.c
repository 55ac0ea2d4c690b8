#include "common/msg.h"

#include <stddef.h>
#include <string.h>

#include "common/err.h"

/* One entry per row of SV_MSG_TABLE, for the lookups below. */
static const struct row {
	uint16_t type;
	unsigned flags;
	const char *path, *endpoint;
} rows[] = {
#define ROW_ROUTE(name, num, method, path, ep, handler, flags)                                     \
	{SV_MSG_##name, MSG_F_REQUEST | (flags), path, ep},
#define ROW_FRAME(name, num, flags) {SV_MSG_##name, (flags), NULL, NULL},
    SV_MSG_TABLE(ROW_ROUTE, ROW_FRAME)
#undef ROW_ROUTE
#undef ROW_FRAME
};

static const struct row *row_of(uint16_t type)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (rows[i].type == type)
			return &rows[i];
	return NULL;
}

unsigned msg_flags(uint16_t type)
{
	const struct row *r = row_of(type);
	return r != NULL ? r->flags : 0;
}

const char *msg_path(uint16_t type)
{
	const struct row *r = row_of(type);
	return r != NULL ? r->path : NULL;
}

const char *msg_endpoint(uint16_t type)
{
	const struct row *r = row_of(type);
	return r != NULL ? r->endpoint : NULL;
}

int msg_token_split(const uint8_t *payload, size_t len, const uint8_t **tok, size_t *tok_len,
                    const uint8_t **body, size_t *body_len)
{
	if (len < 2 || payload == NULL)
		return SV_ERR_INVALID;
	size_t n = ((size_t)payload[0] << 8) | payload[1];
	if (n > MSG_TOKEN_MAX || n > len - 2)
		return SV_ERR_INVALID;
	*tok = payload + 2;
	*tok_len = n;
	*body = payload + 2 + n;
	*body_len = len - 2 - n;
	return SV_OK;
}

void msg_token_prefix(uint8_t out[static 2], size_t tok_len)
{
	out[0] = (uint8_t)(tok_len >> 8);
	out[1] = (uint8_t)tok_len;
}

int msg_reply(struct sv_buf *reply, uint8_t status, const void *body, size_t len)
{
	sv_buf_reset(reply);
	int err = sv_buf_put_u8(reply, status);
	if (err == SV_OK && len > 0)
		err = sv_buf_put(reply, body, len);
	return err;
}

int msg_reply_text(struct sv_buf *reply, uint8_t status, const char *text)
{
	return msg_reply(reply, status, text, strlen(text));
}
