#!/usr/bin/env python3
"""Fails when a statement with `co_await` also holds a conditional expression (`a ? b : c`).

GCC 12 destroys the temporary of a conditional expression in a co_await operand twice (the
worker's double free when a backend failed before its response head). Build such values into a
named local first, then co_await. Usage: co_await_operands.py ROOT [DIR ...]
"""
import pathlib
import re
import sys

# Comments and literals, matched left to right in one pass (an apostrophe in a comment is not a
# character literal, a "//" in a string is not a comment).
NOT_CODE = re.compile(
    r'//[^\n]*|/\*.*?\*/|R"(\w*)\(.*?\)\1"|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


def blank(match):
    # Keeps line numbers: a removed literal or comment leaves its newlines.
    return re.sub(r'[^\n]', ' ', match.group(0))


def offences(path):
    text = NOT_CODE.sub(blank, path.read_text(errors='replace'))
    for found in re.finditer(r'\bco_await\b', text):
        start = text.rfind(';', 0, found.start())
        start = max(start, text.rfind('{', 0, found.start()), text.rfind('}', 0, found.start()))
        end = text.find(';', found.end())
        statement = text[start + 1:end]
        if '?' in statement:
            yield text.count('\n', 0, found.start()) + 1


def main():
    root = pathlib.Path(sys.argv[1])
    dirs = sys.argv[2:] or ['common', 'controlplane', 'dataplane', 'cli', 'bench', 'tests']
    bad = []
    for directory in dirs:
        for path in sorted((root / directory).rglob('*')):
            if path.suffix in ('.cc', '.cpp', '.h'):
                bad += [f'{path.relative_to(root)}:{line}' for line in offences(path)]
    for place in bad:
        print(f'{place}: a conditional expression in a statement with co_await '
              '(build the value in a named local first)')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
