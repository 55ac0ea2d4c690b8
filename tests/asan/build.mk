# tests/asan/: `make check-asan`, the unit tests and the integration tests that run the most product
# code per second, against an AddressSanitizer + UndefinedBehaviorSanitizer build of the project in
# its own directory, $(ASAN_B)/ (a second `make B=$(ASAN_B)` with the flags below; the production
# build in $(B)/ is not touched). Any report fails the step: -fno-sanitize-recover=all makes every
# UBSan finding fatal, and a report exits with status 86 so that a test expecting a refusal (exit 1)
# cannot mistake one for it. ~2.5 minutes on 2 cores, of which ~30 s is the build.
#
# clang, not gcc: gcc's UBSan runtime is a second library that initialises itself at its first
# report, which the seccomp filters then kill; clang links one runtime that
# __sanitizer_sandbox_on_notify() prepares before the filter goes in (policy/seccomp.c, which also
# lists the few calls the runtime needs under -DSV_SANITIZE, in this build only). In the sandboxed
# enclave and broker a report cannot start llvm-symbolizer: its frames read (BINARY+0xOFFSET); turn
# them into lines with `llvm-symbolizer-14 -e BINARY 0xOFFSET`.
# -U_FORTIFY_SOURCE: glibc's _chk variants of memcpy and friends hide those calls from ASan.
# -Wno-missing-field-initializers: clang (not gcc) warns inside libseccomp's SCMP_A* macros.
ASAN_B := build-asan
ASAN_CC := clang
ASAN_CFLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all -U_FORTIFY_SOURCE -DSV_SANITIZE -Wno-missing-field-initializers
# The sub-make builds in parallel unless the caller's make already shares a jobserver with it.
ASAN_JOBS ?= $(shell nproc)
ASAN_MAKE = $(MAKE) --no-print-directory B=$(ASAN_B) CC=$(ASAN_CC) CFLAGS="$(ASAN_CFLAGS)"

# color=never: isatty() is an ioctl the enclave's filter forbids; print_legend=0 drops 20 lines of
# boilerplate from each report, which scripts show as a log tail. LeakSanitizer stops the process's
# threads through ptrace at exit, which a non-dumpable, seccomp-filtered process (the enclave, the
# broker) cannot do: it is off for every test that runs sealvaultd, and on for the unit tests and
# the state and vault-store drivers, none of which is sandboxed.
ASAN_COMMON := color=never:exitcode=86
ASAN_ENV = ASAN_OPTIONS=$(ASAN_COMMON):print_legend=0:detect_leaks=$(1) \
	UBSAN_OPTIONS=$(ASAN_COMMON):print_stacktrace=1

# Everything the steps below run, named through the other fragments' variables so that inside
# the sub-make (B=$(ASAN_B)) they are the sanitized binaries; "$$" because tests/integration and
# tests/unit, which set some of them, are read after this file.
.SECONDEXPANSION:
.PHONY: check-asan asan-build asan-unit asan-state asan-daemon
asan-build: $$(UNIT_TESTS) $(B)/sealvaultd $(B)/sealvault-enclave $(B)/sealvault-broker \
		$(B)/sealvault-admin $(B)/sealvault $$(STATE_DRIVER) $$(VAULT_STORE_DRIVER) $$(PROBE) \
		$$(SV_BENCH)

asan-unit: asan-build
	$(Q)$(call ASAN_ENV,1) $(MAKE) --no-print-directory unit

# The durable state on a real swtpm (fewer crash iterations than check-state-*) and the vault on
# the real store: every journal, snapshot, TPM and vault path, no sandbox.
asan-state: asan-build
	$(Q)export $(call ASAN_ENV,1) STATE_DRIVER=$(STATE_DRIVER) SEALVAULT_ADMIN=$(B)/sealvault-admin \
		VAULT_STORE_DRIVER=$(VAULT_STORE_DRIVER); set -e; \
	tests/integration/state-crash.sh kill 15; \
	tests/integration/state-crash.sh powercut 5; \
	tests/integration/state-rollback.sh; \
	tests/integration/state-bitflip.sh 20; \
	tests/integration/state-othertpm.sh; \
	tests/integration/state-admin.sh; \
	tests/integration/vault-store.sh

# Real sealvaultd, enclave, broker and CLI: end to end, hostile requests, configuration refusals,
# attestation (producer and verifier), access tokens (every refusal, a forging broker), reloads
# under a short load (new TLS contexts swapped under open connections), online admin (the admin
# socket and the enclave's admin end), and 20 clients at once for 10 s (check-load's 200 for 60 s would add a minute
# here).
asan-daemon: asan-build
	$(Q)export $(call ASAN_ENV,0) B=$(B); set -e; \
	tests/integration/e2e.sh; \
	tests/integration/badinput.sh; \
	tests/integration/daemon-config.sh; \
	tests/integration/cli-args.sh; \
	tests/integration/attest-admin.sh; \
	tests/integration/attest.sh; \
	tests/integration/token-auth.sh; \
	CLIENTS=10 SECONDS_LOAD=8 tests/integration/reload.sh; \
	tests/integration/admin-online.sh; \
	tests/bench/bench.sh load 20 10

check-asan:
	$(Q)$(ASAN_MAKE) $(if $(findstring jobserver,$(MAKEFLAGS)),,-j$(ASAN_JOBS)) asan-build
	$(Q)$(ASAN_MAKE) asan-unit
	$(Q)$(ASAN_MAKE) asan-state
	$(Q)$(ASAN_MAKE) asan-daemon
	@echo "check-asan: no AddressSanitizer or UndefinedBehaviorSanitizer report"

CHECK_STEPS += check-asan
CLEAN_EXTRA += $(ASAN_B)
