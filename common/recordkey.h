/*
 * The vault's record key of a tenant's user in tokens mode (docs/tokens.md "Records"):
 * RECORD_KEY_TAG | len(tenant) | tenant | sub. An open-mode identifier may not begin with the
 * tag, so the two kinds never meet. The enclave (enclave/access.c) and sealvault-admin (delete
 * and audit-id with --tenant) build it here, so they cannot drift.
 *
 * A threshold realm's record (docs/realms.md, enclave/realm.h) of a user lives in the same store
 * under RECORD_KEY_REALM | the user's /v1 record key (either kind above), so that it never meets
 * the user's /v1 record. An open-mode identifier may not begin with RECORD_KEY_REALM either.
 */
#ifndef SV_COMMON_RECORDKEY_H
#define SV_COMMON_RECORDKEY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RECORD_KEY_TAG   0x00
#define RECORD_KEY_REALM 0x01

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

/* The realm record key of the /v1 record key v1[0..v1_len): 0 with key[0..*len) set; -1 when it
 * does not fit in cap bytes. */
static inline int record_key_realm(const uint8_t *v1, size_t v1_len, uint8_t *key, size_t cap,
                                   size_t *len)
{
	if (v1_len < 1 || 1 + v1_len > cap)
		return -1;
	key[0] = RECORD_KEY_REALM;
	memcpy(key + 1, v1, v1_len);
	*len = 1 + v1_len;
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

/* The tenant part of a record key of any kind (a realm record's tenant is its /v1 key's): its
 * length as record_key_tenant_prefix gives it (0 for an open-mode key), and in *tenant where it
 * begins. */
static inline size_t record_key_tenant_of(const uint8_t *key, size_t len, const uint8_t **tenant)
{
	if (len >= 1 && key[0] == RECORD_KEY_REALM) {
		key++;
		len--;
	}
	*tenant = key;
	return record_key_tenant_prefix(key, len);
}

#endif
