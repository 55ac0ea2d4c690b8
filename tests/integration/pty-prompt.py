#!/usr/bin/env python3
"""Runs a command on a fresh pseudo-terminal, answers each password prompt and checks that the
typed text is not echoed back.

usage: pty-prompt.py ANSWERS_FILE COMMAND [ARG]...
ANSWERS_FILE holds one answer per line, typed in order at each prompt (a line of output ending
in ': '). Exit status: the command's, or 90 if a typed answer appeared in the terminal output
(echo was on), 91 if the command asked fewer questions than there are answers.
"""
import os
import pty
import sys


def main(argv):
    with open(argv[1], 'rb') as fh:
        answers = [a for a in fh.read().split(b'\n') if a]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[2], argv[2:])
    out = b''
    asked = 0
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        out += data
        if asked < len(answers) and out.endswith(b': '):
            os.write(fd, answers[asked] + b'\n')
            asked += 1
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(out)
    for a in answers:
        if a in out:
            print('pty-prompt: the answer was echoed', file=sys.stderr)
            return 90
    if asked < len(answers):
        print('pty-prompt: only %d of %d prompts seen' % (asked, len(answers)), file=sys.stderr)
        return 91
    return os.waitstatus_to_exitcode(status)


if __name__ == '__main__':
    sys.exit(main(sys.argv))
