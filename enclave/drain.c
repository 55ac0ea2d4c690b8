#include "enclave/drain.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/msg.h"

static const char refusal[] = "the vault is shutting down; retry in a few seconds (this login "
                              "was not started and no guess was charged)";

int drain_begin(struct drain *d, const uint8_t *payload, size_t len, uint64_t now_ms)
{
	unsigned timeout_s;
	int err = drain_request_decode(payload, len, &timeout_s);
	if (err != 0)
		return err;
	if (d->on)
		return SV_OK;
	d->on = 1;
	d->deadline_ms = now_ms + (uint64_t)timeout_s * 1000u;
	fprintf(stderr,
	        "sealvault-enclave: stopping: refusing new logins; the pending ones may finish "
	        "within %u s\n",
	        timeout_s);
	return SV_OK;
}

int drain_refuses(const struct drain *d, uint16_t type)
{
	return d->on && (type == SV_MSG_LOGIN_START || type == SV_MSG_REALM_RECOVER2);
}

int drain_refuse(struct drain *d, struct sv_buf *reply)
{
	d->refused++;
	sv_buf_reset(reply);
	int err = sv_buf_put_u8(reply, SV_STATUS_BUSY);
	return err == 0 ? sv_buf_put(reply, refusal, sizeof(refusal) - 1) : err;
}

static uint32_t clamp32(size_t n)
{
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

int drain_due(struct drain *d, uint64_t now_ms, size_t pending, size_t last_guesses,
              uint8_t out[static DRAIN_REPORT_LEN])
{
	struct drain_report r = {.pending = clamp32(pending),
	                         .last_guesses = clamp32(last_guesses)};
	if (!d->on || d->over_sent)
		return 0;
	if (r.last_guesses > r.pending)
		r.last_guesses = r.pending;
	if (!d->begun_sent) {
		d->begun_sent = 1;
		r.phase = DRAIN_BEGUN;
	} else if (pending == 0 || now_ms >= d->deadline_ms) {
		d->over_sent = 1;
		r.phase = DRAIN_OVER;
		if (pending == 0)
			fprintf(stderr, "sealvault-enclave: every pending login has finished\n");
		else
			fprintf(
			    stderr,
			    "sealvault-enclave: the drain timeout passed with %u pending logins "
			    "(%u on a last guess); they end with this process\n",
			    (unsigned)r.pending, (unsigned)r.last_guesses);
	} else {
		return 0;
	}
	return drain_report_encode(out, &r) == 0;
}
