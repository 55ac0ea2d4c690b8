#include "common/msg.h"

#include <stddef.h>

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
