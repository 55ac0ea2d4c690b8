#!/usr/bin/env python3
"""supervise: what systemd does for sealvault (packaging/systemd/sealvault.socket and .service),
for tests that need the vault to come back after its enclave died.

Binds the HTTPS listener itself (127.0.0.1, port 0 or --port), writes the port to --port-file and
keeps the socket open for as long as it runs, like sealvault.socket: connections made while
sealvaultd is down wait in the backlog instead of being refused. Then runs the command given after
`--` with the listener inherited (the argument `{fd}` is replaced by its number: pass
`--listen-fd {fd}`), and when it exits
non-zero starts it again after --restart-sec (Restart=on-failure; the unit has 5 s, tests use
less), at most --max-restarts times. SIGTERM/SIGINT: forwarded to the child, then exit once it
is gone. Each start and exit is logged to stderr with a timestamp.

Usage: supervise.py --port-file F [--restart-sec S] [--max-restarts N] -- sealvaultd ... --listen-fd {fd}
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def log(msg):
    print("supervise: %.3f %s" % (time.time(), msg), file=sys.stderr, flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--restart-sec", type=float, default=1.0)
    p.add_argument("--max-restarts", type=int, default=5)
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        p.error("no command after --")

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.port))
    ls.listen(1024)  # sealvault.socket: Backlog=1024
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.replace(tmp, a.port_file)

    child = None
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    fd = ls.fileno()
    cmd = [str(fd) if c == "{fd}" else c for c in cmd]

    def start():
        return subprocess.Popen(cmd, pass_fds=(fd,))

    restarts = 0
    child = start()
    log("started %s (pid %d)" % (os.path.basename(cmd[0]), child.pid))
    while True:
        rc = child.wait()
        if stopping:
            log("stopped (exit %d)" % rc)
            return 0
        log("%s exited with %d" % (os.path.basename(cmd[0]), rc))
        if rc == 0:
            return 0
        if restarts >= a.max_restarts:
            log("giving up after %d restarts" % restarts)
            return 1
        restarts += 1
        time.sleep(a.restart_sec)
        if stopping:
            return 0
        child = start()
        log("restart %d: pid %d" % (restarts, child.pid))


if __name__ == "__main__":
    sys.exit(main())
