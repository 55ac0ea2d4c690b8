/*
 * The realm list file of threshold realms (docs/realms.md, "The realm list"): a JSON object
 *
 *   { "threshold": 2,
 *     "realms": [ { "name": "east", "url": "https://host:port", "ca": "east-ca.pem",
 *                   "id": "<32 hex: the realm's vault_id>", "expect": "east.expect.json",
 *                   "token": "east.jwt" }, ... ] }
 *
 * with 1..REALM_MAX realms; url, ca and id required, name (default: the url), expect and token
 * optional; threshold optional (0 here when absent). Unknown keys are errors. Relative paths are
 * made relative to the directory of the list file. The index of a realm is its position (1-based).
 */
#ifndef SV_CLIENT_REALMLIST_H
#define SV_CLIENT_REALMLIST_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/realm.h"

#define REALMLIST_JSON_MAX (256 * 1024)
#define REALMLIST_NAME_MAX 128

struct realmlist_entry {
	char *name;   /* never NULL: the url when the file gives no name */
	char *url;    /* https://... */
	char *ca;     /* path of the CA file to pin */
	char *expect; /* path of the attestation expect file, or NULL */
	char *token;  /* path of the file holding the access token, or NULL */
	uint8_t id[REALM_ID_LEN];
};

struct realmlist {
	unsigned threshold; /* 0: not in the file */
	size_t n;
	struct realmlist_entry realms[REALM_MAX];
};

/* Parses exactly len bytes of JSON; dir is the directory relative paths are joined to (NULL or ""
 * leaves them as they are). On failure returns SV_ERR_INVALID (or SV_ERR_NOMEM) with a sentence
 * naming the bad key or entry in why, and *out is left empty. */
int realmlist_parse(struct realmlist *out, const char *json, size_t len, const char *dir, char *why,
                    size_t why_len) __attribute__((warn_unused_result));
/* Reads and parses the file at path (relative paths against its directory). */
int realmlist_load(struct realmlist *out, const char *path, char *why, size_t why_len)
    __attribute__((warn_unused_result));
void realmlist_clear(struct realmlist *l);

#endif
