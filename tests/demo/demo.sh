#!/bin/bash
# `make demo`: the whole sealvault story on this machine, each step explained.
# Installs missing build dependencies (as root), builds, starts a private software TPM (swtpm),
# provisions a vault with sealvault-admin init, runs sealvaultd on 127.0.0.1 with a self-signed
# certificate with auth = tokens and one tenant (acme, the provider that vouches for its users),
# then: access tokens minted with sealvault-admin token, a request without one refused, register
# a backup key, a wrong guess (attempts left), recovery (the key matches), and lock-out after the
# guess limit; at the end a client verifies the vault's TPM
# attestation against the expected-values file (the swtpm gets an EK certificate from a private
# CA made here, and boot PCRs from a synthetic event log: tests/attest/synthlog.py). Everything
# lives in a temporary directory that is removed on exit, and every process started here is
# stopped; with DEMO_KEEP=1 a successful demo instead leaves the vault (sealvaultd and its swtpm)
# running and prints the exact `sealvault ...` commands to try against it, and how to stop it.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
MAKE=${MAKE:-make}
PAUSE=${DEMO_PAUSE:-0}
KEEP=${DEMO_KEEP:-0}

. tests/demo/narrate.sh
demo_build

. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh
tmp=$(mktemp -d /tmp/sealvault-demo.XXXXXX)
chmod 0755 "$tmp"
cleanup() {
	set +e
	sv_server_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
SV=$B/sealvault

step "A private TPM and a fresh vault" \
	"swtpm plays the server's TPM 2.0, with an endorsement key certificate from a private CA" \
	"made here (a real TPM's comes from its manufacturer). swtpm has no measured boot, so a" \
	"synthetic boot and IMA log are extended into its PCRs. sealvault-admin init creates the" \
	"vault keys, seals them to the TPM, defines the NV counter that makes the guess counts" \
	"rollback-proof, and creates the attestation key and the vault identity key."
# shellcheck disable=SC2034,SC2016 # used by sv_server_init / sv_server_start, which eval the hook
{
	SV_TPM_HOOK='tests/attest/synthlog.py boot --event-log "$tmp/event.log" --tcti "$SWTPM_TCTI" &&
		tests/attest/synthlog.py ima --event-log "$tmp/event.log" --ima-log "$tmp/ima.log" \
			--bin "$PWD/$B" --allow-out "$tmp/ima-allow" --tcti "$SWTPM_TCTI"'
	SV_INIT_ARGS=(--policy-key-out "$tmp/policy-key.pem")
	SV_DAEMON_ARGS=(--event-log "$tmp/event.log" --ima-log "$tmp/ima.log")
}
swtpm_provision_ek "$tmp/srv/tpm" "$tmp/tpm-ca" || die "swtpm_setup could not provision the swtpm"
sv_server_init "$tmp/srv" "$B"
echo "   swtpm on 127.0.0.1:$SWTPM_PORT, state in $tmp/srv/state"
echo "   TPM CA bundle (root + intermediate): $SWTPM_CA_BUNDLE"

step "A tenant: the provider whose accounts vouch for the users" \
	"The vault acts only on requests that carry a short-lived access token (a JWT) signed by" \
	"a tenant it trusts, for the user the request names. The tenant keeps its signing key in" \
	"its own backend; the vault gets the public key set (JWKS) in /etc/sealvault/tenants.d" \
	"(here a private directory). docs/tokens.md shows the same with PyJWT and Node's jose."
show "sealvault-admin tenant keygen acme --out acme.jwk > acme.jwks"
show "sealvault-admin tenant add --dir tenants.d acme acme.jwks"
sv_tokens_init || die "could not make the tenant"
"$B/sealvault-admin" tenant list --dir "$SV_TENANTS" | sed 's/^/   /'

step "Publish the expected values" \
	"The provider publishes what an honest vault looks like: the hashes of the three sealvault" \
	"binaries, the vault policy with the tenants that may act, the boot PCR values and the" \
	"files the host may run (IMA)."
show "sealvault-admin expect --bindir $B --tenants-dir tenants.d --boot-pcrs-from-tpm TCTI --ima-allow ima-allow > expect.json"
"$B/sealvault-admin" expect --bindir "$B" --tenants-dir "$SV_TENANTS" \
	--boot-pcrs-from-tpm "$SWTPM_TCTI" --ima-allow "$tmp/ima-allow" >"$tmp/expect.json" ||
	die "sealvault-admin expect failed"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print("   build_hash  %s\n   policy_hash %s" % (e["build_hash"], e["policy_hash"]))' "$tmp/expect.json"

step "Start sealvaultd" \
	"It runs two sandboxed processes: the enclave (vault, TPM, no network) and the broker" \
	"(HTTPS on loopback, knows no secrets). The certificate is self-signed for 127.0.0.1."
sv_server_start
echo "   listening on $SV_URL"

# The CLI against the running server (its URL changes with every restart), with a fresh access
# token for the command's --user, as the user's app would get one from its provider.
svc() {
	local a prev=
	for a in "$@"; do
		[ "$prev" != --user ] || sv_token "$a" >"$tmp/$a.token" || die "no token for $a"
		[ "$prev" != --user ] || set -- "$@" --token "$tmp/$a.token"
		prev=$a
	done
	"$SV" "$1" --server "$SV_URL" --cacert "$SV_CACERT" "${@:2}"
}
head -c 32 /dev/urandom >"$tmp/backup.key"
printf 'correct horse battery staple\n' >"$tmp/password"
printf 'Tr0ub4dor&3\n' >"$tmp/wrong"

step "An access token for alice" \
	"alice's app asks acme's backend, which has just checked alice's own login, for a token:" \
	"iss acme, sub alice, aud this vault's id (GET /v1/info), a 5-minute lifetime, and a scope." \
	"Without one, or with one for another user, the vault refuses and charges nothing (exit 5)."
SV_VAULT_ID=$(sv_vault_id)
show "sealvault-admin token --tenant acme --key acme.jwk --sub alice --aud $SV_VAULT_ID > alice.token"
sv_token alice >"$tmp/alice.token"
python3 -c 'import base64,json,sys; p=open(sys.argv[1]).read().split(".")[1]; print("   claims: "+json.dumps(json.loads(base64.urlsafe_b64decode(p+"=="*2))))' "$tmp/alice.token"
show "sealvault recover --user alice --password-file password --out recovered.key   # no --token"
set +e
"$SV" recover --server "$SV_URL" --cacert "$SV_CACERT" --user alice --password-file "$tmp/password" \
	--out "$tmp/x.key"
rc=$?
set -e
echo "   exit status: $rc"
[ "$rc" -eq 5 ] || die "expected exit status 5"
sv_token bob >"$tmp/bob.token"
show "sealvault recover --token bob.token --user alice --password-file password --out recovered.key"
set +e
"$SV" recover --server "$SV_URL" --cacert "$SV_CACERT" --token "$tmp/bob.token" --user alice \
	--password-file "$tmp/password" --out "$tmp/x.key"
rc=$?
set -e
echo "   exit status: $rc"
[ "$rc" -eq 5 ] || die "expected exit status 5"
echo "   From here every command carries a fresh token for its user (--token USER.token)."

step "Register a backup key for alice, with 3 guesses" \
	"The client stretches the password with Argon2id, runs OPAQUE registration, and uploads" \
	"the key encrypted under OPAQUE's export key: the server never sees password or key."
echo "   backup key (32 random bytes): $(od -An -tx1 -v "$tmp/backup.key" | tr -d ' \n')"
show "sealvault register --token alice.token --user alice --password-file password --secret-file backup.key --max-attempts 3"
svc register --user alice --password-file "$tmp/password" \
	--secret-file "$tmp/backup.key" --max-attempts 3

step "A wrong guess" \
	"Every login attempt is charged to alice's count in the vault, durably (journal + TPM NV" \
	"counter) before the server even answers. The CLI exits 2 and shows the attempts left."
show "sealvault recover --token alice.token --user alice --password-file wrong --out recovered.key"
set +e
svc recover --user alice --password-file "$tmp/wrong" --out "$tmp/recovered.key"
rc=$?
set -e
echo "   exit status: $rc"
[ "$rc" -eq 2 ] || die "expected exit status 2"

step "Recover with the right password" \
	"A successful login gives the guess back and resets the count. The key comes back sealed" \
	"to this session, and only the right password can open it."
show "sealvault recover --token alice.token --user alice --password-file password --out recovered.key"
svc recover --user alice --password-file "$tmp/password" --out "$tmp/recovered.key"
echo "   recovered key:                $(od -An -tx1 -v "$tmp/recovered.key" | tr -d ' \n')"
cmp -s "$tmp/backup.key" "$tmp/recovered.key" || die "the recovered key differs!"
echo "   ${bold}identical to the key registered.${off}"

step "A recovery code instead of a password" \
	"--generate-code makes a random code (125 bits, 25 characters without look-alikes)," \
	"prints it once and uses it as the password. Here bob stores a key and gets it back."
head -c 32 /dev/urandom >"$tmp/bob.key"
show "sealvault register --token bob.token --user bob --generate-code --secret-file bob.key"
svc register --user bob --generate-code --secret-file "$tmp/bob.key" | tee "$tmp/bob.code" |
	sed 's/^/   recovery code: /'
show "sealvault recover --token bob.token --user bob --password-file - --out bob.recovered <<< CODE"
svc recover --user bob --password-file - --out "$tmp/bob.recovered" <"$tmp/bob.code"
cmp -s "$tmp/bob.key" "$tmp/bob.recovered" || die "bob's recovered key differs!"
echo "   bob's key recovered with the code: identical."

step "Restart the server" \
	"Counts and records live in the TPM-anchored journal; a restart changes nothing."
sv_server_restart
echo "   listening again on $SV_URL"

step "A thief guesses: lock-out after 3 wrong passwords" \
	"Guessing needs a token for alice (her app's, say, in a thief's hands): without one the" \
	"vault charges nothing. The third wrong guess uses the last attempt and destroys the record." \
	"Exit status 3 means locked out; nobody, not even root on the server, can get the key now."
for i in 1 2 3; do
	show "sealvault recover --token alice.token --user alice --password-file wrong --out recovered.key   # guess $i"
	set +e
	svc recover --user alice --password-file "$tmp/wrong" --out "$tmp/x.key"
	rc=$?
	set -e
	echo "   exit status: $rc"
done
[ "$rc" -eq 3 ] || die "expected exit status 3 after the third wrong guess"

step "Even the right password is too late" \
	"The record is gone: the vault answers 410 Gone and the CLI exits 3, whatever the password."
show "sealvault recover --token alice.token --user alice --password-file password --out recovered.key"
set +e
svc recover --user alice --password-file "$tmp/password" --out "$tmp/x.key"
rc=$?
set -e
echo "   exit status: $rc"
[ "$rc" -eq 3 ] || die "expected exit status 3"

step "Verify the vault before trusting it" \
	"A client asks for evidence over a fresh nonce and checks it against expect.json and the" \
	"TPM CA bundle: EK certificate chain, the attestation key's binding to that EK (a live" \
	"credential activation), the quote's signature and nonce, boot PCRs replayed from the event" \
	"log, IMA (only the sealvault binaries and allow-listed files ran), the identity key's" \
	"certification and PCR policy, and the statement it signed: server key, policy, build."
show "sealvault verify --server $SV_URL --cacert cert.pem --expect expect.json --tpm-ca tpm-ca.pem"
svc verify --expect "$tmp/expect.json" --tpm-ca "$SWTPM_CA_BUNDLE" | sed 's/^/   /' ||
	die "the vault did not verify"
echo "   A vault that differs is refused with exit 4 and the name of the failed check; here the"
echo "   expect file of another build (its build_hash changed):"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); e["build_hash"]="00"*32; json.dump(e,open(sys.argv[2],"w"))' \
	"$tmp/expect.json" "$tmp/other-build.json"
show "sealvault verify --server $SV_URL --cacert cert.pem --expect other-build.json --tpm-ca tpm-ca.pem"
set +e
svc verify --expect "$tmp/other-build.json" --tpm-ca "$SWTPM_CA_BUNDLE"
rc=$?
set -e
echo "   exit status: $rc"
[ "$rc" -eq 4 ] || die "expected exit status 4"
echo "   'sealvault register/recover --expect expect.json' run this check first and refuse a"
echo "   vault that fails it (exit 4, naming the check)."
echo "   What a swtpm cannot prove: its EK certificate comes from a CA created a minute ago on"
echo "   this machine, so the chain says nothing about hardware; the boot log here is synthetic."
echo "   On a real server the EK chains to the TPM maker's CA and firmware measures the boot."
echo "   Even then a TPM does not protect the enclave's memory from root on a running host:"
echo "   see docs/attestation.md for the appliance set-up that narrows this."

# The man pages of the checkout; `man NAME` finds them only once installed.
man_pages() {
	local f
	echo "   The manual pages of this checkout:"
	for f in client/sealvault.1 daemon/sealvaultd.8 daemon/sealvault.conf.5 \
		admin/sealvault-admin.8 broker/sealvault-broker.8; do
		printf '     man -l %s\n' "$PWD/$f"
	done
	echo "   'make check' runs every test (about 15-20 minutes on 2 cores; see README.md)."
}

if [ "$KEEP" != 1 ]; then
	step "Done" "Stopping sealvaultd and the swtpm, removing $tmp." \
		"Run 'make demo DEMO_KEEP=1' to keep the vault running and try the commands yourself."
	man_pages
	exit 0
fi

# DEMO_KEEP=1: leave the vault running; the commands below are exact, for copying.
trap - EXIT
swtpm_pid=$(cat "$tmp/srv/tpm/pid")
cli="$PWD/$SV"
conn="--server $SV_URL --cacert $SV_CACERT"
step "Done: the vault keeps running (DEMO_KEEP=1)" \
	"sealvaultd (pid $SV_PID) serves $SV_URL; its swtpm is pid $swtpm_pid; files in $tmp." \
	"alice is locked out; bob's recovery code is in $tmp/bob.code. Try:"
admin="$PWD/$B/sealvault-admin"
cat <<TRY
     $admin token --tenant acme --key $SV_TENANT_KEY --aud $SV_VAULT_ID --sub bob > $tmp/bob.token
     $cli recover $conn --token $tmp/bob.token --user bob --password-file $tmp/bob.code --out $tmp/bob.again
     $admin token --tenant acme --key $SV_TENANT_KEY --aud $SV_VAULT_ID --sub carol > $tmp/carol.token
     $cli register $conn --token $tmp/carol.token --user carol --secret-file $tmp/backup.key --max-attempts 5
     $cli recover $conn --token $tmp/carol.token --user carol --out $tmp/carol.key
     $cli change-password $conn --token $tmp/carol.token --user carol
     $cli delete $conn --token $tmp/carol.token --user carol
     $cli verify $conn --expect $tmp/expect.json --tpm-ca $SWTPM_CA_BUNDLE
   (register, recover, change-password and delete ask for the password without echo; a token
   lasts 5 minutes: mint another with the token line when the vault answers exit 5.)
   When done, stop the vault and remove its files:
     kill $SV_PID $swtpm_pid; rm -rf $tmp
TRY
man_pages
