/* Calls between the parts of libsealvault that sealvault.h does not export. */
#ifndef SV_CLIENT_SVINTERNAL_H
#define SV_CLIENT_SVINTERNAL_H

#include <stdint.h>

#include "client/sealvault.h"
#include "common/info.h"

/* Verifies the vault behind ctx against its expect file like sv_verify (fresh nonce) and, on
 * SV_RESULT_OK, writes the vault id of the attested OPAQUE server key (common/info.h), which a
 * realm list names the realm by. */
enum sv_result client_verify_vault_id(struct sv_ctx *ctx, uint8_t vault_id[INFO_VAULT_ID_LEN]);

#endif
