/*
 * The payload of SV_MSG_RELOAD (common/msg.h): what sealvaultd sends the broker on SIGHUP. The
 * broker cannot open files once sandboxed, so sealvaultd reads the certificate and key for it.
 *
 *   u32 settings_len | settings | u32 cert_len | cert | u32 key_len | key
 *
 * big-endian lengths; the three parts fill the payload exactly. settings: sealvault.conf(5)
 * lines "key = value\n" (the broker's reloadable keys that are set; every other one returns to
 * the broker's default), at most RELOAD_SETTINGS_MAX bytes, no NUL byte. cert: the PEM
 * certificate chain, key: the PEM private key, each 1..SV_FRAME_MAX bytes. The key is a secret:
 * whoever holds an encoded payload wipes it.
 */
#ifndef SV_COMMON_RELOAD_H
#define SV_COMMON_RELOAD_H

#include <stddef.h>
#include <stdint.h>

#define RELOAD_SETTINGS_MAX 4096
#define RELOAD_OVERHEAD     12 /* the three length fields */

struct reload_msg {
	const char *settings; /* not NUL-terminated */
	size_t settings_len;
	const uint8_t *cert;
	size_t cert_len;
	const uint8_t *key;
	size_t key_len;
};

/* Writes m to out (out_len >= RELOAD_OVERHEAD + the three lengths); *written gets the total.
 * SV_ERR_RANGE when a part is empty (cert, key) or too long, or out is too small; SV_ERR_INVALID
 * when the settings hold a NUL byte. Nothing is written on failure. */
int reload_encode(uint8_t *out, size_t out_len, const struct reload_msg *m, size_t *written)
    __attribute__((warn_unused_result));

/* Decodes a payload of n bytes; the parts point into p. SV_ERR_INVALID when the lengths do not
 * fill the payload exactly or the settings hold a NUL byte, SV_ERR_RANGE when a part is empty
 * (cert, key) or over its cap; *m is untouched on failure. */
int reload_decode(const uint8_t *p, size_t n, struct reload_msg *m)
    __attribute__((warn_unused_result));

#endif
