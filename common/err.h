/* sealvault error codes: every function returns 0 or one of these (negative). */
#ifndef SV_COMMON_ERR_H
#define SV_COMMON_ERR_H

#include <stddef.h>

#define SV_OK             0
#define SV_ERR_INTERNAL   -1  /* a bug or an impossible state; the message says where */
#define SV_ERR_NOMEM      -2  /* allocation failed */
#define SV_ERR_INVALID    -3  /* malformed input: wrong length, trailing bytes, bad encoding */
#define SV_ERR_RANGE      -4  /* a length or value outside its bounds */
#define SV_ERR_CRYPTO     -5  /* a primitive refused (identity point, non-canonical encoding) */
#define SV_ERR_AUTH       -6  /* a MAC or authentication check failed */
#define SV_ERR_IO         -7  /* read, write, fsync or open failed; errno says why */
#define SV_ERR_TPM        -8  /* the TPM refused a command */
#define SV_ERR_STATE      -9  /* state and TPM disagree (rollback, loss, other TPM) */
#define SV_ERR_EXISTS     -10 /* the identifier is already registered */
#define SV_ERR_NOTFOUND   -11 /* no such record (never shown to unauthenticated clients) */
#define SV_ERR_LOCKED     -12 /* the record is destroyed (guess limit reached) */
#define SV_ERR_BUSY       -13 /* a limit on pending work was reached; retry later */
#define SV_ERR_PROTOCOL   -14 /* a message out of order or of an unexpected type */
#define SV_ERR_CONFIG     -15 /* a configuration value is missing or out of bounds */
#define SV_ERR_SUPERSEDED -16 /* a later run of the vault took the TPM counter over */

/* sealvault-enclave's exit status when it stopped because the TPM is unavailable for now (a
 * command got no answer within its timeout, or NV writes were throttled while it started):
 * sealvaultd restarts the pair itself, with back-off, instead of exiting (sealvaultd(8)). Every
 * other non-zero status ends sealvaultd, as before. 75 is EX_TEMPFAIL. */
#define SV_EXIT_TPM_UNAVAILABLE 75

/* A short English description of an SV_ERR_* code, for messages. */
const char *sv_strerror(int err);

/* For decoders that explain a refusal: sets *why (if why is not NULL) to reason and returns err,
 * so that a decoder can write `return sv_fail(why, "...", SV_ERR_INVALID)`. */
static inline int sv_fail(const char **why, const char *reason, int err)
{
	if (why != NULL)
		*why = reason;
	return err;
}

#endif
