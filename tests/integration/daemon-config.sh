#!/bin/bash
# sealvaultd's configuration, end to end: a config file whose every key is also a flag (flags
# win), unknown keys and out-of-bounds policy refused with file:line, missing helpers refused with
# a pointer to --libexec-dir (and found next to sealvaultd in the build tree without it), missing
# users refused when root, and an EMPTY OPAQUE context (`context =`) reaching the enclave: a
# client configured without a context registers and recovers through it, and one using the
# default context does not (the CLI stops at GET /v1/info, before its first guess).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh

D=$(mktemp -d "${TMPDIR:-/tmp}/sv-config.XXXXXX")
chmod 755 "$D"
PID=
cleanup() {
	local rc=$?
	if [ -n "$PID" ]; then
		kill -TERM "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	swtpm_cleanup
	[ $rc -eq 0 ] || { echo "daemon-config: FAILED; log:" >&2; tail -n 20 "$D/sealvaultd.log" >&2 || true; }
	rm -rf "$D"
}
trap cleanup EXIT
fail() {
	echo "daemon-config: FAIL: $*" >&2
	exit 1
}
users=()
[ "$(id -u)" -eq 0 ] && users=(--user "$SV_ENCLAVE_USER" --broker-user "$SV_BROKER_USER")

# refusals: exit status and a message naming the problem
expect_refusal() { # STATUS PATTERN ARGS...
	local want=$1 pat=$2 rc=0 out
	shift 2
	out=$(timeout 20 "$B/sealvaultd" --libexec-dir "$B" "$@" 2>&1) || rc=$?
	[ "$rc" -eq "$want" ] || fail "sealvaultd $*: exit $rc, expected $want: $out"
	echo "$out" | grep -q -- "$pat" || fail "sealvaultd $*: message lacks '$pat': $out"
}
printf 'state-dir = /x\nbogus-key = 1\n' >"$D/unknown.conf"
expect_refusal 2 "unknown.conf:2: unknown key 'bogus-key'" --config "$D/unknown.conf"
printf 'max-guess-limit = 999\n' >"$D/policy.conf"
expect_refusal 2 "max-guess-limit" --config "$D/policy.conf"
printf 'no equals sign here\n' >"$D/syntax.conf"
expect_refusal 2 "syntax.conf:1" --config "$D/syntax.conf"
expect_refusal 2 "cannot read the configuration" --config "$D/missing.conf"
expect_refusal 2 "must be a decimal number" --rate-limit fast
expect_refusal 1 "$D/nowhere/sealvault-enclave: No such file or directory; pass --libexec-dir" \
	--libexec-dir "$D/nowhere"
if [ "$(id -u)" -eq 0 ]; then
	expect_refusal 1 "user 'no-such-user-sv' does not exist" --user no-such-user-sv \
		--broker-user "$SV_BROKER_USER" --listen 127.0.0.1:0
	expect_refusal 1 "refusing to run sealvault-broker as root" --user "$SV_ENCLAVE_USER" \
		--broker-user root --listen 127.0.0.1:0
else
	expect_refusal 1 "need root" --user nobody --listen 127.0.0.1:0
fi
echo "daemon-config: bad configurations refused with exit status and reason"

# --help: every default is shown in full, parenthesis closed
help=$("$B/sealvaultd" --help) || fail "sealvaultd --help failed"
grep -qF -- "--state-dir (default: /var/lib/sealvault)" <<<"$help" ||
	fail "--help does not show the state-dir default: $help"
! grep -q '(default: [^)]*$' <<<"$help" || fail "--help leaves a '(default: ' open: $help"

# a good file with an empty context; a flag overrides the file's listen address
sv_server_init "$D" "$B" >/dev/null
cat >"$D/sealvault.conf" <<CONF
# test configuration
state-dir = $D/state
tpm = $SWTPM_TCTI
listen = 127.0.0.1:1
tls-cert = $D/cert.pem
tls-key = $D/key.pem
context =
rate-limit = 1000
rate-burst = 1000
CONF
# no --libexec-dir: sealvaultd finds the enclave and the broker next to itself in the build tree
"$B/sealvaultd" --config "$D/sealvault.conf" --listen 127.0.0.1:0 --port-file "$D/port" \
	"${users[@]}" >>"$D/sealvaultd.log" 2>&1 &
PID=$!
for i in $(seq 1 500); do
	kill -0 "$PID" 2>/dev/null || fail "sealvaultd exited during start-up"
	PORT=$(cat "$D/port" 2>/dev/null || true)
	[ -n "$PORT" ] && curl -fsS --max-time 2 --cacert "$D/cert.pem" \
		"https://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
	sleep 0.02
done
[ "$PORT" != 1 ] || fail "the --listen flag did not override the file"
URL=https://127.0.0.1:$PORT
"$B/tests/integration/badinput-probe" "$URL" "$D/cert.pem" "" >"$D/empty.log" ||
	fail "a client with the empty context failed: $(grep FAIL "$D/empty.log" | head -3)"
echo "daemon-config: empty context: $(tail -n1 "$D/empty.log")"
if "$B/tests/integration/badinput-probe" "$URL" "$D/cert.pem" sealvault-v1 >"$D/default.log"; then
	fail "a client with the default context authenticated against a vault with the empty one"
fi
grep -q 'FAIL KE2 authenticates with the right password' "$D/default.log" ||
	fail "the default-context client failed for another reason: $(grep FAIL "$D/default.log" | head -3)"
echo "daemon-config: a client with a different context does not authenticate: ok"
# the CLI reads GET /v1/info first: with the default context it stops before its first guess
starts() {
	curl -fsS --cacert "$D/cert.pem" "$URL/metrics" |
		awk '$1 == "sealvault_vault_login_starts_total" { print $2 }'
}
curl -fsS --cacert "$D/cert.pem" "$URL/v1/info" | grep -qF '"context":"","context_hex":""' ||
	fail "GET /v1/info does not show the empty context"
before=$(starts)
printf 'some password\n' >"$D/pw"
rc=0
"$B/sealvault" recover --server "$URL" --cacert "$D/cert.pem" --user someone \
	--password-file "$D/pw" --out "$D/out" 2>"$D/cli.err" || rc=$?
[ "$rc" -eq 1 ] || fail "the default-context CLI exited $rc, want 1: $(cat "$D/cli.err")"
grep -qF "the server's OPAQUE context is '', this client uses 'sealvault-v1'" "$D/cli.err" ||
	fail "the CLI does not name the mismatch: $(cat "$D/cli.err")"
[ -n "$before" ] && [ "$(starts)" = "$before" ] ||
	fail "login starts went from $before to $(starts): the CLI spent a guess"
echo "daemon-config: the CLI with another context exits 1 before any guess: ok"
echo "daemon-config: all passed"
