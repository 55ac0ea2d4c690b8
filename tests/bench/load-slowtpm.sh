#!/bin/bash
# check-load-slowtpm (issue 12 acceptance): the 200-client load test of check-load (every client
# registers a fresh user with a random secret, recovers it and compares it byte for byte, in a
# loop, with access tokens: auth = tokens and a token minted per request) on a hybrid vault
# behind tests/lib/tpm-proxy.py as a slow, faulty discrete chip:
# 3 ms per command, 40 ms per flash write (--nv-delay-on flash: an orderly increment that stays
# in the TPM's RAM is not one), 10 % of the NV-writing commands answered with a transient code
# (NV_RATE / RETRY / YIELDED / NV_UNAVAILABLE), and once, DROP_AT seconds in, the TPM connection
# dropped under an NV_Increment (a bus reset: the enclave cannot know whether it ran).
#
# sealvaultd runs as systemd runs it (tests/lib/supervise.py: the listener held open across
# restarts like sealvault.socket, Restart=on-failure, RestartSec 1 s here instead of 5).
# The dropped connection ends the enclave with status 75 and sealvaultd restarts it alone: the
# broker keeps every client's connection and answers 503 for the requests in flight and until the
# new enclave serves (daemon/supervise.c). Passes when: no client saw an error other than the
# documented 503 busy answers, every secret was recovered byte-identical, the enclave was
# restarted by sealvaultd (not the pair by systemd), the vault serves at the end (GET /healthz),
# and after stopping it `sealvault-admin status` agrees. The NV-write budget is set out of the way (check-nv-budget
# tests it): with the default one (burst 25) registrations, each a forced flush, would be refused
# after the first 25 flushes and the test would load nothing.
#   load-slowtpm.sh CLIENTS SECONDS [DROP_AT]
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
clients=$1 seconds=$2 drop_at=${3:-10}
. tests/lib/swtpm.sh
. tests/lib/tpmproxy.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d "${TMPDIR:-/tmp}/sv-load-slowtpm.XXXXXX")
chmod 755 "$T"
SUP= BENCH=
cleanup() {
	local rc=$?
	set +e
	[ -n "$BENCH" ] && kill -9 "$BENCH" 2>/dev/null
	if [ -n "$SUP" ]; then
		kill -TERM "$SUP" 2>/dev/null
		wait "$SUP" 2>/dev/null
	fi
	tpmproxy_cleanup
	swtpm_cleanup
	if [ $rc -ne 0 ]; then
		echo "load-slowtpm: FAILED; sealvaultd log (tail):" >&2
		tail -n 25 "$T/sealvaultd.log" >&2
		echo "--- tpm-proxy log (drops, tail)" >&2
		grep -E "dropped|gone|lost" "$T/px/log" | tail -n 5 >&2
	fi
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "load-slowtpm: FAIL: $*" >&2
	exit 1
}

SV_INIT_ARGS=(--counter-scheme hybrid)
sv_server_init "$T" "$B" >/dev/null
sv_tokens_init >/dev/null # auth = tokens: the load's clients carry tokens minted per request
[ "$(id -u)" -ne 0 ] || chmod -R a+rX "$SV_TENANTS"
tpmproxy_start "$T/px" --cmd-delay-ms 3 --nv-delay-ms 40 --nv-delay-on flash \
	--transient-rate 0.1 --seed 12 --swtpm-state "$T/tpm"
users=()
[ "$(id -u)" -eq 0 ] && users=(--user "$SV_ENCLAVE_USER" --broker-user "$SV_BROKER_USER")
python3 tests/lib/supervise.py --port-file "$T/port" --restart-sec 1 --max-restarts 3 -- \
	"$B/sealvaultd" --state-dir "$T/state" --tpm "$TPMPROXY_TCTI" --listen-fd '{fd}' \
	--tls-cert "$T/cert.pem" --tls-key "$T/key.pem" --context "$SV_CONTEXT" \
	--libexec-dir "$B" --rate-limit 0 --max-conns-per-ip 0 --login-rate-per-id 0 --max-pending-logins-per-ip 0 --metrics-listen none \
	--nv-writes-per-day 1000000 --nv-writes-burst 100000 --auth tokens \
	--tenants-dir "$SV_TENANTS" "${users[@]}" \
	>>"$T/sealvaultd.log" 2>&1 &
SUP=$!
URL=
for _ in $(seq 1 500); do
	kill -0 "$SUP" 2>/dev/null || fail "the supervisor exited"
	port=$(cat "$T/port" 2>/dev/null || true)
	if [ -n "$port" ] && curl -fsS --max-time 2 --cacert "$SV_CACERT" \
		"https://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
		URL=https://127.0.0.1:$port
		break
	fi
	sleep 0.02
done
[ -n "$URL" ] || fail "the vault did not come up"
echo "load-slowtpm: hybrid vault behind a slow, faulty chip (3 ms/command, 40 ms/flash write, 10 % transient NV errors), $clients clients for $seconds s, one dropped TPM connection at ${drop_at} s"

SV_URL=$URL
"$B/sealvault-bench" --url "$URL" --cacert "$SV_CACERT" --clients "$clients" \
	--seconds "$seconds" --load --allow-busy --tenant "$SV_TENANT" --tenant-key "$SV_TENANT_KEY" \
	--aud "$(sv_vault_id)" >"$T/bench.out" 2>&1 &
BENCH=$!
sleep "$drop_at"
tpmproxy_drop_next "$TPMPROXY_CTL" 0x134
brc=0
wait "$BENCH" || brc=$?
BENCH=
cat "$T/bench.out" | grep -E "^(load|ERRORS|  e\.g\.)" | sed 's/^/load-slowtpm: /'
dropped=$(tpmproxy_stat "$TPMPROXY_CTL" dropped)
injected=$(tpmproxy_stat "$TPMPROXY_CTL" injected)
restarts=$(grep -c "restart [0-9]*: pid" "$T/sealvaultd.log" || true)
enclave_restarts=$(grep -c "sealvaultd: started sealvault-enclave (pid [0-9]*) again" "$T/sealvaultd.log" || true)
echo "load-slowtpm: TPM: $injected transient errors injected, $dropped connection(s) dropped; the enclave was restarted $enclave_restarts time(s), sealvaultd $restarts time(s)"
grep -E "sealvault-enclave: (the NV counter|the connection|refusing|cannot)|rolled|roll forward|superseded|sealvault-broker: the enclave" \
	"$T/sealvaultd.log" | head -n 5 | sed 's/^/load-slowtpm: log: /' || true
[ "$dropped" -ge 1 ] || fail "no TPM connection was dropped (no NV_Increment after ${drop_at} s?)"
[ "$enclave_restarts" -ge 1 ] || fail "sealvaultd did not restart the enclave after the dropped connection"
[ "$restarts" -eq 0 ] || fail "sealvaultd itself ended and was restarted $restarts time(s)"
curl -fsS --max-time 10 --cacert "$SV_CACERT" "$URL/healthz" >/dev/null ||
	fail "the vault does not serve at the end"
kill -TERM "$SUP"
wait "$SUP" || true
SUP=
# status even when the clients failed: the lead wants to know whether the state survived
"$B/sealvault-admin" status --state-dir "$T/state" --tpm "$TPMPROXY_TCTI" >"$T/status" 2>&1 ||
	fail "status: $(cat "$T/status")"
grep -q '^agree: yes' "$T/status" || fail "status does not agree: $(cat "$T/status")"
echo "load-slowtpm: status: $(grep -E '^(agree|tpm-counter|journal-head|nv-writes):' "$T/status" | tr '\n' ' ')"
[ "$brc" -eq 0 ] || fail "clients saw errors other than documented 503s, or secrets differed (above)"
echo "load-slowtpm: ok"
