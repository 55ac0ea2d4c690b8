#!/usr/bin/env python3
"""Run sealvault-enclave or sealvault-broker the way sealvaultd does (one end of a SOCK_SEQPACKET
socketpair on descriptor 3, optionally as another user) and report how it ended.

usage: run-child.py [--user NAME] [--hold S] [--send HEX]... [--expect-reply]
                    (--expect-signal N | --expect-exit N) -- PROG ARG...
The socketpair stays open for at most S seconds (default 10) and is then closed. With --send, once
the child says on stderr that it is serving, each HEX datagram is written to it in turn (with
--expect-reply, one reply datagram must come back for each, after the enclave's READY frame). Prints "signal N" or "exit N" and
the child's stderr; exit status 0 when it ended as expected.
"""
import argparse
import os
import pwd
import signal
import socket
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--user")
ap.add_argument("--hold", type=float, default=10.0)
ap.add_argument("--send", action="append", default=[])
ap.add_argument("--expect-reply", action="store_true")
g = ap.add_mutually_exclusive_group(required=True)
g.add_argument("--expect-signal", type=int)
g.add_argument("--expect-exit", type=int)
ap.add_argument("cmd", nargs=argparse.REMAINDER)
a = ap.parse_args()
cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd

mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
pw = pwd.getpwnam(a.user) if a.user else None


rd, wr = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        os.dup2(wr, 2)
        os.dup2(theirs.fileno(), 3)
        os.closerange(4, 1 << 16)
        if pw is not None:
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        os.execv(cmd[0], cmd)
    finally:
        os._exit(127)
os.close(wr)
theirs.close()
os.set_blocking(rd, False)
err = b""


def collect():
    global err
    try:
        while True:
            chunk = os.read(rd, 65536)
            if not chunk:
                return
            err += chunk
    except BlockingIOError:
        pass


status = None
replies = 0
saw_ready = False
deadline = time.monotonic() + a.hold
pending = list(a.send)
while status is None and time.monotonic() < deadline:
    collect()
    if pending and b"serving" in err:
        mine.send(bytes.fromhex(pending.pop(0)))
        if a.expect_reply:
            mine.settimeout(5)
            try:
                # the enclave says READY (type 66) once it serves; a reply is type 64
                while True:
                    d = mine.recv(70000)
                    if len(d) >= 4 and int.from_bytes(d[2:4], "big") == 66:
                        saw_ready = True
                        continue
                    if len(d) >= 4 and int.from_bytes(d[2:4], "big") == 64:
                        replies += 1
                    break
            except OSError:
                pass
    wpid, st = os.waitpid(pid, os.WNOHANG)
    if wpid == pid:
        status = st
    else:
        time.sleep(0.02)
mine.close()
if status is None:
    deadline = time.monotonic() + 10
    while status is None and time.monotonic() < deadline:
        collect()
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            status = st
        else:
            time.sleep(0.02)
    if status is None:
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
collect()
err = err.decode(errors="replace")
if os.WIFSIGNALED(status):
    got = "signal %d" % os.WTERMSIG(status)
    ok = a.expect_signal == os.WTERMSIG(status)
else:
    got = "exit %d" % os.WEXITSTATUS(status)
    ok = a.expect_exit == os.WEXITSTATUS(status)
if a.expect_reply and replies != len(a.send):
    ok = False
    got += " (%d of %d requests answered)" % (replies, len(a.send))
if a.expect_reply and not saw_ready:
    ok = False
    got += " (no READY frame before the replies)"
print(got)
sys.stdout.write("".join("  | " + l + "\n" for l in err.splitlines()))
sys.exit(0 if ok else 1)
