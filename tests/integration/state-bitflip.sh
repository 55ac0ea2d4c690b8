#!/bin/bash
# Damage (issue 3, integration 4): flip one byte at a random place of the journal, the active
# snapshot or the state header -> refused. Garbage appended after the last committed record is a
# provably uncommitted tail (the counter agrees without it) and is dropped. A flipped byte in the
# stale snapshot slot (no longer needed) does not stop the vault.
# A plain counter, for the exact rule; a hybrid vault reads a damaged journal inside the last NV
# block like a truncation after a power cut (accepted with the penalty, check-state-hybrid).
# SNAPSHOT_CHUNK=BYTES (issue 16) writes the snapshots in chunks that small (1: one op per
# chunk), on the snapshot thread while the commits go on (so they end in delta chunks, the
# frames committed meanwhile), and then damages the active snapshot chunk by chunk: a byte flipped inside every chunk,
# every chunk missing, each pair of neighbours swapped, a chunk repeated, a chunk of the older
# snapshot put in its place, the chain cut after any chunk or inside it: each refused. A crash
# while the stale slot is rewritten (any prefix of chunks, or half a chunk) costs nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/swtpm.sh
DRIVER=${STATE_DRIVER:?}
ADMIN=${SEALVAULT_ADMIN:?}
ROUNDS=${1:-40}
T=$(mktemp -d /tmp/sv-state-bitflip.XXXXXX)
trap 'swtpm_cleanup; rm -rf "$T"' EXIT
S="$T/state"
CHUNK=()
[ -n "${SNAPSHOT_CHUNK:-}" ] && CHUNK=(--snapshot-chunk "$SNAPSHOT_CHUNK" --snapshot-async)
D() { "$DRIVER" "$@" --tpm "$SWTPM_TCTI" --seed 7 --batch 3 --ops 90 ${CHUNK[@]+"${CHUNK[@]}"}; }
# A snapshot written on its thread (--snapshot-async) may switch the journal over right at the
# end of the run and leave it empty, which this test needs not to be: then the run is made again
# on a fresh TPM and state (its timing differs; the stream, and so every check below, does not).
for attempt in 1 2 3 4 5; do
	swtpm_start "$T/tpm"
	"$ADMIN" init --state-dir "$S" --policy-key-out "$S".policy-key --tpm "$SWTPM_TCTI" \
		--counter-scheme plain >/dev/null
	D run --state-dir "$S" --snapshot-every 7 >/dev/null
	"$ADMIN" status --state-dir "$S" --tpm "$SWTPM_TCTI" >"$T/status"
	grep -q '^journal-bytes: [1-9][0-9][0-9]' "$T/status" && break
	[ "$attempt" -lt 5 ] || { echo "FAIL: journal has no records"; exit 1; }
	swtpm_cleanup
	rm -rf "$T/tpm" "$S" "$S".policy-key
done
slot=$(sed -n 's/^snapshot: slot \(.\) .*/\1/p' "$T/status")
other=$([ "$slot" = a ] && echo b || echo a)
[ -s "$S/snap.$other" ] || { echo "FAIL: expected both snapshot slots in use"; exit 1; }

flip() { # file -> flips one random byte in place, prints the offset
	python3 - "$1" <<'PY'
import os, random, sys
p = sys.argv[1]
n = os.path.getsize(p)
off = random.randrange(n)
with open(p, 'r+b') as f:
    f.seek(off)
    b = f.read(1)[0]
    f.seek(off)
    f.write(bytes([b ^ random.randrange(1, 256)]))
print(off)
PY
}

files=(journal "snap.$slot" vault.hdr)
for i in $(seq 1 "$ROUNDS"); do
	f=${files[$((i % 3))]}
	rm -rf "$T/w"
	cp -a "$S" "$T/w"
	off=$(flip "$T/w/$f")
	rc=0
	D check --state-dir "$T/w" --acked 89 >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" -ne 3 ] || [ "$(wc -l <"$T/err")" -ne 1 ]; then
		echo "FAIL: byte $off of $f flipped: exit $rc (want 3 and one line)"; cat "$T/err"; exit 1
	fi
done
echo "refused all $ROUNDS flips, e.g.: $(cat "$T/err")"

# Uncommitted tail: bytes after the last record while the counter equals the head -> dropped.
rm -rf "$T/w"
cp -a "$S" "$T/w"
head -c 300 /dev/urandom >>"$T/w/journal"
"$ADMIN" status --state-dir "$T/w" --tpm "$SWTPM_TCTI" >"$T/out"
grep -qx 'uncommitted-tail-bytes: 300' "$T/out" && grep -qx 'agree: yes' "$T/out" ||
	{ echo "FAIL: tail not recognised as uncommitted"; cat "$T/out"; exit 1; }
D check --state-dir "$T/w" --acked 89 >"$T/out" || { echo "FAIL: tail not dropped"; exit 1; }
[ "$(stat -c %s "$T/w/journal")" -eq "$(stat -c %s "$S/journal")" ] ||
	{ echo "FAIL: tail still in the journal"; exit 1; }

# The stale slot is not needed: damage there does not stop the vault, and every change is there.
rm -rf "$T/w"
cp -a "$S" "$T/w"
flip "$T/w/snap.$other" >/dev/null
D check --state-dir "$T/w" --acked 89 | grep -q '^position 90 ' || { echo "FAIL: stale slot"; exit 1; }
D check --state-dir "$S" --acked 89 | grep -q '^position 90 ' || { echo "FAIL: original"; exit 1; }
echo "state-bitflip: $ROUNDS flips refused; uncommitted tail dropped; stale slot ignored"
[ -n "${SNAPSHOT_CHUNK:-}" ] || exit 0

# --- the chunks of the active snapshot (issue 16) ---
SC=tests/integration/snapchunks.py
n=$(python3 "$SC" count "$S/snap.$slot")
[ "$n" -ge 6 ] || { echo "FAIL: the active snapshot has $n chunks, want many"; exit 1; }
kinds=$(python3 "$SC" kinds "$S/snap.$slot")
[ "${kinds##* }" = 2 ] && [ "$(tr ' ' '\n' <<<"$kinds" | grep -c '^2$')" -eq 1 ] &&
	grep -qE '^5 (5 )*6 (6 )*2$' <<<"$kinds" ||
	{ echo "FAIL: want user chunks (5), delta chunks (6), then the end (2): $kinds"; exit 1; }
refused() { # refused WHAT: the damaged copy in $T/w is refused with one line
	local rc=0
	D check --state-dir "$T/w" --acked 89 >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" -ne 3 ] || [ "$(wc -l <"$T/err")" -ne 1 ]; then
		echo "FAIL: $1: exit $rc (want 3 and one line)"; cat "$T/err"; exit 1
	fi
}
damage() { # damage OP K [ARG]: a fresh copy with chunk K of the active snapshot damaged
	rm -rf "$T/w"
	cp -a "$S" "$T/w"
	python3 "$SC" "$1" "$T/w/snap.$slot" "$2" ${3:+"$3"} >/dev/null
}
cases=0
for k in $(seq 0 $((n - 1))); do # every chunk: a flipped byte, missing, cut inside
	damage flip "$k"; refused "byte flipped in chunk $k of $n"
	damage drop "$k"; refused "chunk $k of $n missing"
	damage cutin "$k"; refused "snapshot cut inside chunk $k of $n"
	cases=$((cases + 3))
done
for k in 0 $((n / 2)) $((n - 2)); do # the first, a middle one, the one before the last
	damage swap "$k"; refused "chunks $k and $((k + 1)) of $n swapped"
	damage dup "$k"; refused "chunk $k of $n repeated"
	damage cut "$((k + 1))"; refused "snapshot cut after chunk $k of $n"
	cases=$((cases + 3))
	if [ "$k" -lt "$(python3 "$SC" whole "$S/snap.$other")" ]; then
		damage take "$k" "$S/snap.$other"; refused "chunk $k of the older snapshot put in"
		cases=$((cases + 1))
	fi
done
echo "state-bitflip: $cases damaged chunk chains refused ($n chunks), e.g.: $(cat "$T/err")"

# A crash while the next snapshot is written into the stale slot leaves there a prefix of
# chunks (cut between chunks or inside one): the vault opens from the active slot with every
# acknowledged change. (The prefix is of the active snapshot, at the same counter: the slot
# that is tried first must not pass for a whole snapshot.)
for k in 1 $((n - 1)); do
	for how in cut cutin; do
		rm -rf "$T/w"
		cp -a "$S" "$T/w"
		cp "$S/snap.$slot" "$T/w/snap.$other"
		python3 "$SC" "$how" "$T/w/snap.$other" "$k" >/dev/null
		D check --state-dir "$T/w" --acked 89 | grep -q '^position 90 ' ||
			{ echo "FAIL: a $how prefix of $k chunks in the stale slot stopped the vault"; exit 1; }
	done
done
echo "state-bitflip: a snapshot cut off by a crash in the stale slot costs nothing"
