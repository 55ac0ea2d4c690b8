/*
 * IPC framing between the broker and the enclave, after OpenSSH's monitor and OpenBSD's imsg.
 * One frame = one SOCK_SEQPACKET datagram:
 *
 *   u16 version | u16 type | u32 length | u32 request id | payload (exactly `length` bytes)
 *
 * all big-endian. The length is checked against SV_FRAME_MAX before anything is allocated or
 * copied; a datagram is read into a buffer one byte larger than the largest valid frame so that a
 * kernel truncation of an oversized datagram is seen, not silently accepted. A frame with another
 * version, an unknown type, a length that disagrees with the datagram or trailing bytes is a
 * protocol violation: the receiver must drop the connection.
 */
#ifndef SV_COMMON_FRAME_H
#define SV_COMMON_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define SV_FRAME_HDR_LEN 12
#define SV_FRAME_MAX     65536 /* hard cap on a payload, bytes */
/* Receive buffer size: the largest valid frame plus one byte to detect truncation. */
#define SV_FRAME_BUF_LEN (SV_FRAME_HDR_LEN + SV_FRAME_MAX + 1)

struct sv_frame {
	uint16_t version;
	uint16_t type;          /* enum sv_msg_type */
	uint32_t req_id;        /* chosen by the broker, echoed by the enclave's reply */
	const uint8_t *payload; /* points into the datagram the frame was decoded from */
	size_t len;
};

/* 1 if type is a row of SV_MSG_TABLE (common/msgtable.h), else 0. */
int frame_type_known(uint16_t type);

/* Writes header and payload to out (out_len >= SV_FRAME_HDR_LEN + len); *written gets the total.
 * SV_ERR_RANGE when len > SV_FRAME_MAX or out is too small, SV_ERR_INVALID for an unknown type. */
int frame_encode(uint8_t *out, size_t out_len, uint16_t type, uint32_t req_id,
                 const uint8_t *payload, size_t len, size_t *written)
    __attribute__((warn_unused_result));

/* Decodes one complete datagram of n bytes. The payload is a reference into msg. Fails with
 * SV_ERR_RANGE (length over the cap or datagram larger than any valid frame), SV_ERR_INVALID
 * (short header, length disagreeing with the datagram) or SV_ERR_PROTOCOL (version, unknown
 * type); on failure *out is untouched. */
int frame_decode(const uint8_t *msg, size_t n, struct sv_frame *out)
    __attribute__((warn_unused_result));

/* Sends one frame as one datagram on a SOCK_SEQPACKET descriptor (retrying EINTR).
 * SV_ERR_BUSY when a non-blocking socket is full (nothing was sent), SV_ERR_IO on other errors. */
int frame_send(int fd, uint16_t type, uint32_t req_id, const uint8_t *payload, size_t len)
    __attribute__((warn_unused_result));

/* Receives and decodes one datagram into buf (SV_FRAME_BUF_LEN bytes); out->payload points into
 * buf. SV_ERR_BUSY when a non-blocking socket has nothing to read, SV_ERR_IO on end of stream
 * (errno 0) or a read error, otherwise as frame_decode. */
int frame_recv(int fd, uint8_t buf[static SV_FRAME_BUF_LEN], struct sv_frame *out)
    __attribute__((warn_unused_result));

#endif
