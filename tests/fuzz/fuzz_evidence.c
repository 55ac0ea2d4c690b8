/*
 * libFuzzer target for the evidence JSON decoder (client/evidence.c, client/jfield.c): any
 * input decodes or is refused, with no leak (LeakSanitizer) and nothing read outside it. The
 * input is tried raw and spliced into a valid evidence document built at start-up (at an offset
 * the first two bytes choose), so short runs exercise every member's decoder.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/evidence.h"
#include "common/err.h"

static const char valid[] =
    "{\"version\":1,\"nonce\":\"0011223344556677\",\"ek_public\":\"AAEC\",\"ek_certificate\":"
    "\"MIIB\",\"ak_public\":\"AAEC\",\"quote\":{\"attest\":\"/1RDRw==\",\"signature\":"
    "\"ABgACw==\",\"pcrs\":{\"0\":\""
    "0000000000000000000000000000000000000000000000000000000000000000"
    "\",\"10\":\""
    "1111111111111111111111111111111111111111111111111111111111111111"
    "\"}},"
    "\"identity\":{\"public\":\"AAEC\",\"certify_attest\":\"/1RDRw==\",\"certify_signature\":"
    "\"ABgACw==\",\"policy_key\":\"AAEC\",\"boot_pcrs\":[0,1,2,3,4,5,6,7],\"approved_policy\":"
    "\""
    "2222222222222222222222222222222222222222222222222222222222222222"
    "\","
    "\"approved_pcrs\":{\"7\":\""
    "3333333333333333333333333333333333333333333333333333333333333333"
    "\"},\"policy_signature\":\"ABgACw==\"},\"statement\":{\"body\":\""
    "c2VhbHZhdWx0LXN0bXQtMQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAA\",\"signature\":\"ABgACw==\"},"
    "\"event_log\":\"AAAAAA==\",\"ima_log\":\"MTAK\"}";

static char buf[sizeof(valid) + 4096];

static void one(const char *p, size_t n)
{
	static struct client_evidence ev;
	char why[256];
	int r = client_evidence_decode(&ev, p, n, why, sizeof(why));
	if (r == SV_OK)
		client_evidence_clear(&ev);
	else if (ev.event_log != NULL || ev.ima_log != NULL)
		abort(); /* a refusal leaves nothing allocated */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int checked;
	if (!checked) { /* the seed document itself decodes */
		static struct client_evidence ev;
		char why[256];
		if (client_evidence_decode(&ev, valid, sizeof(valid) - 1, why, sizeof(why)) !=
		    SV_OK) {
			fprintf(stderr, "fuzz_evidence: seed refused: %s\n", why);
			abort();
		}
		client_evidence_clear(&ev);
		checked = 1;
	}
	one((const char *)data, size);
	if (size < 2 || size - 2 > 4096)
		return 0;
	size_t off = ((size_t)data[0] << 8 | data[1]) % (sizeof(valid) - 1);
	size_t n = size - 2, rest = sizeof(valid) - 1 - off;
	size_t keep = (size_t)data[1] % 8; /* replace up to 7 bytes of the document, or insert */
	if (keep > rest)
		keep = rest;
	memcpy(buf, valid, off);
	memcpy(buf + off, data + 2, n);
	memcpy(buf + off + n, valid + off + keep, rest - keep);
	one(buf, off + n + rest - keep);
	return 0;
}
