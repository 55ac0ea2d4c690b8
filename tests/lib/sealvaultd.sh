# Shared helper: a private sealvault server (sealvaultd on loopback with a self-signed TLS
# certificate, over a private swtpm) for the end-to-end test and `make demo`.
# Source it from bash after tests/lib/swtpm.sh; it needs openssl and curl.
#
#   sv_server_init DIR B   Make DIR/cert.pem + DIR/key.pem (self-signed, P-256, for 127.0.0.1),
#                          start a swtpm in DIR/tpm and run `B/sealvault-admin init` on DIR/state.
#                          Sets SV_DIR, SV_B, SV_CACERT. Optional, set before the call:
#                          SV_TPM_HOOK, a command run after the swtpm started and before init
#                          (e.g. extend PCRs while nothing else holds the swtpm); SV_INIT_ARGS,
#                          an array of extra `sealvault-admin init` options. To give the swtpm
#                          an EK certificate, run swtpm_provision_ek DIR/tpm CADIR first.
#   sv_server_start        Start B/sealvaultd on a free loopback port (port 0 + --port-file)
#                          and wait until it answers GET /healthz over TLS. Sets SV_URL,
#                          SV_PORT, SV_PID. Logs to DIR/sealvaultd.log. SV_DAEMON_ARGS (an
#                          array, optional) adds sealvaultd options. The metrics listener is
#                          the unix socket DIR/metrics.sock (SV_METRICS_SOCK), the admin
#                          socket (sealvault-admin status/delete online) DIR/admin.sock
#                          (SV_ADMIN_SOCK). SV_LISTEN_PORT (optional) asks for that port
#                          instead of a free one (a restart on the address clients know).
#                          The access check
#                          is SV_AUTH: `open` unless set (tests that predate tokens), or
#                          `tokens` after sv_tokens_init (the tenants in SV_TENANTS).
#   sv_tokens_init         Tokens mode: make a tenant with `sealvault-admin tenant keygen` and
#                          `tenant add` (name SV_TENANT, default acme; key SV_TENANT_KEY) in the
#                          private tenants dir SV_TENANTS = DIR/tenants.d and set SV_AUTH=tokens.
#                          Call after sv_server_init and before sv_server_start.
#   sv_vault_id            Print the vault id (the aud of tokens) from GET /v1/info (running).
#   sv_token SUB [ARG]...  Print a token for SUB from the tenant SV_TENANT (`sealvault-admin
#                          token`, lifetime 300 s unless --ttl is among ARGs, e.g. --scope).
#   sv_metrics [CURL_ARG]...  Print GET /metrics from the metrics listener (plain HTTP on
#                          SV_METRICS_SOCK; /metrics is a 404 on the public port).
#   sv_server_stop         Stop it and wait until it is gone: SIGTERM (a graceful drain, which
#                          waits for pending logins: sealvaultd(8), "Stopping"), a second SIGTERM
#                          after 1 s (stop now: a test's abandoned logins never hold it up),
#                          SIGKILL after 10 s.
#   sv_server_restart      Stop, then start (same state, same TPM, a new port).
#   sv_enclave_pid / sv_broker_pid   Print the pid of the running child process.
#   sv_server_cleanup      Stop sealvaultd and every swtpm; for `trap ... EXIT`.
#
# The functions work under `set -e` (no stray non-zero status on the success paths).
#
# When run as root, sealvaultd drops the enclave and the broker to two unprivileged users; the
# helper passes SV_ENCLAVE_USER / SV_BROKER_USER (default nobody / daemon) and hands them the
# state directory and the key.

SV_CONTEXT=${SV_CONTEXT:-sealvault-v1}
SV_ENCLAVE_USER=${SV_ENCLAVE_USER:-nobody}
SV_BROKER_USER=${SV_BROKER_USER:-daemon}
SV_AUTH=${SV_AUTH:-open}
SV_TENANT=${SV_TENANT:-acme}
SV_PID=


sv_server_init() {
	SV_DIR=$1
	SV_B=$2
	SV_CACERT=$SV_DIR/cert.pem
	"$(dirname "${BASH_SOURCE[0]}")/traversable.sh" "$SV_B" || return 1
	mkdir -p "$SV_DIR"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$SV_DIR/key.pem" -out "$SV_CACERT" >"$SV_DIR/openssl.log" 2>&1 || {
		echo "sealvaultd.sh: openssl could not make a certificate, see $SV_DIR/openssl.log" >&2
		return 1
	}
	swtpm_start "$SV_DIR/tpm" || return 1
	if [ -n "${SV_TPM_HOOK:-}" ]; then
		eval "$SV_TPM_HOOK" || {
			echo "sealvaultd.sh: SV_TPM_HOOK ($SV_TPM_HOOK) failed" >&2
			return 1
		}
	fi
	"$SV_B/sealvault-admin" init --state-dir "$SV_DIR/state" --policy-key-out "$SV_DIR/state".policy-key --tpm "$SWTPM_TCTI" \
		${SV_INIT_ARGS[@]+"${SV_INIT_ARGS[@]}"} >"$SV_DIR/admin-init.log" 2>&1 || {
		echo "sealvaultd.sh: sealvault-admin init failed:" >&2
		cat "$SV_DIR/admin-init.log" >&2
		return 1
	}
	if [ "$(id -u)" -eq 0 ]; then
		chown -R "$SV_ENCLAVE_USER" "$SV_DIR/state"
		chown "$SV_BROKER_USER" "$SV_DIR/key.pem"
	fi
}

sv_server_start() {
	local i port users=()
	[ "$(id -u)" -eq 0 ] && users=(--user "$SV_ENCLAVE_USER" --broker-user "$SV_BROKER_USER")
	rm -f "$SV_DIR/port"
	SV_METRICS_SOCK=$SV_DIR/metrics.sock
	SV_ADMIN_SOCK=$SV_DIR/admin.sock
	# Port 0: the kernel picks a free port and sealvaultd writes it to --port-file.
	"$SV_B/sealvaultd" --state-dir "$SV_DIR/state" --tpm "$SWTPM_TCTI" \
		--listen "127.0.0.1:${SV_LISTEN_PORT:-0}" --port-file "$SV_DIR/port" --tls-cert "$SV_DIR/cert.pem" \
		--tls-key "$SV_DIR/key.pem" --context "$SV_CONTEXT" \
		--libexec-dir "$SV_B" --metrics-listen "unix:$SV_METRICS_SOCK" \
		--admin-socket "$SV_ADMIN_SOCK" "${users[@]}" \
		--auth "$SV_AUTH" ${SV_TENANTS:+--tenants-dir "$SV_TENANTS"} \
		${SV_DAEMON_ARGS[@]+"${SV_DAEMON_ARGS[@]}"} \
		>>"$SV_DIR/sealvaultd.log" 2>&1 &
	SV_PID=$!
	for i in $(seq 1 500); do
		kill -0 "$SV_PID" 2>/dev/null || break
		port=$(cat "$SV_DIR/port" 2>/dev/null || true)
		if [ -n "$port" ] && curl -fsS --max-time 2 --cacert "$SV_CACERT" \
			"https://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
			SV_PORT=$port
			SV_URL=https://127.0.0.1:$port
			return 0
		fi
		sleep 0.02
	done
	sv_server_stop
	echo "sealvaultd.sh: sealvaultd did not come up; its log ($SV_DIR/sealvaultd.log) ends:" >&2
	tail -n 15 "$SV_DIR/sealvaultd.log" >&2
	return 1
}

sv_tokens_init() {
	SV_TENANTS=$SV_DIR/tenants.d
	SV_TENANT_KEY=$SV_DIR/$SV_TENANT.jwk
	mkdir -p "$SV_TENANTS"
	"$SV_B/sealvault-admin" tenant keygen "$SV_TENANT" --out "$SV_TENANT_KEY" \
		>"$SV_DIR/$SV_TENANT.jwks" 2>"$SV_DIR/tenant.log" &&
		"$SV_B/sealvault-admin" tenant add --dir "$SV_TENANTS" "$SV_TENANT" \
			"$SV_DIR/$SV_TENANT.jwks" >>"$SV_DIR/tenant.log" 2>&1 || {
		echo "sealvaultd.sh: could not make the tenant $SV_TENANT:" >&2
		cat "$SV_DIR/tenant.log" >&2
		return 1
	}
	SV_AUTH=tokens
}

sv_vault_id() {
	curl -fsS --cacert "$SV_CACERT" "$SV_URL/v1/info" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["vault_id"])'
}

sv_token() {
	local sub=$1
	shift
	: "${SV_VAULT_ID:=$(sv_vault_id)}"
	"$SV_B/sealvault-admin" token --tenant "$SV_TENANT" --key "$SV_TENANT_KEY" --sub "$sub" \
		--aud "$SV_VAULT_ID" "$@"
}

sv_server_stop() {
	local i kids
	[ -n "$SV_PID" ] || return 0
	kids=$(pgrep -P "$SV_PID" 2>/dev/null || true)
	kill -TERM "$SV_PID" 2>/dev/null || true
	for i in $(seq 1 250); do
		kill -0 "$SV_PID" 2>/dev/null || break
		[ "$i" -ne 25 ] || kill -TERM "$SV_PID" 2>/dev/null || true
		sleep 0.04
	done
	kill -9 "$SV_PID" 2>/dev/null || true
	wait "$SV_PID" 2>/dev/null || true
	# sealvaultd takes its children with it; make sure, so no test leaves one behind.
	for i in $kids; do kill -9 "$i" 2>/dev/null || true; done
	SV_PID=
	return 0
}

sv_metrics() {
	curl -fsS "$@" --unix-socket "$SV_METRICS_SOCK" http://localhost/metrics
}

sv_server_restart() {
	sv_server_stop && sv_server_start
}

_sv_child() {
	local c
	for c in $(pgrep -P "$SV_PID" 2>/dev/null || true); do
		[ "$(cat "/proc/$c/comm" 2>/dev/null)" = "$1" ] && echo "$c" && return 0
	done
	return 1
}
sv_enclave_pid() { _sv_child sealvault-encla; }
sv_broker_pid() { _sv_child sealvault-broke; }

sv_server_cleanup() {
	sv_server_stop
	swtpm_cleanup
}
