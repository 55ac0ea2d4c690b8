#!/bin/bash
# Crash scenarios on a private swtpm (issue 3, integration 1 and 2):
#   kill N      kill -9 the state driver N times at random points of a stream of registrations,
#               guess charges, resets and deletions;
#   powercut N  kill -9 the driver AND swtpm together N times, then restart both from their state.
# After every restart the driver proves that every acknowledged op is in the vault (and at most
# one unacknowledged batch more), and the TPM counter never goes back.
# SCHEME=plain|hybrid (default plain) picks the counter scheme; a hybrid vault's registrations
# are forced flushes (hundreds of orderly increments), so its runs are killed later.
# SNAPSHOT_CHUNK=BYTES (issue 16) starts a snapshot every 2 commits, written in chunks that small
# on the snapshot thread while the commits go on, so that many kills land while a snapshot of
# many chunks is being written, or its delta chunks appended, or the journal switched to it.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/swtpm.sh
MODE=${1:?usage: state-crash.sh kill|powercut N}
N=${2:?usage: state-crash.sh kill|powercut N}
SCHEME=${SCHEME:-plain}
case $SCHEME in
plain) DELAY_MIN=100 DELAY_SPAN=350 ;;
hybrid) DELAY_MIN=300 DELAY_SPAN=1200 ;;
*) echo "SCHEME must be plain or hybrid" >&2; exit 2 ;;
esac
DRIVER=${STATE_DRIVER:?}
ADMIN=${SEALVAULT_ADMIN:?}
T=$(mktemp -d /tmp/sv-state-crash.XXXXXX)
DPID=
cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	swtpm_cleanup
	if [ -n "${KEEP_FAILED:-}" ] && [ "$ok" -eq 0 ]; then
		mv "$T" "$KEEP_FAILED"
		echo "kept the failed run in $KEEP_FAILED"
	else
		rm -rf "$T"
	fi
}
ok=0
trap cleanup EXIT
SEED=$((RANDOM * 32768 + RANDOM))
BATCH=3
SNAP=()
[ -n "${SNAPSHOT_CHUNK:-}" ] &&
	SNAP=(--snapshot-chunk "$SNAPSHOT_CHUNK" --snapshot-every 2 --snapshot-async)
echo "state-crash $MODE x$N, $SCHEME counter (seed $SEED)${SNAPSHOT_CHUNK:+, snapshots in $SNAPSHOT_CHUNK-byte chunks}"
swtpm_start "$T/tpm"
"$ADMIN" init --state-dir "$T/state" --policy-key-out "$T/state".policy-key --tpm "$SWTPM_TCTI" \
	--counter-scheme "$SCHEME" >/dev/null

acked=-1
minpos=0
max_counter=0
started=0
check_start() { # $1: output file of the driver; verifies its first line
	local line p c
	line=$(head -n1 "$1")
	[ -n "$line" ] || return 0 # killed before it had opened the vault: nothing to check
	case $line in position\ *\ counter\ *) ;; *)
		echo "FAIL: driver did not start: $line"; cat "$T/err"; exit 1 ;;
	esac
	p=$(echo "$line" | cut -d' ' -f2)
	c=$(echo "$line" | cut -d' ' -f4)
	if [ "$c" -lt "$max_counter" ]; then
		echo "FAIL: TPM counter went back: $c after $max_counter"; exit 1
	fi
	max_counter=$c
	minpos=$p
}
for i in $(seq 1 "$N"); do
	"$DRIVER" run --state-dir "$T/state" --tpm "$SWTPM_TCTI" --seed "$SEED" --ops 1000000 \
		--batch $BATCH --acked "$acked" --min-pos "$minpos" ${SNAP[@]+"${SNAP[@]}"} \
		>"$T/out" 2>"$T/err" &
	DPID=$!
	echo "run $i acked $acked" >>"$T/history"
	d=$((RANDOM % DELAY_SPAN + DELAY_MIN))
	sleep "$((d / 1000)).$(printf '%03d' $((d % 1000)))"
	if [ "$MODE" = powercut ]; then
		kill -9 "$DPID" "$(swtpm_pid "$T/tpm")" 2>/dev/null || true
	else
		kill -9 "$DPID" 2>/dev/null || true
	fi
	rc=0
	wait "$DPID" 2>/dev/null || rc=$?
	DPID=
	if [ "$rc" -ne 137 ]; then
		echo "FAIL: run $i: driver exited with $rc before the kill"; cat "$T/err"; exit 1
	fi
	cat "$T/out" >>"$T/history"
	check_start "$T/out"
	[ -s "$T/out" ] && started=$((started + 1))
	last=$(grep '^ack ' "$T/out" | tail -n1 || true)
	if [ -n "$last" ]; then
		acked=$(echo "$last" | cut -d' ' -f2)
		c=$(echo "$last" | cut -d' ' -f4)
		[ "$c" -ge "$max_counter" ] || { echo "FAIL: counter went back in run $i"; exit 1; }
		max_counter=$c
	fi
	if [ "$MODE" = powercut ]; then
		swtpm_kill "$T/tpm"
		swtpm_start "$T/tpm"
	fi
done
"$DRIVER" check --state-dir "$T/state" --tpm "$SWTPM_TCTI" --seed "$SEED" --ops 1000000 \
	--batch $BATCH --acked "$acked" --min-pos "$minpos" >"$T/out" 2>"$T/err" || {
	echo "FAIL: final check"; cat "$T/err"; exit 1; }
check_start "$T/out"
"$ADMIN" status --state-dir "$T/state" --tpm "$SWTPM_TCTI" | grep -qx 'agree: yes' || {
	echo "FAIL: status does not report agreement"; exit 1; }
if [ "$started" -lt $((N / 2)) ]; then
	echo "FAIL: only $started of $N runs got far enough to open the vault"; exit 1
fi
ok=1
echo "state-crash $MODE ($SCHEME): $N kills ($started mid-stream), every acknowledged op (last $acked) present, counter $max_counter never went back"
