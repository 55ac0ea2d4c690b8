#include "common/drain.h"

#include "common/err.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int drain_request_encode(uint8_t out[static DRAIN_REQUEST_LEN], unsigned timeout_s)
{
	if (timeout_s < 1 || timeout_s > DRAIN_TIMEOUT_MAX_S)
		return SV_ERR_RANGE;
	put32(out, timeout_s);
	return SV_OK;
}

int drain_request_decode(const uint8_t *p, size_t n, unsigned *timeout_s)
{
	if (p == NULL || n != DRAIN_REQUEST_LEN)
		return SV_ERR_INVALID;
	uint32_t t = get32(p);
	if (t < 1 || t > DRAIN_TIMEOUT_MAX_S)
		return SV_ERR_RANGE;
	*timeout_s = (unsigned)t;
	return SV_OK;
}

static int report_check(const struct drain_report *r)
{
	if ((r->phase != DRAIN_BEGUN && r->phase != DRAIN_OVER) || r->last_guesses > r->pending)
		return SV_ERR_RANGE;
	return SV_OK;
}

int drain_report_encode(uint8_t out[static DRAIN_REPORT_LEN], const struct drain_report *r)
{
	int err = report_check(r);
	if (err != 0)
		return err;
	out[0] = r->phase;
	put32(out + 1, r->pending);
	put32(out + 5, r->last_guesses);
	return SV_OK;
}

int drain_report_decode(const uint8_t *p, size_t n, struct drain_report *r)
{
	if (p == NULL || n != DRAIN_REPORT_LEN)
		return SV_ERR_INVALID;
	struct drain_report d = {
	    .phase = p[0], .pending = get32(p + 1), .last_guesses = get32(p + 5)};
	int err = report_check(&d);
	if (err != 0)
		return err;
	*r = d;
	return SV_OK;
}
