#!/bin/bash
# check-drain (issue 14, item 2): SIGTERM drains instead of dropping the pending logins. Real
# sealvaultd, enclave and broker (under their seccomp filters) on a swtpm; the client is
# drain-login, the library's own login split at KE2 (it waits for a line on its stdin before it
# sends KE3), so that the server can be stopped between the two halves.
#   1. alice (guess limit 3) spends two wrong guesses; drain-login starts her LAST guess with the
#      right password (KE2 says 0 attempts left: the charge destroyed the record, whose only copy
#      is the pending login's rescue slot). sealvaultd gets SIGTERM. During the drain a new
#      login/start is refused 503 with the drain's text and a Retry-After header (the CLI, and
#      curl for the header), /healthz is 503, GET /v1/info is still served, and sealvaultd
#      still runs. Then KE3: the secret comes back byte-identical, sealvaultd exits 0 by itself,
#      and after a restart alice recovers again (the record survived the stop).
#   2. The same with drain-timeout-s 2 and KE3 only after the drain has timed out: sealvaultd
#      exits 0 and logs the unfinished last guess; on the restarted service (same port) the late
#      KE3 is answered 503 "began before the vault restarted" and alice is locked out (410, CLI
#      exit 3): an unfinished last guess counts as a wrong guess (sealvaultd(8), "Stopping").
#   3. A second SIGTERM during a drain stops at once (exit 0) while a login is still pending.
# No timing is asserted beyond "it exited".
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
DL=$PWD/$B/tests/integration/drain-login
. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d "${TMPDIR:-/tmp}/sv-drain.XXXXXX")
chmod 0755 "$T"
DLPID=
cleanup() {
	local rc=$?
	set +e
	exec 3>&- 2>/dev/null
	[ -n "$DLPID" ] && kill -9 "$DLPID" 2>/dev/null
	if [ $rc -ne 0 ] && [ -e "$T/srv/sealvaultd.log" ]; then
		echo "--- sealvaultd.log (tail)" >&2
		tail -n 30 "$T/srv/sealvaultd.log" >&2
	fi
	sv_server_cleanup
	[ -n "${KEEP:-}" ] && { echo "kept $T" >&2; return; }
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "drain: FAIL: $*" >&2
	exit 1
}
say() { echo "drain: $*"; }
KSF=(--ksf-t 1 --ksf-m 8)
# sv CMD ARGS...: the CLI; sets rc and err (its stderr)
sv() {
	set +e
	"$SV" "$1" --server "$SV_URL" --cacert "$SV_CACERT" --context "$SV_CONTEXT" "${KSF[@]}" \
		"${@:2}" 2>"$T/stderr"
	rc=$?
	set -e
	err=$(cat "$T/stderr")
}
expect() { # expect RC [TEXT]
	[ "$rc" -eq "$1" ] || fail "exit $rc, want $1; stderr: $err"
	[ -z "${2:-}" ] || grep -qF -- "$2" <<<"$err" || fail "stderr lacks '$2': $err"
}
logged() { grep -qF -- "$1" "$T/srv/sealvaultd.log"; }
wait_log() { # wait_log TEXT: until sealvaultd's log has it (or fail)
	for _ in $(seq 1 600); do
		logged "$1" && return 0
		sleep 0.05
	done
	fail "sealvaultd never logged '$1'"
}
# starts drain-login for alice with the right password; waits for its KE2
start_login() {
	rm -f "$T/go" "$T/dl.out" "$T/out"
	mkfifo "$T/go"
	"$DL" "$SV_URL" "$SV_CACERT" "$SV_CONTEXT" alice "$T/pw" "$T/out" 1 8 <"$T/go" \
		>"$T/dl.out" 2>&1 &
	DLPID=$!
	exec 3>"$T/go"
	for _ in $(seq 1 600); do
		grep -q '^ke2 ' "$T/dl.out" && return 0
		kill -0 "$DLPID" 2>/dev/null || fail "drain-login ended early: $(cat "$T/dl.out")"
		sleep 0.05
	done
	fail "drain-login got no KE2"
}
# lets drain-login send KE3; sets dlrc
finish_login() {
	echo go >&3
	exec 3>&-
	set +e
	wait "$DLPID"
	dlrc=$?
	set -e
	DLPID=
}
# waits until sealvaultd has exited by itself (no SIGKILL); sets sdrc
wait_exit() {
	for _ in $(seq 1 1200); do
		kill -0 "$SV_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$SV_PID" 2>/dev/null && fail "sealvaultd did not exit after the drain"
	set +e
	wait "$SV_PID"
	sdrc=$?
	set -e
	SV_PID=
}
two_wrong_guesses() {
	sv recover --user alice --password-file "$T/wrong" --out "$T/o"
	expect 2 "attempts left: 2"
	sv recover --user alice --password-file "$T/wrong" --out "$T/o"
	expect 2 "attempts left: 1"
}

head -c 48 /dev/urandom >"$T/secret"
printf 'the right password\n' >"$T/pw"
printf 'a wrong one\n' >"$T/wrong"
head -c 200 /dev/urandom >"$T/junk"

sv_server_init "$T/srv" "$B"
SV_DAEMON_ARGS=(--drain-timeout-s 30)
sv_server_start
sv register --user alice --password-file "$T/pw" --secret-file "$T/secret" --max-attempts 3
expect 0

# --- 1. the last guess finishes during the drain ---
two_wrong_guesses
start_login
grep -qx 'ke2 attempts-left 0' "$T/dl.out" || fail "not the last guess: $(cat "$T/dl.out")"
say "[1] last-guess login pending (KE2: 0 attempts left); SIGTERM"
kill -TERM "$SV_PID"
wait_log "the enclave refuses new logins; 1 pending logins (1 on a last guess)"
sv recover --user bob --password-file "$T/pw" --out "$T/o"
expect 6 "the vault is shutting down; retry in a few seconds"
curl -sS --max-time 10 --cacert "$SV_CACERT" -D "$T/hdr" -o "$T/body" \
	-H 'Content-Type: application/octet-stream' --data-binary "@$T/junk" \
	"$SV_URL/v1/login/start" || fail "curl login/start during the drain"
head -n 1 "$T/hdr" | grep -q ' 503' || fail "login/start during the drain: $(head -n 1 "$T/hdr")"
grep -qi '^Retry-After: ' "$T/hdr" || fail "503 without Retry-After: $(cat "$T/hdr")"
grep -qF 'shutting down' "$T/body" || fail "503 body: $(cat "$T/body")"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$SV_CACERT" "$SV_URL/healthz")
[ "$code" = 503 ] || fail "/healthz during the drain: $code, want 503"
curl -fsS --max-time 10 --cacert "$SV_CACERT" "$SV_URL/v1/info" >/dev/null ||
	fail "GET /v1/info is not served during the drain"
kill -0 "$SV_PID" 2>/dev/null || fail "sealvaultd did not wait for the pending login"
say "[1] new logins refused 503 (Retry-After), /healthz 503; sending KE3"
finish_login
[ "$dlrc" -eq 0 ] || fail "the last-guess login did not finish: $(cat "$T/dl.out")"
cmp -s "$T/secret" "$T/out" || fail "the recovered secret differs"
wait_exit
[ "$sdrc" -eq 0 ] || fail "sealvaultd exited $sdrc after the drain, want 0"
logged "every pending login has finished" || fail "the drain did not end on an empty table"
say "[1] secret recovered byte-identical during the drain; sealvaultd exited 0"
SV_DAEMON_ARGS=(--drain-timeout-s 2)
sv_server_start
sv recover --user alice --password-file "$T/pw" --out "$T/o2"
expect 0
cmp -s "$T/secret" "$T/o2" || fail "the record did not survive the stop"
say "[1] after a restart alice recovers again: the record survived"

# --- 2. the drain times out before KE3 ---
two_wrong_guesses
start_login
grep -qx 'ke2 attempts-left 0' "$T/dl.out" || fail "not the last guess: $(cat "$T/dl.out")"
port=$SV_PORT
say "[2] last-guess login pending; SIGTERM with drain-timeout-s 2, no KE3 in time"
kill -TERM "$SV_PID"
wait_exit
[ "$sdrc" -eq 0 ] || fail "sealvaultd exited $sdrc after the drain timed out, want 0"
logged "drain-timeout-s passed with 1 logins unfinished; 1 of them held a last guess" ||
	fail "the unfinished last guess is not logged"
SV_DAEMON_ARGS=(--drain-timeout-s 30 --listen "127.0.0.1:$port")
sv_server_start
[ "$SV_PORT" = "$port" ] || fail "the restarted service is not on port $port"
finish_login
[ "$dlrc" -eq 4 ] && grep -q 'login/finish HTTP 503: .*began before the vault restarted' "$T/dl.out" ||
	fail "the late KE3: exit $dlrc, $(cat "$T/dl.out")"
[ ! -e "$T/out" ] || fail "the late KE3 released the secret"
sv recover --user alice --password-file "$T/pw" --out "$T/o3"
expect 3 "destroyed"
[ ! -e "$T/o3" ] || fail "a locked record released the secret"
say "[2] after the timeout: late KE3 503, alice locked out (410): the last guess counted"

# --- 3. a second SIGTERM stops at once ---
sv register --user carol --password-file "$T/pw" --secret-file "$T/secret"
expect 0
rm -f "$T/go" "$T/dl.out"
mkfifo "$T/go"
"$DL" "$SV_URL" "$SV_CACERT" "$SV_CONTEXT" carol "$T/pw" "$T/out" 1 8 <"$T/go" >"$T/dl.out" 2>&1 &
DLPID=$!
exec 3>"$T/go"
for _ in $(seq 1 600); do grep -q '^ke2 ' "$T/dl.out" && break; sleep 0.05; done
grep -q '^ke2 ' "$T/dl.out" || fail "carol's login got no KE2"
n=$(grep -c 'the enclave refuses new logins' "$T/srv/sealvaultd.log" || true)
kill -TERM "$SV_PID"
for _ in $(seq 1 600); do
	[ "$(grep -c 'the enclave refuses new logins' "$T/srv/sealvaultd.log")" -gt "$n" ] && break
	sleep 0.05
done
kill -TERM "$SV_PID"
wait_exit
[ "$sdrc" -eq 0 ] || fail "sealvaultd exited $sdrc after a second SIGTERM, want 0"
logged "Terminated again: stopping both processes now" || fail "the second SIGTERM is not logged"
finish_login
say "[3] a second SIGTERM stopped at once with a login pending; exit 0"
say "ok"
