#!/bin/bash
# check-state-upgrade: a vault provisioned and used by sealvault 0.2 (built here from the last 0.2
# commit of this repository, UPGRADE_FROM) is refused by this version with a message that names
# `sealvault-admin upgrade`; the upgrade keeps every user and guess count, binds the vault to a
# new counter that refuses forked copies, and removes the old counter, so that no copy of the 0.2
# directory (started by 0.2, or upgraded a second time) can ever be used again. The upgrade is
# cut off (kill -9, its TPM command dropped by tests/lib/tpm-proxy.py) at the final 0.2 commit,
# at the definition of the new counter and at the removal of the old one, and left with the 0.2
# journal after the header switch: each time, running it again finishes it with nothing lost.
#
# Without the 0.2 commit in the clone (a shallow clone), the test uses FIXTURE instead: a swtpm
# state and a 0.2 vault on it, made by the same 0.2 binaries with `state-upgrade.sh
# --make-fixture FILE`, and checks the same things except that 0.2 itself refuses the old copy.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
UPGRADE_FROM=${UPGRADE_FROM:-e0e6ae6} # the last commit of sealvault 0.2 (state version 1)
FIXTURE=$PWD/tests/integration/state-upgrade-0.2.tar.gz
MAKE_FIXTURE=
[ "${1:-}" = --make-fixture ] && MAKE_FIXTURE=$(realpath -m "${2:?--make-fixture FILE}")
DRIVER=$PWD/$B/tests/integration/state-driver
ADMIN=$PWD/$B/sealvault-admin
. tests/lib/swtpm.sh
. tests/lib/tpmproxy.sh
T=$(mktemp -d /tmp/sv-state-upgrade.XXXXXX)
cleanup() {
	set +e
	tpmproxy_cleanup
	swtpm_cleanup
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "state-upgrade: FAIL: $*" >&2
	exit 1
}

# ---- sealvault 0.2: built from this repository's history, or its fixture ----
S=$T/state
HAVE_OLD=0
if git cat-file -e "$UPGRADE_FROM^{commit}" 2>/dev/null; then
	HAVE_OLD=1
	mkdir -p "$T/v02"
	git archive "$UPGRADE_FROM" | tar -x -C "$T/v02"
	make -C "$T/v02" -j2 build/sealvault-admin build/tests/integration/state-driver \
		>"$T/v02.log" 2>&1 || { tail -n 20 "$T/v02.log"; fail "building sealvault 0.2 failed"; }
	OLD_ADMIN=$T/v02/build/sealvault-admin
	OLD_DRIVER=$T/v02/build/tests/integration/state-driver
	swtpm_start "$T/tpm"
else
	[ -z "$MAKE_FIXTURE" ] || fail "--make-fixture needs commit $UPGRADE_FROM"
	[ -f "$FIXTURE" ] || fail "neither commit $UPGRADE_FROM nor $FIXTURE is here"
	echo "state-upgrade: commit $UPGRADE_FROM is not in this clone; using $FIXTURE"
	tar -xzf "$FIXTURE" -C "$T"
	swtpm_start "$T/tpm"
fi
tpmproxy_start "$T/px"
TPM=$TPMPROXY_TCTI
CTL=$TPMPROXY_CTL
OLD() { "$OLD_DRIVER" "$@" --state-dir "$S" --tpm "$TPM" --seed 5 --batch 3; }
NEW() { "$DRIVER" "$@" --state-dir "$S" --tpm "$TPM" --seed 5 --batch 3; }
if [ "$HAVE_OLD" -eq 1 ]; then
	"$OLD_ADMIN" init --state-dir "$S" --policy-key-out "$T/pk" --tpm "$TPM" >/dev/null 2>&1 ||
		fail "0.2 init failed"
	OLD run --ops 60 >/dev/null
	OLD check --ops 60 --acked 59 | grep -q '^position 60 ' || fail "0.2 state incomplete"
fi
if [ -n "$MAKE_FIXTURE" ]; then # the TPM stopped cleanly, then its state and the vault
	tpmproxy_cleanup
	swtpm_stop "$T/tpm"
	tar -czf "$MAKE_FIXTURE" -C "$T" tpm/tpm2-00.permall tpm/.provisioned state
	echo "state-upgrade: wrote $MAKE_FIXTURE"
	exit 0
fi

# this version refuses the 0.2 vault and says what to do
rc=0
NEW check --ops 60 --acked 59 >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] && grep -q 'sealvault-admin upgrade' "$T/err" || fail "0.2 vault not refused (exit $rc): $(cat "$T/err")"

# copies of the 0.2 directory that an operator keeps
cp -a "$S" "$T/copy02"

# ---- cut off at three points, finished by running the upgrade again ----
upgrade() { "$ADMIN" upgrade --state-dir "$S" --tpm "$TPM" "$@"; }
for code in 0x134 0x12a 0x122; do
	tpmproxy_hold "$CTL" "$code"
	# the binary itself in the background (not the function: $! would be a subshell, and
	# kill -9 would leave sealvault-admin running on)
	"$ADMIN" upgrade --state-dir "$S" --tpm "$TPM" >"$T/out" 2>&1 &
	pid=$!
	tpmproxy_wait_held "$CTL" 30 >/dev/null || fail "the upgrade sent no command $code"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	! kill -0 "$pid" 2>/dev/null || fail "sealvault-admin survived kill -9"
	tpmproxy_settle "$CTL"
	echo "state-upgrade: cut off at TPM command $code"
	# a 0.2 journal (every frame of it in the snapshot the upgrade writes)
	[ "$code" = 0x12a ] && cp "$S/journal" "$T/journal02"
done
# Cut off at 0x122 (step 8) the header is switched and the journal emptied. Put a 0.2 journal
# back: the state of a cut between the header switch and emptying the journal (no TPM command
# lies between them to hold). The vault refuses to start and names the upgrade command; running
# the upgrade again drops that journal (nothing was committed on the new counter) and finishes.
cp "$T/journal02" "$S/journal"
rc=0
NEW check --ops 60 --acked 59 >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] && grep -q 'does not continue its snapshot.*upgrade.intent.*sealvault-admin upgrade' "$T/err" ||
	fail "a 0.2 journal after the header switch: exit $rc: $(cat "$T/err")"
echo "state-upgrade: cut off between the header switch and emptying the journal: refused until the upgrade runs again"
upgrade >"$T/out" 2>"$T/err" || fail "the upgrade did not finish: $(cat "$T/err")"
grep -Eq '^(upgraded vault in|vault in .* is already current)' "$T/out" || fail "upgrade said: $(cat "$T/out")"
upgrade >"$T/out" 2>"$T/err" || fail "a second upgrade failed: $(cat "$T/err")"
grep -q 'already current' "$T/out" || fail "a second upgrade did not say the vault is current"
[ ! -e "$S/upgrade.intent" ] || fail "upgrade.intent left behind"

# every user and guess count is there; the vault goes on, with run authority
NEW check --ops 60 --acked 59 | grep -q '^position 60 ' || fail "state lost in the upgrade"
NEW run --ops 90 --acked 59 >/dev/null || fail "the upgraded vault does not commit"
NEW check --ops 90 --acked 89 | grep -q '^position 90 ' || fail "commits after the upgrade lost"
"$ADMIN" status --state-dir "$S" --tpm "$TPM" >"$T/status" || fail "status refused the upgraded vault"
grep -qx 'agree: yes' "$T/status" || fail "status disagrees"
new_index=$(sed -n 's/^nv-index: //p' "$T/status")
[ "$new_index" != 0x01005356 ] || fail "still on the old counter"

# The attack on that repair: once the upgraded vault has committed, an operator puts the 0.2
# journal and an intent back to have the upgrade drop the real journal. Refused (the TPM counter is
# past the snapshot), and with the real journal back nothing was lost.
cp "$S/journal" "$T/journal.real"
cp "$T/journal02" "$S/journal"
printf 'old=0x01005356 new=%s\n' "$new_index" >"$S/upgrade.intent"
rc=0
upgrade >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -ne 0 ] && grep -Eq 'is past the snapshot|older than the TPM' "$T/err" ||
	fail "a 0.2 journal put back after commits was dropped (exit $rc): $(cat "$T/out" "$T/err")"
cp "$T/journal.real" "$S/journal"
rm -f "$S/upgrade.intent"
NEW check --ops 90 --acked 89 | grep -q '^position 90 ' || fail "state lost after the refused repair"
echo "state-upgrade: a 0.2 journal put back after commits on the new counter: refused, nothing lost"

# the 0.2 copies are dead: 0.2 cannot start them (the old counter is gone), nor can they be
# upgraded a second time into a vault of their own
rm -rf "$S.up"
mv "$S" "$S.up"
cp -a "$T/copy02" "$S"
if [ "$HAVE_OLD" -eq 1 ]; then
	rc=0
	OLD check --ops 60 --acked 59 >/dev/null 2>"$T/err" || rc=$?
	[ "$rc" -eq 3 ] && grep -q 'does not exist on this TPM' "$T/err" ||
		fail "0.2 started a copy of its old directory (exit $rc): $(cat "$T/err")"
fi
rc=0
upgrade >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -ne 0 ] || fail "a copy of the 0.2 directory was upgraded a second time"
echo "state-upgrade: second upgrade of a 0.2 copy refused: $(cat "$T/err")"
rm -rf "$S"
mv "$S.up" "$S"
NEW check --ops 90 --acked 89 | grep -q '^position 90 ' || fail "the upgraded vault does not open"
echo "state-upgrade: 0.2 vault upgraded after 4 interruptions, all 90 changes kept, 0.2 copies refused"
echo "1 passed, 0 failed"
