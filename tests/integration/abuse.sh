#!/bin/bash
# check-abuse (issue 13, items 7 and 8; 1-5 without access tokens, 6-7 with them): what an
# unauthenticated client, or one tenant, can do to other users' recoveries, against a real
# sealvault (sealvaultd, enclave, broker, swtpm, TLS) and the real CLI.
#   1. A flood of well-formed login/starts for unknown identifiers, abandoned after KE2 (2.5 times
#      a 16-slot pending-login table, from 10 source addresses): a real user's recovery still
#      succeeds, because a full table drops unknown identifiers' logins first.
#   2. One address holding unfinished logins is capped (max-pending-logins-per-ip): 429 with
#      Retry-After, counted by reason in /metrics.
#   3. The per-identifier login rate (the default, 5 a minute): the 6th wrong guess in a row is
#      refused 429, the CLI exits 6 and says when to retry, and the refused login charged nothing.
#   4. A burst of attestation requests against a small attestation bucket: some are refused 429,
#      and a recovery running meanwhile succeeds.
#   5. IPv6 (as root only, in a network namespace of this test's own, where the loopback device
#      can carry documentation addresses): two addresses of one /64 share one rate budget, an
#      address of another /64 does not.
#   6. Tokens mode, two tenants (acme, globex), a 16-slot table and so 16 last-guess slots:
#      acme's 16 throw-away identifiers with guess limit 1, each logged in on its last guess
#      and abandoned, get 8 slots (acme's share) and 8 answers 503; globex's user recovers on
#      his last guess meanwhile.
#   7. Tokens mode, the burst: 40 tokenless login/starts are refused 401 and take no pending
#      login; 4 registered users' logins are held; 40 login/starts with valid tokens for unknown
#      identifiers fill the rest of the 16-slot table and push out only each other (28 dropped,
#      the 4 real ones stay); then a real user's tokened recovery with the CLI succeeds.
# Source addresses: 127.0.0.0/8 is all loopback on Linux, so 127.0.0.2 and up are other clients.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}

# As root, run in a private network namespace (lo brought up there): the IPv6 step needs
# addresses on lo that the host must not see. Without root the IPv6 step is skipped.
if [ "$(id -u)" -eq 0 ] && [ -z "${SV_ABUSE_NETNS:-}" ] && unshare -n true 2>/dev/null; then
	exec env SV_ABUSE_NETNS=1 unshare -n "$0" "$@"
fi
if [ -n "${SV_ABUSE_NETNS:-}" ]; then
	ip link set lo up
	for a in 2001:db8:0:1::a 2001:db8:0:1::b 2001:db8:0:2::c; do
		ip -6 addr add "$a/64" dev lo nodad
	done
fi

. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d "${TMPDIR:-/tmp}/sv-abuse.XXXXXX")
chmod 755 "$T"
cleanup() {
	local rc=$?
	sv_server_cleanup
	if [ $rc -ne 0 ] && [ -e "$T/srv/sealvaultd.log" ]; then
		echo "abuse: FAILED; sealvaultd log (tail):" >&2
		tail -n 20 "$T/srv/sealvaultd.log" >&2
	fi
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "abuse: FAIL: $*" >&2
	exit 1
}
say() { echo "abuse: $*"; }

SV=$B/sealvault
FLOOD=$B/tests/integration/abuse-flood
KSF=(--ksf-t 1 --ksf-m 8)
metric() { sv_metrics | awk -v m="$1" '$1 == m { print $2 }'; }
count() { awk -v s="$1" '$1 == s { print $2 }' "$2"; }

mkdir -p "$T/srv"
sv_server_init "$T/srv" "$B" >/dev/null
printf 'pw-%s\n' alice >"$T/alice.pw"
printf 'pw-%s\n' bob >"$T/bob.pw"
printf 'not the password\n' >"$T/wrong.pw"
printf 'the backup key\n' >"$T/secret"

# --- 1 and 2: a small pending-login table, unfinished logins capped at 4 per address ---
SV_DAEMON_ARGS=(--pending-login-max 16 --max-pending-logins-per-ip 4 --rate-limit 1000
	--rate-burst 1000)
sv_server_start
for u in alice bob; do
	"$SV" register --server "$SV_URL" --cacert "$SV_CACERT" "${KSF[@]}" --user "$u" \
		--password-file "$T/$u.pw" --secret-file "$T/secret" --max-attempts 10 >/dev/null ||
		fail "registering $u"
done
"$FLOOD" "$SV_URL" "$SV_CACERT" 127.0.0.2 10 capped >"$T/cap.out" || fail "flood: $(cat "$T/cap.out")"
[ "$(count 200 "$T/cap.out")" = 4 ] && [ "$(count 429 "$T/cap.out")" = 6 ] ||
	fail "10 unfinished logins from one address with a cap of 4: $(tr '\n' ' ' <"$T/cap.out")"
ra=$(count retry-after "$T/cap.out")
[ -n "$ra" ] && [ "$ra" -ge 1 ] && [ "$ra" -le 60 ] || fail "429 without a sane Retry-After: '$ra'"
say "[2] one address, cap 4: $(tr '\n' ' ' <"$T/cap.out")"
for i in $(seq 10 19); do
	"$FLOOD" "$SV_URL" "$SV_CACERT" "127.0.0.$i" 4 "flood$i" >"$T/flood$i.out" ||
		fail "flood from 127.0.0.$i: $(cat "$T/flood$i.out")"
	[ "$(count 200 "$T/flood$i.out")" = 4 ] ||
		fail "unknown identifiers refused while the table could drop older ones: $(tr '\n' ' ' <"$T/flood$i.out")"
done
evicted=$(metric sealvault_vault_evicted_unknown_logins_total)
[ "${evicted:-0}" -ge 24 ] || fail "expected >= 24 unknown logins dropped from the 16-slot table, metrics say '$evicted'"
"$SV" recover --server "$SV_URL" --cacert "$SV_CACERT" "${KSF[@]}" --user alice \
	--password-file "$T/alice.pw" --out "$T/alice.out" 2>"$T/alice.err" ||
	fail "alice's recovery after the flood: $(cat "$T/alice.err")"
cmp -s "$T/alice.out" "$T/secret" || fail "alice recovered the wrong secret"
say "[1] 44 abandoned logins of unknown identifiers against 16 slots ($evicted dropped): alice recovers"
limited=$(sv_metrics | awk '$1 == "sealvault_limited_total{reason=\"pending_logins\"}" { print $2 }')
[ "${limited:-0}" = 6 ] || fail "metrics count $limited pending_logins refusals, want 6"

# --- 3: the per-identifier rate (default 5 a minute, 5 at once) ---
for i in 1 2 3 4 5; do
	set +e
	"$SV" recover --server "$SV_URL" --cacert "$SV_CACERT" "${KSF[@]}" --user bob \
		--password-file "$T/wrong.pw" --out "$T/bob.out" 2>"$T/bob.err"
	rc=$?
	set -e
	[ "$rc" -eq 2 ] || fail "bob's wrong guess $i: exit $rc, want 2: $(cat "$T/bob.err")"
done
starts=$(metric sealvault_vault_login_starts_total)
set +e
"$SV" recover --server "$SV_URL" --cacert "$SV_CACERT" "${KSF[@]}" --user bob \
	--password-file "$T/bob.pw" --out "$T/bob.out" 2>"$T/bob.err"
rc=$?
set -e
[ "$rc" -eq 6 ] || fail "the 6th login of bob within a minute: exit $rc, want 6: $(cat "$T/bob.err")"
grep -q "too many logins for this identifier" "$T/bob.err" && grep -q "retry in [0-9]* s" "$T/bob.err" &&
	grep -q "nothing was charged" "$T/bob.err" || fail "the CLI's message: $(cat "$T/bob.err")"
[ "$(metric sealvault_vault_login_starts_total)" = "$starts" ] || fail "the refused login charged a guess"
code=$(curl -sS -o "$T/body" -D "$T/hdr" -w '%{http_code}' --cacert "$SV_CACERT" \
	-H 'Content-Type: application/octet-stream' --data-binary @/dev/null "$SV_URL/v1/login/start")
[ "$code" = 400 ] || fail "an empty login/start: $code"
"$FLOOD" "$SV_URL" "$SV_CACERT" 127.0.0.3 1 bob --same >"$T/bob429.out" || true
[ "$(count 429 "$T/bob429.out")" = 1 ] || fail "bob's login/start over HTTP: $(tr '\n' ' ' <"$T/bob429.out")"
ra=$(count retry-after "$T/bob429.out")
[ -n "$ra" ] && [ "$ra" -ge 1 ] && [ "$ra" -le 12 ] || fail "Retry-After for bob: '$ra' (one login per 12 s)"
[ "$(metric sealvault_vault_login_rate_limited_total)" = 2 ] || fail "enclave metric: $(metric sealvault_vault_login_rate_limited_total)"
n=$(sv_metrics | awk '$1 == "sealvault_limited_total{reason=\"identifier\"}" { print $2 }')
[ "$n" = 2 ] || fail "broker metric reason=identifier: '$n'"
say "[3] bob: 5 wrong guesses, the 6th login refused (exit 6, '$(grep -o 'retry in [0-9]* s' "$T/bob.err")', Retry-After $ra from another address), nothing charged"
sv_server_stop

# --- 4: the attestation bucket does not starve a recovery ---
SV_DAEMON_ARGS=(--attestation-rate 2 --attestation-burst 2 --rate-limit 1000 --rate-burst 1000)
sv_server_start
: >"$T/att.codes"
burst=()
for j in 1 2 3 4; do
	(for i in $(seq 1 8); do
		curl -sS -o /dev/null -w '%{http_code}\n' --cacert "$SV_CACERT" \
			"$SV_URL/v1/attestation?nonce=00112233445566778899aabbccddeeff" || echo err
	done >>"$T/att.codes") &
	burst+=($!)
done
"$SV" recover --server "$SV_URL" --cacert "$SV_CACERT" "${KSF[@]}" --user alice \
	--password-file "$T/alice.pw" --out "$T/alice2.out" 2>"$T/alice.err" ||
	fail "alice's recovery during the attestation burst: $(cat "$T/alice.err")"
wait "${burst[@]}"
ok=$(grep -c '^200$' "$T/att.codes" || true)
refused=$(grep -c '^429$' "$T/att.codes" || true)
[ "$ok" -ge 1 ] && [ "$refused" -ge 1 ] && [ $((ok + refused)) -eq 32 ] ||
	fail "32 attestation requests: $ok answered, $refused refused, others: $(grep -v '^200$\|^429$' "$T/att.codes" | tr '\n' ' ')"
n=$(sv_metrics | awk '$1 == "sealvault_limited_total{reason=\"attestation\"}" { print $2 }')
[ "$n" = "$refused" ] || fail "broker metric reason=attestation: '$n', want $refused"
code=$(curl -sS -o /dev/null -D "$T/hdr" -w '%{http_code}' --cacert "$SV_CACERT" \
	"$SV_URL/v1/attestation?nonce=00112233445566778899aabbccddeeff" || true)
if [ "$code" = 429 ]; then
	grep -qi '^Retry-After: [1-9]' "$T/hdr" || fail "attestation 429 without Retry-After"
fi
say "[4] 32 attestation requests at 2/s: $ok answered, $refused refused 429; alice recovered meanwhile"
sv_server_stop

# --- 5: IPv6 clients counted by their /64 ---
if [ -z "${SV_ABUSE_NETNS:-}" ]; then
	say "[5] SKIPPED: IPv6 /64 keying needs root (a network namespace for its addresses); the unit test covers the key"
else
	SV_DAEMON_ARGS=(--listen "[::]:0" --rate-limit 1 --rate-burst 3)
	sv_server_start
	v6() { # v6 SOURCE-ADDRESS: one request from it; prints the status
		curl -sS -o /dev/null -w '%{http_code}' --cacert "$SV_CACERT" --interface "$1" \
			--connect-to "127.0.0.1:$SV_PORT:[2001:db8:0:1::a]:$SV_PORT" \
			-H 'Content-Type: application/octet-stream' --data-binary x "$SV_URL/v1/login/start"
	}
	codes="$(v6 2001:db8:0:1::a) $(v6 2001:db8:0:1::a) $(v6 2001:db8:0:1::b) $(v6 2001:db8:0:1::b)"
	other=$(v6 2001:db8:0:2::c)
	[ "$codes" = "400 400 400 429" ] ||
		fail "two addresses of one /64 at burst 3: '$codes', want '400 400 400 429' (400: a 1-byte body)"
	[ "$other" = 400 ] || fail "an address of another /64 was limited too: $other"
	say "[5] ::a, ::a, ::b, ::b of 2001:db8:0:1::/64 at burst 3: $codes; 2001:db8:0:2::c: $other"
	sv_server_stop
fi
# --- 6: tokens mode; one tenant's last-guess logins leave another tenant's their share ---
SV_TENANT=globex sv_tokens_init
GLOBEX_KEY=$SV_TENANT_KEY
SV_TENANT=acme
sv_tokens_init
[ "$(id -u)" -ne 0 ] || chmod -R a+rX "$SV_TENANTS"
SV_DAEMON_ARGS=(--pending-login-max 16 --max-pending-logins-per-ip 1000 --rate-limit 1000
	--rate-burst 1000)
sv_server_start
SV_VAULT_ID=$(sv_vault_id)
mkdir "$T/tok"
acme_tok() { sv_token "$1" >"$T/tok/$1" || fail "a token for $1"; }
globex_tok() {
	SV_TENANT=globex SV_TENANT_KEY=$GLOBEX_KEY sv_token "$1" >"$T/tok/globex-$1" ||
		fail "a globex token for $1"
}
reg() { # reg TOKEN-FILE USER PASSWORD-FILE GUESS-LIMIT
	"$SV" register --server "$SV_URL" --cacert "$SV_CACERT" "${KSF[@]}" --token "$1" \
		--user "$2" --password-file "$3" --secret-file "$T/secret" --max-attempts "$4" \
		>/dev/null 2>"$T/reg.err" || fail "registering $2: $(cat "$T/reg.err")"
}
for i in $(seq 0 15); do
	acme_tok "junk-$i"
	reg "$T/tok/junk-$i" "junk-$i" "$T/wrong.pw" 1
done
globex_tok dave
printf 'pw-dave\n' >"$T/dave.pw"
reg "$T/tok/globex-dave" dave "$T/dave.pw" 1
busy=$(metric sealvault_vault_busy_total)
"$FLOOD" "$SV_URL" "$SV_CACERT" 127.0.0.2 16 junk --token-dir "$T/tok" >"$T/junk.out" ||
	fail "acme's last-guess flood: $(cat "$T/junk.out")"
[ "$(count 200 "$T/junk.out")" = 8 ] && [ "$(count 503 "$T/junk.out")" = 8 ] ||
	fail "16 last-guess logins of one tenant against 16 slots, share 8: $(tr '\n' ' ' <"$T/junk.out")"
[ "$(metric sealvault_vault_busy_total)" = $((busy + 8)) ] || fail "busy_total: $(metric sealvault_vault_busy_total)"
"$SV" recover --server "$SV_URL" --cacert "$SV_CACERT" "${KSF[@]}" --token "$T/tok/globex-dave" \
	--user dave --password-file "$T/dave.pw" --out "$T/dave.out" 2>"$T/dave.err" ||
	fail "globex's last-guess recovery while acme holds its share: $(cat "$T/dave.err")"
cmp -s "$T/dave.out" "$T/secret" || fail "dave recovered the wrong secret"
say "[6] acme: 16 last-guess logins held, $(tr '\n' ' ' <"$T/junk.out")(share 8 of 16); globex's dave recovers on his last guess"

# --- 7: tokens mode; a burst of anonymous and unknown-identifier logins, then a recovery ---
sv_server_restart # an empty pending-login table
printf 'pw-carol\n' >"$T/carol.pw"
acme_tok carol
reg "$T/tok/carol" carol "$T/carol.pw" 10
for i in 0 1 2 3; do
	acme_tok "real-$i"
	reg "$T/tok/real-$i" "real-$i" "$T/wrong.pw" 10
done
for i in $(seq 0 39); do acme_tok "ghost-$i"; done
starts=$(metric sealvault_vault_login_starts_total)
"$FLOOD" "$SV_URL" "$SV_CACERT" 127.0.0.3 40 anon >"$T/anon.out" || fail "anonymous flood: $(cat "$T/anon.out")"
[ "$(count 401 "$T/anon.out")" = 40 ] || fail "40 tokenless login/starts: $(tr '\n' ' ' <"$T/anon.out")"
[ "$(metric sealvault_vault_pending_logins)" = 0 ] && [ "$(metric sealvault_vault_login_starts_total)" = "$starts" ] ||
	fail "tokenless login/starts took slots ($(metric sealvault_vault_pending_logins)) or charged"
"$FLOOD" "$SV_URL" "$SV_CACERT" 127.0.0.4 4 real --token-dir "$T/tok" >"$T/real.out" ||
	fail "registered users' logins: $(cat "$T/real.out")"
[ "$(count 200 "$T/real.out")" = 4 ] || fail "4 registered users' logins: $(tr '\n' ' ' <"$T/real.out")"
"$FLOOD" "$SV_URL" "$SV_CACERT" 127.0.0.5 40 ghost --token-dir "$T/tok" >"$T/ghost.out" ||
	fail "tokened flood: $(cat "$T/ghost.out")"
[ "$(count 200 "$T/ghost.out")" = 40 ] || fail "40 tokened unknown identifiers: $(tr '\n' ' ' <"$T/ghost.out")"
evicted=$(metric sealvault_vault_evicted_unknown_logins_total)
pending=$(metric sealvault_vault_pending_logins)
# 16 slots: 4 real + 12 unknown, so 28 unknown ones dropped and none of the real ones
[ "$evicted" = 28 ] && [ "$pending" = 16 ] || fail "after the burst: $evicted dropped, $pending pending; want 28 and 16"
"$SV" recover --server "$SV_URL" --cacert "$SV_CACERT" "${KSF[@]}" --token "$T/tok/carol" \
	--user carol --password-file "$T/carol.pw" --out "$T/carol.out" 2>"$T/carol.err" ||
	fail "carol's recovery after the burst: $(cat "$T/carol.err")"
cmp -s "$T/carol.out" "$T/secret" || fail "carol recovered the wrong secret"
say "[7] 40 tokenless login/starts: $(tr '\n' ' ' <"$T/anon.out")(no slot taken); 4 real logins held; 40 tokened unknown ones: $evicted dropped, $pending pending; carol recovers"
sv_server_stop
say "ok"
