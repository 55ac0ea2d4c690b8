/*
 * The enclave's TPM: one descriptor (device or one swtpm connection, enclave/tcti-fd.h), an ESYS
 * context over it, a pinned primary key (ECC P-256, fixedTPM, noDA) and ONE salted,
 * parameter-encrypted HMAC session started at tpm_open and reused for every command that carries
 * a secret or whose answer must not be forged (unseal, sealed-object creation, NV read/increment).
 *
 * tpm_open does everything that may open files or dlopen (socket/open of the TPM, getaddrinfo,
 * OpenSSL config and provider loading, ESYS crypto) and warms up the session crypto with one
 * encrypted GetRandom, so it must be called BEFORE the seccomp filter is installed.
 *
 * Steady-state syscalls after tpm_open + store_open, measured with strace -f on a state-driver
 * run against swtpm (NV_Read, NV_Increment in the salted session, journal commits):
 *   read, write, poll            the TPM descriptor (and pwrite64, fdatasync on the journal)
 *   getrandom                    OpenSSL/libsodium randomness (session nonces, AEAD nonces)
 *   getpid                       OpenSSL's fork check, on every crypto call
 *   futex                        OpenSSL locks (uncontended)
 *   mmap, munmap, mprotect, madvise, brk, mlock, munlock
 *                                allocation (ESYS/OpenSSL per-command contexts; sodium_malloc)
 *   clock_nanosleep              only while retrying TPM_RC_NV_RATE/RETRY/YIELDED (back-off)
 *   clock_gettime                the deadline of every command (tcti-fd.h; vDSO, syscall fallback)
 *   ftruncate                    snapshots and dropping an uncommitted journal tail (store)
 *   close                        only at shutdown (tpm_close/store_close)
 * clock_gettime goes through the vDSO. No open/openat/stat/socket/connect after tpm_open: the
 * trace shows none between the warm-up and exit (ESYS' OpenSSL backend opens nothing lazily).
 * tpm_open itself needs: socket, connect, setsockopt (swtpm) or openat (device), and OpenSSL's
 * config/provider loading (openat, newfstatat, read).
 */
#ifndef SV_ENCLAVE_TPM_H
#define SV_ENCLAVE_TPM_H

#include <stddef.h>
#include <stdint.h>

#define TPM_NAME_MAX         68   /* TPM2B_NAME buffer */
#define TPM_SEALED_MAX       1024 /* marshalled TPM2B_PUBLIC || TPM2B_PRIVATE of the sealed key */
#define TPM_VAULT_KEY_LEN    32   /* the sealed vault key */
#define TPM_NV_INDEX_DEFAULT 0x01005356u /* owner range; "SV" */
#define TPM_RETRY_BUDGET_MS  60000u      /* default budget for retrying transient answers */

struct tpm;

struct tpm_stats {
	uint64_t nv_increments;   /* successful NV_Increment commands */
	uint64_t nv_change_auths; /* successful NV_ChangeAuth commands (one per run, anchor.h) */
	uint64_t retries;         /* NV_RATE/RETRY/YIELDED/NV_UNAVAILABLE answers retried */
	uint64_t gave_up;         /* commands that answered transient codes for the whole budget */
	uint64_t backoff_ns;      /* time slept between those retries */
	uint32_t nv_write_recovery_ms; /* TPM_PT_NV_WRITE_RECOVERY at tpm_open (0: not reported) */
};

/* Every TPM command has a deadline: ms milliseconds from sending it (enclave/tcti-fd.h; default
 * TCTI_FD_TIMEOUT_DEFAULT_MS, 90 s). A TPM that has not answered by then counts as hung: fn
 * (if not NULL) is called with the command's name ("TPM2_CC_NV_Increment") and the timeout and
 * may end the process (the enclave does, so that sealvaultd restarts it); if it returns, that
 * command fails and the context refuses every later one (SV_ERR_TPM). fn is also called, with
 * ms 0, when the connection to the TPM ends under a command (a dropped swtpm socket, a reset
 * resource manager): the TPM may or may not have run it. Applies to the tpm_open calls that
 * follow. */
typedef void (*tpm_timeout_fn)(const char *command, unsigned ms);
void tpm_set_timeout(unsigned ms, tpm_timeout_fn fn);

/* tcti: "device:/dev/tpmrm0" or "swtpm:host=H,port=P". On failure returns a negative SV_ERR_*
 * and a one-line reason in why. */
int tpm_open(struct tpm **out, const char *tcti, char *why, size_t why_len)
    __attribute__((warn_unused_result));
void tpm_close(struct tpm *t);

/* The primary key's name (to be pinned in the state header and compared on every start). */
int tpm_primary_name(const struct tpm *t, uint8_t out[TPM_NAME_MAX], size_t *len)
    __attribute__((warn_unused_result));

/* A policy approved by the policy key K (TPM2_PolicyAuthorize, docs/attestation.md): a PolicyPCR
 * over pcrs at the values K approved (their digest is `approved`), or, with pcrs 0, a
 * PolicyCommandCode; K's public area and its signature over SHA-256(approved || ref). The
 * vault identity key (enclave/attest.c, empty ref) and the vault key sealed to PCRs (ref
 * ATTEST_REF_VAULT_KEY) are both authorized this way. */
struct tpm_approval {
	uint32_t pcrs;           /* SHA-256 PCRs of the approved PolicyPCR; 0: PolicyCommandCode */
	const uint8_t *approved; /* TPM_DIGEST_LEN bytes */
	const uint8_t *ref;      /* policyRef, ref_len bytes (0: empty) */
	size_t ref_len;
	const uint8_t *key; /* K: marshalled TPM2B_PUBLIC */
	size_t key_len;
	const uint8_t *sig; /* K's signature: marshalled TPMT_SIGNATURE */
	size_t sig_len;
};
#define TPM_DIGEST_LEN 32

/* Starts a policy session and satisfies an approved policy in it: PolicyPCR(a->pcrs) (with
 * a->pcrs 0: PolicyCommandCode(cc)), then, unless a is only a PCR selection (a->approved NULL),
 * PolicyAuthorize with the ticket of TPM2_VerifySignature of a->sig by K. salted: the session is
 * salted by the storage primary with AES-CFB response encryption and ends with the command it
 * authorizes (for Unseal); otherwise the caller flushes it. *sess is an ESYS_TR. SV_ERR_STATE when
 * the PCRs do not hold the approved values, SV_ERR_INVALID when K or the signature does not parse,
 * SV_ERR_TPM otherwise (e.g. a signature K did not make). */
int tpm_policy_session(struct tpm *t, const struct tpm_approval *a, uint32_t cc, int salted,
                       uint32_t *sess) __attribute__((warn_unused_result));

/* Creates a new random vault key sealed under the primary (noDA, fixedTPM). The key comes from
 * the TPM's RNG (encrypted GetRandom) mixed with the host RNG, and is sealed through the salted
 * session with command-parameter encryption. The sealed object's authPolicy (policy only, no auth
 * value): `policy` (TPM_DIGEST_LEN bytes, e.g. PolicyAuthorize(K) with a policyRef) when not
 * NULL; else, with pcr_mask (bit i = PCR i of the SHA-256 bank, 0..23) non-zero, a plain PolicyPCR
 * over those PCRs' current values (how vault keys were sealed before signed PCR policies); else
 * none. Returns the key and the blob to store. */
int tpm_seal_new(struct tpm *t, uint32_t pcr_mask, const uint8_t *policy,
                 uint8_t key[TPM_VAULT_KEY_LEN], uint8_t *blob, size_t blob_max, size_t *blob_len)
    __attribute__((warn_unused_result));
/* The same for a given key (sealvault-admin reseal moves a vault key to another policy). */
int tpm_seal_key(struct tpm *t, uint32_t pcr_mask, const uint8_t *policy,
                 const uint8_t key[TPM_VAULT_KEY_LEN], uint8_t *blob, size_t blob_max,
                 size_t *blob_len) __attribute__((warn_unused_result));
/* Loads the blob under the primary and unseals it with response encryption, for a PCR policy in
 * a salted policy session: with `approved` (not NULL) PolicyPCR(approved->pcrs) +
 * PolicyAuthorize, else a plain PolicyPCR(pcr_mask) when pcr_mask is non-zero. SV_ERR_STATE when
 * the PCRs do not hold the values `approved` approved; SV_ERR_TPM when the TPM refuses (wrong
 * TPM, damaged blob, plain-policy PCRs changed); SV_ERR_INVALID when the blob does not parse;
 * SV_ERR_BUSY when the TPM has no free object slot (a temporary shortage: another client holds
 * them). */
int tpm_unseal(struct tpm *t, uint32_t pcr_mask, const struct tpm_approval *approved,
               const uint8_t *blob, size_t blob_len, uint8_t key[TPM_VAULT_KEY_LEN])
    __attribute__((warn_unused_result));

/* The NV counter. Only enclave/anchor.c calls these (it owns what the counter means).
 *
 * Defines an NV counter at index (owner hierarchy, empty owner auth, empty auth value, noDA),
 * plain or, with orderly, TPMA_NV_ORDERLY (a hybrid counter: increments stay in TPM RAM and
 * reach NV when the bits under TPM_PT_ORDERLY_COUNT roll over; after a power cut the counter
 * reads as its last NV copy with those bits set). Its authPolicy allows exactly one command,
 * NV_ChangeAuth: whoever can reach the TPM may rebind the counter to a new auth value, and from
 * then on only the holder of that value can read it through tpm_counter_read or increment it.
 * SV_ERR_EXISTS if the index is already defined. */
int tpm_counter_define(struct tpm *t, uint32_t index, int orderly)
    __attribute__((warn_unused_result));
/* TPM_PT_ORDERLY_COUNT: the most increments an orderly counter's RAM value may be ahead of its
 * NV copy (255 on libtpms; vendor-specific). */
int tpm_orderly_count(struct tpm *t, uint32_t *max) __attribute__((warn_unused_result));
int tpm_counter_undefine(struct tpm *t, uint32_t index) __attribute__((warn_unused_result));
/* What is at an NV index: nothing, a counter with exactly the public area tpm_counter_define
 * gives (plain or orderly) (attributes and ChangeAuth policy; a sealvault counter, this vault's or
 * another's), or anything else. For sealvault-admin upgrade, which must only ever remove what it
 * created. */
enum { TPM_COUNTER_ABSENT = 0, TPM_COUNTER_SEALVAULT = 1, TPM_COUNTER_OTHER = 2 };
int tpm_counter_probe(struct tpm *t, uint32_t index, int *shape)
    __attribute__((warn_unused_result));
/* Binds the handle of index for the commands below (replacing the one of another index);
 * SV_ERR_NOTFOUND if it does not exist. The
 * index name (hash of its public area: attributes, policy, size, index) is returned for pinning.
 * The auth value used with it starts empty. */
int tpm_counter_attach(struct tpm *t, uint32_t index, uint8_t name[TPM_NAME_MAX], size_t *name_len)
    __attribute__((warn_unused_result));
/* Sets the auth value the commands below present for the counter (no TPM command). */
int tpm_counter_set_auth(struct tpm *t, const uint8_t *auth, size_t len)
    __attribute__((warn_unused_result));
/* NV_ChangeAuth to auth (at most 32 bytes), sent encrypted in the salted session, through a
 * policy session for the counter's ChangeAuth-only policy; then presents auth from now on.
 * One NV write. Transient codes retried as for tpm_counter_increment (SV_ERR_BUSY likewise). */
int tpm_counter_change_auth(struct tpm *t, const uint8_t *auth, size_t len)
    __attribute__((warn_unused_result));
/* Reads the counter through the salted session (a forged answer fails the response HMAC).
 * SV_ERR_NOTFOUND when the counter was never incremented; SV_ERR_AUTH when the TPM refuses the
 * auth value (the counter was rebound by someone else). */
int tpm_counter_read(struct tpm *t, uint64_t *value) __attribute__((warn_unused_result));
/* Reads the counter with owner authorization (empty owner auth) in a password session: cheap,
 * but the answer is not authenticated, so a bus interposer could forge it. Only for what a
 * forged answer cannot turn into a guess: the message about a refused copy, and the read-back
 * after an increment, whose mismatch stops the vault (anchor_advance). */
int tpm_counter_read_owner(struct tpm *t, uint64_t *value) __attribute__((warn_unused_result));
/* One NV_Increment; TPM_RC_NV_RATE, RETRY, YIELDED, NV_UNAVAILABLE and TESTING are retried
 * with back-off (1 ms doubling to 256 ms; after NV_RATE the TPM's TPM_PT_NV_WRITE_RECOVERY when
 * it reports one) for up to the retry budget (60 s, tpm_set_retry_budget). SV_ERR_AUTH when the
 * TPM refuses the auth value; SV_ERR_BUSY when it still answered a transient code when the
 * budget ran out: the increment was NOT executed (those codes mean the TPM did not run the
 * command) and may be tried again later. */
int tpm_counter_increment(struct tpm *t) __attribute__((warn_unused_result));
/* The retry budget of tpm_counter_increment and tpm_counter_change_auth (default
 * TPM_RETRY_BUDGET_MS; 0: one try, no sleep). */
void tpm_set_retry_budget(struct tpm *t, unsigned ms);

void tpm_get_stats(const struct tpm *t, struct tpm_stats *out);

/* For enclave/attest.c, which builds on this context: the ESYS context, the storage primary's
 * ESYS handle and the salted HMAC session (ESYS_TR values). */
struct ESYS_CONTEXT;
struct ESYS_CONTEXT *tpm_esys(struct tpm *t, uint32_t *primary, uint32_t *session);

#endif
