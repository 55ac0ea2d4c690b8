# libFuzzer targets (clang -fsanitize=fuzzer,address,undefined), generic for every fragment.
#
# Convention: to add a target NAME, any fragment
#   1. creates tests/fuzz/fuzz_NAME.c defining LLVMFuzzerTestOneInput (no main);
#   2. appends NAME to FUZZ_TARGETS;
#   3. sets FUZZ_SRCS_NAME to the project .c files the target needs (compiled here with
#      -fsanitize=fuzzer-no-link,address,undefined into $(B)/fuzz/obj/, shared by all targets);
#   4. optionally sets FUZZ_PKGS_NAME to extra pkg-config packages to link (libsodium always is).
# The target is built as $(B)/fuzz/fuzz_NAME. Nothing else to write: the rules below are pattern
# rules expanded when make runs, so fragments included after this one work too.
#
#   make fuzz-quick      every target for FUZZ_SECONDS (default 15) each; part of `make check`
#   make fuzz            every target for FUZZ_SECONDS (default 600) each, for long runs
#   make fuzz FUZZ_TARGETS=opaque_server FUZZ_SECONDS=3600     one target
# Corpora grow in $(B)/fuzz/corpus-NAME/ (never committed); a crash leaves its input as
# $(B)/fuzz/NAME-crash-<sha1> and the log as $(B)/fuzz/NAME.log. Reproduce a crash with
#   $(B)/fuzz/fuzz_NAME $(B)/fuzz/NAME-crash-<sha1>
# Targets should build their valid messages at start-up (deterministically) and mutate from
# them, so that short runs reach past the length checks without a committed seed corpus.

FUZZ_CC ?= clang
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fno-omit-frame-pointer $(filter-out -Werror,$(WARN))

FUZZ_TARGETS += opaque_server opaque_client oprf ksf
FUZZ_CRYPTO_SRCS := $(CRYPTO_SRCS) common/buf.c common/err.c
FUZZ_SRCS_opaque_server := $(FUZZ_CRYPTO_SRCS)
FUZZ_SRCS_opaque_client := $(FUZZ_CRYPTO_SRCS)
FUZZ_SRCS_oprf := $(FUZZ_CRYPTO_SRCS)
FUZZ_SRCS_ksf := $(FUZZ_CRYPTO_SRCS)
# the /v2/realm/ body decoders (issue 15, docs/realms.md)
FUZZ_TARGETS += realm_wire
FUZZ_SRCS_realm_wire := $(FUZZ_CRYPTO_SRCS)

fuzz_objs = $(addprefix $(B)/fuzz/obj/,$(patsubst %.c,%.o,$(FUZZ_SRCS_$(1))))

.SECONDEXPANSION:
$(B)/fuzz/obj/%.o: %.c
	$(call msg,FUZZCC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -MMD -MP -c -o $@ $<

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(call fuzz_objs,$$*)
	$(call msg,FUZZLD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< \
		$(call fuzz_objs,$*) \
		$(call pc_libs,libsodium $(FUZZ_PKGS_$*))

# $(1) = seconds per target. Every target runs; the step fails if any target failed.
define fuzz_run
	+$(Q)fail=0; for t in $(FUZZ_TARGETS); do \
	  $(MAKE) --no-print-directory $(B)/fuzz/fuzz_$$t || exit 1; \
	  mkdir -p $(B)/fuzz/corpus-$$t; \
	  if $(B)/fuzz/fuzz_$$t -max_total_time=$(1) -artifact_prefix=$(B)/fuzz/$$t- \
	       -print_final_stats=1 $(B)/fuzz/corpus-$$t >$(B)/fuzz/$$t.log 2>&1; then \
	    echo "fuzz $$t: $$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' $(B)/fuzz/$$t.log | grep -o '[0-9]*$$') runs in $(1) s, no crash"; \
	  else \
	    echo "FUZZ FAILED: $$t (log $(B)/fuzz/$$t.log, input $(B)/fuzz/$$t-*)"; tail -40 $(B)/fuzz/$$t.log; fail=1; \
	  fi; \
	done; exit $$fail
endef

.PHONY: fuzz fuzz-quick fuzz-build
fuzz-build: $$(addprefix $(B)/fuzz/fuzz_,$$(FUZZ_TARGETS))
fuzz-quick:
	$(call fuzz_run,$(if $(FUZZ_SECONDS),$(FUZZ_SECONDS),15))
fuzz:
	$(call fuzz_run,$(if $(FUZZ_SECONDS),$(FUZZ_SECONDS),600))

# fixed-length CPU work: make check runs it next to the other steps (Makefile: CHECK_BACKGROUND)
CHECK_BACKGROUND += fuzz-quick
