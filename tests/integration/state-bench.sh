#!/bin/bash
# make bench (state): commit latency with 1 and 64 concurrent writers on a private swtpm (64 also
# with the policy's default group-commit window), changes per NV increment, NV writes per 1000
# attempt changes, enclave memory per user and start-up time of a 1,000,000-user vault.
# One `name: value unit` line per figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/swtpm.sh
DRIVER=${STATE_DRIVER:?}
ADMIN=${SEALVAULT_ADMIN:?}
USERS=${BENCH_USERS:-1000000}
T=$(mktemp -d /tmp/sv-state-bench.XXXXXX)
trap 'swtpm_cleanup; rm -rf "$T"' EXIT
swtpm_start "$T/tpm"
"$ADMIN" init --state-dir "$T/s1" --policy-key-out "$T/s1".policy-key --tpm "$SWTPM_TCTI" >/dev/null
"$DRIVER" bench-commit --state-dir "$T/s1" --tpm "$SWTPM_TCTI" --writers 64 --changes 4096
"$ADMIN" init --state-dir "$T/s2" --policy-key-out "$T/s2".policy-key --tpm "$SWTPM_TCTI" --nv-index 0x01005357 >/dev/null
"$DRIVER" bench-startup --state-dir "$T/s2" --tpm "$SWTPM_TCTI" --users "$USERS"
echo "snapshot-bytes-1M-users: $(stat -c %s "$T/s2/snap.a" "$T/s2/snap.b" | sort -n | tail -1) bytes"
