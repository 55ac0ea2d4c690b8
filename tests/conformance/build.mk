# Conformance runner: replays the CFRG JSON vectors through crypto/.
#   make conformance                      all of tests/vectors/*.json
#   make conformance VECTORS="a.json b"   any given files
# It links a copy of crypto/opaque.c built with -DOPAQUE_TRACE so that the RFC 9807
# "intermediates" can be checked too; the library itself has no tracing.
CONFORMANCE := $(B)/tests/conformance/sv-conformance
VECTORS ?= $(wildcard tests/vectors/*.json)
UPSTREAM_VECTORS := $(wildcard tests/vectors/upstream/*.json)
CONF_PKGS := libsodium json-c

$(B)/tests/conformance/opaque-trace.o: crypto/opaque.c
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) -DOPAQUE_TRACE $(ALL_CFLAGS) -c -o $@ $<

$(B)/tests/conformance/sv-conformance.o: EXTRA_CFLAGS_tests_conformance_sv-conformance = $(call pc_cflags,json-c)

$(CONFORMANCE): $(B)/tests/conformance/sv-conformance.o $(B)/tests/conformance/opaque-trace.o \
		$(B)/libsvcrypto.a $(B)/libsvcommon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(call pc_libs,$(CONF_PKGS))

BINS += $(CONFORMANCE)
CHECK_STEPS += conformance conformance-upstream
.PHONY: conformance conformance-upstream

conformance: $(CONFORMANCE)
	$(CONFORMANCE) $(VECTORS)

# The same runner over the unfiltered upstream files (all suites; unsupported ones are skipped).
conformance-upstream: $(CONFORMANCE)
	$(CONFORMANCE) $(UPSTREAM_VECTORS)
