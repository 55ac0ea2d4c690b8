#!/bin/bash
# Attestation end to end (issue 6): real sealvaultd on swtpms whose EK certificates come from a
# private swtpm-localca CA, boot PCRs 0-7 and PCR 10 extended from synthetic TCG / IMA logs
# (tests/attest/synthlog.py, an independent oracle), the expected-values file from
# `sealvault-admin expect`, and `sealvault verify` / `register --expect` / `recover --expect`.
# Verification passes on the fresh vault; every tampering below must fail with exit 4 AND the
# contract's check name (docs/attestation.md), not merely fail.
#
# The vaults run with auth = tokens: one tenant (acme, tests/lib/sealvaultd.sh sv_tokens_init)
# trusted by both, the expect file made with `sealvault-admin expect --tenants-dir`, and every
# command that registers or logs in carrying a token for its vault (aud = that vault's id). How
# the tenant set enters the policy hash is pinned in tests/integration/token-auth.sh.
# Two vaults: vault 2 (EK certified by a second private CA) lends its evidence, its quote and its
# swtpm, and at the end gets its EK changed (TPM2_ChangeEPS); vault 1 is the one under test.
# Irreversible steps (PCR 10 extended with an unexpected executable) come last. Everything
# lives in a temporary directory, removed on exit together with every process started here
# (also on failure). About 10-16 s on the 2-core build box.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
SV=$PWD/$B/sealvault
ADMIN=$PWD/$B/sealvault-admin
SYNTH=$PWD/tests/attest/synthlog.py
. tests/lib/swtpm.sh
. tests/lib/sealvaultd.sh

tmp=$(mktemp -d /tmp/sv-attest.XXXXXX)
chmod 0755 "$tmp"
# While vault 2 runs next to vault 1, the pid not in SV_PID is in V1_PID or V2_PID.
V1_PID='' V2_PID='' PROXY_PID=''
cleanup() {
	set +e
	local cur=$SV_PID p
	[ -z "$PROXY_PID" ] || kill "$PROXY_PID"
	for p in "$V1_PID" "$V2_PID"; do
		if [ -n "$p" ] && [ "$p" != "$cur" ]; then
			SV_PID=$p
			sv_server_stop
		fi
	done
	SV_PID=$cur
	sv_server_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
t0=$(date +%s)

step=0
fail() {
	echo "attest: FAIL (step $step): $*" >&2
	if [ -n "${SV_DIR:-}" ] && [ -f "$SV_DIR/sealvaultd.log" ]; then
		echo "attest: sealvaultd log tail ($SV_DIR):" >&2
		tail -n 20 "$SV_DIR/sealvaultd.log" >&2
	fi
	exit 1
}
say() { step=$((step + 1)); echo "attest: [$step] $*"; }
nonce() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# extend_logs DIR: the synthetic boot and IMA logs of one machine, extended into the swtpm that
# was just started (SV_TPM_HOOK: nothing else is connected yet), and the oracle's replay
# checked against the TPM's PCRs.
extend_logs() {
	local d=$1
	"$SYNTH" boot --event-log "$d/event.log" --tcti "$SWTPM_TCTI"
	"$SYNTH" ima --event-log "$d/event.log" --ima-log "$d/ima.log" --bin "$PWD/$B" \
		--allow-out "$tmp/ima-allow" --tcti "$SWTPM_TCTI"
	"$SYNTH" replay --event-log "$d/event.log" --ima-log "$d/ima.log" >"$d/replay.json"
	TPM2TOOLS_TCTI=$SWTPM_TCTI tpm2_pcrread sha256:0,1,2,3,4,5,6,7,10 -o "$d/pcrs.bin" >/dev/null
	python3 - "$d/replay.json" "$d/pcrs.bin" <<-'EOF'
		import json, sys
		r = json.load(open(sys.argv[1]))
		b = open(sys.argv[2], "rb").read()
		for i, k in enumerate(["0", "1", "2", "3", "4", "5", "6", "7", "10"]):
		    if b[32 * i : 32 * i + 32].hex() != r[k]:
		        sys.exit("attest: PCR %s in the swtpm differs from the oracle's replay" % k)
	EOF
}

# vault_init NAME CADIR: a vault in $tmp/NAME on a swtpm with an EK certificate from CADIR.
vault_init() {
	local d=$tmp/$1
	swtpm_provision_ek "$d/tpm" "$2"
	SV_TPM_HOOK="extend_logs $d"
	SV_INIT_ARGS=(--policy-key-out "$d/policy-key.pem") # the last --policy-key-out counts
	sv_server_init "$d" "$B"
	SV_DAEMON_ARGS=(--event-log "$d/event.log" --ima-log "$d/ima.log")
}

# sv CMD ARGS...: the CLI against the current server; sets rc, out (stdout), err (stderr).
sv() {
	set +e
	"$SV" "$1" --server "$SV_URL" --cacert "$SV_CACERT" "${@:2}" >"$tmp/stdout" 2>"$tmp/stderr"
	rc=$?
	set -e
	out=$(cat "$tmp/stdout")
	err=$(cat "$tmp/stderr")
}
# verify [ARGS...]: sealvault verify with the CA bundle of vault 1's CA unless ARGS give one.
verify() { sv verify "$@"; }
passes() { # passes WHAT
	[ "$rc" -eq 0 ] || fail "$1: exit $rc, want 0; stderr: $err"
	grep -q '^verified: ' <<<"$out$err" || fail "$1: no 'verified:' summary line: $out $err"
}
refused() { # refused CHECK WHAT: exit 4 and the message names CHECK
	[ "$rc" -eq 4 ] || fail "$2: exit $rc, want 4 (check $1); stderr: $err"
	grep -qF "sealvault: verification failed: $1: " <<<"$err" ||
		fail "$2: the failure does not name check '$1': $err"
	echo "attest:     refused as expected: $(grep -F 'verification failed' <<<"$err" | head -n 1)"
}
# json_edit IN OUT PYTHON: OUT = IN (JSON, as d) after the statement(s) PYTHON.
json_edit() {
	python3 - "$1" "$2" "$3" <<-'EOF'
		import json, sys
		d = json.load(open(sys.argv[1]))
		exec(sys.argv[3])
		json.dump(d, open(sys.argv[2], "w"), indent=1)
	EOF
}
fetch() { # fetch NONCE FILE: the evidence as the server gives it to anyone
	curl -fsS --max-time 30 --cacert "$SV_CACERT" "$SV_URL/v1/attestation?nonce=$1" -o "$2" ||
		fail "GET /v1/attestation failed"
}

head -c 32 /dev/urandom >"$tmp/secret"
printf 'correct horse battery staple\n' >"$tmp/pw"

say "vault 2 on a swtpm certified by another private CA: its evidence, for later"
vault_init v2 "$tmp/ca2"
CA2=$SWTPM_CA_BUNDLE
TCTI2=$SWTPM_TCTI
sv_tokens_init # the tenant acme in $tmp/v2/tenants.d, trusted by both vaults
[ "$(id -u)" -ne 0 ] || chmod -R a+rX "$SV_TENANTS"
sv_server_start
V2_ID=$(sv_vault_id)
n2=$(nonce)
fetch "$n2" "$tmp/ev2.json"
sv_server_stop

say "vault 1 on a swtpm certified by the CA the verifier trusts; the expected-values file"
vault_init v1 "$tmp/ca1"
CA1=$SWTPM_CA_BUNDLE
TCTI1=$SWTPM_TCTI
V1=$tmp/v1
# boot PCR values read from the TPM (nothing holds it before sealvaultd starts) and the
# allow-list of the synthetic files; no server key pinned, no TPM CA inside (--tpm-ca gives it).
"$ADMIN" expect --tenants-dir "$SV_TENANTS" --bindir "$B" --boot-pcrs-from-tpm "$TCTI1" --ima-allow "$tmp/ima-allow" \
	>"$tmp/expect.json" 2>"$tmp/stderr" || fail "sealvault-admin expect: $(cat "$tmp/stderr")"
python3 - "$tmp/expect.json" "$V1/replay.json" "$PWD/$B" <<-'EOF' || fail "the expected-values file is wrong"
	import hashlib, json, sys
	e = json.load(open(sys.argv[1]))
	r = json.load(open(sys.argv[2]))
	assert e["version"] == 1
	assert e["boot_pcrs"] == list(range(8)), e["boot_pcrs"]
	for i in range(8):
	    assert e["boot_pcr_values"][str(i)] == r[str(i)], "PCR %d differs from the oracle" % i
	bh = hashlib.sha256()
	for n in ["sealvaultd", "sealvault-enclave", "sealvault-broker"]:
	    h = hashlib.sha256(open(sys.argv[3] + "/" + n, "rb").read()).digest()
	    assert e["binaries"][n] == h.hex(), n
	    bh.update(n.encode() + b"\0" + h)
	assert e["build_hash"] == bh.hexdigest(), "build_hash"
	assert "server_public_key" not in e
EOF
sv_server_start
V1_ID=$(sv_vault_id)
[ "$V1_ID" != "$V2_ID" ] || fail "the two vaults have the same vault id"
# token NAME SUB VAULT-ID: $tmp/NAME.tok, acme's token for SUB at that vault (all scopes)
token() { SV_VAULT_ID=$3 sv_token "$2" >"$tmp/$1.tok" || fail "a token for $2"; }
token alice alice "$V1_ID"
token bob bob "$V1_ID"
token carol-v2 carol "$V2_ID"
token dave-v2 dave "$V2_ID"

say "a fresh vault verifies (live nonce): exit 0 and a summary line"
verify --expect "$tmp/expect.json" --tpm-ca "$CA1"
passes "live verification"
echo "attest:     $(grep '^verified: ' <<<"$out$err")"

say "register --expect and recover --expect work"
sv register --token "$tmp/alice.tok" --user alice --password-file "$tmp/pw" \
	--secret-file "$tmp/secret" --expect "$tmp/expect.json" --tpm-ca "$CA1"
[ "$rc" -eq 0 ] || fail "register --expect: exit $rc: $err"
sv recover --token "$tmp/alice.tok" --user alice --password-file "$tmp/pw" --out "$tmp/out" \
	--expect "$tmp/expect.json" --tpm-ca "$CA1"
[ "$rc" -eq 0 ] || fail "recover --expect: exit $rc: $err"
cmp -s "$tmp/secret" "$tmp/out" || fail "the secret recovered with --expect differs"

say "saved evidence verifies with the nonce it was fetched for"
n1=$(nonce)
fetch "$n1" "$tmp/ev1.json"
python3 - "$tmp/ev1.json" "$n1" "$V1/replay.json" <<-'EOF' || fail "the evidence is not what the contract says"
	import base64, json, sys
	ev = json.load(open(sys.argv[1]))
	r = json.load(open(sys.argv[3]))
	assert ev["version"] == 1 and ev["nonce"] == sys.argv[2]
	for k in ["ek_public", "ek_certificate", "ak_public", "event_log", "ima_log"]:
	    base64.b64decode(ev[k], validate=True)
	assert sorted(ev["quote"]["pcrs"], key=int) == [str(i) for i in list(range(8)) + [10]]
	for k, v in ev["quote"]["pcrs"].items():
	    assert v == r[k], "quoted PCR %s differs from the oracle" % k
	body = base64.b64decode(ev["statement"]["body"])
	assert len(body) == 144 and body[:16] == b"sealvault-stmt-1"
	assert body[16:48].hex() == ev["statement"]["server_public_key"]
EOF
verify --expect "$tmp/expect.json" --tpm-ca "$CA1" --evidence "$tmp/ev1.json" --nonce "$n1"
passes "saved evidence"

say "replayed evidence (fetched for another nonce): nonce"
verify --expect "$tmp/expect.json" --tpm-ca "$CA1" --evidence "$tmp/ev1.json" --nonce "$(nonce)"
refused nonce "replayed evidence"

say "wrong nonce (the JSON says the new nonce, the quote was made over the old one): nonce"
n3=$(nonce)
json_edit "$tmp/ev1.json" "$tmp/ev-nonce.json" "d['nonce'] = '$n3'"
verify --expect "$tmp/expect.json" --tpm-ca "$CA1" --evidence "$tmp/ev-nonce.json" --nonce "$n3"
refused nonce "evidence with the nonce field rewritten"

say "evidence of another swtpm, verified against vault 1: ak-binding"
cat "$CA1" "$CA2" >"$tmp/ca12.pem"
verify --expect "$tmp/expect.json" --tpm-ca "$tmp/ca12.pem" --evidence "$tmp/ev2.json" --nonce "$n2"
refused ak-binding "vault 2's evidence against vault 1's TPM"

say "vault 1's evidence with vault 2's quote spliced in: quote-signature"
python3 - "$tmp/ev1.json" "$tmp/ev2.json" "$tmp/ev-splice.json" <<-'EOF'
	import json, sys
	a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
	assert a["quote"]["pcrs"] == b["quote"]["pcrs"], "both swtpms should be in the same state"
	a["quote"] = b["quote"]
	json.dump(a, open(sys.argv[3], "w"))
EOF
verify --expect "$tmp/expect.json" --tpm-ca "$CA1" --evidence "$tmp/ev-splice.json" --nonce "$n1"
refused quote-signature "spliced quote"

say "EK certificate and EK edited in saved evidence (both CAs trusted): ek-chain, ek-chain, ak-binding"
json_edit "$tmp/ev1.json" "$tmp/ev-nocert.json" "del d['ek_certificate']"
verify --expect "$tmp/expect.json" --tpm-ca "$tmp/ca12.pem" --evidence "$tmp/ev-nocert.json" --nonce "$n1"
refused ek-chain "evidence without an EK certificate"
python3 - "$tmp/ev1.json" "$tmp/ev2.json" <<-'EOF'
	import json, sys
	a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
	a["ek_certificate"] = b["ek_certificate"]  # genuine, chains, but not this EK's
	json.dump(a, open(sys.argv[1] + ".cert2", "w"))
	a["ek_public"] = b["ek_public"]  # a genuine, consistent EK of another TPM
	json.dump(a, open(sys.argv[1] + ".ek2", "w"))
EOF
verify --expect "$tmp/expect.json" --tpm-ca "$tmp/ca12.pem" --evidence "$tmp/ev1.json.cert2" --nonce "$n1"
refused ek-chain "another TPM's EK certificate with vault 1's EK"
verify --expect "$tmp/expect.json" --tpm-ca "$tmp/ca12.pem" --evidence "$tmp/ev1.json.ek2" --nonce "$n1"
refused ak-binding "another TPM's EK and certificate with vault 1's AK"

say "a proxy that attests with vault 1 but runs OPAQUE with vault 2: server-key for register, recover, delete and change-password; nothing changed"
# Vault 2 runs next to vault 1 (the helper's globals swapped for the moment).
V1_PID=$SV_PID
v1_saved=("$SV_DIR" "$SV_URL" "$SV_PORT" "$SV_CACERT" "$SWTPM_TCTI")
v1_args=("${SV_DAEMON_ARGS[@]}")
SV_DIR=$tmp/v2 SV_PID='' SV_CACERT=$tmp/v2/cert.pem SWTPM_TCTI=$TCTI2
SV_DAEMON_ARGS=(--event-log "$tmp/v2/event.log" --ima-log "$tmp/v2/ima.log")
sv_server_start
V2_PID=$SV_PID V2_URL=$SV_URL
SV_DIR=${v1_saved[0]} SV_PID=$V1_PID SV_URL=${v1_saved[1]} SV_PORT=${v1_saved[2]}
SV_CACERT=${v1_saved[3]} SWTPM_TCTI=${v1_saved[4]}
SV_DAEMON_ARGS=("${v1_args[@]}")
cat >"$tmp/proxy.py" <<-'EOF'
	# A TLS reverse proxy with vault 1's certificate: /v1/attestation* to vault 1, the rest to
	# vault 2. Usage: proxy.py CERT KEY PORTFILE URL1 CA1 URL2 CA2
	import http.server, ssl, sys, urllib.error, urllib.request
	cert, key, portfile, url1, ca1, url2, ca2 = sys.argv[1:8]
	ctx1 = ssl.create_default_context(cafile=ca1)
	ctx2 = ssl.create_default_context(cafile=ca2)
	class H(http.server.BaseHTTPRequestHandler):
	    protocol_version = "HTTP/1.1"
	    def log_message(self, *a):
	        pass
	    def relay(self):
	        n = int(self.headers.get("Content-Length") or 0)
	        body = self.rfile.read(n) if n else None
	        a = self.path.startswith("/v1/attestation")
	        req = urllib.request.Request((url1 if a else url2) + self.path, data=body,
	                                     method=self.command)
	        for h in ("Content-Type", "Authorization"):
	            if self.headers.get(h):
	                req.add_header(h, self.headers[h])
	        try:
	            r = urllib.request.urlopen(req, context=ctx1 if a else ctx2, timeout=30)
	        except urllib.error.HTTPError as e:
	            r = e
	        data = r.read()
	        self.send_response(r.status)
	        self.send_header("Content-Type", r.headers.get("Content-Type", "text/plain"))
	        self.send_header("Content-Length", str(len(data)))
	        self.end_headers()
	        self.wfile.write(data)
	    do_GET = do_POST = relay
	srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
	tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
	tls.load_cert_chain(cert, key)
	srv.socket = tls.wrap_socket(srv.socket, server_side=True)
	open(portfile + ".tmp", "w").write(str(srv.server_address[1]))
	__import__("os").rename(portfile + ".tmp", portfile)
	srv.serve_forever()
EOF
python3 "$tmp/proxy.py" "$V1/cert.pem" "$V1/key.pem" "$tmp/proxy.port" "$SV_URL" "$SV_CACERT" \
	"$V2_URL" "$tmp/v2/cert.pem" 2>"$tmp/proxy.log" &
PROXY_PID=$!
for _ in $(seq 1 250); do [ -s "$tmp/proxy.port" ] && break; sleep 0.02; done
[ -s "$tmp/proxy.port" ] || fail "the proxy did not start: $(cat "$tmp/proxy.log")"
proxy_url="https://127.0.0.1:$(cat "$tmp/proxy.port")"
# through_proxy CMD USER ARGS...: CMD with --expect through the proxy must exit 4 at server-key.
through_proxy() {
	local cmd=$1 user=$2 rc err
	shift 2
	set +e
	"$SV" "$cmd" --server "$proxy_url" --cacert "$SV_CACERT" --user "$user" \
		--password-file "$tmp/pw" "$@" --expect "$tmp/expect.json" --tpm-ca "$CA1" \
		>"$tmp/stdout" 2>"$tmp/stderr"
	rc=$?
	set -e
	err=$(cat "$tmp/stderr")
	[ "$rc" -eq 4 ] || fail "$cmd through the splitting proxy: exit $rc, want 4; $err"
	grep -qF "server-key: " <<<"$err" ||
		fail "$cmd through the splitting proxy: not server-key: $err"
	echo "attest:     $cmd refused as expected: $(head -n 1 <<<"$err")"
}
# The tokens are vault 2's (aud), as a client fooled into using vault 2 might hold: vault 2
# accepts them, and the client's server-key check is what stops it.
through_proxy register carol --token "$tmp/carol-v2.tok" --secret-file "$tmp/secret"
# The same for the commands that log in: dave exists on vault 2 only; through the proxy each one
# gets vault 2's KE2, whose server key (from the envelope) is not the attested one, and stops
# before KE3: no secret written, nothing deleted, the password unchanged.
"$SV" register --server "$V2_URL" --cacert "$tmp/v2/cert.pem" --token "$tmp/dave-v2.tok" \
	--user dave \
	--password-file "$tmp/pw" --secret-file "$tmp/secret" >/dev/null 2>"$tmp/stderr" ||
	fail "registering dave on vault 2: $(cat "$tmp/stderr")"
printf 'a new password for dave\n' >"$tmp/pw-new"
through_proxy recover dave --token "$tmp/dave-v2.tok" --out "$tmp/dave.out"
through_proxy delete dave --token "$tmp/dave-v2.tok"
through_proxy change-password dave --token "$tmp/dave-v2.tok" --new-password-file "$tmp/pw-new"
[ ! -e "$tmp/dave.out" ] || fail "recover through the splitting proxy wrote the secret"
"$SV" recover --server "$V2_URL" --cacert "$tmp/v2/cert.pem" --token "$tmp/dave-v2.tok" \
	--user dave \
	--password-file "$tmp/pw" --out "$tmp/dave.direct" >/dev/null 2>"$tmp/stderr" ||
	fail "dave on vault 2 after the refused delete/change-password: $(cat "$tmp/stderr")"
cmp -s "$tmp/dave.direct" "$tmp/secret" || fail "dave's secret on vault 2 changed"
kill "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
PROXY_PID=''
# carol is unknown to vault 2: registering her there directly works.
set +e
"$SV" register --server "$V2_URL" --cacert "$tmp/v2/cert.pem" --token "$tmp/carol-v2.tok" \
	--user carol \
	--password-file "$tmp/pw" --secret-file "$tmp/secret" >"$tmp/stdout" 2>"$tmp/stderr"
rc=$?
set -e
[ "$rc" -eq 0 ] || fail "carol exists on vault 2 after the refused registration: $(cat "$tmp/stderr")"
SV_PID=$V2_PID
sv_server_stop
SV_PID=$V1_PID V1_PID='' V2_PID=''

say "an EK certificate outside the given CA bundle (vault 1's EK against the other CA): ek-chain"
verify --expect "$tmp/expect.json" --tpm-ca "$CA2"
refused ek-chain "EK certificate from an untrusted CA"
# The CA bundle inside the expect file (sealvault-admin expect --tpm-ca), no --tpm-ca option.
for n in 1 2; do
	ca=CA$n
	"$ADMIN" expect --tenants-dir "$SV_TENANTS" --bindir "$B" --ima-allow "$tmp/ima-allow" \
		--tpm-ca "${!ca}" \
		>"$tmp/expect-ca$n.0" 2>"$tmp/stderr" || fail "expect --tpm-ca: $(cat "$tmp/stderr")"
	json_edit "$tmp/expect-ca$n.0" "$tmp/expect-ca$n.json" \
		"d['boot_pcr_values'] = $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["boot_pcr_values"])' "$tmp/expect.json")
assert sum(p.count('BEGIN CERTIFICATE') for p in d['tpm_ca']) == 2"
done
verify --expect "$tmp/expect-ca1.json"
passes "the expect file's own tpm_ca (vault 1's CA)"
verify --expect "$tmp/expect-ca2.json"
refused ek-chain "the expect file's tpm_ca is another CA"

say "a changed server public key (the expect file pins another vault's key): server-key"
k2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["statement"]["server_public_key"])' "$tmp/ev2.json")
k1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["statement"]["server_public_key"])' "$tmp/ev1.json")
[ "$k1" != "$k2" ] || fail "the two vaults have the same server key"
json_edit "$tmp/expect.json" "$tmp/expect-k1.json" "d['server_public_key'] = '$k1'"
verify --expect "$tmp/expect-k1.json" --tpm-ca "$CA1"
passes "expect file pinning vault 1's own key"
json_edit "$tmp/expect.json" "$tmp/expect-k2.json" "d['server_public_key'] = '$k2'"
verify --expect "$tmp/expect-k2.json" --tpm-ca "$CA1"
refused server-key "expect file pinning vault 2's key"

say "a changed binary hash (the expect file names another build): build-hash"
json_edit "$tmp/expect.json" "$tmp/expect-build.json" \
	"import hashlib; d['build_hash'] = hashlib.sha256(b'another build').hexdigest()"
verify --expect "$tmp/expect-build.json" --tpm-ca "$CA1"
refused build-hash "expect file of another build"

say "the expect file of a build with another enclave binary: ima (the IMA log shows what runs)"
mkdir "$tmp/otherbin"
cp "$B/sealvaultd" "$B/sealvault-broker" "$B/sealvault-enclave" "$tmp/otherbin/"
printf 'another build' >>"$tmp/otherbin/sealvault-enclave"
"$ADMIN" expect --tenants-dir "$SV_TENANTS" --bindir "$tmp/otherbin" --ima-allow "$tmp/ima-allow" >"$tmp/expect-other0.json" \
	2>"$tmp/stderr" || fail "sealvault-admin expect --bindir otherbin: $(cat "$tmp/stderr")"
python3 - "$tmp/expect.json" "$tmp/expect-other0.json" "$tmp/expect-other.json" <<-'EOF'
	import json, sys
	e, o = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
	assert o["build_hash"] != e["build_hash"]
	assert o["binaries"]["sealvault-enclave"] != e["binaries"]["sealvault-enclave"]
	assert o["binaries"]["sealvaultd"] == e["binaries"]["sealvaultd"]
	o["boot_pcr_values"] = e["boot_pcr_values"]
	json.dump(o, open(sys.argv[3], "w"))
EOF
verify --expect "$tmp/expect-other.json" --tpm-ca "$CA1"
refused ima "expect file of another enclave build"
grep -qF "$PWD/$B/sealvault-enclave" <<<"$err" || fail "the ima refusal does not name the binary"

say "a changed boot PCR value in the expect file: boot-pcrs"
json_edit "$tmp/expect.json" "$tmp/expect-pcr.json" "d['boot_pcr_values']['4'] = '00' * 32"
verify --expect "$tmp/expect-pcr.json" --tpm-ca "$CA1"
refused boot-pcrs "expect file with another PCR 4"

say "a boot PCR that does not replay (event log rewritten under the running vault): boot-pcrs"
"$SYNTH" tamper-boot --event-log "$V1/event.log" --pcr 4
verify --expect "$tmp/expect.json" --tpm-ca "$CA1"
refused boot-pcrs "event log whose PCR 4 does not replay"
"$SYNTH" tamper-boot --event-log "$V1/event.log" --pcr 4 # flips the bit back
verify --expect "$tmp/expect.json" --tpm-ca "$CA1"
passes "event log restored"

say "a changed vault policy (sealvaultd restarted with another max-guess-limit): policy-hash"
sv_server_stop
base_args=("${SV_DAEMON_ARGS[@]}")
SV_DAEMON_ARGS+=(--max-guess-limit 20)
sv_server_start
verify --expect "$tmp/expect.json" --tpm-ca "$CA1"
refused policy-hash "vault with max-guess-limit 20"
sv_server_stop
SV_DAEMON_ARGS=("${base_args[@]}")
sv_server_start
verify --expect "$tmp/expect.json" --tpm-ca "$CA1"
passes "default policy again"

say "an identity key whose approved policy lacks boot PCRs 1-7 (authorize-pcrs --boot-pcrs 0)"
sv_server_stop
authorize() { # authorize LIST: approve the boot PCRs LIST with vault 1's policy key
	"$ADMIN" authorize-pcrs --state-dir "$V1/state" --tpm "$TCTI1" \
		--policy-key "$V1/policy-key.pem" --boot-pcrs "$1" >"$tmp/stdout" 2>"$tmp/stderr" ||
		fail "authorize-pcrs --boot-pcrs $1: $(cat "$tmp/stderr")"
}
authorize 0
sv_server_start
n4=$(nonce)
fetch "$n4" "$tmp/ev-weak.json"
verify --expect "$tmp/expect.json" --tpm-ca "$CA1"
refused quote-pcrs "identity key approved for PCR 0 only (live: the quote follows that selection)"
# The same K-signed weak policy inside evidence whose quote covers every boot PCR: every check
# up to the identity key's certification holds, its policy does not.
python3 - "$tmp/ev1.json" "$tmp/ev-weak.json" "$tmp/ev-weakpol.json" <<-'EOF'
	import json, sys
	a, w = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
	assert w["identity"]["boot_pcrs"] == [0] and w["identity"]["public"] == a["identity"]["public"]
	a["identity"] = w["identity"]
	json.dump(a, open(sys.argv[3], "w"))
EOF
verify --expect "$tmp/expect.json" --tpm-ca "$CA1" --evidence "$tmp/ev-weakpol.json" --nonce "$n1"
refused identity-policy "K-signed policy over PCR 0 only"
sv_server_stop
authorize 0,1,2,3,4,5,6,7

# refuses_start NAME STATE TCTI: sealvaultd on STATE and TCTI must exit on its own (the enclave
# refuses); its output goes to $tmp/NAME.log.
refuses_start() {
	local users=()
	[ "$(id -u)" -ne 0 ] || users=(--user "$SV_ENCLAVE_USER" --broker-user "$SV_BROKER_USER")
	set +e
	timeout 60 "$B/sealvaultd" --state-dir "$2" --tpm "$3" --listen 127.0.0.1:0 \
		--tls-cert "$V1/cert.pem" --tls-key "$V1/key.pem" --context "$SV_CONTEXT" \
		--libexec-dir "$B" --metrics-listen none "${users[@]}" >"$tmp/$1.log" 2>&1
	rc=$?
	set -e
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
		fail "sealvaultd ($1): exit $rc, want a refusal; $(tail -n 5 "$tmp/$1.log")"
	fi
	grep -q 'sealvault-enclave: refusing to serve: ' "$tmp/$1.log" ||
		fail "sealvaultd ($1): no refusal by the enclave: $(cat "$tmp/$1.log")"
	echo "attest:     $(grep 'refusing to serve' "$tmp/$1.log" | head -n 1)"
}

say "a swapped TPM: vault 1's state directory on vault 2's swtpm is refused"
refuses_start swap "$V1/state" "$TCTI2"
grep -q 'provisioned on a different TPM' "$tmp/swap.log" ||
	fail "the refusal does not say the TPM differs: $(cat "$tmp/swap.log")"

say "a changed EK on the vault's own TPM (TPM2_ChangeEPS on vault 2's swtpm) is refused"
TPM2TOOLS_TCTI=$TCTI2 tpm2_changeeps >/dev/null 2>&1 || fail "tpm2_changeeps on vault 2's swtpm"
refuses_start ek "$tmp/v2/state" "$TCTI2"
grep -q "endorsement key is not the one of init" "$tmp/ek.log" ||
	fail "the refusal does not say the EK differs: $(cat "$tmp/ek.log")"

sv_server_start
verify --expect "$tmp/expect.json" --tpm-ca "$CA1"
passes "vault 1 back on its own TPM, full boot policy"

say "IMA log entries after the quote (logged, PCR 10 not yet extended) are not judged yet"
cp "$V1/ima.log" "$tmp/ima.saved"
"$SYNTH" ima-exec --ima-log "$V1/ima.log" --path /usr/local/bin/later
verify --expect "$tmp/expect.json" --tpm-ca "$CA1"
passes "IMA log with an entry newer than the quote"
cat "$tmp/ima.saved" >"$V1/ima.log" # same inode: the broker's descriptor sees it

say "an unexpected executable in the IMA log (PCR 10 extended accordingly): ima"
sv_server_stop
"$SYNTH" ima-exec --ima-log "$V1/ima.log" --path /usr/local/bin/keylogger --tcti "$TCTI1"
sv_server_start
verify --expect "$tmp/expect.json" --tpm-ca "$CA1"
refused ima "unexpected executable"
grep -qF "/usr/local/bin/keylogger" <<<"$err" || fail "the ima refusal does not name the executable"

say "register --expect against the failing vault: refused, and nothing was registered"
# requests_by KIND: the broker's request count (/metrics) of the vault endpoints (KIND=vault) or
# of the two attestation endpoints (KIND=attest).
requests_by() {
	sv_metrics --max-time 30 | awk -v kind="$1" '
		/^sealvault_http_requests_total\{/ {
			a = $0 ~ /endpoint="attestation(_activate)?"/
			o = $0 ~ /endpoint="(healthz|metrics)"/
			if ((kind == "attest" && a) || (kind == "vault" && !a && !o)) s += $NF
		}
		END { print s + 0 }'
}
vault0=$(requests_by vault)
attest0=$(requests_by attest)
sv register --token "$tmp/bob.tok" --user bob --password-file "$tmp/pw" \
	--secret-file "$tmp/secret" --expect "$tmp/expect.json" --tpm-ca "$CA1"
refused ima "register --expect"
sv recover --token "$tmp/alice.tok" --user alice --password-file "$tmp/pw" --out "$tmp/out2" \
	--expect "$tmp/expect.json" --tpm-ca "$CA1"
refused ima "recover --expect"
[ ! -e "$tmp/out2" ] || fail "a refused recovery wrote a file"
[ "$(requests_by vault)" -eq "$vault0" ] ||
	fail "register/recover --expect sent vault requests ($vault0 -> $(requests_by vault)) to a vault that failed verification"
# each verification: GET /v1/attestation and POST /v1/attestation/activate
[ "$(requests_by attest)" -ge $((attest0 + 4)) ] ||
	fail "the refusals were not based on attestation requests ($attest0 -> $(requests_by attest))"
# bob does not exist: registering him without --expect succeeds (an existing id is refused).
sv register --token "$tmp/bob.tok" --user bob --password-file "$tmp/pw" --secret-file "$tmp/secret"
[ "$rc" -eq 0 ] || fail "bob exists after a refused register --expect: exit $rc: $err"
[ "$(requests_by vault)" -ge $((vault0 + 2)) ] || fail "/metrics does not count vault requests"

echo "attest: ok ($step steps, $(($(date +%s) - t0)) s)"
