#!/bin/bash
# check-state-migrate (issue 12): `sealvault-admin upgrade --counter-scheme hybrid` moves a plain
# vault to the hybrid counter with every user, record and guess count, refuses every copy of the
# directory taken before (and, once finished, during) the migration, and leaves exactly the two
# new NV indices behind. The migration is cut off (kill -9 while tests/lib/tpm-proxy.py holds a
# chosen TPM command, which then never reaches the TPM) at the final plain commit, at the second
# counter's definition, at the removal of a counter an earlier attempt left, at the removal of
# the old counter (the commit point), and once just after it (the test removes the old counter
# itself, as if the TPM had executed the command before the process died); each time, running
# the command again starts over or finishes, with nothing lost.
set -euo pipefail
cd "$(dirname "$0")/../.."
DRIVER=${STATE_DRIVER:?}
ADMIN=${SEALVAULT_ADMIN:?}
. tests/lib/swtpm.sh
. tests/lib/tpmproxy.sh
T=$(mktemp -d /tmp/sv-state-migrate.XXXXXX)
cleanup() {
	set +e
	tpmproxy_cleanup
	swtpm_cleanup
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "state-migrate: FAIL: $*" >&2
	exit 1
}
S=$T/state
OLD=0x01005356
swtpm_start "$T/tpm"
tpmproxy_start "$T/px"
TPM=$TPMPROXY_TCTI
CTL=$TPMPROXY_CTL
D() { "$DRIVER" "$@" --state-dir "$S" --tpm "$TPM"; }
RUN() { D "$@" --seed 7 --batch 3; }
migrate() { "$ADMIN" upgrade --counter-scheme hybrid --state-dir "$S" --tpm "$TPM" "$@"; }
# tpm2-tools need swtpm's control port, which the proxy does not have, and swtpm serves one
# connection at a time: stop the proxy around them (a new one gets a new port)
tools() {
	local rc=0
	tpmproxy_stop "$T/px"
	timeout 20 "$@" --tcti "swtpm:host=127.0.0.1,port=$SWTPM_PORT" || rc=$?
	tpmproxy_start "$T/px"
	TPM=$TPMPROXY_TCTI
	CTL=$TPMPROXY_CTL
	return $rc
}
# NV indices defined on the TPM into $T/nv, one 0x%08x a line, sorted (not in a subshell: tools
# restarts the proxy)
nv_indices() {
	tools tpm2_getcap handles-nv-index >"$T/nv.raw" || fail "tpm2_getcap"
	while read -r _ h; do printf '0x%08x\n' "$h"; done <"$T/nv.raw" | sort >"$T/nv"
}

# ---- a plain vault in use: a stream of registrations, charges, resets, deletions; alice at
# two wrong guesses of three ----
"$ADMIN" init --state-dir "$S" --policy-key-out "$T/pk" --tpm "$TPM" --nv-index "$OLD" \
	--counter-scheme plain >/dev/null 2>"$T/err" || fail "init: $(cat "$T/err")"
# 270 commits: the plain counter ends above 256, so that the first new counter (which starts
# at the highest value of any counter deleted so far, plus one, rounded up to a multiple of 256)
# lies below it and a later one above it: both orders of the two journals' bases are crossed
RUN run --ops 810 >/dev/null || fail "driver run on the plain vault"
D put --user alice >/dev/null || fail "put alice"
D charge --user alice >/dev/null && D charge --user alice >/dev/null || fail "charge alice"
D lookup --user alice | grep -q 'used 2 limit 3 destroyed 0' || fail "alice not at 2 guesses"
"$ADMIN" status --state-dir "$S" --tpm "$TPM" >"$T/status" || fail "status of the plain vault"
grep -q '^counter-scheme: plain' "$T/status" || fail "not a plain vault: $(cat "$T/status")"
users_before=$(sed -n 's/^users: //p' "$T/status")
nv_indices
mv "$T/nv" "$T/nv.before"
cp -a "$S" "$T/copy-before"

# `upgrade` without the flag leaves a current vault alone; bad arguments are refused
"$ADMIN" upgrade --state-dir "$S" --tpm "$TPM" | grep -q 'already current' ||
	fail "upgrade without --counter-scheme changed something"
rc=0
migrate --counter-scheme plain >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] || fail "--counter-scheme plain accepted (exit $rc)"

# ---- cut off: hold the N-th command CODE of the migration, kill it there ----
# (counted with the proxy's "held" statistic: two holds may follow within milliseconds, too fast
# for tpmproxy_release, which waits for CTL/held to disappear)
held() { tpmproxy_stat "$CTL" held; }
cut() { # CODE N
	local code=$1 n=$2 i k base
	base=$(held)
	tpmproxy_hold "$CTL" "$code"
	# not through migrate(): $! must be the process itself, not a subshell waiting for it
	"$ADMIN" upgrade --counter-scheme hybrid --state-dir "$S" --tpm "$TPM" >"$T/out" 2>&1 &
	local pid=$!
	for i in $(seq 1 "$n"); do
		for k in $(seq 1 3000); do
			[ "$(held)" -ge $((base + i)) ] && break
			[ "$k" -lt 3000 ] || fail "no command $code #$i: $(cat "$T/out")"
			sleep 0.01
		done
		[ "$i" -eq "$n" ] && break
		tpmproxy_hold "$CTL" "$code" # the next one; written while this one waits
		echo >"$CTL/release"
	done
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	tpmproxy_settle "$CTL"
	echo "state-migrate: cut off at TPM command $code #$n"
}
# the final commit's NV_Increment: the journal is one ahead, the next open completes it
cut 0x134 1
# the orderly counter's NV_DefineSpace (the unclean-boots counter is already defined)
cut 0x12a 2
[ -e "$S/upgrade.intent" ] || fail "no upgrade.intent after a cut during the definitions"
# the removal of that leftover unclean-boots counter by the next attempt
cut 0x122 1
# `upgrade` without the flag must not finish a migration (it only removes 0.2 counters)
rc=0
"$ADMIN" upgrade --state-dir "$S" --tpm "$TPM" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -ne 0 ] && grep -q -- '--counter-scheme hybrid' "$T/err" ||
	fail "upgrade without the flag on a cut-off migration (exit $rc): $(cat "$T/err")"
# the removal of the old counter, the commit point (after removing the leftover: #2)
cut 0x122 2
[ -e "$S/vault.hdr.hybrid" ] || fail "no staged header before the commit point"
cp -a "$S" "$T/copy-during"
D lookup --user alice | grep -q 'used 2 limit 3' || fail "the plain vault does not open before the commit point"
# once more, and this time the old counter goes as if the TPM had executed the command
# (leftovers: two counters to remove first, then the old one: #3)
cut 0x122 3
tools tpm2_nvundefine "$OLD" ||
	fail "tpm2_nvundefine $OLD"
rc=0
D lookup --user alice >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] && grep -q 'run the same sealvault-admin upgrade command again' "$T/err" ||
	fail "a start between the commit point and the switch (exit $rc): $(cat "$T/err")"

# ---- finishing ----
migrate >"$T/out" 2>"$T/err" || fail "the migration did not finish: $(cat "$T/err")"
grep -q "^migrated vault in $S to the hybrid counter: NV counter 0x[0-9a-f]* replaces $OLD ($users_before users)" "$T/out" ||
	fail "migration said: $(cat "$T/out")"
migrate >"$T/out" 2>"$T/err" || fail "a second run failed: $(cat "$T/err")"
grep -q 'already hybrid' "$T/out" || fail "a second run said: $(cat "$T/out")"
[ ! -e "$S/upgrade.intent" ] && [ ! -e "$S/vault.hdr.hybrid" ] || fail "leftover files: $(ls "$S")"

"$ADMIN" status --state-dir "$S" --tpm "$TPM" >"$T/status" || fail "status refused the migrated vault"
grep -qx 'counter-scheme: hybrid' "$T/status" && grep -qx 'agree: yes' "$T/status" &&
	grep -qx "users: $users_before" "$T/status" || fail "status: $(cat "$T/status")"
NEW=$(sed -n 's/^nv-index: //p' "$T/status")
UNCLEAN=$(printf '0x%08x' $((NEW + 0x10000)))
grep -q "^unclean-boots-counter: $UNCLEAN " "$T/status" || fail "unclean-boots counter: $(cat "$T/status")"
# exactly the two new indices replace the old one: nothing left by the cut-off attempts
(grep -vx "$OLD" "$T/nv.before" || true; echo "$NEW"; echo "$UNCLEAN") | sort >"$T/nv.want"
nv_indices
cmp -s "$T/nv" "$T/nv.want" || fail "NV indices: $(tr '\n' ' ' <"$T/nv"), want $(tr '\n' ' ' <"$T/nv.want")"

# every user and guess count is there, and the vault goes on under the hybrid counter
RUN check --ops 810 --acked 809 | grep -q '^position 810 ' || fail "state lost in the migration"
D lookup --user alice | grep -q 'used 2 limit 3 destroyed 0' || fail "alice's guesses changed"
D charge --user alice | grep -q '0 left' || fail "alice's last guess"
D lookup --user alice | grep -q 'destroyed 1' || fail "alice not destroyed at her limit"
RUN run --ops 840 --acked 809 >/dev/null || fail "the migrated vault does not commit"
RUN check --ops 840 --acked 839 | grep -q '^position 840 ' || fail "commits after the migration lost"

# copies of the plain directory are refused: taken before (the old counter is gone), and taken
# during the migration (it finishes the switch, but its run is not the one the counter is bound
# to); neither removes anything of the migrated vault
for c in copy-before copy-during; do
	rc=0
	"$DRIVER" check --ops 840 --acked 0 --seed 7 --batch 3 --state-dir "$T/$c" --tpm "$TPM" \
		>/dev/null 2>"$T/err" || rc=$?
	[ "$rc" -eq 3 ] || fail "$c opened after the migration (exit $rc)"
	rc=0
	"$ADMIN" upgrade --counter-scheme hybrid --state-dir "$T/$c" --tpm "$TPM" >/dev/null \
		2>"$T/err" || rc=$?
	[ "$rc" -ne 0 ] || fail "$c was migrated into a second vault"
	echo "state-migrate: $c refused: $(cat "$T/err")"
	rc=0
	"$DRIVER" check --ops 840 --acked 0 --seed 7 --batch 3 --state-dir "$T/$c" --tpm "$TPM" \
		>/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 3 ] || fail "$c opened after a migration attempt (exit $rc)"
done
nv_indices
cmp -s "$T/nv" "$T/nv.want" || fail "a copy's migration attempt changed the NV indices: $(tr '\n' ' ' <"$T/nv")"
RUN check --ops 840 --acked 839 | grep -q '^position 840 ' || fail "the migrated vault does not open"

# ---- a second plain vault, migrated in one go to the index asked for: the journal is emptied
# after the switch (the new counter starts above the old one now); a taken index is refused
# before anything is written ----
S2=$T/state2
"$ADMIN" init --state-dir "$S2" --policy-key-out "$T/pk2" --tpm "$TPM" --nv-index 0x01005400 \
	--counter-scheme plain >/dev/null 2>"$T/err" || fail "init of the second vault: $(cat "$T/err")"
"$DRIVER" put --user bob --state-dir "$S2" --tpm "$TPM" >/dev/null || fail "put bob"
"$ADMIN" status --state-dir "$S2" --tpm "$TPM" >"$T/status" || fail "status of the second vault"
w0=$(sed -n 's/^nv-writes: //p' "$T/status")
rc=0
"$ADMIN" upgrade --counter-scheme hybrid --state-dir "$S2" --tpm "$TPM" --nv-index "$NEW" \
	>/dev/null 2>"$T/err" || rc=$?
[ "$rc" -ne 0 ] && grep -q 'already defined' "$T/err" && [ ! -e "$S2/upgrade.intent" ] ||
	fail "a taken --nv-index (exit $rc): $(cat "$T/err")"
"$ADMIN" upgrade --counter-scheme hybrid --state-dir "$S2" --tpm "$TPM" --nv-index 0x01005500 \
	>"$T/out" 2>"$T/err" || fail "the second migration: $(cat "$T/err")"
grep -q 'NV counter 0x01005500 replaces 0x01005400 (1 users)' "$T/out" || fail "said: $(cat "$T/out")"
"$ADMIN" status --state-dir "$S2" --tpm "$TPM" >"$T/status" || fail "status of the second vault"
grep -qx 'counter-scheme: hybrid' "$T/status" && grep -qx 'agree: yes' "$T/status" &&
	grep -q '^unclean-boots-counter: 0x01015500 ' "$T/status" || fail "status: $(cat "$T/status")"
w1=$(sed -n 's/^nv-writes: //p' "$T/status")
"$DRIVER" lookup --user bob --state-dir "$S2" --tpm "$TPM" | grep -q 'used 0 limit 3' || fail "bob lost"
echo "state-migrate: the migration cost $((w1 - w0)) NV writes (besides the old counter's removal)"
echo "state-migrate: plain vault migrated to hybrid after 5 interruptions, all changes kept, copies refused"
echo "1 passed, 0 failed"
