#!/usr/bin/env python3
"""The layering rules of docs/architecture.md, checked on the source tree.

1. Only src/http/, src/api/ and src/app/ include an http/ or api/ header.
2. No OMS_DB_PG / OMS_DB_SQLITE comparison outside src/store/.
3. The folder-level include graph of src/ has no cycle.

Prints every violation and exits 1 when there is one."""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "src"
UPPER = {"http", "api", "app"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"', re.M)
BACKEND = re.compile(r"\bOMS_DB_(PG|SQLITE)\b(?!_)")


def folder_of(path):
    rel = os.path.relpath(path, ROOT).split(os.sep)
    return rel[0] if len(rel) > 1 else "."


def main():
    problems = []
    edges = {}
    for dirpath, _, files in os.walk(ROOT):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, f)
            folder = folder_of(path)
            text = open(path, encoding="utf-8").read()
            for m in INCLUDE.finditer(text):
                target = m.group(1)
                if target == folder:
                    continue
                edges.setdefault(folder, {}).setdefault(target, path)
                if target in ("http", "api") and folder not in UPPER:
                    problems.append(f"{path}: includes {target}/ (domain code must not know HTTP)")
            if folder != "store":
                for n, line in enumerate(text.splitlines(), 1):
                    code = line.split("//")[0]
                    if BACKEND.search(code) and not code.lstrip().startswith(("*", "/*")):
                        problems.append(f"{path}:{n}: backend test outside src/store/")
    # cycles: depth-first search over folders
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, {})):
            if state.get(m) == 1:
                cyc = stack[stack.index(m):] + [m]
                hops = [f"{a} -> {b} ({edges[a][b]})" for a, b in zip(cyc, cyc[1:])]
                problems.append("include cycle: " + "; ".join(hops))
            elif not state.get(m):
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if not state.get(n):
            visit(n)
    for p in problems:
        print(p)
    print(f"layers: {len(problems)} violation(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
