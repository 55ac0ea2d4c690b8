# admin/: sealvault-admin (init, status, delete) and its man page (state engineer).
ADMIN_BIN := $(B)/sealvault-admin
BINS += $(ADMIN_BIN)
INSTALL_SBIN += $(ADMIN_BIN)
INSTALL_MAN += admin/sealvault-admin.8
EXTRA_CFLAGS_admin_sealvault-admin := $(call pc_cflags,libsodium tss2-esys json-c) -DSV_LIBEXECDIR='"$(LIBEXECDIR)"'
$(ADMIN_BIN): $(B)/admin/sealvault-admin.o $(B)/libsvattest.a $(B)/libsvstate.a $(B)/libsvpolicy.a $(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,libsodium openssl tss2-esys tss2-mu tss2-rc json-c)
