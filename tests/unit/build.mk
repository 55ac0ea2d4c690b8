# Unit tests: tests/unit/test_NAME.c becomes $(B)/tests/unit/test_NAME (one cmocka binary per
# module). A fragment may set, for its own test:
#   UT_OBJS_NAME  objects/archives to link (default: every project archive listed in UT_ARCHIVES)
#   UT_WRAP_NAME  symbols to pass to the linker as --wrap=SYMBOL (mocks)
# Project archives register themselves by appending to UT_ARCHIVES (order: dependents first).
.SECONDEXPANSION:
UT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_TESTS += $(UT_SRCS:tests/unit/%.c=$(B)/tests/unit/%)
UT_PKGS := cmocka libsodium json-c openssl tss2-esys tss2-mu tss2-rc libseccomp
UT_ARCHIVES += $(B)/libsvcommon.a

$(B)/tests/unit/test_%: $(B)/tests/unit/test_%.o $$(if $$(UT_OBJS_$$*),$$(UT_OBJS_$$*),$$(UT_ARCHIVES))
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -Wl,--start-group \
		$(if $(UT_OBJS_$*),$(UT_OBJS_$*),$(UT_ARCHIVES)) -Wl,--end-group \
		$(addprefix -Wl$(comma)--wrap=,$(UT_WRAP_$*)) $(call pc_libs,$(UT_PKGS))
