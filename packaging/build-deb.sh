#!/bin/sh
# Builds the Debian packages from a clean export of the tree: OUT/sealvault-VERSION/ gets the
# committed tree (git archive HEAD) with packaging/debian copied to debian/, then
# `dpkg-buildpackage -us -uc -b` leaves the .deb files (and .changes, .buildinfo) in OUT/.
#   DEB_FROM=worktree  export the working tree instead (tracked and untracked, not ignored files),
#                      to try uncommitted changes; without git the tree is copied as it is.
set -eu
cd "$(dirname "$0")/.."
out=${1:-build-deb}
version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
src="$out/sealvault-$version"

rm -rf "$out"
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	if [ "${DEB_FROM:-head}" = worktree ]; then
		git ls-files -z --cached --others --exclude-standard |
			tar --null -T - --ignore-failed-read -cf - | tar -xf - -C "$src"
	else
		git archive --format=tar HEAD | tar -xf - -C "$src"
	fi
else
	tar --exclude='./build' --exclude='./build-*' -cf - . | tar -xf - -C "$src"
fi
rm -rf "$src/debian"
cp -a "$src/packaging/debian" "$src/debian"

if [ -z "${DEB_BUILD_OPTIONS:-}" ]; then
	DEB_BUILD_OPTIONS="parallel=$(nproc)"
	export DEB_BUILD_OPTIONS
fi
(cd "$src" && dpkg-buildpackage -us -uc -b)
echo "build-deb: packages in $out/:"
ls "$out"/*.deb
