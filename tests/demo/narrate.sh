# Shared by the demos (tests/demo/demo.sh, tests/demo/demo-realms.sh): numbered, explained steps.
# Source it from bash with B, MAKE and PAUSE (seconds after each step) set.
#
#   step TITLE [LINE]...   Print "== N. TITLE" in bold, then each LINE indented.
#   show CMD...            Print the command as the reader would type it (dim, after "$ ").
#   die MESSAGE            Print "demo: MESSAGE" on stderr and exit 1.
#   demo_build             The two first steps of every demo: the build dependencies
#                          (packaging/install-deps installs what is missing when run as root,
#                          or lists it) and the build into $B.

if [ -t 1 ]; then bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'; else bold='' dim='' off=''; fi
n=0
step() {
	n=$((n + 1))
	printf '\n%s== %d. %s%s\n' "$bold" "$n" "$1" "$off"
	shift
	local line
	for line in "$@"; do printf '   %s\n' "$line"; done
	sleep "$PAUSE"
}
show() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; }
die() {
	printf '\ndemo: %s\n' "$*" >&2
	exit 1
}

demo_build() {
	step "Build dependencies" \
		"sealvault needs libsodium, OpenSSL, tpm2-tss, libseccomp, libevent, libcurl, swtpm..." \
		"packaging/install-deps installs whatever is missing (as root) or lists it."
	packaging/install-deps || die "install the packages listed above (or run make demo as root)"

	step "Build" "Plain GNU make into $B/."
	show "$MAKE B=$B -j$(nproc) all"
	"$MAKE" --no-print-directory B="$B" -j"$(nproc)" all >/dev/null ||
		die "the build failed; run '$MAKE B=$B' to see why"
}
