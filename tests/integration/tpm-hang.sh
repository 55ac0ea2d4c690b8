#!/bin/bash
# check-tpm-hang (issue 12): a TPM that stops answering in the middle of a load. Real sealvaultd,
# enclave, broker and CLI on a real swtpm behind tests/lib/tpm-proxy.py, with tpm-timeout 2.
# Users are registered; three clients keep registering new users and recovering old ones; then
# the proxy stops answering every TPM command (tpmproxy_stall) for HANG_S seconds (default 8).
# The enclave must stop within the timeout saying which command hung; sealvaultd must restart
# the pair by itself with a growing back-off (the restarted enclave hangs again at its first TPM
# command until the TPM answers); once the TPM answers the vault must serve again on the same
# port. No client may have seen a success that was not durable: every registration that was
# acknowledged, before, during or after the hang, recovers byte-identical, every recovery that
# succeeded returned the right secret, and the users of before recover byte-identical.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
HANG_S=${HANG_S:-8}
TIMEOUT_S=2
WORKERS=3
. tests/lib/swtpm.sh
. tests/lib/tpmproxy.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d /tmp/sv-tpm-hang.XXXXXX)
chmod 0755 "$T"
PIDS=()
cleanup() {
	set +e
	touch "$T/stop"
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "${T:-}" ] && [ -e "$T/px/ctl/stall" ] && rm -f "$T/px/ctl/stall"
	sv_server_stop
	tpmproxy_cleanup
	swtpm_cleanup
	[ -n "${KEEP:-}" ] && { echo "kept $T" >&2; return; }
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "tpm-hang: FAIL: $*" >&2
	echo "--- sealvaultd.log (tail)" >&2
	tail -n 25 "$T/srv/sealvaultd.log" >&2 || true
	exit 1
}

KSF=(--ksf-t 1 --ksf-m 8)
printf 'correct horse battery staple\n' >"$T/pw"
sv() { # sv CMD ARGS...: the CLI against the server; sets rc and err
	set +e
	"$SV" "$1" --server "$SV_URL" --cacert "$SV_CACERT" --timeout 30 "${KSF[@]}" "${@:2}" \
		2>"$T/stderr"
	rc=$?
	set -e
	err=$(cat "$T/stderr")
}

# worker K: registers wK-1, wK-2, ... and recovers uK in turn until $T/stop exists; one line per
# attempt in $T/load.K: "reg NAME RC" or "rec RC same|differs|none".
worker() {
	local k=$1 n=0 r name
	mkdir -p "$T/w$k"
	while [ ! -e "$T/stop" ]; do
		n=$((n + 1))
		name=w$k-$n
		head -c 32 /dev/urandom >"$T/w$k/$name"
		r=0
		"$SV" register --server "$SV_URL" --cacert "$SV_CACERT" --timeout 30 "${KSF[@]}" \
			--user "$name" --password-file "$T/pw" --secret-file "$T/w$k/$name" \
			>/dev/null 2>>"$T/w$k/err" || r=$?
		echo "reg $name $r" >>"$T/load.$k"
		rm -f "$T/w$k/out"
		r=0
		"$SV" recover --server "$SV_URL" --cacert "$SV_CACERT" --timeout 30 "${KSF[@]}" \
			--user "u$k" --password-file "$T/pw" --out "$T/w$k/out" \
			>/dev/null 2>>"$T/w$k/err" || r=$?
		if [ ! -e "$T/w$k/out" ]; then
			echo "rec $r none" >>"$T/load.$k"
		elif cmp -s "$T/w$k/out" "$T/u$k"; then
			echo "rec $r same" >>"$T/load.$k"
		else
			echo "rec $r differs" >>"$T/load.$k"
		fi
	done
}

count() { grep -c -- "$1" "$T/srv/sealvaultd.log" || true; }

t_start=$(date +%s)
sv_server_init "$T/srv" "$B"
tpmproxy_start "$T/px" --cmd-delay-ms 1
CTL=$TPMPROXY_CTL
SWTPM_TCTI=$TPMPROXY_TCTI # the vault reaches the TPM through the proxy only
# The NV-write budget out of the way (check-nv-budget tests it): with the default burst of 25 the
# load's registrations, each a forced flush, spend it, and a user whose last guess is not yet on
# NV is then answered 503 until the bucket refills, hours later; this test is about hangs (and the
# per-address rate limit too: every client here is 127.0.0.1).
SV_DAEMON_ARGS=(--tpm-timeout "$TIMEOUT_S" --nv-writes-per-day 1000000 --nv-writes-burst 100000 --rate-limit 0 --login-rate-per-id 0 --max-pending-logins-per-ip 0)
sv_server_start
URL0=$SV_URL

for k in $(seq 1 $WORKERS); do
	head -c 32 /dev/urandom >"$T/u$k"
	sv register --user "u$k" --password-file "$T/pw" --secret-file "$T/u$k"
	[ "$rc" -eq 0 ] || fail "register u$k: exit $rc: $err"
done

for k in $(seq 1 $WORKERS); do
	worker "$k" &
	PIDS+=($!)
done
sleep 2

echo "tpm-hang: the TPM stops answering for $HANG_S s (tpm-timeout $TIMEOUT_S s)"
t_stall=$(date +%s.%N)
tpmproxy_stall "$CTL"
# the enclave in flight must give up within the timeout (plus the load's next TPM command)
for _ in $(seq 1 100); do
	[ "$(count 'the TPM did not answer TPM2_CC_')" -ge 1 ] && break
	sleep 0.1
done
t_first=$(date +%s.%N)
[ "$(count 'the TPM did not answer TPM2_CC_')" -ge 1 ] ||
	fail "the enclave did not stop within 10 s of the hang"
awk -v a="$t_stall" -v b="$t_first" 'BEGIN { exit !(b - a <= 2 * '"$TIMEOUT_S"' + 2) }' ||
	fail "the enclave took $(awk -v a="$t_stall" -v b="$t_first" 'BEGIN { print b - a }') s to stop"
grep -q "within $TIMEOUT_S s; exiting" "$T/srv/sealvaultd.log" ||
	fail "the enclave's message does not name the timeout"
while awk -v a="$t_stall" -v n="$(date +%s.%N)" 'BEGIN { exit !(n - a < '"$HANG_S"') }'; do
	sleep 0.2
done
tpmproxy_unstall "$CTL"
echo "tpm-hang: the TPM answers again"

# the vault serves again by itself, on the same port (sealvaultd kept the listener)
ok=0
for _ in $(seq 1 200); do
	if kill -0 "$SV_PID" 2>/dev/null && curl -fsS --max-time 2 --cacert "$SV_CACERT" \
		"$URL0/healthz" >/dev/null 2>&1; then
		ok=1
		break
	fi
	sleep 0.2
done
[ "$ok" -eq 1 ] || fail "the vault did not serve again within 40 s of the TPM's recovery"
kill -0 "$SV_PID" 2>/dev/null || fail "sealvaultd exited instead of restarting the pair"
sleep 2 # some load after the recovery
touch "$T/stop"
for p in "${PIDS[@]}"; do wait "$p" || true; done
PIDS=()

# the supervisor: restarted the pair itself, with a back-off that grew, and said so
starts=$(count 'sealvaultd: started sealvault-enclave')
hangs=$(count 'the TPM did not answer TPM2_CC_')
[ "$starts" -ge 2 ] || fail "the enclave was started $starts times"
[ "$hangs" -ge 1 ] && [ "$starts" -eq $((hangs + 1)) ] ||
	fail "$hangs hangs but $starts enclave starts"
grep -q "exited with status 75" "$T/srv/sealvaultd.log" || fail "no exit status 75 in the log"
grep -q "restarting it in 1 s (restart 1)" "$T/srv/sealvaultd.log" ||
	fail "no restart log line"
if [ "$hangs" -ge 2 ]; then
	grep -q "restarting it in 2 s (restart 2)" "$T/srv/sealvaultd.log" ||
		fail "the back-off did not grow"
fi
sv_metrics >"$T/metrics"
grep -q "^sealvault_tpm_timeouts_total $hangs$" "$T/metrics" ||
	fail "metrics: $(grep '^sealvault_tpm_timeouts_total' "$T/metrics")"
grep -q "^sealvault_enclave_restarts_total $hangs$" "$T/metrics" ||
	fail "metrics: $(grep '^sealvault_enclave_restarts_total' "$T/metrics")"

# no success that was not durable: every acknowledged registration recovers byte-identical
regs=0 acked=0 recs=0
cat "$T"/load.* >"$T/load"
while read -r kind a b c; do
	if [ "$kind" = reg ]; then
		regs=$((regs + 1))
		[ "$b" -eq 0 ] || continue
		acked=$((acked + 1))
		k=${a#w}
		k=${k%%-*}
		rm -f "$T/out"
		sv recover --user "$a" --password-file "$T/pw" --out "$T/out"
		[ "$rc" -eq 0 ] || fail "acknowledged registration $a does not recover: exit $rc: $err"
		cmp -s "$T/out" "$T/w$k/$a" || fail "acknowledged registration $a recovers another secret"
	else
		[ "$a" -ne 0 ] || [ "$b" = same ] || fail "a recovery succeeded with a wrong secret ($b)"
		[ "$a" -eq 0 ] || [ "$b" = none ] || fail "a failed recovery wrote a secret"
		[ "$a" -ne 0 ] || recs=$((recs + 1))
	fi
done <"$T/load"
failed=$((regs - acked))
[ "$failed" -ge 1 ] || fail "no client noticed the hang ($regs registrations all acknowledged)"
for k in $(seq 1 $WORKERS); do
	rm -f "$T/out"
	sv recover --user "u$k" --password-file "$T/pw" --out "$T/out"
	[ "$rc" -eq 0 ] && cmp -s "$T/out" "$T/u$k" || fail "u$k does not recover byte-identical (exit $rc: $err)"
done
echo "tpm-hang: ok: $hangs hang(s) seen, $starts enclave starts, $acked of $regs registrations" \
	"acknowledged (all recover), $recs recoveries ok, $(($(date +%s) - t_start)) s"
