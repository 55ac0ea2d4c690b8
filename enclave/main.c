/*
 * sealvault-enclave: the vault process. Started by sealvaultd with the broker link on fd 3, the
 * audit link on fd 4 (enclave/audit.h) and the admin pair (enclave/adminsrv.h) on fd 5. It opens
 * the TPM and the state directory, unseals the vault, closes everything else, installs its
 * kill-by-default seccomp filter, and then only reads and writes descriptors it already holds.
 *
 * The serve loop (group commit, the NV-write budget, a TPM that throttles NV writes) is
 * enclave/serve.c. A TPM that misbehaves for longer (issue 12): every TPM command has a deadline
 * (--tpm-timeout); a TPM that misses it ends the process with SV_EXIT_TPM_UNAVAILABLE, and
 * sealvaultd restarts the pair with back-off. See sealvault-enclave(8).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/info.h"
#include "common/msg.h"
#include "enclave/access.h"
#include "enclave/realm.h"
#include "enclave/adminsrv.h"
#include "enclave/attestsrv.h"
#include "enclave/audit.h"
#include "enclave/budget.h"
#include "enclave/capacity.h"
#include "enclave/dispatch.h"
#include "enclave/journal.h"
#include "enclave/sandbox.h"
#include "enclave/serve.h"
#include "enclave/store.h"
#include "enclave/tcti-fd.h"
#include "enclave/tpm.h"
#include "enclave/vault.h"
#include "enclave/vaultreq.h"
#include "policy/seccomp.h"
#include "policy/vault.h"

#define DEFAULT_CONTEXT "sealvault-v1"
#define CONTEXT_MAX     1024

struct options {
	const char *state_dir;
	const char *tpm;
	const char *context;
	const char *daemon_bin; /* hashed into the attestation statement (build_hash) */
	const char *broker_bin;
	const char *tenants_dir; /* tenant JWK Sets (enclave/tenant.h), read in tokens mode */
	unsigned tpm_timeout_s;  /* deadline of every TPM command */
	uint64_t restarts, tpm_timeouts; /* counted by sealvaultd, for /metrics */
	int audit_link;                  /* audit records to sealvaultd on SANDBOX_AUDIT_FD */
	uint64_t max_users;              /* 0: derived at start (enclave/capacity.h) */
	struct sv_vault_policy policy;
};

static const char usage[] =
    "usage: sealvault-enclave --state-dir DIR --tpm TCTI [--context STRING]\n"
    "       [--policy KEY=VALUE]... [--daemon-bin PATH] [--broker-bin PATH]\n"
    "       [--tpm-timeout SECONDS] [--restarts N] [--tpm-timeouts N] [--audit-link]\n"
    "       [--tenants-dir DIR] [--max-users N|auto]\n"
    "Started by sealvaultd(8) with the broker link on descriptor 3 and, with --audit-link, the\n"
    "audit link on descriptor 4; see sealvault-enclave(8).\n";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("sealvault-enclave: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* A vault key sealed with --pcrs before issue 12 (a plain PolicyPCR) serves, but the next update
 * that changes those PCRs would strand it: say what to run while they still match. */
static void warn_plain_pcrs(const struct store *store, const char *dir)
{
	struct store_info in;
	store_get_info(store, &in);
	if (in.pcr_mask != 0 && in.seal != JOURNAL_SEAL_AUTHORIZED)
		fprintf(
		    stderr,
		    "sealvault-enclave: warning: the vault key is sealed with a plain PCR policy "
		    "(PCR mask 0x%06x): the next firmware, boot loader or kernel update that "
		    "changes "
		    "those PCRs strands it and every user's backup; stop the vault and run "
		    "sealvault-admin reseal --state-dir %s --tpm TCTI --policy-key FILE now, while "
		    "they still match (docs/operations.md \"Firmware and kernel updates\")\n",
		    in.pcr_mask, dir);
}

/* tpm_set_timeout's hook: a hung TPM, or a lost connection to it, ends the process (nothing
 * unanchored was answered: the command in flight is the one everything waits for), and sealvaultd
 * restarts it; the next start judges the NV counter against the journal either way. */
static void on_tpm_timeout(const char *command, unsigned ms)
{
	if (ms == 0) {
		fprintf(stderr,
		        "sealvault-enclave: the connection to the TPM ended during %s; exiting "
		        "(sealvaultd restarts the vault with back-off)\n",
		        command);
		_exit(SV_EXIT_TPM_UNAVAILABLE);
	}
	fprintf(stderr,
	        "sealvault-enclave: the TPM did not answer %s within %u s; exiting (sealvaultd "
	        "restarts the vault with back-off)\n",
	        command, (ms + 999) / 1000);
	_exit(SV_EXIT_TPM_UNAVAILABLE);
}

/* A decimal number within lo..hi, or die naming the option. */
static uint64_t number(const char *opt, const char *v, uint64_t lo, uint64_t hi)
{
	char *end = NULL;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || errno != 0 || *end != '\0' || n < lo || n > hi)
		die("--%s takes a number from %llu to %llu, not '%s'", opt, (unsigned long long)lo,
		    (unsigned long long)hi, v);
	return n;
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"state-dir", required_argument, NULL, 's'},
	    {"tpm", required_argument, NULL, 't'},
	    {"context", required_argument, NULL, 'c'},
	    {"policy", required_argument, NULL, 'p'},
	    {"daemon-bin", required_argument, NULL, 'D'},
	    {"broker-bin", required_argument, NULL, 'B'},
	    {"tpm-timeout", required_argument, NULL, 'T'},
	    {"restarts", required_argument, NULL, 'R'},
	    {"tpm-timeouts", required_argument, NULL, 'O'},
	    {"audit-link", no_argument, NULL, 'A'},
	    {"tenants-dir", required_argument, NULL, 'N'},
	    {"max-users", required_argument, NULL, 'M'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char why[256];
	int c;
	memset(o, 0, sizeof(*o));
	o->context = DEFAULT_CONTEXT;
	o->tenants_dir = TENANT_DIR_DEFAULT;
	o->tpm_timeout_s = TCTI_FD_TIMEOUT_DEFAULT_MS / 1000;
	policy_vault_defaults(&o->policy);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->state_dir = optarg; break;
		case 't': o->tpm = optarg; break;
		case 'c': o->context = optarg; break;
		case 'p': {
			char *eq = strchr(optarg, '=');
			if (eq == NULL)
				die("--policy takes KEY=VALUE, not '%s'", optarg);
			*eq = '\0';
			if (policy_vault_set(&o->policy, optarg, eq + 1, why, sizeof(why)) != 0)
				die("%s", why);
			break;
		}
		case 'D': o->daemon_bin = optarg; break;
		case 'B': o->broker_bin = optarg; break;
		case 'T':
			o->tpm_timeout_s = (unsigned)number("tpm-timeout", optarg, 1,
			                                    TCTI_FD_TIMEOUT_MAX_MS / 1000);
			break;
		case 'R': o->restarts = number("restarts", optarg, 0, UINT32_MAX); break;
		case 'O': o->tpm_timeouts = number("tpm-timeouts", optarg, 0, UINT32_MAX); break;
		case 'A': o->audit_link = 1; break;
		case 'N': o->tenants_dir = optarg; break;
		case 'M':
			if (capacity_parse(optarg, &o->max_users) != 0)
				die("--max-users takes auto or a number from 1 to %llu, not '%s'",
				    (unsigned long long)CAPACITY_MAX_USERS, optarg);
			break;
		case 'h': fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); exit(2);
		}
	}
	if (optind != argc || o->state_dir == NULL || o->tpm == NULL) {
		fputs(usage, stderr);
		exit(2);
	}
	if (strlen(o->context) > CONTEXT_MAX)
		die("--context is longer than %d bytes", CONTEXT_MAX);
	if (policy_vault_check(&o->policy, why, sizeof(why)) != 0)
		die("%s", why);
}

/* The audit trail's start: the key for identifier hashes, what the store judged at open, and the
 * power-cut penalty when this open charged one (enclave/audit.h). */
static void audit_start(const struct store *store)
{
	struct store_info in;
	struct store_stats st;
	uint8_t key[STORE_AUDIT_KEY_LEN];
	_Static_assert(STORE_AUDIT_KEY_LEN == AUDIT_KEY_LEN, "audit key sizes");
	store_get_info(store, &in);
	store_get_stats(store, &st);
	struct audit_record start = {.kind = AUDIT_STARTUP,
	                             .counter = st.counter,
	                             .verdict = in.penalty_charged ? AUDIT_POWER_CUT
	                                        : in.roll_forward  ? AUDIT_ROLL_FORWARD
	                                                           : AUDIT_CLEAN,
	                             .hybrid = st.orderly_mask != 0,
	                             .penalty = in.penalty_charged != 0,
	                             .frames = in.journal_frames,
	                             .journal_bytes = in.journal_bytes,
	                             .tail_bytes = in.tail_bytes,
	                             .users = st.users};
	struct audit_record pen = {.kind = AUDIT_PENALTY,
	                           .counter = st.counter,
	                           .users = st.users,
	                           .unclean_boots = st.unclean_boots,
	                           .destroyed = in.penalty_destroyed};
	store_audit_key(store, key);
	audit_started(key, &start, in.penalty_charged ? &pen : NULL);
	sodium_memzero(key, sizeof(key));
}

/* GET /v1/info (common/info.h): everything in it is fixed for the life of the process. */
static int set_info(struct dispatch *d, const struct options *o, const uint8_t pk[INFO_PK_LEN])
{
	struct sv_info in = {.context_len = strlen(o->context),
	                     .guess_default = o->policy.default_guess_limit,
	                     .guess_max = o->policy.max_guess_limit,
	                     .versions = {VAULTREQ_VERSION},
	                     .n_versions = 1,
	                     .ksf_t = INFO_KSF_T,
	                     .ksf_m_kib = INFO_KSF_M_KIB};
	struct sv_buf b;
	_Static_assert(CONTEXT_MAX <= INFO_CONTEXT_MAX, "a --context that /v1/info cannot carry");
	snprintf(in.suite, sizeof(in.suite), "%s", INFO_SUITE);
	memcpy(in.context, o->context, in.context_len);
	memcpy(in.server_pk, pk, INFO_PK_LEN);
	info_vault_id(in.vault_id, pk);
	int r = sv_buf_init(&b, INFO_JSON_MAX);
	if (r != 0)
		return r;
	r = info_encode(&in, &b);
	if (r == 0)
		r = dispatch_set_info(d, b.data, b.len);
	sv_buf_free(&b);
	return r;
}

/* The access check (enclave/access.h), before the sandbox: in tokens mode the tenants' JWK Sets
 * are read and their keys prepared now, and tokens must name this vault's id (GET /v1/info's
 * vault_id) as aud. A change of tenants takes effect at the next start. */
static struct access *access_setup(const struct options *o, const uint8_t pk[INFO_PK_LEN])
{
	struct tenant_set set = {0};
	struct token_policy tp = {.max_lifetime_s = o->policy.token_max_lifetime_s,
	                          .skew_s = o->policy.token_clock_skew_s};
	struct access *a = NULL;
	uint8_t id[INFO_VAULT_ID_LEN];
	char why[512];
	if (o->policy.auth == POLICY_AUTH_OPEN) {
		fprintf(stderr,
		        "sealvault-enclave: warning: auth = open: no access token is asked for, so "
		        "anyone who knows an identifier can register it or spend its guesses; set "
		        "auth = tokens (docs/tokens.md)\n");
		if (access_new(&a, ACCESS_OPEN, NULL, NULL) != 0)
			die("cannot set up the access check: out of memory");
		return a;
	}
	info_vault_id(id, pk);
	_Static_assert(2 * INFO_VAULT_ID_LEN < sizeof(tp.aud), "the vault id does not fit aud");
	sodium_bin2hex(tp.aud, sizeof(tp.aud), id, sizeof(id));
	if (tenant_set_load_dir(&set, o->tenants_dir, why, sizeof(why)) != 0)
		die("refusing to serve: the tenants in %s: %s", o->tenants_dir, why);
	size_t n = set.n;
	if (access_new(&a, ACCESS_TOKENS, &set, &tp) != 0)
		die("cannot set up the access check");
	if (n == 0)
		fprintf(stderr,
		        "sealvault-enclave: warning: auth = tokens but %s holds no tenant: every "
		        "vault request is refused until one is added (sealvault-admin tenant add) "
		        "and the vault restarted\n",
		        o->tenants_dir);
	else
		fprintf(stderr,
		        "sealvault-enclave: auth = tokens, %zu tenant(s) from %s, vault id %s\n", n,
		        o->tenants_dir, tp.aud);
	return a;
}

int main(int argc, char **argv)
{
	struct options o;
	struct tpm *tpm = NULL;
	struct store *store = NULL;
	struct vault *vault = NULL;
	struct dispatch *d = NULL;
	char why[512];
	int admin_fd = -1;

	if (sandbox_harden(why, sizeof(why)) != 0)
		die("%s", why);
	/* a reply to a broker that has gone must end in a message and exit 1, not a silent SIGPIPE
	 * (rt_sigaction is not allowed once the filter is in, so this is set now) */
	signal(SIGPIPE, SIG_IGN);
	parse(argc, argv, &o);
	if (sandbox_check_ipc(SANDBOX_IPC_FD, why, sizeof(why)) != 0 ||
	    sandbox_close_inherited(o.audit_link, &admin_fd, why, sizeof(why)) != 0 ||
	    audit_open(o.audit_link ? SANDBOX_AUDIT_FD : -1, 2 * (size_t)o.policy.max_batch, why,
	               sizeof(why)) != 0)
		die("%s", why);
	if (sodium_init() < 0)
		die("cannot initialise libsodium");
	/* tpm2-tss 3.2 creates a fresh OSSL_LIB_CTX for every hash, HMAC and nonce of a session
	 * (several per TPM command), and OpenSSL 3.0 fills each new context's name map by walking
	 * the legacy cipher and digest name tables: two thirds of the CPU of a salted NV
	 * increment. The enclave fetches algorithms by name and never looks up legacy aliases
	 * (EVP_get_digestbyname), so those tables are left empty. Must precede any other OpenSSL
	 * call. */
	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
	                            OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
	                        NULL) != 1)
		die("cannot initialise OpenSSL");
	tpm_set_timeout(o.tpm_timeout_s * 1000, on_tpm_timeout);
	if (tpm_open(&tpm, o.tpm, why, sizeof(why)) != 0)
		die("cannot open the TPM (%s): %s", o.tpm, why);
	if (store_open(&store, o.state_dir, tpm, &o.policy, why, sizeof(why)) != 0) {
		struct tpm_stats st;
		tpm_get_stats(tpm, &st);
		if (st.gave_up > 0) {
			/* throttled NV writes, not a refusal: worth a restart with back-off */
			fprintf(
			    stderr,
			    "sealvault-enclave: refusing to serve: %s (the TPM throttles NV "
			    "writes; exiting so that sealvaultd starts the vault again later)\n",
			    why);
			exit(SV_EXIT_TPM_UNAVAILABLE);
		}
		audit_refused();
		die("refusing to serve: %s", why);
	}
	audit_start(store);
	warn_plain_pcrs(store, o.state_dir);
	/* The attestation statement: EK check, build_hash (sealvaultd and the broker default to
	 * this program's directory, as in a build tree), signed once by the identity key. */
	char self_dir[4096], dbin[4200], bbin[4200];
	ssize_t sl = readlink("/proc/self/exe", self_dir, sizeof(self_dir) - 1);
	self_dir[sl > 0 ? sl : 0] = '\0';
	char *slash = strrchr(self_dir, '/');
	if (slash != NULL)
		*slash = '\0';
	snprintf(dbin, sizeof(dbin), "%s/sealvaultd", self_dir);
	snprintf(bbin, sizeof(bbin), "%s/sealvault-broker", self_dir);
	const char *bins[ATTEST_NBINARIES] = {o.daemon_bin ? o.daemon_bin : dbin, "/proc/self/exe",
	                                      o.broker_bin ? o.broker_bin : bbin};
	uint8_t policy_hash[ATTEST_HASH_LEN], tenants[TENANT_DIGEST_LEN];
	struct attestsrv *attest = NULL;
	struct access *access = access_setup(&o, store_secrets(store)->ake_pk);
	access_digest(access, tenants);
	policy_vault_hash_tenants(&o.policy, tenants, policy_hash);
	if (attestsrv_open(&attest, tpm, o.state_dir, bins, store_secrets(store)->ake_pk,
	                   policy_hash, why, sizeof(why)) != 0)
		die("refusing to serve: %s", why);
	struct capacity cap;
	if (capacity_probe(&cap, o.max_users, store_records(store), "", why, sizeof(why)) != 0)
		die("%s", why);
	capacity_report(&cap, store_records(store));
	struct vault_config vc = {.context = (const uint8_t *)o.context,
	                          .context_len = strlen(o.context),
	                          .policy = &o.policy,
	                          .access = access,
	                          .max_users = cap.max_users,
	                          .max_users_source = capacity_source_name(cap.source)};
	int r = vault_new(&vault, store, &vc);
	if (r == 0)
		r = dispatch_new(&d, vault, store);
	if (r != 0)
		die("cannot set up the vault: %s", sv_strerror(r));
	/* the realm side of threshold realms (docs/realms.md): named by this vault's vault_id */
	struct realm_srv *realm = NULL;
	uint8_t realm_id[INFO_VAULT_ID_LEN];
	info_vault_id(realm_id, store_secrets(store)->ake_pk);
	if ((r = realm_srv_new(&realm, vault, realm_id)) != 0)
		die("cannot set up the realm side: %s", sv_strerror(r));
	dispatch_set_realm(d, realm);
	dispatch_set_attest(d, attestsrv_handle, attest);
	if ((r = set_info(d, &o, store_secrets(store)->ake_pk)) != 0)
		die("cannot describe the vault for GET /v1/info: %s", sv_strerror(r));
	/* The NV-write budget: nv-writes-per-day 0 means automatic, 100 for the hybrid scheme and
	 * unlimited for the plain one (each of its commits is an NV write: a budget would cap its
	 * guesses per day; set one explicitly to cap its wear). The start's NV_ChangeAuth is spent
	 * at once. */
	struct store_stats st;
	store_get_stats(store, &st);
	unsigned per_day = o.policy.nv_writes_per_day;
	if (per_day == 0)
		per_day = st.orderly_mask != 0 ? POLICY_NV_WRITES_PER_DAY_HYBRID : 0;
	struct budget bud;
	budget_init(&bud, per_day, o.policy.nv_writes_burst, st.orderly_mask, mono_us());
	budget_spend(&bud, 1.0, mono_us());
	dispatch_set_budget(d, &bud, per_day);
	if (st.orderly_mask != 0)
		fprintf(stderr,
		        "sealvault-enclave: hybrid NV counter (an NV write every %llu increments); "
		        "NV-write budget %u per day, burst %u\n",
		        (unsigned long long)st.orderly_mask + 1, per_day, o.policy.nv_writes_burst);
	else
		fprintf(stderr,
		        "sealvault-enclave: plain NV counter: every commit is an NV write (%s); "
		        "migrate it to the hybrid counter to save the TPM: sealvault-admin upgrade "
		        "--counter-scheme hybrid (docs/operations.md \"NV wear\")\n",
		        per_day == 0 ? "no NV-write budget" : "NV-write budget set");
	dispatch_set_tpm(d, tpm, o.restarts, o.tpm_timeouts);
	/* the serve loop's TPM thread: started now, the filter allows no new thread */
	struct serve *sv = NULL;
	if (serve_new(&sv, vault, store, d, tpm, &o.policy, &bud, why, sizeof(why)) != 0)
		die("cannot set up the serve loop: %s", why);
	int fl = fcntl(SANDBOX_IPC_FD, F_GETFL);
	if (fl < 0 || fcntl(SANDBOX_IPC_FD, F_SETFL, fl | O_NONBLOCK) != 0)
		die("cannot make the broker link non-blocking: %s", strerror(errno));
	/* sealvault-admin status and delete while the vault runs, through sealvaultd (fd 5) */
	struct adminsrv *admin = NULL;
	if (admin_fd >= 0 &&
	    ((fl = fcntl(admin_fd, F_GETFL)) < 0 || fcntl(admin_fd, F_SETFL, fl | O_NONBLOCK) != 0))
		die("cannot make the admin link non-blocking: %s", strerror(errno));
	if (adminsrv_new(&admin, admin_fd, store, &bud, o.state_dir) != 0)
		die("out of memory for the admin link");
	serve_set_admin(sv, admin);
	store_keep_threads(store); /* its snapshot thread cannot end under the filter */
	if (sandbox_lockdown(o.audit_link, why, sizeof(why)) != 0)
		die("refusing to run without a sandbox: %s", why);
	if (policy_seccomp_test_hook("enclave") != 0)
		exit(1);
	serve_run(sv);
	fprintf(stderr, "sealvault-enclave: the broker closed the link; exiting\n");
	serve_free(sv);
	adminsrv_free(admin);
	dispatch_free(d);
	attestsrv_free(attest);
	realm_srv_free(realm);
	vault_free(vault);
	access_free(access);
	store_close(store);
	tpm_close(tpm);
	return 1;
}
