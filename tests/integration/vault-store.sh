#!/bin/bash
# The vault's semantics on the real store and a private swtpm (tests/integration/vault-store.c):
# durable charges, the unknown-identifier no-op commit, last-guess destruction across a restart,
# re-registration of a tombstone, write-back, deletion.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/swtpm.sh
DRIVER=${VAULT_STORE_DRIVER:?}
ADMIN=${SEALVAULT_ADMIN:?}
T=$(mktemp -d /tmp/sv-vault-store.XXXXXX)
swtpm_trap_exit 'rm -rf "$T"'
swtpm_start "$T/tpm"
"$ADMIN" init --state-dir "$T/state" --policy-key-out "$T/state".policy-key --tpm "$SWTPM_TCTI" >/dev/null
"$DRIVER" "$T/state" "$SWTPM_TCTI"
