#!/bin/bash
# check-state-hybrid (issue 12): the hybrid counter's guarantee under an operator who holds the
# power switch and the disk. TRIALS times (default 200): the store runs a stream of guesses,
# registrations and deletions (tests/integration/hybrid-driver.c) on a private swtpm; at a
# random moment the test cuts the power (kill -9 of swtpm and of the vault process; one trial in
# eight kills only the vault), sometimes after copying the live state directory; then the
# "operator" offers the start-up check one of: the state as it is, its journal truncated at a
# random byte, or any copy taken so far. Whatever the check accepts is verified against
# everything ever acknowledged (hybrid-driver verify): no user was answered more guesses than the
# state charges (the power-cut penalty included) or than its limit, and no acknowledged
# registration or deletion is missing. The accepted directory is then the vault's (the operator
# "restored" it) and the next trial starts it, which charges the penalty. The state as it is must
# always be accepted.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/swtpm.sh
DRIVER=${HYBRID_DRIVER:?}
SDRIVER=${STATE_DRIVER:?}
ADMIN=${SEALVAULT_ADMIN:?}
TRIALS=${TRIALS:-200}
T=$(mktemp -d /tmp/sv-state-hybrid.XXXXXX)
DPID=
ok=0
cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	swtpm_cleanup
	if [ -n "${KEEP_FAILED:-}" ] && [ "$ok" -eq 0 ]; then
		mv "$T" "$KEEP_FAILED" && echo "kept the failed run in $KEEP_FAILED"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
SEED=${SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$((SEED % 32768))
echo "state-hybrid: $TRIALS trials (seed $SEED)"

swtpm_start "$T/tpm"
"$ADMIN" init --state-dir "$T/state" --policy-key-out "$T/key" --tpm "$SWTPM_TCTI" \
	--counter-scheme hybrid >/dev/null 2>"$T/err" || { cat "$T/err"; fail "init"; }
"$DRIVER" setup --state-dir "$T/state" --tpm "$SWTPM_TCTI" --users 512 >>"$T/acks" ||
	fail "setup"
ncopies=0
accepted=0 refused=0 penalties=0 truncated_ok=0 copies_ok=0 cuts=0
for trial in $(seq 1 "$TRIALS"); do
	"$DRIVER" load --state-dir "$T/state" --tpm "$SWTPM_TCTI" --users 512 \
		--seed $((SEED + trial)) >"$T/out" 2>"$T/err" &
	DPID=$!
	ms=$((RANDOM % 400 + 60))
	if [ $((RANDOM % 3)) -eq 0 ]; then # a copy of the live directory, possibly torn
		sleep "0.$(printf '%03d' $((ms / 2)))"
		ncopies=$((ncopies + 1))
		cp -r "$T/state" "$T/copy.$ncopies" 2>/dev/null || true
		ms=$((ms / 2))
	fi
	sleep "0.$(printf '%03d' "$ms")"
	[ -n "${TIMING:-}" ] && echo "t$trial load $(date +%s.%N)"
	cut=$((RANDOM % 8))
	if [ "$cut" -ne 0 ]; then # a power cut: the TPM loses what only its RAM held
		kill -9 "$DPID" "$(swtpm_pid "$T/tpm")" 2>/dev/null || true
		cuts=$((cuts + 1))
	else
		kill -9 "$DPID" 2>/dev/null || true
	fi
	rc=0
	wait "$DPID" 2>/dev/null || rc=$?
	DPID=
	[ "$rc" -eq 137 ] || { cat "$T/err"; fail "trial $trial: the vault exited $rc before the cut"; }
	cat "$T/out" >>"$T/acks"
	if [ "$cut" -ne 0 ]; then
		swtpm_kill "$T/tpm"
		swtpm_start "$T/tpm"
	fi
	# What the operator offers the start-up check.
	pick=$((RANDOM % 10))
	cand="$T/state"
	what="as is"
	if [ "$pick" -ge 6 ]; then
		rm -rf "$T/cand" && cp -r "$T/state" "$T/cand"
		len=$(stat -c %s "$T/cand/journal")
		# mostly near the end, where the power-cut window is; sometimes anywhere
		span=$((len - 47)) r=$((RANDOM % 20))
		if [ "$r" -lt 12 ] && [ "$span" -gt 2048 ]; then span=2048
		elif [ "$r" -lt 17 ] && [ "$span" -gt 8192 ]; then span=8192; fi
		cutat=$((len - (RANDOM * 32768 + RANDOM) % span))
		truncate -s "$cutat" "$T/cand/journal"
		cand="$T/cand" what="journal truncated at $cutat of $len"
	elif [ "$pick" -ge 3 ] && [ "$ncopies" -gt 0 ]; then
		k=$ncopies # the newest copy half of the time: it may still be inside the window
		[ $((RANDOM % 2)) -eq 0 ] && k=$((RANDOM % ncopies + 1))
		rm -rf "$T/cand" && cp -r "$T/copy.$k" "$T/cand"
		cand="$T/cand" what="copy $k"
	fi
	[ -n "${TIMING:-}" ] && echo "t$trial verify $(date +%s.%N)"
	rc=0
	"$DRIVER" verify --state-dir "$cand" --tpm "$SWTPM_TCTI" --acks "$T/acks" >"$T/vout" \
		2>"$T/verr" || rc=$?
	case $rc in
	0)
		accepted=$((accepted + 1))
		grep -q ' penalty 1 ' "$T/vout" && penalties=$((penalties + 1))
		if [ "$cand" != "$T/state" ]; then
			case $what in journal*) truncated_ok=$((truncated_ok + 1)) ;; *) copies_ok=$((copies_ok + 1)) ;; esac
			rm -rf "$T/state" && mv "$cand" "$T/state" # the operator restores it
		fi
		;;
	3)
		[ "$cand" != "$T/state" ] || { cat "$T/verr"; fail "trial $trial: the state as it is was refused after a cut"; }
		refused=$((refused + 1))
		[ -n "${TIMING:-}" ] && echo "t$trial refused $what: $(cat "$T/verr")"
		;;
	*) cat "$T/verr"; fail "trial $trial ($what): $(head -n3 "$T/verr")" ;;
	esac
done
# Start it for real once more: the penalty is charged, and the vault still agrees with the TPM.
"$DRIVER" load --state-dir "$T/state" --tpm "$SWTPM_TCTI" --users 512 --seed 7 >"$T/out" 2>"$T/err" &
DPID=$!
sleep 0.3
kill -9 "$DPID" && wait "$DPID" 2>/dev/null || true
DPID=
cat "$T/out" >>"$T/acks"
"$DRIVER" verify --state-dir "$T/state" --tpm "$SWTPM_TCTI" --acks "$T/acks" >"$T/vout" ||
	fail "final verification"
"$ADMIN" status --state-dir "$T/state" --tpm "$SWTPM_TCTI" >"$T/status" || { cat "$T/status"; fail "status"; }
grep -q '^agree: yes' "$T/status" || fail "status does not agree"
[ "$penalties" -gt 0 ] || fail "no power cut ever needed the penalty: the test did not test it"
[ "$truncated_ok" -gt 0 ] || fail "no truncated journal was ever accepted: the window was never tested"
acks=$(grep -c '^ack charge' "$T/acks" || true)
[ "$acks" -gt $((TRIALS * 5)) ] || fail "only $acks guesses were acknowledged: no load"

# The yearly budget of unclean boots (default 12): every power cut is one (even right after a
# flush, the TPM reads its NV copy with the low bits set); the 13th in a year is refused until
# the operator acknowledges, and acknowledging charges the penalty that start held back.
swtpm_kill "$T/tpm"
swtpm_start "$T/tpm2"
"$ADMIN" init --state-dir "$T/b" --policy-key-out "$T/bkey" --tpm "$SWTPM_TCTI" >/dev/null 2>&1 ||
	fail "init of the budget vault"
"$SDRIVER" put --user first --state-dir "$T/b" --tpm "$SWTPM_TCTI" >/dev/null || fail "first put"
for i in $(seq 1 12); do
	swtpm_kill "$T/tpm2" && swtpm_start "$T/tpm2"
	"$SDRIVER" put --user "u$i" --state-dir "$T/b" --tpm "$SWTPM_TCTI" >/dev/null 2>"$T/err" ||
		{ cat "$T/err"; fail "power cut $i of 12 was refused"; }
done
"$ADMIN" status --state-dir "$T/b" --tpm "$SWTPM_TCTI" >"$T/status" || fail "status"
grep -q '^unclean-boots-last-year: 12 (not acknowledged: 12)' "$T/status" ||
	{ cat "$T/status"; fail "status does not count 12 unclean boots"; }
"$SDRIVER" lookup --user first --state-dir "$T/b" --tpm "$SWTPM_TCTI" | grep -q 'used 3 limit 3 destroyed 1' ||
	fail "12 penalties did not destroy a record with guess limit 3"
swtpm_kill "$T/tpm2" && swtpm_start "$T/tpm2"
rc=0
"$SDRIVER" put --user u13 --state-dir "$T/b" --tpm "$SWTPM_TCTI" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] && grep -q 'acknowledge-unclean-boots' "$T/err" ||
	{ cat "$T/err"; fail "the 13th unclean boot in a year was not refused (exit $rc)"; }
"$ADMIN" acknowledge-unclean-boots --state-dir "$T/b" --tpm "$SWTPM_TCTI" >"$T/out" 2>"$T/err" ||
	{ cat "$T/err"; fail "acknowledge-unclean-boots"; }
grep -q 'penalty' "$T/out" || fail "acknowledging did not charge the held-back penalty"
"$SDRIVER" put --user u13 --state-dir "$T/b" --tpm "$SWTPM_TCTI" >/dev/null 2>"$T/err" ||
	{ cat "$T/err"; fail "the vault does not start after the acknowledgement"; }
"$ADMIN" status --state-dir "$T/b" --tpm "$SWTPM_TCTI" >"$T/status" || fail "status"
grep -q '^unclean-boots-last-year: 13 (not acknowledged: 0)' "$T/status" ||
	{ cat "$T/status"; fail "status after the acknowledgement"; }

ok=1
echo "state-hybrid: 13 unclean boots: the 13th refused until acknowledged"
echo "state-hybrid: $TRIALS trials ($cuts power cuts, $ncopies copies): $accepted accepted" \
	"($penalties with the penalty, $truncated_ok truncated journals, $copies_ok copies)," \
	"$refused refused; $acks acknowledged guesses, none given back"
