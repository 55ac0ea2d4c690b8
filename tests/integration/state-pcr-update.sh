#!/bin/bash
# check-state-pcr-update: a firmware update on a vault whose key is sealed to PCRs (issue 12),
# on real processes (sealvaultd, the sealvault CLI, sealvault-admin) and a private swtpm; PCR 16
# (resettable, free for tests) stands for a PCR that firmware or a kernel measures into.
#
#   1. init --pcrs 16 seals the vault key with PolicyAuthorize(K); users register.
#   2. The "update" (tpm2_pcrextend 16): the vault refuses to start, says to run authorize-pcrs,
#      and changes nothing in the state directory.
#   3. authorize-pcrs approves the new value; the vault starts; every user recovers their secret.
#   4. Migration: the vault key is resealed the way sealvault did before issue 12 (a plain
#      PolicyPCR; the state driver's test-only reseal-plain). It serves, warning that
#      `sealvault-admin reseal` is due. reseal, cut off at the Create of the new sealed key and run
#      again, moves it to PolicyAuthorize(K); a third run finds nothing to do. The next update is
#      approved with authorize-pcrs, and every user recovers again.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
ADMIN=$PWD/$B/sealvault-admin
SV=$PWD/$B/sealvault
DRIVER=$PWD/$B/tests/integration/state-driver
. tests/lib/swtpm.sh
. tests/lib/tpmproxy.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d /tmp/sv-state-pcr.XXXXXX)
chmod 0755 "$T"
cleanup() {
	set +e
	sv_server_stop
	tpmproxy_cleanup
	swtpm_cleanup
	rm -rf "$T"
}
trap cleanup EXIT
step=setup
fail() {
	echo "state-pcr-update: FAIL ($step): $*" >&2
	[ -f "${SV_DIR:-/nonexistent}/sealvaultd.log" ] && tail -n 5 "$SV_DIR/sealvaultd.log" >&2
	exit 1
}

KSF=(--ksf-t 1 --ksf-m 8)
USERS=(alice bob carol)
printf 'correct horse battery staple\n' >"$T/pw"
sv() { "$SV" "$1" --server "$SV_URL" --cacert "$SV_CACERT" "${KSF[@]}" "${@:2}"; }
admin() { "$ADMIN" "$1" --state-dir "$S" --tpm "$SWTPM_TCTI" "${@:2}"; }
status_has() { admin status >"$T/status" 2>&1 && grep -qx -- "$1" "$T/status"; }
extend16() { TPM2TOOLS_TCTI=$SWTPM_TCTI tpm2_pcrextend "16:sha256=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" ||
	fail "tpm2_pcrextend"; }
state_sum() { (cd "$S" && find . -type f ! -name lock | sort | xargs sha256sum); }
recover_all() {
	local u
	for u in "${USERS[@]}"; do
		sv recover --user "$u" --password-file "$T/pw" --out "$T/out.$u" 2>"$T/err" ||
			fail "recover $u: $(cat "$T/err")"
		cmp -s "$T/out.$u" "$T/secret.$u" || fail "$u recovered another secret"
	done
}
start_refused() { # start_refused TEXT: sealvaultd must refuse to start, saying TEXT
	: >"$SV_DIR/sealvaultd.log"
	if sv_server_start 2>/dev/null; then fail "the vault started"; fi
	grep -qF -- "$1" "$SV_DIR/sealvaultd.log" ||
		fail "refused for another reason: $(grep -m1 refusing "$SV_DIR/sealvaultd.log")"
}

# ---- 1. a vault sealed to PCR 16, with users ----
SV_INIT_ARGS=(--pcrs 16)
sv_server_init "$T/srv" "$B"
S=$SV_DIR/state
K=$S.policy-key
sv_server_start
for u in "${USERS[@]}"; do
	head -c 32 /dev/urandom >"$T/secret.$u"
	sv register --user "$u" --password-file "$T/pw" --secret-file "$T/secret.$u" \
		>/dev/null 2>"$T/err" || fail "register $u: $(cat "$T/err")"
done
sv_server_stop

# ---- 2. the update: refused, nothing changed ----
step=update
state_sum >"$T/before"
extend16
start_refused "the vault key is sealed to PCR values that no longer match: PCRs 16"
grep -qF "sealvault-admin authorize-pcrs --state-dir $S" "$SV_DIR/sealvaultd.log" ||
	fail "the refusal does not say what to run"
rc=0
admin status >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "status on the stranded vault: exit $rc, want 3"
state_sum | cmp -s - "$T/before" || fail "the refused starts changed the state directory"

# ---- 3. authorize-pcrs, and every user recovers ----
step=authorize
admin authorize-pcrs --policy-key "$K" >"$T/out" 2>"$T/err" || fail "authorize-pcrs: $(cat "$T/err")"
grep -q '^approved vault key PCRs 16 ' "$T/out" || fail "authorize-pcrs said: $(cat "$T/out")"
sv_server_start
recover_all
sv_server_stop

# ---- 4. a vault sealed the old way is migrated ----
step=migrate
"$DRIVER" reseal-plain --state-dir "$S" --tpm "$SWTPM_TCTI" >/dev/null || fail "reseal-plain"
status_has 'pcr-sealing: plain (run sealvault-admin reseal before the next update that changes these PCRs)' ||
	fail "not a plain vault: $(cat "$T/status")"
[ ! -e "$S/vault-policy.bin" ] || fail "a plain vault kept vault-policy.bin"
: >"$SV_DIR/sealvaultd.log"
sv_server_start
grep -qF "sealvault-admin reseal --state-dir $S" "$SV_DIR/sealvaultd.log" ||
	fail "the plain vault started without saying what to run"
sv recover --user alice --password-file "$T/pw" --out "$T/out.alice" 2>"$T/err" || fail "recover: $(cat "$T/err")"
sv_server_stop
admin authorize-pcrs --policy-key "$K" >/dev/null 2>"$T/err" || fail "authorize-pcrs on a plain vault"
grep -qF "reseal --state-dir $S" "$T/err" || fail "authorize-pcrs did not point to reseal: $(cat "$T/err")"
# cut off at the Create of the new sealed key (after vault-policy.bin, before vault.hdr)
tpmproxy_start "$T/px"
tpmproxy_hold "$TPMPROXY_CTL" 0x153
"$ADMIN" reseal --state-dir "$S" --tpm "$TPMPROXY_TCTI" --policy-key "$K" >/dev/null 2>&1 &
pid=$!
tpmproxy_wait_held "$TPMPROXY_CTL" 30 >/dev/null || fail "reseal sent no Create"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
tpmproxy_settle "$TPMPROXY_CTL"
tpmproxy_stop "$T/px"
status_has 'pcr-sealing: plain (run sealvault-admin reseal before the next update that changes these PCRs)' ||
	fail "the interrupted reseal switched: $(cat "$T/status")"
admin reseal --policy-key "$K" >"$T/out" 2>"$T/err" || fail "reseal: $(cat "$T/err")"
grep -q '^resealed the vault key' "$T/out" || fail "reseal said: $(cat "$T/out")"
admin reseal --policy-key "$K" >"$T/out" 2>"$T/err" || fail "second reseal: $(cat "$T/err")"
grep -q 'already sealed' "$T/out" || fail "second reseal said: $(cat "$T/out")"
status_has 'pcr-sealing: signed (values approved by the policy key)' || fail "after reseal: $(cat "$T/status")"
[ ! -e "$S/vault.hdr.new" ] && [ ! -e "$S/vault-policy.bin.new" ] || fail "temporary files left behind"

# the next update: refused, approved, and every user recovers
step=second-update
extend16
start_refused "sealvault-admin authorize-pcrs"
admin authorize-pcrs --policy-key "$K" >/dev/null 2>"$T/err" || fail "authorize-pcrs: $(cat "$T/err")"
sv_server_start
recover_all
sv_server_stop
echo "state-pcr-update: refused after the update, approved with authorize-pcrs, plain vault resealed after an interruption; ${#USERS[@]} users recovered each time"
echo "1 passed, 0 failed"
