#!/usr/bin/env python3
"""tpm-proxy: a test proxy between sealvault processes and one swtpm.

swtpm's server port speaks the raw TPM 2.0 command protocol on one TCP connection at a time and
has no resource manager. This proxy keeps ONE upstream connection to swtpm and lets any number of
clients (numbered 1, 2, ... in connection order) share it:

  * Commands are forwarded one at a time (global serialisation); each response goes back to the
    client that sent the command. A command or response whose header size is < 10 or > 64 KiB
    ends that connection; a command larger than the TPM's TPM_PT_MAX_COMMAND_SIZE (swtpm: 4096)
    is answered TPM_RC_COMMAND_SIZE without being forwarded (swtpm would read the rest of it as
    the next command). If the upstream link drops, the client whose command was in flight is
    disconnected (the TPM may or may not have run it) and the next command reconnects to the
    same host and port; at start and after a reconnect, objects and sessions no client owns are
    flushed (leftovers of earlier direct users: clients can no longer see them).
  * A small resource manager: per client, the transient objects and sessions created by its
    successful commands are tracked. GetCapability(TPM_CAP_HANDLES) over the transient, loaded
    session or saved session range is answered by the proxy with that client's handles only, so
    an enclave's flush of "stale" handles at start (enclave/tpm.c flush_stale) never reaches
    another client's objects; FlushContext of another client's handle is refused without being
    forwarded; a client's handles are flushed when it disconnects. When the TPM runs out of
    object or session slots (swtpm has 3 of each) while another client holds some, the command
    waits for a flush or disconnect and is sent again (a real resource manager would swap
    contexts out instead).
  * A discrete chip: --cmd-delay-ms before every forwarded command, --nv-delay-ms more before
    NV-writing ones, and --transient-rate: NV-writing commands answered by the proxy with
    TPM_RC_NV_RATE / RETRY / YIELDED / NV_UNAVAILABLE instead of being forwarded.
  * Flash writes (--swtpm-state DIR, swtpm's --tpmstate directory): swtpm rewrites its state
    file (tpm2-00.permall, through a temporary file and rename) whenever libtpms commits NV, i.e.
    exactly when a real chip would write its flash. An increment of an orderly counter whose low
    bits do not roll over stays in the TPM's RAM and rewrites nothing, so counting NV-writing
    command codes overstates the wear of the hybrid counter about 256-fold. With --swtpm-state the
    proxy compares the file (inode, mtime, size) before and after every forwarded command (they
    are serialised, so the attribution is exact) and counts flash_writes; with --nv-delay-on
    flash, --nv-delay-ms is charged after the commands that wrote flash instead of before every
    NV-writing command code (an orderly increment then costs what any command costs, as on a
    chip).
  * Test hooks in the control directory (--ctl DIR), read when a command arrives and polled every
    10 ms while a command is held:
      DIR/hold       "CODE [CLIENT]": hold the next matching command; the proxy writes DIR/held
                     ("CLIENT CODE") and removes DIR/hold; the command stays there (only that
                     client waits) until DIR/release (forward it) or DIR/drop (close the client
                     without forwarding) appears. Then release/drop and held are removed.
      DIR/drop-next  "CODE [CLIENT]": close the connection of the next matching command's client
                     without forwarding it.
      DIR/stall      while it exists, the TPM stops answering: every command that arrives (of
                     any client) is neither forwarded nor answered; once the file is removed
                     the waiting commands are forwarded. A client that disconnects meanwhile has
                     its command dropped (it never reaches the TPM).
      DIR/throttle   "UNTIL" (a UNIX time): until then every NV-writing command is answered
                     TPM_RC_NV_RATE without being forwarded, as a chip that throttles NV writes.
  * --nv-write-recovery-ms N: GetCapability(TPM_PROPERTIES) from TPM_PT_NV_WRITE_RECOVERY is
    answered by the proxy with that value (swtpm reports none).
      DIR/clients    the proxy appends "N connected" / "N gone".
      DIR/stats      JSON rewritten (tmp + rename) after every command: see Proxy.write_stats.

Standard library only; one thread per client, one lock (the "bus") around the upstream socket
and all shared tables. Usage: tpm-proxy.py --help.
"""

import argparse
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time

HDR_LEN = 10
MAX_MSG = 64 * 1024

TAG_NO_SESSIONS = 0x8001
RC_SUCCESS = 0x000
# TPM_RC_HANDLE (0x08b) for parameter 1 (TPM_RC_P 0x040 | TPM_RC_1 0x100): what swtpm answers to
# FlushContext of a handle in range that is not loaded, so another client's handle looks absent.
RC_FLUSH_NOT_OURS = 0x1CB
RC_COMMAND_SIZE = 0x142
RC_NV_RATE = 0x920
PT_NV_WRITE_RECOVERY = 0x212
RC_OBJECT_MEMORY = 0x902
RC_SESSION_MEMORY = 0x903
TRANSIENT_RCS = (0x920, 0x922, 0x908, 0x923)  # NV_RATE, RETRY, YIELDED, NV_UNAVAILABLE

CC_FLUSH_CONTEXT = 0x165
CC_GET_CAPABILITY = 0x17A
CAP_HANDLES = 1
CAP_TPM_PROPERTIES, PT_MAX_COMMAND_SIZE = 6, 0x11E
HT_TRANSIENT, HT_LOADED_SESSION, HT_SAVED_SESSION = 0x80, 0x02, 0x03
MAX_CAP_HANDLES = 254  # what fits a 4 KiB response; the TPM clamps the count itself

# Commands whose successful response carries a new transient object or session handle at
# offset 10: CreatePrimary, Load, LoadExternal, CreateLoaded, StartAuthSession, ContextLoad,
# and the sequence objects of HMAC_Start and HashSequenceStart (they occupy object slots too).
CREATES_HANDLE = {0x131, 0x157, 0x167, 0x191, 0x176, 0x161, 0x15B, 0x186}

# Commands that write NV (or, for Shutdown, persistent state) on a real chip.
NV_WRITING = {
    0x134: "NV_Increment", 0x137: "NV_Write", 0x12A: "NV_DefineSpace",
    0x122: "NV_UndefineSpace", 0x11F: "NV_UndefineSpaceSpecial", 0x13B: "NV_ChangeAuth",
    0x136: "NV_Extend", 0x135: "NV_SetBits", 0x138: "NV_WriteLock", 0x120: "EvictControl",
    0x129: "HierarchyChangeAuth", 0x126: "Clear", 0x145: "Shutdown",
}

# Names for the log only.
CC_NAMES = {**NV_WRITING, **{
    0x131: "CreatePrimary", 0x157: "Load", 0x167: "LoadExternal", 0x191: "CreateLoaded",
    0x176: "StartAuthSession", 0x161: "ContextLoad", 0x162: "ContextSave",
    0x165: "FlushContext", 0x17A: "GetCapability", 0x144: "Startup", 0x153: "Create",
    0x15E: "Unseal", 0x14E: "NV_Read", 0x169: "NV_ReadPublic", 0x17B: "GetRandom",
    0x17F: "PolicyPCR", 0x189: "PolicyGetDigest", 0x173: "ReadPublic", 0x148: "Quote",
    0x15D: "Sign", 0x17E: "PCR_Read", 0x15B: "HMAC_Start", 0x186: "HashSequenceStart",
}}


def cc_name(cc):
    return CC_NAMES.get(cc, "cc_0x%x" % cc)


def is_session(h):
    return h >> 24 in (HT_LOADED_SESSION, HT_SAVED_SESSION)


def same_tpm_entity(a, b):
    """Sessions are one slot whatever their handle form (an HMAC session 0x02nnnnnn and a policy
    session 0x03nnnnnn share the index nnnnnn); objects are their exact handle."""
    if is_session(a) and is_session(b):
        return a & 0xFFFFFF == b & 0xFFFFFF
    return a == b


def response(rc, body=b"", tag=TAG_NO_SESSIONS):
    return struct.pack(">HII", tag, HDR_LEN + len(body), rc) + body


def recv_exact(sock, n):
    """n bytes, or None if the peer closed (or the socket failed) first."""
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv_message(sock):
    """One TPM command or response (header + body) with a sane size, else None."""
    hdr = recv_exact(sock, HDR_LEN)
    if hdr is None:
        return None
    size = struct.unpack(">I", hdr[2:6])[0]
    if size < HDR_LEN or size > MAX_MSG:
        return None
    body = recv_exact(sock, size - HDR_LEN)
    return None if body is None else hdr + body


def parse_match(text):
    """'CODE [CLIENT]' -> (code, client or None); None while the file is still empty."""
    words = text.split()
    if not words:
        return None
    code = int(words[0], 0)
    client = int(words[1], 0) if len(words) > 1 else None
    return code, client


class UpstreamLost(Exception):
    pass


class Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler in the main thread, out of whatever blocks it."""


class Client:
    def __init__(self, num, sock):
        self.num = num
        self.sock = sock
        self.handles = set()  # transient objects and sessions this client owns on the TPM
        self.nv_writes = 0
        self.commands = 0

    def owns(self, h):
        return any(same_tpm_entity(h, mine) for mine in self.handles)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class Proxy:
    def __init__(self, args):
        self.args = args
        self.ctl = args.ctl
        self.bus = threading.Condition()  # serialises the upstream and guards every table below
        self.ctl_lock = threading.Lock()  # one reader of hold/drop-next at a time
        self.upstream = None
        self.max_command = 4096  # the TPM's TPM_PT_MAX_COMMAND_SIZE, read at start
        self.clients = {}
        self.next_num = 1
        self.rng = random.Random(args.seed)
        self.next_transient = 0
        self.stats = {"commands": 0, "nv_writes": 0, "by_code": {}, "injected": 0,
                      "refused_flushes": 0, "capability_answers": 0, "dropped": 0,
                      "held": 0, "memory_waits": 0, "upstream_reconnects": 0,
                      "stalled": 0, "throttled": 0, "flash_writes": 0, "flash_by_code": {},
                      "clients": {}}
        self.state_file = (os.path.join(args.swtpm_state, "tpm2-00.permall")
                           if args.swtpm_state else None)
        self.stopping = threading.Event()
        self.logf = open(args.log, "a", buffering=1) if args.log else None

    # --- small helpers -------------------------------------------------------------------

    def log(self, msg):
        if self.logf is not None:
            self.logf.write("%.3f %s\n" % (time.time(), msg))

    def ctl_path(self, name):
        return os.path.join(self.ctl, name)

    def write_atomic(self, name, text):
        tmp = self.ctl_path(".%s.tmp.%d" % (name, threading.get_ident()))
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.ctl_path(name))

    def remove(self, name):
        try:
            os.unlink(self.ctl_path(name))
        except FileNotFoundError:
            pass

    def append_clients(self, line):
        with open(self.ctl_path("clients"), "a") as f:
            f.write(line + "\n")

    def state_version(self):
        """What identifies the current content of swtpm's state file (None without
        --swtpm-state). swtpm writes a new file and renames it over the old one, so the inode
        changes with every rewrite (the old one is still allocated while the new one is made);
        mtime and size are compared too."""
        if self.state_file is None:
            return None
        try:
            st = os.stat(self.state_file)
        except FileNotFoundError:
            return (0, 0, 0)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def write_stats(self):
        """DIR/stats: commands (client commands forwarded), nv_writes (NV-writing commands the
        TPM answered with success), by_code ("0x134": successful forwarded commands), injected
        (transient errors answered by the proxy), refused_flushes, capability_answers, dropped,
        held, memory_waits, upstream_reconnects, stalled (commands that waited in DIR/stall),
        throttled (NV_RATE answers of DIR/throttle), flash_writes (forwarded commands after which
        swtpm's state file had been rewritten: NV commits; only with --swtpm-state),
        flash_by_code ("0x134": such commands by code), clients ("N": nv_writes, commands)."""
        self.write_atomic("stats", json.dumps(self.stats, sort_keys=True) + "\n")

    # --- upstream ----------------------------------------------------------------------------

    def connect_upstream(self, budget_s):
        deadline = time.monotonic() + budget_s
        while True:
            try:
                s = socket.create_connection((self.args.upstream_host, self.args.upstream_port),
                                             timeout=2)
                s.settimeout(120)  # an RSA CreatePrimary on a loaded box takes seconds
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.upstream = s
                return
            except OSError as e:
                if time.monotonic() >= deadline:
                    raise UpstreamLost("cannot connect to %s:%d: %s" % (
                        self.args.upstream_host, self.args.upstream_port, e))
                time.sleep(0.05)

    def transact(self, cmd):
        """Sends one command upstream (reconnecting first if the link is down) and returns the
        response. On a broken link raises UpstreamLost: whether the TPM executed the command is
        unknown, exactly like a dropped bus. Caller holds self.bus."""
        if self.stopping.is_set():
            raise UpstreamLost("stopping")
        if self.upstream is not None and select.select([self.upstream], [], [], 0)[0]:
            # Readable while idle: swtpm closed the link (stopped or restarted on this port).
            # Nothing was sent yet, so reconnecting first loses nothing.
            self.log("upstream closed while idle")
            self.close_upstream()
        if self.upstream is None:
            self.connect_upstream(3)
            self.stats["upstream_reconnects"] += 1
            self.log("upstream reconnected")
            self.flush_unowned()
        try:
            self.upstream.sendall(cmd)
            resp = recv_message(self.upstream)
        except OSError:
            resp = None
        if resp is None:
            self.log("upstream connection lost")
            self.close_upstream()
            raise UpstreamLost("upstream connection lost")
        if select.select([self.upstream], [], [], 0)[0]:
            # More than one response (or the end of the stream): the TPM parsed the bytes
            # differently from their header. Start a fresh connection at the next command rather
            # than hand out shifted answers.
            self.log("upstream has bytes after the response; reconnecting")
            self.close_upstream()
        return resp

    def close_upstream(self):
        try:
            self.upstream.close()
        except OSError:
            pass
        self.upstream = None

    def list_handles(self, start):
        """The TPM's own GetCapability(HANDLES) list from handle start (its range only)."""
        cmd = struct.pack(">HIIIII", TAG_NO_SESSIONS, 22, CC_GET_CAPABILITY, CAP_HANDLES, start,
                          MAX_CAP_HANDLES)
        resp = self.transact(cmd)
        rc = struct.unpack(">I", resp[6:10])[0]
        if rc != RC_SUCCESS or len(resp) < 19:
            return []
        count = struct.unpack(">I", resp[15:19])[0]
        count = min(count, (len(resp) - 19) // 4)
        return list(struct.unpack(">%dI" % count, resp[19:19 + 4 * count]))

    def read_max_command(self):
        cmd = struct.pack(">HIIIII", TAG_NO_SESSIONS, 22, CC_GET_CAPABILITY, CAP_TPM_PROPERTIES,
                          PT_MAX_COMMAND_SIZE, 1)
        resp = self.transact(cmd)
        # header, moreData u8, capability u32, count u32, then (property u32, value u32)
        if len(resp) >= 27 and struct.unpack(">II", resp[6:10] + resp[15:19]) == (0, 1):
            prop, value = struct.unpack(">II", resp[19:27])
            if prop == PT_MAX_COMMAND_SIZE and HDR_LEN <= value <= MAX_MSG:
                self.max_command = value

    def flush(self, h):
        resp = self.transact(struct.pack(">HIII", TAG_NO_SESSIONS, 14, CC_FLUSH_CONTEXT, h))
        return struct.unpack(">I", resp[6:10])[0]

    def flush_unowned(self):
        """Flushes every object and session no client owns: leftovers of processes that talked
        to swtpm before (or while the link was down); nobody else can clean them any more, as
        clients only ever see their own handles."""
        for ht in (HT_TRANSIENT, HT_LOADED_SESSION, HT_SAVED_SESSION):
            for h in self.list_handles(ht << 24):
                if not any(c.owns(h) for c in self.clients.values()):
                    rc = self.flush(h)
                    self.log("flushed leftover 0x%08x -> 0x%x" % (h, rc))

    # --- the resource manager ---------------------------------------------------------------

    def answer_capability(self, client, cmd):
        """GetCapability(TPM_CAP_HANDLES) over a transient or session range without sessions:
        the TPM's own list filtered to this client's handles, marshalled as the TPM does
        (moreData u8, capability u32, TPML_HANDLE). None: not ours to answer, forward it."""
        if len(cmd) != 22 or struct.unpack(">H", cmd[0:2])[0] != TAG_NO_SESSIONS:
            return None
        cap, prop, count = struct.unpack(">III", cmd[10:22])
        if cap != CAP_HANDLES or prop >> 24 not in (HT_TRANSIENT, HT_LOADED_SESSION,
                                                    HT_SAVED_SESSION):
            return None
        mine = [h for h in self.list_handles(prop) if client.owns(h)]
        more = 1 if len(mine) > count else 0
        mine = mine[:count]
        body = struct.pack(">BII", more, CAP_HANDLES, len(mine))
        body += struct.pack(">%dI" % len(mine), *mine)
        self.stats["capability_answers"] += 1
        return response(RC_SUCCESS, body)

    def track(self, client, cc, cmd, resp):
        """Updates handle ownership after a successful forwarded command."""
        if cc in CREATES_HANDLE and len(resp) >= 14:
            h = struct.unpack(">I", resp[10:14])[0]
            # The TPM just handed out h: whatever another client had under it (a session the
            # TPM ended itself, say, after a command with continueSession clear) is gone.
            for other in self.clients.values():
                other.handles = {x for x in other.handles if not same_tpm_entity(x, h)}
            client.handles.add(h)
        elif cc == CC_FLUSH_CONTEXT and len(cmd) >= 14:
            h = struct.unpack(">I", cmd[10:14])[0]
            client.handles = {x for x in client.handles if not same_tpm_entity(x, h)}
            self.bus.notify_all()  # a slot is free: wake commands waiting for room

    def others_hold_slots(self, client):
        return any(c is not client and c.handles for c in self.clients.values())

    # --- one command ---------------------------------------------------------------------------

    def take_ctl(self, name, client, cc):
        """If DIR/name matches (cc, client), removes it and returns True."""
        path = self.ctl_path(name)
        if not os.path.exists(path):
            return False
        with self.ctl_lock:
            try:
                with open(path) as f:
                    m = parse_match(f.read())
            except FileNotFoundError:
                return False
            except ValueError:
                self.log("ignoring unparsable %s" % name)
                self.remove(name)
                return False
            if m is None or m[0] != cc or (m[1] is not None and m[1] != client.num):
                return False
            self.remove(name)
            return True

    def client_gone(self, client):
        """True once the client closed its side (it has sent nothing else: one command is
        outstanding at a time, so readable means EOF)."""
        try:
            client.sock.setblocking(False)
            try:
                data = client.sock.recv(1, socket.MSG_PEEK)
            finally:
                client.sock.setblocking(True)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        return data == b""

    def hold(self, client, cc):
        """Holds the client's command until DIR/release (returns True: forward it) or DIR/drop
        or the client's disconnect (False: drop it). Other clients keep going meanwhile."""
        self.remove("release")  # stale answers to an earlier hold must not end this one
        self.remove("drop")
        self.write_atomic("held", "%d 0x%x\n" % (client.num, cc))
        with self.bus:
            self.stats["held"] += 1
            self.write_stats()
        self.log("c%d %s held" % (client.num, cc_name(cc)))
        verdict = None
        while verdict is None and not self.stopping.is_set():
            if os.path.exists(self.ctl_path("release")):
                verdict = True
            elif os.path.exists(self.ctl_path("drop")):
                verdict = False
            elif self.client_gone(client):
                self.log("c%d disconnected while held" % client.num)
                verdict = False
            else:
                time.sleep(0.01)
        self.remove("release")
        self.remove("drop")
        self.remove("held")
        self.log("c%d %s %s" % (client.num, cc_name(cc), "released" if verdict else "dropped"))
        return bool(verdict)

    def stall(self, client, cc):
        """While DIR/stall exists, the command waits unanswered. True: forward it afterwards;
        False: its client went away meanwhile (drop it)."""
        with self.bus:
            self.stats["stalled"] += 1
            self.write_stats()
        self.log("c%d %s stalled" % (client.num, cc_name(cc)))
        while os.path.exists(self.ctl_path("stall")) and not self.stopping.is_set():
            if self.client_gone(client):
                self.log("c%d disconnected while stalled" % client.num)
                return False
            time.sleep(0.05)
        self.log("c%d %s goes on after the stall" % (client.num, cc_name(cc)))
        return True

    def throttling(self):
        """True while DIR/throttle names a time in the future."""
        try:
            with open(self.ctl_path("throttle")) as f:
                return time.time() < float(f.read().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return False

    def answer_recovery(self, cmd):
        """GetCapability(TPM_PROPERTIES, TPM_PT_NV_WRITE_RECOVERY, n) with --nv-write-recovery-ms
        set: one TPMS_TAGGED_PROPERTY with that value. None: forward the command."""
        if self.args.nv_write_recovery_ms is None or len(cmd) != 22:
            return None
        cap, prop, count = struct.unpack(">III", cmd[10:22])
        if cap != CAP_TPM_PROPERTIES or prop != PT_NV_WRITE_RECOVERY or count < 1:
            return None
        body = struct.pack(">BIIII", 1, CAP_TPM_PROPERTIES, 1, PT_NV_WRITE_RECOVERY,
                           self.args.nv_write_recovery_ms)
        self.stats["capability_answers"] += 1
        return response(RC_SUCCESS, body)

    def execute(self, client, cc, cmd):
        """Runs one client command on the bus; returns the response to send back."""
        args = self.args
        nv = cc in NV_WRITING
        if len(cmd) > self.max_command:
            # swtpm reads at most its buffer: the rest of a longer command would be taken for
            # the next one. Answer as the TPM does for a command it cannot take.
            self.log("c%d %s of %d bytes -> 0x%x (larger than the TPM takes)" %
                     (client.num, cc_name(cc), len(cmd), RC_COMMAND_SIZE))
            return response(RC_COMMAND_SIZE)
        with self.bus:
            if cc == CC_FLUSH_CONTEXT and len(cmd) >= 14:
                h = struct.unpack(">I", cmd[10:14])[0]
                if any(c is not client and c.owns(h) for c in self.clients.values()):
                    self.stats["refused_flushes"] += 1
                    self.write_stats()
                    self.log("c%d FlushContext 0x%08x refused: another client's" %
                             (client.num, h))
                    return response(RC_FLUSH_NOT_OURS)
            if cc == CC_GET_CAPABILITY:
                resp = self.answer_recovery(cmd)
                if resp is not None:
                    self.write_stats()
                    self.log("c%d GetCapability(NV_WRITE_RECOVERY) answered by the proxy" %
                             client.num)
                    return resp
                resp = self.answer_capability(client, cmd)
                if resp is not None:
                    self.write_stats()
                    self.log("c%d GetCapability(handles 0x%s) answered by the proxy" %
                             (client.num, cmd[14:18].hex()))
                    return resp
            if nv and self.throttling():
                self.stats["throttled"] += 1
                self.write_stats()
                self.log("c%d %s -> 0x%x (throttle)" % (client.num, cc_name(cc), RC_NV_RATE))
                return response(RC_NV_RATE)
            if nv and args.transient_rate > 0 and self.rng.random() < args.transient_rate:
                rc = TRANSIENT_RCS[self.next_transient % len(TRANSIENT_RCS)]
                self.next_transient += 1
                self.stats["injected"] += 1
                self.write_stats()
                self.log("c%d %s -> 0x%x injected" % (client.num, cc_name(cc), rc))
                return response(rc)
            waited_until = time.monotonic() + 10
            by_flash = args.nv_delay_on == "flash"
            while True:
                delay = args.cmd_delay_ms + (args.nv_delay_ms if nv and not by_flash else 0)
                if delay > 0:
                    time.sleep(delay / 1000.0)  # the bus stays busy: a slow chip
                t0 = time.monotonic()
                before = self.state_version()
                resp = self.transact(cmd)
                rc = struct.unpack(">I", resp[6:10])[0]
                if before is not None and self.state_version() != before:
                    # swtpm wrote its state before it answered: this command wrote flash.
                    self.stats["flash_writes"] += 1
                    key = "0x%x" % cc
                    fb = self.stats["flash_by_code"]
                    fb[key] = fb.get(key, 0) + 1
                    if by_flash and args.nv_delay_ms > 0:
                        time.sleep(args.nv_delay_ms / 1000.0)
                if (rc in (RC_OBJECT_MEMORY, RC_SESSION_MEMORY) and
                        self.others_hold_slots(client) and time.monotonic() < waited_until):
                    # Full, but another client will flush or go: wait for room and resend (the
                    # TPM did not execute the command, so resending is safe).
                    self.stats["memory_waits"] += 1
                    self.log("c%d %s -> 0x%x: waiting for a free slot" %
                             (client.num, cc_name(cc), rc))
                    self.bus.wait(0.2)
                    continue
                break
            self.log("c%d %s -> 0x%x (%.1f ms)" % (client.num, cc_name(cc), rc,
                                                   (time.monotonic() - t0) * 1e3))
            self.stats["commands"] += 1
            client.commands += 1
            if rc == RC_SUCCESS:
                key = "0x%x" % cc
                self.stats["by_code"][key] = self.stats["by_code"].get(key, 0) + 1
                if nv:
                    self.stats["nv_writes"] += 1
                    client.nv_writes += 1
                self.track(client, cc, cmd, resp)
            self.stats["clients"][str(client.num)] = {"nv_writes": client.nv_writes,
                                                      "commands": client.commands}
            self.write_stats()
            return resp

    # --- client lifetime ------------------------------------------------------------------------

    def serve(self, client):
        try:
            while not self.stopping.is_set():
                cmd = recv_message(client.sock)
                if cmd is None:
                    break  # EOF, a broken socket or a size out of bounds: the end either way
                cc = struct.unpack(">I", cmd[6:10])[0]
                if self.take_ctl("drop-next", client, cc):
                    with self.bus:
                        self.stats["dropped"] += 1
                        self.write_stats()
                    self.log("c%d %s dropped (drop-next)" % (client.num, cc_name(cc)))
                    break
                if os.path.exists(self.ctl_path("stall")) and not self.stall(client, cc):
                    with self.bus:
                        self.stats["dropped"] += 1
                        self.write_stats()
                    break
                if self.take_ctl("hold", client, cc) and not self.hold(client, cc):
                    with self.bus:
                        self.stats["dropped"] += 1
                        self.write_stats()
                    break
                try:
                    resp = self.execute(client, cc, cmd)
                except UpstreamLost as e:
                    self.log("c%d %s: %s; closing the client" % (client.num, cc_name(cc), e))
                    break
                try:
                    client.sock.sendall(resp)
                except OSError:
                    break
        finally:
            self.disconnect(client)

    def disconnect(self, client):
        client.close()
        with self.bus:
            self.clients.pop(client.num, None)
            for h in sorted(client.handles):
                try:
                    rc = self.flush(h)
                except UpstreamLost:
                    break
                self.log("c%d gone: flushed 0x%08x -> 0x%x" % (client.num, h, rc))
            client.handles = set()
            self.bus.notify_all()
            self.append_clients("%d gone" % client.num)
        self.log("c%d gone" % client.num)

    def run(self):
        """Connects upstream, listens, and accepts clients (a thread each) until Stop."""
        os.makedirs(self.ctl, exist_ok=True)
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            with self.bus:
                self.connect_upstream(5)
                self.read_max_command()
                self.flush_unowned()
                self.write_stats()
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind(("127.0.0.1", 0))
            lsock.listen(16)
            port = lsock.getsockname()[1]
            tmp = self.args.port_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % port)
            os.replace(tmp, self.args.port_file)
            self.log("listening on 127.0.0.1:%d, upstream %s:%d" % (
                port, self.args.upstream_host, self.args.upstream_port))
            while True:
                sock, _ = lsock.accept()
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with self.bus:
                    client = Client(self.next_num, sock)
                    self.next_num += 1
                    self.clients[client.num] = client
                    self.append_clients("%d connected" % client.num)
                self.log("c%d connected" % client.num)
                threading.Thread(target=self.serve, args=(client,), daemon=True).start()
        except Stop:
            pass
        finally:
            # Client threads see their sockets close and end (they are daemon threads, and
            # transact() refuses to reconnect once stopping is set).
            self.stopping.set()
            lsock.close()
            for c in list(self.clients.values()):
                c.close()
            if self.upstream is not None:
                self.upstream.close()
            self.log("stopped")

def main():
    p = argparse.ArgumentParser(
        description="Test proxy in front of one swtpm: several clients on one TPM connection, "
                    "a slow discrete chip with transient errors, hold/drop hooks. "
                    "See the comment at the top of this file.")
    p.add_argument("--upstream-port", type=int, required=True, help="swtpm server port")
    p.add_argument("--upstream-host", default="127.0.0.1")
    p.add_argument("--port-file", required=True,
                   help="written with the listening port (127.0.0.1) once accepting")
    p.add_argument("--ctl", required=True, metavar="DIR", help="control directory")
    p.add_argument("--cmd-delay-ms", type=float, default=0,
                   help="sleep before every forwarded command")
    p.add_argument("--nv-delay-ms", type=float, default=0,
                   help="additional sleep before NV-writing commands")
    p.add_argument("--transient-rate", type=float, default=0, metavar="X",
                   help="probability (0..1) that an NV-writing command is answered with "
                        "NV_RATE/RETRY/YIELDED/NV_UNAVAILABLE instead of being forwarded")
    p.add_argument("--seed", type=int, default=None, help="seed for --transient-rate")
    p.add_argument("--nv-write-recovery-ms", type=int, default=None, metavar="N",
                   help="report TPM_PT_NV_WRITE_RECOVERY as N (answered by the proxy)")
    p.add_argument("--swtpm-state", metavar="DIR",
                   help="swtpm's --tpmstate directory: count the commands after which swtpm "
                        "rewrote its state file (flash_writes in the stats)")
    p.add_argument("--nv-delay-on", choices=("command", "flash"), default="command",
                   help="charge --nv-delay-ms before every NV-writing command code (command, "
                        "the default) or after every command that wrote flash (flash; needs "
                        "--swtpm-state)")
    p.add_argument("--log", metavar="FILE", help="append one line per event to FILE")
    args = p.parse_args()
    if not 0 <= args.transient_rate <= 1:
        p.error("--transient-rate must be within 0..1")
    if args.cmd_delay_ms < 0 or args.nv_delay_ms < 0:
        p.error("delays must not be negative")
    if args.nv_delay_on == "flash" and not args.swtpm_state:
        p.error("--nv-delay-on flash needs --swtpm-state")

    proxy = Proxy(args)

    def on_signal(signum, _frame):
        proxy.log("signal %d: stopping" % signum)
        proxy.stopping.set()
        raise Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        proxy.run()
    except UpstreamLost as e:
        print("tpm-proxy: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
