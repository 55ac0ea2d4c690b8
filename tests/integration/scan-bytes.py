#!/usr/bin/env python3
"""Looks for a byte string in files and in the memory of running processes.

usage: scan-bytes.py NEEDLE_FILE [--pid PID]... [PATH]...

Files: every regular file under each PATH (recursively), read whole.
Processes: every readable mapping listed in /proc/PID/maps, read through /proc/PID/mem, except
AddressSanitizer's shadow memory (see ASAN_SHADOW). A non-dumpable process (PR_SET_DUMPABLE 0, like
sealvault-enclave) cannot be core-dumped or read by its own uid, but root with CAP_SYS_PTRACE passes
the kernel's ptrace access check and can read it; run as root. Prints one line per hit and per
process read ("pid N: M bytes in K mappings"); exit 0 if the needle was found anywhere, 1 if not, 2
on an error (a process that could not be read at all is an error, so "not found" never means "not
looked").
"""
import os
import sys


def scan_files(needle, root, hits):
    paths = [root] if os.path.isfile(root) else (
        os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
    for p in paths:
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        with open(p, 'rb') as fh:
            data = fh.read()
        if needle in data:
            hits.append('file %s at offset %d' % (p, data.find(needle)))


# AddressSanitizer (the `make check-asan` build) reserves its shadow memory, one byte of metadata
# per 8 bytes of the process and none of the process's data, as ~15 TB of readable address space at
# fixed x86_64 addresses, with a PROT_NONE gap between its low and high parts. Reading it would
# exhaust memory and time; in a process that has exactly that gap, the shadow is skipped.
ASAN_SHADOW_GAP = (0x8fff7000, 0x2008fff7000)
ASAN_SHADOW = (0x7fff7000, 0x10007fff8000)


def scan_pid(needle, pid, hits):
    total = regions = 0
    with open('/proc/%d/maps' % pid) as maps, open('/proc/%d/mem' % pid, 'rb', 0) as mem:
        lines = [(line.split(), [int(x, 16) for x in line.split()[0].split('-')])
                 for line in maps]
        asan = any(f[1] == '---p' and tuple(r) == ASAN_SHADOW_GAP for f, r in lines)
        for fields, (lo, hi) in lines:
            name = fields[5] if len(fields) > 5 else ''
            if fields[1][0] != 'r' or name == '[vvar]' or name == '[vsyscall]':
                continue
            if asan and ASAN_SHADOW[0] <= lo and hi <= ASAN_SHADOW[1]:
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue  # e.g. guard pages of sodium_malloc (PROT_NONE shows as ---p anyway)
            total += len(data)
            regions += 1
            if needle in data:
                hits.append('pid %d memory %s+%#x %s' % (pid, fields[0], data.find(needle), name))
    if total == 0:
        raise OSError('read nothing from pid %d' % pid)
    print('pid %d: %d bytes in %d mappings' % (pid, total, regions))


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], 'rb') as fh:
        needle = fh.read()
    if not needle:
        print('scan-bytes: empty needle', file=sys.stderr)
        return 2
    hits = []
    args = argv[2:]
    try:
        while args:
            if args[0] == '--pid':
                scan_pid(needle, int(args[1]), hits)
                args = args[2:]
            else:
                scan_files(needle, args[0], hits)
                args = args[1:]
    except (OSError, ValueError, IndexError) as e:
        print('scan-bytes: %s' % e, file=sys.stderr)
        return 2
    for h in hits:
        print('found: ' + h)
    return 0 if hits else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
