/*
 * The audit record: its wire form (the SV_MSG_AUDIT payload), the keyed identifier hash, and the
 * journal fields and stderr line sealvaultd writes for it. See common/audit.h.
 */
#include "common/audit.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include <sodium.h>

#include "common/err.h"

#define F_EVENT (AUDIT_F_SEQ | AUDIT_F_COUNTER) /* every logged kind */
#define F_USER  (F_EVENT | AUDIT_F_ID)          /* every kind about one identifier */

static const struct {
	const char *name;
	const char *message_id; /* journal MESSAGE_ID: generated once, never changed */
	int priority;
	unsigned fields;
	const char *what; /* the journal MESSAGE, after "sealvault audit: " */
} kinds[AUDIT_KINDS] = {
    [AUDIT_KEY] = {NULL, NULL, -1, AUDIT_F_KEY, NULL},
    [AUDIT_STARTUP] = {"startup", "d1c46123ae04452d8362b08b70ebb3a4", LOG_NOTICE,
                       F_EVENT | AUDIT_F_VERDICT | AUDIT_F_SCHEME | AUDIT_F_PENALTY |
                           AUDIT_F_FRAMES | AUDIT_F_JBYTES | AUDIT_F_TAIL | AUDIT_F_USERS,
                       "start-up check"},
    [AUDIT_PENALTY] = {"power-cut-penalty", "ab47655f5e034b2e8f72a3b341222c40", LOG_WARNING,
                       F_EVENT | AUDIT_F_USERS | AUDIT_F_UNCLEAN | AUDIT_F_DESTROYED,
                       "power cut: every user charged one guess"},
    [AUDIT_REGISTER] = {"register", "5902433716dc466bab6e6ab381f18684", LOG_INFO,
                        F_USER | AUDIT_F_LIMIT, "registered"},
    [AUDIT_GUESS] = {"guess", "c74c402f1e3c4e8c83df2890fc67f47c", LOG_INFO,
                     F_USER | AUDIT_F_LEFT | AUDIT_F_LIMIT | AUDIT_F_KNOWN, "guess charged"},
    [AUDIT_DESTROYED] = {"destroyed", "aa50ac4caeb94fbbb93dddb599d25d93", LOG_WARNING,
                         F_USER | AUDIT_F_LIMIT | AUDIT_F_KNOWN,
                         "last guess charged: record destroyed"},
    [AUDIT_RECOVERED] = {"recovered", "d73d877d20b2480086b3c80a6b86fe46", LOG_INFO,
                         F_USER | AUDIT_F_RESTORED, "recovery: backup key released"},
    [AUDIT_LOGIN_RESET] = {"login-reset", "8a5856f0a03b40108d9e0747a351d912", LOG_INFO,
                           F_USER | AUDIT_F_RESTORED, "login for a password change: guesses reset"},
    [AUDIT_DELETED] = {"deleted", "d4ddc2f495ee4f049100d9acb2b9f9fe", LOG_NOTICE,
                       F_USER | AUDIT_F_OPERATOR, "record deleted"},
    [AUDIT_PASSWORD_CHANGED] = {"password-changed", "861f5cc074174290ac1b3a8d28baf591", LOG_NOTICE,
                                F_USER | AUDIT_F_LIMIT, "password changed"},
    [AUDIT_REALM_REGISTER] = {"realm-register", "7723956f803543719a6ec89fcef92f09", LOG_INFO,
                              F_USER | AUDIT_F_LIMIT, "realm share registered"},
    [AUDIT_REALM_GUESS] = {"realm-guess", "d051bd47a6c744d29671bc062f265ac2", LOG_INFO,
                           F_USER | AUDIT_F_LEFT | AUDIT_F_LIMIT, "realm guess charged"},
    [AUDIT_REALM_DESTROYED] = {"realm-destroyed", "88f3d38a0ce946879fa77f45878f8955", LOG_WARNING,
                               F_USER | AUDIT_F_LIMIT,
                               "realm: last guess charged: share destroyed"},
    [AUDIT_REALM_RECOVERED] = {"realm-recovered", "7690d79d3bbe48dca218449ef485dc96", LOG_INFO,
                               F_USER | AUDIT_F_RESTORED, "realm recovery: share released"},
    [AUDIT_REALM_DELETED] = {"realm-deleted", "f8169e4267754a63acbf7595bfb47113", LOG_NOTICE,
                             F_USER | AUDIT_F_OPERATOR, "realm record deleted"},
};

enum fmt { DEC, BOOL, HEX, VERDICT, SCHEME };

/* In wire order: the bit of enum audit_field, bytes on the wire, journal name, how printed. */
static const struct {
	unsigned bit;
	size_t size;
	const char *name;
	enum fmt fmt;
} fields[] = {
    {AUDIT_F_SEQ, 8, "SEQ", DEC},
    {AUDIT_F_COUNTER, 8, "COUNTER", DEC},
    {AUDIT_F_ID, AUDIT_ID_HASH_LEN, "ID_HASH", HEX},
    {AUDIT_F_LEFT, 1, "ATTEMPTS_LEFT", DEC},
    {AUDIT_F_LIMIT, 1, "GUESS_LIMIT", DEC},
    {AUDIT_F_KNOWN, 1, "KNOWN", BOOL},
    {AUDIT_F_RESTORED, 1, "RESTORED", BOOL},
    {AUDIT_F_VERDICT, 1, "VERDICT", VERDICT},
    {AUDIT_F_SCHEME, 1, "COUNTER_SCHEME", SCHEME},
    {AUDIT_F_PENALTY, 1, "PENALTY", BOOL},
    {AUDIT_F_FRAMES, 8, "JOURNAL_FRAMES", DEC},
    {AUDIT_F_JBYTES, 8, "JOURNAL_BYTES", DEC},
    {AUDIT_F_TAIL, 8, "TAIL_BYTES", DEC},
    {AUDIT_F_USERS, 8, "USERS", DEC},
    {AUDIT_F_UNCLEAN, 8, "UNCLEAN_BOOTS", DEC},
    {AUDIT_F_KEY, AUDIT_KEY_LEN, NULL, HEX},
    {AUDIT_F_DESTROYED, 8, "RECORDS_DESTROYED", DEC},
    {AUDIT_F_OPERATOR, 1, "BY_OPERATOR", BOOL},
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

static const char *const verdicts[] = {"clean", "roll-forward", "power-cut", "refused"};

unsigned audit_kind_fields(unsigned kind)
{
	return kind < AUDIT_KINDS ? kinds[kind].fields : 0;
}

/* The record's storage for field i: a byte array (ID, KEY), a u8 or a u64. */
static uint8_t *field_bytes(struct audit_record *r, unsigned bit)
{
	switch (bit) {
	case AUDIT_F_ID: return r->id_hash;
	case AUDIT_F_KEY: return r->key;
	case AUDIT_F_LEFT: return &r->attempts_left;
	case AUDIT_F_LIMIT: return &r->guess_limit;
	case AUDIT_F_KNOWN: return &r->known;
	case AUDIT_F_RESTORED: return &r->restored;
	case AUDIT_F_VERDICT: return &r->verdict;
	case AUDIT_F_SCHEME: return &r->hybrid;
	case AUDIT_F_PENALTY: return &r->penalty;
	case AUDIT_F_OPERATOR: return &r->operator;
	default: return NULL;
	}
}

static uint64_t *field_u64(struct audit_record *r, unsigned bit)
{
	switch (bit) {
	case AUDIT_F_SEQ: return &r->seq;
	case AUDIT_F_COUNTER: return &r->counter;
	case AUDIT_F_FRAMES: return &r->frames;
	case AUDIT_F_JBYTES: return &r->journal_bytes;
	case AUDIT_F_TAIL: return &r->tail_bytes;
	case AUDIT_F_USERS: return &r->users;
	case AUDIT_F_UNCLEAN: return &r->unclean_boots;
	case AUDIT_F_DESTROYED: return &r->destroyed;
	default: return NULL;
	}
}

/* The ranges a decoder enforces and an encoder refuses to leave. */
static int in_range(const struct audit_record *r)
{
	unsigned f = audit_kind_fields(r->kind);
	if ((f & AUDIT_F_KNOWN && r->known > 1) || (f & AUDIT_F_RESTORED && r->restored > 1) ||
	    (f & AUDIT_F_PENALTY && r->penalty > 1) || (f & AUDIT_F_SCHEME && r->hybrid > 1) ||
	    (f & AUDIT_F_OPERATOR && r->operator> 1) ||
	    (f & AUDIT_F_VERDICT && r->verdict > AUDIT_REFUSED))
		return 0;
	/* a guess leaves fewer attempts than its limit */
	return !(f & AUDIT_F_LEFT) || r->attempts_left < r->guess_limit;
}

int audit_encode(const struct audit_record *r, uint8_t out[static AUDIT_PAYLOAD_MAX],
                 size_t *written)
{
	struct audit_record c = *r; /* field_* take a mutable record */
	if (r->kind >= AUDIT_KINDS || !in_range(r))
		return SV_ERR_INVALID;
	unsigned f = kinds[r->kind].fields;
	size_t n = 0;
	uint8_t tmp[AUDIT_PAYLOAD_MAX];
	tmp[n++] = AUDIT_VERSION;
	tmp[n++] = r->kind;
	for (size_t i = 0; i < N_FIELDS; i++) {
		if (!(f & fields[i].bit))
			continue;
		uint64_t *u = field_u64(&c, fields[i].bit);
		if (u != NULL)
			for (int k = 7; k >= 0; k--)
				tmp[n++] = (uint8_t)(*u >> (8 * k));
		else {
			memcpy(tmp + n, field_bytes(&c, fields[i].bit), fields[i].size);
			n += fields[i].size;
		}
	}
	memcpy(out, tmp, n);
	sodium_memzero(tmp, sizeof(tmp));
	sodium_memzero(&c, sizeof(c));
	*written = n;
	return SV_OK;
}

int audit_decode(const uint8_t *p, size_t n, struct audit_record *r)
{
	struct audit_record d;
	if (n < 2)
		return SV_ERR_INVALID;
	if (p[0] != AUDIT_VERSION || p[1] >= AUDIT_KINDS)
		return SV_ERR_PROTOCOL;
	memset(&d, 0, sizeof(d));
	d.kind = p[1];
	unsigned f = kinds[d.kind].fields;
	size_t need = 2;
	for (size_t i = 0; i < N_FIELDS; i++)
		if (f & fields[i].bit)
			need += fields[i].size;
	if (n != need)
		return SV_ERR_INVALID;
	size_t off = 2;
	for (size_t i = 0; i < N_FIELDS; i++) {
		if (!(f & fields[i].bit))
			continue;
		uint64_t *u = field_u64(&d, fields[i].bit);
		if (u != NULL)
			for (int k = 0; k < 8; k++)
				*u = *u << 8 | p[off + (size_t)k];
		else
			memcpy(field_bytes(&d, fields[i].bit), p + off, fields[i].size);
		off += fields[i].size;
	}
	if (!in_range(&d)) {
		sodium_memzero(&d, sizeof(d));
		return SV_ERR_INVALID;
	}
	*r = d;
	sodium_memzero(&d, sizeof(d));
	return SV_OK;
}

void audit_id_hash(uint8_t out[static AUDIT_ID_HASH_LEN], const uint8_t key[static AUDIT_KEY_LEN],
                   const uint8_t *id, size_t id_len)
{
	crypto_generichash(out, AUDIT_ID_HASH_LEN, id, id_len, key, AUDIT_KEY_LEN);
}

const char *audit_kind_name(unsigned kind)
{
	return kind < AUDIT_KINDS ? kinds[kind].name : NULL;
}

const char *audit_message_id(unsigned kind)
{
	return kind < AUDIT_KINDS ? kinds[kind].message_id : NULL;
}

int audit_priority(const struct audit_record *r)
{
	if (r->kind == AUDIT_STARTUP && r->verdict == AUDIT_REFUSED)
		return LOG_ERR;
	if (r->kind == AUDIT_STARTUP && (r->verdict != AUDIT_CLEAN || r->tail_bytes > 0))
		return LOG_WARNING; /* something was repaired or charged at this start */
	return audit_kind_name(r->kind) != NULL ? kinds[r->kind].priority : -1;
}

/* One field's value as text. */
static void field_value(const struct audit_record *r, size_t i, char *out, size_t len)
{
	struct audit_record c = *r;
	uint64_t *u = field_u64(&c, fields[i].bit);
	const uint8_t *b = field_bytes(&c, fields[i].bit);
	switch (fields[i].fmt) {
	case DEC: snprintf(out, len, "%llu", (unsigned long long)(u != NULL ? *u : *b)); break;
	case BOOL: snprintf(out, len, "%s", *b ? "yes" : "no"); break;
	case HEX: sodium_bin2hex(out, len, b, fields[i].size); break;
	case VERDICT: snprintf(out, len, "%s", verdicts[*b]); break;
	case SCHEME: snprintf(out, len, "%s", *b ? "hybrid" : "plain"); break;
	}
}

/* The journal MESSAGE: what happened, in words. */
static void message(const struct audit_record *r, char *out, size_t len)
{
	char id[2 * AUDIT_ID_HASH_LEN + 1];
	sodium_bin2hex(id, sizeof(id), r->id_hash, sizeof(r->id_hash));
	switch (r->kind) {
	case AUDIT_STARTUP:
		if (r->verdict == AUDIT_REFUSED) {
			snprintf(out, len,
			         "sealvault audit: start-up check refused to serve "
			         "(the reason is in the enclave's log)");
			break;
		}
		snprintf(out, len,
		         "sealvault audit: start-up check %s at counter %llu (%llu journal frames, "
		         "%llu users%s)",
		         verdicts[r->verdict], (unsigned long long)r->counter,
		         (unsigned long long)r->frames, (unsigned long long)r->users,
		         r->penalty ? ", power-cut penalty charged" : "");
		break;
	case AUDIT_PENALTY:
		snprintf(out, len, "sealvault audit: %s at counter %llu", kinds[r->kind].what,
		         (unsigned long long)r->counter);
		break;
	case AUDIT_GUESS:
	case AUDIT_REALM_GUESS:
		snprintf(out, len, "sealvault audit: %s for %s (%u attempts left)",
		         kinds[r->kind].what, id, r->attempts_left);
		break;
	default:
		snprintf(out, len, "sealvault audit: %s: %s%s%s", kinds[r->kind].what, id,
		         r->restored ? " (record restored by its last guess)" : "",
		         r->operator? " (by the operator)" : "");
		break;
	}
}

int audit_fields(const struct audit_record *r, struct audit_fields *out)
{
	char v[128];
	if (audit_kind_name(r->kind) == NULL || !in_range(r))
		return SV_ERR_INVALID;
	unsigned f = kinds[r->kind].fields;
	size_t n = 0;
	message(r, v, sizeof(v));
	snprintf(out->text[n++], sizeof(out->text[0]), "MESSAGE=%s", v);
	snprintf(out->text[n++], sizeof(out->text[0]), "PRIORITY=%d", audit_priority(r));
	snprintf(out->text[n++], sizeof(out->text[0]), "MESSAGE_ID=%s", kinds[r->kind].message_id);
	snprintf(out->text[n++], sizeof(out->text[0]), "SEALVAULT_EVENT=%s", kinds[r->kind].name);
	for (size_t i = 0; i < N_FIELDS && n < AUDIT_FIELDS_MAX; i++) {
		if (!(f & fields[i].bit) || fields[i].name == NULL)
			continue;
		field_value(r, i, v, sizeof(v));
		snprintf(out->text[n++], sizeof(out->text[0]), "SEALVAULT_%s=%s", fields[i].name,
		         v);
	}
	out->n = n;
	return (int)n;
}

int audit_line(const struct audit_record *r, char out[static AUDIT_LINE_MAX])
{
	char v[128], name[32];
	if (audit_kind_name(r->kind) == NULL || !in_range(r))
		return SV_ERR_INVALID;
	unsigned f = kinds[r->kind].fields;
	int w = snprintf(out, AUDIT_LINE_MAX, "audit: event=%s", kinds[r->kind].name);
	size_t n = w > 0 ? (size_t)w : 0;
	for (size_t i = 0; i < N_FIELDS; i++) {
		if (!(f & fields[i].bit) || fields[i].name == NULL)
			continue;
		size_t k = 0;
		for (; fields[i].name[k] != '\0' && k + 1 < sizeof(name); k++) {
			char c = fields[i].name[k];
			name[k] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
		}
		name[k] = '\0';
		field_value(r, i, v, sizeof(v));
		w = snprintf(out + n, AUDIT_LINE_MAX - n, " %s=%s", name, v);
		if (w < 0 || (size_t)w >= AUDIT_LINE_MAX - n)
			return SV_ERR_RANGE;
		n += (size_t)w;
	}
	return SV_OK;
}
