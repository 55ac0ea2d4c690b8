#!/bin/bash
# check-realms (issue 15): the threshold mode of docs/realms.md on three real realms. Each realm
# is its own vault: its own swtpm, `sealvault-admin init`, sealvaultd (enclave + broker) on its
# own loopback port with its own self-signed certificate, auth = tokens. One provider (tenant
# acme, one signing key) is configured at all three, and mints each user a token per realm whose
# aud is that realm's vault id. The client reads a realm list file (t = 2, n = 3) with relative
# paths to each realm's CA and token file. A cheap KSF (--ksf-t 1 --ksf-m 8): this test is
# about the realms, not the password stretching. Each step uses its own user:
#   a. register (G = 7 of the default total 10), status at each realm (index, version, guess
#      limit), recover byte-identical, every counter back at G;
#   b. one realm stopped (sealvaultd and swtpm): recovery works; one realm's state dir and TPM
#      state deleted and the realm re-initialised on the same port (new vault id): recovery
#      works with the other two, and a re-registration puts the user back on all three;
#   c. two realms stopped: exit 1 naming both, and the third charged at most one guess (its
#      status, and its own count of evaluations on /metrics);
#   d. a realm behind tests/integration/realm-proxy.py, which flips one bit of the DLEQ proof in
#      its recover2 replies: a warning names it, it is excluded, recovery succeeds; the realm
#      counted one evaluation per altered reply;
#   e. a realm down during a re-registration (--min-realms 2, a new secret) holds the old
#      version: a warning names it, it is ignored, the new secret comes back;
#   f. --max-attempts 3 (G = 2, bound floor(3*2/2) = 3): exactly 3 wrong passwords answered
#      (exit 2), each charging two realms (figures from every realm's /v2/realm/status), then
#      every realm is destroyed: exit 3, also for the right password; n·G = 6 evaluations in all;
#   g. delete with one realm down names it (exit 1); repeated with all three, nothing is left.
# Every step prints one line with the figures it saw. Run time 25-45 s on the 2-core build box
# (setup 5 s; most of the rest is the registrations' durable commits at three swtpms).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh
. tests/lib/realms.sh
KSF=(--ksf-t 1 --ksf-m 8)
RL_NAME=(- east north west) # realm i is RL_NAME[i], at index i of every realm list
RL_B=$B
RL_T=$(mktemp -d "${TMPDIR:-/tmp}/sv-realms.XXXXXX")
T=$RL_T
chmod 0755 "$T"
proxy_pid=
cleanup() {
	local rc=$? i
	set +e
	[ -z "$proxy_pid" ] || { kill "$proxy_pid"; wait "$proxy_pid"; } 2>/dev/null
	if [ $rc -ne 0 ]; then
		for i in 1 2 3; do
			[ -e "${RL_DIR[i]:-/nonexistent}/sealvaultd.log" ] || continue
			echo "--- ${RL_NAME[i]}: sealvaultd.log (tail)" >&2
			tail -n 8 "${RL_DIR[i]}/sealvaultd.log" >&2
		done
	fi
	realms_cleanup
	[ -n "${KEEP:-}" ] && { echo "kept $T" >&2; return; }
	rm -rf "$T"
}
trap cleanup EXIT
step=setup
fail() {
	echo "realms: FAIL (step $step): $*" >&2
	exit 1
}
ts=$(date +%s)
say() { # one line per step, with its wall time
	echo "realms: [$step] $* ($(($(date +%s) - ts)) s)"
	ts=$(date +%s)
}

# sv CMD USER ARGS...: the CLI with USER's realm list (or REALMS if set); sets rc and err
# (stdout and stderr together: the CLI's figures go to stderr).
sv() {
	local cmd=$1 user=$2 list=${REALMS:-}
	shift 2
	[ -n "$list" ] || list=$(realms_list "$user") || fail "no realm list for $user"
	set +e
	"$SV" "$cmd" --realms "$list" --user "$user" "${KSF[@]}" "$@" >"$T/out.txt" 2>&1
	rc=$?
	set -e
	err=$(cat "$T/out.txt")
}
expect() { # expect RC [TEXT]...: the exit status and each TEXT in the output
	local want=$1 s
	shift
	[ "$rc" -eq "$want" ] || fail "exit $rc, want $want; output: $err"
	for s in "$@"; do
		grep -qF -- "$s" <<<"$err" || fail "output lacks '$s': $err"
	done
}
attempts_reported() { sed -n 's/.*wrong password; attempts left: \([0-9]*\).*/\1/p' <<<"$err"; }

# st I USER: realm I's own view of USER (tests/lib/realms.sh realm_status) into S:
# (state index guess_limit attempts_left version)
st() {
	realm_status "$1" "$2" || fail "no status of $2 at ${RL_NAME[$1]}"
	S=("${RL_S[@]}")
}
# evals I: the evaluations realm I made (each one charged a guess), from its own /metrics
evals() {
	E=$(realm_metric "$1" sealvault_realm_evaluations_total) || fail "no metrics from ${RL_NAME[$1]}"
}
# left USER: attempts left at realms 1 2 3 into LEFT ("-" where not registered)
left() {
	local i
	LEFT=
	for i in 1 2 3; do
		st "$i" "$1"
		if [ "${S[0]}" = 1 ]; then LEFT+="${S[3]} "; else LEFT+="- "; fi
	done
	LEFT=${LEFT% }
}

printf 'correct horse battery staple\n' >"$T/pw"
printf 'Tr0ub4dor&3\n' >"$T/wrong"
secret() { head -c "${2:-32}" /dev/urandom >"$T/secret.$1"; }
recovers() { # recovers USER [SECRET-NAME]: exit 0 and the secret byte for byte
	rm -f "$T/got"
	sv recover "$1" --password-file "$T/pw" --out "$T/got"
	expect 0
	cmp -s "$T/got" "$T/secret.${2:-$1}" || fail "$1 recovered another secret"
}

t0=$(date +%s)
realms_tenant || fail "no tenant"
for i in 1 2 3; do realm_init "$i" || fail "${RL_NAME[i]} did not start"; done
say "east ${RL_ID[1]} :${RL_PORT[1]}, north ${RL_ID[2]} :${RL_PORT[2]}," \
	"west ${RL_ID[3]} :${RL_PORT[3]}"

# --- a. register, recover -----------------------------------------------------------------
step=a
secret alice 48
sv register alice --password-file "$T/pw" --secret-file "$T/secret.alice"
expect 0 "sealvault: each realm allows 7 guesses; in all at most 10 (3 realms, threshold 2)" \
	"sealvault: registered at 3 of 3 realms"
vers=()
for i in 1 2 3; do
	st "$i" alice
	[ "${S[*]:0:4}" = "1 $i 7 7" ] || fail "${RL_NAME[i]}: state/index/G/left ${S[*]:0:4}, want 1 $i 7 7"
	vers+=("${S[4]}")
done
[ "${vers[0]}" = "${vers[1]}" ] && [ "${vers[1]}" = "${vers[2]}" ] || fail "versions differ: ${vers[*]}"
recovers alice
left alice
[ "$LEFT" = "7 7 7" ] || fail "after the recovery attempts left $LEFT, want 7 7 7"
say "registered at 3 of 3 (G 7, bound 10), indices 1 2 3, one version ${vers[0]:0:8}..;" \
	"recovered $(stat -c %s "$T/got") bytes identical; attempts left $LEFT"

# --- b. one realm lost --------------------------------------------------------------------
step=b
realm_stop 2 || fail "stopping north"
recovers alice
realm_start 2 || fail "starting north"
left alice
b1="north stopped: recovered identical (then left $LEFT)"
# A lost realm's state (its state dir and its TPM) deleted: the realm is re-initialised fresh on
# the same port, not left down. Left down it would repeat the case just above (a realm that does
# not answer); re-initialised it is what an operator does after replacing a dead machine
# (docs/realms.md, "Operators"): the realm answers, under a new vault id, and holds nothing
# (recover1: 404), a path of its own, and the only one after which the user can be put back on
# three realms by registering again. The realm list then carries the new id (and CA), as the
# provider would publish it.
old_id=${RL_ID[3]}
realm_stop 3 || fail "stopping west"
rm -rf "${RL_DIR[3]}"
realm_init 3 || fail "west did not start afresh"
[ "${RL_ID[3]}" != "$old_id" ] || fail "west kept its vault id after a fresh init"
recovers alice
st 3 alice
[ "${S[0]}" = 0 ] || fail "the fresh west holds alice (state ${S[0]})"
sv register alice --password-file "$T/pw" --secret-file "$T/secret.alice"
expect 0 "sealvault: registered at 3 of 3 realms"
recovers alice
st 3 alice
[ "${S[0]} ${S[1]}" = "1 3" ] || fail "west after registering again: state/index ${S[*]:0:2}"
left alice
say "$b1; west re-initialised on :${RL_PORT[3]} (new id ${RL_ID[3]:0:8}.., nothing there):" \
	"recovered identical; registered again at 3 of 3, recovered; left $LEFT"

# --- c. two realms lost -------------------------------------------------------------------
step=c
secret carol
sv register carol --password-file "$T/pw" --secret-file "$T/secret.carol"
expect 0
realm_stop 1 || fail "stopping east"
realm_stop 2 || fail "stopping north"
evals 3
e0=$E
rm -f "$T/got"
sv recover carol --password-file "$T/pw" --out "$T/got"
expect 1 "sealvault: recovery needs 2 realms, only 1 answered; missing: "
line=$(grep -F "recovery needs 2 realms" <<<"$err" | head -n 1)
if ! grep -qF east <<<"$line" || ! grep -qF north <<<"$line"; then
	fail "the message does not name east and north: $line"
fi
! grep -qF west <<<"$line" || fail "the message names west, which answered: $line"
[ ! -s "$T/got" ] || fail "a secret was written"
st 3 carol
[ "${S[0]}" = 1 ] || fail "west: carol in state ${S[0]}"
[ "${S[3]}" -ge 6 ] || fail "west charged more than one guess: ${S[3]} of 7 left"
evals 3
[ $((E - e0)) -le 1 ] || fail "west made $((E - e0)) evaluations for the failed recovery"
realm_start 1 || fail "starting east"
realm_start 2 || fail "starting north"
say "east and north stopped: exit 1, '${line#sealvault: }'; west left ${S[3]} of 7" \
	"(charged $((7 - S[3])), evaluations there $e0 -> $E)"

# --- d. a realm whose evaluation proof fails ------------------------------------------------
step=d
secret dave
sv register dave --password-file "$T/pw" --secret-file "$T/secret.dave"
expect 0
# A wrong guess charges the two realms with the most attempts left; the third then has the most
# and is sure to be asked first at the next recovery: that one goes behind the lying proxy.
sv recover dave --password-file "$T/wrong" --out "$T/got"
expect 2 "sealvault: wrong password; attempts left: 6"
left dave
x=
for i in 1 2 3; do [ "$(cut -d' ' -f"$i" <<<"$LEFT")" != 7 ] || x=$i; done
[ -n "$x" ] && [ "$(tr ' ' '\n' <<<"$LEFT" | sort | tr '\n' ' ')" = "6 6 7 " ] ||
	fail "after one wrong guess attempts left $LEFT, want two 6 and one 7"
evals "$x"
e0=$E
python3 tests/integration/realm-proxy.py "${RL_PORT[x]}" "${RL_DIR[x]}/cert.pem" \
	"${RL_DIR[x]}/key.pem" "$T/proxy.port" "$T/proxy.count" 2>"$T/proxy.log" &
proxy_pid=$!
for _ in $(seq 1 250); do
	[ -s "$T/proxy.port" ] && break
	sleep 0.02
done
[ -s "$T/proxy.port" ] || fail "the proxy did not start: $(cat "$T/proxy.log")"
proxied=$(realms_list dave "$x" "$(cat "$T/proxy.port")") || fail "no realm list"
REALMS=$proxied recovers dave
expect 0 "sealvault: warning: realm ${RL_NAME[x]}"
warn=$(grep -F "warning: realm" <<<"$err")
grep -F "realm ${RL_NAME[x]}" <<<"$warn" | grep -qi proof ||
	fail "the warning about ${RL_NAME[x]} does not say its proof failed: $err"
! grep -vqF "realm ${RL_NAME[x]}" <<<"$warn" || fail "a warning names another realm: $err"
altered=$(cat "$T/proxy.count")
[ "$altered" -ge 1 ] || fail "the proxy altered no recover2 reply"
evals "$x"
[ $((E - e0)) = "$altered" ] || fail "${RL_NAME[x]} evaluated $((E - e0)) times, the proxy altered $altered"
kill "$proxy_pid"
wait "$proxy_pid" 2>/dev/null || true
proxy_pid=
left dave
say "${RL_NAME[x]} (7 left, asked first) behind the proxy, $altered recover2 reply altered:" \
	"'$(head -n 1 <<<"$warn")'; recovered identical; left $LEFT"

# --- e. a realm holding a stale version ----------------------------------------------------
step=e
secret erin
sv register erin --password-file "$T/pw" --secret-file "$T/secret.erin"
expect 0
st 3 erin
old_ver=${S[4]}
realm_stop 3 || fail "stopping west"
secret erin.new 64
sv register erin --password-file "$T/pw" --secret-file "$T/secret.erin.new" --min-realms 2
expect 0 "sealvault: registered at 2 of 3 realms"
realm_start 3 || fail "starting west"
st 1 erin
new_ver=${S[4]}
st 3 erin
[ "${S[4]}" = "$old_ver" ] && [ "$new_ver" != "$old_ver" ] ||
	fail "versions: east $new_ver, west ${S[4]} (registered first as $old_ver)"
recovers erin erin.new
expect 0 "sealvault: warning: realm west"
warn=$(grep -F "warning: realm west" <<<"$err" | head -n 1)
grep -qE "another registration|stale" <<<"$warn" ||
	fail "the warning about west does not say it holds another version: $err"
say "west down at the re-registration (2 of 3) keeps ${old_ver:0:8}.., the others hold" \
	"${new_ver:0:8}..: '$warn'; the new 64-byte secret came back"

# --- f. the guess bound ---------------------------------------------------------------------
step=f
secret frank
sv register frank --password-file "$T/pw" --secret-file "$T/secret.frank" --max-attempts 3
expect 0 "sealvault: each realm allows 2 guesses; in all at most 3 (3 realms, threshold 2)"
left frank
[ "$LEFT" = "2 2 2" ] || fail "attempts left $LEFT, want 2 2 2"
figs=
ev0=0
for i in 1 2 3; do
	evals "$i"
	ev0=$((ev0 + E))
done
# After guess k the realms have 6 - 2k attempts left in all (two charged per guess), and the CLI
# reports the fewest left among the two it used: 1, then 0 (that realm is destroyed), then 0.
for k in 1 2 3; do
	sv recover frank --password-file "$T/wrong" --out "$T/got"
	expect 2 "sealvault: wrong password; attempts left: "
	rep=$(attempts_reported)
	want_rep=0
	[ "$k" != 1 ] || want_rep=1
	[ "$rep" = "$want_rep" ] || fail "guess $k: attempts left reported '$rep', want $want_rep"
	sum=0 states=
	for i in 1 2 3; do
		st "$i" frank
		sum=$((sum + S[3]))
		states+="${S[0]}/${S[3]} "
	done
	[ "$sum" = $((6 - 2 * k)) ] || fail "guess $k: $sum attempts left in all ($states), want $((6 - 2 * k))"
	figs+="guess $k: exit 2, reported $rep, state/left ${states% }; "
done
for i in 1 2 3; do
	st "$i" frank
	[ "${S[0]}" = 2 ] || fail "after 3 guesses ${RL_NAME[i]} is in state ${S[0]}, not destroyed"
done
rm -f "$T/got"
sv recover frank --password-file "$T/wrong" --out "$T/got"
expect 3
sv recover frank --password-file "$T/pw" --out "$T/got"
expect 3
[ ! -s "$T/got" ] || fail "a secret was written after the lock-out"
# Every guess the realms allowed was an evaluation: n * G = 6 in all, none after the lock-out.
ev=0
for i in 1 2 3; do
	evals "$i"
	ev=$((ev + E))
done
[ $((ev - ev0)) = 6 ] || fail "$((ev - ev0)) evaluations for frank at the three realms, want 6"
say "G 2, bound 3: ${figs}a 4th guess exit 3; the right password exit 3 (3 of 3 destroyed);" \
	"$((ev - ev0)) evaluations in all (n·G)"

# --- g. delete ------------------------------------------------------------------------------
step=g
realm_stop 2 || fail "stopping north"
sv delete erin
expect 1 north
grep -q "north" <<<"$err" && ! grep -q "realm east\|realm west\|east (\|west (" <<<"$err" ||
	fail "the failed deletion does not name north alone: $err"
dline=$(grep -F north <<<"$err" | head -n 1)
realm_start 2 || fail "starting north"
sv delete erin
expect 0
for i in 1 2 3; do
	st "$i" erin
	[ "${S[0]}" = 0 ] || fail "${RL_NAME[i]} still holds erin (state ${S[0]})"
done
say "delete with north down: exit 1, '$dline'; again with all three: exit 0, state 0 at each"

# --- h. a realm's state rolled back after anchored realm guesses ------------------------------
# The operator of one realm keeps a copy of its state directory, lets wrong guesses be charged
# there (each anchored in its TPM counter before the evaluation left), then puts the copy back
# to get the guesses again. The realm must refuse to start on the copy, and the real directory
# must still hold the charges. (Realm records share the store, journal and anchoring of /v1
# records: check-state-rollback, -crash and -fork copy at every point of that write order.)
step=h
secret hank
sv register hank --password-file "$T/pw" --secret-file "$T/secret.hank"
expect 0 "registered at 3 of 3 realms"
realm_stop 3 || fail "stopping west"
cp -a "${RL_DIR[3]}/state" "$T/west-copy"
realm_start 3 || fail "starting west"
realm_stop 1 || fail "stopping east" # the guesses go to north and west
for g in 1 2; do
	sv recover hank --password-file "$T/wrong" --out "$T/got"
	expect 2 "wrong password"
done
st 3 hank
charged=${S[3]}
[ "$charged" = $((S[2] - 2)) ] || fail "west shows $charged of ${S[2]} left, want two charged"
realm_stop 3 || fail "stopping west"
mv "${RL_DIR[3]}/state" "$T/west-real"
cp -a "$T/west-copy" "${RL_DIR[3]}/state"
: >"${RL_DIR[3]}/sealvaultd.log"
swtpm_start "${RL_DIR[3]}/tpm" || fail "starting west's swtpm"
RL_TPM[3]=$SWTPM_TCTI
if _realm_up 3 2>/dev/null; then
	fail "west started on a copy from before two anchored guesses"
fi
grep -qF -e "rolled back" -e "older copy" "${RL_DIR[3]}/sealvaultd.log" ||
	fail "west refused the copy for another reason: $(tail -n 3 "${RL_DIR[3]}/sealvaultd.log")"
why=$(grep -m1 -oF -e "rolled back or lost writes" -e "older copy" "${RL_DIR[3]}/sealvaultd.log" | head -n 1)
rm -rf "${RL_DIR[3]}/state"
mv "$T/west-real" "${RL_DIR[3]}/state"
_realm_up 3 || fail "west did not start on its real state"
st 3 hank
[ "${S[3]}" = "$charged" ] || fail "west gave guesses back: ${S[3]} left, want $charged"
realm_start 1 || fail "starting east"
recovers hank
say "west's copy from before 2 anchored guesses refused ('$why'); on its real state west" \
	"still shows $charged of ${S[2]} left, and hank recovers"

step=end
echo "realms: ok in $(($(date +%s) - t0)) s"
