#!/bin/bash
# Access tokens on the request path (issue 13), on a real sealvaultd (auth = tokens) over a
# private swtpm, with two tenants: acme (key from `sealvault-admin tenant keygen`, tokens from
# `sealvault-admin token`) and beta (an EdDSA and an ES256 key made with PyJWT's cryptography,
# tokens minted by PyJWT). It shows:
#  - tokens of both kinds accepted; the same sub in two tenants is two records;
#  - each refusal (no token, alg none, HS256, wrong key, unknown kid, expired, not yet valid,
#    lifetime over the maximum, wrong aud, wrong sub, scope without recover, a token swapped
#    between login/start and login/finish) answered 401/403 with its reason, the CLI exiting 5,
#    and nothing charged: the enclave's guess and change counters stay as they were, and the
#    user's attempts left are untouched;
#  - malformed Authorization headers refused by the broker;
#  - the policy hash of the attestation statement is `sealvault-admin expect --tenants-dir`'s,
#    and another tenant set (or auth = open) gives another;
#  - a forging broker that drives the enclave's socket directly, without tokens, cannot charge
#    a guess or register anyone (tests/integration/enclave-forge.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
ADMIN=$PWD/$B/sealvault-admin
PY=${SV_PYTHON3:-/usr/bin/python3} # Debian's, with python3-jwt
MINT=tests/integration/token-mint.py
. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh

tmp=$(mktemp -d /tmp/sv-token-auth.XXXXXX)
chmod 0755 "$tmp"
cleanup() {
	set +e
	sv_server_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
step=0
fail() {
	echo "token-auth: FAIL (step $step): $*" >&2
	tail -n 20 "$tmp/srv/sealvaultd.log" >&2 || true
	exit 1
}
say() { step=$((step + 1)); echo "token-auth: [$step] $*"; }
"$PY" -c 'import jwt, cryptography' 2>/dev/null || fail "$PY lacks python3-jwt or python3-cryptography"

# sv CMD TOKEN-FILE|- ARGS...: the CLI (TOKEN-FILE "-" : no --token); sets rc and err.
sv() {
	local cmd=$1 tok=$2
	shift 2
	set +e
	if [ "$tok" = - ]; then
		"$SV" "$cmd" --server "$SV_URL" --cacert "$SV_CACERT" "$@" 2>"$tmp/stderr"
	else
		"$SV" "$cmd" --server "$SV_URL" --cacert "$SV_CACERT" --token "$tok" "$@" 2>"$tmp/stderr"
	fi
	rc=$?
	set -e
	err=$(cat "$tmp/stderr")
}
expect() { # expect RC [TEXT]
	[ "$rc" -eq "$1" ] || fail "exit $rc, want $1; stderr: $err"
	[ -z "${2:-}" ] || grep -qF -- "$2" <<<"$err" || fail "stderr lacks '$2': $err"
}
metric() { sv_metrics | awk -v m="$1" '$1 == m {print $2}'; }
# counters that any charge, registration or change moves
counters() {
	echo "$(metric sealvault_vault_login_starts_total) $(metric sealvault_vault_registrations_total)" \
		"$(metric sealvault_changes_total)"
}
# token NAME MINT-ARGS...: a PyJWT token into $tmp/NAME.tok
pytoken() {
	local name=$1
	shift
	"$PY" "$MINT" mint "$@" >"$tmp/$name.tok" || fail "minting $name"
}
# admin NAME SUB [ARGS]: a `sealvault-admin token` for acme into $tmp/NAME.tok
admintoken() {
	local name=$1 sub=$2
	shift 2
	sv_token "$sub" "$@" >"$tmp/$name.tok" || fail "sealvault-admin token for $sub"
}

head -c 32 /dev/urandom >"$tmp/secret-alice"
head -c 32 /dev/urandom >"$tmp/secret-bob-acme"
head -c 32 /dev/urandom >"$tmp/secret-bob-beta"
printf 'alice password\n' >"$tmp/pw-alice"
printf 'bob at acme\n' >"$tmp/pw-bob-acme"
printf 'bob at beta\n' >"$tmp/pw-bob-beta"
printf 'wrong\n' >"$tmp/wrong"

sv_server_init "$tmp/srv" "$B"
sv_tokens_init # tenant acme, in SV_TENANTS
"$PY" "$MINT" keygen EdDSA beta-ed "$tmp/beta-ed.pem" >"$tmp/beta-ed.jwk"
"$PY" "$MINT" keygen ES256 beta-es "$tmp/beta-es.pem" >"$tmp/beta-es.jwk"
"$PY" "$MINT" jwks "$tmp/beta-ed.jwk" "$tmp/beta-es.jwk" >"$tmp/beta.jwks"
"$ADMIN" tenant add --dir "$SV_TENANTS" beta "$tmp/beta.jwks" >/dev/null
"$PY" "$MINT" keygen EdDSA beta-ed "$tmp/rogue.pem" >/dev/null # beta's kid, another key
[ "$(id -u)" -ne 0 ] || chmod -R a+rX "$SV_TENANTS"
SV_DAEMON_ARGS=(--audit-key-file "$tmp/audit.key")
sv_server_start
AUD=$(sv_vault_id)
[ "${#AUD}" -eq 32 ] || fail "no vault id from /v1/info: '$AUD'"
SV_VAULT_ID=$AUD
beta() { pytoken "$1" --iss beta --aud "$AUD" "${@:2}"; }

say "the mode is on /metrics, with the two tenants"
[ "$(metric 'sealvault_auth_mode{mode="tokens"}')" = 1 ] || fail "auth mode gauge: $(sv_metrics | grep auth_mode)"
[ "$(metric sealvault_tenants)" = 2 ] || fail "tenants gauge: $(metric sealvault_tenants)"

say "acme (sealvault-admin token) registers alice, limit 5"
admintoken alice alice
sv register "$tmp/alice.tok" --user alice --password-file "$tmp/pw-alice" \
	--secret-file "$tmp/secret-alice" --max-attempts 5
expect 0

say "beta (PyJWT EdDSA) registers bob; PyJWT ES256 recovers him"
beta bob-ed --sub bob --kid beta-ed --key "$tmp/beta-ed.pem"
sv register "$tmp/bob-ed.tok" --user bob --password-file "$tmp/pw-bob-beta" \
	--secret-file "$tmp/secret-bob-beta"
expect 0
beta bob-es --sub bob --kid beta-es --key "$tmp/beta-es.pem"
sv recover "$tmp/bob-es.tok" --user bob --password-file "$tmp/pw-bob-beta" --out "$tmp/got"
expect 0
cmp -s "$tmp/got" "$tmp/secret-bob-beta" || fail "beta's bob: another secret came back"

say "the same sub in acme is another record: registered (no 409), each tenant gets its own"
admintoken bob-acme bob
sv register "$tmp/bob-acme.tok" --user bob --password-file "$tmp/pw-bob-acme" \
	--secret-file "$tmp/secret-bob-acme"
expect 0
sv recover "$tmp/bob-acme.tok" --user bob --password-file "$tmp/pw-bob-acme" --out "$tmp/got"
expect 0
cmp -s "$tmp/got" "$tmp/secret-bob-acme" || fail "acme's bob: another secret came back"
sv recover "$tmp/bob-es.tok" --user bob --password-file "$tmp/pw-bob-beta" --out "$tmp/got"
expect 0
cmp -s "$tmp/got" "$tmp/secret-bob-beta" || fail "beta's bob changed"
say "tenant A's token on tenant B's user: beta's password under acme's token is wrong"
sv recover "$tmp/bob-acme.tok" --user bob --password-file "$tmp/pw-bob-beta" --out "$tmp/got"
expect 2

# Every refusal below: exit 5 with the reason, and no counter moves.
before=$(counters)
refused() { # refused TOKEN-FILE|- REASON [CMD ARGS]: recover alice (default) is refused
	local tok=$1 why=$2
	shift 2
	if [ $# -eq 0 ]; then
		set -- recover --user alice --password-file "$tmp/pw-alice" --out "$tmp/got"
	fi
	sv "$1" "$tok" "${@:2}"
	expect 5 "sealvault: the vault refused the access token: $why"
	[ "$(counters)" = "$before" ] || fail "$why: counters moved: $before -> $(counters)"
}
say "refused, charging nothing: no token"
refused - "no access token"
say "refused: alg none and HS256 (PyJWT)"
pytoken none --alg none --iss acme --sub alice --aud "$AUD" --kid x
refused "$tmp/none.tok" "the token's alg is not accepted"
pytoken hs --alg HS256 --iss acme --sub alice --aud "$AUD" --kid x
refused "$tmp/hs.tok" "the token's alg is not accepted"
say "refused: wrong key (beta's kid, another key), unknown kid"
beta rogue --sub bob --kid beta-ed --key "$tmp/rogue.pem"
refused "$tmp/rogue.tok" "the token's signature does not verify" \
	recover --user bob --password-file "$tmp/pw-bob-beta" --out "$tmp/got"
beta nokid --sub bob --kid no-such-kid --key "$tmp/beta-ed.pem"
refused "$tmp/nokid.tok" "the token's kid is not a key of its tenant" \
	recover --user bob --password-file "$tmp/pw-bob-beta" --out "$tmp/got"
say "refused: expired, not yet valid, lifetime over the maximum (600 s)"
admintoken expired alice --ttl 60 --now "$(($(date +%s) - 1000))"
refused "$tmp/expired.tok" "the token has expired"
beta early --sub bob --kid beta-ed --key "$tmp/beta-ed.pem" --nbf-off 600
refused "$tmp/early.tok" "the token is not valid yet" \
	recover --user bob --password-file "$tmp/pw-bob-beta" --out "$tmp/got"
beta long --sub bob --kid beta-ed --key "$tmp/beta-ed.pem" --ttl 3600
refused "$tmp/long.tok" "the token's lifetime (exp - iat) is over the vault's maximum" \
	recover --user bob --password-file "$tmp/pw-bob-beta" --out "$tmp/got"
say "refused: wrong aud, wrong sub for the identifier"
pytoken aud --iss beta --sub bob --aud 00000000000000000000000000000000 --kid beta-ed \
	--key "$tmp/beta-ed.pem"
refused "$tmp/aud.tok" "the token is not addressed to this vault (aud)" \
	recover --user bob --password-file "$tmp/pw-bob-beta" --out "$tmp/got"
refused "$tmp/bob-acme.tok" "the token's sub is not the identifier of this request"
say "refused with 403: a scope without recover (and register without register)"
admintoken regonly alice --scope register
refused "$tmp/regonly.tok" "the token's scope does not cover this operation"
admintoken reconly carol --scope recover
refused "$tmp/reconly.tok" "the token's scope does not cover this operation" \
	register --user carol --password-file "$tmp/pw-alice" --secret-file "$tmp/secret-alice"
say "alice's attempts are untouched: one wrong guess leaves 4 of 5"
sv recover "$tmp/alice.tok" --user alice --password-file "$tmp/wrong" --out "$tmp/got"
expect 2 "attempts left: 4"

say "HTTP: 401 with WWW-Authenticate (RFC 6750), 403 insufficient_scope, broker refusals"
ke1=c4dedb0ba6ed5d965d6f250fbe554cd45cba5dfcce3ce836e4aee778aa3cd44dda7e07376d6d6f034cfa9bb537d11b8c6b4238c334333d1f0aebb380cae6a6cc6e29bee50701498605b2c085d7b241ca15ba5c32027dd21ba420b94ce60da326
printf '01 0005 %s %s' "$(printf alice | od -An -v -tx1 | tr -d ' \n')" "$ke1" | xxd -r -p >"$tmp/ls-alice"
post() { # post PATH BODY-FILE [CURL ARGS]: prints the status; headers in $tmp/hdr, body in $tmp/body
	curl -sS --cacert "$SV_CACERT" -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' \
		-H 'Content-Type: application/octet-stream' --data-binary "@$2" "${@:3}" "$SV_URL$1"
}
before=$(counters)
[ "$(post /v1/login/start "$tmp/ls-alice")" = 401 ] || fail "no token: not 401"
grep -qiF 'WWW-Authenticate: Bearer error="invalid_token", error_description="no access token"' \
	"$tmp/hdr" || fail "401 without its challenge: $(cat "$tmp/hdr")"
[ "$(post /v1/login/start "$tmp/ls-alice" -H "Authorization: Bearer $(cat "$tmp/regonly.tok")")" = 403 ] ||
	fail "scope: not 403"
grep -qiF 'WWW-Authenticate: Bearer error="insufficient_scope"' "$tmp/hdr" ||
	fail "403 without insufficient_scope: $(cat "$tmp/hdr")"
for h in "Authorization: Basic YWxpY2U6cHc=" "Authorization: Bearer" "Authorization: Bearer a b" \
	"Authorization: Bearer $(head -c 5000 /dev/zero | tr '\0' a)" \
	"Authorization: Bearer $(printf 'caf\xc3\xa9')"; do
	[ "$(post /v1/login/start "$tmp/ls-alice" -H "$h")" = 401 ] || fail "'${h:0:40}': not 401"
done
[ "$(post /v1/login/start "$tmp/ls-alice" -H "Authorization: Bearer $(cat "$tmp/alice.tok")" \
	-H "Authorization: Bearer $(cat "$tmp/alice.tok")")" = 401 ] || fail "two headers: not 401"
[ "$(counters)" = "$before" ] || fail "HTTP refusals moved counters: $before -> $(counters)"

say "a token swapped between login/start and login/finish: 401, and the login stays"
[ "$(post /v1/login/start "$tmp/ls-alice" -H "Authorization: Bearer $(cat "$tmp/alice.tok")")" = 200 ] ||
	fail "login/start with alice's token: $(cat "$tmp/body")"
sid=$(head -c 16 "$tmp/body" | od -An -v -tx1 | tr -d ' \n')
printf '01 %s %s 01 %s' "$sid" "$(head -c 64 /dev/zero | od -An -v -tx1 | tr -d ' \n')" \
	"$(head -c 64 /dev/zero | od -An -v -tx1 | tr -d ' \n')" | xxd -r -p >"$tmp/lf"
admintoken mallory mallory
[ "$(post /v1/login/finish "$tmp/lf" -H "Authorization: Bearer $(cat "$tmp/mallory.tok")")" = 401 ] ||
	fail "swapped token: not 401 ($(cat "$tmp/body"))"
grep -qF "the token is for another user than the login it finishes" "$tmp/body" ||
	fail "swapped token: reason $(cat "$tmp/body")"
[ "$(post /v1/login/finish "$tmp/lf" -H "Authorization: Bearer $(cat "$tmp/bob-acme.tok")")" = 401 ] ||
	fail "another acme user's token: not 401"
# the login was not consumed: alice's own token reaches the KE3 check (a bad KE3: 403, 1 byte)
[ "$(post /v1/login/finish "$tmp/lf" -H "Authorization: Bearer $(cat "$tmp/alice.tok")")" = 403 ] ||
	fail "alice's token after the swaps: not 403 ($(cat "$tmp/body"))"
[ "$(stat -c %s "$tmp/body")" = 1 ] || fail "403 is not the attempts-left answer"

say "the attestation statement's policy hash pins the tenants (sealvault-admin expect)"
curl -fsS --cacert "$SV_CACERT" "$SV_URL/v1/attestation?nonce=00112233445566778899" >"$tmp/ev.json" ||
	fail "GET /v1/attestation"
"$ADMIN" expect --bindir "$B" --tenants-dir "$SV_TENANTS" >"$tmp/expect.json" ||
	fail "sealvault-admin expect --tenants-dir"
mkdir "$tmp/acme-only"
cp "$SV_TENANTS/acme.jwks" "$tmp/acme-only/"
"$ADMIN" expect --bindir "$B" --tenants-dir "$tmp/acme-only" >"$tmp/expect-acme.json"
"$ADMIN" expect --bindir "$B" --policy auth=open >"$tmp/expect-open.json"
"$PY" - "$tmp/ev.json" "$tmp/expect.json" "$tmp/expect-acme.json" "$tmp/expect-open.json" <<-'PY' ||
	import json, sys
	def find(o):
	    if isinstance(o, dict):
	        if "policy_hash" in o:
	            return o["policy_hash"]
	        for v in o.values():
	            h = find(v)
	            if h:
	                return h
	    return None
	served = find(json.load(open(sys.argv[1])))
	want, acme, open_ = (json.load(open(f))["policy_hash"] for f in sys.argv[2:5])
	assert served == want, "served %s, expect file %s" % (served, want)
	assert acme != want and open_ != want and acme != open_, "the tenants do not change the hash"
PY
	fail "the policy hash does not pin the tenant set"

say "the audit trail and sealvault-admin name a tenant's user by tenant and sub"
h_beta=$("$ADMIN" audit-id --key-file "$tmp/audit.key" --tenant beta bob)
h_acme=$("$ADMIN" audit-id --key-file "$tmp/audit.key" --tenant acme bob)
h_bare=$("$ADMIN" audit-id --key-file "$tmp/audit.key" bob)
[ "$h_beta" != "$h_acme" ] && [ "$h_beta" != "$h_bare" ] || fail "audit-id: the tenant does not enter the hash"
for h in "$h_beta" "$h_acme"; do
	grep -q "event=register .*id_hash=$h" "$tmp/srv/sealvaultd.log" ||
		fail "no register record with id_hash=$h (audit-id --tenant) in the log"
done
! grep -q "id_hash=$h_bare" "$tmp/srv/sealvaultd.log" || fail "a record names bob without his tenant"
"$ADMIN" delete --admin-socket "$SV_ADMIN_SOCK" --tenant beta --user bob >"$tmp/del.out" 2>&1 ||
	fail "sealvault-admin delete --tenant beta --user bob: $(cat "$tmp/del.out")"
grep -qx "deleted user 'bob' of tenant 'beta'" "$tmp/del.out" || fail "delete output: $(cat "$tmp/del.out")"
beta bob-es2 --sub bob --kid beta-es --key "$tmp/beta-es.pem"
sv recover "$tmp/bob-es2.tok" --user bob --password-file "$tmp/pw-bob-beta" --out "$tmp/got"
expect 2
sv recover "$tmp/bob-acme.tok" --user bob --password-file "$tmp/pw-bob-acme" --out "$tmp/got"
expect 0
cmp -s "$tmp/got" "$tmp/secret-bob-acme" || fail "acme's bob: another secret came back after beta's was deleted"

say "a forging broker on the enclave's socket, without tokens, charges nothing"
sv_server_stop
admintoken mallory2 mallory
user=()
[ "$(id -u)" -ne 0 ] || user=(--user "$SV_ENCLAVE_USER")
FORGE_LOG=$tmp/forge.log "$PY" tests/integration/enclave-forge.py "${user[@]}" \
	--token "$tmp/mallory2.tok" --metric sealvault_vault_login_starts_total \
	--metric sealvault_vault_registrations_total --metric sealvault_changes_total \
	--metric sealvault_tokens_refused_total -- \
	"$PWD/$B/sealvault-enclave" --state-dir "$tmp/srv/state" --tpm "$SWTPM_TCTI" \
	--context "$SV_CONTEXT" --tenants-dir "$SV_TENANTS" >"$tmp/forge.out" ||
	fail "enclave-forge: $(cat "$tmp/forge.out" "$tmp/forge.log")"
cat "$tmp/forge.out" | sed 's/^/token-auth:     /'
for want in "login_start_notoken status 9 no access token" "login_start_id0 status 9 no access token" \
	"login_start_token status 9 the token's sub is not the identifier of this request" \
	"register_notoken status 9 no access token" "garbled_prefix status 1" \
	"sealvault_vault_login_starts_total 0" "sealvault_vault_registrations_total 0" \
	"sealvault_changes_total 0" 'sealvault_tokens_refused_total{status="401"} 4'; do
	grep -qF -- "$want" "$tmp/forge.out" || fail "forging broker: no '$want'"
done
echo "token-auth: ok ($step steps)"
