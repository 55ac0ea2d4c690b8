#!/bin/bash
# Rollback (issue 3, integration 3): copy the state directory, make more changes, put the copy
# back -> the vault refuses to start; put the real one back -> it serves with every change.
# A plain counter: this asserts the exact rule (head = counter). A hybrid vault accepts a head
# inside the last NV block when the counter's low bits are all set (a power cut), charging the
# penalty; check-state-hybrid tests rollbacks and truncations against that rule.
# SNAPSHOT_CHUNK=BYTES (issue 16): snapshots every 7 commits, in chunks that small; then also the
# real directory with the old copy's (authentic, chunked) snapshot slots put back is refused, and
# so is each of 7 copies taken one commit apart (a whole snapshot cycle, the thread's writing
# included).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/swtpm.sh
DRIVER=${STATE_DRIVER:?}
ADMIN=${SEALVAULT_ADMIN:?}
T=$(mktemp -d /tmp/sv-state-rollback.XXXXXX)
trap 'swtpm_cleanup; rm -rf "$T"' EXIT
swtpm_start "$T/tpm"
S="$T/state"
SNAP=()
[ -n "${SNAPSHOT_CHUNK:-}" ] &&
	SNAP=(--snapshot-chunk "$SNAPSHOT_CHUNK" --snapshot-every 7 --snapshot-async)
D() {
	"$DRIVER" "$@" --state-dir "$S" --tpm "$SWTPM_TCTI" --seed 42 --batch 3 \
		${SNAP[@]+"${SNAP[@]}"}
}
"$ADMIN" init --state-dir "$S" --policy-key-out "$S".policy-key --tpm "$SWTPM_TCTI" \
	--counter-scheme plain >/dev/null
D run --ops 60 >/dev/null
cp -a "$S" "$T/copy"
# With SNAPSHOT_CHUNK: one copy after each of the next 7 commits, so that together they sit at
# every point of the 7-commit snapshot cycle, one of them while the snapshot thread writes its
# chunks (issue 16); each is put back after more anchored changes below and must be refused.
CYCLE=()
acked=59
if [ -n "${SNAPSHOT_CHUNK:-}" ]; then
	for n in 63 66 69 72 75 78 81; do # one commit (--batch 3) each
		D run --ops "$n" --acked "$acked" >/dev/null
		acked=$((n - 1))
		cp -a "$S" "$T/cycle$n"
		CYCLE+=("$n")
	done
fi
D run --ops 120 --acked "$acked" >/dev/null
mv "$S" "$T/real"

# 1. the old copy: every file intact and authentic, but older than the TPM counter
cp -a "$T/copy" "$S"
rc=0
D check --ops 120 --acked 59 >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] || { echo "FAIL: rolled-back state was not refused (exit $rc)"; cat "$T/err"; exit 1; }
grep -q 'state is older than the TPM' "$T/err" || { echo "FAIL: wrong reason:"; cat "$T/err"; exit 1; }
rc=0
"$ADMIN" status --state-dir "$S" --tpm "$SWTPM_TCTI" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] && grep -qx 'agree: no' "$T/out" || { echo "FAIL: status agreed on a rollback"; exit 1; }
echo "rollback refused: $(cat "$T/err")"

# 1b. the copies taken around a snapshot (SNAPSHOT_CHUNK): each older than the counter, refused
for n in ${CYCLE[@]+"${CYCLE[@]}"}; do
	rm -rf "$S"
	cp -a "$T/cycle$n" "$S"
	rc=0
	D check --ops 120 --acked 119 >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" -eq 3 ] || { echo "FAIL: the copy taken after op $n was not refused (exit $rc)"; cat "$T/err"; exit 1; }
done
[ ${#CYCLE[@]} -eq 0 ] || echo "copies after ops ${CYCLE[0]}..${CYCLE[-1]} (one per commit, a whole snapshot cycle) refused"
rm -rf "$S"

# 2. the real directory with only its last journal record cut off: also refused
rm -rf "$S"
cp -a "$T/real" "$S"
python3 - "$S/journal" <<'PY'
import struct, sys
p = sys.argv[1]
d = open(p, 'rb').read()
off, last = 48, 48
while off < len(d):
    last = off
    ct = struct.unpack('>I', d[off + 28:off + 32])[0]
    off += 32 + 24 + ct + 32
open(p, 'r+b').truncate(last)
PY
rc=0
D check --ops 120 --acked 59 >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] || { echo "FAIL: truncated journal was not refused (exit $rc)"; exit 1; }

# 2b. chunked snapshots: the real journal and header with the old copy's snapshot slots
if [ -n "${SNAPSHOT_CHUNK:-}" ]; then
	[ "$(python3 tests/integration/snapchunks.py count "$T/copy/snap.a")" -gt 1 ] ||
		[ "$(python3 tests/integration/snapchunks.py count "$T/copy/snap.b")" -gt 1 ] ||
		{ echo "FAIL: the copy has no snapshot of several chunks"; exit 1; }
	rm -rf "$S"
	cp -a "$T/real" "$S"
	cp "$T/copy/snap.a" "$T/copy/snap.b" "$S/"
	rc=0
	D check --ops 120 --acked 119 >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" -eq 3 ] || { echo "FAIL: old snapshot slots were not refused (exit $rc)"; exit 1; }
	echo "old chunked snapshots under the real journal refused: $(cat "$T/err")"
fi

# 3. the real directory again: serves, with every acknowledged change
rm -rf "$S"
mv "$T/real" "$S"
D check --ops 120 --acked 119 >"$T/out" 2>"$T/err" || { echo "FAIL: real state refused"; cat "$T/err"; exit 1; }
grep -q '^position 120 ' "$T/out" || { echo "FAIL: not every change present: $(cat "$T/out")"; exit 1; }
echo "state-rollback: old copy and truncated journal refused; real state serves all 120 changes"
