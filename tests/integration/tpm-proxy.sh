#!/bin/bash
# Self-test of tests/lib/tpm-proxy.py (through tests/lib/tpmproxy.sh) with real vaults on one swtpm:
#   1. two vaults (two NV counters) run at the same time through one proxy and both check out;
#   2. a slow chip (--cmd-delay-ms, --nv-delay-ms) still runs, and every commit reached the TPM;
#   3. injected NV_RATE/RETRY/YIELDED/NV_UNAVAILABLE answers are retried by the vault;
#   4. hold/release of NV_Increment, then hold/drop: the driver dies between its fsync and its
#      increment, status sees the journal one ahead, the next start rolls it forward;
#   5. while a vault is held with its primary key and session loaded, another client's start
#      (flush_stale) and a raw client's FlushContext of every handle do not touch them.
# The proxies take turns: swtpm serves one connection at a time.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/swtpm.sh
. tests/lib/tpmproxy.sh
DRIVER=${STATE_DRIVER:?}
ADMIN=${SEALVAULT_ADMIN:?}
T=$(mktemp -d /tmp/sv-tpm-proxy.XXXXXX)
BG=()
cleanup() {
	local p
	for p in "${BG[@]}"; do
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	tpmproxy_cleanup
	swtpm_cleanup
	rm -rf "$T"
}
trap cleanup EXIT
START=$SECONDS
fail() {
	echo "FAIL: $*"
	[ -f "$T/err" ] && cat "$T/err"
	exit 1
}
D1=$T/d1
D2=$T/d2
# The driver's stream: seed 1, commits of 3 ops; a check needs a batch boundary (--ops 3k).
drv() { # drv run|check DIR OPS ACKED [more driver options]
	local cmd=$1 dir=$2 ops=$3 acked=$4
	shift 4
	"$DRIVER" "$cmd" --state-dir "$dir" --tpm "$TPMPROXY_TCTI" --seed 1 --batch 3 \
		--ops "$ops" --acked "$acked" "$@"
}
check_at() { # check_at DIR OPS: the vault serves every op up to OPS
	drv check "$1" "$2" $(($2 - 1)) >"$T/out" 2>"$T/err" || fail "check of $1 at $2 failed"
	grep -q "^position $2 " "$T/out" || fail "$1 is not at op $2: $(cat "$T/out")"
}
stat() { tpmproxy_stat "$TPMPROXY_CTL" "$1"; }

swtpm_start "$T/tpm"

# --- 1. two vaults at the same time on one swtpm -------------------------------------------------
tpmproxy_start "$T/p1"
# plain counters: every increment is an NV write, which is what the proxy's NV delay models
"$ADMIN" init --state-dir "$D1" --policy-key-out "$D1.policy-key" --tpm "$TPMPROXY_TCTI" \
	--counter-scheme plain >/dev/null 2>"$T/err" || fail "init of d1 through the proxy"
"$ADMIN" init --state-dir "$D2" --policy-key-out "$D2.policy-key" --nv-index 0x01005357 \
	--counter-scheme plain --tpm "$TPMPROXY_TCTI" >/dev/null 2>"$T/err" ||
	fail "init of d2 (NV 0x01005357)"
drv run "$D1" 42 -1 >"$T/out1" 2>"$T/err1" &
r1=$!
drv run "$D2" 42 -1 >"$T/out2" 2>"$T/err2" &
r2=$!
BG=("$r1" "$r2")
rc1=0 rc2=0
wait "$r1" || rc1=$?
wait "$r2" || rc2=$?
BG=()
if [ "$rc1" -ne 0 ] || [ "$rc2" -ne 0 ]; then
	fail "concurrent runs: exit $rc1 and $rc2: $(cat "$T/err1" "$T/err2")"
fi
# Both drivers (clients 3 and 4, after the two inits) were connected at once.
awk '$1 >= 3 && $2 == "connected" { n++ } $1 >= 3 && $2 == "gone" && n < 2 { bad = 1 }
	END { exit bad || n != 2 }' "$TPMPROXY_CTL/clients" ||
	fail "the two runs did not overlap: $(tr '\n' ' ' <"$TPMPROXY_CTL/clients")"
for f in "$T/out1" "$T/out2"; do
	grep -q '^ack 41 ' "$f" || fail "a concurrent run did not ack op 41: $(tail -n1 "$f")"
done
check_at "$D1" 42
check_at "$D2" 42
[ "$(stat capability_answers)" -gt 0 ] || fail "flush_stale's GetCapability was not answered by the proxy"
[ "$(tpmproxy_nv_writes "$TPMPROXY_CTL")" -ge 28 ] || fail "fewer NV writes than the 2 x 14 commits"
concurrent="two vaults concurrently ($(stat memory_waits) waits for a TPM slot)"
tpmproxy_stop "$T/p1"

# --- 2. slow discrete chip --------------------------------------------------------------------
tpmproxy_start "$T/p2" --cmd-delay-ms 3 --nv-delay-ms 40
t0=$(date +%s%N)
drv run "$D1" 54 41 >"$T/out" 2>"$T/err" || fail "run on the slow chip"
ms=$((($(date +%s%N) - t0) / 1000000))
n=$(tpmproxy_nv_writes "$TPMPROXY_CTL")
[ "$n" -ge 4 ] || fail "slow chip: $n NV writes for 4 commits"
# A lower bound only (a busy machine is slower, never faster): 40 ms per NV write.
[ "$ms" -ge $((n * 40)) ] || fail "slow chip: $n NV writes in $ms ms, each should take 40 ms"
check_at "$D1" 54
slow="slow chip ($n NV writes in $ms ms)"
tpmproxy_stop "$T/p2"

# --- 3. transient TPM errors -------------------------------------------------------------------
tpmproxy_start "$T/p3" --transient-rate 0.3 --seed 7
drv run "$D1" 78 53 >"$T/out" 2>"$T/err" || fail "run with transient errors"
inj=$(stat injected)
[ "$inj" -gt 0 ] || fail "no transient error was injected"
check_at "$D1" 78
transient="$inj transient errors retried"
tpmproxy_stop "$T/p3"

# --- 4. hold and release, hold and drop an NV_Increment ---------------------------------------
tpmproxy_start "$T/p4"
C=$TPMPROXY_CTL
tpmproxy_hold "$C" 0x134
drv run "$D1" 84 77 >"$T/out" 2>"$T/err" &
BG=($!)
held=$(tpmproxy_wait_held "$C" 20) || fail "no NV_Increment was held"
case $held in *\ 0x134) ;; *) fail "held something else: $held" ;; esac
[ ! -e "$C/hold" ] || fail "the proxy left hold behind"
grep -q '^ack' "$T/out" && fail "a commit was acknowledged while its increment was held"
tpmproxy_release "$C"
rc=0
wait "${BG[0]}" || rc=$?
BG=()
[ "$rc" -eq 0 ] || fail "the released run exited $rc"
grep -q '^ack 83 ' "$T/out" || fail "the released run did not finish: $(tail -n1 "$T/out")"

tpmproxy_hold "$C" 0x134
drv run "$D1" 90 83 >"$T/out" 2>"$T/err" &
BG=($!)
tpmproxy_wait_held "$C" 20 >/dev/null || fail "the second NV_Increment was not held"
tpmproxy_drop "$C"
rc=0
wait "${BG[0]}" || rc=$?
BG=()
[ "$rc" -ne 0 ] || fail "the driver survived losing its TPM mid-increment"
grep -q '^ack' "$T/out" && fail "a commit was acknowledged without its increment"
[ "$(stat dropped)" -eq 1 ] || fail "the proxy did not count the drop"
# The commit of ops 84..86 was fsynced; the TPM never saw its increment.
"$ADMIN" status --state-dir "$D1" --tpm "$TPMPROXY_TCTI" >"$T/out" 2>"$T/err" ||
	fail "status after the drop"
grep -q '^agree: yes (journal one ahead' "$T/out" ||
	fail "the drop did not fall between fsync and increment: $(grep agree "$T/out")"
check_at "$D1" 87 # rolled forward: ops 84..86 are there
dropped="dropped between fsync and increment (exit $rc), rolled forward"

# --- 5. another client's flushes do not reach a held vault's handles --------------------------
tpmproxy_hold "$C" 0x134
drv run "$D1" 93 86 >"$T/out" 2>"$T/err" &
BG=($!)
held=$(tpmproxy_wait_held "$C" 20) || fail "no NV_Increment was held (5)"
refused0=$(stat refused_flushes)
"$ADMIN" status --state-dir "$D2" --tpm "$TPMPROXY_TCTI" >"$T/out2" 2>"$T/err" ||
	fail "status of d2 while d1 is held"
grep -qx 'agree: yes' "$T/out2" || fail "d2 status: $(grep agree "$T/out2")"
# A raw client: its handle lists are empty, and flushing every handle in use is refused.
python3 - "${TPMPROXY_TCTI##*port=}" >"$T/raw" <<'PY' || fail "raw client: $(cat "$T/raw")"
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def cmd(cc, body):
    s.sendall(struct.pack(">HII", 0x8001, 10 + len(body), cc) + body)
    hdr = s.recv(10, socket.MSG_WAITALL)
    size, rc = struct.unpack(">II", hdr[2:])
    return rc, s.recv(size - 10, socket.MSG_WAITALL) if size > 10 else b""
for ht in (0x80000000, 0x02000000, 0x03000000):
    rc, body = cmd(0x17A, struct.pack(">III", 1, ht, 64))
    count = struct.unpack(">I", body[5:9])[0]
    if rc != 0 or body[:5] != b"\x00\x00\x00\x00\x01" or count != 0:
        sys.exit("GetCapability(0x%08x): rc 0x%x, %s" % (ht, rc, body.hex()))
codes = [cmd(0x165, struct.pack(">I", h))[0] for h in
         (0x80000000, 0x80000001, 0x80000002, 0x02000000, 0x02000001, 0x02000002)]
if any(rc == 0 for rc in codes):
    sys.exit("a FlushContext of someone else's handle succeeded: %s" % codes)
PY
refused=$(($(stat refused_flushes) - refused0))
[ "$refused" -ge 2 ] || fail "only $refused of the held vault's flushes were refused"
tpmproxy_release "$C"
rc=0
wait "${BG[0]}" || rc=$?
BG=()
[ "$rc" -eq 0 ] || fail "the held vault failed after the other clients' flushes (exit $rc)"
grep -q '^ack 92 ' "$T/out" || fail "the held vault did not finish"
check_at "$D1" 93
tpmproxy_stop "$T/p4"

echo "tpm-proxy: $concurrent; $slow; $transient; hold/release; $dropped;" \
	"held ${held%% *}'s handles untouched ($refused foreign flushes refused); $((SECONDS - START)) s"
