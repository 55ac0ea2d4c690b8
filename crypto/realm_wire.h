/*
 * The /v2/realm/ bodies of docs/realms.md ("Wire encodings"): one encoder and one decoder per
 * request and per 200 reply, pure functions shared by the realm (decodes requests, encodes
 * replies) and the client core (the other way round).
 *
 * Decoders take exactly len bytes, check every bound and every group element, reject trailing
 * bytes, and point into the input (no copies; the structs hold no secrets of their own). On
 * failure they return SV_ERR_INVALID or SV_ERR_RANGE (or SV_ERR_CRYPTO for an encoding that is
 * not a valid element or scalar), set *why to a sentence for a 400 body when why is not NULL, and
 * leave *out zeroed. Encoders append to a buffer from sv_buf_init (REALM_WIRE_MAX is always
 * enough) and check the same lengths and ranges (not the group elements: the caller made those).
 */
#ifndef SV_CRYPTO_REALM_WIRE_H
#define SV_CRYPTO_REALM_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "crypto/ksf.h"
#include "crypto/realm.h"

#define REALM_WIRE_VERSION 2
#define REALM_CT_MIN       REALM_SEALED_LEN(1)
#define REALM_CT_MAX       REALM_SEALED_LEN(REALM_SECRET_MAX)
/* the longest body, register with a 255-byte uid, 16 realms and the longest ciphertext */
#define REALM_WIRE_MAX                                                                             \
	(1 + 2 + REALM_UID_MAX + REALM_ID_LEN + REALM_VERSION_LEN + KSF_PARAMS_LEN + 4 +           \
	 REALM_SCALAR_LEN + REALM_MAX * REALM_ELEMENT_LEN + REALM_KEY_LEN * 3 + REALM_SCALAR_LEN + \
	 2 + REALM_CT_MAX)
#define REALM_RECOVER2_REPLY_LEN (REALM_SESSION_LEN + REALM_ELEMENT_LEN + REALM_PROOF_LEN + 1)
#define REALM_STATUS_REPLY_LEN   (1 + REALM_VERSION_LEN + 5)

#define REALM_STATE_NONE       0
#define REALM_STATE_REGISTERED 1
#define REALM_STATE_DESTROYED  2

/* POST /v2/realm/register */
struct realm_register_req {
	const uint8_t *uid;
	size_t uid_len;
	const uint8_t *realm_id; /* [REALM_ID_LEN]: the realm the client meant */
	const uint8_t *version;  /* [REALM_VERSION_LEN] */
	struct ksf_params ksf;
	uint8_t t, n, index;         /* 1 <= t <= n <= REALM_MAX, 1 <= index <= n */
	uint8_t guess_limit;         /* 0: the realm's default */
	const uint8_t *oprf_share;   /* [32] k_index, checked: commitments[index - 1] = k_index G */
	const uint8_t *commitments;  /* [n * 32], every one a valid element */
	const uint8_t *unlock_check; /* [32] */
	const uint8_t *unlock_tag;   /* [32] */
	const uint8_t *enc_share;    /* [32] a reduced scalar */
	const uint8_t *share_mac;    /* [32] */
	const uint8_t *ct;           /* the sealed secret */
	size_t ct_len;               /* REALM_CT_MIN..REALM_CT_MAX */
};

/* POST /v2/realm/recover1, /v2/realm/delete and /v2/realm/status: the identifier only. */
struct realm_uid_req {
	const uint8_t *uid;
	size_t uid_len;
};

/* 200 reply to recover1: what the client groups realms by. */
struct realm_recover1_reply {
	const uint8_t *version;
	struct ksf_params ksf;
	uint8_t t, n, index, attempts_left;
	const uint8_t *unlock_check; /* [32] */
	const uint8_t *commitments;  /* [n * 32] */
};

/* POST /v2/realm/recover2 */
struct realm_recover2_req {
	const uint8_t *uid;
	size_t uid_len;
	const uint8_t *version; /* the version the client's group holds */
	const uint8_t *blinded; /* [32] a valid element */
};

/* 200 reply to recover2 */
struct realm_recover2_reply {
	const uint8_t *session_id; /* [REALM_SESSION_LEN] */
	const uint8_t *evaluated;  /* [32] a valid element */
	const uint8_t *proof;      /* [64] */
	uint8_t attempts_left;
};

/* POST /v2/realm/recover3 */
struct realm_recover3_req {
	const uint8_t *session_id; /* [REALM_SESSION_LEN] */
	const uint8_t *tag_proof;  /* [32] */
};

/* 200 reply to recover3 */
struct realm_recover3_reply {
	const uint8_t *release; /* [REALM_RELEASE_LEN] */
	const uint8_t *ct;
	size_t ct_len;
};

/* 200 reply to status */
struct realm_status_reply {
	uint8_t state; /* REALM_STATE_*; NONE and DESTROYED carry zeros below */
	const uint8_t *version;
	uint8_t t, n, index, guess_limit, attempts_left;
};

#define RW_WUR __attribute__((warn_unused_result))

RW_WUR int realm_wire_register_encode(struct sv_buf *out, const struct realm_register_req *r);
RW_WUR int realm_wire_register_decode(struct realm_register_req *out, const uint8_t *in, size_t len,
                                      const char **why);

RW_WUR int realm_wire_uid_encode(struct sv_buf *out, const struct realm_uid_req *r);
RW_WUR int realm_wire_uid_decode(struct realm_uid_req *out, const uint8_t *in, size_t len,
                                 const char **why);

RW_WUR int realm_wire_recover1_reply_encode(struct sv_buf *out,
                                            const struct realm_recover1_reply *r);
RW_WUR int realm_wire_recover1_reply_decode(struct realm_recover1_reply *out, const uint8_t *in,
                                            size_t len, const char **why);

RW_WUR int realm_wire_recover2_encode(struct sv_buf *out, const struct realm_recover2_req *r);
RW_WUR int realm_wire_recover2_decode(struct realm_recover2_req *out, const uint8_t *in, size_t len,
                                      const char **why);
RW_WUR int realm_wire_recover2_reply_encode(struct sv_buf *out,
                                            const struct realm_recover2_reply *r);
RW_WUR int realm_wire_recover2_reply_decode(struct realm_recover2_reply *out, const uint8_t *in,
                                            size_t len, const char **why);

RW_WUR int realm_wire_recover3_encode(struct sv_buf *out, const struct realm_recover3_req *r);
RW_WUR int realm_wire_recover3_decode(struct realm_recover3_req *out, const uint8_t *in, size_t len,
                                      const char **why);
RW_WUR int realm_wire_recover3_reply_encode(struct sv_buf *out,
                                            const struct realm_recover3_reply *r);
RW_WUR int realm_wire_recover3_reply_decode(struct realm_recover3_reply *out, const uint8_t *in,
                                            size_t len, const char **why);

RW_WUR int realm_wire_status_reply_encode(struct sv_buf *out, const struct realm_status_reply *r);
RW_WUR int realm_wire_status_reply_decode(struct realm_status_reply *out, const uint8_t *in,
                                          size_t len, const char **why);

#endif
