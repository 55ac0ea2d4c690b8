#!/bin/bash
# check-tpm-throttle (issue 12): a TPM that throttles NV writes for minutes. Real sealvaultd,
# enclave, broker and CLI on a real swtpm behind tests/lib/tpm-proxy.py, which reports
# TPM_PT_NV_WRITE_RECOVERY 500 ms and then answers every NV-writing command TPM_RC_NV_RATE for
# THROTTLE_S seconds (default 180, the issue's three minutes).
#   * The first recovery's guess is journalled, its increment is retried for the 60 s budget (one
#     try per 500 ms: the TPM's recovery time), then owed: the client gets 503, never KE2.
#   * While the increment is owed: /healthz answers 503, requests that change state get 503 at
#     once, /metrics answers and shows sealvault_tpm_throttled 1.
#   * When the TPM accepts NV writes again the vault serves by itself: the enclave was started
#     once (no crash loop: sealvaultd's log), every user registered before recovers
#     byte-identical, a new registration works, and /metrics and the log tell the story.
# The test sleeps while it waits (a probe every 5 s): it costs almost no CPU for its THROTTLE_S
# seconds, so it can run next to other steps.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
THROTTLE_S=${THROTTLE_S:-180}
USERS=3
. tests/lib/swtpm.sh
. tests/lib/tpmproxy.sh
. tests/lib/sealvaultd.sh

T=$(mktemp -d /tmp/sv-tpm-throttle.XXXXXX)
chmod 0755 "$T"
BG=
cleanup() {
	set +e
	[ -n "$BG" ] && kill "$BG" 2>/dev/null && wait "$BG" 2>/dev/null
	sv_server_stop
	tpmproxy_cleanup
	swtpm_cleanup
	[ -n "${KEEP:-}" ] && { echo "kept $T" >&2; return; }
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "tpm-throttle: FAIL: $*" >&2
	echo "--- sealvaultd.log (tail)" >&2
	tail -n 25 "$T/srv/sealvaultd.log" >&2 || true
	exit 1
}

KSF=(--ksf-t 1 --ksf-m 8)
printf 'correct horse battery staple\n' >"$T/pw"
sv() { # sv CMD ARGS...: the CLI against the server; sets rc and err
	set +e
	"$SV" "$1" --server "$SV_URL" --cacert "$SV_CACERT" --timeout 120 "${KSF[@]}" "${@:2}" \
		2>"$T/stderr"
	rc=$?
	set -e
	err=$(cat "$T/stderr")
}
healthz() { # prints the HTTP status of GET /healthz (000: no answer)
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$SV_CACERT" \
		"$SV_URL/healthz" || true
}
metric() { # metric NAME: its value in a fresh /metrics
	sv_metrics --max-time 10 |
		awk -v n="$1" '$1 == n { print $2 }'
}
now() { date +%s; }

t_start=$(now)
sv_server_init "$T/srv" "$B"
tpmproxy_start "$T/px" --cmd-delay-ms 1 --nv-write-recovery-ms 500
CTL=$TPMPROXY_CTL
SWTPM_TCTI=$TPMPROXY_TCTI # the vault reaches the TPM through the proxy only
sv_server_start
[ "$(metric sealvault_tpm_nv_write_recovery_seconds)" = 0.500 ] ||
	fail "the enclave did not read TPM_PT_NV_WRITE_RECOVERY"
for k in $(seq 1 $USERS); do
	head -c 32 /dev/urandom >"$T/u$k"
	sv register --user "u$k" --password-file "$T/pw" --secret-file "$T/u$k"
	[ "$rc" -eq 0 ] || fail "register u$k: exit $rc: $err"
done

echo "tpm-throttle: the TPM answers NV_RATE to every NV write for $THROTTLE_S s"
tpmproxy_throttle "$CTL" "$THROTTLE_S"
t_throttle=$(now)
# this guess waits for its increment for the whole retry budget, then is answered 503
"$SV" recover --server "$SV_URL" --cacert "$SV_CACERT" --timeout 120 "${KSF[@]}" --user u1 \
	--password-file "$T/pw" --out "$T/out1" >/dev/null 2>"$T/bg.err" &
BG=$!
set +e
wait "$BG"
brc=$?
set -e
BG=
t_owed=$(now)
[ "$brc" -ne 0 ] && [ ! -e "$T/out1" ] || fail "a recovery succeeded while the TPM threw NV_RATE"
grep -q "busy" "$T/bg.err" || fail "the first recovery did not get 503: $(cat "$T/bg.err")"
[ $((t_owed - t_throttle)) -ge 55 ] || fail "503 after $((t_owed - t_throttle)) s, before the 60 s budget"
grep -q "for the whole 60 s retry budget; answering 503" "$T/srv/sealvaultd.log" ||
	fail "no log line when the throttling began"

if [ $((t_owed - t_throttle + 15)) -lt "$THROTTLE_S" ]; then
	# owed: what changes state is refused at once, health says 503, metrics answer
	[ "$(healthz)" = 503 ] || fail "/healthz is not 503 while throttled"
	t0=$(now)
	sv recover --user u2 --password-file "$T/pw" --out "$T/out2"
	[ "$rc" -eq 6 ] && grep -q "busy" <<<"$err" || fail "recover while throttled: exit $rc: $err"
	sv register --user late --password-file "$T/pw" --secret-file "$T/u1"
	[ "$rc" -eq 6 ] && grep -q "busy" <<<"$err" || fail "register while throttled: exit $rc: $err"
	[ $(($(now) - t0)) -le 10 ] || fail "503s while throttled took $(($(now) - t0)) s"
	[ "$(metric sealvault_tpm_throttled)" = 1 ] || fail "sealvault_tpm_throttled is not 1"
fi

# wait, nearly idle, until the vault serves again by itself
deadline=$((t_throttle + THROTTLE_S + 60))
while [ "$(healthz)" != 200 ]; do
	[ "$(now)" -lt "$deadline" ] || fail "the vault did not recover within 60 s of the TPM"
	kill -0 "$SV_PID" 2>/dev/null || fail "sealvaultd exited"
	sleep 5
done
t_back=$(now)
[ $((t_back - t_throttle)) -ge $((THROTTLE_S - 1)) ] ||
	fail "healthy after $((t_back - t_throttle)) s, while the TPM still throttled"
echo "tpm-throttle: serving again $((t_back - t_throttle)) s after the throttling began"

# no crash loop: one enclave start; everyone recovers; new work goes through
starts=$(grep -c "sealvaultd: started sealvault-enclave" "$T/srv/sealvaultd.log" || true)
[ "$starts" -eq 1 ] || fail "the enclave was started $starts times"
grep -q "the TPM accepts NV writes again after" "$T/srv/sealvaultd.log" ||
	fail "no log line when the throttling ended"
for k in $(seq 1 $USERS); do
	rm -f "$T/out"
	sv recover --user "u$k" --password-file "$T/pw" --out "$T/out"
	[ "$rc" -eq 0 ] && cmp -s "$T/out" "$T/u$k" || fail "u$k does not recover byte-identical: $err"
done
head -c 32 /dev/urandom >"$T/n"
sv register --user after --password-file "$T/pw" --secret-file "$T/n"
[ "$rc" -eq 0 ] || fail "register after the throttling: exit $rc: $err"
sv recover --user after --password-file "$T/pw" --out "$T/out"
[ "$rc" -eq 0 ] && cmp -s "$T/out" "$T/n" || fail "the new user does not recover: $err"

[ "$(metric sealvault_tpm_throttled)" = 0 ] || fail "sealvault_tpm_throttled is not 0"
awk -v v="$(metric sealvault_tpm_throttled_seconds_total)" -v m=$((THROTTLE_S - 75)) \
	'BEGIN { exit !(v >= m) }' || fail "throttled seconds: $(metric sealvault_tpm_throttled_seconds_total)"
[ "$(metric sealvault_tpm_retries_total)" -ge 100 ] || fail "retries: $(metric sealvault_tpm_retries_total)"
[ "$(metric sealvault_tpm_retry_budget_exhausted_total)" -ge 1 ] || fail "no exhausted budget counted"
[ "$(metric sealvault_tpm_throttled_replies_total)" -ge 1 ] || fail "no throttled replies counted"
[ "$(metric sealvault_enclave_restarts_total)" = 0 ] || fail "restarts counted"
echo "tpm-throttle: ok: one enclave start, $USERS users recover, $(metric sealvault_tpm_retries_total)" \
	"retries, $(metric sealvault_tpm_throttled_replies_total) answered 503, $(($(now) - t_start)) s"
