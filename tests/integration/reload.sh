#!/bin/bash
# check-reload (issue 14, item 1): SIGHUP reloads sealvaultd's configuration and the TLS
# certificate without dropping a connection or a request. Real sealvaultd, enclave and broker
# (under their seccomp filters) on a swtpm, started from a configuration file, with a test CA
# that the clients trust, so that a renewed certificate from the same CA keeps them working.
#   1. mid-load (sealvault-bench --load, CLIENTS clients for SECONDS s, each on one kept-alive
#      TLS connection, plus a loop of fresh connections to /healthz), the certificate and key are
#      replaced by a new pair and sealvaultd gets SIGHUP: no request fails, sealvaultd and both
#      children keep their pids, and new connections get the new certificate (fingerprints
#      compared with openssl s_client) while the load's connections keep theirs;
#   2. a changed state-dir (cannot change at runtime) is refused, by name, while a changed
#      rate-limit in the same file is applied; the vault keeps serving;
#   3. a file that does not parse, a certificate that is not one and a key of another
#      certificate change nothing (the old certificate is still served);
#   4. packaging/certbot/sealvault-deploy-hook, run as certbot runs it (RENEWED_LINEAGE, a
#      fake systemctl on PATH), installs a renewed certificate and the vault serves it;
#   5. a SIGHUP sent to the children as well (systemctl kill -s HUP) stops neither.
# CLIENTS and SECONDS_LOAD (default 30 and 12) size the load; check-asan runs a shorter one.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
CLIENTS=${CLIENTS:-30}
SECONDS_LOAD=${SECONDS_LOAD:-12}
. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d "${TMPDIR:-/tmp}/sv-reload.XXXXXX")
chmod 0755 "$T"
BENCH= LOOP=
cleanup() {
	local rc=$?
	set +e
	[ -n "$BENCH" ] && kill -9 "$BENCH" 2>/dev/null
	[ -n "$LOOP" ] && kill "$LOOP" 2>/dev/null && wait "$LOOP" 2>/dev/null
	if [ $rc -ne 0 ] && [ -e "$T/srv/sealvaultd.log" ]; then
		echo "--- sealvaultd.log (tail)" >&2
		tail -n 25 "$T/srv/sealvaultd.log" >&2
	fi
	sv_server_cleanup
	[ -n "${KEEP:-}" ] && { echo "kept $T" >&2; return; }
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "reload: FAIL: $*" >&2
	exit 1
}
t_start=$(date +%s.%N)

# --- a test CA and certificates for 127.0.0.1 issued by it ---
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=sealvault reload test CA" -keyout "$T/ca.key" -out "$T/ca.pem" \
	>"$T/openssl.log" 2>&1
issue() { # issue NAME: $T/NAME.pem (certificate) and $T/NAME.key, a fresh key
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
		-keyout "$T/$1.key" -out "$T/$1.csr" >>"$T/openssl.log" 2>&1
	printf 'subjectAltName=IP:127.0.0.1\n' >"$T/ext"
	openssl x509 -req -in "$T/$1.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
		-days 2 -extfile "$T/ext" -out "$T/$1.pem" >>"$T/openssl.log" 2>&1
}
fp_of() { openssl x509 -noout -fingerprint -sha256 -in "$1" | sed 's/.*=//'; }
served_fp() { # the certificate a new connection gets
	openssl s_client -connect "127.0.0.1:$SV_PORT" -servername 127.0.0.1 </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//'
}
# installs NAME as the served pair, keeping the files' owner and mode (the broker reads the
# key when it starts; as root it runs as another user)
install_pair() {
	cat "$T/$1.pem" >"$TLS/cert.pem"
	cat "$T/$1.key" >"$TLS/key.pem"
}
log() { cat "$T/srv/sealvaultd.log"; }
count() { grep -c -- "$1" "$T/srv/sealvaultd.log" || true; }
# sends SIGHUP and waits for the Nth outcome line of sealvaultd
hup() {
	local n=$1 i
	kill -HUP "$SV_PID"
	for i in $(seq 1 400); do
		[ "$(count 'sealvaultd: \(reloaded:\|reload refused\|reload failed\)')" -ge "$n" ] && return 0
		sleep 0.05
	done
	fail "no outcome logged for reload $n"
}

issue one
issue two
sv_server_init "$T/srv" "$B" >/dev/null
SV_CACERT=$T/ca.pem
TLS=$T/srv/tls
mkdir -p "$TLS"
cp "$T/one.pem" "$TLS/cert.pem"
cp "$T/one.key" "$TLS/key.pem"
[ "$(id -u)" -eq 0 ] && chown "$SV_BROKER_USER" "$TLS/key.pem"
conf() { # conf STATE-DIR RATE-LIMIT [RATE-BURST]: the configuration file
	cat >"$T/sealvault.conf" <<-CONF
		# check-reload
		state-dir = $1
		tpm = $SWTPM_TCTI
		context = $SV_CONTEXT
		tls-cert = $TLS/cert.pem
		tls-key = $TLS/key.pem
		rate-limit = $2
		rate-burst = ${3:-100}
		max-conns-per-ip = 0
		max-pending-logins-per-ip = 0
		login-rate-per-id = 0
		auth = open
		nv-writes-per-day = 1000000
		nv-writes-burst = 100000
	CONF
}
conf "$T/srv/state" 0
users=()
[ "$(id -u)" -eq 0 ] && users=(--user "$SV_ENCLAVE_USER" --broker-user "$SV_BROKER_USER")
"$B/sealvaultd" --config "$T/sealvault.conf" --listen 127.0.0.1:0 --port-file "$T/srv/port" \
	--libexec-dir "$B" --metrics-listen none "${users[@]}" >>"$T/srv/sealvaultd.log" 2>&1 &
SV_PID=$!
for _ in $(seq 1 500); do
	kill -0 "$SV_PID" 2>/dev/null || fail "sealvaultd exited"
	SV_PORT=$(cat "$T/srv/port" 2>/dev/null || true)
	[ -n "$SV_PORT" ] && curl -fsS --max-time 2 --cacert "$SV_CACERT" \
		"https://127.0.0.1:$SV_PORT/healthz" >/dev/null 2>&1 && break
	sleep 0.02
done
SV_URL=https://127.0.0.1:$SV_PORT
curl -fsS --max-time 2 --cacert "$SV_CACERT" "$SV_URL/healthz" >/dev/null ||
	fail "the vault did not come up"
broker0=$(sv_broker_pid) enclave0=$(sv_enclave_pid)
fp1=$(fp_of "$T/one.pem") fp2=$(fp_of "$T/two.pem")
[ "$(served_fp)" = "$fp1" ] || fail "the first certificate is not served"
grep -q "certificate sha256 $fp1" "$T/srv/sealvaultd.log" ||
	fail "the broker does not log the served certificate's fingerprint"

# --- 1. SIGHUP mid-load with a new certificate ---
echo "reload: $CLIENTS clients for $SECONDS_LOAD s; new certificate and SIGHUP after 4 s"
"$B/sealvault-bench" --url "$SV_URL" --cacert "$SV_CACERT" --context "$SV_CONTEXT" \
	--clients "$CLIENTS" --seconds "$SECONDS_LOAD" --load >"$T/bench.out" 2>&1 &
BENCH=$!
# fresh connections all along: each one a full handshake on whatever context is current
( while [ ! -e "$T/stop" ]; do
	# a generous time limit: this is about handshakes, not about latency under load
	if curl -fsS --max-time 30 --cacert "$SV_CACERT" "$SV_URL/healthz" >/dev/null 2>>"$T/curl.err"; then
		echo ok
	else
		echo fail
	fi
done >"$T/curl.out" ) &
LOOP=$!
sleep 4
install_pair two
hup 1
grep -q "sealvaultd: reloaded: serving certificate sha256 $fp2" "$T/srv/sealvaultd.log" ||
	fail "reload 1 was not applied: $(grep 'sealvaultd: reload' "$T/srv/sealvaultd.log")"
[ "$(served_fp)" = "$fp2" ] || fail "new connections do not get the new certificate"
brc=0
wait "$BENCH" || brc=$?
BENCH=
touch "$T/stop"
wait "$LOOP" || true
LOOP=
grep -E "^(load|ERRORS|  e\.g\.)" "$T/bench.out" | sed 's/^/reload: /'
[ "$brc" -eq 0 ] || fail "the load saw errors (above)"
grep -q "^load: no errors" "$T/bench.out" || fail "the load did not report success"
curl_ok=$(grep -c '^ok$' "$T/curl.out" || true)
curl_bad=$(grep -c '^fail$' "$T/curl.out" || true)
echo "reload: $curl_ok fresh connections around the reload, $curl_bad failed"
[ "$curl_bad" -eq 0 ] || fail "fresh connections failed: $(sort -u "$T/curl.err" | head -3)"
[ "$curl_ok" -ge 5 ] || fail "only $curl_ok fresh connections were made"
kill -0 "$SV_PID" 2>/dev/null || fail "sealvaultd stopped"
[ "$(sv_broker_pid)" = "$broker0" ] && [ "$(sv_enclave_pid)" = "$enclave0" ] ||
	fail "a child was restarted (broker $broker0 -> $(sv_broker_pid), enclave $enclave0 -> $(sv_enclave_pid))"

# --- 2. a setting that cannot change at runtime is refused; the others apply ---
conf "$T/elsewhere" 7 5
hup 2
grep -q "refusing to change state-dir while sealvault runs" "$T/srv/sealvaultd.log" ||
	fail "the changed state-dir was not refused by name"
[ "$(count 'sealvaultd: reloaded: .*rate-limit 7,')" -eq 1 ] ||
	fail "the changed rate-limit was not applied next to the refused state-dir"
grep "refusing to change" "$T/srv/sealvaultd.log" | sed 's/^/reload: log: /'
curl -fsS --max-time 5 --cacert "$SV_CACERT" "$SV_URL/healthz" >/dev/null ||
	fail "the vault does not serve after the refused setting"
[ ! -e "$T/elsewhere" ] || fail "the refused state directory was touched"
# the rate limit of 7/s, burst 5: 50 requests in a row (malformed logins, 400) see 429s
codes=$(for _ in $(seq 1 50); do printf 'url = "%s"\noutput = "/dev/null"\n' "$SV_URL/v1/login/start"; done |
	curl -s --cacert "$SV_CACERT" -K - -H 'Content-Type: application/octet-stream' \
		--data-binary x -w '%{http_code}\n' | sort | uniq -c | tr -s ' \n' ' ')
echo "reload: 50 requests at rate-limit 7, rate-burst 5:$codes"
echo "$codes" | grep -q " 429" || fail "the new rate limit is not in force ($codes)"
conf "$T/srv/state" 0
hup 3

# --- 3. what does not load changes nothing ---
n=3
printf 'this is not a setting\n' >>"$T/sealvault.conf"
n=$((n + 1)) && hup $n
[ "$(count 'sealvaultd: reload refused, nothing changed: .*sealvault.conf:[0-9]*: expected')" -eq 1 ] ||
	fail "a file that does not parse was not refused"
conf "$T/srv/state" 0
printf 'not a certificate\n' >"$TLS/cert.pem"
n=$((n + 1)) && hup $n
[ "$(count 'reload refused by the broker, nothing changed: cannot load the certificate')" -eq 1 ] ||
	fail "a broken certificate was not refused"
cat "$T/one.pem" >"$TLS/cert.pem" # key two with certificate one
n=$((n + 1)) && hup $n
[ "$(count 'reload refused by the broker, nothing changed: the private key does not match')" -eq 1 ] ||
	fail "a key of another certificate was not refused"
rm "$TLS/cert.pem"
n=$((n + 1)) && hup $n
[ "$(count 'reload refused, nothing changed: cannot read the certificate')" -eq 1 ] ||
	fail "a missing certificate was not refused"
[ "$(served_fp)" = "$fp2" ] || fail "a refused reload changed the served certificate"

# --- 4. the certbot deploy hook with a renewed certificate ---
issue three
mkdir -p "$T/le/live/vault.example" "$T/bin"
cp "$T/three.pem" "$T/le/live/vault.example/fullchain.pem"
cp "$T/three.key" "$T/le/live/vault.example/privkey.pem"
cat >"$T/bin/systemctl" <<-FAKE
	#!/bin/sh
	[ "\$*" = "reload sealvault" ] || { echo "fake systemctl: unexpected: \$*" >&2; exit 1; }
	kill -HUP $SV_PID
FAKE
chmod 755 "$T/bin/systemctl"
group=$(id -gn)
[ "$(id -u)" -eq 0 ] && group=$(id -gn "$SV_BROKER_USER")
PATH=$T/bin:$PATH RENEWED_LINEAGE=$T/le/live/vault.example RENEWED_DOMAINS="vault.example" \
	SEALVAULT_DOMAIN=vault.example SEALVAULT_TLS_DIR=$TLS SEALVAULT_TLS_GROUP=$group \
	packaging/certbot/sealvault-deploy-hook >"$T/hook.out" 2>&1 || fail "the deploy hook failed: $(cat "$T/hook.out")"
n=$((n + 1))
for _ in $(seq 1 400); do
	[ "$(count 'sealvaultd: \(reloaded:\|reload refused\|reload failed\)')" -ge "$n" ] && break
	sleep 0.05
done
fp3=$(fp_of "$T/three.pem")
[ "$(served_fp)" = "$fp3" ] || fail "the certificate installed by the deploy hook is not served"
[ "$(stat -c %a "$TLS/key.pem")" = 640 ] || fail "the deploy hook left the key mode $(stat -c %a "$TLS/key.pem")"
# another lineage of the same host is left alone
PATH=$T/bin:$PATH RENEWED_LINEAGE=/nonexistent RENEWED_DOMAINS="other.example" \
	SEALVAULT_DOMAIN=vault.example packaging/certbot/sealvault-deploy-hook ||
	fail "the deploy hook did not skip another lineage"

# a SIGHUP that reaches the children too (systemctl kill -s HUP) stops neither
kill -HUP "$broker0" "$enclave0"
sleep 0.5
curl -fsS --max-time 10 --cacert "$SV_CACERT" "$SV_URL/healthz" >/dev/null ||
	fail "the vault does not serve after SIGHUP to its children"
kill -0 "$SV_PID" 2>/dev/null || fail "sealvaultd stopped"
[ "$(sv_broker_pid)" = "$broker0" ] && [ "$(sv_enclave_pid)" = "$enclave0" ] ||
	fail "a child was restarted"
grep -q "SIGSYS\|seccomp" "$T/srv/sealvaultd.log" && fail "a process hit its seccomp filter"
echo "reload: ok: $n reloads, served certificates $fp1 -> $fp2 -> $fp3 under load without an" \
	"error, refusals logged; $(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s"
