#!/bin/bash
# check-audit (issue 14, item 3): the audit trail of one full scenario, read from sealvaultd's
# stderr. Real sealvaultd, enclave, broker and CLI on a swtpm (behind tests/lib/tpm-proxy.py, so
# that the test can cut the enclave's TPM connection):
#   1. start; alice registers (limit 3), guesses wrong, recovers, changes her password and
#      deletes her record; bob (limit 2) is locked out by two wrong guesses; an unknown mallory
#      guesses once; yolanda (limit 1) recovers with her last guess, whose charge destroyed the
#      record and whose right password restores it; rita, with this vault as the one realm of
#      her threshold-realm list (t = n = 1), registers, guesses wrong, recovers and deletes
#      through /v2/realm/: realm-register, realm-guess, realm-recovered and realm-deleted
#      records under her realm record's hash (audit-id --realm), none under her /v1 one;
#   2. the enclave's TPM connection is cut at carol's registration (the NV increment never
#      reaches the TPM): the enclave exits 75, sealvaultd restarts it alone on the same audit
#      pair, and the new enclave's records (a roll-forward start-up, carol's recovery) arrive;
#   3. a power cut of the TPM (swtpm killed) while the vault is stopped: the next start records
#      the power-cut penalty; and a start on a state directory without a vault records "refused";
#   4. (root, with unshare) the journal path: sealvaultd in a private mount namespace whose
#      /run/systemd/journal/socket is tests/integration/journal-sink.py, with JOURNAL_STREAM naming
#      its stderr as systemd sets it: the records arrive through sd_journal_send with PRIORITY,
#      MESSAGE_ID and the SEALVAULT_* fields (rita's realm registration and recovery with the
#      realm kinds' own MESSAGE_IDs), and no audit line goes to stderr.
# Asserted: every event kind appears with its fields; every line has the record grammar (event
# names, decimal numbers, 32-hex-digit hashes and a few words, nothing else); each user's records
# come in the order of the scenario with the right attempts left; the identifier hash is what
# `sealvault-admin audit-id` computes from the key file (mode 0600); no identifier, password or
# secret appears anywhere in the log (scan-bytes.py); sequence numbers count 1, 2, ... per
# enclave start; a change that was not anchored by the run that made it has no record.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
ADMIN=$PWD/$B/sealvault-admin
. tests/lib/swtpm.sh
. tests/lib/tpmproxy.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d /tmp/sv-audit.XXXXXX)
chmod 0755 "$T"
SINK_PID=
cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ] && [ -e "$T/srv/sealvaultd.log" ]; then
		echo "--- sealvaultd.log (tail)" >&2
		tail -n 30 "$T/srv/sealvaultd.log" >&2
	fi
	sv_server_stop
	[ -f "$T/sink.pid" ] && kill "$(cat "$T/sink.pid")" 2>/dev/null
	tpmproxy_cleanup
	swtpm_cleanup
	[ -n "${KEEP:-}" ] && { echo "kept $T" >&2; return; }
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "audit: FAIL: $*" >&2
	exit 1
}
t_start=$(date +%s.%N)

KSF=(--ksf-t 1 --ksf-m 8)
sv() { # sv CMD ARGS...: the CLI against the server; sets rc and err
	set +e
	"$SV" "$1" --server "$SV_URL" --cacert "$SV_CACERT" --timeout 30 "${KSF[@]}" "${@:2}" \
		>/dev/null 2>"$T/stderr"
	rc=$?
	set -e
	err=$(cat "$T/stderr")
}
expect() { [ "$rc" -eq "$1" ] || fail "$2: exit $rc, want $1: $err"; }

printf 'correct horse battery staple\n' >"$T/pw"
printf 'wrong guess\n' >"$T/wrong"
printf 'a new password\n' >"$T/newpw"
printf 'correct horse battery staple\na new password\n' >"$T/both"
for f in pw wrong newpw; do tr -d '\n' <"$T/$f" >"$T/$f.raw"; done
for u in alice bob carol dave yolanda; do head -c 32 /dev/urandom >"$T/secret.$u"; done

sv_server_init "$T/srv" "$B"
tpmproxy_start "$T/px"
SWTPM_TCTI=$TPMPROXY_TCTI # the enclave reaches the TPM through the proxy
KEY=$T/audit-id.key
SV_DAEMON_ARGS=(--audit-key-file "$KEY" --nv-writes-per-day 1000000 --nv-writes-burst 100000
	--rate-limit 0)
sv_server_start
LOG=$T/srv/sealvaultd.log

# --- 1. the scenario ---
sv register --user alice --password-file "$T/pw" --secret-file "$T/secret.alice" --max-attempts 3
expect 0 "register alice"
sv recover --user alice --password-file "$T/wrong" --out "$T/out"
expect 2 "alice's wrong guess"
sv recover --user alice --password-file "$T/pw" --out "$T/out"
expect 0 "alice's recovery"
cmp -s "$T/out" "$T/secret.alice" || fail "alice's recovered secret differs"
sv change-password --user alice --password-file - --new-password-file - --max-attempts 3 <"$T/both"
expect 0 "alice's password change"
sv delete --user alice --password-file "$T/newpw"
expect 0 "alice's deletion"
sv register --user bob --password-file "$T/pw" --secret-file "$T/secret.bob" --max-attempts 2
expect 0 "register bob"
sv recover --user bob --password-file "$T/wrong" --out "$T/out"
expect 2 "bob's first wrong guess"
sv recover --user bob --password-file "$T/wrong" --out "$T/out"
expect 3 "bob's last wrong guess"
sv recover --user mallory --password-file "$T/pw" --out "$T/out"
expect 2 "mallory (unknown)"
# yolanda's one allowed guess is her last: its charge destroys the record, the right password
# brings it back
sv register --user yolanda --password-file "$T/pw" --secret-file "$T/secret.yolanda" --max-attempts 1
expect 0 "register yolanda"
sv recover --user yolanda --password-file "$T/pw" --out "$T/out"
expect 0 "yolanda's recovery with her last guess"
# rita's threshold-realm record (docs/realms.md), this vault the one realm of her list (t = n = 1):
# registered, a wrong guess, recovered and deleted through /v2/realm/, recorded as the realm
# kinds, under the hash of her realm record (audit-id --realm), never as /v1 events
rita_list() { # rita's realm list: this vault, where it listens now
	printf '{ "threshold": 1, "realms": [ { "name": "solo", "url": "%s", "ca": "%s", "id": "%s" } ] }\n' \
		"$SV_URL" "$SV_CACERT" "$(sv_vault_id)" >"$T/rita.realms.json"
}
rita_list
head -c 32 /dev/urandom >"$T/secret.rita"
svr() { # svr CMD ARGS...: the CLI with rita's realm list; sets rc and err
	set +e
	"$SV" "$1" --realms "$T/rita.realms.json" --user rita --timeout 30 "${KSF[@]}" "${@:2}" \
		>/dev/null 2>"$T/stderr"
	rc=$?
	set -e
	err=$(cat "$T/stderr")
}
svr register --password-file "$T/pw" --secret-file "$T/secret.rita" --max-attempts 4
expect 0 "rita's realm registration"
svr recover --password-file "$T/wrong" --out "$T/out"
expect 2 "rita's wrong guess at the realm"
svr recover --password-file "$T/pw" --out "$T/out"
expect 0 "rita's realm recovery"
cmp -s "$T/out" "$T/secret.rita" || fail "rita's recovered secret differs"
svr delete
expect 0 "rita's realm deletion"
sv_metrics >"$T/metrics.1"
echo "audit: scenario done (register, wrong guess, recovery, password change, delete, lock-out; a realm's too)"

# --- 2. the enclave restarts alone (exit 75) and keeps its audit pair ---
starts() { grep -c 'sealvaultd: started sealvault-enclave' "$LOG" || true; }
tpmproxy_drop_next "$TPMPROXY_CTL" 0x134 # the next NV_Increment: carol's registration
sv register --user carol --password-file "$T/pw" --secret-file "$T/secret.carol"
[ "$rc" -ne 0 ] || fail "carol's registration was acknowledged although its NV increment was dropped"
for _ in $(seq 1 200); do
	[ "$(starts)" -ge 2 ] && curl -fsS --max-time 2 --cacert "$SV_CACERT" "$SV_URL/healthz" \
		>/dev/null 2>&1 && break
	sleep 0.05
done
grep -q 'exited with status 75' "$LOG" || fail "the enclave did not exit 75"
[ "$(starts)" -eq 2 ] || fail "the enclave was started $(starts) times, want 2"
sv recover --user carol --password-file "$T/pw" --out "$T/out"
expect 0 "carol's recovery after the restart (her registration rolled forward)"
cmp -s "$T/out" "$T/secret.carol" || fail "carol's recovered secret differs"
echo "audit: the enclave restarted alone (exit 75); its successor rolled carol's registration forward"

# --- 3. a power cut of the TPM while the vault is stopped ---
sv_server_stop
tpmproxy_stop "$T/px"
swtpm_kill "$T/srv/tpm"
swtpm_start "$T/srv/tpm"
sv_server_start
sv_server_stop

# --- 3b. a start the store refuses (a state directory without a vault): a "refused" record, read
# by sealvaultd as it exits with the enclave ---
mkdir -p "$T/empty"
[ "$(id -u)" -eq 0 ] && chown "$SV_ENCLAVE_USER" "$T/empty"
users=()
[ "$(id -u)" -eq 0 ] && users=(--user "$SV_ENCLAVE_USER" --broker-user "$SV_BROKER_USER")
rc=0
timeout 30 "$B/sealvaultd" --state-dir "$T/empty" --tpm "$SWTPM_TCTI" --listen 127.0.0.1:0 \
	--tls-cert "$T/srv/cert.pem" --tls-key "$T/srv/key.pem" --libexec-dir "$B" \
	--metrics-listen none --audit-key-file none "${users[@]}" >"$T/refused.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "sealvaultd on an empty state directory exited $rc, want 1: $(cat "$T/refused.log")"
grep -q '^sealvaultd: audit: event=startup seq=1 counter=0 verdict=refused ' "$T/refused.log" ||
	fail "no refused start-up record: $(cat "$T/refused.log")"
echo "audit: a refused start is recorded (verdict=refused)"

# --- the records ---
grep '^sealvaultd: audit: ' "$LOG" >"$T/audit" || fail "no audit line in the log"
echo "audit: $(wc -l <"$T/audit") records on stderr"
word='(clean|roll-forward|power-cut|refused|hybrid|plain|yes|no)'
bad=$(grep -Ev "^sealvaultd: audit: event=[a-z-]+( [a-z_]+=([0-9]{1,20}|[0-9a-f]{32}|$word))+\$" \
	"$T/audit" || true)
[ -z "$bad" ] || fail "lines outside the record grammar: $bad"
for kind in startup power-cut-penalty register guess destroyed recovered login-reset deleted \
	password-changed realm-register realm-guess realm-recovered realm-deleted; do
	grep -q "event=$kind " "$T/audit" || fail "no '$kind' record"
done

[ "$(stat -c %a "$KEY")" = 600 ] || fail "the key file is mode $(stat -c %a "$KEY"), want 600"
hash() { "$ADMIN" audit-id --key-file "$KEY" "$@"; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
# one user's records, as "event[:attempts_left]" in order
history() {
	grep " id_hash=$(hash "$@")" "$T/audit" | while read -r line; do
		ev=$(field event <<<"$line")
		left=$(field attempts_left <<<"$line")
		echo "$ev${left:+:$left}"
	done | tr '\n' ' '
}
want_history() { # want_history [--realm] USER WANT
	local got realm=
	[ "$1" != --realm ] || { realm=$1; shift; }
	got=$(history $realm "$1")
	[ "$got" = "$2" ] || fail "$1's ${realm:+realm }records: '$got', want '$2'"
	echo "audit: $1${realm:+ (realm record)}: $got"
}
# change-password recovers the backup key first (the CLI re-encrypts it), then logs in again
want_history alice "register guess:2 guess:1 recovered guess:2 recovered guess:2 login-reset password-changed guess:2 deleted "
want_history bob "register guess:1 guess:0 destroyed "
want_history mallory "guess:9 "
want_history yolanda "register guess:0 destroyed recovered "
grep "event=recovered .*id_hash=$(hash yolanda)" "$T/audit" | grep -q ' restored=yes' ||
	fail "yolanda's recovery does not say restored=yes"
grep "event=destroyed .*id_hash=$(hash yolanda)" "$T/audit" | grep -q ' known=yes' ||
	fail "yolanda's destroyed record does not say known=yes"
want_history carol "guess:9 recovered "
# rita's realm record: its own kinds (the wrong guess is seen by the client's unlock check, so
# no recover3 follows it), and nothing under her /v1 hash
want_history --realm rita "realm-register realm-guess:3 realm-guess:2 realm-recovered realm-deleted "
! grep -q " id_hash=$(hash rita) " "$T/audit" || fail "rita's realm events have /v1 records"
grep "event=realm-register .*id_hash=$(hash --realm rita)" "$T/audit" | grep -q ' guess_limit=4$' ||
	fail "rita's realm registration does not carry guess_limit=4"
grep "event=realm-deleted .*id_hash=$(hash --realm rita)" "$T/audit" | grep -q ' by_operator=no$' ||
	fail "rita's realm deletion does not say by_operator=no"
grep " id_hash=$(hash mallory)" "$T/audit" | grep -q ' known=no' || fail "mallory's guess is not known=no"
grep "event=deleted .*id_hash=$(hash alice)" "$T/audit" | grep -q ' by_operator=no$' ||
	fail "alice's own deletion does not say by_operator=no"
grep "event=register .*id_hash=$(hash alice)" "$T/audit" | grep -q ' guess_limit=3' ||
	fail "alice's registration does not carry guess_limit=3"
[ "$(hash alice)" != "$(hash bob)" ] || fail "two identifiers have one hash"
for u in alice bob carol mallory yolanda rita; do
	! grep -qw "$u" "$LOG" || fail "the identifier '$u' appears in the log"
done
for f in pw.raw wrong.raw newpw.raw secret.alice secret.bob secret.carol secret.yolanda \
	secret.rita; do
	r=0
	python3 tests/integration/scan-bytes.py "$T/$f" "$LOG" >"$T/scan" 2>&1 || r=$?
	[ "$r" -eq 1 ] || fail "$f: scan-bytes.py exit $r (0: found in the log): $(cat "$T/scan")"
done
! grep -qi "$(head -c 64 "$KEY")" "$LOG" || fail "the audit key appears in the log"
echo "audit: identifiers only as audit-id hashes; no identifier, password or secret in the log"

# three starts: clean, roll forward (the dropped increment), power cut with its penalty
grep 'event=startup ' "$T/audit" | field verdict | tr '\n' ' ' >"$T/verdicts"
[ "$(cat "$T/verdicts")" = "clean roll-forward power-cut " ] ||
	fail "start-up verdicts: $(cat "$T/verdicts")"
grep 'event=startup .*verdict=power-cut' "$T/audit" | grep -q ' penalty=yes' ||
	fail "the power-cut start does not say penalty=yes"
# the penalty charged yolanda's only guess (limit 1): her record is gone, carol's stays
grep 'event=power-cut-penalty ' "$T/audit" | grep -q ' users=1 unclean_boots=[0-9]* records_destroyed=1$' ||
	fail "the penalty record does not say 1 user left and 1 record destroyed: $(grep 'event=power-cut-penalty' "$T/audit")"
grep 'event=startup .*verdict=clean' "$T/audit" | grep -q ' journal_frames=[0-9]* .*tail_bytes=0 users=0' ||
	fail "the first start-up record lacks its figures"
! grep -q "event=register .*id_hash=$(hash carol)" "$T/audit" ||
	fail "carol's registration, never anchored by the run that made it, has a record"
# sequence numbers 1, 2, ... per enclave start; counters never go back within a run
awk '{
	for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	if (f["event"] == "startup") { want = 1; last = 0 }
	if (f["seq"] != want) { print "seq " f["seq"] ", want " want; exit 1 }
	if (f["counter"] + 0 < last) { print "counter " f["counter"] " after " last; exit 1 }
	want++; last = f["counter"] + 0
}' "$T/audit" >"$T/seq" || fail "$(cat "$T/seq")"
echo "audit: start-ups clean, roll-forward, power-cut (penalty recorded); sequence numbers count per start"
# the first enclave's /metrics counted exactly the records its run wrote
run1=$(awk '/event=startup /{n++} n==1' "$T/audit" | wc -l)
sent1=$(sed -n 's/^sealvault_audit_records_total //p' "$T/metrics.1")
[ "$sent1" = "$run1" ] || fail "sealvault_audit_records_total $sent1, but the first run wrote $run1 records"
grep -q '^sealvault_audit_waits_total [0-9]' "$T/metrics.1" || fail "no sealvault_audit_waits_total"
echo "audit: /metrics of the first run: sealvault_audit_records_total $sent1"

# --- 4. the journal: sd_journal_send under JOURNAL_STREAM ---
if [ "$(id -u)" -ne 0 ] ||
	! unshare -m --propagation private sh -c 'mount -t tmpfs tmpfs /run' 2>/dev/null; then
	echo "audit: journal phase SKIPPED: needs root, unshare -m and mount (the unit test test_daemon_audit checks the fields)"
else
	mkdir -p "$T/jbin"
	for b in sealvault-enclave sealvault-broker; do ln -s "$PWD/$B/$b" "$T/jbin/$b"; done
	cat >"$T/jbin/sealvaultd" <<EOF
#!/bin/sh
# the real sealvaultd in a private mount namespace with a stand-in journald socket
exec unshare -m --propagation private sh -c '
	mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal || exit 1
	python3 "$PWD/tests/integration/journal-sink.py" /run/systemd/journal/socket \
		"$T/journal.json" "$T/sink.pid" &
	for i in \$(seq 1 200); do [ -S /run/systemd/journal/socket ] && break; sleep 0.02; done
	JOURNAL_STREAM=\$(stat -L -c %d:%i /proc/self/fd/2) exec "$PWD/$B/sealvaultd" "\$@"' \
	sh "\$@"
EOF
	chmod 0755 "$T/jbin/sealvaultd"
	lines_before=$(wc -l <"$LOG")
	SV_B=$T/jbin
	sv_server_start
	sv register --user dave --password-file "$T/pw" --secret-file "$T/secret.dave"
	expect 0 "register dave (journal phase)"
	rita_list
	svr register --password-file "$T/pw" --secret-file "$T/secret.rita" --max-attempts 4
	expect 0 "rita's realm registration (journal phase)"
	svr recover --password-file "$T/pw" --out "$T/out"
	expect 0 "rita's realm recovery (journal phase)"
	sv_server_stop
	kill "$(cat "$T/sink.pid")" 2>/dev/null || true
	tail -n +"$((lines_before + 1))" "$LOG" >"$T/log.journal-phase"
	! grep -q 'audit: event=' "$T/log.journal-phase" ||
		fail "audit lines on stderr although stderr is the journal's stream"
	python3 - "$T/journal.json" "$(hash dave)" "$(hash --realm rita)" <<'EOF' ||
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert recs, "no datagram reached the journal socket"
assert not any("_BAD" in r for r in recs), recs
ids = {"startup": "d1c46123ae04452d8362b08b70ebb3a4",
       "register": "5902433716dc466bab6e6ab381f18684",
       "realm-register": "7723956f803543719a6ec89fcef92f09",
       "realm-guess": "d051bd47a6c744d29671bc062f265ac2",
       "realm-recovered": "7690d79d3bbe48dca218449ef485dc96"}
by = {}
for r in recs:
    assert r.get("SYSLOG_IDENTIFIER") == "sealvaultd", r
    by.setdefault(r["SEALVAULT_EVENT"], []).append(r)
for ev, mid in ids.items():
    assert ev in by, "no %s record in %s" % (ev, sorted(by))
    assert all(r["MESSAGE_ID"] == mid for r in by[ev]), by[ev]
reg = by["register"][0]
assert reg["PRIORITY"] == "6", reg
assert reg["SEALVAULT_ID_HASH"] == sys.argv[2], reg
assert reg["SEALVAULT_GUESS_LIMIT"].isdigit() and reg["MESSAGE"].startswith("sealvault audit:"), reg
st = by["startup"][0]
assert st["SEALVAULT_VERDICT"] == "clean" and st["PRIORITY"] == "5", st
# rita's realm events: under her realm record's hash, and no /v1 kind for them
for ev in ("realm-register", "realm-guess", "realm-recovered"):
    assert [r["SEALVAULT_ID_HASH"] for r in by[ev]] == [sys.argv[3]], by[ev]
assert "recovered" not in by and "guess" not in by, sorted(by)
assert by["realm-recovered"][0]["MESSAGE"].startswith("sealvault audit: realm recovery:"), by
print("audit: journal: %d records via sd_journal_send (%s), e.g. %s" %
      (len(recs), " ".join(r["SEALVAULT_EVENT"] for r in recs), json.dumps(reg, sort_keys=True)))
EOF
		fail "the journal records are wrong"
fi

echo "audit: ok ($(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
