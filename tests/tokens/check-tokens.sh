#!/usr/bin/env bash
# Access tokens outside the request path (issue 13): tenants managed with `sealvault-admin
# tenant`, tokens minted by `sealvault-admin token` and by the Python example of docs/tokens.md
# (PyJWT, run word for word from the page), all checked by the enclave's verifier
# (tests/tokens/token-verify) with each refusal, and admin tokens accepted by PyJWT too.
# Needs B (build dir) and Debian's python3 with python3-jwt and python3-cryptography.
set -euo pipefail
B=${B:-build}
cd "$(dirname "$0")/../.."
ROOT=$PWD
ADMIN=$ROOT/$B/sealvault-admin
VERIFY=$ROOT/$B/tests/tokens/token-verify
# Debian's interpreter, where python3-jwt is installed (a python3 earlier in PATH may lack it).
PY=${SV_PYTHON3:-/usr/bin/python3}
REALM=00112233445566778899aabbccddeeff
NOW=1767225600

T=$(mktemp -d /tmp/sv-tokens.XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0
fail() {
	echo "check-tokens: FAIL: $*" >&2
	[ -f "$T/err" ] && sed 's/^/  stderr: /' "$T/err" >&2
	echo "$passed passed, 1 failed"
	exit 1
}
ok() { passed=$((passed + 1)); }
"$PY" -c 'import jwt, cryptography' 2>"$T/err" ||
	fail "$PY lacks PyJWT or cryptography (Debian: python3-jwt python3-cryptography; make deps)"

D=$T/tenants.d
# verify TOKEN-FILE EXPECT [token-verify options]: EXPECT is "ok" or a piece of the reason.
verify() {
	local file=$1 want=$2 out
	shift 2
	out=$("$VERIFY" --tenants "$D" --aud "$REALM" "$@" <"$file" 2>"$T/err") || true
	case "$want" in
	ok) [[ $out == ok* ]] || fail "$file: expected acceptance, got: $out" ;;
	*) [[ $out == "refused: "*"$want"* ]] || fail "$file: expected a refusal ($want), got: $out" ;;
	esac
	ok
}
# admin_rc WANT ARGS...: sealvault-admin exits WANT.
admin_rc() {
	local want=$1 rc=0
	shift
	"$ADMIN" "$@" >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" -eq "$want" ] || fail "sealvault-admin $* exited $rc, expected $want"
	ok
}

cd "$T"
# --- sealvault-admin tenant keygen / add / list and token, EdDSA and ES256 ---
"$ADMIN" tenant keygen acme --out acme-ed.jwk >acme-ed.jwks 2>"$T/err" || fail "keygen EdDSA"
"$ADMIN" tenant keygen acme --out acme-ec.jwk --alg ES256 --kid ec-1 >acme-ec.jwks 2>"$T/err" ||
	fail "keygen ES256"
[ "$(stat -c %a acme-ed.jwk)" = 600 ] || fail "the private JWK is not mode 0600"
admin_rc 5 tenant keygen acme --out acme-ed.jwk # never over an existing key
# kid = RFC 7638 thumbprint, computed independently
"$PY" - acme-ed.jwks <<'EOF' || fail "the keygen kid is not the RFC 7638 thumbprint"
import base64, hashlib, json, sys
k = json.load(open(sys.argv[1]))["keys"][0]
canon = json.dumps({m: k[m] for m in ("crv", "kty", "x")}, separators=(",", ":"), sort_keys=True)
t = base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).rstrip(b"=").decode()
assert k["kid"] == t, (k["kid"], t)
EOF
ok
admin_rc 0 tenant add acme acme-ed.jwks --dir "$D"
[ "$(stat -c %a "$D/acme.jwks")" = 644 ] || fail "tenants.d/acme.jwks is not mode 0644"
admin_rc 5 tenant add acme acme-ed.jwks --dir "$D"
grep -q "exists already" "$T/err" || fail "add over an existing tenant did not say why"
admin_rc 1 tenant add beta acme-ed.jwk --dir "$D" # a private JWK is not a JWK Set
admin_rc 2 tenant add Beta acme-ed.jwks --dir "$D"
printf '{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"k"}]}' >bad.jwks
admin_rc 1 tenant add beta bad.jwks --dir "$D"
grep -q "not a valid Ed25519 public key" "$T/err" || fail "a bad key was not named"
[ ! -e "$D/beta.jwks" ] || fail "a refused set was written"
admin_rc 5 tenant remove beta --dir "$D"
admin_rc 5 tenant rotate beta acme-ec.jwks --dir "$D"

mint() { "$ADMIN" token --tenant acme --aud "$REALM" --now "$NOW" "$@"; }
mint --key acme-ed.jwk --sub alice >ed.tok 2>"$T/err" || fail "token EdDSA"
mint --key acme-ec.jwk --sub alice --scope recover >ec.tok 2>"$T/err" || fail "token ES256"
verify ed.tok ok --now "$NOW"
verify ec.tok "kid is not a key" --now "$NOW"
# rotation: both keys, then the EC key alone
"$PY" -c 'import json,sys
print(json.dumps({"keys": [json.load(open(f))["keys"][0] for f in sys.argv[1:]]}))' \
	acme-ed.jwks acme-ec.jwks >both.jwks
admin_rc 0 tenant rotate acme both.jwks --dir "$D"
grep -q "key added: ec-1" "$T/out" || fail "rotate did not list the added key"
verify ed.tok ok --now "$NOW"
verify ec.tok ok --now "$NOW"
out=$("$VERIFY" --tenants "$D" --aud "$REALM" --now "$NOW" <ec.tok)
[ "$out" = "ok tenant=acme sub=alice scope=2" ] || fail "claims of the ES256 token: $out"
ok
# list shows both kids and a digest that changes with the set
admin_rc 0 tenant list --dir "$D"
grep -q "ES256 ec-1" "$T/out" || fail "list does not show the ES256 key"
d1=$(grep '^tenants digest:' "$T/out")
admin_rc 0 tenant rotate acme acme-ec.jwks --dir "$D"
grep -q "key removed:" "$T/out" || fail "rotate did not list the removed key"
admin_rc 0 tenant list --dir "$D"
[ "$(grep '^tenants digest:' "$T/out")" != "$d1" ] || fail "the digest did not change"
verify ed.tok "kid is not a key" --now "$NOW"
admin_rc 0 tenant rotate acme both.jwks --dir "$D"

# refusals of admin-minted tokens
verify ed.tok "expired" --now $((NOW + 300 + 60))
verify ed.tok "not valid yet" --now $((NOW - 61))
verify ed.tok "aud" --now "$NOW" --aud ffeeddccbbaa99887766554433221100
mint --key acme-ed.jwk --sub alice --ttl 601 >long.tok
verify long.tok "lifetime" --now "$NOW"
verify long.tok ok --now "$NOW" --max-lifetime 601
"$ADMIN" token --tenant beta --key acme-ed.jwk --sub alice --aud "$REALM" --now "$NOW" >beta.tok
verify beta.tok "issuer" --now "$NOW"
admin_rc 2 token --tenant acme --key acme-ed.jwk --sub alice --aud "$REALM" --scope "recover admin"
admin_rc 1 token --tenant acme --key acme-ed.jwks --sub alice --aud "$REALM"
# a damaged private key: d of another key
"$PY" -c 'import json,sys
a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); a["d"]=b["d"]; print(json.dumps(a))' \
	acme-ed.jwk <("$ADMIN" tenant keygen x --out other.jwk >/dev/null 2>&1 && cat other.jwk) >mixed.jwk
admin_rc 1 token --tenant acme --key mixed.jwk --sub alice --aud "$REALM"
grep -q "not the private key" "$T/err" || fail "a mismatched private JWK was not explained"

# PyJWT accepts what sealvault-admin mints (EdDSA and ES256)
for tok in ed.tok ec.tok; do
	"$PY" - "$tok" both.jwks "$REALM" "$NOW" <<'EOF' || fail "PyJWT refused $tok"
import json, sys, jwt
tok, jwks, realm, now = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
token = open(tok).read().strip()
kid = jwt.get_unverified_header(token)["kid"]
jwk = next(k for k in json.load(open(jwks))["keys"] if k["kid"] == kid)
# PyJWT checks exp against the real clock: only the signature and aud here; the times are the
# verifier's job above.
c = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[jwk["alg"]], audience=realm,
               options={"verify_exp": False, "verify_iat": False})
assert c["sub"] == "alice" and c["iss"] == "acme" and c["iat"] == now, c
EOF
	ok
done

# --- the Python example of docs/tokens.md, as printed there ---
extract() { # extract FILE: the fenced block of docs/tokens.md whose first line names FILE
	awk -v f="$1" '/^```/ { if (inb) { inb = 0; take = 0; next } inb = 1; first = 1; next }
		inb && first { first = 0; if ($0 ~ ("^(#|//) " f ":")) take = 1 }
		inb && take { print }' "$ROOT/docs/tokens.md"
}
for alg in EdDSA ES256; do
	rm -rf "$T/py" && mkdir "$T/py" && cd "$T/py"
	extract keygen.py >keygen.py
	extract mint.py >mint.py
	[ -s keygen.py ] && [ -s mint.py ] || fail "docs/tokens.md lost its Python example"
	"$PY" keygen.py "$alg" 2>"$T/err" || fail "docs keygen.py $alg"
	[ "$(stat -c %a acme-signing-key.pem)" = 600 ] || fail "keygen.py: key not mode 0600"
	rm -rf "$D" && admin_rc 0 tenant add acme acme.jwks --dir "$D"
	SEALVAULT_VAULT_ID=$REALM "$PY" mint.py alice@example.com >tok 2>"$T/err" || fail "mint.py"
	SEALVAULT_VAULT_ID=$REALM "$PY" mint.py alice@example.com recover >tok-scope 2>"$T/err" ||
		fail "mint.py with scope"
	verify tok ok
	out=$("$VERIFY" --tenants "$D" --aud "$REALM" <tok-scope)
	[ "$out" = "ok tenant=acme sub=alice@example.com scope=2" ] || fail "docs $alg: $out"
	ok
	verify tok "aud" --aud ffeeddccbbaa99887766554433221100
	grep -q "\"alg\": \"$alg\"" acme.jwks || fail "keygen.py $alg wrote: $(cat acme.jwks)"
done

# --- the Node example (jose), only where a jose install is given: CI does not fetch npm packages.
# SV_JOSE_MODULES=DIR/node_modules (after `npm install jose` in DIR) runs it as printed.
if [ -n "${SV_JOSE_MODULES:-}" ] && [ -f "$SV_JOSE_MODULES/jose/package.json" ]; then
	rm -rf "$T/js" && mkdir "$T/js" && cd "$T/js"
	ln -s "$SV_JOSE_MODULES" node_modules
	extract keygen.mjs >keygen.mjs
	extract mint.mjs >mint.mjs
	node keygen.mjs 2>"$T/err" || fail "docs keygen.mjs"
	rm -rf "$D" && admin_rc 0 tenant add acme acme.jwks --dir "$D"
	SEALVAULT_VAULT_ID=$REALM node mint.mjs bob recover >tok 2>"$T/err" || fail "docs mint.mjs"
	out=$("$VERIFY" --tenants "$D" --aud "$REALM" <tok)
	[ "$out" = "ok tenant=acme sub=bob scope=2" ] || fail "docs jose example: $out"
	ok
	echo "check-tokens: the jose example ran (jose $(node -p "require('$SV_JOSE_MODULES/jose/package.json').version"))"
else
	echo "check-tokens: the jose example skipped (set SV_JOSE_MODULES to a node_modules with jose)"
fi
echo "check-tokens: $passed passed, 0 failed"
