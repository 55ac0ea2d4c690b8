/*
 * The vault's record key of a tenant's user in tokens mode (docs/tokens.md "Records"):
 * RECORD_KEY_TAG | len(tenant) | tenant | sub. An open-mode identifier may not begin with the
 * tag, so the two kinds never meet. The enclave (enclave/access.c) and sealvault-admin (delete
 * and audit-id with --tenant) build it here, so they cannot drift.
 */
#ifndef SV_COMMON_RECORDKEY_H
#define SV_COMMON_RECORDKEY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RECORD_KEY_TAG 0x00

/* 0 with key[0..*len) set; -1 when tenant and sub together do not fit in cap bytes. */
static inline int record_key_tenant(const char *tenant, const uint8_t *sub, size_t sub_len,
                                    uint8_t *key, size_t cap, size_t *len)
{
	size_t nl = strlen(tenant);
	if (nl > 255 || 2 + nl + sub_len > cap)
		return -1;
	key[0] = RECORD_KEY_TAG;
	key[1] = (uint8_t)nl;
	memcpy(key + 2, tenant, nl);
	memcpy(key + 2 + nl, sub, sub_len);
	*len = 2 + nl + sub_len;
	return 0;
}

/* The length of the tenant part (RECORD_KEY_TAG | len | tenant) of a tokens-mode record key,
 * 0 for an open-mode identifier or a key too short to hold its tenant. */
static inline size_t record_key_tenant_prefix(const uint8_t *key, size_t len)
{
	if (len < 2 || key[0] != RECORD_KEY_TAG || len < 2 + (size_t)key[1])
		return 0;
	return 2 + (size_t)key[1];
}

#endif
