# Shared helper: several realms (docs/realms.md) on this machine, for check-realms and
# `make demo-realms`. Each realm is a whole vault of its own: a private swtpm, `sealvault-admin
# init`, sealvaultd with its own self-signed certificate on its own loopback port, auth = tokens
# with the one tenant acme (the provider, whose key signs the tokens for every realm).
# Source it from bash after tests/lib/swtpm.sh and tests/lib/sealvaultd.sh.
#
#   RL_T, RL_B            set before use: the work directory (realm I lives in RL_T/NAME) and
#                         the build directory. RL_NAME: the realms' names, 1-based (RL_NAME[0]
#                         unused); realm I is at index I of every realm list.
#   realms_tenant         Make the tenant acme's key (RL_T/acme.jwk, public set RL_T/acme.jwks).
#   realm_init I          A fresh vault for realm I (new swtpm state, new vault id; on the port
#                         it had, if it had one) with acme configured, and start it. Sets
#                         RL_ID[I], RL_PORT[I], RL_DIR[I].
#   realm_stop I          Stop realm I entirely: sealvaultd, TPM2_Shutdown, the swtpm.
#   realm_kill I          Kill realm I as a machine dying would: sealvaultd and its children,
#                         then the swtpm, with SIGKILL (nothing orderly).
#   realm_start I         Start a stopped realm again: same TPM, same state, same port.
#   realms_list USER [I PORT]
#                         Write USER's realm list file (RL_T/USER.realms.json, the path is
#                         printed) with a fresh token for USER per realm (aud its vault id) in
#                         RL_T/tok/; paths in it are relative. With I PORT realm I is reached at
#                         127.0.0.1:PORT instead (a proxy with the realm's certificate).
#                         RL_THRESHOLD (default 2) is its threshold.
#   realm_status I USER   POST /v2/realm/status at realm I for USER with USER's token there
#                         (from realms_list): sets RL_S to (state index guess_limit
#                         attempts_left version_hex); state 0 none, 1 registered, 2 destroyed.
#   realm_metric I NAME   Print the value of the metric NAME (with its labels, if any) from
#                         realm I's metrics socket (e.g. sealvault_realm_evaluations_total).
#   realms_cleanup        Stop every realm and every swtpm; for `trap ... EXIT`.
#
# Attested realms (docs/attestation.md): with RL_EK_CA set (a CA directory, tests/lib/swtpm.sh
# swtpm_provision_ek) before realm_init, the realm's swtpm gets an EK certificate from that CA,
# its PCRs 0-7 and 10 are extended from synthetic boot and IMA logs (tests/attest/synthlog.py)
# before init, sealvaultd serves those logs, and realm_init writes RL_DIR[I]/expect.json
# (`sealvault-admin expect`: boot PCR values from the TPM, the tenants, the allow-list, the
# realm's own server_public_key pinned; no TPM CA inside) and sets RL_TPM_CA (the CA bundle,
# what --tpm-ca takes). Such a realm attests only until it is stopped (its swtpm's PCRs reset).
#   RL_EXPECT[I]          When set, realms_list gives realm I "expect": RL_EXPECT[I].
# Every function returns non-zero with a message on stderr when something fails.

declare -a RL_DIR RL_PID RL_PORT RL_TPM RL_ID RL_S RL_EXPECT
RL_THRESHOLD=${RL_THRESHOLD:-2}

realms_tenant() {
	"$RL_B/sealvault-admin" tenant keygen acme --out "$RL_T/acme.jwk" >"$RL_T/acme.jwks" \
		2>"$RL_T/tenant.log" || {
		echo "realms.sh: tenant keygen failed: $(cat "$RL_T/tenant.log")" >&2
		return 1
	}
}

# _realm_use I: point tests/lib/sealvaultd.sh's globals at realm I
_realm_use() {
	# shellcheck disable=SC2034 # read by tests/lib/sealvaultd.sh
	{
		SV_DIR=${RL_DIR[$1]}
		SV_B=$RL_B
		SV_CACERT=$SV_DIR/cert.pem
		SV_PID=${RL_PID[$1]:-}
		SV_TENANTS=$SV_DIR/tenants.d
		SV_AUTH=tokens
		SV_LISTEN_PORT=${RL_PORT[$1]:-}
		SWTPM_TCTI=${RL_TPM[$1]:-}
		SV_DAEMON_ARGS=()
		[ ! -e "$SV_DIR/event.log" ] ||
			SV_DAEMON_ARGS=(--event-log "$SV_DIR/event.log" --ima-log "$SV_DIR/ima.log")
	}
}

_realm_up() {
	_realm_use "$1"
	sv_server_start || return 1
	RL_PID[$1]=$SV_PID
	RL_PORT[$1]=$SV_PORT
}

# _realm_measure DIR: the synthetic boot and IMA logs of realm DIR, extended into its swtpm
# (just started, nothing else connected), and its expect file without the server key.
_realm_measure() {
	local d=$1 synth
	synth=$(dirname "${BASH_SOURCE[0]}")/../attest/synthlog.py
	"$synth" boot --event-log "$d/event.log" --tcti "$SWTPM_TCTI" &&
		"$synth" ima --event-log "$d/event.log" --ima-log "$d/ima.log" --bin "$RL_B" \
			--allow-out "$d/ima-allow" --tcti "$SWTPM_TCTI" &&
		"$RL_B/sealvault-admin" expect --tenants-dir "$d/tenants.d" --bindir "$RL_B" \
			--boot-pcrs-from-tpm "$SWTPM_TCTI" --ima-allow "$d/ima-allow" \
			>"$d/expect.nokey.json" 2>"$d/expect.log" || {
		echo "realms.sh: $d: synthetic logs or sealvault-admin expect failed:" \
			"$(cat "$d/expect.log" 2>/dev/null)" >&2
		return 1
	}
}

# _realm_pin I: RL_DIR[I]/expect.json, the expect file with realm I's server_public_key (from
# the statement in its evidence).
_realm_pin() {
	local d=${RL_DIR[$1]} nonce
	nonce=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
	curl -fsS --max-time 30 --cacert "$d/cert.pem" -o "$d/evidence.json" \
		"https://127.0.0.1:${RL_PORT[$1]}/v1/attestation?nonce=$nonce" &&
		python3 - "$d/evidence.json" "$d/expect.nokey.json" "$d/expect.json" <<-'PY' || {
			import json, sys
			k = json.load(open(sys.argv[1]))["statement"]["server_public_key"]
			e = json.load(open(sys.argv[2]))
			e["server_public_key"] = k
			json.dump(e, open(sys.argv[3], "w"), indent=1)
		PY
		echo "realms.sh: ${RL_NAME[$1]}: no evidence to pin its server key" >&2
		return 1
	}
}

realm_init() {
	local i=$1
	RL_DIR[i]=$RL_T/${RL_NAME[i]}
	mkdir -p "${RL_DIR[i]}/tenants.d"
	"$RL_B/sealvault-admin" tenant add --dir "${RL_DIR[i]}/tenants.d" acme "$RL_T/acme.jwks" \
		>/dev/null || {
		echo "realms.sh: ${RL_NAME[i]}: tenant add failed" >&2
		return 1
	}
	# shellcheck disable=SC2034 # read by sv_server_init (tests/lib/sealvaultd.sh)
	local SV_TPM_HOOK=
	if [ -n "${RL_EK_CA:-}" ]; then
		rm -rf "${RL_DIR[i]}/tpm"
		swtpm_provision_ek "${RL_DIR[i]}/tpm" "$RL_EK_CA" || return 1
		RL_TPM_CA=$SWTPM_CA_BUNDLE
		SV_TPM_HOOK="_realm_measure ${RL_DIR[i]}"
	fi
	sv_server_init "${RL_DIR[i]}" "$RL_B" || return 1
	RL_TPM[i]=$SWTPM_TCTI
	[ "$(id -u)" -ne 0 ] || chmod -R a+rX "${RL_DIR[i]}/tenants.d"
	_realm_up "$i" || return 1
	RL_ID[i]=$(sv_vault_id) && [ "${#RL_ID[i]}" -eq 32 ] || {
		echo "realms.sh: ${RL_NAME[i]}: no vault id from GET /v1/info" >&2
		return 1
	}
	[ -z "${RL_EK_CA:-}" ] || _realm_pin "$i"
}

# The TPM2_Shutdown is what a machine's clean power-off sends: without it the swtpm would lose
# the hybrid counter's increments held in its RAM, and the realm's next start would charge every
# user one guess (docs/operations.md, "Power cuts").
realm_stop() {
	_realm_use "$1"
	sv_server_stop
	RL_PID[$1]=
	tpm2_shutdown -T "$SWTPM_TCTI" >/dev/null 2>&1 || {
		echo "realms.sh: ${RL_NAME[$1]}: TPM2_Shutdown failed" >&2
		return 1
	}
	swtpm_stop "${RL_DIR[$1]}/tpm"
}

realm_kill() {
	local p kids
	_realm_use "$1"
	if [ -n "$SV_PID" ]; then
		kids=$(pgrep -P "$SV_PID" 2>/dev/null || true)
		kill -9 "$SV_PID" $kids 2>/dev/null || true
		wait "$SV_PID" 2>/dev/null || true
	fi
	RL_PID[$1]=
	SV_PID=
	swtpm_kill "${RL_DIR[$1]}/tpm"
	for p in $kids; do
		while kill -0 "$p" 2>/dev/null; do sleep 0.01; done
	done
}

realm_start() {
	_realm_use "$1"
	swtpm_start "${RL_DIR[$1]}/tpm" || return 1
	RL_TPM[$1]=$SWTPM_TCTI
	_realm_up "$1"
}

realms_list() {
	local user=$1 via=${2:-0} via_port=${3:-} i port sep='' n=$((${#RL_NAME[@]} - 1))
	mkdir -p "$RL_T/tok"
	{
		printf '{\n  "threshold": %s,\n  "realms": [\n' "$RL_THRESHOLD"
		for i in $(seq 1 "$n"); do
			"$RL_B/sealvault-admin" token --tenant acme --key "$RL_T/acme.jwk" --sub "$user" \
				--aud "${RL_ID[i]}" >"$RL_T/tok/$user.${RL_NAME[i]}.jwt" || {
				echo "realms.sh: no token for $user at ${RL_NAME[i]}" >&2
				return 1
			}
			port=${RL_PORT[i]}
			[ "$i" != "$via" ] || port=$via_port
			printf '%s    { "name": "%s", "url": "https://127.0.0.1:%s", "ca": "%s/cert.pem",\n' \
				"$sep" "${RL_NAME[i]}" "$port" "${RL_NAME[i]}"
			printf '      "id": "%s", "token": "tok/%s.%s.jwt"' "${RL_ID[i]}" "$user" "${RL_NAME[i]}"
			[ -z "${RL_EXPECT[i]:-}" ] || printf ',\n      "expect": "%s"' "${RL_EXPECT[i]}"
			printf ' }'
			sep=$',\n'
		done
		printf '\n  ]\n}\n'
	} >"$RL_T/$user.realms.json" || return 1
	echo "$RL_T/$user.realms.json"
}

realm_status() {
	python3 - "https://127.0.0.1:${RL_PORT[$1]}" "${RL_DIR[$1]}/cert.pem" \
		"$RL_T/tok/$2.${RL_NAME[$1]}.jwt" "$2" >"$RL_T/status.out" 2>&1 <<-'PY' || {
		import ssl, struct, sys, urllib.error, urllib.request
		url, ca, tok, uid = sys.argv[1:5]
		ctx = ssl.create_default_context(cafile=ca)
		ctx.check_hostname = False
		body = b"\x02" + struct.pack(">H", len(uid)) + uid.encode()
		req = urllib.request.Request(url + "/v2/realm/status", data=body, method="POST", headers={
		    "Content-Type": "application/octet-stream",
		    "Authorization": "Bearer " + open(tok).read().strip()})
		try:
		    r = urllib.request.urlopen(req, context=ctx, timeout=10).read()
		except urllib.error.HTTPError as e:
		    sys.exit("HTTP %d: %s" % (e.code, e.read()[:200]))
		if len(r) != 22:
		    sys.exit("a status reply of %d bytes" % len(r))
		print(r[0], r[19], r[20], r[21], r[1:17].hex())
	PY
		echo "realms.sh: /v2/realm/status of $2 at ${RL_NAME[$1]}: $(cat "$RL_T/status.out")" >&2
		return 1
	}
	read -r -a RL_S <"$RL_T/status.out"
}

realm_metric() {
	curl -fsS --unix-socket "${RL_DIR[$1]}/metrics.sock" http://localhost/metrics |
		awk -v m="$2" '$1 == m { print $2; found = 1 } END { exit !found }' || {
		echo "realms.sh: ${RL_NAME[$1]}: no metric $2" >&2
		return 1
	}
}

realms_cleanup() {
	local i
	for i in "${!RL_DIR[@]}"; do
		SV_PID=${RL_PID[i]:-}
		sv_server_stop
	done
	swtpm_cleanup
}
