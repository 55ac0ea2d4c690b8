# packaging/: the Debian packages and their end-to-end test.
#   make deb             build sealvault, sealvault-client, libsealvault0, libsealvault-dev from a
#                        clean export of HEAD into $(DEB_OUT)/ (DEB_FROM=worktree: the working tree)
#   make check-packaging build them, lintian, install with apt, run the installed binaries on a
#                        private swtpm, check the units, remove and purge (root only; as CI runs)
DEB_OUT := build-deb

# Runs as root (CI does); one run per machine at a time (it takes a lock), ~2 min on 2 cores.
CHECK_STEPS += check-packaging

.PHONY: deb check-packaging
deb:
	$(Q)packaging/build-deb.sh $(DEB_OUT)

check-packaging:
	$(Q)DEB_OUT=$(DEB_OUT) tests/packaging/deb.sh

CLEAN_EXTRA += $(DEB_OUT)
