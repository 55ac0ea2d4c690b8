/*
 * Fuzz target for the on-disk decoders of enclave/journal.c: change ops and snapshot entries
 * (the payload decoder runs after the MAC, but must still never over-read), the state header,
 * the journal head, and frames (as found on disk, and sealed from the input so that the open
 * path past the MAC is reached).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "enclave/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct journal_keys keys;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready) {
		uint8_t vk[32] = {1};
		if (sodium_init() < 0)
			abort();
		journal_keys_derive(&keys, vk);
		ready = 1;
	}
	struct sv_buf b;
	struct journal_op op;
	sv_buf_from(&b, data, size);
	while (sv_buf_remaining(&b) > 0) {
		size_t before = b.off;
		if (journal_op_get(&b, &op) != SV_OK) {
			if (b.off != before)
				abort(); /* a failed get must consume nothing */
			break;
		}
		if (op.id_len > JOURNAL_ID_MAX || op.blob_len > JOURNAL_BLOB_MAX)
			abort();
	}

	struct journal_state_hdr h;
	size_t ad = 0;
	if (journal_state_decode(data, size, &h, &ad) == SV_OK && ad > size)
		abort();
	struct journal_head jh;
	(void)journal_head_decode(data, size, &jh);

	uint8_t zero[JOURNAL_MAC_LEN] = {0}, mac[JOURNAL_MAC_LEN], mac2[JOURNAL_MAC_LEN];
	struct journal_frame f;
	size_t flen = 0, plen = 0;
	const uint8_t *plain = NULL;
	uint8_t *copy = malloc(size ? size : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	if (journal_frame_open(&keys, zero, copy, size, &f, &flen, &plain, &plen, mac) == SV_OK &&
	    flen > size)
		abort();
	free(copy);

	/* Seal the input as a frame and open it again: must round-trip exactly. */
	struct sv_buf out;
	struct journal_frame in = {.kind = JOURNAL_KIND_COMMIT,
	                           .scheme = JOURNAL_SCHEME_PLAIN,
	                           .counter = size,
	                           .nv_writes = size + 1,
	                           .count = 1};
	if (sv_buf_init(&out, size + JOURNAL_FRAME_OVERHEAD) != SV_OK)
		abort();
	if (journal_frame_seal(&keys, zero, &in, data, size, &out, mac) != SV_OK)
		abort();
	if (journal_frame_open(&keys, zero, out.data, out.len, &f, &flen, &plain, &plen, mac2) !=
	        SV_OK ||
	    flen != out.len || plen != size || (size && memcmp(plain, data, size) != 0) ||
	    memcmp(mac, mac2, sizeof(mac)) != 0 || f.counter != size)
		abort();
	sv_buf_free(&out);
	return 0;
}
