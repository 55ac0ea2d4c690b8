# Shared helper for integration tests: private swtpm instances on free loopback ports.
# Source it from bash (`. tests/lib/swtpm.sh`); it needs swtpm, swtpm_setup and ss.
#
#   swtpm_start DIR      Start a swtpm whose state lives in DIR (created, and provisioned with
#                        swtpm_setup once, on first use). Sets SWTPM_PORT (server port, raw TPM
#                        protocol), SWTPM_CTRL (control port) and SWTPM_TCTI
#                        ("swtpm:host=127.0.0.1,port=$SWTPM_PORT", what sealvault --tpm takes).
#                        The same DIR can be started again after a stop or kill (same TPM).
#   swtpm_stop DIR       Stop it cleanly through the control channel (waits for exit).
#   swtpm_kill DIR       kill -9 it (a power cut for the TPM: no shutdown, no flush).
#   swtpm_pid DIR        Print its pid (empty when not running).
#   swtpm_cleanup        Kill every swtpm started by this shell. Installed with `trap ... EXIT`
#                        by swtpm_trap_exit; call it yourself if you install your own trap.
#   swtpm_trap_exit [CMD] Install `trap 'swtpm_cleanup; CMD' EXIT` (CMD: your own cleanup; it runs
#                        after the swtpms are gone, so it may delete their directories).
#
# TPMs with endorsement certificates (attestation tests, `make demo`):
#   swtpm_ca_init CADIR  Write a PRIVATE swtpm-localca configuration into CADIR (the CA's keys,
#                        certificates and serial live there; /etc and /var/lib/swtpm-localca are
#                        never read or written). The root and intermediate CA are created by
#                        swtpm_localca when the first certificate is issued. Idempotent.
#   swtpm_provision_ek DIR CADIR
#                        Provision DIR (before its first swtpm_start) with swtpm_setup
#                        --create-ek-cert --create-platform-cert: RSA-2048 EK (TCG template L-1,
#                        persistent 0x81010001) and its certificate in NV 0x01c00002, an ECC EK,
#                        a platform certificate, SHA-256 PCR bank only; all certificates issued by
#                        the CA in CADIR (swtpm_ca_init is done if needed). Every DIR gets its own
#                        endorsement seed, so two provisioned DIRs have different EKs. Writes
#                        CADIR/bundle.pem (root + intermediate PEMs, the TPM CA bundle a verifier
#                        takes) and sets SWTPM_CA_BUNDLE to it. About 0.7 s per TPM (+0.7 s for
#                        the first one of a CA, which creates the CA) on the 2-core build box.
#
# Each instance logs to DIR/log. Ports: random even port in 20000-39998, ctrl = port + 1,
# checked free with ss and retried if swtpm fails to bind.

SWTPM_DIRS=()

swtpm_pid() {
	local pid
	[ -f "$1/pid" ] || return 0
	pid=$(cat "$1/pid" 2>/dev/null) || return 0
	[ -n "$pid" ] && _swtpm_alive "$pid" && echo "$pid"
	return 0
}

_swtpm_port_free() {
	! ss -Hltn "sport = :$1" 2>/dev/null | grep -q . &&
		! ss -Hltn "sport = :$(($1 + 1))" 2>/dev/null | grep -q .
}

swtpm_start() {
	local dir=$1 try port i
	mkdir -p "$dir"
	if [ ! -f "$dir/.provisioned" ]; then
		swtpm_setup --tpm2 --tpmstate "$dir" --overwrite >"$dir/setup.log" 2>&1 || {
			echo "swtpm.sh: swtpm_setup failed, see $dir/setup.log" >&2
			return 1
		}
		touch "$dir/.provisioned"
	fi
	for try in 1 2 3 4 5 6 7 8 9 10; do
		port=$(((RANDOM % 10000) * 2 + 20000))
		_swtpm_port_free "$port" || continue
		rm -f "$dir/pid"
		swtpm socket --tpm2 --tpmstate dir="$dir" --flags not-need-init,startup-clear \
			--server type=tcp,port=$port,bindaddr=127.0.0.1 \
			--ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
			--pid file="$dir/pid" --log file="$dir/log" -d 2>>"$dir/log" || continue
		for i in $(seq 1 100); do
			[ -s "$dir/pid" ] && ss -Hltn "sport = :$port" | grep -q . && break
			sleep 0.02
		done
		if [ -n "$(swtpm_pid "$dir")" ]; then
			SWTPM_PORT=$port
			SWTPM_CTRL=$((port + 1))
			SWTPM_TCTI="swtpm:host=127.0.0.1,port=$port"
			SWTPM_DIRS+=("$dir")
			return 0
		fi
	done
	echo "swtpm.sh: could not start swtpm in $dir, see $dir/log" >&2
	return 1
}

swtpm_ca_init() {
	local ca=$1
	mkdir -p "$ca"
	ca=$(cd "$ca" && pwd)
	[ -f "$ca/swtpm_setup.conf" ] && return 0
	cat >"$ca/swtpm-localca.conf" <<-EOF
		statedir = $ca
		signingkey = $ca/signkey.pem
		issuercert = $ca/issuercert.pem
		certserial = $ca/certserial
	EOF
	cat >"$ca/swtpm-localca.options" <<-EOF
		--platform-manufacturer sealvault-test
		--platform-version 2.1
		--platform-model swtpm
	EOF
	cat >"$ca/swtpm_setup.conf.tmp" <<-EOF
		create_certs_tool = /usr/bin/swtpm_localca
		create_certs_tool_config = $ca/swtpm-localca.conf
		create_certs_tool_options = $ca/swtpm-localca.options
		active_pcr_banks = sha256
	EOF
	mv "$ca/swtpm_setup.conf.tmp" "$ca/swtpm_setup.conf"
}

swtpm_provision_ek() {
	local dir=$1 ca=$2
	swtpm_ca_init "$ca" || return 1
	ca=$(cd "$ca" && pwd)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	swtpm_setup --tpm2 --tpmstate "$dir" --create-ek-cert --create-platform-cert \
		--config "$ca/swtpm_setup.conf" --overwrite >"$dir/setup.log" 2>&1 || {
		echo "swtpm.sh: swtpm_setup with the CA in $ca failed, see $dir/setup.log" >&2
		return 1
	}
	grep -q 'created NVRAM area 0x1c00002' "$dir/setup.log" || {
		echo "swtpm.sh: swtpm_setup wrote no RSA EK certificate (NV 0x01c00002), see $dir/setup.log" >&2
		return 1
	}
	cat "$ca/swtpm-localca-rootca-cert.pem" "$ca/issuercert.pem" >"$ca/bundle.pem.tmp" &&
		mv "$ca/bundle.pem.tmp" "$ca/bundle.pem" || return 1
	SWTPM_CA_BUNDLE=$ca/bundle.pem
	touch "$dir/.provisioned"
}

_swtpm_alive() { # a zombie (exited, not yet reaped by a container's init) counts as gone
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

_swtpm_wait_gone() {
	local pid=$1 i
	for i in $(seq 1 500); do
		_swtpm_alive "$pid" || return 0
		sleep 0.01
	done
	return 1
}

swtpm_stop() {
	local pid
	pid=$(swtpm_pid "$1")
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	_swtpm_wait_gone "$pid" || { kill -9 "$pid" 2>/dev/null; _swtpm_wait_gone "$pid"; }
}

swtpm_kill() {
	local pid
	pid=$(swtpm_pid "$1")
	[ -n "$pid" ] || return 0
	kill -9 "$pid" 2>/dev/null
	_swtpm_wait_gone "$pid"
}

swtpm_cleanup() {
	local d
	for d in "${SWTPM_DIRS[@]}"; do
		swtpm_kill "$d"
	done
	return 0
}

swtpm_trap_exit() {
	# swtpm_cleanup first: it finds each swtpm through DIR/pid, which CMD may delete
	# shellcheck disable=SC2064
	trap "swtpm_cleanup; ${1:-:}" EXIT
}
