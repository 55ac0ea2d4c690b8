#!/bin/bash
# Another TPM (issue 3, integration 5): a state directory provisioned on one swtpm and started on
# another is refused, even when the other TPM has its own vault with the same NV index.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/swtpm.sh
DRIVER=${STATE_DRIVER:?}
ADMIN=${SEALVAULT_ADMIN:?}
T=$(mktemp -d /tmp/sv-state-othertpm.XXXXXX)
trap 'swtpm_cleanup; rm -rf "$T"' EXIT
swtpm_start "$T/tpm-a"
A=$SWTPM_TCTI
swtpm_start "$T/tpm-b"
B=$SWTPM_TCTI
"$ADMIN" init --state-dir "$T/state-a" --policy-key-out "$T/state-a".policy-key --tpm "$A" >/dev/null
"$DRIVER" run --state-dir "$T/state-a" --tpm "$A" --seed 3 --batch 3 --ops 30 >/dev/null
for round in no-vault-on-b vault-on-b; do
	rc=0
	"$DRIVER" check --state-dir "$T/state-a" --tpm "$B" --seed 3 --batch 3 --ops 30 --acked 29 \
		>"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" -eq 3 ] || { echo "FAIL ($round): started on the wrong TPM (exit $rc)"; exit 1; }
	grep -q 'provisioned on a different TPM' "$T/err" || { echo "FAIL: reason"; cat "$T/err"; exit 1; }
	"$ADMIN" init --state-dir "$T/state-b" --policy-key-out "$T/state-b".policy-key --tpm "$B" >/dev/null 2>&1 || true
done
echo "refused on the other TPM: $(cat "$T/err")"
"$DRIVER" check --state-dir "$T/state-a" --tpm "$A" --seed 3 --batch 3 --ops 30 --acked 29 |
	grep -q '^position 30 ' || { echo "FAIL: refused on its own TPM"; exit 1; }
echo "state-othertpm: refused on another TPM, serves on its own"
