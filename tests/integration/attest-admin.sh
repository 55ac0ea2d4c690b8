#!/usr/bin/env bash
# The attestation producer's life cycle on a private swtpm with the real binaries (issue 6):
# init stores the evidence, `sealvault-admin attest` and GET /v1/attestation produce it, a boot
# PCR change stops the enclave from starting (the identity key cannot sign), authorize-pcrs with
# the policy key (and only that key) approves the new boot state, the broker adds the logs it
# re-reads per request. The verifier side is tests/integration/attest.sh.
# Needs B (build dir), swtpm, tpm2-tools, openssl, curl, python3; root for sealvaultd's users.
set -euo pipefail
B=${B:-build}
cd "$(dirname "$0")/../.."
. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d /tmp/sv-attest-admin.XXXXXX)
chmod 755 "$T"
trap 'sv_server_cleanup; rm -rf "$T"' EXIT
fail() {
	echo "attest-admin: FAIL: $*" >&2
	[ -f "$T/err" ] && sed 's/^/  stderr: /' "$T/err" >&2
	exit 1
}
ADMIN=$B/sealvault-admin
NONCE=0011223344556677aabbccdd
field() { python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    d=d[k] if isinstance(d,dict) else d[int(k)]
print(d if not isinstance(d,(dict,list)) else json.dumps(d, sort_keys=True))' "$@"; }

printf 'boot-log-v1' >"$T/event.log"
printf '10 aa ima-ng sha256:bb boot_aggregate\n' >"$T/ima.log"
chmod 644 "$T/event.log" "$T/ima.log"
SV_DAEMON_ARGS=(--event-log "$T/event.log" --ima-log "$T/ima.log")
SV_INIT_ARGS=(--policy-key-out "$T/policy-key.pem" --boot-pcrs 0-3,7)
sv_server_init "$T/srv" "$B" >/dev/null 2>"$T/err" || fail "server init"
grep -q 'has no EK certificate' "$T/srv/admin-init.log" ||
	fail "init did not warn that this swtpm has no EK certificate"
sv_tokens_init 2>"$T/err" || fail "tenant" # auth = tokens: the tenant set is in the policy hash
[ "$(id -u)" -ne 0 ] || chmod -R a+rX "$SV_TENANTS"
S=$T/srv/state

# --- sealvault-admin attest (vault stopped) ---
"$ADMIN" attest --state-dir "$S" --tpm "$SWTPM_TCTI" --nonce "$NONCE" --tenants-dir "$SV_TENANTS" \
	--event-log "$T/event.log" \
	--ima-log "$T/nonexistent" >"$T/ev.json" 2>"$T/err" || fail "sealvault-admin attest"
[ "$(field "$T/ev.json" nonce)" = "$NONCE" ] || fail "attest: nonce not echoed"
[ "$(field "$T/ev.json" identity.boot_pcrs)" = "[0, 1, 2, 3, 7]" ] || fail "attest: boot_pcrs"
[ "$(field "$T/ev.json" quote.pcrs | python3 -c 'import json,sys; print(sorted(map(int, json.load(sys.stdin))))')" = "[0, 1, 2, 3, 7, 10]" ] ||
	fail "attest: the quote does not cover the boot selection and PCR 10"
[ "$(field "$T/ev.json" event_log | base64 -d)" = "boot-log-v1" ] || fail "attest: event_log"
! grep -q '"ima_log"\|"ek_certificate"' "$T/ev.json" || fail "attest: absent log / certificate not omitted"
python3 - "$T/ev.json" <<'P' || fail "attest: statement body and its fields disagree"
import base64, json, sys
d = json.load(open(sys.argv[1]))
s = d["statement"]; b = base64.b64decode(s["body"])
assert len(b) == 144 and b[:16] == b"sealvault-stmt-1"
assert b[16:48].hex() == s["server_public_key"] and b[48:80].hex() == s["policy_hash"]
assert b[80:112].hex() == s["build_hash"] and b[112:].hex() == s["init_identity"]
P
for bad in 00112233445566 zz "$NONCE$NONCE$NONCE$NONCE$NONCE$NONCE"; do
	rc=0
	"$ADMIN" attest --state-dir "$S" --tpm "$SWTPM_TCTI" --nonce "$bad" >/dev/null 2>"$T/err" || rc=$?
	[ $rc -eq 2 ] || fail "attest --nonce $bad: exit $rc, expected 2"
done
rc=0
"$ADMIN" attest --state-dir "$S" --tpm "$SWTPM_TCTI" >/dev/null 2>"$T/err" || rc=$?
[ $rc -eq 2 ] || fail "attest without --nonce: exit $rc, expected 2"
# another policy changes only policy_hash
"$ADMIN" attest --state-dir "$S" --tpm "$SWTPM_TCTI" --nonce "$NONCE" \
	--tenants-dir "$SV_TENANTS" --policy max-guess-limit=11 >"$T/ev2.json" 2>"$T/err" || fail "attest --policy"
[ "$(field "$T/ev2.json" statement.policy_hash)" != "$(field "$T/ev.json" statement.policy_hash)" ] &&
	[ "$(field "$T/ev2.json" statement.build_hash)" = "$(field "$T/ev.json" statement.build_hash)" ] ||
	fail "attest --policy: policy_hash unchanged or build_hash changed"

# --- the running vault ---
sv_server_start || fail "sealvaultd did not start"
curl -fsS --cacert "$SV_CACERT" "$SV_URL/v1/attestation?nonce=$NONCE" -o "$T/srv.json" \
	-w '%{content_type}\n' >"$T/ctype" || fail "GET /v1/attestation"
grep -q '^application/json' "$T/ctype" || fail "attestation Content-Type: $(cat "$T/ctype")"
[ "$(field "$T/srv.json" ima_log | base64 -d)" = "$(cat "$T/ima.log")" ] || fail "broker: ima_log"
for k in server_public_key init_identity build_hash policy_hash; do
	[ "$(field "$T/srv.json" statement.$k)" = "$(field "$T/ev.json" statement.$k)" ] ||
		fail "the enclave's statement.$k differs from sealvault-admin attest's"
done
printf -- '-v2' >>"$T/event.log" # logs grow: the broker re-reads them for every request
curl -fsS --cacert "$SV_CACERT" "$SV_URL/v1/attestation?nonce=$NONCE" -o "$T/srv2.json" ||
	fail "second GET /v1/attestation"
[ "$(field "$T/srv2.json" event_log | base64 -d)" = "boot-log-v1-v2" ] ||
	fail "the broker did not re-read the grown event log"
sv_server_stop

# --- a new boot state: the enclave refuses, authorize-pcrs approves it ---
tpm2_pcrextend -T "$SWTPM_TCTI" 2:sha256=$(printf '%064d' 7) >/dev/null 2>&1 ||
	fail "tpm2_pcrextend"
! sv_server_start 2>"$T/err" || fail "the enclave served in a boot state the policy does not cover"
grep -q 'sealvault-enclave: refusing to serve: the boot PCRs do not hold the values of the approved policy.*authorize-pcrs' \
	"$T/srv/sealvaultd.log" || fail "no clear refusal for the changed boot PCRs"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/other-key.pem" 2>/dev/null
rc=0
"$ADMIN" authorize-pcrs --state-dir "$S" --tpm "$SWTPM_TCTI" --policy-key "$T/other-key.pem" \
	>/dev/null 2>"$T/err" || rc=$?
[ $rc -ne 0 ] && grep -q 'not the one this vault was initialised with' "$T/err" ||
	fail "authorize-pcrs accepted a foreign policy key (exit $rc)"
rc=0
"$ADMIN" authorize-pcrs --state-dir "$S" --tpm "$SWTPM_TCTI" >/dev/null 2>"$T/err" || rc=$?
[ $rc -eq 2 ] || fail "authorize-pcrs without --policy-key: exit $rc"
"$ADMIN" authorize-pcrs --state-dir "$S" --tpm "$SWTPM_TCTI" --policy-key "$T/policy-key.pem" \
	>"$T/out" 2>"$T/err" || fail "authorize-pcrs with the policy key"
grep -q '^approved boot PCRs 0,1,2,3,7' "$T/out" || fail "authorize-pcrs output: $(cat "$T/out")"
sv_server_start || fail "the enclave did not start after authorize-pcrs"
curl -fsS --cacert "$SV_CACERT" "$SV_URL/v1/attestation?nonce=$NONCE" -o "$T/srv3.json" ||
	fail "GET /v1/attestation after authorize-pcrs"
[ "$(field "$T/srv3.json" identity.approved_pcrs.2)" = "$(field "$T/srv3.json" quote.pcrs.2)" ] &&
	[ "$(field "$T/srv3.json" identity.approved_pcrs.2)" != "$(field "$T/srv.json" identity.approved_pcrs.2)" ] ||
	fail "the approved policy does not carry the new PCR 2"
[ "$(field "$T/srv3.json" statement.init_identity)" = "$(field "$T/srv.json" statement.init_identity)" ] ||
	fail "authorize-pcrs changed the vault's identity"
sv_server_stop
echo "attest-admin: init, attest, endpoint, logs, refused boot state, authorize-pcrs: all passed"
