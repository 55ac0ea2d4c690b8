#!/usr/bin/env bash
# `make bench` step for attestation on a private swtpm: the time sealvault-admin init takes
# (attestation keys included), the enclave's start-up until it serves, and the latency of
# GET /v1/attestation (one TPM quote + PCR reads) and of /healthz over a kept-alive TLS connection
# for comparison. Figures only; nothing here passes or fails on timing.
set -euo pipefail
B=${B:-build}
N=${ATTEST_BENCH_N:-50}
cd "$(dirname "$0")/../.."
. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh
T=$(mktemp -d /tmp/sv-attest-bench.XXXXXX)
chmod 755 "$T"
trap 'sv_server_cleanup; rm -rf "$T"' EXIT
now() { date +%s.%N; }
SV_INIT_ARGS=(--policy-key-out "$T/policy-key.pem")
t0=$(now)
sv_server_init "$T/srv" "$B" >/dev/null 2>&1
t1=$(now)
sv_server_start
t2=$(now)
median() { sort -n | awk '{a[NR] = $1} END {printf "%.1f ms", 1000 * a[int((NR + 1) / 2)]}'; }
# one curl process, N requests on one connection: time_starttransfer of each after the first
urls() { for _ in $(seq "$N"); do printf 'url = "%s"\noutput = /dev/null\n' "$1"; done; }
lat() {
	urls "$1" | curl -s --cacert "$SV_CACERT" -K - -w '%{time_starttransfer} %{time_appconnect}\n' |
		tail -n +2 | awk '{print $1 - $2}' | median
}
echo "attest-bench: init with attestation keys (swtpm, incl. swtpm start): $(echo "$t1 - $t0" | bc) s"
echo "attest-bench: sealvaultd start until /healthz answers (statement signed): $(echo "$t2 - $t1" | bc) s"
echo "attest-bench: GET /v1/attestation median of $N: $(lat "$SV_URL/v1/attestation?nonce=0011223344556677")"
echo "attest-bench: GET /healthz median of $N: $(lat "$SV_URL/healthz")"
