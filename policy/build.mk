# policy/: seccomp allowlists (policy/seccomp.c) and the vault policy (policy/vault.c).

# --- seccomp allowlists of the enclave and the broker (process engineer) ---
POLICY_SECCOMP_OBJS := $(B)/policy/seccomp.o
$(B)/libsvseccomp.a: $(POLICY_SECCOMP_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
EXTRA_CFLAGS_policy_seccomp := $(call pc_cflags,libseccomp)
UT_ARCHIVES += $(B)/libsvseccomp.a

# --- vault policy: limits, batching window, budgets, with bounds (state engineer) ---
POLICY_VAULT_OBJS := $(B)/policy/vault.o
$(B)/libsvpolicy.a: $(POLICY_VAULT_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
UT_ARCHIVES += $(B)/libsvpolicy.a
