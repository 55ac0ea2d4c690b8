#!/bin/bash
# check-state-fork (issue 11, docs/threat-model.md "State on disk"): the fork attack of a
# malicious operator, on real processes — sealvaultd (enclave + broker), the sealvault CLI, a
# real swtpm — behind tests/lib/tpm-proxy.py, which makes the TPM behave like a discrete chip
# (3 ms per command, 40 ms per flash write, 10 % transient NV_RATE/RETRY/YIELDED/NV_UNAVAILABLE
# answers) and lets the test stop the vault at a chosen TPM command.
#
# Part 1, ROUNDS rounds (default 14, every record kind twice): with the vault running on state S
# (its run has taken the counter over), copy S as P; make the vault fsync one record of the
# round's kind and stop it just before (or after) the NV increment that anchors it: copy S as Q,
# cut the power (kill -9, the held increment never reaches the TPM). Then the attack: put P back,
# start, make a wrong guess on the round's victim (answered, attempts left 2); put Q back: it
# must be refused with the operator message of docs/operations.md, although its head equals the
# counter; put the live state back: the guess is still charged (1 left), the next wrong guess
# destroys the record, and the right password cannot recover it. Kinds: unknown-identifier
# login/start (no-op), charge of a known user, reset after a valid KE3 (flush), a flush followed
# by a held commit, registration, authenticated deletion, the admin tool's delete.
#
# Part 2: two vault processes on two copies of one state directory, at the same time, on one
# TPM: the later one takes the counter over; the earlier one then answers no charged request
# (its guess gets no answer, its sealvaultd exits saying it was superseded) while the later one
# seals a harmless record under the same counter value and never increments; that copy,
# restored, starts (it completes its own record) with no guess lost or gained, and the earlier
# copy is refused for good.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
ADMIN=$PWD/$B/sealvault-admin
ROUNDS=${ROUNDS:-14}
. tests/lib/swtpm.sh
. tests/lib/tpmproxy.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d /tmp/sv-state-fork.XXXXXX)
chmod 0755 "$T"
BG=
cleanup() {
	set +e
	[ -n "$BG" ] && kill -9 "$BG" 2>/dev/null
	sv_server_stop
	[ -n "${B_PID:-}" ] && { SV_PID=$B_PID; sv_server_stop; }
	tpmproxy_cleanup
	swtpm_cleanup
	rm -rf "$T"
}
trap cleanup EXIT

step="setup"
fail() {
	echo "state-fork: FAIL ($step): $*" >&2
	for f in "$T"/srv*/sealvaultd.log; do
		[ -f "$f" ] && { echo "--- $f (tail)" >&2; tail -n 8 "$f" >&2; }
	done
	exit 1
}

KSF=(--ksf-t 1 --ksf-m 8)
printf 'correct horse battery staple\n' >"$T/pw"
printf 'wrong guess\n' >"$T/wrong"
head -c 32 /dev/urandom >"$T/secret"

# sv CMD ARGS...: the CLI against the current server; sets rc and err.
sv() {
	set +e
	"$SV" "$1" --server "$SV_URL" --cacert "$SV_CACERT" "${KSF[@]}" "${@:2}" 2>"$T/stderr"
	rc=$?
	set -e
	err=$(cat "$T/stderr")
}
expect() { # expect RC [TEXT]
	[ "$rc" -eq "$1" ] || fail "exit $rc, want $1; stderr: $err"
	[ -z "${2:-}" ] || grep -qF -- "$2" <<<"$err" || fail "stderr lacks '$2': $err"
}
# bg CMD ARGS...: the CLI in the background (it will wait for an answer that may never come).
bg() {
	"$SV" "$1" --server "$SV_URL" --cacert "$SV_CACERT" "${KSF[@]}" "${@:2}" \
		>"$T/bg.out" 2>"$T/bg.err" &
	BG=$!
}
# The request held in the proxy must never be answered: the CLI fails (exit 1, or 6 for the
# broker's 503 while the enclave restarts), it never reports a wrong password (2), a lock-out (3)
# or success (0).
bg_unanswered() {
	local brc=0
	wait "$BG" || brc=$?
	BG=
	[ "$brc" -eq 1 ] || [ "$brc" -eq 6 ] || fail "the request cut off at its NV increment was answered (exit $brc): $(cat "$T/bg.err")"
	! grep -q 'attempts left' "$T/bg.err" || fail "a cut-off guess reported attempts left"
}

# A power cut of the vault host: every vault process dies at once; then the held TPM command is
# dropped (it never reaches the TPM).
power_cut() {
	local kids
	kids=$(pgrep -P "$SV_PID" 2>/dev/null || true)
	# shellcheck disable=SC2086 # one pid per word
	kill -9 "$SV_PID" $kids 2>/dev/null || true
	wait "$SV_PID" 2>/dev/null || true
	SV_PID=
	tpmproxy_settle "$TPMPROXY_CTL"
}
hold_increment() { tpmproxy_hold "$TPMPROXY_CTL" 0x134; }
wait_held() { tpmproxy_wait_held "$TPMPROXY_CTL" 30 >/dev/null || fail "no NV command was held"; }
put_back() { # put_back COPY: the state directory becomes a copy of COPY
	rm -rf "$S"
	cp -a "$1" "$S"
}
start_refused() { # start_refused TEXT [TEXT2]: sealvaultd must refuse on $S, saying either
	: >"$SV_DIR/sealvaultd.log"
	if sv_server_start 2>"$T/start.err"; then
		fail "sealvaultd started on a forked copy"
	fi
	grep -qF -e "$1" -e "${2:-$1}" "$SV_DIR/sealvaultd.log" ||
		fail "refused for another reason: $(tail -n 3 "$SV_DIR/sealvaultd.log")"
}

# ---- setup: a vault whose TPM is a slow, flaky discrete chip ----
# A persistent endorsement key, as real TPMs have: an enclave then keeps one transient object
# loaded (its primary), and two enclaves fit swtpm's three object slots (the proxy is no resource
# manager that swaps contexts out, as the kernel's /dev/tpmrm0 is).
swtpm_provision_ek "$T/srv/tpm" "$T/ca"
sv_server_init "$T/srv" "$B"
S=$SV_DIR/state
# 40 ms for the commands that wrote flash, as a chip does (a hybrid forced flush is ~255
# increments of which one writes flash)
tpmproxy_start "$T/px" --cmd-delay-ms 3 --nv-delay-ms 40 --nv-delay-on flash --swtpm-state "$T/srv/tpm" \
	--transient-rate 0.1 --seed 11
SWTPM_TCTI=$TPMPROXY_TCTI # sealvaultd and sealvault-admin reach the TPM through the proxy only
sv_server_start

kinds=(noop charge reset flush register delete admin)
t0=$(date +%s)
for round in $(seq 1 "$ROUNDS"); do
	kind=${kinds[$(((round - 1) % ${#kinds[@]}))]}
	step="round $round ($kind)"
	v=victim$round
	sv register --user "$v" --password-file "$T/pw" --secret-file "$T/secret" --max-attempts 3
	expect 0 "registered"
	if [ "$kind" = delete ] || [ "$kind" = admin ]; then
		sv register --user "del$round" --password-file "$T/pw" --secret-file "$T/secret"
		expect 0 "registered"
	fi
	if [ "$kind" = admin ]; then
		sv_server_stop
		# The admin tool is a run too: P is taken once it has bound the counter to itself
		# (held at NV_ChangeAuth, released), Q when its deletion is fsynced and held at the
		# increment.
		tpmproxy_hold "$TPMPROXY_CTL" 0x13b
		"$ADMIN" delete --state-dir "$S" --tpm "$SWTPM_TCTI" --user "del$round" \
			>"$T/bg.out" 2>"$T/bg.err" &
		BG=$!
		wait_held
		# its start record is fsynced; the take-over goes through once released: P
		rm -rf "$T/P" "$T/Q"
		cp -a "$S" "$T/P"
		hold_increment
		tpmproxy_release "$TPMPROXY_CTL"
		wait_held
		cp -a "$S" "$T/Q"
		kill -9 "$BG"
		wait "$BG" 2>/dev/null || true
		BG=
		tpmproxy_settle "$TPMPROXY_CTL"
		! grep -q "deleted user" "$T/bg.out" || fail "the admin delete was acknowledged"
	else
		rm -rf "$T/P" "$T/Q"
		cp -a "$S" "$T/P"
		case $kind in
		noop)
			hold_increment
			bg recover --user "nobody$round" --password-file "$T/wrong" --out "$T/o"
			wait_held
			;;
		charge)
			hold_increment
			bg recover --user "$v" --password-file "$T/wrong" --out "$T/o"
			wait_held
			;;
		reset | flush)
			# A valid recovery: P is taken while its KE1 charge waits for the increment
			# (so P holds the charge, and not the reset that follows); the recovery
			# then completes, its reset a flush, fsynced and answered.
			hold_increment
			bg recover --user "$v" --password-file "$T/pw" --out "$T/o"
			wait_held
			rm -rf "$T/P"
			cp -a "$S" "$T/P"
			tpmproxy_release "$TPMPROXY_CTL"
			wait "$BG" || fail "the valid recovery failed: $(cat "$T/bg.err")"
			BG=
			cmp -s "$T/o" "$T/secret" || fail "the recovered secret differs"
			if [ "$kind" = flush ]; then # and then a commit, cut off at its increment
				hold_increment
				bg recover --user "nobody$round" --password-file "$T/wrong" --out "$T/o"
				wait_held
			fi
			;;
		register)
			hold_increment
			bg register --user "new$round" --password-file "$T/pw" --secret-file "$T/secret"
			wait_held
			;;
		delete) # login (charged: P; released), then the deletion's own commit, held
			hold_increment
			bg delete --user "del$round" --password-file "$T/pw"
			wait_held
			rm -rf "$T/P"
			cp -a "$S" "$T/P"
			hold_increment
			tpmproxy_release "$TPMPROXY_CTL"
			wait_held
			;;
		esac
		cp -a "$S" "$T/Q"
		power_cut
		[ -z "$BG" ] || bg_unanswered
	fi

	# the attack: P back, one wrong guess anchored and answered. (P of the reset and flush
	# kinds lacks the reset of the valid recovery, so there the victim has one charge more:
	# a rollback can take a reset away, never a charge.)
	put_back "$T/P"
	sv_server_start
	charged=0
	[ "$kind" = reset ] || [ "$kind" = flush ] && charged=1
	sv recover --user "$v" --password-file "$T/wrong" --out "$T/o"
	expect 2 "attempts left: $((2 - charged))"
	sv_server_stop
	rm -rf "$T/live"
	cp -a "$S" "$T/live"
	# Q back: its journal head equals the counter, but it is not the run that started last
	put_back "$T/Q"
	if [ "$kind" = reset ]; then # Q's head (a flush) is also behind the counter now
		# (hybrid: when the counter happens to end in M, a head in its block would be a
		# power cut to the judge; the run check refuses Q all the same)
		start_refused "state is older than the TPM" "not the one the vault last started from"
	else # Q's head equals the counter: only the run check refuses it (hybrid: when the
		# victim's guess was a forced flush, Q is also behind the counter, said first)
		start_refused "not the one the vault last started from" "state is older than the TPM"
	fi
	set +e
	"$ADMIN" status --state-dir "$S" --tpm "$SWTPM_TCTI" >"$T/status" 2>"$T/status.err"
	src=$?
	set -e
	[ "$src" -eq 3 ] && grep -qx 'agree: no' "$T/status" || fail "status agreed with a forked copy"
	# the live state: the guess is still charged; the limit is exact
	put_back "$T/live"
	sv_server_start
	if [ "$charged" -eq 0 ]; then
		sv recover --user "$v" --password-file "$T/wrong" --out "$T/o"
		expect 2 "attempts left: 1"
	fi
	sv recover --user "$v" --password-file "$T/wrong" --out "$T/o"
	expect 3 "destroyed"
	sv recover --user "$v" --password-file "$T/pw" --out "$T/o"
	expect 3 "destroyed"
	echo "state-fork: round $round ($kind): fork refused, $((3 - charged)) wrong guesses answered for limit 3"
done
t1=$(date +%s)
injected=$(tpmproxy_stat "$TPMPROXY_CTL" injected)
[ "$injected" -gt 0 ] || fail "the proxy injected no transient TPM errors: the retry paths were not exercised"

# ---- the take-over's own window: a crash after the start record's fsync, before NV_ChangeAuth ----
step="take-over cut off"
sv register --user tk --password-file "$T/pw" --secret-file "$T/secret" --max-attempts 3
expect 0 "registered"
sv_server_stop
tpmproxy_hold "$TPMPROXY_CTL" 0x13b
sv_server_start >/dev/null 2>&1 &
BG=$!
wait_held
rm -rf "$T/W"
cp -a "$S" "$T/W" # its last frame: a start record whose take-over never happens
# the power cut: sealvaultd and its children die, the held NV_ChangeAuth never reaches the TPM
pids=$(pgrep -f "sealvaultd --state-dir $S" || true)
# shellcheck disable=SC2086 # one pid per word
for p in $pids; do kill -9 $(pgrep -P "$p" 2>/dev/null) "$p" 2>/dev/null || true; done
kill -9 "$BG" 2>/dev/null || true
wait "$BG" 2>/dev/null || true
BG=
tpmproxy_settle "$TPMPROXY_CTL"
SV_PID=
put_back "$T/W"
rm -rf "$T/W2"
cp -a "$S" "$T/W2"
sv_server_start # the dead start record is dropped; the previous run's binding is accepted
sv_server_stop
rm -rf "$T/live"
cp -a "$S" "$T/live"
put_back "$T/W2" # the same cut-off copy, now that another run has started: refused
start_refused "not the one the vault last started from"
put_back "$T/live"
sv_server_start
sv recover --user tk --password-file "$T/wrong" --out "$T/o"
expect 2 "attempts left: 2"
echo "state-fork: cut off between the start record and NV_ChangeAuth: restarted, the copy refused afterwards"

# ---- part 2: two vaults at once on two copies of one state directory ----
step="two copies at once"
sv register --user twin --password-file "$T/pw" --secret-file "$T/secret" --max-attempts 3
expect 0 "registered"
A_PID=$SV_PID A_URL=$SV_URL A_DIR=$SV_DIR
mkdir -p "$T/srvB"
cp -a "$SV_DIR/cert.pem" "$SV_DIR/key.pem" "$T/srvB/"
cp -a "$S" "$T/srvB/state" # a copy of the live directory, taken while A serves
SV_DIR=$T/srvB
sv_server_start # B: takes the counter over
B_PID=$SV_PID
# B seals a harmless record under the next counter value and never increments it
hold_increment
bg recover --user nobody-b --password-file "$T/wrong" --out "$T/o"
wait_held
B_BG=$BG
BG=
# A, superseded, gets a guess: it seals it under the same value, its increment is refused
SV_PID=$A_PID SV_URL=$A_URL SV_DIR=$A_DIR
sv recover --user twin --password-file "$T/wrong" --out "$T/o"
[ "$rc" -ne 2 ] && [ "$rc" -ne 3 ] && [ "$rc" -ne 0 ] || fail "the superseded vault answered a charged guess (exit $rc: $err)"
for _ in $(seq 1 100); do kill -0 "$A_PID" 2>/dev/null || break; sleep 0.05; done
! kill -0 "$A_PID" 2>/dev/null || fail "the superseded vault still runs"
wait "$A_PID" 2>/dev/null || true
grep -q "superseded" "$A_DIR/sealvaultd.log" || fail "the superseded vault did not say why it stopped"
SV_PID=
# B's copy, taken while its record waits for the increment, then a power cut of B
cp -a "$T/srvB/state" "$T/Qb"
SV_PID=$B_PID SV_DIR=$T/srvB
BG=$B_BG
power_cut
bg_unanswered
B_PID=
# A's directory never starts again
SV_DIR=$A_DIR
start_refused "not the one the vault last started from"
# B's copy starts (completing its own record) and twin has lost and gained nothing
put_back "$T/Qb"
sv_server_start
sv recover --user twin --password-file "$T/wrong" --out "$T/o"
expect 2 "attempts left: 2"
sv recover --user twin --password-file "$T/pw" --out "$T/o"
expect 0
cmp -s "$T/o" "$T/secret" || fail "twin's secret differs"
echo "state-fork: $ROUNDS rounds in $((t1 - t0)) s (every kind refused when forked, limits exact; $injected transient TPM errors retried); two copies at once: the superseded one answered nothing and never starts again"
echo "1 passed, 0 failed"
