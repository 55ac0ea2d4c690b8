/* The realm client core's recovery (docs/realms.md "What the client does", Recover): grouping
 * the recover1 answers, recover2 to the t members with the most attempts left with proof checks
 * and fallback, the unlock check, recover3 everywhere that evaluated, the share MACs and the
 * secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/realmcore_int.h"
#include "common/err.h"
#include "crypto/oprf.h"

/* ---- recover ---- */

static int same_registration(const struct rrealm *a, const struct rrealm *b)
{
	return memcmp(a->version, b->version, REALM_VERSION_LEN) == 0 &&
	       a->ksf.type == b->ksf.type && a->ksf.t == b->ksf.t && a->ksf.m_kib == b->ksf.m_kib &&
	       a->t == b->t && a->n == b->n &&
	       memcmp(a->unlock_check, b->unlock_check, REALM_KEY_LEN) == 0 &&
	       memcmp(a->commitments, b->commitments, (size_t)a->n * REALM_ELEMENT_LEN) == 0;
}

/* Members of group g with distinct indices. */
static size_t group_distinct(const struct realmcore *rc, int g)
{
	uint32_t seen = 0;
	size_t k = 0;
	for (size_t i = 0; i < rc->n; i++)
		if (rc->r[i].r1 && rc->r[i].group == g && !(seen & (1u << rc->r[i].index))) {
			seen |= 1u << rc->r[i].index;
			k++;
		}
	return k;
}

static size_t count_kind(const struct realmcore *rc, enum fkind k)
{
	size_t c = 0;
	for (size_t i = 0; i < rc->n; i++)
		c += rc->r[i].st == RS_FAILED && rc->r[i].kind == k;
	return c;
}

/* The end of a recovery that cannot reach t realms: locked when too few realms can still hold
 * the registration, else the list of the missing. have: realms that did answer usefully. */
static void recover_short(struct realmcore *rc, unsigned t, size_t have)
{
	char list[1400], sentence[1800];
	size_t destroyed = count_kind(rc, FK_LOCKED);
	size_t answered = 0;
	for (size_t i = 0; i < rc->n; i++)
		answered += !(rc->r[i].st == RS_FAILED &&
		              (rc->r[i].kind == FK_NOANSWER || rc->r[i].kind == FK_TOKEN ||
		               rc->r[i].kind == FK_UNVERIFIED));
	rcore_list_failed(rc, list, sizeof(list));
	if (destroyed > 0 &&
	    ((t > 0 && destroyed > rc->n - t) || (t == 0 && destroyed == answered))) {
		rcore_set_err(
		    rc, REALMCORE_LOCKED,
		    "too many wrong guesses: %zu of %zu realms destroyed the registration (HTTP "
		    "410), too few remain to recover it; missing: %s",
		    destroyed, rc->n, list);
		return;
	}
	if (t > 0)
		snprintf(sentence, sizeof(sentence),
		         "recovery needs %u realms, only %zu answered; missing: %s", t, have, list);
	else
		snprintf(sentence, sizeof(sentence),
		         "recovery needs more realms, only %zu answered; missing: %s", have, list);
	rcore_finish_failed(rc, sentence);
}

void rcore_recover1_reply(struct realmcore *rc, size_t i, long status, const uint8_t *body,
                          size_t len)
{
	struct rrealm *r = &rc->r[i];
	struct realm_recover1_reply rep;
	const char *why = NULL;
	if (status != 200) {
		char reason[WHY_LEN];
		enum fkind k = rcore_describe(reason, sizeof(reason), status, body, len);
		rcore_fail_realm(rc, i, k, "%s", reason);
		return;
	}
	if (realm_wire_recover1_reply_decode(&rep, body, len, &why) != 0) {
		rcore_fail_realm(rc, i, FK_OTHER, "its recover1 answer is malformed (%s)",
		                 why ? why : "?");
		return;
	}
	memcpy(r->version, rep.version, REALM_VERSION_LEN);
	r->ksf = rep.ksf;
	r->t = rep.t;
	r->n = rep.n;
	r->index = rep.index;
	r->attempts1 = rep.attempts_left;
	memcpy(r->unlock_check, rep.unlock_check, REALM_KEY_LEN);
	memcpy(r->commitments, rep.commitments, (size_t)rep.n * REALM_ELEMENT_LEN);
	r->r1 = 1;
	r->st = RS_IDLE;
}

/* The next group member for recover2: not used, not failed, an index no live member has, the
 * most attempts left (first in the list on a tie). -1 when none. */
static int pick_member(const struct realmcore *rc)
{
	uint32_t taken = 0;
	int best = -1;
	for (size_t i = 0; i < rc->n; i++) {
		const struct rrealm *r = &rc->r[i];
		if (r->r1 && r->group == rc->group && r->used && r->st != RS_FAILED)
			taken |= 1u << r->index;
	}
	for (size_t i = 0; i < rc->n; i++) {
		const struct rrealm *r = &rc->r[i];
		if (!r->r1 || r->group != rc->group || r->used || r->st == RS_FAILED ||
		    (taken & (1u << r->index)))
			continue;
		if (best < 0 || r->attempts1 > rc->r[best].attempts1)
			best = (int)i;
	}
	return best;
}

static int send_recover2(struct realmcore *rc, size_t i)
{
	struct realm_recover2_req q = {.uid = rc->uid,
	                               .uid_len = rc->uid_len,
	                               .version = rc->r[i].version,
	                               .blinded = rc->blinded};
	int e = realm_wire_recover2_encode(&rc->scratch, &q);
	rc->r[i].used = 1;
	return e != 0 ? e : rcore_queue(rc, i, REALMCORE_PATH_RECOVER2, 1);
}

/* One more group member in place of a failed one; 0 when there is none left. */
int rcore_fallback(struct realmcore *rc)
{
	int m = pick_member(rc);
	if (m < 0)
		return 0;
	return send_recover2(rc, (size_t)m) == 0;
}

static int send_recover3(struct realmcore *rc, size_t i)
{
	uint8_t proof[REALM_KEY_LEN];
	struct rrealm *r = &rc->r[i];
	int e = realm_unlock_tag(rc->s->tag[i], rc->s->prk, r->id, r->index);
	if (e == 0)
		e = realm_tag_proof(proof, rc->s->tag[i], r->session);
	if (e == 0) {
		struct realm_recover3_req q = {.session_id = r->session, .tag_proof = proof};
		e = realm_wire_recover3_encode(&rc->scratch, &q);
	}
	sodium_memzero(proof, sizeof(proof));
	return e != 0 ? e : rcore_queue(rc, i, REALMCORE_PATH_RECOVER3, 1);
}

void rcore_after_recover1(struct realmcore *rc)
{
	int best = -1, tie = -1, largest = -1;
	size_t best_k = 0, largest_k = 0;
	/* group the 200 answers */
	for (size_t i = 0; i < rc->n; i++) {
		struct rrealm *r = &rc->r[i];
		if (!r->r1)
			continue;
		r->group = (int)i;
		for (size_t j = 0; j < i; j++)
			if (rc->r[j].r1 && same_registration(&rc->r[j], r)) {
				r->group = rc->r[j].group;
				break;
			}
	}
	for (size_t i = 0; i < rc->n; i++) {
		const struct rrealm *r = &rc->r[i];
		if (!r->r1 || r->group != (int)i)
			continue;
		size_t k = group_distinct(rc, (int)i);
		if (k > largest_k) {
			largest = (int)i;
			largest_k = k;
		}
		if (k < r->t || (rc->threshold && r->t < rc->threshold))
			continue; /* not usable */
		if (k > best_k) {
			best = (int)i;
			best_k = k;
			tie = -1;
		} else if (k == best_k) {
			tie = (int)i;
		}
	}
	if (best >= 0 && tie >= 0) {
		char a[600] = "", b[600] = "";
		for (size_t i = 0; i < rc->n; i++) {
			if (rc->r[i].r1 && rc->r[i].group == best)
				rcore_append(a, sizeof(a), "%s%s", a[0] ? ", " : "", rc->r[i].name);
			if (rc->r[i].r1 && rc->r[i].group == tie)
				rcore_append(b, sizeof(b), "%s%s", b[0] ? ", " : "", rc->r[i].name);
		}
		rcore_set_err(
		    rc, REALMCORE_FAILED,
		    "two registrations answer with %zu realms each (%s; and %s); the client "
		    "cannot tell which is yours: register again",
		    best_k, a, b);
		return;
	}
	/* everyone outside the chosen group (or, with none usable, the largest) is out */
	int keep = best >= 0 ? best : largest;
	for (size_t i = 0; i < rc->n; i++) {
		struct rrealm *r = &rc->r[i];
		if (!r->r1 || r->group == keep)
			continue;
		rcore_fail_realm(rc, i, FK_FOREIGN,
		                 "holds another registration (stale or foreign version)");
		if (best >= 0)
			rcore_warnf(
			    rc, i,
			    "holds another registration (stale or foreign version); ignored");
	}
	if (best < 0) {
		/* the largest group's threshold tells how many realms were needed */
		unsigned t = rc->threshold;
		if (t == 0 && largest >= 0)
			t = rc->r[largest].t;
		recover_short(rc, t, largest_k);
		return;
	}
	/* the realms that failed recover1 (the driver already named those it excluded) */
	for (size_t i = 0; i < rc->n; i++)
		if (rc->r[i].st == RS_FAILED && rc->r[i].kind != FK_FOREIGN && !rc->r[i].excluded)
			rcore_warnf(rc, i, "%s; not used", rc->r[i].why);
	rc->group = best;
	const struct rrealm *g = &rc->r[best];
	rc->t = g->t;
	/* stretch and blind once */
	struct secrets *s = rc->s;
	int e = realm_stretch(s->access, s->seed, s->password, rc->password_len, g->version,
	                      rc->uid, rc->uid_len, &g->ksf);
	sodium_memzero(s->password, sizeof(s->password));
	if (e == SV_ERR_NOMEM) {
		rcore_set_err(
		    rc, REALMCORE_FAILED,
		    "out of memory: the registration's KSF profile (Argon2id, %u KiB) needs more "
		    "than this machine gives",
		    g->ksf.m_kib);
		return;
	}
	if (e == 0)
		e = oprf_blind(s->blind, rc->blinded, OPRF_MODE_OPRF, s->access, sizeof(s->access));
	if (e == 0)
		e = realm_registration_hash(rc->reg_hash, g->version, &g->ksf, g->t, g->n, rc->uid,
		                            rc->uid_len, g->commitments);
	if (e != 0) {
		rcore_set_err(rc, REALMCORE_FAILED, "preparing the recovery: %s", sv_strerror(e));
		return;
	}
	rc->phase = PH_R23;
	for (unsigned k = 0; k < rc->t; k++)
		if (!rcore_fallback(rc))
			break;
}

/* The t good evaluations are in: combine, finalize, check the password. */
static void combine_oprf(struct realmcore *rc)
{
	struct realm_evaluation ev[REALM_MAX];
	uint8_t combined[REALM_ELEMENT_LEN], check[REALM_KEY_LEN];
	uint8_t *y = sodium_malloc(REALM_OUTPUT_LEN);
	const struct rrealm *g = &rc->r[rc->group];
	size_t c = 0, bad = 0;
	int minleft = -1;
	if (y == NULL) {
		rcore_set_err(rc, REALMCORE_FAILED, "out of memory");
		return;
	}
	for (size_t i = 0; i < rc->n && c < rc->t; i++) {
		const struct rrealm *r = &rc->r[i];
		if (!r->good)
			continue;
		ev[c].index = r->index;
		memcpy(ev[c].commitment,
		       g->commitments + (size_t)(r->index - 1) * REALM_ELEMENT_LEN,
		       REALM_ELEMENT_LEN);
		memcpy(ev[c].evaluated, r->evaluated, REALM_ELEMENT_LEN);
		memcpy(ev[c].proof, r->proof, REALM_PROOF_LEN);
		if (minleft < 0 || r->attempts2 < minleft)
			minleft = r->attempts2;
		c++;
	}
	int e = realm_combine(combined, &bad, rc->blinded, ev, c);
	if (e == 0)
		e = oprf_finalize(y, rc->s->access, REALM_ACCESS_LEN, rc->s->blind, combined);
	if (e == 0) {
		realm_unlock_prk(rc->s->prk, y, rc->reg_hash);
		e = realm_unlock_check(check, rc->s->prk);
	}
	sodium_free(y);
	sodium_memzero(combined, sizeof(combined));
	if (e != 0) {
		rcore_set_err(rc, REALMCORE_FAILED, "combining the evaluations: %s",
		              sv_strerror(e));
		return;
	}
	if (sodium_memcmp(check, g->unlock_check, REALM_KEY_LEN) != 0) {
		rc->attempts_left = minleft;
		sodium_memzero(rc->s->prk, sizeof(rc->s->prk));
		rcore_set_err(rc, REALMCORE_WRONG_PASSWORD, "wrong password; attempts left: %d",
		              minleft);
		return;
	}
	rc->prk_ready = 1;
	for (size_t i = 0; i < rc->n; i++)
		if (rc->r[i].good && send_recover3(rc, i) != 0)
			rcore_fail_realm(rc, i, FK_OTHER, "building its recover3 request failed");
}

void rcore_recover2_reply(struct realmcore *rc, size_t i, long status, const uint8_t *body,
                          size_t len)
{
	struct rrealm *r = &rc->r[i];
	const struct rrealm *g = &rc->r[rc->group];
	struct realm_recover2_reply rep;
	const char *why = NULL;
	if (status != 200) {
		char reason[WHY_LEN];
		enum fkind k = rcore_describe(reason, sizeof(reason), status, body, len);
		if (status == 409)
			snprintf(reason, sizeof(reason),
			         "holds another registration since recover1 (HTTP 409)");
		rcore_fail_realm(rc, i, k, "%s", reason);
		rcore_warnf(rc, i, "%s; excluded", reason);
		return;
	}
	if (realm_wire_recover2_reply_decode(&rep, body, len, &why) != 0) {
		rcore_fail_realm(rc, i, FK_OTHER, "its evaluation does not decode (%s)",
		                 why ? why : "?");
		rcore_warnf(rc, i, "its evaluation does not decode (%s); excluded",
		            why ? why : "?");
		return;
	}
	struct realm_evaluation ev = {.index = r->index};
	memcpy(ev.commitment, g->commitments + (size_t)(r->index - 1) * REALM_ELEMENT_LEN,
	       REALM_ELEMENT_LEN);
	memcpy(ev.evaluated, rep.evaluated, REALM_ELEMENT_LEN);
	memcpy(ev.proof, rep.proof, REALM_PROOF_LEN);
	if (realm_verify(&ev, rc->blinded) != 0) {
		rcore_fail_realm(rc, i, FK_OTHER, "its evaluation proof failed");
		rcore_warnf(rc, i, "its evaluation proof failed; excluded");
		return;
	}
	memcpy(r->session, rep.session_id, REALM_SESSION_LEN);
	memcpy(r->evaluated, rep.evaluated, REALM_ELEMENT_LEN);
	memcpy(r->proof, rep.proof, REALM_PROOF_LEN);
	r->attempts2 = rep.attempts_left;
	r->good = 1;
	r->st = RS_IDLE;
	if (rc->prk_ready) {
		if (send_recover3(rc, i) != 0)
			rcore_fail_realm(rc, i, FK_OTHER, "building its recover3 request failed");
		return;
	}
	size_t good = 0;
	for (size_t j = 0; j < rc->n; j++)
		good += rc->r[j].good;
	if (good == rc->t)
		combine_oprf(rc);
}

void rcore_recover3_reply(struct realmcore *rc, size_t i, long status, const uint8_t *body,
                          size_t len)
{
	struct rrealm *r = &rc->r[i];
	struct realm_recover3_reply rep;
	uint8_t mac[REALM_KEY_LEN], want[REALM_KEY_LEN];
	struct realm_share *sh = &rc->s->share[i];
	const char *why = NULL;
	if (status != 200) {
		char reason[WHY_LEN];
		enum fkind k = rcore_describe(reason, sizeof(reason), status, body, len);
		if (k == FK_TOKEN) {
			rcore_fail_realm(rc, i, k, "%s", reason);
			rcore_warnf(rc, i, "%s; excluded", reason);
			return;
		}
		/* the password is right (the unlock check matched): a 403 or 410 here is the
		 * realm misbehaving */
		if (status == 403 || status == 410)
			snprintf(reason, sizeof(reason),
			         "refused the right tag proof (HTTP %ld); it misbehaves", status);
		rcore_fail_realm(rc, i, FK_OTHER, "%s", reason);
		rcore_warnf(rc, i, "%s; excluded", reason);
		return;
	}
	if (realm_wire_recover3_reply_decode(&rep, body, len, &why) != 0) {
		rcore_fail_realm(rc, i, FK_OTHER, "its release does not decode (%s)",
		                 why ? why : "?");
		rcore_warnf(rc, i, "its release does not decode (%s); excluded", why ? why : "?");
		return;
	}
	int e = realm_release_open(sh->value, mac, rc->s->tag[i], r->session, rep.release);
	if (e == 0)
		e = realm_share_mac(want, rc->s->prk, r->id, r->index, sh->value);
	int bad = e != 0 || sodium_memcmp(mac, want, REALM_KEY_LEN) != 0;
	sodium_memzero(mac, sizeof(mac));
	sodium_memzero(want, sizeof(want));
	if (bad) {
		sodium_memzero(sh, sizeof(*sh));
		rcore_fail_realm(rc, i, FK_OTHER, "its share fails its MAC");
		rcore_warnf(rc, i, "its share fails its MAC; excluded");
		return;
	}
	sh->index = r->index;
	/* keep the ciphertext next to the share: body[i] is free now (its request is answered) */
	memcpy(rc->s->body[i], rep.ct, rep.ct_len);
	r->body_len = rep.ct_len;
	r->ok = 1;
	r->st = RS_IDLE;
}

/* Every recover3 answered and at least t shares in: combine, open. */
static void open_secret(struct realmcore *rc)
{
	struct realm_share sh[REALM_MAX];
	uint8_t *s = sodium_malloc(REALM_SCALAR_LEN + REALM_KEY_LEN + REALM_SECRET_MAX);
	size_t c = 0, secret_len = 0;
	int e, opened = 0;
	if (s == NULL) {
		rcore_set_err(rc, REALMCORE_FAILED, "out of memory");
		return;
	}
	uint8_t *key = s + REALM_SCALAR_LEN, *secret = key + REALM_KEY_LEN;
	for (size_t i = 0; i < rc->n && c < rc->t; i++)
		if (rc->r[i].ok)
			sh[c++] = rc->s->share[i];
	e = realm_shamir_combine(s, sh, c);
	sodium_memzero(sh, sizeof(sh));
	if (e == 0)
		e = realm_secret_key(key, rc->s->seed, s, rc->reg_hash);
	/* try each distinct ciphertext: only the genuine one opens */
	for (size_t i = 0; e == 0 && !opened && i < rc->n; i++) {
		if (!rc->r[i].ok)
			continue;
		int seen = 0;
		for (size_t j = 0; j < i; j++)
			seen |= rc->r[j].ok && rc->r[j].body_len == rc->r[i].body_len &&
			        memcmp(rc->s->body[j], rc->s->body[i], rc->r[i].body_len) == 0;
		if (!seen && realm_secret_open(secret, &secret_len, key, rc->reg_hash,
		                               rc->s->body[i], rc->r[i].body_len) == 0)
			opened = 1;
	}
	if (e == 0 && opened) {
		rc->out = sodium_malloc(secret_len);
		if (rc->out == NULL) {
			e = SV_ERR_NOMEM;
		} else {
			memcpy(rc->out, secret, secret_len);
			rc->out_len = secret_len;
		}
	}
	sodium_free(s);
	if (e != 0) {
		rcore_set_err(rc, REALMCORE_FAILED, "opening the secret: %s", sv_strerror(e));
		return;
	}
	if (!opened) {
		rcore_set_err(
		    rc, REALMCORE_FAILED,
		    "no ciphertext the realms returned opens with the recovered key; the stored "
		    "secret was altered at every realm used");
		return;
	}
	rc->attempts_left = -1;
	rc->result = REALMCORE_OK;
	rc->phase = PH_DONE;
}

void rcore_after_recover23(struct realmcore *rc)
{
	size_t have = 0;
	for (size_t i = 0; i < rc->n; i++)
		have += rc->prk_ready ? rc->r[i].ok : rc->r[i].good;
	rc->succeeded = rc->prk_ready ? have : 0;
	if (have >= rc->t && rc->prk_ready) {
		open_secret(rc);
		return;
	}
	/* not enough: the realms that answered have charged one guess each */
	recover_short(rc, rc->t, have);
	if (!rc->prk_ready && rc->result != REALMCORE_LOCKED) {
		size_t n = strlen(rc->err);
		if (have > 0)
			snprintf(rc->err + n, sizeof(rc->err) - n,
			         " (the realms that answered charged one guess each)");
	}
}
