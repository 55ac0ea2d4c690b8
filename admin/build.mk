# admin/: sealvault-admin and its man page (state engineer). admin/sealvault-admin.c is the table
# of commands; each command is one file, admin/COMMAND.c, and admin/admin.c holds what they share.
ADMIN_BIN := $(B)/sealvault-admin
BINS += $(ADMIN_BIN)
INSTALL_SBIN += $(ADMIN_BIN)
INSTALL_MAN += admin/sealvault-admin.8
# `sealvault-admin expect` (admin/expect.c) writes the expect file with the client's encoder and
# reads sealvault.conf with the parser sealvaultd uses (common/config.c, in libsvcommon.a).
ADMIN_EXPECT_OBJS := $(B)/admin/expect.o $(B)/client/expect.o $(B)/client/jfield.o
EXTRA_CFLAGS_admin_expect := $(call pc_cflags,libsodium tss2-esys json-c) \
	-DSV_LIBEXECDIR='"$(LIBEXECDIR)"'
ADMIN_SRCS := sealvault-admin admin online init status delete upgrade authorize-pcrs attest reseal \
	acknowledge tenant token jwk audit-id
$(foreach s,$(ADMIN_SRCS),$(eval EXTRA_CFLAGS_admin_$(s) := $$(call pc_cflags,libsodium tss2-esys json-c)))
$(ADMIN_BIN): $(ADMIN_SRCS:%=$(B)/admin/%.o) $(ADMIN_EXPECT_OBJS) $(B)/enclave/adminsrv.o $(B)/enclave/audit.o \
	      $(B)/libsvtoken.a $(B)/libsvattest.a $(B)/libsvstate.a $(B)/libsvpolicy.a $(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,libsodium openssl tss2-esys tss2-mu tss2-rc json-c)

# `make expect`: the expected-values file of this build with the default policy and boot PCRs
# 0-7 (no PCR values: verifiers replay them from the event log), for a provider to publish next
# to the packages (docs/attestation.md).
.PHONY: expect
expect: $(ADMIN_BIN) $(B)/sealvaultd $(B)/sealvault-enclave $(B)/sealvault-broker
	$(Q)$(ADMIN_BIN) expect --bindir $(B) > $(B)/sealvault-expect.json.tmp
	$(Q)mv $(B)/sealvault-expect.json.tmp $(B)/sealvault-expect.json
	@echo "wrote $(B)/sealvault-expect.json"
