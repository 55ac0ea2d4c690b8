#!/bin/bash
# The sealvault CLI's argument and input handling, without a server: every refusal exits 1 with
# a message naming the problem, before any network traffic (the server URL points at a closed
# port, so reaching the network would give a different message).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fail() { echo "cli-args: FAIL: $*" >&2; exit 1; }

# check RC TEXT CMD...: runs CMD, wants exit RC and TEXT in its output (stdout + stderr).
check() {
	local want=$1 text=$2 rc
	shift 2
	set +e
	"$@" >"$tmp/out" 2>&1 </dev/null
	rc=$?
	set -e
	n=$((n + 1))
	[ "$rc" -eq "$want" ] || fail "exit $rc, want $want: $* -> $(cat "$tmp/out")"
	grep -qF -- "$text" "$tmp/out" || fail "no '$text' in the output of: $* -> $(cat "$tmp/out")"
}

url=(--server https://127.0.0.1:9 --cacert /dev/null)
printf 'pw\n' >"$tmp/pw"
: >"$tmp/empty"
head -c 462 /dev/zero >"$tmp/max"
head -c 463 /dev/zero >"$tmp/big"

check 0 "usage:" "$SV" --help
check 0 "sealvault 0.4.0" "$SV" --version
check 1 "exactly one command" "$SV"
check 1 "passwords never go on the command line" "$SV" recover "${url[@]}" --user a --out x hunter2
check 1 "unknown option '--password'" "$SV" recover "${url[@]}" --user a --password hunter2
check 1 "unknown option '--pass'" "$SV" recover "${url[@]}" --user a --out x --pass=hunter2
check 1 "invalid option" "$SV" recover "${url[@]}" --user a --out x -p hunter2
check 1 "unknown command 'frobnicate'" "$SV" frobnicate "${url[@]}" --user a
check 1 "needs --server" "$SV" recover --user a --out x
check 1 "needs --user" "$SV" recover --server https://127.0.0.1:9 --out x
check 1 "needs --secret-file" "$SV" register "${url[@]}" --user a
check 1 "needs --out" "$SV" recover "${url[@]}" --user a
check 1 "must start with https://" "$SV" recover --server http://127.0.0.1:9 --user a --out x \
	--password-file "$tmp/pw"
for bad in 0 256 -1 3x ''; do
	check 1 "--max-attempts must be a number from 1 to 255" "$SV" register "${url[@]}" \
		--user a --secret-file "$tmp/max" --password-file "$tmp/pw" --max-attempts "$bad"
done
check 1 "--ksf-m must be a number from 8" "$SV" recover "${url[@]}" --user a --out x --ksf-m 7
check 1 "--ksf-t must be a number from 1" "$SV" recover "${url[@]}" --user a --out x --ksf-t 0
# --token FILE: a file, never the token itself; nothing is sent when it cannot be read
check 1 "cannot open token file" "$SV" recover "${url[@]}" --user a --out x \
	--password-file "$tmp/pw" --token eyJhbGciOiJFZERTQSJ9.e30.c2ln
check 1 "holds no access token" "$SV" recover "${url[@]}" --user a --out x \
	--password-file "$tmp/pw" --token "$tmp/empty"
head -c 4097 /dev/zero | tr '\0' a >"$tmp/longtoken"
check 1 "longer than 4096 characters" "$SV" recover "${url[@]}" --user a --out x \
	--password-file "$tmp/pw" --token "$tmp/longtoken"
printf 'not#a!token\n' >"$tmp/badtoken"
check 1 "the access token is not a JWT" "$SV" recover "${url[@]}" --user a --out x \
	--password-file "$tmp/pw" --token "$tmp/badtoken"
check 1 "drop --token" "$SV" verify "${url[@]}" --expect "$tmp/empty" --token "$tmp/pw"
check 1 "cannot open password file" "$SV" recover "${url[@]}" --user a --out x \
	--password-file "$tmp/nonexistent"
check 1 "is empty or unreadable" "$SV" recover "${url[@]}" --user a --out x \
	--password-file "$tmp/empty"
check 1 "is empty or unreadable" "$SV" recover "${url[@]}" --user a --out x --password-file -
check 1 "larger than 462 bytes" "$SV" register "${url[@]}" --user a --secret-file "$tmp/big" \
	--password-file "$tmp/pw"
check 1 "is empty; nothing to store" "$SV" register "${url[@]}" --user a \
	--secret-file "$tmp/empty" --password-file "$tmp/pw"
check 1 "drop --password-file" "$SV" register "${url[@]}" --user a --secret-file "$tmp/max" \
	--password-file "$tmp/pw" --generate-code
check 1 "drop --new-password-file" "$SV" change-password "${url[@]}" --user a \
	--password-file "$tmp/pw" --new-password-file "$tmp/pw" --generate-code
check 1 "the user id must be 1 to 255 bytes" "$SV" recover "${url[@]}" --out x \
	--password-file "$tmp/pw" --user "$(head -c 256 /dev/zero | tr '\0' u)"
# No password option and no terminal (setsid: no controlling tty): say how to give one.
check 1 "no terminal to ask for the password" setsid -w "$SV" recover "${url[@]}" --user a --out x
# Attestation options (sealvault verify, --expect on the other commands).
printf '{"version": 1, "build_hash": "00"}' >"$tmp/bad-expect.json"
z=0000000000000000000000000000000000000000000000000000000000000000
printf '{"version":1,"build_hash":"%s","binaries":{"sealvaultd":"%s","sealvault-enclave":"%s",
"sealvault-broker":"%s"},"policy_hash":"%s","boot_pcrs":[0,1,2,3,4,5,6,7]}' \
	$z $z $z $z $z >"$tmp/expect.json"
printf 'not a certificate\n' >"$tmp/ca.pem"
check 1 "verify needs --expect FILE" "$SV" verify "${url[@]}"
check 1 "needs --nonce HEX" "$SV" verify "${url[@]}" --expect "$tmp/expect.json" \
	--evidence "$tmp/empty"
check 1 "needs --evidence FILE with --nonce" "$SV" verify "${url[@]}" \
	--expect "$tmp/expect.json" --nonce 0011223344556677
check 1 "--evidence and --nonce are options of verify only" "$SV" recover "${url[@]}" --user a \
	--out x --evidence "$tmp/empty" --nonce 0011223344556677
check 1 "--tpm-ca is used only with --expect FILE" "$SV" recover "${url[@]}" --user a --out x \
	--tpm-ca "$tmp/ca.pem"
check 1 "cannot open $tmp/nonexistent" "$SV" verify "${url[@]}" --expect "$tmp/nonexistent"
check 1 "member \"build_hash\": not hex of the right length" "$SV" recover "${url[@]}" --user a \
	--out x --password-file "$tmp/pw" --expect "$tmp/bad-expect.json"
check 1 "--tpm-ca: $tmp/ca.pem: not a PEM file with a certificate" "$SV" verify "${url[@]}" \
	--expect "$tmp/expect.json" --tpm-ca "$tmp/ca.pem"
check 1 "--nonce must be 8 to 64 bytes in hex" "$SV" verify "${url[@]}" \
	--expect "$tmp/expect.json" --evidence "$tmp/max" --nonce 00112233
check 1 "evidence file $tmp/empty is empty" "$SV" verify "${url[@]}" \
	--expect "$tmp/expect.json" --evidence "$tmp/empty" --nonce 0011223344556677
check 1 "the attestation evidence is malformed: not valid JSON" "$SV" verify "${url[@]}" \
	--expect "$tmp/expect.json" --evidence "$tmp/max" --nonce 0011223344556677
# With --expect the attestation request is the first network traffic.
check 1 "/v1/attestation?nonce=" "$SV" register "${url[@]}" --user a --secret-file "$tmp/max" \
	--password-file "$tmp/pw" --expect "$tmp/expect.json"
check 1 "check --server, that sealvaultd runs" "$SV" verify "${url[@]}" \
	--expect "$tmp/expect.json"
# Everything valid: only now is the network tried, and its failure says what to check.
check 1 "check --server, that sealvaultd runs" "$SV" register "${url[@]}" --user a \
	--secret-file "$tmp/max" --password-file "$tmp/pw" --ksf-t 1 --ksf-m 8
# --realms FILE (threshold realms): the list's errors name the key or entry; refusals before any
# traffic; then the closed ports are reached and named per realm.
id1=0123456789abcdef0123456789abcdef
id2=fedcba9876543210fedcba9876543210
printf '{"threshold": 2, "realms": [%s, %s]}\n' \
	"{\"name\": \"east\", \"url\": \"https://127.0.0.1:9\", \"ca\": \"/dev/null\", \"id\": \"$id1\"}" \
	"{\"name\": \"west\", \"url\": \"https://127.0.0.1:9\", \"ca\": \"/dev/null\", \"id\": \"$id2\"}" \
	>"$tmp/realms.json"
printf '{"realms": [{"url": "https://a", "ca": "c", "id": "%s", "tokn": "t"}]}' "$id1" \
	>"$tmp/badkey.json"
rl=(--realms "$tmp/realms.json")
check 1 'realms[1]: unknown key "tokn"' "$SV" recover --realms "$tmp/badkey.json" --user a \
	--out x --password-file "$tmp/pw"
check 1 "none.json: No such file" "$SV" delete --realms "$tmp/none.json" --user a
check 1 "--server does not go with --realms" "$SV" recover "${rl[@]}" "${url[@]}" --user a --out x
check 1 "--realms works with register, recover and delete" "$SV" verify "${rl[@]}"
check 1 "--threshold and --min-realms need --realms FILE" "$SV" recover "${url[@]}" --user a \
	--out x --threshold 2
check 1 "--threshold: the threshold must be 1 to 2" "$SV" recover "${rl[@]}" --user a --out x \
	--threshold 3 --password-file "$tmp/pw"
check 1 "--min-realms must be 2 to 2" "$SV" register "${rl[@]}" --user a \
	--secret-file "$tmp/max" --password-file "$tmp/pw" --min-realms 1
check 1 "--max-attempts 1 cannot be met with 2 realms and threshold 1" "$SV" register "${rl[@]}" \
	--threshold 1 --user a --secret-file "$tmp/max" --password-file "$tmp/pw" --max-attempts 1
check 1 "delete --realms needs no password" "$SV" delete "${rl[@]}" --user a \
	--password-file "$tmp/pw"
check 1 "is larger than 256 bytes, the most realms store" "$SV" register "${rl[@]}" --user a \
	--secret-file "$tmp/max" --password-file "$tmp/pw"
head -c 32 /dev/zero >"$tmp/key32"
check 1 "registration needs 2 realms, only 0 of 2 answered; missing: east (" "$SV" register \
	"${rl[@]}" --user a --secret-file "$tmp/key32" --password-file "$tmp/pw" --ksf-t 1 --ksf-m 8
check 1 "recovery needs 2 realms, only 0 answered; missing: east (no answer: " "$SV" recover \
	"${rl[@]}" --user a --out x --password-file "$tmp/pw"
check 1 "deleted at 0 of 2 realms; not deleted at: east (" "$SV" delete "${rl[@]}" --user a
echo "cli-args: ok ($n cases)"
