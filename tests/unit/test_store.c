/* Unit tests for enclave/store.c (with enclave/anchor.c) on real files in a temporary directory,
 * with the TPM replaced through --wrap by an in-memory counter that checks auth values the way
 * the TPM does: commit, replay, a failed NV increment (memory ahead of disk: the store refuses
 * further work; the next open completes the commit), rollback, a counter ahead, another TPM,
 * snapshots and a crash between snapshot and journal reset, the store_write/store_anchor split
 * (what may be answered before the increment), the anchor run apart from the store (staging the
 * next frame meanwhile), and run authority: a forked copy is refused, a
 * superseded run cannot anchor, a crash between the start frame and NV_ChangeAuth is recovered,
 * another writer is caught by the read-back, a lazy open supersedes nobody until it writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/err.h"
#include "common/attest_stmt.h"
#include "enclave/approval.h"
#include "enclave/journal.h"
#include "enclave/store.h"
#include "enclave/tpm.h"
#include "policy/seccomp.h"

/* ---- fake TPM ---- */
static uint64_t counter;
static int counter_defined, fail_increment, fail_change_auth;
static uint64_t bump_on_change_auth; /* another writer increments just before a take-over */
static uint8_t auth_value[64];
static size_t auth_len;
/* What each client of the fake TPM presents: one ESYS context per process in reality. */
static uint8_t presented_by[2][64];
static size_t presented_len_by[2];
static struct tpm *const fake, *const fake2;
#define WHO(t) ((t) == fake2 ? 1 : 0)
static unsigned change_auths;
static uint8_t primary_name[34] = {0x00, 0x0b, 1};
static uint8_t sealed_key[TPM_VAULT_KEY_LEN];

int __wrap_tpm_primary_name(const struct tpm *t, uint8_t out[TPM_NAME_MAX], size_t *len);
int __wrap_tpm_counter_define(struct tpm *t, uint32_t index, int orderly);
int __wrap_tpm_counter_undefine(struct tpm *t, uint32_t index);
int __wrap_tpm_counter_attach(struct tpm *t, uint32_t index, uint8_t name[TPM_NAME_MAX],
                              size_t *name_len);
int __wrap_tpm_counter_read(struct tpm *t, uint64_t *value);
int __wrap_tpm_counter_read_owner(struct tpm *t, uint64_t *value);
int __wrap_tpm_counter_increment(struct tpm *t);
int __wrap_tpm_counter_set_auth(struct tpm *t, const uint8_t *auth, size_t len);
int __wrap_tpm_counter_change_auth(struct tpm *t, const uint8_t *auth, size_t len);
int __wrap_tpm_seal_new(struct tpm *t, uint32_t pcr_mask, const uint8_t *policy,
                        uint8_t key[TPM_VAULT_KEY_LEN], uint8_t *blob, size_t blob_max,
                        size_t *blob_len);
int __wrap_tpm_seal_key(struct tpm *t, uint32_t pcr_mask, const uint8_t *policy,
                        const uint8_t key[TPM_VAULT_KEY_LEN], uint8_t *blob, size_t blob_max,
                        size_t *blob_len);
int __wrap_tpm_unseal(struct tpm *t, uint32_t pcr_mask, const struct tpm_approval *approved,
                      const uint8_t *blob, size_t blob_len, uint8_t key[TPM_VAULT_KEY_LEN]);

int __wrap_tpm_primary_name(const struct tpm *t, uint8_t out[TPM_NAME_MAX], size_t *len)
{
	memcpy(out, primary_name, sizeof(primary_name));
	*len = sizeof(primary_name);
	return SV_OK;
}
int __wrap_tpm_counter_define(struct tpm *t, uint32_t index, int orderly)
{
	assert_false(orderly); /* these tests provision plain vaults; test_hybrid the others */
	if (counter_defined)
		return SV_ERR_EXISTS;
	counter_defined = 1;
	counter = 1000; /* a new counter starts at the highest value any counter had */
	auth_len = presented_len_by[0] = presented_len_by[1] = 0;
	return SV_OK;
}
int __wrap_tpm_counter_undefine(struct tpm *t, uint32_t index)
{
	counter_defined = 0;
	return SV_OK;
}
int __wrap_tpm_counter_attach(struct tpm *t, uint32_t index, uint8_t name[TPM_NAME_MAX],
                              size_t *name_len)
{
	if (!counter_defined)
		return SV_ERR_NOTFOUND;
	memset(name, 0x77, 34);
	*name_len = 34;
	return SV_OK;
}
static int auth_ok(struct tpm *t)
{
	return presented_len_by[WHO(t)] == auth_len &&
	       memcmp(presented_by[WHO(t)], auth_value, auth_len) == 0;
}
int __wrap_tpm_counter_read(struct tpm *t, uint64_t *value)
{
	if (!auth_ok(t))
		return SV_ERR_AUTH;
	*value = counter;
	return SV_OK;
}
int __wrap_tpm_counter_read_owner(struct tpm *t, uint64_t *value)
{
	*value = counter;
	return SV_OK;
}
int __wrap_tpm_counter_increment(struct tpm *t)
{
	if (!auth_ok(t))
		return SV_ERR_AUTH;
	if (fail_increment)
		return SV_ERR_TPM;
	counter++;
	return SV_OK;
}
int __wrap_tpm_counter_set_auth(struct tpm *t, const uint8_t *auth, size_t len)
{
	assert_true(len <= sizeof(presented_by[0]));
	memcpy(presented_by[WHO(t)], auth, len);
	presented_len_by[WHO(t)] = len;
	return SV_OK;
}
int __wrap_tpm_counter_change_auth(struct tpm *t, const uint8_t *auth, size_t len)
{
	if (fail_change_auth)
		return SV_ERR_TPM;
	counter += bump_on_change_auth;
	bump_on_change_auth = 0;
	change_auths++;
	memcpy(auth_value, auth, len);
	auth_len = len;
	return __wrap_tpm_counter_set_auth(t, auth, len);
}
/* The sealed blob: 64 bytes of 0x5e, then the policy kind (0 none, 1 plain PCR, 2 authorized)
 * and the PCR values "seen" at sealing (pcr_epoch) or the authPolicy digest. A plain PCR policy
 * unseals while pcr_epoch is unchanged; an authorized one while the approval's digest (its first
 * byte stands for the approved epoch) matches pcr_epoch and names the sealed authPolicy's K. */
static uint8_t pcr_epoch = 1;
int __wrap_tpm_seal_key(struct tpm *t, uint32_t pcr_mask, const uint8_t *policy,
                        const uint8_t key[TPM_VAULT_KEY_LEN], uint8_t *blob, size_t blob_max,
                        size_t *blob_len)
{
	memcpy(sealed_key, key, sizeof(sealed_key));
	memset(blob, 0x5e, 64);
	blob[1] = policy != NULL ? 2 : pcr_mask != 0 ? 1 : 0;
	blob[2] = pcr_epoch;
	if (policy != NULL)
		memcpy(blob + 3, policy, TPM_DIGEST_LEN);
	*blob_len = 64;
	return SV_OK;
}
int __wrap_tpm_seal_new(struct tpm *t, uint32_t pcr_mask, const uint8_t *policy,
                        uint8_t key[TPM_VAULT_KEY_LEN], uint8_t *blob, size_t blob_max,
                        size_t *blob_len)
{
	randombytes_buf(key, TPM_VAULT_KEY_LEN);
	return __wrap_tpm_seal_key(t, pcr_mask, policy, key, blob, blob_max, blob_len);
}
int __wrap_tpm_unseal(struct tpm *t, uint32_t pcr_mask, const struct tpm_approval *approved,
                      const uint8_t *blob, size_t blob_len, uint8_t key[TPM_VAULT_KEY_LEN])
{
	if (blob_len != 64 || blob[0] != 0x5e)
		return SV_ERR_TPM;
	if (blob[1] == 2) {
		uint8_t name[ATTEST_NAME_LEN], want[TPM_DIGEST_LEN];
		if (approved == NULL ||
		    attest_name_from_public(approved->key, approved->key_len, name) != SV_OK)
			return SV_ERR_TPM;
		attest_policy_authorize_ref(name, approved->ref, approved->ref_len, want);
		if (memcmp(want, blob + 3, TPM_DIGEST_LEN) != 0)
			return SV_ERR_TPM;
		if (approved->pcrs != pcr_mask || approved->approved[0] != pcr_epoch)
			return SV_ERR_STATE;
	} else if (approved != NULL || (blob[1] == 1) != (pcr_mask != 0) ||
	           (blob[1] == 1 && blob[2] != pcr_epoch)) {
		return SV_ERR_TPM;
	}
	memcpy(key, sealed_key, sizeof(sealed_key));
	return SV_OK;
}

/* ---- helpers ---- */
static char dir[64];
static char why[512];
static struct tpm *const fake = (struct tpm *)&counter;
static struct tpm *const fake2 = (struct tpm *)&auth_len; /* a second process's TPM context */
static const uint8_t rec[STORE_RECORD_LEN] = {1, 2, 3};

static int setup(void **state)
{
	if (sodium_init() < 0)
		return -1;
	snprintf(dir, sizeof(dir), "/tmp/sv-test-store.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	counter_defined = fail_increment = fail_change_auth = 0;
	bump_on_change_auth = 0;
	change_auths = 0;
	primary_name[2] = 1;
	pcr_epoch = 1;
	return store_init(dir, fake, TPM_NV_INDEX_DEFAULT, 0, 0, NULL, why, sizeof(why)) == SV_OK
	           ? 0
	           : -1;
}

static int teardown(void **state)
{
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.fork'", dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct store *open_ok(void)
{
	struct store *s = NULL;
	int r = store_open(&s, dir, fake, NULL, why, sizeof(why));
	if (r != SV_OK)
		fail_msg("store_open: %s", why);
	return s;
}

static int open_refused(const char *reason)
{
	struct store *s = NULL;
	int r = store_open(&s, dir, fake, NULL, why, sizeof(why));
	store_close(s);
	if (r == SV_ERR_STATE && strstr(why, reason) == NULL)
		fail_msg("refused for another reason: %s", why);
	return r;
}

static void put(struct store *s, const char *id, unsigned limit)
{
	assert_int_equal(store_put_user(s, (const uint8_t *)id, strlen(id), rec,
	                                (const uint8_t *)"blob", 4, limit),
	                 SV_OK);
}

static unsigned used(struct store *s, const char *id)
{
	struct store_user_view v;
	assert_int_equal(store_lookup(s, (const uint8_t *)id, strlen(id), &v), SV_OK);
	return v.guesses_used;
}

static void copy_file(const char *from, const char *to)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "cp '%s/%s' '%s/%s'", dir, from, dir, to);
	assert_int_equal(system(cmd), 0);
}

/* ---- tests ---- */
static void test_commit_and_replay(void **state)
{
	struct store *s = open_ok();
	unsigned left = 0;
	put(s, "alice", 3);
	put(s, "bob", 2);
	assert_int_equal(store_pending(s), 2);
	assert_int_equal(store_commit(s), SV_OK);
	assert_int_equal(counter, 1002);
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"alice", 5, &left), SV_OK);
	assert_int_equal(left, 2);
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"bob", 3, &left), SV_OK);
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"bob", 3, &left), SV_OK);
	assert_int_equal(left, 0);
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"bob", 3, &left), SV_ERR_LOCKED);
	assert_int_equal(store_commit(s), SV_OK); /* one commit for three changes */
	assert_int_equal(counter, 1003);
	struct store_stats st;
	store_get_stats(s, &st);
	/* define + first increment + take-over at init, this run's take-over, two commits */
	assert_int_equal(st.nv_writes, 6);
	assert_int_equal(st.users, 1);
	assert_int_equal(st.destroyed, 1);
	store_close(s);

	s = open_ok();
	assert_int_equal(used(s, "alice"), 1);
	struct store_user_view v;
	assert_int_equal(store_lookup(s, (const uint8_t *)"bob", 3, &v), SV_OK);
	assert_int_equal(v.destroyed, 1);
	assert_null(v.record);
	store_get_stats(s, &st);
	assert_int_equal(st.counter, 1003);
	assert_int_equal(st.journal_head, 1003);
	assert_int_equal(st.nv_writes, 7); /* and this run's take-over */
	assert_int_equal(change_auths, 3);
	/* the lock: a second open of the same directory is refused while this one is open */
	struct store *s2 = NULL;
	assert_int_equal(store_open(&s2, dir, fake, NULL, why, sizeof(why)), SV_ERR_BUSY);
	store_close(s);
}

static void test_failed_increment_rolls_forward(void **state)
{
	struct store *s = open_ok();
	put(s, "carol", 5);
	fail_increment = 1;
	assert_int_not_equal(store_commit(s), SV_OK);
	/* memory is ahead of the durable state: nothing more is accepted */
	assert_int_equal(store_put_user(s, (const uint8_t *)"dave", 4, rec, NULL, 0, 3),
	                 SV_ERR_STATE);
	assert_int_equal(store_commit(s), SV_ERR_STATE);
	store_close(s);
	fail_increment = 0;
	assert_int_equal(counter, 1001);
	s = open_ok(); /* journal one ahead: the increment is completed */
	assert_int_equal(counter, 1002);
	assert_int_equal(used(s, "carol"), 0);
	store_close(s);
	s = open_ok();
	store_close(s);
}

/* store_write then store_anchor: only resets count as acknowledgeable before the anchor; nothing
 * can be staged in between; resets alone are a flush (no NV write) that survives a restart; a
 * mixed batch cut between reply and increment keeps its reset; a rollback can drop a flush (the
 * user stays charged) but not a commit that followed it. */
static void test_write_then_anchor(void **state)
{
	struct store *s = open_ok();
	unsigned left;
	struct store_stats st;
	put(s, "frank", 5);
	put(s, "gina", 5);
	assert_int_equal(store_pending_anchored(s), 2); /* registrations wait for the anchor */
	assert_int_equal(store_commit(s), SV_OK);
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"frank", 5, &left), SV_OK);
	assert_int_equal(store_pending_anchored(s), 1);
	assert_int_equal(store_stage_noop(s), SV_OK);
	assert_int_equal(store_pending_anchored(s),
	                 2); /* the unknown-user no-op times like a charge */
	assert_int_equal(store_commit(s), SV_OK);
	assert_int_equal(store_pending_anchored(s), 0);
	uint64_t c0 = counter;

	/* resets only: a flush frame, no NV write, durable */
	assert_int_equal(store_reset_guesses(s, (const uint8_t *)"frank", 5), SV_OK);
	assert_int_equal(store_pending(s), 1);
	assert_int_equal(store_pending_anchored(s), 0);
	assert_int_equal(store_write(s), SV_OK);
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"frank", 5, &left), SV_ERR_STATE);
	assert_int_equal(store_write(s), SV_ERR_STATE);
	assert_int_equal(store_anchor(s), SV_OK);
	assert_int_equal(counter, c0);
	store_get_stats(s, &st);
	assert_int_equal(st.flushes, 1);
	assert_int_equal(st.journal_head, c0);
	store_close(s);
	s = open_ok();
	assert_int_equal(used(s, "frank"), 0);
	assert_int_equal(counter, c0);

	/* a reset and a charge: one commit; killed between the reset's reply and the increment */
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"gina", 4, &left), SV_OK);
	assert_int_equal(store_commit(s), SV_OK);
	assert_int_equal(store_reset_guesses(s, (const uint8_t *)"gina", 4), SV_OK);
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"frank", 5, &left), SV_OK);
	assert_int_equal(store_pending_anchored(s), 1);
	assert_int_equal(store_write(s), SV_OK);
	fail_increment = 1;
	assert_int_not_equal(store_anchor(s), SV_OK);
	store_close(s);
	fail_increment = 0;
	s = open_ok(); /* one ahead: completed, with the acknowledged reset */
	assert_int_equal(counter, c0 + 2);
	assert_int_equal(used(s, "gina"), 0);
	assert_int_equal(used(s, "frank"), 1);
	store_close(s);

	/* a rollback that drops a flush written by a later run is refused (the counter is bound to
	 * that run), and so is one that drops the commit after a flush */
	copy_file("journal", "journal.charged");
	s = open_ok();
	assert_int_equal(store_reset_guesses(s, (const uint8_t *)"frank", 5), SV_OK);
	assert_int_equal(store_commit(s), SV_OK); /* a flush */
	store_close(s);
	copy_file("journal", "journal.flushed");
	copy_file("journal.charged", "journal");
	assert_int_equal(open_refused("not the one the vault last started from"), SV_ERR_STATE);
	copy_file("journal.flushed", "journal");
	s = open_ok();
	assert_int_equal(used(s, "frank"), 0);
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"frank", 5, &left), SV_OK);
	assert_int_equal(store_commit(s), SV_OK);
	store_close(s);
	copy_file("journal.flushed", "journal");
	assert_int_equal(open_refused("older than the TPM"), SV_ERR_STATE);
}

/* store_anchor_begin .. _end (the serve loop runs the increments on its TPM thread): the next
 * frame is staged while the anchor runs but written only after it (one commit frame ahead of the
 * TPM at most), counting from the written frame's counter; a change staged then and never
 * written is lost by a crash, the anchored frame is not; a failed anchor refuses everything and
 * the next start completes its frame. */
static void test_anchor_pipelined(void **state)
{
	struct store *s = open_ok();
	struct store_anchor_job job;
	unsigned left;
	put(s, "hana", 5);
	assert_int_equal(store_commit(s), SV_OK);
	uint64_t c0 = counter;

	assert_int_equal(store_charge_guess(s, (const uint8_t *)"hana", 4, &left), SV_OK);
	assert_int_equal(store_write(s), SV_OK);
	assert_int_equal(store_pending(s), 0); /* the frame took them */
	assert_true(store_anchor_due(s));
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"hana", 4, &left), SV_ERR_STATE);
	assert_int_equal(store_anchor_begin(s, &job), SV_OK);
	assert_false(store_anchor_due(s));
	assert_int_equal(store_anchor_begin(s, &job), SV_ERR_STATE);
	assert_int_equal(store_counter(s), c0 + 1); /* the next frame follows the written one */
	put(s, "ines", 4);                          /* staged for the next frame */
	assert_int_equal(store_pending(s), 1);
	assert_int_equal(store_pending_anchored(s), 1);
	assert_int_equal(store_commit_cost(s), 1);
	assert_int_equal(store_write(s), SV_ERR_STATE); /* not before the anchor */
	assert_int_equal(store_snapshot(s), SV_ERR_STATE);
	assert_int_equal(counter, c0);
	store_anchor_run(&job);
	assert_int_equal(counter, c0 + 1);
	assert_int_equal(store_anchor_end(s, &job), SV_OK);
	assert_int_equal(store_anchor_end(s, &job), SV_ERR_STATE);
	assert_int_equal(store_pending(s), 1);
	assert_int_equal(store_write(s), SV_OK);
	assert_int_equal(store_anchor(s), SV_OK);
	assert_int_equal(counter, c0 + 2);
	store_close(s);
	s = open_ok();
	assert_int_equal(used(s, "hana"), 1);
	assert_int_equal(used(s, "ines"), 0);

	/* killed after the anchor with the next frame staged: the anchored charge stays, the
	 * staged one (never written, never answered) is gone */
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"hana", 4, &left), SV_OK);
	assert_int_equal(store_write(s), SV_OK);
	assert_int_equal(store_anchor_begin(s, &job), SV_OK);
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"ines", 4, &left), SV_OK);
	store_anchor_run(&job);
	assert_int_equal(store_anchor_end(s, &job), SV_OK);
	store_close(s);
	s = open_ok();
	assert_int_equal(counter, c0 + 3);
	assert_int_equal(used(s, "hana"), 2);
	assert_int_equal(used(s, "ines"), 0);

	/* a failed anchor: everything is refused, the next start completes the written frame */
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"hana", 4, &left), SV_OK);
	assert_int_equal(store_write(s), SV_OK);
	assert_int_equal(store_anchor_begin(s, &job), SV_OK);
	fail_increment = 1;
	store_anchor_run(&job);
	fail_increment = 0;
	assert_int_not_equal(store_anchor_end(s, &job), SV_OK);
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"ines", 4, &left), SV_ERR_STATE);
	assert_int_equal(store_write(s), SV_ERR_STATE);
	store_close(s);
	s = open_ok();
	assert_int_equal(counter, c0 + 4);
	assert_int_equal(used(s, "hana"), 3);
	store_close(s);
}

static void test_rollback_and_counter_ahead(void **state)
{
	struct store *s = open_ok();
	put(s, "erin", 5);
	assert_int_equal(store_commit(s), SV_OK);
	store_close(s);
	copy_file("journal", "journal.old");
	s = open_ok();
	unsigned left;
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"erin", 4, &left), SV_OK);
	assert_int_equal(store_commit(s), SV_OK);
	store_close(s);
	copy_file("journal", "journal.new");
	copy_file("journal.old", "journal");
	assert_int_equal(open_refused("older than the TPM"), SV_ERR_STATE);
	copy_file("journal.new", "journal");
	counter += 2; /* counter ahead of the journal: same as a journal that is too old */
	assert_int_equal(open_refused("older than the TPM"), SV_ERR_STATE);
	counter -= 4; /* journal two ahead of the counter: not ours */
	assert_int_equal(open_refused("ahead of TPM counter"), SV_ERR_STATE);
	counter += 2;
	primary_name[2] = 2;
	assert_int_equal(open_refused("different TPM"), SV_ERR_STATE);
	primary_name[2] = 1;
	s = open_ok();
	assert_int_equal(used(s, "erin"), 1);
	store_close(s);
}

static void test_snapshot_and_interrupted_reset(void **state)
{
	struct store *s = open_ok();
	char id[16];
	for (int i = 0; i < 50; i++) {
		snprintf(id, sizeof(id), "user-%d", i);
		put(s, id, 9);
	}
	assert_int_equal(store_commit(s), SV_OK);
	assert_int_equal(store_delete_user(s, (const uint8_t *)"user-3", 6), SV_OK);
	assert_int_equal(store_commit(s), SV_OK);
	put(s, "late", 4);
	assert_int_equal(store_snapshot(s), SV_ERR_BUSY); /* never with staged changes */
	assert_int_equal(store_commit(s), SV_OK);
	store_close(s);
	copy_file("journal", "journal.before-snapshot");
	s = open_ok();
	assert_int_equal(store_snapshot(s), SV_OK);
	struct store_info in;
	store_get_info(s, &in);
	assert_int_equal(in.active_slot, 'b');
	assert_int_equal(in.journal_bytes, 48);
	unsigned left;
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"late", 4, &left), SV_OK);
	assert_int_equal(store_commit(s), SV_OK);
	store_close(s);
	s = open_ok();
	assert_int_equal(used(s, "late"), 1);
	struct store_user_view v;
	assert_int_equal(store_lookup(s, (const uint8_t *)"user-3", 6, &v), SV_ERR_NOTFOUND);
	assert_int_equal(store_lookup(s, (const uint8_t *)"user-49", 7, &v), SV_OK);
	store_close(s);

	/* A crash after writing a snapshot, before emptying the journal: the old journal (based on
	 * the older snapshot) is obsolete and the snapshot holds everything. */
	assert_int_equal(teardown(NULL), 0);
	assert_int_equal(setup(NULL), 0);
	s = open_ok();
	put(s, "x", 3);
	assert_int_equal(store_commit(s), SV_OK);
	store_close(s);
	copy_file("journal", "journal.pre");
	s = open_ok();
	assert_int_equal(store_snapshot(s), SV_OK);
	store_close(s);
	copy_file("journal.pre", "journal");
	s = open_ok();
	assert_int_equal(used(s, "x"), 0);
	store_get_info(s, &in);
	assert_int_equal(in.journal_bytes, 48 + 137); /* reset at open, then this run's start */
	store_close(s);
}

/* A snapshot on the snapshot thread (issue 16) while every kind of change goes on: the users it
 * began with are never changed under it (changes go to copies), the frames committed meanwhile
 * end up in its delta chunks, and the state after the switch and after a reopen is the state
 * the commits made. With 300-byte chunks the snapshot has many. */
static void test_snapshot_async(void **state)
{
	struct store *s = open_ok();
	struct store_user_view v;
	struct store_info in;
	unsigned left;
	char id[16];
	assert_int_equal(store_set_snapshot_chunk(s, 300), SV_OK);
	assert_int_equal(store_set_snapshot_chunk(s, 0), SV_ERR_RANGE);
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "user-%d", i);
		put(s, id, 3);
	}
	assert_int_equal(store_commit(s), SV_OK);
	assert_int_equal(store_snapshot_start(s), SV_OK);
	assert_true(store_snapshot_busy(s));
	assert_int_equal(store_snapshot_start(s), SV_ERR_STATE); /* one at a time */
	/* changes of every kind while it is written, in three commits */
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"user-1", 6, &left), SV_OK);
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"user-2", 6, &left), SV_OK);
	assert_int_equal(store_delete_user(s, (const uint8_t *)"user-3", 6), SV_OK);
	put(s, "user-4", 7); /* replaced */
	put(s, "new", 2);
	assert_int_equal(store_commit(s), SV_OK);
	assert_int_equal(store_reset_guesses(s, (const uint8_t *)"user-2", 6), SV_OK);
	assert_int_equal(store_commit(s), SV_OK);
	for (int k = 0; k < 3; k++)
		assert_int_equal(store_charge_guess(s, (const uint8_t *)"user-5", 6, &left), SV_OK);
	assert_int_equal(left, 0); /* destroyed */
	assert_int_equal(store_commit(s), SV_OK);
	/* the first commit end after the thread has finished switched to the snapshot (with at
	 * least the first commit above in its delta chunks), or this does */
	assert_int_equal(store_snapshot_wait(s), SV_OK);
	assert_false(store_snapshot_busy(s));
	store_get_info(s, &in);
	assert_int_equal(in.active_slot, 'b');
	assert_true(in.snapshot_counter >= 2 && in.snapshot_counter <= store_counter(s));
	assert_true(in.journal_bytes >= 48);
	store_close(s);
	for (int pass = 0; pass < 2; pass++) {
		s = open_ok();
		assert_int_equal(used(s, "user-1"), 1);
		assert_int_equal(used(s, "user-2"), 0);
		assert_int_equal(store_lookup(s, (const uint8_t *)"user-3", 6, &v),
		                 SV_ERR_NOTFOUND);
		assert_int_equal(store_lookup(s, (const uint8_t *)"user-4", 6, &v), SV_OK);
		assert_int_equal(v.guess_limit, 7);
		assert_int_equal(store_lookup(s, (const uint8_t *)"user-5", 6, &v), SV_OK);
		assert_true(v.destroyed);
		assert_int_equal(used(s, "new"), 0);
		assert_int_equal(used(s, "user-39"), 0);
		struct store_stats st;
		store_get_stats(s, &st);
		assert_int_equal(st.users, 39);
		assert_int_equal(st.destroyed, 1);
		if (pass == 0) { /* one more commit after the switch, then reopen */
			assert_int_equal(store_charge_guess(s, (const uint8_t *)"user-8", 6, &left),
			                 SV_OK);
			assert_int_equal(store_commit(s), SV_OK);
			assert_int_equal(store_reset_guesses(s, (const uint8_t *)"user-8", 6),
			                 SV_OK);
			assert_int_equal(store_commit(s), SV_OK);
		}
		store_close(s);
	}
	/* a snapshot the process ends before switching to is no snapshot: nothing is lost */
	s = open_ok();
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"user-6", 6, &left), SV_OK);
	assert_int_equal(store_commit(s), SV_OK);
	assert_int_equal(store_snapshot_start(s), SV_OK);
	store_close(s);
	s = open_ok();
	assert_int_equal(used(s, "user-6"), 1);
	store_get_info(s, &in);
	assert_int_equal(in.active_slot, 'b');
	store_close(s);
}

/* The same under the enclave's seccomp filter (as the serving enclave runs it): the snapshot
 * thread, started at open, writes, the switch happens, and the store closes with the thread
 * parked; a system call outside the filter would end the child with SIGSYS. */
static int snapshot_under_filter(void)
{
	struct store *s = NULL;
	struct policy_seccomp_enclave cfg;
	char w[256];
	unsigned left;
	char id[16];
	if (store_open(&s, dir, fake, NULL, why, sizeof(why)) != SV_OK ||
	    store_set_snapshot_chunk(s, 300) != SV_OK)
		return 2;
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "user-%d", i);
		if (store_put_user(s, (const uint8_t *)id, strlen(id), rec, (const uint8_t *)"blob",
		                   4, 3) != SV_OK)
			return 3;
	}
	if (store_commit(s) != SV_OK)
		return 4;
	store_keep_threads(s);
	if (policy_seccomp_open_fds(&cfg, w, sizeof(w)) != SV_OK ||
	    policy_seccomp_enclave_install(&cfg, w, sizeof(w)) != SV_OK)
		return 5;
	if (store_snapshot_start(s) != SV_OK)
		return 6;
	for (int k = 0; k < 5; k++) {
		snprintf(id, sizeof(id), "user-%d", k);
		if (store_charge_guess(s, (const uint8_t *)id, strlen(id), &left) != SV_OK ||
		    store_commit(s) != SV_OK)
			return 7;
	}
	if (store_snapshot_wait(s) != SV_OK || store_snapshot_busy(s))
		return 8;
	struct store_info in;
	struct store_user_view v;
	store_get_info(s, &in);
	if (in.active_slot != 'b' || store_lookup(s, (const uint8_t *)"user-4", 6, &v) != SV_OK ||
	    v.guesses_used != 1)
		return 9;
	store_close(s);
	return 0;
}

static void test_snapshot_async_sandboxed(void **state)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(snapshot_under_filter());
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		fail_msg("the child died of signal %d (31: SIGSYS, a call outside the filter)",
		         WTERMSIG(st));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* (the child's TPM counter was its own: the directory is not reopened here) */
}

/* ---- run authority (anchor.h, docs/threat-model.md "Forks") ---- */
static char fork_dir[80];

static void fork_copy(void)
{
	char cmd[512];
	snprintf(fork_dir, sizeof(fork_dir), "%s.fork", dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", fork_dir, dir, fork_dir);
	assert_int_equal(system(cmd), 0);
}

static struct store *open_dir_ok(const char *d, struct tpm *t)
{
	struct store *s = NULL;
	if (store_open(&s, d, t, NULL, why, sizeof(why)) != SV_OK)
		fail_msg("store_open %s: %s", d, why);
	return s;
}

/* The fork attack of issue 11: P (clean), a commit cut between fsync and increment copied as Q,
 * P restarted and a guess anchored, then Q restored: Q must be refused, although its head equals
 * the counter. */
static void test_fork_after_crash_refused(void **state)
{
	struct store *s = open_ok();
	unsigned left;
	put(s, "victim", 3);
	assert_int_equal(store_commit(s), SV_OK);
	store_close(s);
	s = open_ok(); /* P: copied once this run has taken the counter over */
	copy_file("journal", "journal.P");
	assert_int_equal(store_stage_noop(s), SV_OK);
	fail_increment = 1;
	assert_int_not_equal(store_commit(s), SV_OK); /* fsynced, never anchored */
	fail_increment = 0;
	store_close(s);
	copy_file("journal", "journal.Q");
	copy_file("journal.P", "journal");
	uint64_t c0 = counter;
	s = open_ok();
	assert_int_equal(store_charge_guess(s, (const uint8_t *)"victim", 6, &left), SV_OK);
	assert_int_equal(store_commit(s), SV_OK);
	assert_int_equal(left, 2);
	assert_int_equal(counter, c0 + 1);
	store_close(s);
	copy_file("journal.Q", "journal"); /* head c0 + 1 == counter: clean but for the run check */
	assert_int_equal(open_refused("not the one the vault last started from"), SV_ERR_STATE);
	copy_file("journal.P", "journal");
	assert_int_equal(open_refused("older than the TPM"), SV_ERR_STATE);
}

/* Two runs at once on two copies: the later one takes the counter over; the earlier one can no
 * longer anchor anything (its commit fails, nothing may be answered) and its directory never
 * starts again; the later one keeps serving. */
static void test_two_runs_at_once(void **state)
{
	struct store *a = open_ok();
	unsigned left;
	put(a, "victim", 3);
	assert_int_equal(store_commit(a), SV_OK);
	fork_copy();
	struct store *b = open_dir_ok(fork_dir, fake2);
	assert_int_equal(store_charge_guess(a, (const uint8_t *)"victim", 6, &left), SV_OK);
	assert_int_equal(store_write(a), SV_OK);
	assert_int_equal(store_anchor(a), SV_ERR_SUPERSEDED);
	assert_int_equal(store_commit(a), SV_ERR_STATE); /* failed: nothing more */
	store_close(a);
	assert_int_equal(store_stage_noop(b), SV_OK);
	assert_int_equal(store_commit(b), SV_OK);
	store_close(b);
	assert_int_equal(open_refused("not the one the vault last started from"), SV_ERR_STATE);
	b = open_dir_ok(fork_dir, fake2);
	assert_int_equal(used(b, "victim"), 0);
	store_close(b);
}

/* Another writer that holds the auth value (impossible without the vault key, but checked):
 * an increment that does not land on the sealed value is caught by the read-back; a counter that
 * moves between the run check and the take-over stops the start. */
static void test_read_back(void **state)
{
	struct store *s = open_ok();
	put(s, "x", 3);
	counter++; /* someone else's increment */
	assert_int_equal(store_commit(s), SV_ERR_SUPERSEDED);
	store_close(s);
	assert_int_equal(teardown(NULL), 0);
	assert_int_equal(setup(NULL), 0);
	bump_on_change_auth = 1;
	assert_int_equal(open_refused("moved while this run started"), SV_ERR_STATE);
}

/* A crash after the start frame's fsync, before NV_ChangeAuth: the next start drops that frame
 * (the run before it is the one the TPM accepts) and starts normally; a crash after
 * NV_ChangeAuth keeps it. */
static void test_interrupted_take_over(void **state)
{
	struct store *s = open_ok();
	put(s, "y", 3);
	assert_int_equal(store_commit(s), SV_OK);
	store_close(s);
	struct store_info in;
	s = open_ok();
	store_get_info(s, &in);
	uint64_t len1 = in.journal_bytes;
	store_close(s);
	s = open_ok();
	store_get_info(s, &in);
	uint64_t len = in.journal_bytes, start_frame = len - len1;
	store_close(s);
	fail_change_auth = 1;
	struct store *t = NULL;
	assert_int_equal(store_open(&t, dir, fake, NULL, why, sizeof(why)), SV_ERR_TPM);
	assert_non_null(strstr(why, "NV_ChangeAuth"));
	fail_change_auth = 0;
	s = open_ok();
	store_get_info(s, &in);
	/* the dead start frame was dropped; this run's is in its place */
	assert_int_equal(in.journal_bytes, len + start_frame);
	assert_int_equal(used(s, "y"), 0);
	store_close(s);
	s = open_ok();
	store_close(s);
}

/* A lazy open (a tool that only looks) supersedes nobody until it writes. */
static void test_lazy_open(void **state)
{
	struct store *a = open_ok();
	put(a, "z", 3);
	assert_int_equal(store_commit(a), SV_OK);
	store_close(a);
	fork_copy();
	unsigned n = change_auths;
	struct store *l = NULL;
	assert_int_equal(store_open_lazy(&l, fork_dir, fake, NULL, why, sizeof(why)), SV_OK);
	assert_int_equal(used(l, "z"), 0);
	store_close(l);
	assert_int_equal(change_auths, n);
	a = open_ok(); /* the original is still the one the counter is bound to */
	store_close(a);
	assert_int_equal(store_open_lazy(&l, dir, fake, NULL, why, sizeof(why)), SV_OK);
	assert_int_equal(change_auths, n + 1);
	assert_int_equal(store_stage_noop(l), SV_OK);
	assert_int_equal(store_commit(l), SV_OK); /* took the counter over first */
	assert_int_equal(change_auths, n + 2);
	store_close(l);
}

/* A state directory of sealvault 0.2 is refused with a message that names the upgrade. */
static void test_old_version_refused(void **state)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/vault.hdr", dir);
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, 5, SEEK_SET), 0);
	assert_int_equal(fputc(1, f), 1);
	fclose(f);
	assert_int_equal(open_refused("sealvault 0.2"), SV_ERR_STATE);
}

static void test_bad_arguments(void **state)
{
	struct store *s = open_ok();
	uint8_t id[STORE_ID_MAX + 1], blob[STORE_BLOB_MAX];
	memset(id, 'a', sizeof(id));
	memset(blob, 'b', sizeof(blob));
	unsigned left;
	assert_int_equal(store_put_user(s, id, 0, rec, NULL, 0, 3), SV_ERR_RANGE);
	assert_int_equal(store_put_user(s, id, STORE_ID_MAX + 1, rec, NULL, 0, 3), SV_ERR_RANGE);
	assert_int_equal(store_put_user(s, id, 1, rec, blob, STORE_BLOB_MAX + 1, 3), SV_ERR_RANGE);
	assert_int_equal(store_put_user(s, id, 1, rec, NULL, 0, 0), SV_ERR_RANGE);
	assert_int_equal(store_put_user(s, id, 1, rec, NULL, 0, 256), SV_ERR_RANGE);
	assert_int_equal(store_charge_guess(s, id, 1, &left), SV_ERR_NOTFOUND);
	assert_int_equal(store_reset_guesses(s, id, 1), SV_ERR_NOTFOUND);
	assert_int_equal(store_delete_user(s, id, 1), SV_ERR_NOTFOUND);
	assert_int_equal(store_pending(s), 0);
	assert_int_equal(store_put_user(s, id, STORE_ID_MAX, rec, blob, STORE_BLOB_MAX, 255),
	                 SV_OK);
	assert_int_equal(store_commit(s), SV_OK);
	store_close(s);
	/* init refuses to overwrite */
	assert_int_equal(store_init(dir, fake, TPM_NV_INDEX_DEFAULT, 0, 0, NULL, why, sizeof(why)),
	                 SV_ERR_EXISTS);
	s = open_ok();
	struct store_user_view v;
	assert_int_equal(store_lookup(s, id, STORE_ID_MAX, &v), SV_OK);
	assert_int_equal(v.blob_len, STORE_BLOB_MAX);
	/* the longest blob (a threshold realm's record: 1024 bytes, not 512 as before) survives a
	 * snapshot as well as the journal */
	assert_int_equal(STORE_BLOB_MAX, 1024);
	assert_int_equal(store_snapshot(s), SV_OK);
	store_close(s);
	s = open_ok();
	assert_int_equal(store_lookup(s, id, STORE_ID_MAX, &v), SV_OK);
	assert_int_equal(v.blob_len, STORE_BLOB_MAX);
	assert_memory_equal(v.blob, blob, STORE_BLOB_MAX);
	store_close(s);
}

/* ---- the vault key sealed to PCRs (issue 12) ---- */

/* A fresh vault in dir sealed to PCR 16: with K's approval of "epoch" e, or plain (v NULL). */
static void approval_for(struct approval_vault *v, uint8_t epoch)
{
	static const uint8_t kpub[] = {0x00, 0x08, 0x00, 0x23, 0x00, 0x0b, 0xaa, 0xbb, 0xcc, 0xdd};
	memset(v, 0, sizeof(*v));
	memcpy(v->key.data, kpub, sizeof(kpub));
	v->key.len = sizeof(kpub);
	v->pol.boot_pcrs = 1u << 16;
	/* values chosen so that the approved digest's first byte is the epoch (the fake TPM's PCR
	 * state); the decoder recomputes the digest from them */
	for (unsigned i = 0;; i++) {
		memset(v->pol.values[0], (int)i, ATTEST_HASH_LEN);
		v->pol.values[0][1] = (uint8_t)(i >> 8);
		attest_policy_pcr(v->pol.boot_pcrs,
		                  (const uint8_t(*)[ATTEST_HASH_LEN])v->pol.values,
		                  v->pol.approved);
		if (v->pol.approved[0] == epoch)
			break;
	}
	memset(v->pol.signature.data, 0x51, 16);
	v->pol.signature.len = 16;
}

static void init_pcr_vault(const struct approval_vault *v)
{
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir '%s'", dir, dir);
	assert_int_equal(system(cmd), 0);
	counter_defined = 0;
	assert_int_equal(
	    store_init(dir, fake, TPM_NV_INDEX_DEFAULT, 1u << 16, 0, v, why, sizeof(why)), SV_OK);
}

static uint32_t seal_of(void)
{
	uint32_t mask = 0, seal = 99;
	assert_int_equal(store_read_seal(dir, &mask, &seal, why, sizeof(why)), SV_OK);
	assert_int_equal(mask, 1u << 16);
	return seal;
}

static void test_pcr_update_approved(void **state)
{
	struct approval_vault v;
	approval_for(&v, 1);
	init_pcr_vault(&v);
	assert_int_equal(seal_of(), JOURNAL_SEAL_AUTHORIZED);
	struct store *s = open_ok();
	put(s, "alice", 3);
	assert_int_equal(store_commit(s), SV_OK);
	store_close(s);
	/* an update changes PCR 16: refused, saying what to run */
	pcr_epoch = 2;
	assert_int_equal(open_refused("sealvault-admin authorize-pcrs"), SV_ERR_STATE);
	/* an approval of other values is not stored */
	approval_for(&v, 3);
	assert_int_not_equal(store_approve(dir, fake, &v, why, sizeof(why)), SV_OK);
	assert_int_equal(open_refused("no longer match"), SV_ERR_STATE);
	/* nor is one for another K */
	approval_for(&v, 2);
	v.key.data[9] ^= 1;
	assert_int_not_equal(store_approve(dir, fake, &v, why, sizeof(why)), SV_OK);
	/* the approval of the new values is */
	approval_for(&v, 2);
	assert_int_equal(store_approve(dir, fake, &v, why, sizeof(why)), SV_OK);
	s = open_ok();
	assert_int_equal(used(s, "alice"), 0);
	struct store_info in;
	store_get_info(s, &in);
	assert_int_equal(in.seal, JOURNAL_SEAL_AUTHORIZED);
	store_close(s);
	/* the approval file is needed */
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, APPROVAL_FN_VAULT);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(open_refused("vault-policy.bin is missing"), SV_ERR_STATE);
}

static void test_reseal_plain_vault(void **state)
{
	struct approval_vault v;
	int already = -1;
	init_pcr_vault(NULL); /* sealed as before issue 12 */
	assert_int_equal(seal_of(), JOURNAL_SEAL_PCR);
	struct store *s = open_ok();
	put(s, "bob", 5);
	assert_int_equal(store_commit(s), SV_OK);
	store_close(s);
	/* after an update a plain vault is refused with the way out */
	pcr_epoch = 2;
	assert_int_equal(open_refused("sealvault-admin reseal"), SV_ERR_STATE);
	approval_for(&v, 2);
	assert_int_not_equal(store_reseal(dir, fake, &v, &already, why, sizeof(why)), SV_OK);
	assert_int_equal(seal_of(), JOURNAL_SEAL_PCR);
	/* while the PCRs still match it moves to a signed policy, once */
	pcr_epoch = 1;
	approval_for(&v, 1);
	assert_int_equal(store_reseal(dir, fake, &v, &already, why, sizeof(why)), SV_OK);
	assert_int_equal(already, 0);
	assert_int_equal(seal_of(), JOURNAL_SEAL_AUTHORIZED);
	assert_int_equal(store_reseal(dir, fake, &v, &already, why, sizeof(why)), SV_OK);
	assert_int_equal(already, 1);
	/* the same key: every user is there; the next update is approved */
	pcr_epoch = 2;
	approval_for(&v, 2);
	assert_int_equal(store_approve(dir, fake, &v, why, sizeof(why)), SV_OK);
	s = open_ok();
	assert_int_equal(used(s, "bob"), 0);
	store_close(s);
	/* the tests' way back to a plain PolicyPCR (a vault as made before issue 12) */
	assert_int_equal(store_reseal(dir, fake, NULL, &already, why, sizeof(why)), SV_OK);
	assert_int_equal(seal_of(), JOURNAL_SEAL_PCR);
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, APPROVAL_FN_VAULT);
	assert_int_not_equal(access(path, F_OK), 0);
	s = open_ok();
	assert_int_equal(used(s, "bob"), 0);
	store_close(s);
}

static void test_reseal_without_pcrs(void **state)
{
	struct approval_vault v;
	int already = -1;
	approval_for(&v, 1);
	assert_int_equal(store_reseal(dir, fake, &v, &already, why, sizeof(why)), SV_ERR_CONFIG);
	assert_non_null(strstr(why, "not sealed to PCRs"));
	assert_int_equal(store_approve(dir, fake, &v, why, sizeof(why)), SV_ERR_CONFIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_commit_and_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snapshot_async, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snapshot_async_sandboxed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_increment_rolls_forward, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_then_anchor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_anchor_pipelined, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback_and_counter_ahead, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snapshot_and_interrupted_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fork_after_crash_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_runs_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_interrupted_take_over, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lazy_open, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_old_version_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pcr_update_approved, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reseal_plain_vault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reseal_without_pcrs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
