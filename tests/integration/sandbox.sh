#!/bin/bash
# Sandbox test with real processes and a real swtpm:
#  - a running pair: both processes (and every enclave thread) show Seccomp: 2 and NoNewPrivs: 1
#    and are not dumpable; as root they run under two different unprivileged users;
#  - the enclave, made (SV_TEST_SANDBOX) to try socket, execve or openat after start-up, dies of
#    SIGSYS; without the hook the same command serves until its link closes (the control);
#  - the broker dies of SIGSYS when it tries to open the state directory or make a socket (the
#    way to reach the TPM in this set-up), and sealvaultd then stops the enclave and exits 1;
#  - fail closed: no link on fd 3, or a state directory that is not there, refuses to start.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh

D=$(mktemp -d "${TMPDIR:-/tmp}/sv-sandbox.XXXXXX")
chmod 755 "$D"
cleanup() {
	local rc=$?
	sv_server_stop
	swtpm_cleanup
	[ $rc -eq 0 ] || { echo "sandbox: FAILED; sealvaultd log:" >&2; tail -n 20 "$D/sealvaultd.log" >&2 || true; }
	rm -rf "$D"
}
trap cleanup EXIT
fail() {
	echo "sandbox: FAIL: $*" >&2
	exit 1
}
field() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

sv_server_init "$D" "$B" >/dev/null
sv_server_start
E=$(sv_enclave_pid) || fail "no enclave process"
K=$(sv_broker_pid) || fail "no broker process"
for p in "$E" "$K"; do
	name=$(cat "/proc/$p/comm")
	[ "$(field "$p" Seccomp)" = 2 ] || fail "$name: Seccomp is $(field "$p" Seccomp), not 2"
	[ "$(field "$p" NoNewPrivs)" = 1 ] || fail "$name: NoNewPrivs is not 1"
	# not dumpable: /proc/PID/environ of a non-dumpable process belongs to root
	[ "$(stat -c %u "/proc/$p/environ")" = 0 ] || fail "$name is dumpable"
	echo "sandbox: $name (pid $p, uid $(field "$p" Uid)): Seccomp 2, NoNewPrivs 1, not dumpable"
done
# every thread, not only the main one: the enclave's TPM thread and its snapshot thread are
# started before the filter (which is synchronised to all threads)
n=0
for t in /proc/"$E"/task/*; do
	t=${t##*/}
	[ "$(field "$E/task/$t" Seccomp)" = 2 ] || fail "enclave thread $t: Seccomp is not 2"
	[ "$(field "$E/task/$t" NoNewPrivs)" = 1 ] || fail "enclave thread $t: NoNewPrivs is not 1"
	n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "the enclave has $n thread(s); its TPM or snapshot thread is missing"
echo "sandbox: all $n enclave threads: Seccomp 2, NoNewPrivs 1"
if [ "$(id -u)" -eq 0 ]; then
	ue=$(field "$E" Uid)
	ub=$(field "$K" Uid)
	[ "$ue" != 0 ] && [ "$ub" != 0 ] && [ "$ue" != "$ub" ] ||
		fail "enclave uid $ue and broker uid $ub must be two different non-root users"
fi
sv_server_stop

# The enclave alone, as sealvaultd starts it, against the same state and TPM. swtpm has no
# resource manager: a killed enclave leaves its transient objects loaded, so every run gets a
# freshly started swtpm (same TPM state, new process).
user=()
[ "$(id -u)" -eq 0 ] && user=(--user "$SV_ENCLAVE_USER")
fresh_tpm() {
	swtpm_stop "$D/tpm"
	swtpm_start "$D/tpm" || fail "cannot restart swtpm"
	enclave=("$B/sealvault-enclave" --state-dir "$D/state" --tpm "$SWTPM_TCTI" --context sealvault-v1)
}
fresh_tpm
out=$(python3 tests/integration/run-child.py "${user[@]}" --hold 1 --expect-exit 1 -- \
	"${enclave[@]}") || fail "control run of the enclave: $out"
echo "$out" | grep -q 'serving' || fail "the enclave did not reach its serve loop: $out"
echo "sandbox: enclave without the hook serves, then exits 1 when its link closes"
for call in socket execve openat "openat:$D/state"; do
	fresh_tpm
	out=$(SV_TEST_SANDBOX=$call python3 tests/integration/run-child.py "${user[@]}" \
		--expect-signal 31 -- "${enclave[@]}") ||
		fail "enclave trying $call: expected SIGSYS (31), got: $out"
	echo "sandbox: enclave trying $call after start-up: $(echo "$out" | head -n1) (SIGSYS)"
done

# The enclave's dispatch table: permitted requests are answered; a type it does not serve, a frame
# whose length disagrees with its header, or another version ends the enclave (exit 1, reason).
hdr() { printf '%04x%04x%08x%08x' "$1" "$2" "$3" "$4"; } # version type length id
fresh_tpm
out=$(python3 tests/integration/run-child.py "${user[@]}" --hold 3 --expect-exit 1 \
	--send "$(hdr 1 33 0 1)" --send "$(hdr 1 32 0 2)" --send "$(hdr 1 3 1 3)00" \
	--expect-reply -- "${enclave[@]}") || fail "health/stats/bad body not all answered: $out"
echo "$out" | grep -q 'broker closed the link' || fail "enclave did not serve until the link closed: $out"
for bad in "$(hdr 1 64 0 7)" "$(hdr 1 99 0 7)" "$(hdr 1 33 5 7)00" "$(hdr 2 33 0 7)" "00"; do
	fresh_tpm
	out=$(python3 tests/integration/run-child.py "${user[@]}" --hold 5 --expect-exit 1 \
		--send "$bad" -- "${enclave[@]}") || fail "enclave given frame $bad: $out"
	echo "$out" | grep -q -E 'protocol violation' || fail "frame $bad: no protocol violation: $out"
done
echo "sandbox: enclave answers permitted requests, exits on reply/unknown types, bad lengths, versions"

# The broker alone: it cannot open the state directory or make a socket (to reach the TPM).
buser=()
[ "$(id -u)" -eq 0 ] && buser=(--user "$SV_BROKER_USER")
broker=("$B/sealvault-broker" --listen 127.0.0.1:0 --tls-cert "$D/cert.pem" --tls-key "$D/key.pem")
out=$(python3 tests/integration/run-child.py "${buser[@]}" --hold 1 --expect-exit 1 -- \
	"${broker[@]}") || fail "control run of the broker: $out"
echo "sandbox: broker without the hook serves, then exits 1 when its link closes"
for call in "openat:$D/state" "openat:$D/state/." socket execve; do
	out=$(SV_TEST_SANDBOX=broker:$call python3 tests/integration/run-child.py "${buser[@]}" \
		--expect-signal 31 -- "${broker[@]}") ||
		fail "broker trying $call: expected SIGSYS (31), got: $out"
	echo "sandbox: broker trying $call: $(echo "$out" | head -n1) (SIGSYS)"
done

# Through sealvaultd: the broker dies, sealvaultd stops the enclave and exits 1.
fresh_tpm
rc=0
SV_TEST_SANDBOX="broker:openat:$D/state" timeout 30 "$B/sealvaultd" --state-dir "$D/state" \
	--tpm "$SWTPM_TCTI" --listen 127.0.0.1:0 --tls-cert "$D/cert.pem" --tls-key "$D/key.pem" \
	--libexec-dir "$B" --metrics-listen none ${user:+--user "$SV_ENCLAVE_USER"} \
	${buser:+--broker-user "$SV_BROKER_USER"} >"$D/daemon.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "sealvaultd exited $rc, expected 1: $(cat "$D/daemon.log")"
grep -q 'sealvault-broker (pid [0-9]*) was killed by signal 31' "$D/daemon.log" ||
	fail "sealvaultd did not report the broker's SIGSYS: $(cat "$D/daemon.log")"
! pgrep -f "$B/sealvault-enclave --state-dir=$D/state" >/dev/null ||
	fail "the enclave outlived sealvaultd"
echo "sandbox: sealvaultd reports the broker's SIGSYS, stops the enclave, exits 1"

# Fail closed.
rc=0
out=$("${enclave[@]}" 2>&1 3</dev/null) || rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q 'not a connected AF_UNIX SOCK_SEQPACKET' ||
	fail "enclave without a link: exit $rc: $out"
fresh_tpm
out=$(python3 tests/integration/run-child.py "${user[@]}" --expect-exit 1 -- \
	"$B/sealvault-enclave" --state-dir "$D/nonexistent" --tpm "$SWTPM_TCTI") ||
	fail "enclave with a missing state directory: $out"
echo "$out" | grep -q 'refusing to serve' || fail "no reason given: $out"
echo "sandbox: enclave refuses to start without a link or without its state: ok"
echo "sandbox: all passed"
