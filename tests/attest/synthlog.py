#!/usr/bin/env python3
"""Synthetic measured-boot and IMA logs for attestation tests (swtpm has no measured boot).

Writes a TCG PC Client crypto-agile binary event log (Spec ID Event03 header, SHA-1 and SHA-256
digests, events for PCRs 0-7 and one EV_NO_ACTION) and an ima-ng ascii log, and extends a
swtpm's SHA-256 PCRs with exactly the logged digests (tpm2_pcrextend over the swtpm TCTI; run
it while nothing else is connected to the swtpm, before the vault starts). It also replays logs
with its own parser: the test oracle, independent of the verifier's code.

  synthlog.py boot --event-log F [--tcti T] [--tamper-pcr N]
      Write the boot log to F and extend PCRs 0-7 with its SHA-256 digests. --tamper-pcr N
      flips a bit of the logged digest of PCR N's first event AFTER the PCRs got the true one:
      a log whose PCR N does not replay.
  synthlog.py ima --ima-log F --event-log F --bin DIR [--allow-out F] [--tcti T]
      Write an ima-ng log: boot_aggregate (from the event log's replay), the three sealvault
      binaries in DIR (their real SHA-256 and absolute path), then two allow-listed synthetic
      files; extend PCR 10 with each entry's SHA-256 template hash. --allow-out writes the
      allow-list for the synthetic files (one "<sha256 hex> <path>" line each).
  synthlog.py ima-exec --ima-log F --path P [--tcti T]
      Append an entry for an executable nobody expects (content hash derived from P) and
      extend PCR 10 accordingly.
  synthlog.py tamper-boot --event-log F --pcr N
      Flip one bit of the SHA-256 digest of PCR N's first event, in place (same file, same
      inode, same size: a process holding the file open sees the change).
  synthlog.py replay [--event-log F] [--ima-log F]
      Print the replayed SHA-256 PCR values as JSON {"0": "<hex>", ...}.
"""

import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys

EV_POST_CODE = 0x00000001
EV_NO_ACTION = 0x00000003
EV_SEPARATOR = 0x00000004
EV_S_CRTM_VERSION = 0x00000008
EV_EFI_VARIABLE_DRIVER_CONFIG = 0x80000001
EV_EFI_VARIABLE_BOOT = 0x80000002
EV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003
EV_EFI_BOOT_SERVICES_DRIVER = 0x80000004
EV_EFI_GPT_EVENT = 0x80000006
EV_EFI_ACTION = 0x80000007
EV_EFI_PLATFORM_FIRMWARE_BLOB = 0x80000008
EV_EFI_HANDOFF_TABLES = 0x80000009
EV_EFI_VARIABLE_AUTHORITY = 0x800000E0

TPM_ALG_SHA1 = 0x0004
TPM_ALG_SHA256 = 0x000B
ALGS = [(TPM_ALG_SHA1, hashlib.sha1), (TPM_ALG_SHA256, hashlib.sha256)]
DIGEST_SIZE = {TPM_ALG_SHA1: 20, TPM_ALG_SHA256: 32}

EFI_GLOBAL_VARIABLE = bytes.fromhex("61dfe48bca93d211aa0d00e098032b8c")
EFI_IMAGE_SECURITY_DATABASE = bytes.fromhex("cbb219d73a3d9645a3bcdad00e67656f")
SEALVAULT_BINARIES = ["sealvaultd", "sealvault-enclave", "sealvault-broker"]
IMA_PCR = 10


def die(msg):
    print("synthlog: " + msg, file=sys.stderr)
    sys.exit(1)


def utf16(s):
    return s.encode("utf-16-le")


def uefi_variable(guid, name, data):
    """UEFI_VARIABLE_DATA: VariableName GUID, name length and data length (UINT64, in
    characters and bytes), the UTF-16 name without terminator, the data."""
    return guid + struct.pack("<QQ", len(name), len(data)) + utf16(name) + data


def gpt_data():
    """UEFI_GPT_DATA: the GPT header (92 bytes), the number of partitions, one EFI system
    partition entry (128 bytes)."""
    hdr = b"EFI PART" + struct.pack("<IIII", 0x00010000, 92, 0, 0)
    hdr += struct.pack("<QQQQ", 1, 0x3FFFFF, 34, 0x3FFFDE) + bytes(range(16))
    hdr += struct.pack("<QIII", 2, 128, 128, 0)
    esp = bytes.fromhex("28732ac11ff8d211ba4b00a0c93ec93b") + bytes(range(16, 32))
    esp += struct.pack("<QQQ", 2048, 1050623, 0) + utf16("EFI System Partition").ljust(72, b"\0")
    return hdr + struct.pack("<Q", 1) + esp


def boot_events():
    """(pcr, event type, event data, measured bytes) for a plausible UEFI Secure Boot
    machine. The logged digest is the hash of the measured bytes (the event data for
    variables, actions and separators; a stand-in for firmware volumes and PE images)."""
    ev = []

    def add(pcr, etype, data, measured=None):
        ev.append((pcr, etype, data, data if measured is None else measured))

    add(0, EV_S_CRTM_VERSION, utf16("1.00\0"))
    add(0, EV_EFI_PLATFORM_FIRMWARE_BLOB, struct.pack("<QQ", 0xFFC00000, 0x400000),
        b"sealvault synthetic firmware volume")
    add(0, EV_POST_CODE, b"POST CODE")
    add(7, EV_EFI_VARIABLE_DRIVER_CONFIG, uefi_variable(EFI_GLOBAL_VARIABLE, "SecureBoot", b"\x01"))
    add(7, EV_EFI_VARIABLE_DRIVER_CONFIG, uefi_variable(EFI_GLOBAL_VARIABLE, "PK", b"synthetic PK"))
    add(7, EV_EFI_VARIABLE_DRIVER_CONFIG, uefi_variable(EFI_GLOBAL_VARIABLE, "KEK", b"synthetic KEK"))
    add(7, EV_EFI_VARIABLE_DRIVER_CONFIG,
        uefi_variable(EFI_IMAGE_SECURITY_DATABASE, "db", b"synthetic db"))
    add(7, EV_EFI_VARIABLE_DRIVER_CONFIG,
        uefi_variable(EFI_IMAGE_SECURITY_DATABASE, "dbx", b"synthetic dbx"))
    # Not extended; verifiers must skip it (its digests are zero).
    ev.append((0, EV_NO_ACTION, b"SP800-155 Event\0" + b"sealvault synthetic", None))
    add(1, EV_EFI_HANDOFF_TABLES, struct.pack("<Q", 1) + bytes(16) + struct.pack("<Q", 0x7F000000),
        b"synthetic SMBIOS table")
    add(1, EV_EFI_VARIABLE_BOOT, uefi_variable(EFI_GLOBAL_VARIABLE, "BootOrder", b"\x00\x00"))
    add(1, EV_EFI_VARIABLE_BOOT,
        uefi_variable(EFI_GLOBAL_VARIABLE, "Boot0000", utf16("debian\0") + b"\x04\x01"))
    add(2, EV_EFI_BOOT_SERVICES_DRIVER, struct.pack("<QQQQ", 0x7E000000, 0x20000, 0, 0),
        b"synthetic option ROM")
    for pcr in range(8):
        add(pcr, EV_SEPARATOR, b"\0\0\0\0")
    add(7, EV_EFI_VARIABLE_AUTHORITY, uefi_variable(EFI_IMAGE_SECURITY_DATABASE, "db", b"cert"))
    add(4, EV_EFI_ACTION, b"Calling EFI Application from Boot Option")
    add(4, EV_EFI_BOOT_SERVICES_APPLICATION, struct.pack("<QQQQ", 0x7D000000, 0x100000, 0, 0),
        b"synthetic shimx64.efi")
    add(5, EV_EFI_GPT_EVENT, gpt_data())
    add(4, EV_EFI_BOOT_SERVICES_APPLICATION, struct.pack("<QQQQ", 0x7C000000, 0x200000, 0, 0),
        b"synthetic grubx64.efi")
    add(4, EV_EFI_BOOT_SERVICES_APPLICATION, struct.pack("<QQQQ", 0x7A000000, 0x800000, 0, 0),
        b"synthetic vmlinuz")
    add(5, EV_EFI_ACTION, b"Exit Boot Services Invocation")
    add(5, EV_EFI_ACTION, b"Exit Boot Services Returned with Success")
    return ev


def spec_id_header():
    """The first event: TCG_PCClientPCREvent (SHA-1 format) carrying TCG_EfiSpecIDEvent."""
    body = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, len(ALGS))
    for alg, _ in ALGS:
        body += struct.pack("<HH", alg, DIGEST_SIZE[alg])
    body += b"\0"  # vendorInfoSize
    return struct.pack("<II", 0, EV_NO_ACTION) + bytes(20) + struct.pack("<I", len(body)) + body


def event2(pcr, etype, data, measured):
    """TCG_PCR_EVENT2 with a TPML_DIGEST_VALUES of every algorithm in the header."""
    out = struct.pack("<III", pcr, etype, len(ALGS))
    for alg, fn in ALGS:
        d = bytes(DIGEST_SIZE[alg]) if measured is None else fn(measured).digest()
        out += struct.pack("<H", alg) + d
    return out + struct.pack("<I", len(data)) + data


def parse_event_log(raw):
    """The oracle's own parser: a list of (pcr, type, {alg: digest}, data, offset of the
    SHA-256 digest in raw). Strict: rejects anything it does not understand."""
    if len(raw) < 32:
        die("event log shorter than its header")
    pcr, etype = struct.unpack_from("<II", raw, 0)
    (size,) = struct.unpack_from("<I", raw, 28)
    body = raw[32 : 32 + size]
    if pcr != 0 or etype != EV_NO_ACTION or len(body) != size or body[:16] != b"Spec ID Event03\0":
        die("event log does not start with a Spec ID Event03 header")
    (nalg,) = struct.unpack_from("<I", body, 24)
    sizes = {}
    for i in range(nalg):
        alg, dsz = struct.unpack_from("<HH", body, 28 + 4 * i)
        sizes[alg] = dsz
    off = 32 + size
    events = []
    while off < len(raw):
        if off + 12 > len(raw):
            die("truncated event at offset %d" % off)
        pcr, etype, count = struct.unpack_from("<III", raw, off)
        off += 12
        digests, sha256_off = {}, None
        for _ in range(count):
            (alg,) = struct.unpack_from("<H", raw, off)
            if alg not in sizes:
                die("digest algorithm 0x%04x not in the header" % alg)
            off += 2
            if alg == TPM_ALG_SHA256:
                sha256_off = off
            digests[alg] = raw[off : off + sizes[alg]]
            off += sizes[alg]
        (dlen,) = struct.unpack_from("<I", raw, off)
        off += 4
        if off + dlen > len(raw):
            die("event data runs past the end of the log")
        events.append((pcr, etype, digests, raw[off : off + dlen], sha256_off))
        off += dlen
    return events


def replay_event_log(raw):
    pcrs = {}
    for pcr, etype, digests, _, _ in parse_event_log(raw):
        if etype == EV_NO_ACTION:
            continue
        if TPM_ALG_SHA256 not in digests:
            die("event for PCR %d has no SHA-256 digest" % pcr)
        old = pcrs.get(pcr, bytes(32))
        pcrs[pcr] = hashlib.sha256(old + digests[TPM_ALG_SHA256]).digest()
    return pcrs


def ima_template(filehash, path):
    """ima-ng template data: each field as a u32 (little-endian) length and its bytes;
    d-ng = "sha256:" NUL digest, n-ng = the path with its NUL."""
    d = b"sha256:\0" + filehash
    n = path.encode() + b"\0"
    return struct.pack("<I", len(d)) + d + struct.pack("<I", len(n)) + n


def ima_line(filehash, path):
    t = ima_template(filehash, path)
    line = "%d %s ima-ng sha256:%s %s\n" % (IMA_PCR, hashlib.sha1(t).hexdigest(),
                         filehash.hex(), path)
    return line, hashlib.sha256(t).digest()


def replay_ima_log(text):
    """PCR 10 in the SHA-256 bank: extend with SHA-256 of each entry's template data
    (what the kernel does for a non-SHA-1 bank); the SHA-1 column is checked too."""
    pcr = bytes(32)
    for i, line in enumerate(text.splitlines()):
        f = line.split(" ", 4)
        if len(f) != 5 or f[0] != str(IMA_PCR) or f[2] != "ima-ng" or not f[3].startswith("sha256:"):
            die("IMA log line %d is not an ima-ng sha256 entry" % (i + 1))
        t = ima_template(bytes.fromhex(f[3][7:]), f[4])
        if hashlib.sha1(t).hexdigest() != f[1]:
            die("IMA log line %d: template hash does not match its fields" % (i + 1))
        pcr = hashlib.sha256(pcr + hashlib.sha256(t).digest()).digest()
    return pcr


def boot_aggregate(pcrs):
    """SHA-256 over PCRs 0-9 of the SHA-256 bank (the kernel's TPM 2.0 boot_aggregate)."""
    return hashlib.sha256(b"".join(pcrs.get(i, bytes(32)) for i in range(10))).digest()


def extend(tcti, pairs):
    """tpm2_pcrextend over the TCTI, in order, a few digests per call."""
    if not tcti:
        return
    env = dict(os.environ, TPM2TOOLS_TCTI=tcti)
    for i in range(0, len(pairs), 8):
        specs = ["%d:sha256=%s" % (p, d.hex()) for p, d in pairs[i : i + 8]]
        r = subprocess.run(["tpm2_pcrextend"] + specs, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            die("tpm2_pcrextend over %s failed: %s" % (tcti, r.stderr.strip()))


def write_inplace(path, data):
    """Rewrite without replacing the inode (an already-open descriptor sees the new bytes)."""
    with open(path, "r+b" if os.path.exists(path) else "wb") as f:
        f.write(data)
        f.truncate()


def cmd_boot(a):
    events = boot_events()
    raw = spec_id_header() + b"".join(event2(*e) for e in events)
    extend(a.tcti, [(p, hashlib.sha256(m).digest()) for p, t, _, m in events if m is not None])
    if a.tamper_pcr is not None:
        raw = tamper(raw, a.tamper_pcr)
    write_inplace(a.event_log, raw)


def tamper(raw, pcr):
    for p, etype, _, _, off in parse_event_log(raw):
        if p == pcr and etype != EV_NO_ACTION and off is not None:
            b = bytearray(raw)
            b[off] ^= 0x01
            return bytes(b)
    die("the event log has no event for PCR %d" % pcr)


def cmd_tamper_boot(a):
    with open(a.event_log, "rb") as f:
        raw = f.read()
    write_inplace(a.event_log, tamper(raw, a.pcr))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.digest()


# Files the synthetic host "ran" besides sealvault: they go into the allow-list.
ALLOWED = [
    ("/usr/lib/x86_64-linux-gnu/libc.so.6", b"synthetic libc"),
    ("/usr/lib/systemd/systemd", b"synthetic systemd"),
]


def cmd_ima(a):
    with open(a.event_log, "rb") as f:
        pcrs = replay_event_log(f.read())
    entries = [(boot_aggregate(pcrs), "boot_aggregate")]
    for name in SEALVAULT_BINARIES:
        p = os.path.abspath(os.path.join(a.bin, name))
        entries.append((sha256_file(p), p))
    allowed = [(hashlib.sha256(c).digest(), p) for p, c in ALLOWED]
    entries += allowed
    text, digests = "", []
    for h, p in entries:
        line, d = ima_line(h, p)
        text += line
        digests.append((IMA_PCR, d))
    extend(a.tcti, digests)
    write_inplace(a.ima_log, text.encode())
    if a.allow_out:
        with open(a.allow_out, "w") as f:
            for h, p in allowed:
                f.write("%s %s\n" % (h.hex(), p))


def cmd_ima_exec(a):
    line, d = ima_line(hashlib.sha256(b"unexpected " + a.path.encode()).digest(), a.path)
    extend(a.tcti, [(IMA_PCR, d)])
    with open(a.ima_log, "a") as f:
        f.write(line)


def cmd_replay(a):
    out = {}
    if a.event_log:
        with open(a.event_log, "rb") as f:
            out.update({str(k): v.hex() for k, v in sorted(replay_event_log(f.read()).items())})
    if a.ima_log:
        with open(a.ima_log) as f:
            out[str(IMA_PCR)] = replay_ima_log(f.read()).hex()
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("boot")
    p.add_argument("--event-log", required=True)
    p.add_argument("--tcti")
    p.add_argument("--tamper-pcr", type=int, choices=range(8))
    p.set_defaults(fn=cmd_boot)
    p = sub.add_parser("ima")
    p.add_argument("--ima-log", required=True)
    p.add_argument("--event-log", required=True)
    p.add_argument("--bin", required=True)
    p.add_argument("--allow-out")
    p.add_argument("--tcti")
    p.set_defaults(fn=cmd_ima)
    p = sub.add_parser("ima-exec")
    p.add_argument("--ima-log", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--tcti")
    p.set_defaults(fn=cmd_ima_exec)
    p = sub.add_parser("tamper-boot")
    p.add_argument("--event-log", required=True)
    p.add_argument("--pcr", type=int, required=True, choices=range(8))
    p.set_defaults(fn=cmd_tamper_boot)
    p = sub.add_parser("replay")
    p.add_argument("--event-log")
    p.add_argument("--ima-log")
    p.set_defaults(fn=cmd_replay)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
