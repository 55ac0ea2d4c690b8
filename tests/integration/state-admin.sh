#!/bin/bash
# sealvault-admin against a private swtpm: --help, init (and its refusals), status, delete (and
# its refusals: unknown user, vault in use).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/swtpm.sh
DRIVER=${STATE_DRIVER:?}
ADMIN=${SEALVAULT_ADMIN:?}
T=$(mktemp -d /tmp/sv-state-admin.XXXXXX)
trap 'swtpm_cleanup; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
expect() { # expected-exit command... ; output in $T/out, $T/err
	local want=$1 rc=0
	shift
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" -eq "$want" ] || { cat "$T/out" "$T/err"; fail "$* exited $rc, want $want"; }
}
swtpm_start "$T/tpm"
S="$T/state"
for c in "" init status delete upgrade authorize-pcrs attest; do
	expect 0 "$ADMIN" $c --help
	grep -q '^usage: sealvault-admin' "$T/out" || fail "no usage for '$c --help'"
done
expect 2 "$ADMIN"
expect 2 "$ADMIN" frobnicate
expect 2 "$ADMIN" init --state-dir "$S"
expect 2 "$ADMIN" init --state-dir "$S" --policy-key-out "$S".policy-key --tpm "$SWTPM_TCTI" --nv-index 0x81000000
expect 1 "$ADMIN" init --state-dir "$S" --policy-key-out "$S".policy-key --tpm nonsense:foo
grep -q 'unknown TPM descriptor' "$T/err" || fail "bad TCTI message"
expect 1 "$ADMIN" init --state-dir "$S" --policy-key-out "$S".policy-key --tpm device:/nonexistent/tpmrm0
grep -q 'no TPM device.*kernel driver' "$T/err" || fail "no hint for a missing TPM device: $(cat "$T/err")"
! grep -q 'group tss' "$T/err" || fail "a missing TPM device suggests group tss: $(cat "$T/err")"

expect 0 "$ADMIN" init --state-dir "$S" --policy-key-out "$S".policy-key --tpm "$SWTPM_TCTI"
[ "$(stat -c %a "$S".policy-key)" = 600 ] || fail "the policy key file is not mode 0600"
[ -s "$S/attest.bin" ] && [ -s "$S/attest-policy.bin" ] || fail "init stored no attestation evidence"
! grep -rq 'PRIVATE KEY' "$S" || fail "the policy key's private part is in the state directory"
expect 2 "$ADMIN" init --state-dir "$T/state9" --tpm "$SWTPM_TCTI"
grep -q -- '--policy-key-out FILE is required' "$T/err" || fail "init without --policy-key-out not refused"
expect 5 "$ADMIN" init --state-dir "$T/state9" --policy-key-out "$S".policy-key --tpm "$SWTPM_TCTI"
grep -q 'never overwrites a key' "$T/err" || fail "init overwrote an existing policy key file"
[ ! -e "$T/state9/vault.hdr" ] || fail "init went on after refusing the policy key file"
expect 5 "$ADMIN" init --state-dir "$S" --policy-key-out "$S".policy-key2 --tpm "$SWTPM_TCTI"
grep -q 'refusing to overwrite' "$T/err" || fail "init overwrote a vault"
[ ! -e "$S".policy-key2 ] || fail "a refused init left its policy key file behind"
expect 5 "$ADMIN" init --state-dir "$T/state2" --policy-key-out "$T/state2".policy-key --tpm "$SWTPM_TCTI"
grep -q 'already defined' "$T/err" || fail "NV index clash not reported"
[ ! -e "$T/state2/vault.hdr" ] || fail "failed init left a vault behind"
[ ! -e "$T/state2/attest.bin" ] && [ ! -e "$T/state2".policy-key ] ||
	fail "failed init left attestation evidence or its policy key behind"
expect 0 "$ADMIN" init --state-dir "$T/state2" --policy-key-out "$T/state2".policy-key --tpm "$SWTPM_TCTI" --nv-index 0x01005357

D() { "$DRIVER" "$@" --state-dir "$S" --tpm "$SWTPM_TCTI"; }
D put --user alice >/dev/null
D put --user bob >/dev/null
expect 0 "$ADMIN" status --state-dir "$S" --tpm "$SWTPM_TCTI"
for k in nv-index pcr-policy counter-scheme tpm-counter journal-head snapshot users destroyed \
	nv-writes nv-writes-per-day agree; do
	grep -q "^$k: " "$T/out" || fail "status lacks $k"
done
# NV writes of a hybrid vault: init 7 (the unclean-boots counter: define, first increment,
# binding; the orderly counter: define, first increment, binding to its run, flushing its first
# value), then per `put` run 2 (taking the counter over; the registration's forced flush)
grep -qx 'counter-scheme: hybrid' "$T/out" || { cat "$T/out"; fail "default scheme"; }
grep -qx 'users: 2' "$T/out" && grep -qx 'agree: yes' "$T/out" && grep -qx 'nv-writes: 11' "$T/out" ||
	{ cat "$T/out"; fail "status figures"; }
c1=$(sed -n 's/^tpm-counter: //p' "$T/out")
h1=$(sed -n 's/^journal-head: //p' "$T/out")
[ "$c1" = "$h1" ] || fail "counter $c1 and head $h1 differ"

expect 0 "$ADMIN" delete --state-dir "$S" --tpm "$SWTPM_TCTI" --user alice
D lookup --user alice | grep -q 'absent' || fail "alice not deleted"
D lookup --user bob | grep -q 'used 0 limit 3' || fail "bob damaged"
expect 5 "$ADMIN" delete --state-dir "$S" --tpm "$SWTPM_TCTI" --user alice
grep -q "no user 'alice'" "$T/err" || fail "unknown-user message"
expect 2 "$ADMIN" delete --state-dir "$S" --tpm "$SWTPM_TCTI"

# vault in use: another process holds the state-directory lock
exec 9<>"$S/lock"
flock -x 9
expect 4 "$ADMIN" delete --state-dir "$S" --tpm "$SWTPM_TCTI" --user bob
grep -q 'in use' "$T/err" || fail "in-use message"
expect 4 "$ADMIN" status --state-dir "$S" --tpm "$SWTPM_TCTI"
flock -u 9
exec 9>&-
D lookup --user bob | grep -q 'used 0' || fail "bob deleted while in use"
expect 0 "$ADMIN" status --state-dir "$S" --tpm "$SWTPM_TCTI"
grep -qx 'users: 1' "$T/out" || fail "users after delete"
# PCR policy: a vault sealed to PCR 23 stops unsealing once PCR 23 changes (until authorize-pcrs
# approves the new value: check-state-pcr-update).
expect 2 "$ADMIN" init --state-dir "$T/state3" --policy-key-out "$T/state3".policy-key --tpm "$SWTPM_TCTI" --pcrs 24
expect 2 "$ADMIN" status --state-dir "$S" --tpm "$SWTPM_TCTI" --pcrs 7
expect 0 "$ADMIN" init --state-dir "$T/state3" --policy-key-out "$T/state3".policy-key --tpm "$SWTPM_TCTI" --nv-index 0x01005358 --pcrs 7,23
expect 0 "$ADMIN" status --state-dir "$T/state3" --tpm "$SWTPM_TCTI"
grep -qx 'pcr-policy: sha256:7,23' "$T/out" && grep -qx 'agree: yes' "$T/out" || fail "pcr status"
TPM2TOOLS_TCTI=$SWTPM_TCTI tpm2_pcrextend 23:sha256=$(printf '%064d' 1) || fail "tpm2_pcrextend"
expect 3 "$ADMIN" status --state-dir "$T/state3" --tpm "$SWTPM_TCTI"
grep -q 'PCR values that no longer match: PCRs 7,23 .* sealvault-admin authorize-pcrs' "$T/err" ||
	fail "PCR refusal reason: $(cat "$T/err")"
expect 0 "$ADMIN" status --state-dir "$S" --tpm "$SWTPM_TCTI" # no policy: unaffected
echo "state-admin: help, init, status, delete, PCR policy and their refusals behave"
