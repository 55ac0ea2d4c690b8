# common/: framing and the message table (msgtable.h), the bounded buffer, error codes, listening
# sockets and the sealvault.conf line parser (sealvaultd and sealvault-admin). Nothing
# secret-specific.
COMMON_SRCS := $(wildcard common/*.c)
COMMON_OBJS := $(COMMON_SRCS:%.c=$(B)/%.o)
$(B)/libsvcommon.a: $(COMMON_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
# libFuzzer target for the audit record decoder that sealvaultd runs on the enclave's records.
FUZZ_TARGETS += audit
FUZZ_SRCS_audit := common/audit.c common/err.c
# libFuzzer target for the online admin payloads (common/adminmsg.h), which sealvault-admin decodes
# from sealvaultd's admin socket and sealvaultd from the enclave's admin pair.
FUZZ_TARGETS += adminmsg
FUZZ_SRCS_adminmsg := common/adminmsg.c common/buf.c common/err.c
