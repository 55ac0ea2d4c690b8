/*
 * The client's side of GET /v1/info (common/info.h, docs/protocol.md "Vault information"): decode
 * the vault's JSON description and compare it with this client's own suite, context and wire
 * version before any guess is spent.
 */
#ifndef SV_CLIENT_INFO_H
#define SV_CLIENT_INFO_H

#include <stddef.h>
#include <stdint.h>

#include "common/info.h"

/* Decodes exactly len bytes of JSON into *out. Unknown members are ignored (later vaults may add
 * some); a missing or malformed known member is SV_ERR_INVALID with "member NAME: reason" in why.
 * A ksf of another type than argon2id decodes as ksf_t = ksf_m_kib = 0. */
int client_info_decode(struct sv_info *out, const char *json, size_t len, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* SV_OK when a client of suite INFO_SUITE, wire version `version` and OPAQUE context
 * (context, context_len) can talk to the vault in info; otherwise SV_ERR_CONFIG with a sentence
 * naming the first mismatch (suite, context, protocol version) in why. */
int client_info_check(const struct sv_info *info, const uint8_t *context, size_t context_len,
                      unsigned version, char *why, size_t why_len)
    __attribute__((warn_unused_result));

#endif
