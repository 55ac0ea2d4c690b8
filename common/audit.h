/*
 * The audit trail (docs/operations.md "Audit trail"): one record per state change of the vault,
 * sent by the enclave to sealvaultd as the payload of an SV_MSG_AUDIT frame on a socketpair of
 * their own (the enclave's fd 4; the broker never sees it), and written by sealvaultd to the
 * journal (sd_journal_send: PRIORITY, MESSAGE_ID, SEALVAULT_* fields) or as one line on stderr.
 *
 * Payload: u8 version (AUDIT_VERSION) | u8 kind | the kind's fields, in the order of enum
 * audit_field, each of fixed size, big-endian; the length is exact for the kind, and booleans,
 * the verdict and the scheme must hold one of their values. Which kind carries which field is
 * the table in audit.c; docs/protocol.md ("SV_MSG_AUDIT") lists it.
 *
 * Identifiers never appear: a record carries AUDIT_ID_HASH_LEN bytes of BLAKE2b keyed with the
 * audit key (a key the enclave derives from the vault key under a label of its own), which the
 * provider computes for a given identifier with `sealvault-admin audit-id` and an outsider who
 * reads the logs cannot. The enclave sends that key once per start (AUDIT_KEY, never logged) so
 * that sealvaultd can leave it where audit-id reads it (docs/threat-model.md "Audit trail").
 */
#ifndef SV_COMMON_AUDIT_H
#define SV_COMMON_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#define AUDIT_VERSION     1
#define AUDIT_KEY_LEN     32
#define AUDIT_ID_HASH_LEN 16
#define AUDIT_PAYLOAD_MAX 80 /* larger than any kind's payload */
#define AUDIT_FIELDS_MAX  16 /* journal fields of one record: MESSAGE, PRIORITY, ... */
#define AUDIT_LINE_MAX    512

/* The kinds, as on the wire (never renumber). AUDIT_KEY is the key hand-over, not an event. */
enum audit_kind {
	AUDIT_KEY = 0,
	AUDIT_STARTUP = 1,     /* the start-up check: what the store judged */
	AUDIT_PENALTY = 2,     /* hybrid counter: every user charged a guess after a power cut */
	AUDIT_REGISTER = 3,    /* a new record (or one over a destroyed identifier) */
	AUDIT_GUESS = 4,       /* a guess charged (login/start), with the attempts left */
	AUDIT_DESTROYED = 5,   /* the charge used the last guess: record destroyed */
	AUDIT_RECOVERED = 6,   /* a valid login released the backup-key blob */
	AUDIT_LOGIN_RESET = 7, /* a valid login before a password change reset the guesses */
	AUDIT_DELETED = 8,     /* the user (or the operator) deleted the record */
	AUDIT_PASSWORD_CHANGED = 9, /* a new record replaced the old one */
	/*
	 * Threshold realms (/v2/realm/, docs/realms.md): the same events on a realm record (its
	 * share of a user's key), as kinds of their own. Why kinds and not a "realm" field on the
	 * /v1 kinds: every kind has one fixed payload length under AUDIT_VERSION 1, so a field
	 * added to five existing kinds would change their bytes and need version 2 (and every
	 * decoder of version 1 would refuse them all), while new kinds leave every existing kind's
	 * payload as it was. And the journal selects by MESSAGE_ID, one per kind: only a kind of
	 * its own keeps a realm's share release out of a `MESSAGE_ID=<recovered>` query (and its
	 * alerts) and gives it a query of its own. The realm kinds carry no `known`: a realm
	 * charges guesses only for registered records (404 otherwise, docs/realms.md). Their
	 * identifier hash is of the realm record key (0x01 | the /v1 record key,
	 * common/recordkey.h; `sealvault-admin audit-id --realm`).
	 */
	AUDIT_REALM_REGISTER = 10,  /* a realm record stored (new, or replacing one) */
	AUDIT_REALM_GUESS = 11,     /* recover2 charged a guess, with the attempts left */
	AUDIT_REALM_DESTROYED = 12, /* that charge used the last guess: realm record destroyed */
	AUDIT_REALM_RECOVERED = 13, /* recover3: a right tag proof released the realm's share */
	AUDIT_REALM_DELETED = 14,   /* the user (or the operator) deleted the realm record */
	AUDIT_KINDS
};

/* The start-up verdict (enclave/anchor.h, anchor_judge); refused: the store did not open (the
 * reason is on stderr; the other fields are 0). */
enum audit_verdict {
	AUDIT_CLEAN = 0,
	AUDIT_ROLL_FORWARD = 1,
	AUDIT_POWER_CUT = 2,
	AUDIT_REFUSED = 3
};

/* One record; a kind uses only its fields (audit_kind_fields), the others are 0. */
struct audit_record {
	uint8_t kind;
	uint64_t seq;     /* 1, 2, ... per enclave start (the start-up record is 1) */
	uint64_t counter; /* the NV counter value the change was committed under */
	uint8_t id_hash[AUDIT_ID_HASH_LEN];
	uint8_t attempts_left, guess_limit;
	uint8_t known;    /* guess, destroyed: the identifier is registered (else: a fake record) */
	uint8_t restored; /* (realm-)recovered, login-reset: the last guess had destroyed the
	                     record; it is back */
	uint8_t operator; /* (realm-)deleted: by the operator (sealvault-admin delete), not the
	                     user */
	uint8_t verdict;  /* enum audit_verdict */
	uint8_t hybrid;   /* the counter scheme is hybrid */
	uint8_t penalty;  /* startup: a power-cut penalty was charged at this start */
	uint64_t frames, journal_bytes, tail_bytes, users, unclean_boots;
	uint64_t destroyed;         /* penalty: records it destroyed (their last guess) */
	uint8_t key[AUDIT_KEY_LEN]; /* AUDIT_KEY only */
};

/* Fields, as bits of audit_kind_fields and in wire order. */
enum audit_field {
	AUDIT_F_SEQ = 1u << 0,
	AUDIT_F_COUNTER = 1u << 1,
	AUDIT_F_ID = 1u << 2,
	AUDIT_F_LEFT = 1u << 3,
	AUDIT_F_LIMIT = 1u << 4,
	AUDIT_F_KNOWN = 1u << 5,
	AUDIT_F_RESTORED = 1u << 6,
	AUDIT_F_VERDICT = 1u << 7,
	AUDIT_F_SCHEME = 1u << 8,
	AUDIT_F_PENALTY = 1u << 9,
	AUDIT_F_FRAMES = 1u << 10,
	AUDIT_F_JBYTES = 1u << 11,
	AUDIT_F_TAIL = 1u << 12,
	AUDIT_F_USERS = 1u << 13,
	AUDIT_F_UNCLEAN = 1u << 14,
	AUDIT_F_KEY = 1u << 15,
	AUDIT_F_DESTROYED = 1u << 16,
	AUDIT_F_OPERATOR = 1u << 17,
};

/* The fields a kind carries; 0 for a kind that does not exist. */
unsigned audit_kind_fields(unsigned kind);

/* Encodes r into out (AUDIT_PAYLOAD_MAX bytes); *written gets the length. SV_ERR_INVALID for an
 * unknown kind or a field out of its range (booleans, verdict). Nothing is written on failure. */
int audit_encode(const struct audit_record *r, uint8_t out[static AUDIT_PAYLOAD_MAX],
                 size_t *written) __attribute__((warn_unused_result));

/* Decodes a payload of n bytes. SV_ERR_PROTOCOL for another version or an unknown kind,
 * SV_ERR_INVALID for a length that is not the kind's or a field out of its range; *r is
 * untouched on failure and every field the kind does not carry is 0 on success. */
int audit_decode(const uint8_t *p, size_t n, struct audit_record *r)
    __attribute__((warn_unused_result));

/* The keyed hash of an identifier (BLAKE2b, AUDIT_ID_HASH_LEN bytes, keyed with the audit key). */
void audit_id_hash(uint8_t out[static AUDIT_ID_HASH_LEN], const uint8_t key[static AUDIT_KEY_LEN],
                   const uint8_t *id, size_t id_len);

/* The record's kind name ("guess"), its journal MESSAGE_ID (32 hex digits) and its syslog
 * priority (LOG_INFO, ...); NULL / -1 for AUDIT_KEY and unknown kinds. */
const char *audit_kind_name(unsigned kind);
const char *audit_message_id(unsigned kind);
int audit_priority(const struct audit_record *r);

/* The journal fields of a record, each "NAME=value" and NUL-terminated, in storage of the
 * caller's: MESSAGE, PRIORITY, MESSAGE_ID, SEALVAULT_EVENT, then one SEALVAULT_* per field the
 * kind carries. Returns the number of fields (<= AUDIT_FIELDS_MAX), or SV_ERR_INVALID for
 * AUDIT_KEY and unknown kinds. */
struct audit_fields {
	char text[AUDIT_FIELDS_MAX][160];
	size_t n;
};
int audit_fields(const struct audit_record *r, struct audit_fields *out)
    __attribute__((warn_unused_result));

/* The one-line form for stderr, without the newline: "audit: event=guess seq=4 counter=17
 * id_hash=... attempts_left=3 guess_limit=10 known=yes" (the SEALVAULT_* fields, lower case
 * without the prefix). SV_ERR_INVALID as audit_fields. */
int audit_line(const struct audit_record *r, char out[static AUDIT_LINE_MAX])
    __attribute__((warn_unused_result));

#endif
