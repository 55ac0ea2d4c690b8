#!/bin/bash
# sealvaultd's configuration, end to end: a config file whose every key is also a flag (flags
# win), unknown keys and out-of-bounds policy refused with file:line, missing helpers refused with
# a pointer to --libexec-dir (and found next to sealvaultd in the build tree without it), missing
# users refused when root, and an EMPTY OPAQUE context (`context =`) reaching the enclave: a
# client configured without a context registers and recovers through it, and one using the
# default context does not (the CLI stops at GET /v1/info, before its first guess). The metrics
# listener (issue 14): /metrics answers there in plain HTTP (TCP from the file's metrics-listen,
# then a unix socket) and is a 404 on the public port, where /healthz stays; readiness: with
# NOTIFY_SOCKET set, READY=1 comes once /healthz answers 200, and the children do not see the
# variable.
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
	[ -z "${NPID:-}" ] || kill "$NPID" 2>/dev/null || true
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
expect_refusal 1 "metrics-listen: the listen address must be HOST:PORT" --listen 127.0.0.1:0 \
	--metrics-listen nowhere "${users[@]}"
expect_refusal 1 "metrics-listen: the unix socket path must be absolute" --listen 127.0.0.1:0 \
	--metrics-listen unix:relative.sock "${users[@]}"
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
auth = open
rate-limit = 1000
rate-burst = 1000
metrics-listen = 127.0.0.1:0
metrics-port-file = $D/metrics-port
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

# /metrics: on the metrics listener (plain HTTP, from the file's metrics-listen), 404 publicly
MPORT=$(cat "$D/metrics-port") || fail "no metrics-port-file"
MURL=http://127.0.0.1:$MPORT
curl -fsS --max-time 10 "$MURL/metrics" >"$D/metrics" || fail "GET /metrics on the metrics listener failed"
grep -q '^# TYPE sealvault_' "$D/metrics" && grep -q '^sealvault_http_requests_total{' "$D/metrics" ||
	fail "the metrics listener's /metrics is not the Prometheus text: $(head -c 300 "$D/metrics")"
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$D/cert.pem" "$URL/metrics")
[ "$code" = 404 ] || fail "GET /metrics on the public port answered $code, want 404"
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$D/cert.pem" "$URL/healthz")
[ "$code" = 200 ] || fail "GET /healthz on the public port answered $code, want 200"
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$MURL/healthz")
[ "$code" = 200 ] || fail "GET /healthz on the metrics listener answered $code, want 200"
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$MURL/v1/attestation?nonce=0011223344556677")
[ "$code" = 404 ] || fail "a vault route on the metrics listener answered $code, want 404"
grep -q '^sealvault_http_requests_total{endpoint="other",code="404"} [1-9]' <(curl -fsS "$MURL/metrics") ||
	fail "the public 404 for /metrics is not counted under endpoint=\"other\""
echo "daemon-config: /metrics answers on the metrics listener only (404 on the public port); /healthz on both"


# the CLI reads GET /v1/info first: with the default context it stops before its first guess
starts() {
	curl -fsS "$MURL/metrics" |
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

# a unix-socket metrics listener, and readiness through a stand-in for systemd's socket
kill -TERM "$PID"
wait "$PID" 2>/dev/null || true
PID=
rm -f "$D/port"
python3 tests/integration/notify-wait.py "$D/notify" "$D/port" "$D/cert.pem" >"$D/notify.log" 2>&1 &
NPID=$!
for i in $(seq 1 250); do [ -S "$D/notify" ] && break; sleep 0.02; done
[ -S "$D/notify" ] || fail "the notification stand-in did not start: $(cat "$D/notify.log")"
NOTIFY_SOCKET=$D/notify "$B/sealvaultd" --config "$D/sealvault.conf" --listen 127.0.0.1:0 \
	--port-file "$D/port" --metrics-listen "unix:$D/metrics.sock" "${users[@]}" \
	>>"$D/sealvaultd.log" 2>&1 &
PID=$!
rc=0
wait "$NPID" || rc=$?
NPID=
[ $rc -eq 0 ] || fail "readiness: $(cat "$D/notify.log")"
grep -q '^notify: READY=1 | STATUS=serving' "$D/notify.log" ||
	fail "readiness: no 'READY=1 STATUS=serving': $(cat "$D/notify.log")"
echo "daemon-config: readiness: $(tail -n 1 "$D/notify.log")"
for c in $(pgrep -P "$PID"); do
	! tr '\0' '\n' <"/proc/$c/environ" | grep -q '^NOTIFY_SOCKET=' ||
		fail "child $c ($(cat "/proc/$c/comm")) sees NOTIFY_SOCKET"
done
[ "$(stat -c %a "$D/metrics.sock")" = 660 ] ||
	fail "the metrics socket has mode $(stat -c %a "$D/metrics.sock"), want 660"
curl -fsS --max-time 10 --unix-socket "$D/metrics.sock" http://localhost/metrics >"$D/metrics" ||
	fail "GET /metrics on the unix socket failed"
grep -q '^sealvault_http_requests_total{' "$D/metrics" ||
	fail "the unix socket's /metrics is not the Prometheus text"
echo "daemon-config: /metrics on a unix socket (mode 660); the children do not see NOTIFY_SOCKET"
echo "daemon-config: all passed"
