# daemon/: sealvaultd, the supervisor that starts the enclave and the broker (process engineer).
DAEMON_SRCS := daemon/main.c daemon/supervise.c daemon/drain.c daemon/adminsock.c daemon/audit.c
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(B)/%.o)
BINS += $(B)/sealvaultd
INSTALL_SBIN += $(B)/sealvaultd
INSTALL_MAN += daemon/sealvaultd.8 daemon/sealvault.conf.5
# sealvaultd finds the two processes here unless --libexec-dir says otherwise. The stamp file
# changes when LIBEXECDIR (or PREFIX) does, so `make install PREFIX=/usr` after a plain `make`
# rebuilds sealvaultd with the right path instead of installing one that looks elsewhere.
EXTRA_CFLAGS_daemon_main := -DSV_LIBEXECDIR='"$(LIBEXECDIR)"' $(call pc_cflags,libsystemd)
EXTRA_CFLAGS_daemon_audit := $(call pc_cflags,libsodium libsystemd)
$(B)/daemon/main.o: $(B)/daemon/libexecdir.stamp
$(B)/daemon/libexecdir.stamp: daemon-libexecdir-check
	@mkdir -p $(dir $@)
	@echo '$(LIBEXECDIR)' | cmp -s - $@ || echo '$(LIBEXECDIR)' > $@
.PHONY: daemon-libexecdir-check
daemon-libexecdir-check:

$(B)/sealvaultd: $(DAEMON_OBJS) $(B)/libsvpolicy.a $(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,libsodium libsystemd)

# --- integration tests of the process side: sandbox and bad input (process engineer) ---
# Real sealvaultd, enclave, broker, swtpm and TLS; see the scripts' headers.
PROBE := $(B)/tests/integration/badinput-probe
EXTRA_CFLAGS_tests_integration_badinput-probe := $(call pc_cflags,libcurl libsodium)
$(PROBE): $(B)/tests/integration/badinput-probe.o $(B)/libsvcrypto.a $(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,libcurl libsodium)
BINS += $(PROBE)
PROC_TEST_DEPS := $(B)/sealvaultd $(B)/sealvault-enclave $(B)/sealvault-broker $(B)/sealvault-admin
.PHONY: check-sandbox check-badinput check-daemon-config
check-sandbox: $(PROC_TEST_DEPS)
	$(Q)B=$(B) tests/integration/sandbox.sh
check-badinput: $(PROC_TEST_DEPS) $(PROBE)
	$(Q)B=$(B) tests/integration/badinput.sh
check-daemon-config: $(PROC_TEST_DEPS) $(PROBE) $(B)/sealvault
	$(Q)B=$(B) tests/integration/daemon-config.sh
CHECK_STEPS += check-sandbox check-badinput check-daemon-config

# --- the audit trail (issue 14): sealvaultd's side, unit-tested without journald ---
# tests/unit/test_daemon_audit.c fakes sd_journal_sendv (the journal's native protocol is not
# needed to check the fields); check-audit runs the whole trail on real processes.
UT_OBJS_daemon_audit := $(B)/daemon/audit.o $(B)/libsvcommon.a
UT_WRAP_daemon_audit := sd_journal_sendv
# --- graceful drain (issue 14, item 2): tests/unit/test_daemon_drain.c fakes the signals, the clock,
# waitpid and the control link ---
UT_OBJS_daemon_drain := $(B)/daemon/drain.o $(B)/daemon/supervise.o $(B)/libsvpolicy.a \
	$(B)/libsvcommon.a
UT_WRAP_daemon_drain := frame_send sigtimedwait waitpid clock_gettime
