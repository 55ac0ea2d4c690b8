/*
 * The NV counter's own salted HMAC session, for the one TPM command the vault sends on every
 * group commit: NV_Increment.
 *
 * Why not ESYS' session: tpm2-tss 3.2 builds a new OpenSSL library context for every hash, HMAC
 * and nonce of an ESYS session (five per NV_Increment, ~0.5 ms of CPU in all), and that was the
 * largest cost per guess after the OPAQUE crypto itself. This session does the same protocol
 * (TPM 2.0 Part 1 §19.6 and §21) with libsodium's SHA-256 and HMAC-SHA-256, through the SAPI
 * context underneath ESYS:
 *   - salted: the salt is ECDH(ephemeral P-256 key, the pinned primary key) through KDFe, so a
 *     bus interposer cannot compute the session key (OpenSSL does the P-256 part, once);
 *   - unbound, SHA-256, no parameter encryption (NV_Increment has no parameters);
 *   - every command carries HMAC(sessionKey, cpHash | nonceCaller | nonceTPM | attributes), and
 *     every response HMAC is checked in constant time before the increment counts as done: a
 *     forged "success" from an interposer is TSS2_ESYS_RC_RSP_AUTH_FAILED, never SUCCESS.
 */
#ifndef SV_ENCLAVE_TPMSESS_H
#define SV_ENCLAVE_TPMSESS_H

#include <tss2/tss2_esys.h>

struct tpmsess;

/* Starts the session on the TPM behind ctx, salted to the primary key (TPM handle of the ESYS
 * object primary, public point pub: the primary whose name the state pins). Call before the
 * seccomp filter (OpenSSL key generation). */
int tpmsess_start(struct tpmsess **out, ESYS_CONTEXT *ctx, ESYS_TR primary,
                  const TPMS_ECC_POINT *pub) __attribute__((warn_unused_result));

/* NV_Increment of the counter nv (authorised by its own, empty, auth value) in the session.
 * Returns the TPM's response code (TPM errors unchanged, so that callers can retry NV_RATE),
 * TSS2_ESYS_RC_RSP_AUTH_FAILED if the response HMAC does not verify, or another TSS2 error. */
TSS2_RC tpmsess_nv_increment(struct tpmsess *s, ESYS_CONTEXT *ctx, ESYS_TR nv)
    __attribute__((warn_unused_result));

/* Flushes the session (if ctx is not NULL) and wipes its key. */
void tpmsess_close(struct tpmsess *s, ESYS_CONTEXT *ctx);

#endif
