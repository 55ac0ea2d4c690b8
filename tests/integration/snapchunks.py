#!/usr/bin/env python3
"""Edits the chunks of a snapshot slot (enclave/store_snapshot.c, frame layout in
enclave/journal.h) for the state tests: every chunk is a frame, hdr(32) = magic "SVF1" | kind u8 |
scheme u8 | 0 u16 | counter u64 | nv_writes u64 | count u32 | ct_len u32, then nonce(24),
ct(ct_len), mac(32).

  snapchunks.py count FILE          number of chunks (fails on a file that is not whole chunks)
  snapchunks.py whole FILE          number of whole chunks at the start of the file
  snapchunks.py kinds FILE          their kinds, e.g. "5 5 5 2"
  snapchunks.py flip FILE K         flips one random byte inside chunk K; prints the offset
  snapchunks.py drop FILE K         removes chunk K
  snapchunks.py swap FILE K         swaps chunks K and K+1
  snapchunks.py dup FILE K          repeats chunk K after itself
  snapchunks.py cut FILE K          keeps chunks 0..K-1 (a crash after chunk K-1)
  snapchunks.py cutin FILE K        keeps chunks 0..K-1 and a random part of chunk K
  snapchunks.py take FILE K OTHER   replaces chunk K with chunk K of the slot file OTHER (which
                                    may be a snapshot cut off, or with garbage after its chunks)
"""
import os
import random
import struct
import sys


def chunks(data, strict=True):
    out, off = [], 0
    while off < len(data):
        if len(data) - off < 104 or data[off:off + 4] != b"SVF1":
            if not strict:
                break
            sys.exit("snapchunks: not a chunk at byte %d" % off)
        (ct_len,) = struct.unpack(">I", data[off + 28:off + 32])
        n = 32 + 24 + ct_len + 32
        if off + n > len(data):
            if not strict:
                break
            sys.exit("snapchunks: chunk at byte %d is cut off" % off)
        out.append(data[off:off + n])
        off += n
    return out


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        data = f.read()
    c = chunks(data, cmd != "whole")
    if cmd == "count":
        print(len(c))
        return
    if cmd == "whole":
        print(len(chunks(data, False)))
        return
    if cmd == "kinds":
        print(" ".join(str(x[4]) for x in c))
        return
    k = int(sys.argv[3])
    if not 0 <= k < len(c):
        sys.exit("snapchunks: no chunk %d (%d chunks)" % (k, len(c)))
    if cmd == "flip":
        off = sum(len(x) for x in c[:k]) + random.randrange(len(c[k]))
        b = bytearray(data)
        b[off] ^= random.randrange(1, 256)
        out = bytes(b)
        print(off)
    elif cmd == "drop":
        out = b"".join(c[:k] + c[k + 1:])
    elif cmd == "swap":
        if k + 1 >= len(c):
            sys.exit("snapchunks: no chunk after %d" % k)
        c[k], c[k + 1] = c[k + 1], c[k]
        out = b"".join(c)
    elif cmd == "dup":
        out = b"".join(c[:k + 1] + c[k:])
    elif cmd == "cut":
        out = b"".join(c[:k])
    elif cmd == "cutin":
        out = b"".join(c[:k]) + c[k][:random.randrange(1, len(c[k]))]
    elif cmd == "take":
        with open(sys.argv[4], "rb") as f:
            other = chunks(f.read(), False)
        c[k] = other[k]
        out = b"".join(c)
    else:
        sys.exit("snapchunks: unknown command " + cmd)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, path)


main()
