#!/bin/bash
# make bench-scale (issue 16): one node with 10 million users. Generates a vault of SCALE_USERS
# (default 10,000,000) users on a private swtpm, reopens it and prints the start-up time and the
# enclave's memory per user, then commits at a steady pace (one change every 2 ms, grouped as
# the serve loop groups them) around a snapshot of all users and prints the commit p99 while it
# is written (on the snapshot thread, as a serving vault writes it). The baselines, in the same
# run: a 1,000,000-user vault's start-up, the commit p99 without a snapshot, and the p99 while
# the snapshot is written before the next commit, as sealvault did before the snapshot thread. Needs about 1 KB of RAM and 800 bytes of disk per user (10 GB, 8 GB)
# and minutes; run it niced on a shared machine.
#   startup-1M-users: S s          (baseline)
#   startup-10M-users: S s
#   bytes/user: B                  (10M vault, enclave heap after start-up)
#   commit-p99-no-snapshot: T ms   (baseline)
#   commit-p99-during-snapshot-10M: T ms
#   commit-p99-during-sync-snapshot-10M: T ms   (baseline)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/swtpm.sh
DRIVER=${STATE_DRIVER:?}
ADMIN=${SEALVAULT_ADMIN:?}
USERS=${SCALE_USERS:-10000000}
T=$(mktemp -d "${TMPDIR:-/var/tmp}/sv-scale-bench.XXXXXX")
trap 'swtpm_cleanup; rm -rf "$T"' EXIT
swtpm_start "$T/tpm"
"$ADMIN" init --state-dir "$T/base" --policy-key-out "$T/base".policy-key --tpm "$SWTPM_TCTI" \
	--nv-index 0x01005357 >/dev/null
"$DRIVER" bench-startup --state-dir "$T/base" --tpm "$SWTPM_TCTI" --users 1000000 2>/dev/null |
	sed -n 's/^\(startup-1M-users: .*\)/\1 (baseline)/p'
rm -rf "$T/base"
"$ADMIN" init --state-dir "$T/big" --policy-key-out "$T/big".policy-key --tpm "$SWTPM_TCTI" \
	--nv-index 0x01005358 >/dev/null
"$DRIVER" bench-startup --state-dir "$T/big" --tpm "$SWTPM_TCTI" --users "$USERS" \
	--during-snapshot --snapshot-sync 2>"$T/err" >"$T/out" || { cat "$T/err" >&2; exit 1; }
grep '^startup-' "$T/out"
grep '^bytes/user' "$T/out"
sed -n 's/^\(commit-p99-no-snapshot: .*\)/\1 (baseline)/p' "$T/out"
grep '^snapshot-write-' "$T/out"
grep '^commit-p99-during-snapshot-' "$T/out"
grep '^snapshot-sync-write-' "$T/out"
sed -n 's/^\(commit-p99-during-sync-snapshot-.*\)/\1 (baseline)/p' "$T/out"
echo "snapshot-bytes-$((USERS / 1000000))M-users: $(stat -c %s "$T/big/snap.a" "$T/big/snap.b" | sort -n | tail -1) bytes"
