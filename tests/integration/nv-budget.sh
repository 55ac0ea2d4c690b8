#!/bin/bash
# check-nv-budget (issue 12, I7 bounded wear; enclave/budget.h): a hybrid vault with a small
# NV-write budget (nv-writes-per-day, nv-writes-burst) is saturated for SECONDS (default 12) by
# HTTPS clients, and swtpm's own flash writes are counted (tests/lib/
# tpm-proxy.py --swtpm-state: the commands after which swtpm rewrote its state file; no delays,
# no faults). budget.h's argument: over a window of T seconds from the enclave's start the NV
# writes stay within
#     N = burst + rate * T + 1 (the block of 256 increments the window starts inside)
#                          + 1 (the start's NV_ChangeAuth)
# whatever the clients do. Two variants, each on a fresh vault:
#   unknown  (8640 per day: a token every 10 s, i.e. 25.6 increments a second; burst 1; 4
#            clients, so that commits are small and many: unbudgeted they would write NV about
#            14 times in 12 s here)
#            wrong guesses on fresh unknown identifiers (fake KE2s, no forced flushes): every
#            guess is answered, none is refused (busy), the commits wait for tokens instead
#            (sealvault_commit_spacings_total > 0: the budget did bind);
#   wrong    (86400 per day, burst 3; 16 clients)
#            each client's own registered user (guess limit 255) guessed with a wrong password
#            again and again: every second guess before the first is on NV needs a forced
#            flush; those that do not fit are answered 503 "busy ... changed nothing" (or wait
#            in a commit that is waiting for tokens anyway), and guesses are still answered
#            (forced flushes happen as tokens come).
# Both: no other error, the NV writes within N, and `sealvault-admin status` agrees afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SECONDS_PER_RUN=${1:-12}
. tests/lib/swtpm.sh
. tests/lib/tpmproxy.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d "${TMPDIR:-/tmp}/sv-nv-budget.XXXXXX")
chmod 755 "$T"
cleanup() {
	local rc=$?
	set +e
	sv_server_stop
	tpmproxy_cleanup
	swtpm_cleanup
	if [ $rc -ne 0 ]; then
		for f in "$T"/*/sealvaultd.log "$T"/*/bench.out; do
			[ -f "$f" ] && { echo "--- $f (tail)" >&2; tail -n 12 "$f" >&2; }
		done
	fi
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "nv-budget: FAIL ($variant): $*" >&2
	exit 1
}
metric() { awk -v n="$2" '$1 == n { print $2 }' "$1"; }
now() { echo "$EPOCHREALTIME"; }

for variant in unknown wrong; do
	V=$T/$variant
	if [ "$variant" = unknown ]; then
		PER_DAY=8640 BURST=1 args=(--guess unknown --clients 4)
	else
		PER_DAY=86400 BURST=3 args=(--guess wrong --guess-limit 255 --clients 16)
	fi
	SV_INIT_ARGS=(--counter-scheme hybrid)
	sv_server_init "$V" "$B" >/dev/null
	tpmproxy_start "$V/px" --swtpm-state "$V/tpm"
	SWTPM_TCTI=$TPMPROXY_TCTI
	SV_DAEMON_ARGS=(--rate-limit 0 --max-conns-per-ip 0 --login-rate-per-id 0 --max-pending-logins-per-ip 0 --nv-writes-per-day "$PER_DAY"
		--nv-writes-burst "$BURST" --max-guess-limit 255)
	f0=$(tpmproxy_flash_writes "$TPMPROXY_CTL")
	t0=$(now)
	sv_server_start
	"$B/sealvault-bench" --url "$SV_URL" --cacert "$SV_CACERT" --seconds "$SECONDS_PER_RUN" \
		"${args[@]}" >"$V/bench.out" 2>&1 || fail "clients saw errors: $(tail -n 3 "$V/bench.out")"
	sv_metrics >"$V/metrics"
	sv_server_stop
	t1=$(now)
	f1=$(tpmproxy_flash_writes "$TPMPROXY_CTL")
	writes=$((f1 - f0))
	n=$(awk -v b="$BURST" -v r="$PER_DAY" -v a="$t0" -v z="$t1" \
		'BEGIN { printf "%d", b + r / 86400 * (z - a) + 1 + 1 }')
	tight=$(awk -v b="$BURST" -v r="$PER_DAY" -v a="$t0" -v z="$t1" \
		'BEGIN { printf "%d", b + r / 86400 * (z - a) + 1 }')
	line=$(grep '^guess ' "$V/bench.out")
	answered=$(echo "$line" | sed -n 's/^guess ([^)]*): \([0-9]*\) answered.*/\1/p')
	busy=$(echo "$line" | sed -n 's/.*busy (503) \([0-9]*\);.*/\1/p')
	spacings=$(metric "$V/metrics" sealvault_commit_spacings_total)
	forced=$(metric "$V/metrics" sealvault_forced_flushes_total)
	vbusy=$(metric "$V/metrics" sealvault_vault_busy_total)
	vwrites=$(metric "$V/metrics" sealvault_nv_writes_total)
	printf 'nv-budget: %-7s %s s: %d NV writes at the TPM (allowed N = %d; budget.h without the +1 for the start: %d), %s answered, %s busy (vault: %s), %s forced flushes, %s commits spaced out\n' \
		"$variant" "$(awk -v a="$t0" -v z="$t1" 'BEGIN { printf "%.1f", z - a }')" \
		"$writes" "$n" "$tight" "$answered" "$busy" "$vbusy" "$forced" "$spacings"
	echo "nv-budget: $variant: $line"
	[ "$writes" -le "$n" ] || fail "$writes NV writes at the TPM, more than the budget's $n"
	[ "$writes" -le "$tight" ] ||
		echo "nv-budget: NOTE: $writes NV writes exceed budget.h's own bound $tight (the start's NV_ChangeAuth is charged to the bucket)"
	[ "${answered:-0}" -ge 10 ] || fail "only ${answered:-0} guesses answered: the budget must slow guesses down, not stop them"
	[ "$busy" = "$vbusy" ] || fail "$busy busy answers seen, the enclave refused $vbusy: some came from elsewhere"
	if [ "$variant" = unknown ]; then
		[ "$busy" -eq 0 ] || fail "$busy busy answers: unknown identifiers need no forced flush, their commits must wait instead"
		[ "$spacings" -gt 0 ] || fail "no commit waited for the budget: the test did not reach it"
	else
		[ "$forced" -ge 2 ] || fail "only $forced forced flushes: the second guesses did not need them?"
		[ "$busy" -eq 0 ] || grep -q "changed nothing" "$V/bench.out" ||
			echo "nv-budget: NOTE: the client's busy message does not say that nothing changed: $(grep 'busy e.g.' "$V/bench.out" || true)"
	fi
	"$B/sealvault-admin" status --state-dir "$V/state" --tpm "$SWTPM_TCTI" >"$V/status" 2>&1 ||
		fail "status: $(cat "$V/status")"
	grep -q '^agree: yes' "$V/status" || fail "status does not agree: $(cat "$V/status")"
	grep -q "^nv-writes: $vwrites\$" "$V/status" ||
		echo "nv-budget: NOTE: status says $(grep '^nv-writes' "$V/status"), /metrics said $vwrites"
	tpmproxy_stop "$V/px"
	swtpm_stop "$V/tpm"
done
echo "nv-budget: ok"
