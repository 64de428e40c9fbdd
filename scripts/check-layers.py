#!/usr/bin/env python3
"""The layering rules of docs/architecture.md, checked on the source tree.

1. Only src/http/, src/api/ and src/app/ include an http/ or api/ header.
2. No OMS_DB_PG / OMS_DB_SQLITE comparison outside src/store/.
3. The folder-level include graph of src/ has no cycle.
4. A folder includes only folders below it in LAYERS (lowest first); cli/
   (the command-line client, which speaks HTTP to the server) only util/.
   A folder missing from LAYERS is reported: place it in the order first.

Prints every violation and exits 1 when there is one."""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "src"
UPPER = {"http", "api", "app"}
# The target order of issue #12 (docs/architecture.md "Layers"), lowest first.
LAYERS = ["util", "core", "infra", "store", "ontology", "events", "audit", "auth", "governance", "locks", "txn", "vcs",
          "search", "webhooks", "backup", "ops", "http", "api", "app"]
RANK = {name: i for i, name in enumerate(LAYERS)}
ONLY = {"cli": {"util"}}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"', re.M)
BACKEND = re.compile(r"\bOMS_DB_(PG|SQLITE)\b(?!_)")


def folder_of(path):
    rel = os.path.relpath(path, ROOT).split(os.sep)
    return rel[0] if len(rel) > 1 else "."


def main():
    problems = []
    edges = {}
    unknown = set()
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
                elif folder in ONLY:
                    if target not in ONLY[folder]:
                        problems.append(f"{path}: includes {target}/ ({folder}/ may include only "
                                        f"{', '.join(sorted(ONLY[folder]))}/)")
                elif folder in RANK and target in RANK and RANK[target] > RANK[folder]:
                    problems.append(f"{path}: includes {target}/, a layer above {folder}/")
            if folder not in RANK and folder not in ONLY and folder != "." and folder not in unknown:
                unknown.add(folder)
                problems.append(f"{path}: src/{folder}/ is in no layer (add it to LAYERS in {sys.argv[0]})")
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
