#!/usr/bin/env python3
"""Slow and greedy clients against a sealvault broker (used by badinput.sh).

usage: slowclient.py PORT CACERT CAP MAX_CLOSE_S
CAP is the broker's --max-conns-per-ip. Opens CAP - 1 TLS connections that trickle a request one
byte every 0.3 s, checks that a normal request made meanwhile is answered, fills the last slot,
checks that one more connection is refused, and that the server closes every trickling
connection within MAX_CLOSE_S seconds; afterwards a normal request works again. Then the same
with CAP connections that never send a byte (not even a TLS ClientHello). Prints one line per
check; exit status 0 when all passed.
"""
import socket
import ssl
import sys
import time

port, cacert, cap, max_close = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
ctx = ssl.create_default_context(cafile=cacert)
ctx.check_hostname = False
failures = 0


def check(what, cond):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures += 1


def connect():
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def request(path):
    s = connect()
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.split(b"\r\n", 1)[0]


conns = []
start = time.monotonic()
for i in range(cap - 1):
    conns.append(connect())
check("%d slow connections accepted" % (cap - 1), len(conns) == cap - 1)
status = request("/healthz")
check("a normal request while they trickle is answered: %s" % status.decode(errors="replace"),
      status.startswith(b"HTTP/1.1 200"))
conns.append(connect())
hold = len(conns)

try:
    extra = connect()
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    refused = extra.recv(100) == b""
except (ssl.SSLError, OSError):
    refused = True
check("connection over the per-address cap (%d) refused" % cap, refused)

closed = {}
line = b"POST /v1/login/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
pos = 0
while len(closed) < hold and time.monotonic() - start < max_close + 5:
    for i, s in enumerate(conns):
        if i in closed:
            continue
        try:
            s.settimeout(0.01)
            s.sendall(line[pos % len(line):pos % len(line) + 1])
            if s.recv(1) == b"":
                closed[i] = time.monotonic() - start
        except socket.timeout:
            pass
        except (ssl.SSLError, OSError):
            closed[i] = time.monotonic() - start
    pos += 1
    time.sleep(0.3)

check("server closed all %d trickling connections (closed %d)" % (hold, len(closed)),
      len(closed) == hold)
if closed:
    worst = max(closed.values())
    check("slowest close after %.1f s (limit %.1f s)" % (worst, max_close), worst <= max_close)
status = request("/healthz")
check("a normal request afterwards is answered: %s" % status.decode(errors="replace"),
      status.startswith(b"HTTP/1.1 200"))

# Connections that never even send a ClientHello count against the cap too, and are closed by
# the deadline.
raw = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(cap)]
time.sleep(0.5)
try:
    extra = connect()
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    refused = extra.recv(100) == b""
except (ssl.SSLError, OSError):
    refused = True
check("with %d silent connections held, one more is refused" % cap, refused)
start = time.monotonic()
open_raw = list(raw)
while open_raw and time.monotonic() - start < max_close + 5:
    for s in list(open_raw):
        try:
            s.settimeout(0.05)
            if s.recv(1) == b"":
                open_raw.remove(s)
        except socket.timeout:
            pass
        except OSError:
            open_raw.remove(s)
worst = time.monotonic() - start
check("server closed all %d silent connections (%d left) within %.1f s" % (cap, len(open_raw), worst),
      not open_raw and worst <= max_close)
status = request("/healthz")
check("a normal request after that is answered: %s" % status.decode(errors="replace"),
      status.startswith(b"HTTP/1.1 200"))
sys.exit(1 if failures else 0)
