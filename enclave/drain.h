/*
 * The enclave's part of a graceful stop (sealvaultd(8), "Stopping"; docs/protocol.md, "Drain").
 *
 * sealvaultd, on SIGTERM, asks for a drain; the broker passes it on the link as
 * SV_MSG_DRAIN_ENCLAVE (common/drain.h: the timeout). From then on the enclave itself, not the
 * broker (which is not trusted with the guess count), refuses every login/start and realm
 * recover2 with 503 ("the vault is shutting down"), before looking at the request, so no new
 * pending login and no new charge can begin; /healthz answers 503 too. Everything else is
 * served as before: login/finish, change-password/finish and realm recover3 (which finish the
 * pending sessions, the last-guess ones included, whose record then comes back), and the
 * requests that complete in one round trip and leave no pending state here (register/start and
 * /finish, the other /v2/realm/ routes, info, attestation, metrics).
 *
 * The serve loop asks drain_due at every point where nothing is staged or waiting for the TPM
 * (every reply has left): the first time after the drain began it reports DRAIN_BEGUN with the
 * pending logins then, and later DRAIN_OVER once, when the pending-login table is empty or the
 * timeout has passed. sealvaultd stops both processes on DRAIN_OVER. A login that has not sent its
 * KE3 by then loses its pending state with the process, as in any restart; for a last guess that
 * means the record stays destroyed (docs/threat-model.md, "Restarts and the last guess").
 */
#ifndef SV_ENCLAVE_DRAIN_H
#define SV_ENCLAVE_DRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/drain.h"

struct drain {
	int on;               /* SV_MSG_DRAIN_ENCLAVE came */
	int begun_sent;       /* DRAIN_BEGUN reported */
	int over_sent;        /* DRAIN_OVER reported */
	uint64_t deadline_ms; /* the timeout, on the serve loop's clock */
	uint64_t refused;     /* login/starts refused since */
};

/* The payload of SV_MSG_DRAIN_ENCLAVE, at now_ms: 0, or SV_ERR_INVALID / SV_ERR_RANGE (a frame
 * the broker must never send: the caller ends the process). A second request changes nothing. */
int drain_begin(struct drain *d, const uint8_t *payload, size_t len, uint64_t now_ms)
    __attribute__((warn_unused_result));

/* 1 while a request of this type must be refused (a login/start or a realm's recover2, which
 * would open a pending session and charge a guess, during a drain). */
int drain_refuses(const struct drain *d, uint16_t type);

/* Writes the refusal (SV_STATUS_BUSY and a text) into reply and counts it. */
int drain_refuse(struct drain *d, struct sv_buf *reply) __attribute__((warn_unused_result));

/* At a point with nothing staged or in flight: 1 with the report encoded into out when one is due
 * (see above), else 0. pending: the pending logins now, last_guesses: those holding a last guess.
 */
int drain_due(struct drain *d, uint64_t now_ms, size_t pending, size_t last_guesses,
              uint8_t out[static DRAIN_REPORT_LEN]);

#endif
