#!/bin/bash
# The Debian packages end to end, as an operator meets them (issue 5). Run as root (CI does):
#   1. build the four packages from a clean export (packaging/build-deb.sh) and run lintian on
#      them: no error, no warning (overrides only with a justification, packaging/debian/*.lintian-overrides);
#   2. install them with apt; check users, groups, the state directory, config, units, man pages;
#   3. check the units: systemd-analyze verify, and security --offline exposure <= 1.5 per service;
#   4. run the INSTALLED binaries without systemd as PID 1 against a private swtpm:
#      sealvault-admin init as user sealvault, sealvaultd by hand (it drops the enclave to
#      sealvault+tss and the broker to sealvault-broker), the installed `sealvault` CLI:
#      register -> wrong guess (exit 2, attempts left) -> recover (byte-identical) -> lock-out (3);
#   5. upgrade (the package repacked with a higher version): the vault is untouched and serves;
#      then the installed units under a real systemd as PID 1 (tests/packaging/systemd.sh: a
#      private PID and mount namespace): Type=notify start, audit records in its journald,
#      /metrics on the runtime socket,
#      ExecReload= with a renewed certificate, Restart= after a killed child, a drained stop;
#   6. apt-get remove, then apt-get purge: /var/lib/sealvault survives both, byte for byte, and
#      purge says how to destroy a vault deliberately, naming its NV index (read from vault.hdr).
# Everything it starts or installs is stopped and removed on exit, also on failure. It refuses
# to run where sealvault is already installed or /var/lib/sealvault already exists (a real vault).
set -euo pipefail
cd "$(dirname "$0")/../.."

DEB_OUT=${DEB_OUT:-build-deb}
STATE=/var/lib/sealvault
PKGS="sealvault sealvault-client libsealvault0 libsealvault-dev"

fail() {
	echo "check-packaging: FAIL: $*" >&2
	exit 1
}
step() { echo "== check-packaging: $*"; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs packages); run: sudo make check-packaging"
# One run at a time per machine: the packages, the users and /var/lib/sealvault are machine-wide.
exec 9>/run/lock/sealvault-check-packaging.lock
flock -w 900 9 || fail "another check-packaging run has held /run/lock/sealvault-check-packaging.lock for 15 minutes"
# Wait for the dpkg lock instead of failing when another apt/dpkg is busy.
APT="apt-get -o DPkg::Lock::Timeout=300"
for p in $PKGS; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q -E 'installed|config-files'; then
		fail "$p is already installed (or its config files are) on this machine; this test installs and purges its own build, so run it on a machine (or container) without sealvault"
	fi
done
[ ! -e "$STATE" ] || fail "$STATE already exists (a vault?); this test provisions and removes its own vault there, so it will not touch an existing one"

WORK=$(mktemp -d /tmp/sv-pkgtest.XXXXXX)
chmod 0755 "$WORK"
DAEMON_PID=
# shellcheck source=tests/lib/swtpm.sh
. tests/lib/swtpm.sh
# shellcheck source=tests/packaging/systemd.sh
. tests/packaging/systemd.sh
cleanup() {
	local rc=$?
	set +e
	sd_halt
	[ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
	swtpm_cleanup
	installed=""
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q -E 'installed|config-files' && installed="$installed $p"
	done
	# shellcheck disable=SC2086
	[ -n "$installed" ] && DEBIAN_FRONTEND=noninteractive $APT purge -y -qq $installed >/dev/null 2>&1
	# The test's own vault (we refused to start if one existed) and its tenant.
	rm -f /etc/sealvault/tenants.d/acme.jwks
	rmdir /etc/sealvault/tenants.d /etc/sealvault 2>/dev/null
	rm -rf "$STATE" "$WORK"
	if [ $rc -eq 0 ]; then echo "check-packaging: PASS"; else echo "check-packaging: FAILED (rc $rc)" >&2; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. build and lintian ------------------------------------------------------------------
step "building the packages (packaging/build-deb.sh $DEB_OUT)"
packaging/build-deb.sh "$DEB_OUT" >"$WORK/build.log" 2>&1 || {
	tail -40 "$WORK/build.log" >&2
	fail "dpkg-buildpackage failed (full log above, last 40 lines)"
}
version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
arch=$(dpkg --print-architecture)
DEBS=""
for p in $PKGS; do
	f="$DEB_OUT/${p}_${version}_${arch}.deb"
	[ -f "$f" ] || fail "$f was not built"
	DEBS="$DEBS $(realpath "$f")"
done

step "lintian (fails on any error or warning)"
changes="$DEB_OUT/sealvault_${version}_${arch}.changes"
lintian --fail-on error,warning --display-info --tag-display-limit 0 "$changes" | tee "$WORK/lintian.log" ||
	fail "lintian found errors or warnings (above)"

# --- 2. install -------------------------------------------------------------------------------
step "apt-get install $DEBS"
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $APT install -y -q $DEBS >"$WORK/install.log" 2>&1 || {
	cat "$WORK/install.log" >&2
	fail "apt-get install of the built packages failed"
}
grep -q 'sealvault-admin init' "$WORK/install.log" ||
	fail "a fresh install must tell the operator to provision a vault (sealvault-admin init)"

getent passwd sealvault >/dev/null || fail "user sealvault was not created (sysusers)"
getent passwd sealvault-broker >/dev/null || fail "user sealvault-broker was not created (sysusers)"
id -nG sealvault | tr ' ' '\n' | grep -qx tss || fail "user sealvault is not in group tss (needed for /dev/tpmrm0)"
if id -nG sealvault-broker | tr ' ' '\n' | grep -qx tss; then
	fail "user sealvault-broker must not be in group tss (the broker never talks to the TPM)"
fi
[ "$(stat -c '%U:%G %a' "$STATE")" = "sealvault:sealvault 700" ] ||
	fail "$STATE is $(stat -c '%U:%G %a' "$STATE"), expected sealvault:sealvault 700"
[ -z "$(ls -A "$STATE")" ] || fail "$STATE is not empty right after installation"
[ -f /etc/sealvault/sealvault.conf ] || fail "/etc/sealvault/sealvault.conf is missing"
grep -qx 'auth = tokens' /etc/sealvault/sealvault.conf ||
	fail "the packaged sealvault.conf does not ask for access tokens (auth = tokens)"
[ -d /etc/sealvault/tenants.d ] || fail "/etc/sealvault/tenants.d is missing"
dpkg-query -W -f='${Conffiles}\n' sealvault | grep -q '/etc/sealvault/sealvault.conf' ||
	fail "/etc/sealvault/sealvault.conf is not a conffile (local edits would be lost on upgrade)"
dpkg-query -W -f='${Depends}\n' sealvault | grep -q 'tpm-udev' || fail "sealvault does not depend on tpm-udev"

step "every installed program has a man page, and so has sealvault.conf(5)"
progs=$(dpkg -L $PKGS | grep -E '^/usr/(s?bin|libexec/sealvault)/[^/]+$' || true)
[ -n "$progs" ] || fail "the packages install no programs"
for prog in $progs; do
	[ -f "$prog" ] || continue
	man -w "$(basename "$prog")" >/dev/null 2>&1 || fail "no man page for $prog"
	echo "$prog: $(man -w "$(basename "$prog")")"
done
man -w 5 sealvault.conf >/dev/null 2>&1 || fail "no man page sealvault.conf(5)"

step "libsealvault-dev: a program builds with pkg-config and runs against libsealvault.so.0"
cat >"$WORK/use.c" <<'C'
#include <sealvault.h>
#include <stdio.h>
int main(void)
{
	struct sv_ctx *ctx = NULL;
	/* Only https:// URLs are accepted: a plain http URL must be refused. */
	if (sv_ctx_new(&ctx, "http://127.0.0.1:1") == 0)
		return 1;
	if (sv_ctx_new(&ctx, "https://127.0.0.1:1") != 0)
		return 2;
	sv_ctx_free(ctx);
	puts(sv_result_str(SV_RESULT_LOCKED));
	return 0;
}
C
# shellcheck disable=SC2046
cc -o "$WORK/use" "$WORK/use.c" $(pkg-config --cflags --libs sealvault) || fail "cannot build against the installed libsealvault-dev"
# (into a variable first: grep -q closing the pipe early would fail the pipeline under pipefail,
# more often now that libsealvault pulls in OpenSSL, json-c and tss2-mu)
deps=$(ldd "$WORK/use")
grep -Eq 'libsealvault.so.0 => /(usr/)?lib/' <<<"$deps" || fail "the program is not linked to the installed libsealvault.so.0"
"$WORK/use" || fail "a program using the installed libsealvault failed (exit $?)"

# --- 3. units -----------------------------------------------------------------------------------
UNITDIR=$(pkg-config --variable=systemdsystemunitdir systemd)
step "systemd units in $UNITDIR"
for u in sealvault.service sealvault.socket; do
	[ -f "$UNITDIR/$u" ] || fail "$UNITDIR/$u is not installed"
done
systemd-analyze verify "$UNITDIR/sealvault.service" "$UNITDIR/sealvault.socket" ||
	fail "systemd-analyze verify reports problems in the units (above)"
for u in "$UNITDIR"/sealvault*.service; do
	systemd-analyze security --offline=true --threshold=15 "$u" >"$WORK/security.txt" 2>&1 || {
		cat "$WORK/security.txt" >&2
		fail "$(basename "$u"): exposure above 1.5 (systemd-analyze security --offline=true, above)"
	}
	grep 'Overall exposure' "$WORK/security.txt"
	# The properties the issue names, read back as systemd parsed them.
	for want in 'PrivateNetwork=' 'RestrictAddressFamilies=~AF_(INET|INET6)' 'RestrictSUIDSGID=' \
		'NoNewPrivileges=' 'CapabilityBoundingSet=~CAP_SYS_ADMIN'; do
		grep -F -- "$want" "$WORK/security.txt" | grep -q '✓' || fail "$(basename "$u"): $want is not set as required"
	done
	# Devices: the TPM and nothing else (ProtectClock= adds read access to the RTC by itself).
	grep -E '^. DeviceAllow=' "$WORK/security.txt" | grep -Eq 'special devices: char-rtc:r /dev/tpmrm0:rw +[0-9.]+$' ||
		fail "$(basename "$u"): the device ACL must be /dev/tpmrm0 only: $(grep DeviceAllow= "$WORK/security.txt")"
done
grep -Eq '^SystemCallFilter=.*\bseccomp\b' "$UNITDIR/sealvault.service" ||
	fail "sealvault.service must allow seccomp(2) in SystemCallFilter= so the processes can install their own filters"
grep -qx 'DeviceAllow=/dev/tpmrm0 rw' "$UNITDIR/sealvault.service" || fail "sealvault.service must allow /dev/tpmrm0 and nothing else"
grep -qx 'ReadWritePaths=/var/lib/sealvault' "$UNITDIR/sealvault.service" ||
	fail "sealvault.service must be able to write only its state directory"
# The drain (sealvaultd(8), STOPPING): SIGTERM to sealvaultd alone, and time for the default
# drain-timeout-s (login-timeout-s, 60 s) + 15 s before systemd kills everything.
grep -qx 'KillMode=mixed' "$UNITDIR/sealvault.service" ||
	fail "sealvault.service must stop with KillMode=mixed, or the enclave dies under the drain"
tss=$(sed -n 's/^TimeoutStopSec=//p' "$UNITDIR/sealvault.service")
[ "${tss:-0}" -ge 75 ] 2>/dev/null ||
	fail "sealvault.service: TimeoutStopSec=${tss:-unset} is below the default drain (60 s) + 15 s"

# The start condition: without a vault the service does not start, and says why.
cond=$(sed -n 's/^ExecCondition=+//p' "$UNITDIR/sealvault.service")
[ -n "$cond" ] || fail "sealvault.service has no ExecCondition= guarding an unprovisioned vault"
cond=${cond//\$\$/\$}
rc=0
eval "$cond" 2>"$WORK/cond.txt" || rc=$?
[ $rc -eq 1 ] || fail "the start condition should refuse (exit 1) while $STATE is empty; it exited $rc"
grep -q 'sealvault-admin init' "$WORK/cond.txt" || fail "the refused start condition does not say to run sealvault-admin init"
echo "without a vault: $(cat "$WORK/cond.txt")"

# --- 4. the installed binaries on a private swtpm, without systemd ------------------------------
step "a private swtpm"
# (9>&-: the swtpm daemon must not keep the run lock when it outlives a failed run)
swtpm_start "$WORK/tpm" 9>&- || fail "cannot start swtpm"
TCTI=$SWTPM_TCTI

install -d -o sealvault -m 0700 "$WORK/offline"
step "runuser -u sealvault -- sealvault-admin init --state-dir $STATE --tpm $TCTI --policy-key-out $WORK/offline/policy-key.pem"
runuser -u sealvault -- /usr/sbin/sealvault-admin init --state-dir "$STATE" --tpm "$TCTI" \
	--policy-key-out "$WORK/offline/policy-key.pem" ||
	fail "sealvault-admin init failed as user sealvault"
[ -n "$(ls -A "$STATE")" ] || fail "sealvault-admin init left $STATE empty"
rc=0
eval "$cond" 2>/dev/null || rc=$?
[ $rc -eq 0 ] || fail "the unit's start condition still refuses after sealvault-admin init (exit $rc)"

step "TLS certificate for 127.0.0.1"
mkdir -p "$WORK/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null
chgrp sealvault-broker "$WORK/tls/key.pem"
chmod 0640 "$WORK/tls/key.pem"
chmod 0755 "$WORK/tls"

HTTPS_PORT=
for _ in $(seq 20); do
	p=$(((RANDOM % 20000) + 40000))
	ss -Hltn "sport = :$p" | grep -q . || { HTTPS_PORT=$p; break; }
done
[ -n "$HTTPS_PORT" ] || fail "no free loopback port for HTTPS"
SERVER="https://127.0.0.1:$HTTPS_PORT"
# sealvaultd is started exactly as sealvault.service starts it (its ExecStart= line), with the
# listening socket handed over as fd 3 the way sealvault.socket does it (systemd-socket-activate
# implements the same protocol without systemd as PID 1); only the TPM and the certificate are
# the test's own. systemd-socket-activate execs sealvaultd in place on the first connection.
read -r -a EXEC_START <<<"$(sed -n 's/^ExecStart=//p' "$UNITDIR/sealvault.service")"
[ "${EXEC_START[0]}" = /usr/sbin/sealvaultd ] || fail "sealvault.service does not start /usr/sbin/sealvaultd"
# The unit's privileges, as far as they can be had without systemd: NoNewPrivileges=, UMask= and
# CapabilityBoundingSet= (root keeps only these capabilities across the exec), so the test fails
# if sealvaultd needs a capability the unit does not grant. (PrivateNetwork= cannot be applied
# here: the swtpm stands in for /dev/tpmrm0 over loopback TCP.)
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNITDIR/sealvault.service")
BOUNDING="-all"
for c in $caps; do
	c=${c#CAP_}
	BOUNDING="$BOUNDING,+${c,,}"
done
grep -qx 'NoNewPrivileges=yes' "$UNITDIR/sealvault.service" || fail "sealvault.service must set NoNewPrivileges=yes"
grep -qx 'UMask=0077' "$UNITDIR/sealvault.service" || fail "sealvault.service must set UMask=0077"
echo "sealvaultd runs with no_new_privs, umask 0077 and the bounding set $BOUNDING"
start_daemon() {
	# the unit's RuntimeDirectory=sealvault, for the packaged metrics-listen (a unix socket)
	install -d -m 0750 /run/sealvault
	(umask 0077 && exec systemd-socket-activate -l "127.0.0.1:$HTTPS_PORT" \
		setpriv --no-new-privs --bounding-set="$BOUNDING" --inh-caps=-all \
		"${EXEC_START[@]}" --tpm "$TCTI" --tls-cert "$WORK/tls/cert.pem" --tls-key "$WORK/tls/key.pem") \
		>>"$WORK/daemon.log" 2>&1 &
	DAEMON_PID=$!
	for _ in $(seq 100); do
		curl -sf --max-time 10 --cacert "$WORK/tls/cert.pem" "$SERVER/healthz" >/dev/null 2>&1 && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/daemon.log" >&2; fail "sealvaultd exited during start-up"; }
		sleep 0.1
	done
	cat "$WORK/daemon.log" >&2
	fail "sealvaultd did not answer $SERVER/healthz within 10 s"
}
stop_daemon() {
	kill "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
}
step "sealvaultd (installed, socket-activated) as root: the children run as sealvault (+tss) and sealvault-broker"
start_daemon
grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$DAEMON_PID/status" || fail "sealvaultd does not run with no_new_privs"
want_bnd=$(setpriv --bounding-set="$BOUNDING" grep CapBnd /proc/self/status | awk '{print $2}')
[ "$(awk '/^CapBnd:/ {print $2}' "/proc/$DAEMON_PID/status")" = "$want_bnd" ] || fail "sealvaultd's bounding set is not the unit's"
uid_of() { awk '/^Uid:/ {print $2}' "/proc/$1/status"; }
enclave_pid=$(pgrep -P "$DAEMON_PID" -f "^/usr/libexec/sealvault/sealvault-enclave ") || fail "no sealvault-enclave child of sealvaultd"
broker_pid=$(pgrep -P "$DAEMON_PID" -f "^/usr/libexec/sealvault/sealvault-broker ") || fail "no sealvault-broker child of sealvaultd"
[ "$(uid_of "$enclave_pid")" = "$(id -u sealvault)" ] || fail "the enclave does not run as user sealvault"
[ "$(uid_of "$broker_pid")" = "$(id -u sealvault-broker)" ] || fail "the broker does not run as user sealvault-broker"
awk '/^Groups:/' "/proc/$enclave_pid/status" | tr ' \t' '\n\n' | grep -qx "$(getent group tss | cut -d: -f3)" ||
	fail "the enclave does not have group tss"
for pid in "$enclave_pid" "$broker_pid"; do
	grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid/status" || fail "process $pid has no seccomp filter"
done

head -c 32 /dev/urandom >"$WORK/secret"
echo "correct horse battery staple" >"$WORK/pw"
echo "wrong password" >"$WORK/bad"
step "a tenant: sealvault-admin tenant keygen, then tenant add into /etc/sealvault/tenants.d"
stop_daemon
/usr/sbin/sealvault-admin tenant keygen acme --out "$WORK/acme.jwk" >"$WORK/acme.jwks" ||
	fail "sealvault-admin tenant keygen failed"
/usr/sbin/sealvault-admin tenant add acme "$WORK/acme.jwks" || fail "sealvault-admin tenant add failed"
[ "$(stat -c %a /etc/sealvault/tenants.d/acme.jwks)" = 644 ] || fail "the tenant file is not mode 0644"
start_daemon
grep -q 'auth = tokens, 1 tenant(s) from /etc/sealvault/tenants.d' "$WORK/daemon.log" ||
	fail "the enclave did not load the tenant: $(tail -5 "$WORK/daemon.log")"
AUD=$(curl -fsS --cacert "$WORK/tls/cert.pem" "$SERVER/v1/info" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["vault_id"])') || fail "GET /v1/info"
# cli CMD ARGS...: the installed CLI with a fresh token (sealvault-admin token) for its --user
cli() {
	local a prev=
	for a in "$@"; do
		if [ "$prev" = --user ]; then
			/usr/sbin/sealvault-admin token --tenant acme --key "$WORK/acme.jwk" --sub "$a" \
				--aud "$AUD" >"$WORK/token" || fail "sealvault-admin token for $a"
		fi
		prev=$a
	done
	/usr/bin/sealvault "$@" --token "$WORK/token" --server "$SERVER" --cacert "$WORK/tls/cert.pem"
}
step "without a token the vault refuses and the CLI exits 5"
rc=0
/usr/bin/sealvault register --user mallory --password-file "$WORK/pw" --secret-file "$WORK/secret" \
	--server "$SERVER" --cacert "$WORK/tls/cert.pem" 2>"$WORK/err" || rc=$?
[ $rc -eq 5 ] && grep -q 'the vault refused the access token: no access token' "$WORK/err" ||
	fail "a registration without a token: exit $rc, $(cat "$WORK/err")"

step "register alice (3 attempts) and bob with the installed CLI"
cli register --user alice --password-file "$WORK/pw" --secret-file "$WORK/secret" --max-attempts 3 ||
	fail "sealvault register alice failed"
cli register --user bob --password-file "$WORK/pw" --secret-file "$WORK/secret" ||
	fail "sealvault register bob failed"

step "a wrong guess: exit 2 with the attempts left"
rc=0
cli recover --user alice --password-file "$WORK/bad" --out "$WORK/out" 2>"$WORK/err" || rc=$?
cat "$WORK/err"
[ $rc -eq 2 ] || fail "a wrong password should exit 2, got $rc"
grep -q 'attempts left: 2' "$WORK/err" || fail "a wrong guess should report 'attempts left: 2'"

step "recover with the right password: the secret comes back byte-identical"
cli recover --user alice --password-file "$WORK/pw" --out "$WORK/out" || fail "sealvault recover failed"
cmp "$WORK/secret" "$WORK/out" || fail "the recovered secret differs from the registered one"

step "lock-out: wrong guesses until the record is destroyed (exit 3)"
rc=0
for i in 1 2 3 4; do
	rc=0
	cli recover --user alice --password-file "$WORK/bad" --out "$WORK/out" 2>"$WORK/err" || rc=$?
	echo "wrong guess $i: exit $rc: $(tr '\n' ' ' <"$WORK/err")"
	[ $rc -eq 3 ] && break
	[ $rc -eq 2 ] || fail "a wrong guess should exit 2 (or 3 once locked out), got $rc"
done
[ $rc -eq 3 ] || fail "alice is not locked out after 3 wrong guesses in a row"
# That was alice's sixth login in a few seconds: the packaged per-identifier rate (5 a minute,
# 5 at once) answers 429 (exit 6, nothing charged) and the CLI says how long to wait.
rc=0
cli recover --user alice --password-file "$WORK/pw" --out "$WORK/out" 2>"$WORK/err" || rc=$?
if [ $rc -eq 6 ]; then
	wait_s=$(sed -n 's/.*retry in \([0-9]*\) s.*/\1/p' "$WORK/err" | head -n 1)
	[ -n "$wait_s" ] && [ "$wait_s" -le 60 ] || fail "exit 6 without a wait in seconds: $(cat "$WORK/err")"
	echo "the per-identifier login rate: exit 6, retry in $wait_s s"
	sleep "$wait_s"
	rc=0
	cli recover --user alice --password-file "$WORK/pw" --out "$WORK/out" 2>/dev/null || rc=$?
fi
[ $rc -eq 3 ] || fail "after the lock-out even the right password must get exit 3, got $rc"

step "sealvault-admin status (vault running): answered through sealvaultd's admin socket"
getent group sealvault-admin >/dev/null || fail "group sealvault-admin was not created (sysusers)"
/usr/sbin/sealvault-admin status >"$WORK/status-online.txt" ||
	fail "sealvault-admin status through the admin socket failed (exit $?)"
grep -qx 'users: 1' "$WORK/status-online.txt" && grep -qx 'agree: yes' "$WORK/status-online.txt" ||
	fail "sealvault-admin status through the admin socket: $(cat "$WORK/status-online.txt")"
grep -q 'admin socket: uid 0 .*: status: done' "$WORK/daemon.log" ||
	fail "sealvaultd did not answer the status itself"

# --- 5. upgrade: the vault is kept and still serves -------------------------------------------
stop_daemon
step "sealvault-admin status (vault stopped): state and TPM agree; it names the NV index"
runuser -u sealvault -- /usr/sbin/sealvault-admin status --state-dir "$STATE" --tpm "$TCTI" >"$WORK/status.txt" ||
	fail "sealvault-admin status failed (exit $?)"
cat "$WORK/status.txt"
grep -qx 'agree: yes' "$WORK/status.txt" || fail "sealvault-admin status: state and TPM do not agree"
grep -qx 'users: 1' "$WORK/status.txt" && grep -qx 'destroyed: 1' "$WORK/status.txt" ||
	fail "sealvault-admin status should count bob as a user and alice as destroyed"
grep -q '^nv-index: ' "$WORK/status.txt" ||
	fail "sealvault-admin status does not print nv-index (the purge message tells operators it does)"
snapshot() { (cd "$STATE" && find . -printf '%p %U:%G %m %s\n' | sort && find . -type f -exec sha256sum {} + | sort); }
snapshot >"$WORK/state.before"
# A real upgrade (old prerm "upgrade", new postinst "configure OLD"): the same package repacked
# with a higher version.
step "upgrade sealvault $version -> $version+upgradetest"
dpkg-deb -R "$DEB_OUT/sealvault_${version}_${arch}.deb" "$WORK/repack"
sed -i "s/^Version: .*/Version: ${version}+upgradetest/" "$WORK/repack/DEBIAN/control"
dpkg-deb -b "$WORK/repack" "$WORK/sealvault_${version}+upgradetest_${arch}.deb" >/dev/null
DEBIAN_FRONTEND=noninteractive $APT install -y -q "$WORK/sealvault_${version}+upgradetest_${arch}.deb" \
	>"$WORK/upgrade.log" 2>&1 || {
	cat "$WORK/upgrade.log" >&2
	fail "upgrading the sealvault package failed"
}
[ "$(dpkg-query -W -f='${Version}' sealvault)" = "${version}+upgradetest" ] || fail "the upgrade did not happen"
if grep -q 'no vault is provisioned' "$WORK/upgrade.log"; then
	fail "the upgrade claims that no vault is provisioned"
fi
snapshot | diff -u "$WORK/state.before" - || fail "upgrading the package changed $STATE"
start_daemon
cli recover --user bob --password-file "$WORK/pw" --out "$WORK/out" || fail "bob cannot recover after the upgrade"
cmp "$WORK/secret" "$WORK/out" || fail "bob's secret differs after the upgrade"
stop_daemon
under_systemd "$HTTPS_PORT" "$TCTI"
snapshot >"$WORK/state.before"

# --- 6. remove and purge: the vault survives --------------------------------------------------
step "apt-get remove"
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $APT remove -y -q $PKGS >"$WORK/remove.log" 2>&1 || {
	cat "$WORK/remove.log" >&2
	fail "apt-get remove failed"
}
[ ! -e /usr/sbin/sealvaultd ] || fail "/usr/sbin/sealvaultd is still there after remove"
snapshot | diff -u "$WORK/state.before" - || fail "apt-get remove changed $STATE"

step "apt-get purge"
# Packages without conffiles are gone with the remove already; purge the ones dpkg still knows.
left=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q config-files && left="$left $p"
done
echo "left after remove (config files):$left"
case " $left " in *" sealvault "*) ;; *) fail "sealvault left no config files after remove (its conffile should stay until purge)" ;; esac
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $APT purge -y -q $left >"$WORK/purge.log" 2>&1 || {
	cat "$WORK/purge.log" >&2
	fail "apt-get purge failed"
}
for p in $PKGS; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q -E 'installed|config-files'; then
		fail "$p is still installed (or has config files) after purge"
	fi
done
[ ! -e /etc/sealvault/sealvault.conf ] || fail "purge left /etc/sealvault/sealvault.conf behind"
snapshot | diff -u "$WORK/state.before" - || fail "apt-get purge changed or deleted $STATE"
grep -q 'rm -rf /var/lib/sealvault' "$WORK/purge.log" ||
	fail "purge does not tell the operator how to destroy the vault deliberately"
# sealvault-admin is gone at purge time: the message must name the NV index itself
nv=$(sed -n 's/^nv-index: //p' "$WORK/status.txt")
grep -qF "tpm2_nvundefine $nv " "$WORK/purge.log" ||
	fail "purge does not name the vault's NV index $nv for tpm2_nvundefine"
! grep -q 'sealvault-admin status --state-dir' "$WORK/purge.log" ||
	fail "purge asks for sealvault-admin, which the purge has just removed"
grep -A8 'was KEPT' "$WORK/purge.log"
echo "$STATE survived remove and purge: $(find "$STATE" -type f | wc -l) files unchanged"
