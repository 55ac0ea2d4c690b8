#include "common/err.h"

const char *sv_strerror(int err)
{
	switch (err) {
	case SV_OK: return "success";
	case SV_ERR_INTERNAL: return "internal error";
	case SV_ERR_NOMEM: return "out of memory";
	case SV_ERR_INVALID: return "malformed input";
	case SV_ERR_RANGE: return "value out of range";
	case SV_ERR_CRYPTO: return "invalid cryptographic encoding";
	case SV_ERR_AUTH: return "authentication failed";
	case SV_ERR_IO: return "input/output error";
	case SV_ERR_TPM: return "TPM error";
	case SV_ERR_STATE: return "vault state and TPM disagree";
	case SV_ERR_EXISTS: return "already registered";
	case SV_ERR_NOTFOUND: return "not found";
	case SV_ERR_LOCKED: return "locked out: record destroyed";
	case SV_ERR_BUSY: return "busy, try again later";
	case SV_ERR_PROTOCOL: return "protocol violation";
	case SV_ERR_CONFIG: return "configuration error";
	case SV_ERR_SUPERSEDED:
		return "superseded: a later run of the vault (another copy of its state "
		       "directory?) "
		       "took the TPM counter over";
	default: return "unknown error";
	}
}
