# tests/analyze/: `make check-analyze`, clang's static analyzer (the checkers scan-build runs by
# default: core, unix, deadcode, nullability, security.insecureAPI) over every C file in git,
# product, tests and fuzz targets alike, each with the flags its fragment gives it. Any finding
# fails the step; fix the code, or, for a false positive, state the invariant the analyzer cannot
# see in the code (an assert, or a branch it can follow) and say why in a comment. ~1.5 min on 2
# cores; files are re-analysed only when they or their headers change.
#   make check-analyze                      one line per finding
#   make check-analyze ANALYZE_OUTPUT=text  with the path that leads to each finding
# Results go to $(B)/analyze/; the analyzer compiles nothing into the build.
ANALYZE_CC := clang
ANALYZE_OUTPUT ?= plist
ANALYZE_SRCS := $(or $(shell git ls-files '*.c' 2>/dev/null),$(wildcard */*.c tests/*/*.c))
ANALYZE_PKGS := libsodium json-c openssl tss2-esys tss2-mu tss2-rc libseccomp libevent \
	libevent_openssl libcurl cmocka
# -U_FORTIFY_SOURCE: the analyzer models memcpy, snprintf and friends, not their _chk variants.
ANALYZE_FLAGS = --analyze -Xclang -analyzer-werror -Xclang -analyzer-output=$(ANALYZE_OUTPUT) \
	-std=gnu11 $(CPPFLAGS) -U_FORTIFY_SOURCE $(call pc_cflags,$(ANALYZE_PKGS))
ANALYZE_OUT := $(ANALYZE_SRCS:%.c=$(B)/analyze/%.plist) $(B)/analyze/crypto/opaque-trace.plist

$(B)/analyze/%.plist: %.c
	$(call msg,ANALYZE,$<)
	@mkdir -p $(dir $@)
	$(Q)$(ANALYZE_CC) $(ANALYZE_FLAGS) $(EXTRA_CFLAGS_$(subst /,_,$*)) -MMD -MP -o $@ $< || \
		{ rm -f $@; exit 1; }

# crypto/opaque.c as tests/conformance builds it too, with its RFC 9807 tracing compiled in.
$(B)/analyze/crypto/opaque-trace.plist: crypto/opaque.c
	$(call msg,ANALYZE,$<+OPAQUE_TRACE)
	@mkdir -p $(dir $@)
	$(Q)$(ANALYZE_CC) $(ANALYZE_FLAGS) -DOPAQUE_TRACE -MMD -MP -o $@ $< || { rm -f $@; exit 1; }

# -k: every file is analysed, then one verdict.
.PHONY: check-analyze analyze-all
analyze-all: $(ANALYZE_OUT)
check-analyze:
	$(Q)$(MAKE) --no-print-directory -k analyze-all \
		$(if $(findstring jobserver,$(MAKEFLAGS)),,-j$(shell nproc)) || \
		{ echo "check-analyze: the static analyzer found the problems above"; exit 1; }
	@echo "check-analyze: no finding in $(words $(ANALYZE_OUT)) files"

# Pure CPU with no clock in it: `make check` runs it next to the other steps, niced, where it fills
# the time they spend waiting on TPMs and timeouts (Makefile: CHECK_BACKGROUND).
CHECK_BACKGROUND += check-analyze
