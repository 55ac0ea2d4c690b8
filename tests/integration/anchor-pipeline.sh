#!/bin/bash
# check-anchor-pipeline (issue 12): the NV increment no longer stops the vault, and still nothing
# is answered before its anchor. Real sealvaultd, enclave, broker and CLI on a swtpm behind
# tests/lib/tpm-proxy.py. A registration's first NV_Increment is held in the proxy (its journal
# frame N is written); while it is held:
#   - /healthz is answered (it needs neither the TPM nor the journal);
#   - the registration is not answered, and neither is a recovery started meanwhile (its charge
#     is staged for frame N+1), nor /metrics (it reads the TPM's statistics: set aside);
#   - the journal does not grow: frame N+1 is written only after N is anchored (the start-up
#     rule accepts a journal at most one commit frame ahead of the counter).
# Released, all three are answered; the recovery returns the right secret, and after a restart
# the registered user recovers byte-identical.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
. tests/lib/swtpm.sh
. tests/lib/tpmproxy.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d /tmp/sv-anchor-pipeline.XXXXXX)
chmod 0755 "$T"
PIDS=()
cleanup() {
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	sv_server_stop
	tpmproxy_cleanup
	swtpm_cleanup
	[ -n "${KEEP:-}" ] && { echo "kept $T" >&2; return; }
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "anchor-pipeline: FAIL: $*" >&2
	echo "--- sealvaultd.log (tail)" >&2
	tail -n 25 "$T/srv/sealvaultd.log" >&2 || true
	exit 1
}

KSF=(--ksf-t 1 --ksf-m 8)
printf 'correct horse battery staple\n' >"$T/pw"
cli() { # cli CMD ARGS...: the CLI against the server
	"$SV" "$1" --server "$SV_URL" --cacert "$SV_CACERT" --timeout 60 "${KSF[@]}" "${@:2}"
}
running() { kill -0 "$1" 2>/dev/null; }
jsize() { stat -c %s "$T/srv/state/journal"; }

sv_server_init "$T/srv" "$B"
tpmproxy_start "$T/px" --cmd-delay-ms 1
CTL=$TPMPROXY_CTL
SWTPM_TCTI=$TPMPROXY_TCTI # the vault reaches the TPM through the proxy only
sv_server_start

head -c 32 /dev/urandom >"$T/s1"
head -c 32 /dev/urandom >"$T/s2"
cli register --user u1 --password-file "$T/pw" --secret-file "$T/s1" >/dev/null 2>"$T/err" ||
	fail "register u1: $(cat "$T/err")"

j0=$(jsize)
tpmproxy_hold "$CTL" 0x134 # NV_Increment
cli register --user u2 --password-file "$T/pw" --secret-file "$T/s2" >/dev/null 2>"$T/reg.err" &
REG=$!
PIDS+=("$REG")
tpmproxy_wait_held "$CTL" 30 >/dev/null || fail "the registration's NV_Increment was not held"
j1=$(jsize)
[ "$j1" -gt "$j0" ] || fail "the held increment's frame is not in the journal ($j0 -> $j1 bytes)"

t0=$(date +%s.%N)
curl -fsS --max-time 10 --cacert "$SV_CACERT" "$SV_URL/healthz" >/dev/null ||
	fail "/healthz was not answered while an NV increment was outstanding"
echo "anchor-pipeline: /healthz answered in $(awk -v a="$t0" -v b="$(date +%s.%N)" \
	'BEGIN { printf "%.3f", b - a }') s while the increment is held"
rm -f "$T/out"
cli recover --user u1 --password-file "$T/pw" --out "$T/out" >/dev/null 2>"$T/rec.err" &
REC=$!
PIDS+=("$REC")
sv_metrics --max-time 60 >"$T/metrics" 2>"$T/met.err" &
MET=$!
PIDS+=("$MET")
sleep 2
running "$REG" || fail "the registration was answered before its NV increment"
running "$REC" || fail "the recovery was answered while the increment before it was held"
running "$MET" || fail "/metrics was answered while the TPM thread held the TPM"
[ -e "$T/out" ] && fail "the recovery wrote a secret before its charge was anchored"
j2=$(jsize)
[ "$j2" -eq "$j1" ] ||
	fail "the journal grew from $j1 to $j2 bytes while the frame before was not anchored"
echo "anchor-pipeline: registration, recovery and /metrics wait; the journal stays at $j1 bytes"

tpmproxy_release "$CTL"
wait "$REG" || fail "register u2 failed after the release: $(cat "$T/reg.err")"
wait "$REC" || fail "recover u1 failed after the release: $(cat "$T/rec.err")"
wait "$MET" || fail "/metrics failed after the release: $(cat "$T/met.err")"
PIDS=()
cmp -s "$T/out" "$T/s1" || fail "u1 recovered another secret"
grep -q '^sealvault_tpm_counter ' "$T/metrics" || fail "/metrics answered without the counter"
[ "$(jsize)" -gt "$j1" ] || fail "the recovery's frame was not written after the release"

sv_server_restart
rm -f "$T/out"
cli recover --user u2 --password-file "$T/pw" --out "$T/out" >/dev/null 2>"$T/err" ||
	fail "u2 does not recover after a restart: $(cat "$T/err")"
cmp -s "$T/out" "$T/s2" || fail "u2 recovered another secret"
echo "anchor-pipeline: ok: /healthz answered during a held NV increment; nothing that needed" \
	"it or the next journal frame was answered or written before it"
