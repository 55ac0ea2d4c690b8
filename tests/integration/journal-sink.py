#!/usr/bin/env python3
"""A stand-in for journald's native socket, for check-audit's journal phase.

usage: journal-sink.py SOCKET OUT PIDFILE

Binds an AF_UNIX datagram socket at SOCKET (in the test's private mount namespace, where it is
/run/systemd/journal/socket, the path libsystemd's sd_journal_send writes to) and appends every
datagram it receives to OUT as one JSON object per line, its fields decoded as journald decodes
the native protocol (systemd's "Native Journal Protocol": "NAME=value\\n", or "NAME\\n", a 64-bit
little-endian length, the value and "\\n" for values that hold a newline). A datagram that does not
parse is written as {"_BAD": "..."}, so the test sees it. Writes its pid to PIDFILE once bound.
"""
import json
import os
import socket
import struct
import sys


def parse(data):
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b'\n', i)
        line = data[i:nl]
        if b'=' in line:
            name, value = line.split(b'=', 1)
            i = nl + 1
        else:
            name = line
            (n,) = struct.unpack('<Q', data[nl + 1:nl + 9])
            value = data[nl + 9:nl + 9 + n]
            if data[nl + 9 + n:nl + 10 + n] != b'\n':
                raise ValueError('binary field not terminated')
            i = nl + 10 + n
        fields[name.decode()] = value.decode('utf-8', 'replace')
    return fields


def main():
    path, out, pidfile = sys.argv[1:4]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)
    with open(pidfile, 'w') as f:
        f.write('%d\n' % os.getpid())
    with open(out, 'a') as f:
        while True:
            data = s.recv(1 << 20)
            try:
                rec = parse(data)
            except (ValueError, struct.error) as e:
                rec = {'_BAD': repr(e)}
            f.write(json.dumps(rec) + '\n')
            f.flush()


if __name__ == '__main__':
    main()
