/*
 * Journal, snapshot and state-header formats (see journal.h). Pure functions over buffers: no
 * I/O here, so every decoder can be driven by unit tests and fuzzers with hostile input.
 */
#include "enclave/journal.h"

#include <string.h>

#include <sodium.h>

#include "common/err.h"

#define FRAME_MAGIC    0x53564631u /* "SVF1" */
#define HEAD_MAGIC     0x53564a31u /* "SVJ1" */
#define STATE_MAGIC    0x53564831u /* "SVH1" */
#define HEAD_VERSION   1
#define STATE_RESERVED 4 /* zero bytes between the hybrid fields and the seal field */

static const char kdf_ctx[crypto_kdf_CONTEXTBYTES] = {'s', 'v', 'j', 'o', 'u', 'r', 'n', '1'};

void journal_keys_derive(struct journal_keys *k, const uint8_t vault_key[32])
{
	crypto_kdf_derive_from_key(k->mac, sizeof(k->mac), 1, kdf_ctx, vault_key);
	crypto_kdf_derive_from_key(k->enc, sizeof(k->enc), 2, kdf_ctx, vault_key);
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void frame_hdr(uint8_t h[JOURNAL_FRAME_HDR_LEN], const struct journal_frame *f,
                      uint32_t ct_len)
{
	be32(h, FRAME_MAGIC);
	h[4] = f->kind;
	h[5] = f->scheme;
	h[6] = h[7] = 0;
	be64(h + 8, f->counter);
	be64(h + 16, f->nv_writes);
	be32(h + 24, f->count);
	be32(h + 28, ct_len);
}

static void frame_mac(const struct journal_keys *k, const uint8_t prev[JOURNAL_MAC_LEN],
                      const uint8_t *frame, size_t n, uint8_t mac[JOURNAL_MAC_LEN])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, k->mac, sizeof(k->mac), JOURNAL_MAC_LEN);
	crypto_generichash_update(&st, prev, JOURNAL_MAC_LEN);
	crypto_generichash_update(&st, frame, n);
	crypto_generichash_final(&st, mac, JOURNAL_MAC_LEN);
}

int journal_frame_seal(const struct journal_keys *k, const uint8_t prev[JOURNAL_MAC_LEN],
                       const struct journal_frame *f, const uint8_t *plain, size_t plain_len,
                       struct sv_buf *out, uint8_t mac[JOURNAL_MAC_LEN])
{
	if (f->kind < JOURNAL_KIND_COMMIT || f->kind > JOURNAL_KIND_SNAPSHOT_DELTA)
		return SV_ERR_INVALID;
	if (plain_len > JOURNAL_FRAME_MAX - JOURNAL_TAG_LEN)
		return SV_ERR_RANGE;
	size_t start = out->len, ct_len = plain_len + JOURNAL_TAG_LEN;
	uint8_t *p = NULL;
	int r = sv_buf_reserve(out, JOURNAL_FRAME_OVERHEAD + plain_len, &p);
	if (r != SV_OK)
		return r;
	uint8_t *hdr = p, *nonce = p + JOURNAL_FRAME_HDR_LEN, *ct = nonce + JOURNAL_NONCE_LEN;
	frame_hdr(hdr, f, (uint32_t)ct_len);
	randombytes_buf(nonce, JOURNAL_NONCE_LEN);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen, plain, plain_len, hdr,
	                                           JOURNAL_FRAME_HDR_LEN, NULL, nonce, k->enc);
	if (clen != ct_len) {
		out->len = start;
		return SV_ERR_CRYPTO;
	}
	frame_mac(k, prev, p, JOURNAL_FRAME_HDR_LEN + JOURNAL_NONCE_LEN + ct_len, mac);
	memcpy(ct + ct_len, mac, JOURNAL_MAC_LEN);
	return SV_OK;
}

int journal_frame_open(const struct journal_keys *k, const uint8_t prev[JOURNAL_MAC_LEN],
                       uint8_t *data, size_t len, struct journal_frame *f, size_t *frame_len,
                       const uint8_t **plain, size_t *plain_len, uint8_t mac[JOURNAL_MAC_LEN])
{
	if (len < JOURNAL_FRAME_OVERHEAD || get32(data) != FRAME_MAGIC)
		return SV_ERR_INVALID;
	uint8_t kind = data[4];
	uint32_t ct_len = get32(data + 28);
	if (kind < JOURNAL_KIND_COMMIT || kind > JOURNAL_KIND_SNAPSHOT_DELTA || data[6] != 0 ||
	    data[7] != 0 || ct_len < JOURNAL_TAG_LEN || ct_len > JOURNAL_FRAME_MAX)
		return SV_ERR_INVALID;
	size_t body = JOURNAL_FRAME_HDR_LEN + JOURNAL_NONCE_LEN + (size_t)ct_len;
	if (len - JOURNAL_MAC_LEN < body)
		return SV_ERR_INVALID;
	uint8_t want[JOURNAL_MAC_LEN];
	frame_mac(k, prev, data, body, want);
	if (sodium_memcmp(want, data + body, JOURNAL_MAC_LEN) != 0)
		return SV_ERR_AUTH;
	uint8_t *nonce = data + JOURNAL_FRAME_HDR_LEN, *ct = nonce + JOURNAL_NONCE_LEN;
	unsigned long long plen = 0;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(ct, &plen, NULL, ct, ct_len, data,
	                                               JOURNAL_FRAME_HDR_LEN, nonce, k->enc) != 0)
		return SV_ERR_AUTH;
	f->kind = kind;
	f->scheme = data[5];
	f->counter = get64(data + 8);
	f->nv_writes = get64(data + 16);
	f->count = get32(data + 24);
	memcpy(mac, want, JOURNAL_MAC_LEN);
	*frame_len = body + JOURNAL_MAC_LEN;
	*plain = ct;
	*plain_len = (size_t)plen;
	return SV_OK;
}

static int put_id(struct sv_buf *b, const struct journal_op *op)
{
	if (op->id_len == 0 || op->id_len > JOURNAL_ID_MAX)
		return SV_ERR_RANGE;
	int r = sv_buf_put_u8(b, (uint8_t)op->id_len);
	return r != SV_OK ? r : sv_buf_put(b, op->id, op->id_len);
}

static int put_record(struct sv_buf *b, const struct journal_op *op)
{
	int r;
	if (op->blob_len > JOURNAL_BLOB_MAX)
		return SV_ERR_RANGE;
	if ((r = sv_buf_put(b, op->record, JOURNAL_RECORD_LEN)) != SV_OK)
		return r;
	return sv_buf_put_str16(b, op->blob, op->blob_len);
}

int journal_op_put(struct sv_buf *b, const struct journal_op *op)
{
	size_t start = b->len;
	int r = sv_buf_put_u8(b, op->type);
	if (r == SV_OK && op->type == JOURNAL_OP_NOOP)
		return SV_OK; /* no id, no fields */
	if (r == SV_OK && op->type == JOURNAL_OP_RUN) {
		if (op->run == NULL || (r = sv_buf_put(b, op->run, JOURNAL_RUN_LEN)) != SV_OK)
			b->len = start;
		return op->run == NULL ? SV_ERR_INVALID : r;
	}
	if (r == SV_OK && op->type == JOURNAL_OP_PENALTY) {
		if (op->charge > 1)
			r = SV_ERR_RANGE;
		else if ((r = sv_buf_put_u64(b, op->time)) == SV_OK &&
		         (r = sv_buf_put_u64(b, op->unclean)) == SV_OK)
			r = sv_buf_put_u8(b, op->charge);
		goto out;
	}
	if (r == SV_OK && op->type == JOURNAL_OP_ACK) {
		r = sv_buf_put_u64(b, op->time);
		goto out;
	}
	if (r == SV_OK)
		r = put_id(b, op);
	if (r != SV_OK)
		goto out;
	switch (op->type) {
	case JOURNAL_OP_PUT:
		if (op->limit == 0) {
			r = SV_ERR_RANGE;
			break;
		}
		r = sv_buf_put_u8(b, op->limit);
		if (r == SV_OK)
			r = put_record(b, op);
		break;
	case JOURNAL_OP_CHARGE: r = sv_buf_put_u8(b, op->used); break;
	case JOURNAL_OP_RESET:
	case JOURNAL_OP_DELETE: break;
	case JOURNAL_OP_USER:
		if (op->limit == 0 || op->used > op->limit || op->destroyed > 1) {
			r = SV_ERR_RANGE;
			break;
		}
		if ((r = sv_buf_put_u8(b, op->limit)) != SV_OK ||
		    (r = sv_buf_put_u8(b, op->used)) != SV_OK ||
		    (r = sv_buf_put_u8(b, op->destroyed)) != SV_OK)
			break;
		if (!op->destroyed)
			r = put_record(b, op);
		break;
	default: r = SV_ERR_INVALID;
	}
out:
	if (r != SV_OK)
		b->len = start;
	return r;
}

static int get_record(struct sv_buf *b, struct journal_op *op)
{
	int r = sv_buf_get_ref(b, JOURNAL_RECORD_LEN, &op->record);
	if (r != SV_OK)
		return r;
	return sv_buf_get_str16(b, JOURNAL_BLOB_MAX, &op->blob, &op->blob_len);
}

int journal_op_get(struct sv_buf *b, struct journal_op *op)
{
	size_t start = b->off;
	uint8_t id_len = 0;
	int r;
	memset(op, 0, sizeof(*op));
	if ((r = sv_buf_get_u8(b, &op->type)) == SV_OK && op->type == JOURNAL_OP_NOOP)
		return SV_OK; /* no id, no fields */
	if (r == SV_OK && op->type == JOURNAL_OP_RUN) {
		if ((r = sv_buf_get_ref(b, JOURNAL_RUN_LEN, &op->run)) == SV_OK)
			return SV_OK;
		goto out;
	}
	if (r == SV_OK && op->type == JOURNAL_OP_PENALTY) {
		if ((r = sv_buf_get_u64(b, &op->time)) == SV_OK &&
		    (r = sv_buf_get_u64(b, &op->unclean)) == SV_OK &&
		    (r = sv_buf_get_u8(b, &op->charge)) == SV_OK && op->charge > 1)
			r = SV_ERR_INVALID;
		goto out;
	}
	if (r == SV_OK && op->type == JOURNAL_OP_ACK) {
		r = sv_buf_get_u64(b, &op->time);
		goto out;
	}
	if (r != SV_OK || (r = sv_buf_get_u8(b, &id_len)) != SV_OK)
		goto out;
	if (id_len == 0) {
		r = SV_ERR_INVALID;
		goto out;
	}
	op->id_len = id_len;
	if ((r = sv_buf_get_ref(b, id_len, &op->id)) != SV_OK)
		goto out;
	switch (op->type) {
	case JOURNAL_OP_PUT:
		if ((r = sv_buf_get_u8(b, &op->limit)) != SV_OK)
			break;
		if (op->limit == 0) {
			r = SV_ERR_INVALID;
			break;
		}
		r = get_record(b, op);
		break;
	case JOURNAL_OP_CHARGE:
		r = sv_buf_get_u8(b, &op->used);
		if (r == SV_OK && op->used == 0)
			r = SV_ERR_INVALID;
		break;
	case JOURNAL_OP_RESET:
	case JOURNAL_OP_DELETE: break;
	case JOURNAL_OP_USER:
		if ((r = sv_buf_get_u8(b, &op->limit)) != SV_OK ||
		    (r = sv_buf_get_u8(b, &op->used)) != SV_OK ||
		    (r = sv_buf_get_u8(b, &op->destroyed)) != SV_OK)
			break;
		if (op->limit == 0 || op->used > op->limit || op->destroyed > 1 ||
		    (op->destroyed == 0 && op->used == op->limit)) {
			r = SV_ERR_INVALID;
			break;
		}
		if (!op->destroyed)
			r = get_record(b, op);
		break;
	default: r = SV_ERR_INVALID;
	}
out:
	if (r != SV_OK) {
		b->off = start;
		memset(op, 0, sizeof(*op));
		if (r == SV_ERR_RANGE)
			r = SV_ERR_INVALID;
	}
	return r;
}

void journal_head_encode(const struct journal_head *h, uint8_t out[JOURNAL_HEAD_LEN])
{
	be32(out, HEAD_MAGIC);
	be32(out + 4, HEAD_VERSION);
	be64(out + 8, h->base_counter);
	memcpy(out + 16, h->base_mac, JOURNAL_MAC_LEN);
}

int journal_head_decode(const uint8_t *in, size_t len, struct journal_head *h)
{
	if (len != JOURNAL_HEAD_LEN || get32(in) != HEAD_MAGIC || get32(in + 4) != HEAD_VERSION)
		return SV_ERR_INVALID;
	h->base_counter = get64(in + 8);
	memcpy(h->base_mac, in + 16, JOURNAL_MAC_LEN);
	return SV_OK;
}

/* A signed PCR policy needs PCRs; without PCRs the key has no policy at all. */
static int seal_valid(const struct journal_state_hdr *h)
{
	return h->seal == JOURNAL_SEAL_PCR ||
	       (h->seal == JOURNAL_SEAL_AUTHORIZED && h->pcr_mask != 0);
}

int journal_state_encode(const struct journal_state_hdr *h, struct sv_buf *out, size_t *ad_len)
{
	static const uint8_t zero[STATE_RESERVED];
	size_t start = out->len;
	int r;
	if (h->nv_name_len > JOURNAL_NAME_MAX || h->primary_name_len > JOURNAL_NAME_MAX ||
	    h->sealed_len > JOURNAL_SEALED_MAX || (h->pcr_mask & ~JOURNAL_PCR_MASK_ALL) != 0 ||
	    !seal_valid(h))
		return SV_ERR_RANGE;
	if ((r = sv_buf_put_u32(out, STATE_MAGIC)) != SV_OK ||
	    (r = sv_buf_put_u16(out, JOURNAL_STATE_VERSION)) != SV_OK ||
	    (r = sv_buf_put_u8(out, h->scheme)) != SV_OK || (r = sv_buf_put_u8(out, 0)) != SV_OK ||
	    (r = sv_buf_put_u32(out, h->nv_index)) != SV_OK ||
	    (r = sv_buf_put_str16(out, h->nv_name, h->nv_name_len)) != SV_OK ||
	    (r = sv_buf_put_str16(out, h->primary_name, h->primary_name_len)) != SV_OK ||
	    (r = sv_buf_put_str16(out, h->sealed, h->sealed_len)) != SV_OK ||
	    (r = sv_buf_put_u64(out, h->init_counter)) != SV_OK ||
	    (r = sv_buf_put_u32(out, h->pcr_mask)) != SV_OK ||
	    (r = sv_buf_put_u64(out, h->init_time)) != SV_OK ||
	    (r = sv_buf_put_u32(out, h->orderly_mask)) != SV_OK ||
	    (r = sv_buf_put_u32(out, h->unclean_index)) != SV_OK ||
	    (r = sv_buf_put(out, zero, sizeof(zero))) != SV_OK ||
	    (r = sv_buf_put_u32(out, h->seal)) != SV_OK)
		goto out;
	*ad_len = out->len - start;
	if ((r = sv_buf_put(out, h->nonce, JOURNAL_NONCE_LEN)) != SV_OK ||
	    (r = sv_buf_put(out, h->secrets_ct, JOURNAL_SECRETS_CT_LEN)) != SV_OK)
		goto out;
out:
	if (r != SV_OK)
		out->len = start;
	return r;
}

static int get_str(struct sv_buf *b, uint8_t *dst, size_t max, size_t *n)
{
	const uint8_t *p = NULL;
	int r = sv_buf_get_str16(b, max, &p, n);
	if (r == SV_OK)
		memcpy(dst, p, *n);
	return r;
}

/* plain: no orderly fields; hybrid (state version 2 only): a mask of k >= 1 low bits and an
 * unclean-boots index. */
static int scheme_ok(const struct journal_state_hdr *h)
{
	if (h->scheme == JOURNAL_SCHEME_PLAIN)
		return h->orderly_mask == 0 && h->unclean_index == 0;
	return h->scheme == JOURNAL_SCHEME_HYBRID && h->orderly_mask != 0 &&
	       (h->orderly_mask & (h->orderly_mask + 1)) == 0 && h->unclean_index != 0;
}

int journal_state_decode(const uint8_t *in, size_t len, struct journal_state_hdr *h, size_t *ad_len)
{
	struct sv_buf b;
	uint32_t magic = 0;
	uint16_t version = 0;
	uint8_t pad = 0;
	const uint8_t *reserved = NULL;
	int r;
	sv_buf_from(&b, in, len);
	memset(h, 0, sizeof(*h));
	if ((r = sv_buf_get_u32(&b, &magic)) != SV_OK ||
	    (r = sv_buf_get_u16(&b, &version)) != SV_OK ||
	    (r = sv_buf_get_u8(&b, &h->scheme)) != SV_OK ||
	    (r = sv_buf_get_u8(&b, &pad)) != SV_OK ||
	    (r = sv_buf_get_u32(&b, &h->nv_index)) != SV_OK ||
	    (r = get_str(&b, h->nv_name, JOURNAL_NAME_MAX, &h->nv_name_len)) != SV_OK ||
	    (r = get_str(&b, h->primary_name, JOURNAL_NAME_MAX, &h->primary_name_len)) != SV_OK ||
	    (r = get_str(&b, h->sealed, JOURNAL_SEALED_MAX, &h->sealed_len)) != SV_OK ||
	    (r = sv_buf_get_u64(&b, &h->init_counter)) != SV_OK ||
	    (r = sv_buf_get_u32(&b, &h->pcr_mask)) != SV_OK ||
	    (r = sv_buf_get_u64(&b, &h->init_time)) != SV_OK ||
	    (r = sv_buf_get_u32(&b, &h->orderly_mask)) != SV_OK ||
	    (r = sv_buf_get_u32(&b, &h->unclean_index)) != SV_OK ||
	    (r = sv_buf_get_ref(&b, STATE_RESERVED, &reserved)) != SV_OK ||
	    (r = sv_buf_get_u32(&b, &h->seal)) != SV_OK)
		goto out;
	*ad_len = b.off;
	if ((r = sv_buf_get(&b, h->nonce, JOURNAL_NONCE_LEN)) != SV_OK ||
	    (r = sv_buf_get(&b, h->secrets_ct, JOURNAL_SECRETS_CT_LEN)) != SV_OK ||
	    (r = sv_buf_expect_end(&b)) != SV_OK)
		goto out;
	r = SV_ERR_INVALID;
	if (magic != STATE_MAGIC ||
	    (version != JOURNAL_STATE_VERSION && version != JOURNAL_STATE_VERSION_OLD) ||
	    pad != 0 || (h->pcr_mask & ~JOURNAL_PCR_MASK_ALL) != 0 || !scheme_ok(h) ||
	    !seal_valid(h) || (version == JOURNAL_STATE_VERSION_OLD && h->seal != JOURNAL_SEAL_PCR))
		goto out;
	for (size_t i = 0; i < STATE_RESERVED; i++)
		if (reserved[i] != 0)
			goto out;
	h->version = version;
	r = SV_OK;
out:
	if (r != SV_OK) {
		sodium_memzero(h, sizeof(*h));
		r = SV_ERR_INVALID;
	}
	return r;
}
