#!/bin/bash
# traversable.sh DIR: as root, the integration tests run sealvault-enclave and sealvault-broker as
# unprivileged users (SV_ENCLAVE_USER, SV_BROKER_USER: nobody and daemon by default), and the
# enclave reads the sealvault binaries in the build directory to hash them for its attestation
# statement. A checkout under a directory those users cannot enter (/root is mode 0700) makes
# every such test fail late with "cannot hash the sealvault binaries". This says so up front,
# naming the directory that blocks them and what to do. Not root: nothing to check, exit 0.
set -euo pipefail
dir=$(realpath "${1:?usage: traversable.sh DIR}")
[ "$(id -u)" -eq 0 ] || exit 0
for u in "${SV_ENCLAVE_USER:-nobody}" "${SV_BROKER_USER:-daemon}"; do
	id "$u" >/dev/null 2>&1 || continue
	runuser -u "$u" -- test -x "$dir" && continue
	block=/
	p=
	IFS=/ read -ra parts <<<"${dir#/}"
	for c in "${parts[@]}"; do
		p=$p/$c
		if ! runuser -u "$u" -- test -x "$p"; then
			block=$p
			break
		fi
	done
	cat >&2 <<MSG
sealvault tests: user $u cannot enter $block ($(stat -c '%A %U:%G' "$block")).
As root, the tests run sealvault-enclave and sealvault-broker as the unprivileged users
${SV_ENCLAVE_USER:-nobody} and ${SV_BROKER_USER:-daemon}, and the enclave must read the binaries in $dir.
Move (or clone) the checkout to a directory every user can enter, e.g. /srv/sealvault, or make
$block enterable for others (chmod o+x $block) if that is acceptable, and try again.
MSG
	exit 1
done
