#!/usr/bin/python3
"""A forging broker: runs sealvault-enclave as sealvaultd does (one end of a SOCK_SEQPACKET
socketpair on descriptor 3), then sends it vault requests as a compromised broker could, and
prints one line per reply: "<request> status <N>" (common/msg.h enum sv_status), then the
enclave's /metrics lines named by --metric.

usage: enclave-forge.py [--user NAME] [--token FILE] --metric NAME... -- ENCLAVE ARG...
Requests (payload: u16 token length, token, body; common/msg.h MSG_F_TOKEN):
  login_start_notoken   login/start for "alice" with no token
  login_start_id0       login/start for the tokens-mode key of acme/alice, no token
  login_start_token     login/start for "alice" with --token (a token for another sub)
  register_notoken      register/start for "mallory", no token
  garbled_prefix        a login/start whose token length runs past the payload
"""
import argparse
import os
import pwd
import socket
import struct
import sys
import time

KE1 = bytes.fromhex(  # RFC 9807 C.1.1 (ristretto255-SHA512): a valid KE1
    "c4dedb0ba6ed5d965d6f250fbe554cd45cba5dfcce3ce836e4aee778aa3cd44dda7e07376d6d6f034cfa9bb537d1"
    "1b8c6b4238c334333d1f0aebb380cae6a6cc6e29bee50701498605b2c085d7b241ca15ba5c32027dd21ba420b94ce6"
    "0da326")
REG_REQUEST = KE1[:32]  # a valid group element

ap = argparse.ArgumentParser()
ap.add_argument("--user")
ap.add_argument("--token")
ap.add_argument("--metric", action="append", default=[])
ap.add_argument("cmd", nargs=argparse.REMAINDER)
a = ap.parse_args()
cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
token = open(a.token, "rb").read().strip() if a.token else b""


def body_id(ident, tail):
    return bytes([1]) + struct.pack(">H", len(ident)) + ident + tail


def payload(tok, body):
    return struct.pack(">H", len(tok)) + tok + body


key0 = b"\x00\x04acme" + b"alice"
requests = [
    ("login_start_notoken", 3, payload(b"", body_id(b"alice", KE1))),
    ("login_start_id0", 3, payload(b"", body_id(key0, KE1))),
    ("login_start_token", 3, payload(token, body_id(b"alice", KE1))),
    ("register_notoken", 1, payload(b"", body_id(b"mallory", REG_REQUEST))),
    ("garbled_prefix", 3, struct.pack(">H", 500) + body_id(b"alice", KE1)),
]

mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
pw = pwd.getpwnam(a.user) if a.user else None
log = open(os.environ.get("FORGE_LOG", "/dev/null"), "wb")
pid = os.fork()
if pid == 0:
    try:
        os.dup2(log.fileno(), 2)
        os.dup2(theirs.fileno(), 3)
        os.closerange(4, 1 << 16)
        if pw is not None:
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        os.execv(cmd[0], cmd)
    finally:
        os._exit(127)
theirs.close()
mine.settimeout(30)


def recv():
    d = mine.recv(70000)
    if len(d) < 12:
        sys.exit("enclave-forge: the enclave closed the link (see FORGE_LOG)")
    ver, typ, n, rid = struct.unpack(">HHII", d[:12])
    return typ, rid, d[12:12 + n]


typ, _, _ = recv()
if typ != 66:
    sys.exit("enclave-forge: expected READY (66) first, got type %d" % typ)
rid = 1
for name, typ, p in requests:
    mine.send(struct.pack(">HHII", 1, typ, len(p), rid) + p)
    t, r, body = recv()
    if t != 64 or r != rid:
        sys.exit("enclave-forge: %s: not a reply (type %d, id %d)" % (name, t, r))
    print("%s status %d %s" % (name, body[0], body[1:].decode("ascii", "replace")))
    rid += 1
mine.send(struct.pack(">HHII", 1, 32, 0, rid))
t, r, body = recv()
for line in body[1:].decode().splitlines():
    if any(line.startswith(m + " ") or line.startswith(m + "{") for m in a.metric):
        print(line)
mine.close()
os.waitpid(pid, 0)
