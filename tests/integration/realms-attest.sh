#!/bin/bash
# check-realms-attest: attested threshold realms (docs/realms.md, "The realm list"; the checks of
# docs/attestation.md), end to end on real processes. Three realms as in check-realms
# (tests/lib/realms.sh), but each on a swtpm with an EK certificate from one private test CA
# (swtpm-localca), PCRs 0-7 and 10 extended from synthetic boot and IMA logs
# (tests/attest/synthlog.py) that its sealvaultd serves, and an expect file per realm
# (`sealvault-admin expect`: boot PCR values, tenants, allow-list, the realm's own
# server_public_key pinned). The realm list gives each realm its "expect" file; the TPM CA comes
# from --tpm-ca (for every realm) or from the expect file's own tpm_ca.
#   a. register and recover with every realm attested: exit 0, the secret byte for byte, and at
#      every realm the broker counted the two attestation requests of one verification
#      (GET /v1/attestation, POST /v1/attestation/activate) per operation;
#   b. east's "expect" swapped for north's (another vault's server key): recovery names east
#      once ("realm east: failed attestation: server-key: ..."), sends east nothing but the
#      two attestation requests, and recovers from north and west (t = 2); registering a new
#      user on all three realms refuses with exit 4, sends no /v2/realm/ request anywhere (and
#      east nothing but its attestation) and registers nothing anywhere;
#   c. east's own expect file again, but the list's "id" for east another vault's: east passes
#      every check yet is left out ("the attested vault is not the id the realm list gives");
#      recovery from north and west;
#   d. the TPM CA inside each expect file (tpm_ca) instead of --tpm-ca: recovery works.
# Every step prints one line with the figures it saw. About 10-15 s on the 2-core build box
# (mostly the setup: three EK-certified swtpms, logs, `sealvault-admin init`).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh
. tests/lib/realms.sh
KSF=(--ksf-t 1 --ksf-m 8)
RL_NAME=(- east north west)
RL_B=$B
RL_T=$(mktemp -d "${TMPDIR:-/tmp}/sv-realms-attest.XXXXXX")
RL_EK_CA=$RL_T/ca
T=$RL_T
chmod 0755 "$T"
cleanup() {
	local rc=$? i
	set +e
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
	echo "realms-attest: FAIL (step $step): $*" >&2
	exit 1
}
ts=$(date +%s)
say() {
	echo "realms-attest: [$step] $* ($(($(date +%s) - ts)) s)"
	ts=$(date +%s)
}

# sv CMD USER ARGS...: the CLI with USER's realm list (RL_EXPECT as it is now); sets rc and err.
sv() {
	local cmd=$1 user=$2 list
	shift 2
	list=$(realms_list "$user") || fail "no realm list for $user"
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
# count: N_ATT[i] (attestation requests), N_RLM[i] (/v2/realm/* requests) and N_ANY[i] (every
# request but attestation, /healthz and /metrics) that realm i's broker answered, any status,
# from its own /metrics.
count() {
	local i out
	for i in 1 2 3; do
		out=$(curl -fsS --max-time 30 --unix-socket "${RL_DIR[i]}/metrics.sock" \
			http://localhost/metrics) || fail "no metrics from ${RL_NAME[i]}"
		N_ATT[i]=$(awk '/^sealvault_http_requests_total\{endpoint="attestation(_activate)?"/ \
			{ s += $NF } END { print s + 0 }' <<<"$out")
		N_RLM[i]=$(awk '/^sealvault_http_requests_total\{endpoint="realm_/ { s += $NF }
			END { print s + 0 }' <<<"$out")
		N_ANY[i]=$(awk '/^sealvault_http_requests_total\{/ &&
			!/endpoint="(attestation(_activate)?|healthz|metrics)"/ { s += $NF }
			END { print s + 0 }' <<<"$out")
	done
}
declare -a N_ATT N_RLM N_ANY A0 R0 Y0
mark() {
	local i
	count
	for i in 1 2 3; do
		A0[i]=${N_ATT[i]}
		R0[i]=${N_RLM[i]}
		Y0[i]=${N_ANY[i]}
	done
}
# attested K: every realm answered exactly K * 2 attestation requests since mark; sets DA
attested() {
	local i
	count
	DA=
	for i in 1 2 3; do
		DA+="$((N_ATT[i] - A0[i])) "
		[ $((N_ATT[i] - A0[i])) = $(($1 * 2)) ] ||
			fail "${RL_NAME[i]} answered $((N_ATT[i] - A0[i])) attestation requests, want $(($1 * 2))"
	done
	DA=${DA% }
}

printf 'correct horse battery staple\n' >"$T/pw"
t0=$(date +%s)
realms_tenant || fail "no tenant"
for i in 1 2 3; do realm_init "$i" || fail "${RL_NAME[i]} did not start"; done
keys=$(python3 - "$T"/{east,north,west}/expect.json <<-'PY'
	import json, sys
	e = [json.load(open(p)) for p in sys.argv[1:]]
	k = [x["server_public_key"] for x in e]
	assert len(set(k)) == 3, "two realms have one server key"
	assert all("tpm_ca" not in x for x in e), "a TPM CA inside an expect file"
	for x in e:
	    x.pop("server_public_key")
	assert e[0] == e[1] == e[2], "the expect files differ in more than the server key"
	print(" ".join(x[:8] + ".." for x in k))
PY
) || fail "the expect files are not what tests/lib/realms.sh promises"
say "3 realms on EK-certified swtpms (one test CA), expect files pinning server keys $keys"

# --- a. attested register and recover ------------------------------------------------------
step=a
for i in 1 2 3; do RL_EXPECT[i]=${RL_NAME[i]}/expect.json; done
head -c 32 /dev/urandom >"$T/secret"
mark
sv register alice --password-file "$T/pw" --secret-file "$T/secret" --tpm-ca "$RL_TPM_CA"
expect 0 "sealvault: registered at 3 of 3 realms"
! grep -q warning <<<"$err" || fail "a warning at an attested registration: $err"
attested 1
da_reg=$DA
mark
sv recover alice --password-file "$T/pw" --out "$T/got" --tpm-ca "$RL_TPM_CA"
expect 0
! grep -q warning <<<"$err" || fail "a warning at an attested recovery: $err"
cmp -s "$T/got" "$T/secret" || fail "alice recovered another secret"
attested 1
say "register (3 of 3) and recover (32 bytes identical) with each realm's expect file and" \
	"--tpm-ca: attestation requests per realm $da_reg and $DA"

# --- b. one realm's expect file swapped for another realm's ---------------------------------
step=b
RL_EXPECT[1]=north/expect.json
rm -f "$T/got"
mark
sv recover alice --password-file "$T/pw" --out "$T/got" --tpm-ca "$RL_TPM_CA"
expect 0 "sealvault: warning: realm east: failed attestation: server-key: "
cmp -s "$T/got" "$T/secret" || fail "alice recovered another secret"
warn=$(grep -F "warning: realm" <<<"$err")
[ "$(grep -c . <<<"$warn")" = 1 ] || fail "more than one warning (one realm named once): $err"
attested 1
[ "${N_ANY[1]}" = "${Y0[1]}" ] || fail "east got $((N_ANY[1] - Y0[1])) other requests after failing"
[ "${N_RLM[2]}" -gt "${R0[2]}" ] && [ "${N_RLM[3]}" -gt "${R0[3]}" ] ||
	fail "north or west was not asked"
b1="recover: exit 0, identical from north+west; '${warn#sealvault: }'"
b1+=" (east: $((N_ATT[1] - A0[1])) attestation requests, no other)"
head -c 32 /dev/urandom >"$T/secret.bob"
mark
sv register bob --password-file "$T/pw" --secret-file "$T/secret.bob" --tpm-ca "$RL_TPM_CA"
expect 4 "realm east" "server-key"
line=$(grep -F "server-key" <<<"$err" | tail -n 1)
! grep -q "realm north\|realm west" <<<"$err" || fail "the refusal names another realm: $err"
attested 1
for i in 1 2 3; do
	[ "${N_RLM[i]}" = "${R0[i]}" ] ||
		fail "${RL_NAME[i]} got $((N_RLM[i] - R0[i])) realm requests for a refused registration"
	[ "$i" != 1 ] || [ "${N_ANY[i]}" = "${Y0[i]}" ] ||
		fail "east got $((N_ANY[i] - Y0[i])) other requests for a refused registration"
	realm_status "$i" bob || fail "no status of bob at ${RL_NAME[i]}"
	[ "${RL_S[0]}" = 0 ] || fail "${RL_NAME[i]} holds bob (state ${RL_S[0]})"
done
say "$b1; register on all three: exit 4, '${line#sealvault: }'; no /v2/realm request anywhere, bob nowhere"

# --- c. the list's id for east is another vault's (as after east's machine was replaced) ----
step=c
RL_EXPECT[1]=east/expect.json
east_id=${RL_ID[1]}
RL_ID[1]=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
rm -f "$T/got"
mark
sv recover alice --password-file "$T/pw" --out "$T/got" --tpm-ca "$RL_TPM_CA"
RL_ID[1]=$east_id
w="the attested vault is not the id the realm list gives"
expect 0 "sealvault: warning: realm east: failed attestation: $w; excluded"
cmp -s "$T/got" "$T/secret" || fail "alice recovered another secret"
[ "$(grep -c "warning: realm" <<<"$err")" = 1 ] || fail "more than one warning: $err"
attested 1
[ "${N_ANY[1]}" = "${Y0[1]}" ] || fail "east got $((N_ANY[1] - Y0[1])) other requests after failing"
say "east passes its own expect file but the list names another id: recovered identical from" \
	"north+west; '$(grep -F "warning: realm" <<<"$err" | sed 's/^sealvault: //')'"

# --- d. the TPM CA inside the expect files ----------------------------------------------------
step=d
for i in 1 2 3; do
	python3 - "${RL_DIR[i]}/expect.json" "$RL_TPM_CA" "${RL_DIR[i]}/expect.ca.json" <<-'PY' ||
		import json, re, sys
		e = json.load(open(sys.argv[1]))
		pem = open(sys.argv[2]).read()
		e["tpm_ca"] = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?",
		                         pem, re.S)
		assert len(e["tpm_ca"]) == 2, "the bundle holds %d certificates" % len(e["tpm_ca"])
		json.dump(e, open(sys.argv[3], "w"), indent=1)
	PY
		fail "no expect file with the TPM CA inside"
	RL_EXPECT[i]=${RL_NAME[i]}/expect.ca.json
done
rm -f "$T/got"
mark
sv recover alice --password-file "$T/pw" --out "$T/got"
expect 0
! grep -q warning <<<"$err" || fail "a warning: $err"
cmp -s "$T/got" "$T/secret" || fail "alice recovered another secret"
attested 1
say "tpm_ca inside each expect file, no --tpm-ca: recovered identical; attestation requests $DA"

step=end
echo "realms-attest: ok in $(($(date +%s) - t0)) s"
