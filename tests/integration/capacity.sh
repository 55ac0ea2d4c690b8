#!/bin/bash
# check-capacity (issue 16): a vault at its max-users refuses new registrations instead of
# stopping. Real sealvaultd (enclave + broker under their filters) on a private swtpm, the real
# sealvault CLI over TLS, max-users 5:
#   1. five users register; the sixth is refused with HTTP 507, exit 7 and a message that says
#      the vault is full, and nothing about it is stored (it cannot log in afterwards);
#   2. while full: every user still recovers, a password change works, an existing user still
#      gets "already registered"; /metrics shows max-users 5 (configured) and the refusals;
#   3. a deletion frees a place: the sixth user now registers, a seventh is refused;
#   4. after a restart every user is still there with their secret and the limit still holds;
#   5. without max-users the limit is derived from free memory: the start line and /metrics
#      say so, and it is at least the records held.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d "${TMPDIR:-/tmp}/sv-capacity.XXXXXX")
chmod 0755 "$T"
cleanup() {
	local rc=$?
	set +e
	if [ $rc -ne 0 ] && [ -e "$T/srv/sealvaultd.log" ]; then
		echo "--- sealvaultd.log (tail)" >&2
		tail -n 25 "$T/srv/sealvaultd.log" >&2
	fi
	sv_server_cleanup
	[ -n "${KEEP:-}" ] && { echo "kept $T" >&2; return; }
	rm -rf "$T"
}
trap cleanup EXIT
step=0
fail() {
	echo "capacity: FAIL (step $step): $*" >&2
	exit 1
}
say() { step=$((step + 1)); echo "capacity: [$step] $*"; }

# sv CMD ARGS...: runs the CLI (a cheap KSF: this test is about the vault); sets rc and err
sv() {
	set +e
	"$SV" "$1" --server "$SV_URL" --cacert "$SV_CACERT" --ksf-t 1 --ksf-m 8 "${@:2}" \
		2>"$T/stderr"
	rc=$?
	set -e
	err=$(cat "$T/stderr")
}
expect() { # expect RC [TEXT]
	[ "$rc" -eq "$1" ] || fail "exit $rc, want $1; stderr: $err"
	[ -z "${2:-}" ] || grep -qF -- "$2" <<<"$err" || fail "stderr lacks '$2': $err"
}
metric() { # metric NAME-WITH-LABELS: its value
	sv_metrics | awk -v n="$1" '$1 == n { print $2 }'
}
register() { # register USER: with USER's own secret
	head -c 32 /dev/urandom >"$T/secret.$1"
	sv register --user "$1" --password-file "$T/pw" --secret-file "$T/secret.$1"
}
recovers() { # recovers USER: recover gives back USER's secret byte for byte
	rm -f "$T/out"
	sv recover --user "$1" --password-file "${2:-$T/pw}" --out "$T/out"
	expect 0
	cmp -s "$T/out" "$T/secret.$1" || fail "$1 recovered another secret"
}

printf 'correct horse battery staple\n' >"$T/pw"
printf 'a new password\n' >"$T/newpw"
sv_server_init "$T/srv" "$B" >/dev/null
SV_DAEMON_ARGS=(--max-users 5 --nv-writes-per-day 1000000 --nv-writes-burst 100000)
sv_server_start
grep -q "max-users 5 (configured); 0 records held" "$T/srv/sealvaultd.log" ||
	fail "no start line for max-users 5"

say "five users register, the sixth gets 507 and exit 7"
for u in u1 u2 u3 u4 u5; do
	register "$u"
	expect 0 "registered"
done
register u6
expect 7 "the vault is full"
grep -qF "HTTP 507" <<<"$err" || fail "no HTTP 507 in: $err"
grep -qF "nothing was stored" <<<"$err" || fail "the message does not say nothing changed: $err"
sv recover --user u6 --password-file "$T/pw" --out "$T/out"
expect 2 # unknown: nothing of u6 was stored
[ "$(metric sealvault_users)" = 5 ] || fail "sealvault_users is $(metric sealvault_users), want 5"

say "while full: recoveries, a password change, a conflict; /metrics"
for u in u1 u2 u3 u4 u5; do recovers "$u"; done
sv change-password --user u2 --password-file "$T/pw" --new-password-file "$T/newpw"
expect 0
recovers u2 "$T/newpw"
head -c 32 /dev/urandom >"$T/other"
sv register --user u3 --password-file "$T/pw" --secret-file "$T/other"
expect 1 "already registered"
[ "$(metric 'sealvault_max_users{source="configured"}')" = 5 ] ||
	fail "/metrics lacks sealvault_max_users{source=\"configured\"} 5"
[ "$(metric sealvault_vault_full_total)" = 1 ] ||
	fail "sealvault_vault_full_total is $(metric sealvault_vault_full_total), want 1"
[ "$(metric 'sealvault_http_requests_total{endpoint="register_start",code="507"}')" = 1 ] ||
	fail "the broker did not count one 507 for register_start"

say "a deletion frees a place"
sv delete --user u4 --password-file "$T/pw"
expect 0 "deleted"
register u6
expect 0 "registered"
register u7
expect 7 "the vault is full"

say "a restart loses nothing and the limit holds"
sv_server_restart
grep -q "max-users 5 (configured); 5 records held" "$T/srv/sealvaultd.log" ||
	fail "no start line for max-users 5 with 5 records"
grep -q "warning: the vault is full" "$T/srv/sealvaultd.log" || fail "no full warning at start"
for u in u1 u3 u5 u6; do recovers "$u"; done
recovers u2 "$T/newpw"
sv recover --user u4 --password-file "$T/pw" --out "$T/out"
expect 2 # deleted stays deleted
register u7
expect 7 "the vault is full"

say "without max-users the limit is derived from free memory"
SV_DAEMON_ARGS=(--nv-writes-per-day 1000000 --nv-writes-burst 100000)
sv_server_restart
line=$(grep "max-users .* (derived from" "$T/srv/sealvaultd.log" | tail -n 1)
[ -n "$line" ] || fail "no derived max-users line at start"
src=$(sv_metrics | sed -n 's/^sealvault_max_users{source="\([a-z]*\)"} \([0-9]*\)$/\1 \2/p')
case "$src" in
"memavailable "* | "cgroup "*) ;;
*) fail "/metrics max-users source is '$src', want memavailable or cgroup" ;;
esac
[ "${src#* }" -ge 5 ] || fail "derived max-users ${src#* } is below the 5 records held"
grep -qF "max-users ${src#* } (derived from ${src%% *}" <<<"$line" ||
	fail "start line '$line' and /metrics '$src' differ"
register u7
expect 0 "registered"
recovers u7
echo "capacity: OK (${src%% *} max-users ${src#* })"
