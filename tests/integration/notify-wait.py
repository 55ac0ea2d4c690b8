#!/usr/bin/env python3
"""Stand in for systemd's notification socket (sd_notify(3)) in check-daemon-config.

notify-wait.py SOCKET PORT_FILE CACERT: binds the unix datagram socket SOCKET and waits (60 s at
most) for a message with READY=1. At that moment GET /healthz on the HTTPS port named in PORT_FILE
must answer 200: READY=1 says the vault serves, so it must never come earlier. Prints every message
received; exits 0 when READY=1 came while /healthz answered 200, 1 otherwise."""
import os
import socket
import subprocess
import sys
import time


def main():
    path, port_file, cacert = sys.argv[1:4]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)  # sealvaultd may run as another user than this script
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            msg = s.recv(4096).decode(errors="replace")
        except socket.timeout:
            break
        print("notify: " + msg.replace("\n", " | "), flush=True)
        if "READY=1" not in msg.split("\n"):
            continue
        with open(port_file) as f:
            port = f.read().strip()
        code = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
             "--cacert", cacert, f"https://127.0.0.1:{port}/healthz"],
            capture_output=True, text=True).stdout
        print(f"notify: GET /healthz when READY=1 came: {code}", flush=True)
        return 0 if code == "200" else 1
    print("notify: no READY=1 within 60 s", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
