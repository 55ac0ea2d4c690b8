#!/bin/bash
# check-admin-online (issue 14, item 5): `sealvault-admin status` and `delete` while the vault
# runs, through sealvaultd's admin socket. Real sealvaultd, enclave and broker on a swtpm (behind
# tests/lib/tpm-proxy.py, so that the TPM connection can be cut), configured from a file that
# sealvault-admin reads as well.
#   1. status online prints the figures (users: 2), sealvaultd logs the request; the offline
#      form (--state-dir/--tpm) is still refused while the vault runs (exit 4);
#   2. delete online: alice is gone (deleting again: exit 5; her recovery fails like an unknown
#      user's; her identifier can be registered again), bob still recovers;
#   3. as root: a caller that is neither root nor in group sealvault-admin (nobody) is refused,
#      by the socket's mode and, with the mode opened up, by sealvaultd's SO_PEERCRED check;
#      nothing is deleted (skipped, and said so, when not run as root);
#   4. after the enclave restarts alone (the TPM connection cut: exit 75), the admin pair still
#      works (the registration whose increment was cut was rolled forward: users 2);
#   5. after a restart of the service the deletion persists (and the identifier is free again);
#      status is answered under a load of 10 clients, none of whose requests fails;
#   6. the online status and the offline one right after stopping print the same field names and
#      the same static values; with the state locked and no socket, the message says so (exit 4);
#   7. the broker's link does not carry admin frames: an enclave sent SV_MSG_ADMIN_DELETE or
#      SV_MSG_ADMIN_STATUS on fd 3 ends with a protocol violation and deletes nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
ADMIN=$PWD/$B/sealvault-admin
. tests/lib/swtpm.sh
. tests/lib/tpmproxy.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d "${TMPDIR:-/tmp}/sv-admin-online.XXXXXX")
chmod 0755 "$T"
BENCH=
cleanup() {
	local rc=$?
	set +e
	[ -n "$BENCH" ] && kill -9 "$BENCH" 2>/dev/null
	if [ $rc -ne 0 ] && [ -e "$T/srv/sealvaultd.log" ]; then
		echo "--- sealvaultd.log (tail)" >&2
		tail -n 25 "$T/srv/sealvaultd.log" >&2
	fi
	sv_server_stop
	tpmproxy_cleanup
	swtpm_cleanup
	[ -n "${KEEP:-}" ] && { echo "kept $T" >&2; return; }
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "admin-online: FAIL: $*" >&2
	exit 1
}
t_start=$(date +%s.%N)

# run EXPECTED-EXIT CMD...: output in $T/out and $T/err
run() {
	local want=$1 rc=0
	shift
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" -eq "$want" ] || fail "$* exited $rc, want $want: $(cat "$T/out" "$T/err")"
}
count() { grep -c -- "$1" "$T/srv/sealvaultd.log" || true; }
# sv CMD ARGS...: the client CLI; sets rc and err
sv() {
	set +e
	"$SV" "$1" --server "$SV_URL" --cacert "$SV_CACERT" "${@:2}" 2>"$T/stderr"
	rc=$?
	set -e
	err=$(cat "$T/stderr")
}

sv_server_init "$T/srv" "$B"
tpmproxy_start "$T/px"
CTL=$TPMPROXY_CTL
SWTPM_TCTI=$TPMPROXY_TCTI
SOCK=$T/srv/admin.sock # tests/lib/sealvaultd.sh gives sealvaultd --admin-socket DIR/admin.sock
# what sealvault-admin reads: the same three keys sealvaultd is given
cat >"$T/admin.conf" <<EOF
state-dir = $T/srv/state
tpm = $SWTPM_TCTI
admin-socket = $SOCK
EOF
# the load of step 5 registers users: no NV-write budget or rate limit in its way
SV_DAEMON_ARGS=(--nv-writes-per-day 1000000 --nv-writes-burst 100000 --rate-limit 0)
sv_server_start
[ "$SV_ADMIN_SOCK" = "$SOCK" ] || fail "tests/lib/sealvaultd.sh uses another admin socket"


printf 'correct horse\n' >"$T/pw"
head -c 32 /dev/urandom >"$T/s.alice"
head -c 32 /dev/urandom >"$T/s.bob"
for u in alice bob; do
	sv register --user "$u" --password-file "$T/pw" --secret-file "$T/s.$u"
	[ "$rc" -eq 0 ] || fail "register $u: exit $rc: $err"
done

# --- 1. status online ---
[ -S "$SOCK" ] || fail "sealvaultd made no admin socket at $SOCK"
mode=$(stat -c %a "$SOCK")
[ "$mode" = 660 ] || [ "$mode" = 600 ] || fail "the admin socket has mode $mode"
n0=$(count 'admin socket: uid .*: status: done')
run 0 "$ADMIN" status --config "$T/admin.conf"
grep -qx 'users: 2' "$T/out" && grep -qx 'agree: yes' "$T/out" ||
	fail "online status: $(cat "$T/out")"
grep -qx "state-dir: $T/srv/state" "$T/out" || fail "online status names another state-dir"
[ "$(count 'admin socket: uid .*: status: done')" -eq $((n0 + 1)) ] ||
	fail "sealvaultd did not log the status request"
if [ "$(id -u)" -eq 0 ]; then # the enclave's admin pair (fd 4, a hole at exec, is reused later)
	E=$(sv_enclave_pid) || fail "no enclave"
	[ -S "/proc/$E/fd/5" ] ||
		fail "enclave descriptors: $(ls -l "/proc/$E/fd" 2>&1)"
fi
echo "admin-online: [1] status answered by the running vault (users: 2, agree: yes)"
run 4 "$ADMIN" status --state-dir "$T/srv/state" --tpm "$SWTPM_TCTI"
grep -q 'in use' "$T/err" || fail "offline status while running: $(cat "$T/err")"

# --- 2. delete online ---
run 0 "$ADMIN" delete --config "$T/admin.conf" --user alice
grep -qx "deleted user 'alice'" "$T/out" || fail "delete output: $(cat "$T/out")"
run 5 "$ADMIN" delete --config "$T/admin.conf" --user alice
grep -q "no user 'alice' in this vault" "$T/err" || fail "second delete: $(cat "$T/err")"
sv recover --user alice --password-file "$T/pw" --out "$T/out.alice"
[ "$rc" -eq 2 ] && grep -q 'wrong password or unknown user' <<<"$err" ||
	fail "alice recovers after the online delete: exit $rc: $err"
[ ! -e "$T/out.alice" ] || fail "a recovery of the deleted alice wrote a file"
sv recover --user bob --password-file "$T/pw" --out "$T/out.bob"
[ "$rc" -eq 0 ] && cmp -s "$T/s.bob" "$T/out.bob" || fail "bob does not recover: exit $rc: $err"
run 0 "$ADMIN" status --config "$T/admin.conf"
grep -qx 'users: 1' "$T/out" || fail "users after the online delete: $(grep users "$T/out")"
echo "admin-online: [2] delete online: alice gone (exit 5 again, recovery refused), bob recovers"

# --- 3. a caller that is neither root nor in group sealvault-admin ---
if [ "$(id -u)" -eq 0 ]; then
	as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
	run 1 as_nobody "$ADMIN" delete --config "$T/admin.conf" --user bob
	grep -q 'permission denied on the admin socket' "$T/err" ||
		fail "nobody, socket mode $mode: $(cat "$T/err")"
	# past the file mode, sealvaultd's own check (SO_PEERCRED) refuses
	chmod 0666 "$SOCK"
	run 1 as_nobody "$ADMIN" delete --config "$T/admin.conf" --user bob
	grep -q 'permission denied: uid [0-9]* is neither root nor in group sealvault-admin' "$T/err" ||
		fail "nobody past the mode: $(cat "$T/err")"
	run 1 as_nobody "$ADMIN" status --config "$T/admin.conf"
	grep -q 'neither root nor in group' "$T/err" || fail "nobody's status: $(cat "$T/err")"
	chmod "$mode" "$SOCK"
	[ "$(count 'admin socket: refused uid')" -eq 2 ] || fail "sealvaultd did not log the refusals"
	run 0 "$ADMIN" status --config "$T/admin.conf"
	grep -qx 'users: 1' "$T/out" || fail "a refused caller changed the users"
	echo "admin-online: [3] nobody refused by the socket's mode and by SO_PEERCRED; bob kept"
else
	echo "admin-online: [3] SKIPPED (not root): the refusal of a caller outside group sealvault-admin"
fi

# --- 4. the enclave restarts alone (exit 75): the admin pair works for the next one ---
served=$(count 'the vault serves')
tpmproxy_drop_next "$CTL" 0x134 # NV_Increment: the registration's commit loses the TPM
sv register --user carol --password-file "$T/pw" --secret-file "$T/s.bob"
[ "$rc" -ne 0 ] || fail "carol registered although the TPM connection was cut"
# meanwhile the admin socket answers at once: the status, or "restarting" while no enclave runs
# (which of the two depends on timing; anything else, e.g. a 10 s wait, fails)
restarting=0
for _ in $(seq 1 200); do
	[ "$(count 'the vault serves')" -gt "$served" ] && break
	rc=0
	"$ADMIN" status --config "$T/admin.conf" >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" -ne 0 ]; then
		[ "$rc" -eq 1 ] && grep -q 'the vault is restarting' "$T/err" ||
			fail "status while the enclave restarts: exit $rc: $(cat "$T/err")"
		restarting=$((restarting + 1))
	fi
	sleep 0.05
done
[ "$(count 'started sealvault-enclave (pid [0-9]*) again')" -ge 1 ] ||
	fail "the enclave was not restarted alone"
[ "$(count 'the vault serves')" -gt "$served" ] || fail "the restarted enclave does not serve"
# carol's registration was written before its increment was cut: the next enclave completed it
run 0 "$ADMIN" status --config "$T/admin.conf"
grep -qx 'users: 2' "$T/out" && grep -qx 'agree: yes' "$T/out" ||
	fail "status after the enclave's restart: $(cat "$T/out")"
echo "admin-online: [4] the enclave restarted alone (exit 75); the admin socket said 'restarting'" \
	"$restarting time(s) meanwhile and answers again"

# --- 5. after a restart of the service the deletion persists ---
sv_server_restart
sv recover --user alice --password-file "$T/pw" --out "$T/out.alice"
[ "$rc" -eq 2 ] || fail "alice recovers after a restart: exit $rc: $err"
sv register --user alice --password-file "$T/pw" --secret-file "$T/s.alice"
[ "$rc" -eq 0 ] || fail "alice's identifier is not free after the delete: exit $rc: $err"
run 0 "$ADMIN" delete --config "$T/admin.conf" --user alice
echo "admin-online: [5] after a restart alice is still gone; her identifier was free again"
# under load (the enclave answers admin requests only with nothing staged: it pauses reading
# the broker's link for them), status is answered and no client request fails
"$B/sealvault-bench" --url "$SV_URL" --cacert "$SV_CACERT" --context "$SV_CONTEXT" \
	--clients 10 --seconds 5 --load >"$T/bench.out" 2>&1 &
BENCH=$!
for i in 1 2 3; do
	sleep 1
	run 0 "$ADMIN" status --config "$T/admin.conf"
	grep -qx 'agree: yes' "$T/out" || fail "status under load: $(cat "$T/out")"
done
brc=0
wait "$BENCH" || brc=$?
BENCH=
[ "$brc" -eq 0 ] && grep -q 'no errors' "$T/bench.out" || fail "the load failed: $(tail -3 "$T/bench.out")"
echo "admin-online: [5] under a load of 10 clients: 3 status answered; $(grep '^load: [0-9]' "$T/bench.out")"

# --- 6. the same figures online and offline ---
run 0 "$ADMIN" status --config "$T/admin.conf"
cp "$T/out" "$T/online"
sv_server_stop
[ ! -e "$SOCK" ] || fail "sealvaultd left its admin socket behind"
run 0 "$ADMIN" status --config "$T/admin.conf"
cp "$T/out" "$T/offline"
names() { sed 's/:.*//' "$1"; }
diff <(names "$T/online") <(names "$T/offline") >"$T/names.diff" ||
	fail "online and offline status differ in their fields: $(cat "$T/names.diff")"
for k in state-dir vault-id server-public-key nv-index pcr-policy pcr-sealing counter-scheme \
	orderly-count unclean-boots-counter users destroyed nv-writes-budget budget-tpm-life-years; do
	on=$(grep "^$k: " "$T/online" || true)
	off=$(grep "^$k: " "$T/offline" || true)
	[ -n "$on" ] && [ "$on" = "$off" ] || fail "$k: online '$on', offline '$off'"
done
echo "admin-online: [6] online and offline status: same $(wc -l <"$T/online") fields, same static values"
# the vault is stopped but its state is locked (as by a running vault without an admin socket)
exec 9<>"$T/srv/state/lock"
flock -x 9
run 4 "$ADMIN" status --config "$T/admin.conf"
grep -q "is running, but nothing answers on its admin socket $SOCK" "$T/err" ||
	fail "locked state, no socket: $(cat "$T/err")"
flock -u 9
exec 9>&-
echo "admin-online: [6] state locked and no admin socket: said so (exit 4)"

# --- 7. admin frames on the broker's link: a protocol violation, nothing deleted ---
user=()
[ "$(id -u)" -eq 0 ] && user=(--user "$SV_ENCLAVE_USER")
hdr() { printf '%04x%04x%08x%08x' "$1" "$2" "$3" "$4"; } # version type length id
swtpm_stop "$T/srv/tpm"
swtpm_start "$T/srv/tpm"
out=$(python3 tests/integration/run-child.py "${user[@]}" --hold 5 --expect-exit 1 \
	--send "$(hdr 1 41 3 7)$(printf bob | od -An -tx1 | tr -d ' \n')" -- \
	"$B/sealvault-enclave" --state-dir "$T/srv/state" --tpm "$SWTPM_TCTI") ||
	fail "enclave given SV_MSG_ADMIN_DELETE on the broker link: $out"
grep -q 'frame type 41 is not a permitted request: protocol violation' <<<"$out" ||
	fail "ADMIN_DELETE on the broker link: $out"
swtpm_stop "$T/srv/tpm"
swtpm_start "$T/srv/tpm"
out=$(python3 tests/integration/run-child.py "${user[@]}" --hold 5 --expect-exit 1 \
	--send "$(hdr 1 40 0 8)" -- \
	"$B/sealvault-enclave" --state-dir "$T/srv/state" --tpm "$SWTPM_TCTI") ||
	fail "enclave given SV_MSG_ADMIN_STATUS on the broker link: $out"
grep -q 'frame type 40 is not a permitted request: protocol violation' <<<"$out" ||
	fail "ADMIN_STATUS on the broker link: $out"
run 0 "$ADMIN" status --state-dir "$T/srv/state" --tpm "$SWTPM_TCTI"
grep -qx "$(grep '^users: ' "$T/offline")" "$T/out" || fail "a forged admin frame changed the users"
echo "admin-online: [7] admin frames on the broker link end the enclave (protocol violation); nothing deleted"

echo "admin-online: all checks passed in $(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
