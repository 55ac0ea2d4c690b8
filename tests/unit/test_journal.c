/* Unit tests for enclave/journal.c: frames (seal/open, MAC chain, every truncation and every
 * single-byte flip), change ops and snapshot entries with hostile lengths, journal head and
 * state header decoders (truncation, trailing bytes, reserved bits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "enclave/journal.h"

static struct journal_keys keys;

static int setup(void **state)
{
	uint8_t vk[32];
	if (sodium_init() < 0)
		return -1;
	memset(vk, 0x42, sizeof(vk));
	journal_keys_derive(&keys, vk);
	return 0;
}

static void seal(const uint8_t prev[32], uint64_t counter, const uint8_t *plain, size_t n,
                 struct sv_buf *out, uint8_t mac[32])
{
	struct journal_frame f = {.kind = JOURNAL_KIND_COMMIT,
	                          .scheme = JOURNAL_SCHEME_PLAIN,
	                          .counter = counter,
	                          .nv_writes = counter + 1,
	                          .count = 1};
	assert_int_equal(sv_buf_init(out, 1 << 20), SV_OK);
	assert_int_equal(journal_frame_seal(&keys, prev, &f, plain, n, out, mac), SV_OK);
}

static void test_frame_roundtrip_and_chain(void **state)
{
	uint8_t zero[32] = {0}, mac1[32], mac2[32], got[32];
	const uint8_t msg1[] = "first change", msg2[] = "second change";
	struct sv_buf a, b;
	seal(zero, 7, msg1, sizeof(msg1), &a, mac1);
	seal(mac1, 8, msg2, sizeof(msg2), &b, mac2);
	assert_int_equal(a.len, JOURNAL_FRAME_OVERHEAD + sizeof(msg1));

	struct journal_frame f;
	size_t flen, plen;
	const uint8_t *plain;
	uint8_t *copy = malloc(b.len);
	/* The second frame only opens against the first frame's MAC (the chain). */
	memcpy(copy, b.data, b.len);
	assert_int_equal(
	    journal_frame_open(&keys, zero, copy, b.len, &f, &flen, &plain, &plen, got),
	    SV_ERR_AUTH);
	assert_int_equal(
	    journal_frame_open(&keys, mac2, copy, b.len, &f, &flen, &plain, &plen, got),
	    SV_ERR_AUTH);
	assert_int_equal(
	    journal_frame_open(&keys, mac1, copy, b.len, &f, &flen, &plain, &plen, got), SV_OK);
	assert_int_equal(flen, b.len);
	assert_int_equal(f.counter, 8);
	assert_int_equal(f.nv_writes, 9);
	assert_int_equal(plen, sizeof(msg2));
	assert_memory_equal(plain, msg2, sizeof(msg2));
	assert_memory_equal(got, mac2, 32);
	/* Another vault's keys (another vault key) do not open it. */
	struct journal_keys other;
	uint8_t vk[32];
	memset(vk, 0x43, sizeof(vk));
	journal_keys_derive(&other, vk);
	memcpy(copy, b.data, b.len);
	assert_int_equal(
	    journal_frame_open(&other, mac1, copy, b.len, &f, &flen, &plain, &plen, got),
	    SV_ERR_AUTH);
	free(copy);
	sv_buf_free(&a);
	sv_buf_free(&b);
}

static void test_frame_every_flip_and_truncation(void **state)
{
	uint8_t zero[32] = {0}, mac[32], got[32];
	const uint8_t msg[] = "a change that must not be forged";
	struct sv_buf a;
	seal(zero, 1, msg, sizeof(msg), &a, mac);
	uint8_t *copy = malloc(a.len + 1);
	struct journal_frame f;
	size_t flen, plen;
	const uint8_t *plain;
	for (size_t i = 0; i < a.len; i++) {
		memcpy(copy, a.data, a.len);
		copy[i] ^= 0x01;
		int r = journal_frame_open(&keys, zero, copy, a.len, &f, &flen, &plain, &plen, got);
		assert_true(r == SV_ERR_AUTH || r == SV_ERR_INVALID);
	}
	for (size_t n = 0; n < a.len; n++) {
		memcpy(copy, a.data, a.len);
		assert_int_equal(
		    journal_frame_open(&keys, zero, copy, n, &f, &flen, &plain, &plen, got),
		    SV_ERR_INVALID);
	}
	/* Trailing bytes belong to the next frame: consumed length is exact. */
	memcpy(copy, a.data, a.len);
	copy[a.len] = 0xee;
	assert_int_equal(
	    journal_frame_open(&keys, zero, copy, a.len + 1, &f, &flen, &plain, &plen, got), SV_OK);
	assert_int_equal(flen, a.len);
	free(copy);
	sv_buf_free(&a);
}

static void test_frame_hostile_lengths(void **state)
{
	static const uint32_t lens[] = {0, 1, 15, 0x80000000u, 0xffffffffu};
	uint8_t zero[32] = {0}, mac[32], got[32];
	struct sv_buf a;
	seal(zero, 1, (const uint8_t *)"x", 1, &a, mac);
	struct journal_frame f;
	size_t flen, plen;
	const uint8_t *plain;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t *copy = malloc(a.len);
		memcpy(copy, a.data, a.len);
		copy[28] = (uint8_t)(lens[i] >> 24);
		copy[29] = (uint8_t)(lens[i] >> 16);
		copy[30] = (uint8_t)(lens[i] >> 8);
		copy[31] = (uint8_t)lens[i];
		assert_int_equal(
		    journal_frame_open(&keys, zero, copy, a.len, &f, &flen, &plain, &plen, got),
		    SV_ERR_INVALID);
		free(copy);
	}
	/* Unknown kind and nonzero padding are not frames. */
	uint8_t *copy = malloc(a.len);
	memcpy(copy, a.data, a.len);
	copy[4] = JOURNAL_KIND_SNAPSHOT_DELTA + 1;
	assert_int_equal(
	    journal_frame_open(&keys, zero, copy, a.len, &f, &flen, &plain, &plen, got),
	    SV_ERR_INVALID);
	memcpy(copy, a.data, a.len);
	copy[7] = 1;
	assert_int_equal(
	    journal_frame_open(&keys, zero, copy, a.len, &f, &flen, &plain, &plen, got),
	    SV_ERR_INVALID);
	free(copy);
	struct journal_frame bad = {.kind = JOURNAL_KIND_SNAPSHOT_DELTA + 1};
	assert_int_equal(journal_frame_seal(&keys, zero, &bad, NULL, 0, &a, mac), SV_ERR_INVALID);
	sv_buf_free(&a);
}

static void test_ops_roundtrip(void **state)
{
	uint8_t rec[JOURNAL_RECORD_LEN], blob[JOURNAL_BLOB_MAX];
	memset(rec, 0xaa, sizeof(rec));
	memset(blob, 0xbb, sizeof(blob));
	uint8_t run[JOURNAL_RUN_LEN];
	memset(run, 0xcc, sizeof(run));
	const struct journal_op ops[] = {
	    {.type = JOURNAL_OP_PUT,
	     .id = (const uint8_t *)"alice",
	     .id_len = 5,
	     .limit = 10,
	     .record = rec,
	     .blob = blob,
	     .blob_len = JOURNAL_BLOB_MAX},
	    {.type = JOURNAL_OP_CHARGE, .id = (const uint8_t *)"alice", .id_len = 5, .used = 1},
	    {.type = JOURNAL_OP_RESET, .id = (const uint8_t *)"alice", .id_len = 5},
	    {.type = JOURNAL_OP_DELETE, .id = (const uint8_t *)"alice", .id_len = 5},
	    {.type = JOURNAL_OP_USER,
	     .id = (const uint8_t *)"bob",
	     .id_len = 3,
	     .limit = 3,
	     .used = 3,
	     .destroyed = 1},
	    {.type = JOURNAL_OP_RUN, .run = run},
	    {.type = JOURNAL_OP_USER,
	     .id = (const uint8_t *)"eve",
	     .id_len = 3,
	     .limit = 3,
	     .used = 2,
	     .record = rec,
	     .blob = NULL,
	     .blob_len = 0},
	};
	struct sv_buf b;
	assert_int_equal(sv_buf_init(&b, 1 << 16), SV_OK);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		assert_int_equal(journal_op_put(&b, &ops[i]), SV_OK);
	struct sv_buf r;
	sv_buf_from(&r, b.data, b.len);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct journal_op op;
		assert_int_equal(journal_op_get(&r, &op), SV_OK);
		assert_int_equal(op.type, ops[i].type);
		assert_int_equal(op.id_len, ops[i].id_len);
		assert_memory_equal(op.id, ops[i].id, op.id_len);
		assert_int_equal(op.used, ops[i].used);
		assert_int_equal(op.destroyed, ops[i].destroyed);
		assert_int_equal(op.blob_len, ops[i].blob_len);
		if (ops[i].record != NULL)
			assert_memory_equal(op.record, rec, sizeof(rec));
		if (ops[i].type == JOURNAL_OP_RUN)
			assert_memory_equal(op.run, run, sizeof(run));
		else
			assert_null(op.run);
	}
	assert_int_equal(sv_buf_expect_end(&r), SV_OK);
	/* Every truncation of the whole stream fails cleanly at some op, consuming nothing. */
	for (size_t n = 0; n < b.len; n++) {
		struct sv_buf t;
		struct journal_op op;
		int r2 = SV_OK;
		sv_buf_from(&t, b.data, n);
		while (r2 == SV_OK && sv_buf_remaining(&t) > 0) {
			size_t before = t.off;
			r2 = journal_op_get(&t, &op);
			if (r2 != SV_OK)
				assert_int_equal(t.off, before);
		}
		assert_true(r2 != SV_OK || n == 0 || sv_buf_remaining(&t) == 0);
	}
	sv_buf_free(&b);
}

static void test_ops_hostile(void **state)
{
	uint8_t rec[JOURNAL_RECORD_LEN] = {0}, id[256];
	memset(id, 'i', sizeof(id));
	struct sv_buf b;
	assert_int_equal(sv_buf_init(&b, 1 << 16), SV_OK);
	struct journal_op op = {.type = JOURNAL_OP_RESET, .id = id, .id_len = 0};
	assert_int_equal(journal_op_put(&b, &op), SV_ERR_RANGE);
	op.id_len = 256;
	assert_int_equal(journal_op_put(&b, &op), SV_ERR_RANGE);
	op = (struct journal_op){.type = JOURNAL_OP_PUT,
	                         .id = id,
	                         .id_len = 255,
	                         .limit = 1,
	                         .record = rec,
	                         .blob = rec,
	                         .blob_len = JOURNAL_BLOB_MAX + 1};
	assert_int_equal(journal_op_put(&b, &op), SV_ERR_RANGE);
	op.limit = 0;
	op.blob_len = 1;
	assert_int_equal(journal_op_put(&b, &op), SV_ERR_RANGE);
	op = (struct journal_op){.type = 99, .id = id, .id_len = 1};
	assert_int_equal(journal_op_put(&b, &op), SV_ERR_INVALID);
	op = (struct journal_op){.type = JOURNAL_OP_RUN}; /* a run op without its nonce */
	assert_int_equal(journal_op_put(&b, &op), SV_ERR_INVALID);
	assert_int_equal(b.len, 0);

	static const uint8_t bad[][8] = {
	    {JOURNAL_OP_RESET, 0},              /* empty id */
	    {99, 1, 'a'},                       /* unknown type */
	    {0, 1, 'a'},                        /* type 0 */
	    {JOURNAL_OP_CHARGE, 1, 'a', 0},     /* charge to used 0 */
	    {JOURNAL_OP_PUT, 1, 'a', 0},        /* limit 0 */
	    {JOURNAL_OP_USER, 1, 'a', 3, 4, 0}, /* used > limit */
	    {JOURNAL_OP_USER, 1, 'a', 3, 3, 0}, /* at limit but not destroyed */
	    {JOURNAL_OP_USER, 1, 'a', 3, 1, 2}, /* destroyed flag 2 */
	    {JOURNAL_OP_RESET, 0xff, 'a'},      /* id longer than the input */
	    {JOURNAL_OP_RUN, 1, 2, 3, 4, 5, 6}, /* run nonce cut short (32 bytes needed) */
	    {JOURNAL_OP_RUN},                   /* run op without a nonce */
	};
	static const size_t bad_len[] = {2, 3, 3, 4, 4, 6, 6, 6, 3, 7, 1};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sv_buf r;
		struct journal_op o;
		sv_buf_from(&r, bad[i], bad_len[i]);
		assert_int_equal(journal_op_get(&r, &o), SV_ERR_INVALID);
		assert_int_equal(r.off, 0);
	}
	/* blob length 0xffff: over the bound */
	uint8_t big[3 + 1 + JOURNAL_RECORD_LEN + 2];
	memset(big, 0, sizeof(big));
	big[0] = JOURNAL_OP_PUT;
	big[1] = 1;
	big[2] = 'a';
	big[3] = 5;
	big[sizeof(big) - 2] = 0xff;
	big[sizeof(big) - 1] = 0xff;
	struct sv_buf r;
	struct journal_op o;
	sv_buf_from(&r, big, sizeof(big));
	assert_int_equal(journal_op_get(&r, &o), SV_ERR_INVALID);
	sv_buf_free(&b);
}

static void test_head(void **state)
{
	struct journal_head h = {.base_counter = 0x0102030405060708ull}, g;
	uint8_t enc[JOURNAL_HEAD_LEN + 1];
	memset(h.base_mac, 0x5a, sizeof(h.base_mac));
	journal_head_encode(&h, enc);
	assert_int_equal(journal_head_decode(enc, JOURNAL_HEAD_LEN, &g), SV_OK);
	assert_int_equal(g.base_counter, h.base_counter);
	assert_memory_equal(g.base_mac, h.base_mac, 32);
	assert_int_equal(journal_head_decode(enc, JOURNAL_HEAD_LEN - 1, &g), SV_ERR_INVALID);
	assert_int_equal(journal_head_decode(enc, JOURNAL_HEAD_LEN + 1, &g), SV_ERR_INVALID);
	assert_int_equal(journal_head_decode(enc, 0, &g), SV_ERR_INVALID);
	enc[0] ^= 1;
	assert_int_equal(journal_head_decode(enc, JOURNAL_HEAD_LEN, &g), SV_ERR_INVALID);
	enc[0] ^= 1;
	enc[7] = 2; /* version */
	assert_int_equal(journal_head_decode(enc, JOURNAL_HEAD_LEN, &g), SV_ERR_INVALID);
}

static void test_state_header(void **state)
{
	struct journal_state_hdr h, g;
	memset(&h, 0, sizeof(h));
	h.scheme = JOURNAL_SCHEME_PLAIN;
	h.nv_index = 0x01005356;
	h.nv_name_len = 34;
	memset(h.nv_name, 1, 34);
	h.primary_name_len = 34;
	memset(h.primary_name, 2, 34);
	h.sealed_len = 300;
	memset(h.sealed, 3, 300);
	h.init_counter = 77;
	h.pcr_mask = 0x800081; /* PCRs 0, 7, 23 */
	h.init_time = 1764000000;
	memset(h.nonce, 4, sizeof(h.nonce));
	memset(h.secrets_ct, 5, sizeof(h.secrets_ct));
	struct sv_buf b;
	size_t ad = 0, ad2 = 0;
	assert_int_equal(sv_buf_init(&b, 4096), SV_OK);
	assert_int_equal(journal_state_encode(&h, &b, &ad), SV_OK);
	assert_int_equal(ad, b.len - JOURNAL_NONCE_LEN - JOURNAL_SECRETS_CT_LEN);
	assert_int_equal(journal_state_decode(b.data, b.len, &g, &ad2), SV_OK);
	assert_int_equal(ad2, ad);
	assert_int_equal(g.version, JOURNAL_STATE_VERSION);
	assert_int_equal(g.nv_index, h.nv_index);
	assert_int_equal(g.sealed_len, 300);
	assert_memory_equal(g.sealed, h.sealed, 300);
	assert_int_equal(g.init_counter, 77);
	assert_int_equal(g.pcr_mask, 0x800081);
	assert_int_equal(g.init_time, 1764000000);
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(journal_state_decode(b.data, n, &g, &ad2), SV_ERR_INVALID);
	uint8_t *longer = malloc(b.len + 1);
	memcpy(longer, b.data, b.len);
	longer[b.len] = 0;
	assert_int_equal(journal_state_decode(longer, b.len + 1, &g, &ad2), SV_ERR_INVALID);
	assert_int_equal(g.seal, JOURNAL_SEAL_PCR);
	memcpy(longer, b.data, b.len);
	longer[ad - 5] = 1; /* reserved byte */
	assert_int_equal(journal_state_decode(longer, b.len, &g, &ad2), SV_ERR_INVALID);
	memcpy(longer, b.data, b.len);
	longer[ad - 1] = JOURNAL_SEAL_AUTHORIZED; /* the last 4 bytes: the seal kind */
	assert_int_equal(journal_state_decode(longer, b.len, &g, &ad2), SV_OK);
	assert_int_equal(g.seal, JOURNAL_SEAL_AUTHORIZED);
	longer[5] = JOURNAL_STATE_VERSION_OLD; /* sealvault 0.2 never sealed so */
	assert_int_equal(journal_state_decode(longer, b.len, &g, &ad2), SV_ERR_INVALID);
	longer[5] = JOURNAL_STATE_VERSION;
	for (size_t k = 1; k <= 4; k++) { /* unknown kinds: 2, 0x100, 0x10000, 0x1000000 */
		memcpy(longer, b.data, b.len);
		longer[ad - k] = k == 1 ? 2 : 1;
		assert_int_equal(journal_state_decode(longer, b.len, &g, &ad2), SV_ERR_INVALID);
	}
	memcpy(longer, b.data, b.len);
	longer[6] = 2; /* unknown counter scheme */
	assert_int_equal(journal_state_decode(longer, b.len, &g, &ad2), SV_ERR_INVALID);
	memcpy(longer, b.data, b.len);
	longer[5] = JOURNAL_STATE_VERSION_OLD; /* sealvault 0.2: read for store_upgrade */
	assert_int_equal(journal_state_decode(longer, b.len, &g, &ad2), SV_OK);
	assert_int_equal(g.version, JOURNAL_STATE_VERSION_OLD);
	longer[5] = JOURNAL_STATE_VERSION + 1; /* a future version */
	assert_int_equal(journal_state_decode(longer, b.len, &g, &ad2), SV_ERR_INVALID);
	memcpy(longer, b.data, b.len);
	longer[ad - 16 - 8 - 4] = 0x01; /* pcr_mask: PCR 24 does not exist */
	assert_int_equal(journal_state_decode(longer, b.len, &g, &ad2), SV_ERR_INVALID);
	free(longer);
	h.pcr_mask = 0x1000000;
	assert_int_equal(journal_state_encode(&h, &b, &ad), SV_ERR_RANGE);
	h.pcr_mask = 0;
	h.seal = JOURNAL_SEAL_AUTHORIZED; /* a signed PCR policy without PCRs */
	assert_int_equal(journal_state_encode(&h, &b, &ad), SV_ERR_RANGE);
	h.seal = 2;
	h.pcr_mask = 1;
	assert_int_equal(journal_state_encode(&h, &b, &ad), SV_ERR_RANGE);
	h.seal = JOURNAL_SEAL_PCR;
	h.pcr_mask = 0;
	h.sealed_len = JOURNAL_SEALED_MAX + 1;
	assert_int_equal(journal_state_encode(&h, &b, &ad), SV_ERR_RANGE);
	sv_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame_roundtrip_and_chain),
	    cmocka_unit_test(test_frame_every_flip_and_truncation),
	    cmocka_unit_test(test_frame_hostile_lengths),
	    cmocka_unit_test(test_ops_roundtrip),
	    cmocka_unit_test(test_ops_hostile),
	    cmocka_unit_test(test_head),
	    cmocka_unit_test(test_state_header),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
