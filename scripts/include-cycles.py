#!/usr/bin/env python3
"""Fails when the modules under src/ include each other in a cycle.

A module is src/<name>.c with its src/<name>.h; module A depends on module B when A's .c
or .h includes "B.h". Prints each cycle found and exits 1, or exits 0 when there is none.
Usage: python3 scripts/include-cycles.py [SRC_DIR]
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.M)


def graph(src):
    deps = {}
    for f in sorted(os.listdir(src)):
        name, ext = os.path.splitext(f)
        if ext not in (".c", ".h"):
            continue
        with open(os.path.join(src, f), encoding="utf-8") as fh:
            found = set(INCLUDE.findall(fh.read()))
        deps.setdefault(name, set()).update(d for d in found if d != name)
    return deps


def cycles(deps):
    found, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in sorted(deps.get(n, ())):
            if state.get(d) == 1:
                found.append(stack[stack.index(d):] + [d])
            elif d in deps and not state.get(d):
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(deps):
        if not state.get(n):
            visit(n)
    return found


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "src"
    found = cycles(graph(src))
    for c in found:
        print("include cycle: " + " -> ".join(c))
    if not found:
        print("include-cycles: no cycle among the modules in %s" % src)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
