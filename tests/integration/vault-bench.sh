#!/bin/bash
# make bench: login/start time for registered, unknown and last-guess identifiers, handler alone
# and with the durable commit, on the real store and a private swtpm (vault-store.c, bench mode).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/swtpm.sh
DRIVER=${VAULT_STORE_DRIVER:?}
ADMIN=${SEALVAULT_ADMIN:?}
T=$(mktemp -d /tmp/sv-vault-bench.XXXXXX)
swtpm_trap_exit 'rm -rf "$T"'
swtpm_start "$T/tpm"
"$ADMIN" init --state-dir "$T/state" --policy-key-out "$T/state".policy-key --tpm "$SWTPM_TCTI" >/dev/null
taskset -c 0 "$DRIVER" "$T/state" "$SWTPM_TCTI" bench
