#!/bin/bash
# End to end: the sealvault CLI against a real sealvaultd (enclave + broker) on a private swtpm,
# over real TLS with a self-signed certificate made here, restarting the daemon between every
# step. Register, a wrong guess (exit 2, attempts left), recovery (byte-identical), GET /v1/info
# and a client with another --context refused before any guess (exit 1), an unknown
# user (exit 2), change password, delete, lock-out after the limit (exit 3) and then the secret
# and password are nowhere: not in any file of the state directory, not in the memory of the
# enclave or the broker (read through /proc/PID/mem as root, see scan-bytes.py).
# The vault runs with auth = tokens: every command carries a token from `sealvault-admin token`
# for its user (tests/lib/sealvaultd.sh sv_token), as a provider's backend would mint it.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh

tmp=$(mktemp -d /tmp/sv-e2e.XXXXXX)
chmod 0755 "$tmp"
cleanup() {
	set +e
	sv_server_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT

step=0
fail() {
	echo "e2e: FAIL (step $step): $*" >&2
	echo "e2e: sealvaultd log tail:" >&2
	tail -n 20 "$tmp/srv/sealvaultd.log" >&2 || true
	exit 1
}
say() { step=$((step + 1)); echo "e2e: [$step] $*"; }

# token USER: a fresh access token for USER in $tmp/token
token() { sv_token "$1" >"$tmp/token" || fail "sealvault-admin token for $1"; }
# sv CMD ARGS...: runs the CLI with a token for its --user; sets rc, and err (its stderr).
sv() {
	local a prev=
	for a in "$@"; do
		[ "$prev" != --user ] || token "$a"
		prev=$a
	done
	set +e
	"$SV" "$1" --server "$SV_URL" --cacert "$SV_CACERT" --token "$tmp/token" "${@:2}" \
		2>"$tmp/stderr"
	rc=$?
	set -e
	err=$(cat "$tmp/stderr")
}
expect() { # expect RC [TEXT]
	[ "$rc" -eq "$1" ] || fail "exit $rc, want $1; stderr: $err"
	[ -z "${2:-}" ] || grep -qF -- "$2" <<<"$err" || fail "stderr lacks '$2': $err"
}

head -c 32 /dev/urandom >"$tmp/secret"
head -c 32 /dev/urandom >"$tmp/secret2"
printf 'correct horse battery staple\n' >"$tmp/pw"
printf 'wrong guess\n' >"$tmp/wrong"
printf 'a new password\n' >"$tmp/newpw"
tr -d '\n' <"$tmp/pw" >"$tmp/pw.raw"
tr -d '\n' <"$tmp/newpw" >"$tmp/newpw.raw"
printf 'alice' >"$tmp/id.raw"

sv_server_init "$tmp/srv" "$B"
sv_tokens_init
sv_server_start

say "register alice (limit 3)"
sv register --user alice --password-file "$tmp/pw" --secret-file "$tmp/secret" --max-attempts 3
expect 0 "registered"
sv register --user alice --password-file "$tmp/wrong" --secret-file "$tmp/secret2"
expect 1 "already registered"
# TLS is verified: without the self-signed certificate as CA the CLI refuses the server.
set +e
token alice
"$SV" recover --server "$SV_URL" --token "$tmp/token" --user alice --password-file "$tmp/pw" \
	--out "$tmp/out" 2>"$tmp/stderr"
rc=$?
set -e
err=$(cat "$tmp/stderr")
expect 1 "certificate"
[ ! -e "$tmp/out" ] || fail "a recovery over an unverified connection wrote $tmp/out"
sv_server_restart

say "wrong guess: exit 2, attempts left 2"
sv recover --user alice --password-file "$tmp/wrong" --out "$tmp/out"
expect 2 "attempts left: 2"
[ ! -e "$tmp/out" ] || fail "a failed recovery wrote $tmp/out"
sv_server_restart

say "recover with the password from stdin: byte-identical"
sv recover --user alice --password-file - --out "$tmp/out" <"$tmp/pw"
expect 0
cmp "$tmp/secret" "$tmp/out" || fail "recovered secret differs"
[ "$(stat -c %a "$tmp/out")" = 600 ] || fail "recovered file is not mode 0600"
sv_server_restart

say "no --password-file: the CLI prompts on the terminal without echo"
rm -f "$tmp/out"
set +e
token alice
tests/integration/pty-prompt.py "$tmp/pw" "$SV" recover --server "$SV_URL" --cacert "$SV_CACERT" \
	--token "$tmp/token" \
	--user alice --out "$tmp/out" >"$tmp/stderr" 2>&1
rc=$?
set -e
err=$(cat "$tmp/stderr")
expect 0 "Password: "
cmp "$tmp/secret" "$tmp/out" || fail "secret recovered after the prompt differs"
sv_server_restart

say "GET /v1/info: public, cacheable JSON of the vault's suite, context, limits and key"
curl -fsS -D "$tmp/info.hdr" -o "$tmp/info.json" --cacert "$SV_CACERT" "$SV_URL/v1/info" ||
	fail "GET /v1/info failed"
grep -qi '^cache-control: public, max-age=300' "$tmp/info.hdr" ||
	fail "GET /v1/info is not cacheable: $(cat "$tmp/info.hdr")"
grep -qi '^content-type: application/json' "$tmp/info.hdr" ||
	fail "GET /v1/info is not JSON: $(cat "$tmp/info.hdr")"
# the same key as the attested statement; the vault id derived from it as docs/protocol.md says
curl -fsS -o "$tmp/evidence.json" --cacert "$SV_CACERT" \
	"$SV_URL/v1/attestation?nonce=00112233445566778899aabbccddeeff" || fail "no attestation evidence"
python3 - "$tmp/info.json" "$tmp/evidence.json" "$SV_CONTEXT" <<'PY' || fail "wrong /v1/info: $(cat "$tmp/info.json")"
import hashlib, json, sys
d = json.load(open(sys.argv[1]))
ev = json.load(open(sys.argv[2]))
assert d["suite"] == "OPAQUE-3DH-ristretto255-SHA512", d["suite"]
assert d["context"] == sys.argv[3] and bytes.fromhex(d["context_hex"]) == sys.argv[3].encode()
assert d["guess_limit"] == {"default": 10, "max": 10}, d["guess_limit"]
assert d["protocol_versions"] == [1], d["protocol_versions"]
assert d["ksf"] == {"type": "argon2id", "t": 3, "m_kib": 65536, "p": 1}, d["ksf"]
pk = bytes.fromhex(d["server_public_key"])
assert pk.hex() == ev["statement"]["server_public_key"], "not the attested key"
assert d["vault_id"] == hashlib.sha256(b"sealvault-vault-id-1" + pk).hexdigest()[:32]
PY
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST --cacert "$SV_CACERT" "$SV_URL/v1/info")
[ "$code" = 405 ] || fail "POST /v1/info answered $code, want 405"
echo "e2e: /v1/info: $(cat "$tmp/info.json")"
# the operator sees the same vault id
vid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["vault_id"])' "$tmp/info.json")
sv_server_stop
"$B/sealvault-admin" status --state-dir "$tmp/srv/state" --tpm "$SWTPM_TCTI" >"$tmp/status" 2>&1 ||
	fail "sealvault-admin status: $(cat "$tmp/status")"
grep -qx "vault-id: $vid" "$tmp/status" || fail "status shows another vault id than /v1/info ($vid): $(cat "$tmp/status")"
sv_server_start

say "another --context: exit 1 naming both contexts, before any guess is charged"
starts() {
	sv_metrics |
		awk '$1 == "sealvault_vault_login_starts_total" { print $2 }'
}
before=$(starts)
rm -f "$tmp/out2"
sv recover --context other-v1 --user alice --password-file "$tmp/pw" --out "$tmp/out2"
expect 1 "the server's OPAQUE context is '$SV_CONTEXT', this client uses 'other-v1'"
sv delete --context other-v1 --user alice --password-file "$tmp/pw"
expect 1 "the server's OPAQUE context is '$SV_CONTEXT', this client uses 'other-v1'"
sv register --context other-v1 --user carol --password-file "$tmp/pw" --secret-file "$tmp/secret"
expect 1 "this client uses 'other-v1'"
[ ! -e "$tmp/out2" ] || fail "a refused recovery wrote $tmp/out2"
[ -n "$before" ] && [ "$(starts)" = "$before" ] ||
	fail "login starts went from $before to $(starts): a guess was charged"
# and the next step's wrong guess still sees 2 attempts left: nothing was charged to alice
sv_server_restart

say "the right password reset the count: a wrong guess shows 2 left again"
sv recover --user alice --password-file "$tmp/wrong" --out "$tmp/out2"
expect 2 "attempts left: 2"
sv_server_restart

say "unknown user: exit 2, like a wrong password, in plain words"
sv recover --user mallory --password-file "$tmp/pw" --out "$tmp/out2"
expect 2 "wrong password or unknown user"
! grep -q "KSF\|context" <<<"$err" || fail "the wrong-password message names KSF/context without --verbose: $err"
sv_server_restart

say "--verbose: the same failure names the causes that look alike to the server"
sv recover --verbose --user mallory --password-file "$tmp/pw" --out "$tmp/out2"
expect 2 "KSF profile or context other than the one used at registration"
sv_server_restart

say "change password (old -> new, limit 3)"
printf 'correct horse battery staple\na new password\n' >"$tmp/both"
sv change-password --user alice --password-file - --new-password-file - --max-attempts 3 <"$tmp/both"
expect 0 "changed the password"
sv_server_restart
sv recover --user alice --password-file "$tmp/pw" --out "$tmp/out2"
expect 2 "attempts left: 2"
sv_server_restart
rm -f "$tmp/out"
sv recover --user alice --password-file "$tmp/newpw" --out "$tmp/out"
expect 0
cmp "$tmp/secret" "$tmp/out" || fail "secret differs after the password change"
sv_server_restart

say "delete bob: registered, deleted, then unknown"
sv register --user bob --password-file "$tmp/pw" --secret-file "$tmp/secret2"
expect 0
sv_server_restart
sv delete --user bob --password-file "$tmp/wrong"
expect 2 "attempts left:"
sv_server_restart
sv delete --user bob --password-file "$tmp/pw"
expect 0 "deleted"
sv_server_restart
sv recover --user bob --password-file "$tmp/pw" --out "$tmp/out2"
expect 2
sv_server_restart

say "recovery code: --generate-code prints it after a successful registration; it recovers"
set +e
token carol
"$SV" register --server "$SV_URL" --cacert "$SV_CACERT" --token "$tmp/token" --user carol --generate-code \
	--secret-file "$tmp/secret2" >"$tmp/code" 2>"$tmp/stderr"
rc=$?
set -e
err=$(cat "$tmp/stderr")
expect 0 "recovery code"
grep -Eqx '([0-9A-HJKMNP-TV-Z]{5}-){4}[0-9A-HJKMNP-TV-Z]{5}' "$tmp/code" || fail "bad code: $(cat "$tmp/code")"
set +e
token carol
"$SV" register --server "$SV_URL" --cacert "$SV_CACERT" --token "$tmp/token" --user carol --generate-code \
	--secret-file "$tmp/secret2" >"$tmp/code2" 2>"$tmp/stderr"
rc=$?
set -e
err=$(cat "$tmp/stderr")
expect 1 "already registered"
[ ! -s "$tmp/code2" ] || fail "a code was shown for a registration that failed"
sv_server_restart
sv recover --user carol --password-file - --out "$tmp/out3" <"$tmp/code"
expect 0
cmp "$tmp/secret2" "$tmp/out3" || fail "secret recovered with the code differs"
rm -f "$tmp/out3"
sv_server_restart

say "the memory scan works: alice's id is in the enclave's memory"
[ "$(id -u)" -eq 0 ] || fail "the memory checks read /proc/PID/mem and need root"
epid=$(sv_enclave_pid) || fail "no sealvault-enclave child of sealvaultd"
bpid=$(sv_broker_pid) || fail "no sealvault-broker child of sealvaultd"
grep -q '^Seccomp:[[:space:]]2' "/proc/$epid/status" || fail "the enclave is not sandboxed"
tests/integration/scan-bytes.py "$tmp/id.raw" --pid "$epid" >"$tmp/scan" ||
	fail "alice's id not found in the enclave's memory: the scan does not see its state"

say "lock-out: two wrong guesses, then the third uses the limit (exit 3)"
sv recover --user alice --password-file "$tmp/wrong" --out "$tmp/out2"
expect 2 "attempts left: 2"
sv_server_restart
sv recover --user alice --password-file "$tmp/wrong" --out "$tmp/out2"
expect 2 "attempts left: 1"
sv_server_restart
sv recover --user alice --password-file "$tmp/wrong" --out "$tmp/out2"
expect 3 "destroyed"
sv_server_restart
sv recover --user alice --password-file "$tmp/newpw" --out "$tmp/out2"
expect 3 "destroyed"
[ ! -e "$tmp/out2" ] || fail "a locked-out recovery wrote a file"
sv_server_restart

say "the secret is gone: not in any state file, not in enclave or broker memory"
epid=$(sv_enclave_pid) && bpid=$(sv_broker_pid) || fail "sealvaultd children missing"
# warm the state up once more (a login for the tombstone) before looking
sv recover --user alice --password-file "$tmp/newpw" --out "$tmp/out2"
expect 3
for needle in secret pw.raw newpw.raw; do
	set +e
	tests/integration/scan-bytes.py "$tmp/$needle" "$tmp/srv/state" --pid "$epid" --pid "$bpid" >"$tmp/scan"
	src=$?
	set -e
	[ "$src" -eq 1 ] || fail "scan for $needle: exit $src: $(cat "$tmp/scan")"
done
[ -n "$(find "$tmp/srv/state" -type f -size +0)" ] || fail "the state directory is empty"

say "the identifier can be registered again after a lock-out"
sv register --user alice --password-file "$tmp/pw" --secret-file "$tmp/secret2"
expect 0
sv_server_restart
sv recover --user alice --password-file "$tmp/pw" --out "$tmp/out3"
expect 0
cmp "$tmp/secret2" "$tmp/out3" || fail "re-registered secret differs"

echo "e2e: ok ($step steps, the daemon restarted between each)"
