# enclave/: the vault process — TPM and durable state, vault handlers, main and sandbox.
# Each engineer keeps to their own section below; append, don't rewrite.

# --- TPM and durable state: tpm, tcti-fd, journal, store (TPM/state engineer) ---
STATE_SRCS := enclave/tpm.c enclave/approval.c enclave/tcti-fd.c enclave/journal.c enclave/anchor.c enclave/budget.c enclave/store.c enclave/store_open.c enclave/store_init.c enclave/store_upgrade.c enclave/store_snapshot.c
STATE_OBJS := $(STATE_SRCS:%.c=$(B)/%.o)
$(B)/libsvstate.a: $(STATE_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
UT_ARCHIVES := $(B)/libsvstate.a $(UT_ARCHIVES)
# tests/unit/test_tpm.c fakes the TPM: these calls of enclave/tpm.c go to __wrap_* in the test.
UT_WRAP_tpm := tcti_fd_connect tcti_fd_new tcti_fd_free Esys_Initialize Esys_Finalize \
	Esys_Startup Esys_CreatePrimary Esys_TR_GetName Esys_StartAuthSession \
	Esys_TRSess_SetAttributes Esys_GetRandom Esys_FlushContext Esys_TR_FromTPMPublic \
	Esys_NV_Increment nanosleep Esys_PolicyCommandCode Esys_NV_ChangeAuth Esys_TR_SetAuth \
	Esys_GetCapability
# tests/unit/test_tcti_fd.c: the TCTI alone, on a socketpair (its deadline, a TPM that never answers).
UT_OBJS_tcti_fd := $(B)/enclave/tcti-fd.o $(B)/libsvcommon.a
# tests/unit/test_store.c runs the store on real files with an in-memory TPM.
UT_WRAP_store := tpm_primary_name tpm_counter_define tpm_counter_undefine tpm_counter_attach \
	tpm_counter_read tpm_counter_read_owner tpm_counter_increment tpm_counter_set_auth \
	tpm_counter_change_auth tpm_seal_new tpm_seal_key tpm_unseal
# libFuzzer target for the journal, snapshot and state-header decoders (tests/fuzz/build.mk).
FUZZ_TARGETS += journal
FUZZ_SRCS_journal := enclave/journal.c common/buf.c common/err.c

# --- vault: request handlers, pending logins, phantom counters, request decoders (vault engineer) ---
VAULT_SRCS := enclave/vault.c enclave/access.c enclave/session.c enclave/phantom.c \
	enclave/vaultreq.c enclave/audit.c enclave/idlimit.c enclave/realm.c
VAULT_OBJS := $(VAULT_SRCS:%.c=$(B)/%.o)
$(B)/libsvvault.a: $(VAULT_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
# Dependents first: the vault needs the state (store) and crypto archives, so it goes before them.
UT_ARCHIVES := $(B)/libsvvault.a $(UT_ARCHIVES)
# test_vault brings its own in-memory store (no TPM), so it links no state archive.
UT_OBJS_vault := $(B)/libsvvault.a $(B)/libsvtoken.a $(B)/libsvcrypto.a $(B)/libsvpolicy.a \
	$(B)/libsvcommon.a
UT_OBJS_idlimit := $(B)/libsvvault.a $(B)/libsvcommon.a
# test_realm_srv: the realm side on three in-memory fake stores, tokens minted with admin/jwk.c.
UT_OBJS_realm_srv := $(B)/libsvvault.a $(B)/admin/jwk.o $(B)/libsvtoken.a $(B)/libsvcrypto.a \
	$(B)/libsvpolicy.a $(B)/libsvcommon.a
# ... with audit_note wrapped, to see the kinds of the audit records the handlers note.
UT_WRAP_realm_srv := audit_note
# libFuzzer targets, one per request body decoder (generic rules: tests/fuzz/build.mk).
VAULT_FUZZ := vault_register_start vault_register_finish vault_login_start vault_login_finish \
	vault_change_finish
FUZZ_TARGETS += $(VAULT_FUZZ)
$(foreach t,$(VAULT_FUZZ),$(eval FUZZ_SRCS_$(t) := enclave/vaultreq.c common/buf.c common/err.c))
# The whole handler on the in-memory fake store (tests/lib/fake_store.h), with a real client.
FUZZ_TARGETS += vault_handle
FUZZ_SRCS_vault_handle := $(VAULT_SRCS) enclave/tenant.c enclave/token.c $(CRYPTO_SRCS) \
	policy/vault.c common/buf.c common/err.c common/audit.c common/frame.c common/msg.c
FUZZ_PKGS_vault_handle := json-c openssl
# The realm side's handlers (enclave/realm.c) on the same fake store, with a real registration.
FUZZ_TARGETS += realm_handle
FUZZ_SRCS_realm_handle := $(FUZZ_SRCS_vault_handle)
FUZZ_PKGS_realm_handle := json-c openssl

# --- access tokens: tenants' JWK Sets and JWT verification (issue 13) ---
# Pure modules (no file access during verification), also linked by sealvault-admin (tenant,
# token) and bench-crypto (token-verify/ke2).
TOKEN_SRCS := enclave/tenant.c enclave/token.c
TOKEN_OBJS := $(TOKEN_SRCS:%.c=$(B)/%.o)
TOKEN_PKGS := libsodium json-c openssl
$(foreach s,$(TOKEN_SRCS),$(eval EXTRA_CFLAGS_$(subst /,_,$(s:%.c=%)) := $$(call pc_cflags,$(TOKEN_PKGS))))
$(B)/libsvtoken.a: $(TOKEN_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
UT_ARCHIVES := $(B)/libsvtoken.a $(UT_ARCHIVES)
# libFuzzer target over the parser and verifier with a fixed tenant set (tests/fuzz/fuzz_token.c).
FUZZ_TARGETS += token
FUZZ_SRCS_token := $(TOKEN_SRCS) common/err.c
FUZZ_PKGS_token := json-c openssl
# tests/unit/test_access.c: the access check of a request (enclave/access.c), with tokens minted
# by admin/jwk.c for in-test tenants.
UT_OBJS_access := $(B)/enclave/access.o $(B)/admin/jwk.o $(B)/libsvtoken.a $(B)/libsvcommon.a

# --- sealvault-enclave: main (start-up, serve loop), dispatch table, sandbox (process engineer) ---
ENCLAVE_SRCS := enclave/main.c enclave/serve.c enclave/dispatch.c enclave/sandbox.c enclave/drain.c \
	enclave/adminsrv.c enclave/capacity.c
ENCLAVE_OBJS := $(ENCLAVE_SRCS:%.c=$(B)/%.o)
ENCLAVE_PKGS := libsodium openssl tss2-esys tss2-mu tss2-rc libseccomp json-c
ENCLAVE_ARCHIVES := $(B)/libsvvault.a $(B)/libsvtoken.a $(B)/libsvattest.a $(B)/libsvstate.a $(B)/libsvcrypto.a $(B)/libsvseccomp.a \
	$(B)/libsvpolicy.a $(B)/libsvcommon.a
BINS += $(B)/sealvault-enclave
INSTALL_LIBEXEC += $(B)/sealvault-enclave
INSTALL_MAN += enclave/sealvault-enclave.8
$(foreach s,$(ENCLAVE_SRCS),$(eval EXTRA_CFLAGS_$(subst /,_,$(s:%.c=%)) := $$(call pc_cflags,$(ENCLAVE_PKGS))))

$(B)/sealvault-enclave: $(ENCLAVE_OBJS) $(ENCLAVE_ARCHIVES)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(ENCLAVE_OBJS) -Wl,--start-group $(ENCLAVE_ARCHIVES) \
		-Wl,--end-group $(call pc_libs,$(ENCLAVE_PKGS)) -pthread
# test_dispatch fakes the vault and the store through --wrap.
UT_OBJS_dispatch := $(B)/enclave/dispatch.o $(B)/enclave/drain.o $(B)/enclave/audit.o \
	$(B)/libsvcommon.a
UT_WRAP_dispatch := vault_handle_token vault_metrics store_get_stats tpm_get_stats \
	realm_srv_handle realm_srv_metrics
# test_adminsrv drives the admin end on a socketpair with the store faked through --wrap.
UT_OBJS_adminsrv := $(B)/enclave/adminsrv.o $(B)/enclave/budget.o $(B)/enclave/audit.o \
	$(B)/libsvcommon.a
UT_WRAP_adminsrv := store_get_stats store_get_info store_secrets store_delete_user store_write \
	store_anchor store_commit_cost store_flush_cost store_set_flush_allowed store_counter \
	audit_note
# test_capacity: the limit's parsing and derivation, on a fake /proc and /sys tree.
UT_OBJS_capacity := $(B)/enclave/capacity.o $(B)/libsvcommon.a

# --- attestation: keys, quotes and activation on the TPM, evidence files and JSON (issue 6) ---
ATTEST_SRCS := enclave/attest.c enclave/evidence.c enclave/attestsrv.c
ATTEST_OBJS := $(ATTEST_SRCS:%.c=$(B)/%.o)
$(B)/libsvattest.a: $(ATTEST_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
UT_ARCHIVES := $(B)/libsvattest.a $(UT_ARCHIVES)
EXTRA_CFLAGS_enclave_evidence := $(call pc_cflags,json-c)
# libFuzzer target for the activate request body and the two evidence file decoders.
FUZZ_TARGETS += attest_activate
FUZZ_SRCS_attest_activate := enclave/attest.c enclave/evidence.c enclave/approval.c enclave/tpm.c \
	enclave/tcti-fd.c \
	common/attest_stmt.c common/buf.c common/err.c
FUZZ_PKGS_attest_activate := openssl tss2-esys tss2-mu tss2-rc json-c
# tests/unit/test_enclave_audit.c: the enclave's audit records on a real socketpair (issue 14).
UT_OBJS_enclave_audit := $(B)/enclave/audit.o $(B)/libsvcommon.a

# --- graceful drain (issue 14, item 2): what the enclave refuses while stopping and when it says
# the pending logins are done; tests/unit/test_drain.c also covers the payloads (common/drain.h) ---
UT_OBJS_drain := $(B)/enclave/drain.o $(B)/libsvcommon.a
