#!/bin/bash
# `make demo-realms`: the threshold mode (docs/realms.md) on this machine, each step explained.
# Installs missing build dependencies (as root), builds, then starts three realms (east, north,
# west), each a whole vault of its own: a private software TPM (swtpm), `sealvault-admin init`,
# sealvaultd on its own loopback port with its own self-signed certificate, auth = tokens with
# the one tenant acme. It writes the realm list file the client reads, registers alice's backup
# key at the three realms with threshold 2, shows what each realm holds, kills one realm (its
# sealvaultd and its TPM, as a dead machine), recovers the key from the other two, and shows that
# one realm alone cannot. Everything lives in a temporary directory removed on exit, and every
# process started here is stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
MAKE=${MAKE:-make}
PAUSE=${DEMO_PAUSE:-0}

. tests/demo/narrate.sh
demo_build

. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh
. tests/lib/realms.sh
tmp=$(mktemp -d /tmp/sealvault-demo-realms.XXXXXX)
chmod 0755 "$tmp"
cleanup() {
	set +e
	realms_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
SV=$B/sealvault
RL_B=$B
RL_T=$tmp
RL_NAME=(- east north west)
# run CMD...: run it, print its output indented; its exit status in rc
run() {
	set +e
	"$@" >"$tmp/out" 2>&1
	rc=$?
	set -e
	sed 's/^/   /' "$tmp/out"
}
# guesses I...: each realm's guesses left for alice, from its own POST /v2/realm/status
guesses() {
	local i
	for i in "$@"; do
		realm_status "$i" alice || die "no status from ${RL_NAME[i]}"
		printf '   %-5s %s of %s guesses left\n' "${RL_NAME[i]}" "${RL_S[3]}" "${RL_S[2]}"
	done
}
# alice CMD ARGS...: the CLI for alice with her realm list, its tokens minted afresh (a token
# lives 5 minutes, and DEMO_PAUSE may stretch the demo)
alice() {
	list=$(realms_list alice) || die "could not write the realm list"
	run "$SV" "$1" --realms "$list" --user alice "${@:2}"
}

step "Three realms: three vaults on three TPMs" \
	"A vault's keys are sealed to its TPM: if that machine dies, every backup on it is gone." \
	"In the threshold mode the client spreads one secret over n vaults, the realms, with a" \
	"threshold t: any t of them recover it with the password, fewer learn nothing about it." \
	"Here n = 3 and t = 2. Each realm is an ordinary sealvault vault (its own swtpm, its own" \
	"sealvault-admin init, its own sealvaultd and certificate); in real life they would stand" \
	"in different rooms or belong to different providers. One tenant, acme, is configured at" \
	"all three: the provider whose backend vouches for its users with access tokens."
realms_tenant || die "could not make the tenant"
for i in 1 2 3; do
	show "sealvault-admin init --state-dir ${RL_NAME[i]}/state --tpm swtpm:...; sealvaultd ..."
	realm_init "$i" || die "realm ${RL_NAME[i]} did not start"
	printf '   %-5s vault id %s  https://127.0.0.1:%s\n' "${RL_NAME[i]}" "${RL_ID[i]}" "${RL_PORT[i]}"
done

step "The realm list" \
	"The client reads the realms from a JSON file: each realm's URL, CA certificate, vault id" \
	"(checked against GET /v1/info before registering) and the file with alice's access token" \
	"for it. A token names one realm as its audience (aud = that realm's vault id), so the" \
	"provider mints one per realm; a token stolen from one realm is refused by the others."
list=$(realms_list alice) || die "could not write the realm list"
show "cat alice.realms.json"
sed 's/^/   /' "$list"

head -c 32 /dev/urandom >"$tmp/backup.key"
printf 'correct horse battery staple\n' >"$tmp/password"
printf 'Tr0ub4dor&3\n' >"$tmp/wrong"
step "Register alice's backup key at the three realms" \
	"The client draws an OPRF key and an encryption key, splits both into three Shamir shares" \
	"(any two recombine), and gives each realm its shares, the encrypted key and a guess limit." \
	"It asks for 10 guesses in all; with 2 of 3 that is 7 per realm, since each guess needs" \
	"two realms: 3 x 7 / 2 = 10. No realm sees the password or the key."
echo "   backup key (32 random bytes): $(od -An -tx1 -v "$tmp/backup.key" | tr -d ' \n')"
show "sealvault register --realms alice.realms.json --user alice --password-file password --secret-file backup.key"
alice register --password-file "$tmp/password" \
	--secret-file "$tmp/backup.key"
[ "$rc" -eq 0 ] || die "the registration failed"

step "What each realm holds" \
	"Each realm answers POST /v2/realm/status for alice (with her token): its share index, the" \
	"registration's version (the same at all three) and the guesses it still allows."
for i in 1 2 3; do
	realm_status "$i" alice || die "no status from ${RL_NAME[i]}"
	printf '   %-5s share %s of 3, version %s, %s of %s guesses left\n' "${RL_NAME[i]}" \
		"${RL_S[1]}" "${RL_S[4]:0:16}.." "${RL_S[3]}" "${RL_S[2]}"
done

step "A wrong guess" \
	"A guess costs one attempt at each of two realms, charged durably (journal + TPM counter)" \
	"before a realm answers. The client asks the realms with the most attempts left."
show "sealvault recover --realms alice.realms.json --user alice --password-file wrong --out recovered.key"
alice recover --password-file "$tmp/wrong" --out "$tmp/x.key"
echo "   exit status: $rc"
[ "$rc" -eq 2 ] || die "expected exit status 2"
guesses 1 2 3

step "The machine of realm east dies" \
	"Its sealvaultd and its TPM are killed (SIGKILL): nothing answers at its address any more."
realm_kill 1
show "curl --cacert east/cert.pem https://127.0.0.1:${RL_PORT[1]}/healthz"
run curl -sS --max-time 5 --cacert "${RL_DIR[1]}/cert.pem" "https://127.0.0.1:${RL_PORT[1]}/healthz"

step "Recover with the two realms left" \
	"north and west each evaluate the password's OPRF share with a proof the client checks," \
	"then release their share of the encryption key to a client that proves it knows the" \
	"password. Two shares are enough: the key comes back, and the counters are reset."
show "sealvault recover --realms alice.realms.json --user alice --password-file password --out recovered.key"
alice recover --password-file "$tmp/password" \
	--out "$tmp/recovered.key"
[ "$rc" -eq 0 ] || die "the recovery failed"
echo "   recovered key:                $(od -An -tx1 -v "$tmp/recovered.key" | tr -d ' \n')"
cmp -s "$tmp/backup.key" "$tmp/recovered.key" || die "the recovered key differs!"
echo "   ${bold}identical to the key registered.${off}"
guesses 2 3

step "A second realm lost: below the threshold" \
	"With north gone too, west alone holds one share: it cannot give the key back, and the" \
	"client does not even ask it for a guess. The client names the realms it misses (exit 1)."
realm_kill 2
show "sealvault recover --realms alice.realms.json --user alice --password-file password --out recovered.key"
alice recover --password-file "$tmp/password" --out "$tmp/x.key"
echo "   exit status: $rc"
[ "$rc" -eq 1 ] || die "expected exit status 1"
echo "   west was asked nothing that costs a guess:"
guesses 3

step "Done" "Stopping the realms and their swtpms, removing $tmp." \
	"docs/realms.md has the protocol, why it is secure, and how to run a realm with other" \
	"providers; 'make check-realms' runs the same story with realms that lie and lock out."
