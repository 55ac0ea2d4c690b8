# shellcheck shell=bash
# Sourced by tests/packaging/deb.sh: the installed units under a real systemd as PID 1.
#
# CI machines run no systemd as PID 1, but as root they can start one: systemd(1) in a fresh PID
# and mount namespace (unshare), with its own tmpfs on /run, /tmp, /var/tmp and /var/log/journal,
# so what it writes there (the runtime units, the journal, /run/sealvault) disappears with it. It shares the
# file system, the network and the users with the machine, so it runs the units the package
# installed, on the test's loopback port, against the vault in /var/lib/sealvault.
#
# Two test-only runtime drop-ins (under the namespace's /run, never in /etc): the socket listens
# on the test's port instead of 443, and the service may reach the swtpm that stands in for
# /dev/tpmrm0 over loopback TCP (PrivateNetwork= and the address-family list relaxed for that).
# The configuration the unit names, /etc/sealvault/sealvault.conf, is bind-mounted over inside the
# namespace with one naming the swtpm and the test's certificate. Everything else is the unit as
# shipped: Type=notify, ExecCondition=, ExecReload=, RuntimeDirectory=, Restart=, the sandbox.
#
# sd_boot; sd CMD...   runs CMD inside (systemctl, journalctl, curl on /run/...); sd_halt.

SD_PID=
SD_LOG=

sd() { nsenter -t "$SD_PID" -m -p -- "$@"; }

sd_halt() {
	[ -n "$SD_PID" ] || return 0
	# SIGKILL to a PID namespace's init ends every process in it (the vault included) and the
	# mounts go with the namespace.
	kill -KILL "$SD_PID" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$SD_PID" 2>/dev/null || break; sleep 0.1; done
	SD_PID=
}

# sd_boot LOG: start systemd as PID 1 of a new PID and mount namespace; wait until it has booted.
sd_boot() {
	SD_LOG=$1
	[ -x /lib/systemd/systemd ] || fail "no /lib/systemd/systemd"
	# Inside, before systemd starts: tmpfs on /run, /tmp, /var/tmp and /var/log/journal, and every
	# unit of the machine's sysinit.target and timers.target masked (a runtime mask in the new
	# /run) except the journal: this systemd shares the machine's file system and kernel, and its
	# boot must not clean the machine's /tmp (tmpfiles' "D /tmp"), apply sysctls, trigger udev or
	# start apt's timers. What remains is the journal, D-Bus's socket, the targets and the units
	# under test.
	unshare --pid --fork --mount --mount-proc --propagation private -- bash -c '
		set -e
		mount -t tmpfs -o mode=0755 tmpfs /run
		mkdir -m 1777 /run/lock
		mount -t tmpfs -o mode=1777 tmpfs /tmp
		mount -t tmpfs -o mode=1777 tmpfs /var/tmp
		mount -t tmpfs -o mode=2755 tmpfs /var/log/journal
		mkdir -p /run/systemd/system
		for u in /lib/systemd/system/sysinit.target.wants/* /etc/systemd/system/sysinit.target.wants/* \
			/lib/systemd/system/timers.target.wants/* /etc/systemd/system/timers.target.wants/* \
			systemd-tmpfiles-clean.service systemd-udevd-control.socket \
			systemd-udevd-kernel.socket systemd-initctl.socket; do
			u=${u##*/}
			case $u in "*" | systemd-journald.service) continue ;; esac
			ln -sf /dev/null "/run/systemd/system/$u"
		done
		[ -L /run/systemd/system/systemd-tmpfiles-setup.service ]
		exec env -i container=sealvault-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			/lib/systemd/systemd --system --unit=basic.target --log-target=console \
			--show-status=no' >"$SD_LOG" 2>&1 &
	local unshare_pid=$!
	for _ in $(seq 100); do
		SD_PID=$(pgrep -P "$unshare_pid" -x systemd || true)
		[ -n "$SD_PID" ] && break
		kill -0 "$unshare_pid" 2>/dev/null || { cat "$SD_LOG" >&2; fail "systemd did not start in a new namespace (above)"; }
		sleep 0.1
	done
	[ -n "$SD_PID" ] || fail "systemd did not appear in its namespace within 10 s"
	# nothing ("Failed to connect to bus") or "offline" until systemd's own socket exists;
	# --wait then waits out "starting"
	local state=
	for _ in $(seq 120); do
		state=$(timeout 60 nsenter -t "$SD_PID" -m -p -- systemctl is-system-running --wait 2>/dev/null || true)
		case $state in "" | offline) sleep 0.5 ;; *) break ;; esac
	done
	case $state in
	running | degraded) ;;
	*)
		cat "$SD_LOG" >&2
		fail "systemd in its namespace did not finish booting (state: '$state')"
		;;
	esac
	[ "$(sd cat /proc/1/comm)" = systemd ] || fail "PID 1 of the namespace is not systemd"
	echo "systemd $(sd systemctl --version | head -1 | awk '{print $2}') runs as PID 1 of its own namespace (host pid $SD_PID), state $state"
}

# sd_log: what sealvault.service wrote to the journal (captured whole: a grep -q on a pipe
# would fail the pipe under pipefail once the journal is long)
sd_log() { sd journalctl -u sealvault.service --no-pager -o cat; }

# sd_show UNIT PROP: one property of a unit, as systemd reports it.
sd_show() { sd systemctl show -P "$2" "$1"; }

# sd_fingerprint PORT: the SHA-256 fingerprint of the certificate served on 127.0.0.1:PORT.
sd_fingerprint() {
	openssl s_client -connect "127.0.0.1:$1" -servername 127.0.0.1 </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null | cut -d= -f2
}

# under_systemd PORT TCTI: the whole check; deb.sh defines fail, step, cli, $WORK, $STATE.
under_systemd() {
	local port=$1 tcti=$2 root dir
	step "the installed units under systemd as PID 1 (its own PID and mount namespace)"
	sd_boot "$WORK/systemd.log"
	root=/proc/$SD_PID/root
	dir=/run/sealvault-test

	# the test's configuration, certificate and drop-ins, in the namespace's /run
	install -d -m 0755 "$root$dir" "$root$dir/tls"
	install -m 0644 "$WORK/tls/cert.pem" "$root$dir/tls/cert.pem"
	install -m 0640 -g sealvault-broker "$WORK/tls/key.pem" "$root$dir/tls/key.pem"
	sed -e "s|^tpm = .*|tpm = $tcti|" -e "s|^tls-cert = .*|tls-cert = $dir/tls/cert.pem|" \
		-e "s|^tls-key = .*|tls-key = $dir/tls/key.pem|" /etc/sealvault/sealvault.conf >"$root$dir/sealvault.conf"
	grep -qx "tpm = $tcti" "$root$dir/sealvault.conf" || fail "the packaged sealvault.conf has no 'tpm =' line to point at the swtpm"
	sd mount --bind "$dir/sealvault.conf" /etc/sealvault/sealvault.conf
	install -d "$root/run/systemd/system/sealvault.service.d" "$root/run/systemd/system/sealvault.socket.d"
	cat >"$root/run/systemd/system/sealvault.service.d/50-test-swtpm.conf" <<-EOF
		# test only: the TPM is a swtpm on loopback TCP instead of /dev/tpmrm0
		[Service]
		PrivateNetwork=no
		IPAddressDeny=
		RestrictAddressFamilies=AF_UNIX AF_INET
	EOF
	cat >"$root/run/systemd/system/sealvault.socket.d/50-test-port.conf" <<-EOF
		[Socket]
		ListenStream=
		ListenStream=127.0.0.1:$port
	EOF
	sd systemctl daemon-reload

	# Type=notify: `systemctl start` returns only once sealvaultd said READY=1 (the enclave serves)
	sd systemctl start sealvault.socket || fail "systemctl start sealvault.socket failed"
	if ! sd timeout 120 systemctl start sealvault.service; then
		sd systemctl status --no-pager sealvault.service >&2 || true
		sd journalctl -u sealvault.service --no-pager >&2 || true
		fail "systemctl start sealvault.service failed (status and journal above)"
	fi
	[ "$(sd_show sealvault.service Type)" = notify ] || fail "sealvault.service is not Type=notify as installed"
	[ "$(sd_show sealvault.service ActiveState)/$(sd_show sealvault.service SubState)" = active/running ] ||
		fail "sealvault.service is $(sd_show sealvault.service ActiveState)/$(sd_show sealvault.service SubState) after start"
	local main
	main=$(sd_show sealvault.service MainPID)
	[ "$main" -gt 1 ] || fail "sealvault.service has no main process"
	[ "$(sd cat "/proc/$main/comm")" = sealvaultd ] || fail "the unit's main process is not sealvaultd"
	grep -q . <<<"$(sd_log)" ||
		fail "nothing from sealvault.service reached the journal"
	echo "sealvault.service: active/running after READY=1, main process $main (sealvaultd), $(sd_show sealvault.service NRestarts) restarts"

	cli recover --user bob --password-file "$WORK/pw" --out "$WORK/out" || fail "bob cannot recover from the service under systemd"
	cmp "$WORK/secret" "$WORK/out" || fail "bob's secret differs under systemd"

	# the audit trail reaches the real journald as structured records (sd_journal_send), the
	# identifier only as the hash sealvault-admin audit-id computes with the unit's key file
	local idhash rec
	idhash=$(sd /usr/sbin/sealvault-admin audit-id --tenant acme bob) || fail "sealvault-admin audit-id --tenant acme bob failed under systemd"
	rec=$(sd journalctl --no-pager -o export SEALVAULT_EVENT=recovered "SEALVAULT_ID_HASH=$idhash")
	grep -q '^MESSAGE_ID=' <<<"$rec" && grep -q '^_SYSTEMD_UNIT=sealvault.service$' <<<"$rec" ||
		fail "no structured 'recovered' audit record for bob's hash $idhash in the journal"
	local journal
	journal=$(sd journalctl --no-pager -o export -u sealvault.service)
	! grep -aq '=bob$' <<<"$journal" ||
		fail "the identifier bob appears in clear in the journal"
	echo "audit: bob's recovery is a journal record with MESSAGE_ID, SEALVAULT_ID_HASH=$idhash, no clear identifier"

	# /metrics on the unit's RuntimeDirectory socket, with the group the unit gives it
	local msock=/run/sealvault/metrics.sock
	[ "$(sd stat -c '%G' "$msock")" = sealvault-metrics ] || fail "$msock is not in group sealvault-metrics"
	local metrics # (into a variable first: grep -q closing the pipe would fail it under pipefail)
	metrics=$(sd curl -sf --unix-socket "$msock" http://localhost/metrics) || fail "/metrics does not answer on $msock under systemd"
	grep -q '^sealvault_' <<<"$metrics" || fail "/metrics on $msock under systemd has no sealvault_ metrics"

	# the admin socket: the unit's SupplementaryGroups= lets sealvaultd give it group
	# sealvault-admin, mode 0660; sealvault-admin status (as root, in the namespace, reading the
	# packaged sealvault.conf) is answered through it
	local asock=/run/sealvault/admin.sock
	[ "$(sd stat -c '%G %a' "$asock")" = "sealvault-admin 660" ] ||
		fail "$asock is $(sd stat -c '%G %a' "$asock"), expected group sealvault-admin, mode 660"
	sd /usr/sbin/sealvault-admin status >"$WORK/status-systemd.txt" ||
		fail "sealvault-admin status through the admin socket under systemd failed: $(cat "$WORK/status-systemd.txt")"
	grep -qx 'users: 1' "$WORK/status-systemd.txt" || fail "online status under systemd: $(cat "$WORK/status-systemd.txt")"
	grep -q 'admin socket: uid 0 .*: status: done' <<<"$(sd_log)" ||
		fail "the status under systemd did not go through sealvaultd's admin socket"
	echo "sealvault-admin status under systemd: answered through $asock (group sealvault-admin, 0660)"

	# ExecReload=: a renewed certificate is served afterwards, by the same processes
	local before after
	before=$(sd_fingerprint "$port")
	[ -n "$before" ] || fail "cannot read the served certificate's fingerprint"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/tls/key2.pem" -out "$WORK/tls/cert2.pem" 2>/dev/null
	install -m 0640 -g sealvault-broker "$WORK/tls/key2.pem" "$root$dir/tls/key.pem.new"
	install -m 0644 "$WORK/tls/cert2.pem" "$root$dir/tls/cert.pem.new"
	mv "$root$dir/tls/key.pem.new" "$root$dir/tls/key.pem"
	mv "$root$dir/tls/cert.pem.new" "$root$dir/tls/cert.pem"
	sd systemctl reload sealvault.service || fail "systemctl reload sealvault.service failed"
	for _ in $(seq 100); do
		after=$(sd_fingerprint "$port")
		[ -n "$after" ] && [ "$after" != "$before" ] && break
		sleep 0.1
	done
	[ "$after" != "$before" ] || fail "after systemctl reload the old certificate is still served"
	[ "$(sd_show sealvault.service MainPID)" = "$main" ] || fail "systemctl reload restarted sealvaultd"
	grep -q '^sealvaultd: reloaded' <<<"$(sd_log)" ||
		fail "the reload left no 'sealvaultd: reloaded' line in the journal"
	# the test's own copies follow the renewal (cli trusts cert.pem; deb.sh serves them later)
	install -m 0644 "$WORK/tls/cert2.pem" "$WORK/tls/cert.pem"
	install -m 0640 -g sealvault-broker "$WORK/tls/key2.pem" "$WORK/tls/key.pem"
	cli recover --user bob --password-file "$WORK/pw" --out "$WORK/out" || fail "bob cannot recover after the reload"
	echo "systemctl reload: certificate ${before:0:17}... -> ${after:0:17}..., main process unchanged"

	# Restart=on-failure: a child that dies takes sealvaultd down and systemd starts the pair again
	local broker
	broker=$(sd pgrep -P "$main" -x sealvault-broke || true)
	[ -n "$broker" ] || fail "no sealvault-broker child of sealvaultd under systemd"
	sd kill -KILL "$broker"
	for _ in $(seq 200); do
		[ "$(sd_show sealvault.service NRestarts)" -ge 1 ] && [ "$(sd_show sealvault.service SubState)" = running ] &&
			[ "$(sd_show sealvault.service MainPID)" != "$main" ] && break
		sleep 0.1
	done
	[ "$(sd_show sealvault.service NRestarts)" -ge 1 ] || fail "systemd did not restart sealvault.service after its broker died"
	[ "$(sd_show sealvault.service SubState)" = running ] || fail "sealvault.service is not running again after the restart"
	cli recover --user bob --password-file "$WORK/pw" --out "$WORK/out" || fail "bob cannot recover after systemd restarted the service"
	echo "a killed broker: systemd restarted the service ($(sd_show sealvault.service NRestarts) restart), bob recovers"

	# systemctl stop: a clean exit, not a failure
	sd systemctl stop sealvault.service sealvault.socket
	[ "$(sd_show sealvault.service ActiveState)" = inactive ] || fail "sealvault.service is $(sd_show sealvault.service ActiveState) after stop"
	[ "$(sd_show sealvault.service Result)" = success ] || fail "stopping sealvault.service ended with result $(sd_show sealvault.service Result)"
	# KillMode=mixed: the SIGTERM reached sealvaultd alone, whose drain found nothing pending
	# (with systemd's default mode the enclave dies under it and the stop is a failure)
	grep -q '^sealvaultd: every pending login has finished' <<<"$(sd_log)" ||
		fail "systemctl stop did not go through sealvaultd's drain (no 'every pending login has finished' in the journal)"
	echo "systemctl stop: the drain ran (SIGTERM to sealvaultd alone), inactive, result success"
	sd_halt
}
