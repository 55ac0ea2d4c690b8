#!/bin/bash
# make bench: a private vault (sealvaultd, enclave, broker) on a private swtpm, driven over HTTPS
# by sealvault-bench. Durability stays on: every charged guess is journalled, fsynced and
# anchored in the TPM NV counter (group commit) before its answer leaves.
#   bench.sh bench CLIENTS SECONDS   saturation + half-load figures and cpu-per-guess/crypto
#   bench.sh load  CLIENTS SECONDS   CLIENTS concurrent users registering and recovering
# Both with auth = tokens (SV_BENCH_AUTH=open: without).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
mode=$1 clients=$2 seconds=$3
. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh

D=$(mktemp -d "${TMPDIR:-/tmp}/sv-bench.XXXXXX")
chmod 755 "$D"
PID=
cleanup() {
	local rc=$?
	if [ -n "$PID" ]; then
		kill -TERM "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	swtpm_cleanup
	[ $rc -eq 0 ] || { echo "bench: FAILED; sealvaultd log:" >&2; tail -n 20 "$D/sealvaultd.log" >&2 || true; }
	rm -rf "$D"
}
trap cleanup EXIT

sv_server_init "$D" "$B" >/dev/null
# auth = tokens (a tenant made here; sealvault-bench mints a token for every request, as the
# users' provider would), so that cpu-per-guess/crypto includes checking them and the load test
# registers and recovers as real clients do; SV_BENCH_AUTH=open for the figures without.
auth=open
if [ "${SV_BENCH_AUTH:-tokens}" = tokens ]; then
	sv_tokens_init >/dev/null
	auth=tokens
	[ "$(id -u)" -ne 0 ] || chmod -R a+rX "$SV_TENANTS"
fi
users=()
[ "$(id -u)" -eq 0 ] && users=(--user "$SV_ENCLAVE_USER" --broker-user "$SV_BROKER_USER")
# The load generator runs on this host: no rate limit, no per-address connection cap. The vault
# is hybrid (init's default); its NV-write budget is set out of the way: with the default one
# (100 a day, burst 25) the registrations, each a forced flush, are refused (503) after 25
# flushes and the load test loads nothing (check-nv-budget tests the budget).
"$B/sealvaultd" --state-dir "$D/state" --tpm "$SWTPM_TCTI" --listen 127.0.0.1:0 \
	--port-file "$D/port" --tls-cert "$D/cert.pem" --tls-key "$D/key.pem" --libexec-dir "$B" \
	--rate-limit 0 --max-conns-per-ip 0 --login-rate-per-id 0 --max-pending-logins-per-ip 0 --nv-writes-per-day 1000000 --nv-writes-burst 100000 \
	--auth "$auth" ${SV_TENANTS:+--tenants-dir "$SV_TENANTS"} \
	--metrics-listen "unix:$D/metrics.sock" "${users[@]}" >>"$D/sealvaultd.log" 2>&1 &
PID=$!
for i in $(seq 1 500); do
	kill -0 "$PID" 2>/dev/null || { echo "bench: sealvaultd exited" >&2; exit 1; }
	PORT=$(cat "$D/port" 2>/dev/null || true)
	[ -n "$PORT" ] && curl -fsS --max-time 2 --cacert "$D/cert.pem" \
		"https://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
	sleep 0.02
done
E= K=
for c in $(pgrep -P "$PID"); do
	case "$(cat "/proc/$c/comm")" in
	sealvault-encla) E=$c ;;
	sealvault-broke) K=$c ;;
	esac
done
[ -n "$E" ] && [ -n "$K" ] || { echo "bench: enclave or broker not running" >&2; exit 1; }
echo "bench: vault on swtpm, $(grep -o 'hybrid NV counter\|plain NV counter' "$D/sealvaultd.log" | head -n 1), durability on; $(nproc) CPUs"
args=(--url "https://127.0.0.1:$PORT" --cacert "$D/cert.pem" --clients "$clients"
	--seconds "$seconds" --enclave-pid "$E" --broker-pid "$K")
[ "$mode" = load ] && args+=(--load)
if [ "$auth" = tokens ]; then
	SV_URL=https://127.0.0.1:$PORT SV_CACERT=$D/cert.pem
	args+=(--tenant "$SV_TENANT" --tenant-key "$SV_TENANT_KEY" --aud "$(sv_vault_id)")
	echo "bench: auth = tokens: every request carries a token minted for its user"
fi
"$B/sealvault-bench" "${args[@]}"
curl -fsS --unix-socket "$D/metrics.sock" http://localhost/metrics |
	grep -E "^sealvault_(commits_total|flushes_total|nv_writes_total|commit_duration_seconds_(sum|count|bucket)|vault_login_starts_total|tokens_accepted_total|tokens_memo_hits_total)[ {]" |
	sed 's/^/bench: metrics: /'
