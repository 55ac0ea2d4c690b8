# sealvault — plain GNU make. Quiet unless V=1; CI=true turns warnings into errors.
#
# Each part of the tree adds itself through a fragment, <dir>/build.mk, which appends to:
#   BINS          programs built by `make` (and installed by `make install`)
#   UNIT_TESTS    cmocka binaries run by `make check`
#   CHECK_STEPS   phony targets run by `make check` after the unit tests, in order
#   CHECK_BACKGROUND  phony targets `make check` runs next to those, niced (idle waits, fuzzing)
#   BENCH_STEPS   phony targets run by `make bench`
#   FUZZ_TARGETS  names of libFuzzer targets (tests/fuzz/fuzz_<name>.c)
# and defines its own objects and rules. Fragments never edit each other.

PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
LIBDIR      ?= $(PREFIX)/lib
LIBEXECDIR  ?= $(PREFIX)/libexec/sealvault
INCLUDEDIR  ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR      ?= $(PREFIX)/share/man
SYSCONFDIR  ?= /etc
DESTDIR     ?=

CC          ?= cc
B           := build
PKG_CONFIG  ?= pkg-config

# Debian hardening flags (fortify, stack protector, relro/now) unless the caller sets its own.
DEB_BUILD_MAINT_OPTIONS ?= hardening=+all
export DEB_BUILD_MAINT_OPTIONS
HARDEN_CFLAGS   := $(shell dpkg-buildflags --get CFLAGS 2>/dev/null)
HARDEN_CPPFLAGS := $(shell dpkg-buildflags --get CPPFLAGS 2>/dev/null)
HARDEN_LDFLAGS  := $(shell dpkg-buildflags --get LDFLAGS 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
        -Wformat=2 -Wno-unused-parameter
ifeq ($(CI),true)
WARN += -Werror
endif
ifneq ($(WERROR),)
WARN += -Werror
endif

CFLAGS   ?= $(if $(HARDEN_CFLAGS),$(HARDEN_CFLAGS),-g -O2)
CPPFLAGS += $(HARDEN_CPPFLAGS) -D_GNU_SOURCE -I.
LDFLAGS  += $(HARDEN_LDFLAGS)
ALL_CFLAGS = -std=gnu11 -fPIC $(WARN) $(CFLAGS) -MMD -MP

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' $(1) $(2)
endif

# pkg-config helpers: $(call pc_cflags,libsodium json-c). pkg-config's complaints about a
# missing package are silenced: the check below says it once, with what to do.
pc_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pc_libs   = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)

# The libraries every build needs (packaging/install-deps installs them, with the tools). When
# pkg-config cannot find one, stop with one line that says so instead of a compiler error per
# file. Goals that build nothing are exempt, `make deps` first of all.
PC_REQUIRED := libsodium json-c openssl tss2-esys tss2-mu tss2-rc libseccomp libevent \
	libevent_openssl libcurl cmocka libsystemd
NO_DEPS_GOALS := deps clean format format-check
ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
PC_MISSING := $(shell for p in $(PC_REQUIRED); do \
	$(PKG_CONFIG) --exists $$p 2>/dev/null || echo $$p; done)
ifneq ($(PC_MISSING),)
$(error missing build dependencies (pkg-config finds no $(PC_MISSING)); run `make deps` as root (packaging/install-deps) and then make again)
endif
endif

comma := ,
BINS :=
UNIT_TESTS :=
CHECK_STEPS := format-check # docs/design.md §8: .clang-format is checked
CHECK_BACKGROUND :=
BENCH_STEPS :=
FUZZ_TARGETS :=
CLEAN_EXTRA :=
# install lists: fragments append built files; INSTALL_HOOKS are extra phony targets (libraries,
# headers, pkg-config files) that must honour DESTDIR and PREFIX themselves.
INSTALL_BIN :=
INSTALL_SBIN :=
INSTALL_LIBEXEC :=
INSTALL_MAN := # man pages: the section is taken from the file name's suffix (foo.8 -> man8)
INSTALL_HOOKS :=

.SECONDARY:
.PHONY: all check unit bench fuzz clean install demo deps format format-check
all: everything

$(B)/%.o: %.c
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(EXTRA_CFLAGS_$(subst /,_,$*)) -c -o $@ $<

include $(sort $(wildcard */build.mk tests/*/build.mk))

everything: $(BINS) $(UNIT_TESTS)

# Unit tests: every cmocka binary, all run even if one fails, then a single verdict.
unit: $(UNIT_TESTS)
	@fail=0; for t in $(UNIT_TESTS); do \
	  echo "== $$t"; $$t || { echo "FAILED: $$t"; fail=1; }; \
	done; exit $$fail

# As root, the integration steps run the vault's processes as unprivileged users, who must be
# able to reach the build directory: tests/lib/traversable.sh says so before anything runs.
# CHECK_BACKGROUND steps run next to the others, niced, and are waited for at the end, also
# after a failure (they clean up after themselves): steps that mostly wait (a TPM that throttles
# for minutes) or that only burn CPU and read no clock (fuzz-quick, check-analyze). Each step's
# wall time is printed.
check: everything
	$(Q)tests/lib/traversable.sh $(B)
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)bg=""; fail=""; \
	for s in $(CHECK_BACKGROUND); do \
		nice -n 10 $(MAKE) --no-print-directory $$s >$(B)/$$s.log 2>&1 & bg="$$bg $$!:$$s"; \
	done; \
	for s in $(CHECK_STEPS); do \
		t0=$$(date +%s); \
		$(MAKE) --no-print-directory $$s || { fail=$$s; break; }; \
		echo "make check: $$s took $$(( $$(date +%s) - t0 )) s"; \
	done; \
	for p in $$bg; do \
		rc=0; wait $${p%%:*} || rc=$$?; cat $(B)/$${p#*:}.log; \
		[ $$rc -eq 0 ] || fail="$$fail $${p#*:}"; \
	done; \
	[ -z "$$fail" ] || { echo "make check: failed: $$fail"; exit 1; }
	@echo "make check: all steps passed"

bench: everything
	$(Q)set -e; for s in $(BENCH_STEPS); do $(MAKE) --no-print-directory $$s; done

deps:
	packaging/install-deps

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

install: everything $(INSTALL_HOOKS)
	$(Q)set -e; \
	for f in $(INSTALL_BIN); do install -D -m 0755 $$f $(DESTDIR)$(BINDIR)/$$(basename $$f); done; \
	for f in $(INSTALL_SBIN); do install -D -m 0755 $$f $(DESTDIR)$(SBINDIR)/$$(basename $$f); done; \
	for f in $(INSTALL_LIBEXEC); do install -D -m 0755 $$f $(DESTDIR)$(LIBEXECDIR)/$$(basename $$f); done; \
	for f in $(INSTALL_MAN); do s=$${f##*.}; install -D -m 0644 $$f $(DESTDIR)$(MANDIR)/man$$s/$$(basename $$f); done

clean:
	rm -rf $(B) $(CLEAN_EXTRA)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
