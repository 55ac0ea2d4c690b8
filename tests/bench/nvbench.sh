#!/bin/bash
# make bench-nv-wear / bench-slow-tpm (issue 12): what the counter schemes cost a discrete TPM.
# Vaults (sealvaultd, enclave, broker) on private swtpms, most of them behind tests/lib/tpm-proxy.py
# as a slow chip: 3 ms per command and 40 ms per flash write (--nv-delay-on flash: charged to the
# commands after which swtpm rewrote its state file, so an orderly increment that stays in the
# TPM's RAM costs what any command costs, as on a chip), driven by sealvault-bench.
#
# NV writes are counted AT THE TPM: the proxy's flash_writes, the commands after which swtpm had
# rewritten tpm2-00.permall (libtpms commits NV, i.e. a chip would write flash). Not the proxy's
# nv_writes (NV-writing command codes: every orderly increment would count, 256 times too many),
# and not the vault's own sealvault_nv_writes_total, which is printed beside it as a cross-check
# of the vault's bookkeeping (its budget spends by it). Guesses are the vault's
# sealvault_vault_login_starts_total over exactly the saturation phase (sealvault-bench --mark).
#
#   nvbench.sh wear SECONDS    hybrid and plain at 1, 16 and 128 clients:
#                              nv-writes/1000-guesses: N (clients C; plain: M)
#                              projected-tpm-life-years: Y (1e5 writes) / Z (5e5 writes)
#   nvbench.sh slow SECONDS    128 clients: hybrid through the slow proxy (N), plain through it
#                              (M), hybrid on swtpm directly (L), in that order after L; the
#                              half-load latency of N:
#                              slow-tpm recoveries/s: N (plain: M, no latency: L)
#                              slow-tpm latency at half load: p50 X ms, p99 Y ms
#
# The NV-write budget is set out of the way (nv-writes-per-day 1000000, burst 100000) so that
# the figures are what the scheme itself writes; the projection applies the default budget.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
mode=$1 seconds=$2
. tests/lib/swtpm.sh
. tests/lib/tpmproxy.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d "${TMPDIR:-/tmp}/sv-nvbench.XXXXXX")
chmod 755 "$T"
cleanup() {
	local rc=$?
	set +e
	sv_server_stop
	tpmproxy_cleanup
	swtpm_cleanup
	if [ $rc -ne 0 ]; then
		echo "nvbench: FAILED; logs:" >&2
		for f in "$T"/*/sealvaultd.log; do
			[ -f "$f" ] && { echo "--- $f (tail)" >&2; tail -n 10 "$f" >&2; }
		done
	fi
	rm -rf "$T"
}
trap cleanup EXIT

# Out of the way: we measure the scheme, not the budget (see the top).
BUDGET=(--nv-writes-per-day 1000000 --nv-writes-burst 100000)
SLOW=(--cmd-delay-ms 3 --nv-delay-ms 40 --nv-delay-on flash)

# vault_up NAME SCHEME slow|direct: a fresh vault in $T/NAME; sets V (its directory), CTL
# (the proxy's control directory, empty for direct).
vault_up() {
	local name=$1 scheme=$2 how=$3
	V=$T/$name CTL=
	local t0=$EPOCHREALTIME
	SV_INIT_ARGS=(--counter-scheme "$scheme")
	sv_server_init "$V" "$B" >/dev/null
	if [ "$how" = slow ]; then
		tpmproxy_start "$V/px" "${SLOW[@]}" --swtpm-state "$V/tpm"
		CTL=$TPMPROXY_CTL
		SWTPM_TCTI=$TPMPROXY_TCTI # sv_server_start hands the enclave SWTPM_TCTI
	fi
	SV_DAEMON_ARGS=(--rate-limit 0 --max-conns-per-ip 0 --login-rate-per-id 0 --max-pending-logins-per-ip 0 "${BUDGET[@]}")
	sv_server_start
	# the mark command: the proxy's counts and the vault's metrics at both ends of the phase
	cat >"$V/mark" <<-EOF
		#!/bin/sh
		[ -z "$CTL" ] || cp "$CTL/stats" "$V/stats.\$1"
		exec curl -fsS --unix-socket "$SV_METRICS_SOCK" http://localhost/metrics >"$V/metrics.\$1"
	EOF
	chmod +x "$V/mark"
	echo "nvbench: $name ($scheme, $how) up in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
}

vault_down() {
	sv_server_stop
	[ -z "$CTL" ] || tpmproxy_stop "$V/px"
	swtpm_stop "$V/tpm"
}

metric() { # metric FILE NAME
	awk -v n="$2" '$1 == n { print $2 }' "$1"
}
stat_of() { # stat_of FILE KEY
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# run CLIENTS [sealvault-bench options]: one saturation phase of SECONDS against the vault up;
# sets GUESSES, FLASH (flash writes), VNV (sealvault_nv_writes_total delta), NVCMD (NV-writing
# commands), WALL (seconds of the phase), RATE (recoveries/s) and keeps the output in OUT.
run() {
	local clients=$1 t0=$EPOCHREALTIME
	shift
	OUT=$("$B/sealvault-bench" --url "$SV_URL" --cacert "$SV_CACERT" --clients "$clients" \
		--seconds "$seconds" --enclave-pid "$(sv_enclave_pid)" \
		--broker-pid "$(sv_broker_pid)" --mark "$V/mark" "$@") || {
		echo "$OUT" >&2
		return 1
	}
	local s=$V/metrics.start e=$V/metrics.end
	TOOK=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
	GUESSES=$(($(metric "$e" sealvault_vault_login_starts_total) - $(metric "$s" sealvault_vault_login_starts_total)))
	VNV=$(($(metric "$e" sealvault_nv_writes_total) - $(metric "$s" sealvault_nv_writes_total)))
	NVCMD=$(($(metric "$e" sealvault_nv_increments_total) - $(metric "$s" sealvault_nv_increments_total)))
	FLASH=-
	[ -z "$CTL" ] || FLASH=$(($(stat_of "$V/stats.end" flash_writes) - $(stat_of "$V/stats.start" flash_writes)))
	WALL=$(echo "$OUT" | sed -n 's/^saturation: [0-9]* full recoveries in \([0-9.]*\) s.*/\1/p')
	RATE=$(echo "$OUT" | sed -n 's/^saturation: .* = \([0-9.]*\) recoveries\/s$/\1/p')
	[ "$GUESSES" -gt 0 ] && [ -n "$WALL" ] && [ -n "$RATE" ] || {
		echo "$OUT" >&2
		echo "nvbench: no guesses measured" >&2
		return 1
	}
}

flash_now() { sed -n 's/.*"flash_writes": \([0-9]*\).*/\1/p' "$CTL/stats"; }

# block CLIENTS: the hybrid counter writes NV once per 256 increments, i.e. a few times a minute
# here, so a fixed window would count 0 or 1 writes. Instead the window runs from one flash write
# of the saturated vault to the next (one block of 256 increments, exactly one NV write) and
# counts the guesses in between. Sets GUESSES, FLASH, VNV, NVCMD (the increments), WALL, RATE.
block() {
	local clients=$1 f0 f1 t1 t2 i t0=$EPOCHREALTIME
	rm -f "$V/stop" "$V/metrics.start"
	"$B/sealvault-bench" --url "$SV_URL" --cacert "$SV_CACERT" --clients "$clients" \
		--seconds 150 --enclave-pid "$(sv_enclave_pid)" --broker-pid "$(sv_broker_pid)" \
		--mark "$V/mark" --stop-file "$V/stop" --no-half >"$V/bench.out" 2>&1 &
	local bp=$!
	for i in $(seq 1 6000); do # registration: up to 60 s
		[ -s "$V/metrics.start" ] && break
		sleep 0.01
	done
	[ -s "$V/metrics.start" ] || { cat "$V/bench.out" >&2; return 1; }
	f0=$(flash_now)
	# polled every 50 ms (a tighter loop costs this 2-core machine guesses); the few guesses
	# answered between a write and its sighting are counted at both ends
	for i in $(seq 1 2600); do # to the first roll-over, then to the next: 130 s in all
		f1=$(flash_now)
		if [ -z "${t1:-}" ] && [ "$f1" -gt "$f0" ]; then
			t1=$EPOCHREALTIME f0=$f1
			sv_metrics >"$V/metrics.a"
			cp "$CTL/stats" "$V/stats.a"
		elif [ -n "${t1:-}" ] && [ "$f1" -gt "$f0" ]; then
			t2=$EPOCHREALTIME
			sv_metrics >"$V/metrics.b"
			cp "$CTL/stats" "$V/stats.b"
			break
		fi
		sleep 0.05
	done
	touch "$V/stop"
	wait "$bp" || { cat "$V/bench.out" >&2; return 1; }
	[ -n "${t2:-}" ] || { echo "nvbench: no two NV writes within 130 s at $clients clients" >&2; return 1; }
	local a=$V/metrics.a b=$V/metrics.b
	GUESSES=$(($(metric "$b" sealvault_vault_login_starts_total) - $(metric "$a" sealvault_vault_login_starts_total)))
	VNV=$(($(metric "$b" sealvault_nv_writes_total) - $(metric "$a" sealvault_nv_writes_total)))
	FLASH=$(($(stat_of "$V/stats.b" flash_writes) - $(stat_of "$V/stats.a" flash_writes)))
	NVCMD=$(($(metric "$b" sealvault_nv_increments_total) - $(metric "$a" sealvault_nv_increments_total)))
	WALL=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }')
	RATE=$(awk -v g="$GUESSES" -v w="$WALL" 'BEGIN { printf "%.1f", g / w }')
	TOOK=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
}

per1000() { awk -v w="$1" -v g="$2" 'BEGIN { v = w * 1000 / g; printf(v < 10 ? "%.2f" : "%.1f", v) }'; }

echo "nvbench: $(nproc) CPUs, $(date -u +%Y-%m-%d); slow chip = tpm-proxy ${SLOW[*]}"
case $mode in
wear)
	declare -A H P HW HS
	for scheme in hybrid plain; do
		vault_up "$scheme" "$scheme" slow
		for c in 1 16 128; do
			if [ "$scheme" = hybrid ]; then
				block "$c"
			else
				run "$c" --no-half
			fi
			printf 'nvbench: %-6s %3d clients: %6d guesses in %4.1f s (%6.1f/s): %4d flash writes at the TPM, %4d by the vault'"'"'s count, %5d increments (%d s in all)\n' \
				"$scheme" "$c" "$GUESSES" "$WALL" "$RATE" "$FLASH" "$VNV" "$NVCMD" "$TOOK"
			[ "$FLASH" = "$VNV" ] ||
				echo "nvbench: NOTE: the TPM wrote $FLASH times, the vault counted $VNV"
			if [ "$scheme" = hybrid ]; then
				H[$c]=$(per1000 "$FLASH" "$GUESSES")
				HW[$c]=$FLASH HS[$c]=$WALL
			else
				P[$c]=$(per1000 "$FLASH" "$GUESSES")
			fi
		done
		vault_down
	done
	for c in 1 16 128; do
		echo "nv-writes/1000-guesses: ${H[$c]} (clients $c; plain: ${P[$c]})"
	done
	# Projected life: the hybrid vault saturated by 128 clients writes HW[128] times in
	# HS[128] seconds through the slow chip; the default budget (100 per day, burst 25, the
	# burst counted as if it were spent again every day: conservative) caps that, so a vault
	# writes at most min(measured, 125) times a day, and endures E / that / 365.25 years.
	# (A restart spends one NV_ChangeAuth more and refills the burst: see
	# docs/operations.md "NV wear".)
	awk -v w="${HW[128]}" -v s="${HS[128]}" 'BEGIN {
		day = w / s * 86400; cap = 100 + 25; eff = day < cap ? day : cap
		printf "nvbench: hybrid at saturation (128 clients): %.0f NV writes/day measured, %.0f/day under the default budget\n", day, eff
		printf "projected-tpm-life-years: %.1f (1e5 writes) / %.1f (5e5 writes)\n", 1e5 / eff / 365.25, 5e5 / eff / 365.25 }'
	;;
slow)
	vault_up direct hybrid direct
	run 128 --no-half
	L=$RATE
	echo "nvbench: hybrid on swtpm directly, 128 clients: $GUESSES guesses, $RATE recoveries/s"
	vault_down
	vault_up hslow hybrid slow
	run 128
	N=$RATE
	half=$(echo "$OUT" | sed -n 's/^half load .* p50 \([0-9.]*\) ms, p99 \([0-9.]*\) ms$/p50 \1 ms, p99 \2 ms/p')
	offered=$(echo "$OUT" | sed -n 's/^half load (\([0-9.]*\) recoveries\/s offered).*/\1/p')
	echo "nvbench: hybrid through the slow chip, 128 clients: $GUESSES guesses, $RATE recoveries/s, $FLASH flash writes"
	vault_down
	vault_up pslow plain slow
	run 128 --no-half
	M=$RATE
	echo "nvbench: plain through the slow chip, 128 clients: $GUESSES guesses, $RATE recoveries/s, $FLASH flash writes"
	vault_down
	echo "slow-tpm recoveries/s: $N (plain: $M, no latency: $L)"
	awk -v n="$N" -v l="$L" -v m="$M" 'BEGIN {
		printf "slow-tpm ratio: hybrid/no-latency %.2f (target >= 0.80: %s), hybrid/plain %.2f\n", n / l, (n >= 0.8 * l ? "met" : "MISSED"), n / m }'
	echo "slow-tpm latency at half load: $half (hybrid through the slow chip, $offered recoveries/s offered)"
	;;
*)
	echo "usage: nvbench.sh wear|slow SECONDS" >&2
	exit 2
	;;
esac
