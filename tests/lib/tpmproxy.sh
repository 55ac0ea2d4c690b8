# shellcheck shell=bash
# Shared helper for integration tests: tests/lib/tpm-proxy.py in front of a swtpm, so that two
# vaults share one TPM, the TPM behaves like a slow discrete chip with transient errors, and a
# test can stop a vault at a chosen TPM command. Source it after tests/lib/swtpm.sh; it needs
# python3. All functions work under `set -euo pipefail`.
#
#   tpmproxy_start DIR [OPTION...]
#                        Start a proxy for the swtpm of the last swtpm_start (SWTPM_PORT), with
#                        its control directory DIR/ctl and log DIR/log (DIR is created). OPTIONs go
#                        to tpm-proxy.py: --cmd-delay-ms N, --nv-delay-ms N, --transient-rate X,
#                        --seed S, --nv-write-recovery-ms N, --swtpm-state DIR (swtpm's state
#                        directory: count flash writes), --nv-delay-on flash (charge
#                        --nv-delay-ms only for commands that wrote flash, as a chip does; the
#                        NV-write figures need it). Sets TPMPROXY_TCTI
#                        ("swtpm:host=127.0.0.1,port=P", what sealvault --tpm takes), TPMPROXY_PID and TPMPROXY_CTL (DIR/ctl). Several
#                        proxies may run at once (for different swtpms, or one each in turn).
#   tpmproxy_stop DIR    Stop the proxy started with DIR (SIGTERM; waits for it to exit).
#   tpmproxy_cleanup     Kill every proxy started by this shell. Call it from the test's EXIT
#                        trap, before swtpm_cleanup.
#   tpmproxy_hold CTL CODE [CLIENT]
#                        Hold the next command CODE (hex, e.g. 0x134 for NV_Increment), of client
#                        CLIENT only if given (clients are numbered from 1 in connection order,
#                        see CTL/clients). The command is not sent to the TPM; that client waits,
#                        the others go on.
#   tpmproxy_wait_held CTL [TIMEOUT_S]
#                        Wait (default 20 s) until a command is held; prints "CLIENT CODE".
#                        Returns 1 on timeout.
#   tpmproxy_release CTL Let the held command through; returns once the proxy has taken it.
#   tpmproxy_drop CTL    Close the held command's connection instead (the command never reaches
#                        the TPM: a dropped bus or a power cut); returns once the proxy has done it.
#   tpmproxy_settle CTL  After killing the client whose command is held: wait until the proxy
#                        has dropped it (it notices the closed connection), so that no drop file is
#                        left to catch the next hold; drops it explicitly after 10 s.
#   tpmproxy_drop_next CTL CODE [CLIENT]
#                        Close the connection of the next command CODE (of CLIENT) unsent.
#   tpmproxy_stall CTL   The TPM stops answering: every command waits in the proxy, unsent.
#   tpmproxy_unstall CTL The TPM answers again (the waiting commands are forwarded).
#   tpmproxy_throttle CTL SECONDS
#                        For SECONDS from now, NV-writing commands are answered TPM_RC_NV_RATE.
#   tpmproxy_nv_writes CTL
#                        Print how many NV-writing commands the TPM has executed through the proxy.
#   tpmproxy_flash_writes CTL
#                        Print how many commands made swtpm rewrite its state file (NV commits:
#                        what a chip writes to flash; an orderly increment that does not roll
#                        over is not one). Needs --swtpm-state.
#   tpmproxy_stat CTL KEY
#                        Print one number from CTL/stats (commands, nv_writes, flash_writes,
#                        injected, refused_flushes, capability_answers, dropped, held,
#                        memory_waits, stalled, throttled).
#
# CTL/stats is JSON rewritten after every command: the totals above, by_code ("0x134": successful
# commands) and clients ("1": {"nv_writes", "commands"}). The proxy appends "N connected" and
# "N gone" to CTL/clients. tpm-proxy.py --help and its header comment describe the rest.

TPMPROXY_DIRS=()
_TPMPROXY_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tpm-proxy.py

# shellcheck disable=SC2034 # TPMPROXY_* are for the caller
tpmproxy_start() {
	local dir=$1 pid port
	shift
	[ -n "${SWTPM_PORT:-}" ] || {
		echo "tpmproxy.sh: SWTPM_PORT is not set (call swtpm_start first)" >&2
		return 1
	}
	mkdir -p "$dir/ctl"
	dir=$(cd "$dir" && pwd)
	rm -f "$dir/port"
	# The proxy's own lines and anything python prints go to the same log (both append).
	# shellcheck disable=SC2094
	python3 "$_TPMPROXY_PY" --upstream-port "$SWTPM_PORT" --port-file "$dir/port" \
		--ctl "$dir/ctl" --log "$dir/log" "$@" >>"$dir/log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/pid"
	TPMPROXY_DIRS+=("$dir")
	for _ in $(seq 1 500); do
		[ -s "$dir/port" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	port=$(cat "$dir/port" 2>/dev/null || true)
	if [ -z "$port" ]; then
		echo "tpmproxy.sh: the proxy in $dir did not start, see $dir/log" >&2
		return 1
	fi
	TPMPROXY_TCTI="swtpm:host=127.0.0.1,port=$port"
	TPMPROXY_PID=$pid
	TPMPROXY_CTL=$dir/ctl
}

_tpmproxy_wait_gone() {
	for _ in $(seq 1 300); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.01
	done
	return 1
}

tpmproxy_stop() {
	local pid
	pid=$(cat "$1/pid" 2>/dev/null || true)
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	_tpmproxy_wait_gone "$pid" || { kill -9 "$pid" 2>/dev/null || true; }
	wait "$pid" 2>/dev/null || true
	rm -f "$1/pid"
}

tpmproxy_cleanup() {
	local d pid
	for d in "${TPMPROXY_DIRS[@]}"; do
		pid=$(cat "$d/pid" 2>/dev/null || true)
		if [ -n "$pid" ]; then
			kill -9 "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true # reaped quietly: no "Killed" job message
		fi
		rm -f "$d/pid"
	done
	return 0
}

# Writes CTL/NAME atomically (the proxy never reads half a file).
_tpmproxy_put() {
	printf '%s\n' "$3" >"$1/.$2.tmp"
	mv -f "$1/.$2.tmp" "$1/$2"
}

tpmproxy_hold() {
	_tpmproxy_put "$1" hold "$2${3:+ $3}"
}

tpmproxy_drop_next() {
	_tpmproxy_put "$1" drop-next "$2${3:+ $3}"
}

tpmproxy_wait_held() {
	local ctl=$1 timeout=${2:-20}
	for _ in $(seq 1 $((timeout * 100))); do
		if [ -s "$ctl/held" ]; then
			cat "$ctl/held"
			return 0
		fi
		sleep 0.01
	done
	return 1
}

# Writes CTL/$2 and waits until the proxy has removed CTL/held (it took the verdict).
_tpmproxy_verdict() {
	[ -e "$1/held" ] || {
		echo "tpmproxy.sh: nothing is held in $1" >&2
		return 1
	}
	_tpmproxy_put "$1" "$2" ""
	for _ in $(seq 1 1000); do
		[ -e "$1/held" ] || return 0
		sleep 0.01
	done
	echo "tpmproxy.sh: the proxy did not take $1/$2" >&2
	return 1
}

tpmproxy_release() {
	_tpmproxy_verdict "$1" release
}

tpmproxy_drop() {
	_tpmproxy_verdict "$1" drop
}

# After the held command's client was killed: the proxy notices the closed connection and drops
# the command itself (removing CTL/held); wait for that rather than racing it with a drop file,
# which would stay behind and drop the next held command. Drops it explicitly only if the proxy
# has not after 10 s (the client is still connected).
tpmproxy_settle() {
	for _ in $(seq 1 1000); do
		[ -e "$1/held" ] || return 0
		sleep 0.01
	done
	_tpmproxy_verdict "$1" drop
}

tpmproxy_stall() {
	_tpmproxy_put "$1" stall ""
}

tpmproxy_unstall() {
	rm -f "$1/stall"
}

tpmproxy_throttle() {
	_tpmproxy_put "$1" throttle "$(python3 -c 'import sys, time; print(time.time() + float(sys.argv[1]))' "$2")"
}

tpmproxy_stat() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
		"$1/stats" "$2"
}

tpmproxy_nv_writes() {
	tpmproxy_stat "$1" nv_writes
}

tpmproxy_flash_writes() {
	tpmproxy_stat "$1" flash_writes
}
