# daemon/: sealvaultd, the supervisor that starts the enclave and the broker (process engineer).
DAEMON_SRCS := daemon/main.c daemon/config.c
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(B)/%.o)
BINS += $(B)/sealvaultd
INSTALL_SBIN += $(B)/sealvaultd
INSTALL_MAN += daemon/sealvaultd.8 daemon/sealvault.conf.5
# sealvaultd finds the two processes here unless --libexec-dir says otherwise
EXTRA_CFLAGS_daemon_main := -DSV_LIBEXECDIR='"$(LIBEXECDIR)"'

$(B)/libsvdaemon.a: $(B)/daemon/config.o
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
UT_ARCHIVES += $(B)/libsvdaemon.a

$(B)/sealvaultd: $(DAEMON_OBJS) $(B)/libsvpolicy.a $(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,libsodium)
