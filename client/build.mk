# client/: libsealvault (shared library with a versioned soname, plus a static archive the CLI
# and the tests link) and the `sealvault` CLI; the end-to-end test and `make demo`.
CLIENT_VERSION := 0.4.0
CLIENT_SONAME  := libsealvault.so.0
CLIENT_SO      := $(B)/libsealvault.so.$(CLIENT_VERSION)
CLIENT_PKGS    := libsodium libcurl json-c openssl tss2-mu
# The attestation verifier (issue 6): TPM structures (tss2-mu), EK chain and signatures
# (OpenSSL), evidence and expect files (json-c).
CLIENT_ATTEST_SRCS := client/attest.c client/evidence.c client/eventlog.c client/expect.c \
	client/imalog.c client/jfield.c client/makecred.c client/tpmobj.c
CLIENT_LIB_SRCS := client/blob.c client/wire.c client/http.c client/info.c client/libsealvault.c \
	client/librealms.c client/realmcore.c client/realmcore_recover.c client/realmlist.c client/realmnet.c client/vaultsteps.c \
	$(CLIENT_ATTEST_SRCS)
CLIENT_LIB_OBJS := $(CLIENT_LIB_SRCS:%.c=$(B)/%.o)
CLIENT_DEPS    := $(B)/libsvcrypto.a $(B)/libsvcommon.a

EXTRA_CFLAGS_client_http := $(call pc_cflags,libcurl)
EXTRA_CFLAGS_client_realmnet := $(call pc_cflags,libcurl)
EXTRA_CFLAGS_client_cli := -DSV_CLI_VERSION='"$(CLIENT_VERSION)"'

$(B)/libsvclient.a: $(CLIENT_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# Only the functions of sealvault.h are exported (client/libsealvault.map); the crypto and common
# code inside stays local.
$(CLIENT_SO): $(CLIENT_LIB_OBJS) $(CLIENT_DEPS) client/libsealvault.map
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(CLIENT_SONAME) \
		-Wl,--version-script=client/libsealvault.map -Wl,--no-undefined -o $@ \
		$(CLIENT_LIB_OBJS) $(CLIENT_DEPS) $(call pc_libs,$(CLIENT_PKGS))
$(B)/$(CLIENT_SONAME): $(CLIENT_SO)
	$(Q)ln -sf $(notdir $<) $@
$(B)/libsealvault.so: $(B)/$(CLIENT_SONAME)
	$(Q)ln -sf $(notdir $<) $@

# The CLI carries its own copy of the library (static archive) so it runs from the build tree.
$(B)/sealvault: $(B)/client/cli.o $(B)/client/cli_realms.o $(B)/libsvclient.a $(CLIENT_DEPS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(CLIENT_PKGS))

BINS += $(CLIENT_SO) $(B)/$(CLIENT_SONAME) $(B)/libsealvault.so $(B)/sealvault
INSTALL_BIN += $(B)/sealvault
INSTALL_MAN += client/sealvault.1
INSTALL_HOOKS += install-libsealvault

.PHONY: install-libsealvault
install-libsealvault: $(CLIENT_SO)
	$(Q)install -D -m 0644 $(CLIENT_SO) $(DESTDIR)$(LIBDIR)/$(notdir $(CLIENT_SO))
	$(Q)ln -sf $(notdir $(CLIENT_SO)) $(DESTDIR)$(LIBDIR)/$(CLIENT_SONAME)
	$(Q)ln -sf $(CLIENT_SONAME) $(DESTDIR)$(LIBDIR)/libsealvault.so
	$(Q)install -D -m 0644 client/sealvault.h $(DESTDIR)$(INCLUDEDIR)/sealvault.h
	$(Q)mkdir -p $(DESTDIR)$(PKGCONFIGDIR)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(CLIENT_VERSION)|' \
		client/sealvault.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/sealvault.pc
	$(Q)chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/sealvault.pc

# Unit tests: the library's flows against an in-test fake server (tests/unit/test_client.c
# replaces http.c), and the pure wire/blob code.
UT_OBJS_client := $(B)/client/libsealvault.o $(B)/client/vaultsteps.o $(B)/client/blob.o $(B)/client/wire.o $(B)/client/info.o \
	$(CLIENT_ATTEST_SRCS:%.c=$(B)/%.o) $(CLIENT_DEPS)
UT_OBJS_client_wire := $(B)/client/blob.o $(B)/client/wire.o $(CLIENT_DEPS)

# The installed library as a downstream sees it: pkg-config, soname, exported symbols.
CHECK_STEPS += client-abi-check
.PHONY: client-abi-check
client-abi-check: $(CLIENT_SO)
	$(Q)B=$(B) CC="$(CC)" tests/integration/client-abi.sh

# The CLI's refusals (arguments, password and secret input), without a server.
CHECK_STEPS += client-cli-args
.PHONY: client-cli-args
client-cli-args: $(B)/sealvault
	$(Q)B=$(B) tests/integration/cli-args.sh

# End to end: the CLI against a real sealvaultd on a private swtpm over TLS (needs root for the
# memory scans of the enclave and the broker; see the script).
CHECK_STEPS += client-e2e
.PHONY: client-e2e
client-e2e: $(B)/sealvault $(B)/sealvaultd $(B)/sealvault-enclave $(B)/sealvault-broker \
		$(B)/sealvault-admin
	$(Q)B=$(B) tests/integration/e2e.sh

# `make demo`: the whole story on this machine (installs build dependencies when root).
demo:
	$(Q)B=$(B) MAKE="$(MAKE)" tests/demo/demo.sh

# libFuzzer target for every decoder of server replies and the blob (tests/fuzz/build.mk);
# recursive "=" because crypto/build.mk, which sets CRYPTO_SRCS, is read after this file.
FUZZ_TARGETS += client_reply
FUZZ_SRCS_client_reply = client/wire.c client/blob.c $(CRYPTO_SRCS) common/buf.c common/err.c

# Unit tests of the verifier's parsers (one binary per module).
UT_OBJS_client_eventlog := $(B)/client/eventlog.o $(CLIENT_DEPS)
UT_OBJS_client_imalog := $(B)/client/imalog.o $(CLIENT_DEPS)
UT_OBJS_client_evidence := $(B)/client/evidence.o $(B)/client/jfield.o $(CLIENT_DEPS)
UT_OBJS_client_makecred := $(B)/client/makecred.o $(B)/client/tpmobj.o $(CLIENT_DEPS)
UT_OBJS_client_expect := $(B)/client/expect.o $(B)/client/jfield.o $(CLIENT_DEPS)
UT_OBJS_client_info := $(B)/client/info.o $(B)/client/jfield.o $(CLIENT_DEPS)

# libFuzzer targets of the verifier's decoders (tests/fuzz/build.mk runs them in fuzz-quick).
FUZZ_TARGETS += eventlog imalog evidence expect
FUZZ_SRCS_eventlog := client/eventlog.c common/err.c
FUZZ_SRCS_imalog := client/imalog.c common/err.c
FUZZ_PKGS_imalog := openssl
FUZZ_SRCS_evidence := client/evidence.c client/jfield.c common/err.c
FUZZ_PKGS_evidence := json-c
FUZZ_SRCS_expect := client/expect.c client/jfield.c common/attest_stmt.c common/buf.c \
	common/err.c
FUZZ_PKGS_expect := json-c
# GET /v1/info: the client's decoder, and the enclave's encoder for the round trip.
FUZZ_TARGETS += info
FUZZ_SRCS_info := client/info.c client/jfield.c common/info.c common/buf.c common/err.c
FUZZ_PKGS_info := json-c

# threshold realms (docs/realms.md): the I/O-free core against realms in memory, the list reader
UT_OBJS_client_realmcore := $(B)/client/realmcore.o $(B)/client/realmcore_recover.o $(B)/client/info.o $(B)/client/jfield.o \
	$(CLIENT_DEPS)
UT_OBJS_client_realmlist := $(B)/client/realmlist.o $(B)/client/jfield.o $(CLIENT_DEPS)
# libFuzzer target: the realm client's reply handling (the core against mutated realm answers)
# and the realm list reader; the wire decoders alone are fuzz_realm_wire's.
FUZZ_TARGETS += realm_client
FUZZ_SRCS_realm_client = client/realmcore.c client/realmcore_recover.c client/realmlist.c client/info.c client/jfield.c \
	common/info.c $(CRYPTO_SRCS) common/buf.c common/err.c
FUZZ_PKGS_realm_client := json-c
# the single-vault steps without I/O, against the OPAQUE server functions in the test
UT_OBJS_client_vaultsteps := $(B)/client/vaultsteps.o $(B)/client/blob.o $(B)/client/wire.o \
	$(CLIENT_DEPS)
