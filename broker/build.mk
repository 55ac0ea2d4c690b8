# broker/: sealvault-broker, the HTTPS front end (process engineer).
BROKER_SRCS := broker/main.c broker/http.c broker/tls.c broker/link.c broker/ratelimit.c \
	broker/metrics.c broker/control.c
BROKER_OBJS := $(BROKER_SRCS:%.c=$(B)/%.o)
BROKER_LIB_OBJS := $(filter-out $(B)/broker/main.o,$(BROKER_OBJS))
BROKER_PKGS := libevent libevent_openssl openssl libsodium libseccomp json-c
BINS += $(B)/sealvault-broker
INSTALL_LIBEXEC += $(B)/sealvault-broker
INSTALL_MAN += broker/sealvault-broker.8
$(foreach s,$(BROKER_SRCS),$(eval EXTRA_CFLAGS_$(subst /,_,$(s:%.c=%)) := $$(call pc_cflags,$(BROKER_PKGS))))

$(B)/libsvbroker.a: $(BROKER_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/sealvault-broker: $(B)/broker/main.o $(B)/libsvbroker.a $(B)/libsvseccomp.a $(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(BROKER_PKGS))

# unit tests of broker modules link the broker archive (and libevent, named by path because the
# unit-test link line only adds the packages of UT_PKGS)
UT_OBJS_broker_link := $(B)/libsvbroker.a $(B)/libsvcommon.a \
	$(shell $(PKG_CONFIG) --variable=libdir libevent 2>/dev/null)/libevent.so
UT_OBJS_broker_ratelimit := $(B)/libsvbroker.a $(B)/libsvcommon.a

# libFuzzer target for the IPC frame decoder both processes use (rules: tests/fuzz/build.mk).
FUZZ_TARGETS += frame
FUZZ_SRCS_frame := common/frame.c common/err.c
# ... and for the reload payload the broker decodes (common/reload.h).
FUZZ_TARGETS += reload
FUZZ_SRCS_reload := common/reload.c common/err.c
# ... and for the drain payloads the enclave, the broker and sealvaultd decode (common/drain.h).
FUZZ_TARGETS += drain
FUZZ_SRCS_drain := common/drain.c common/err.c
