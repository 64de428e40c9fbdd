"""The suite's own rules (ENGINEERING.md habit 18), checked on its source so
they stay kept: a test that does not apply to a backend raises harness.Skip
(never a bare `return` under a backend condition, which would count as a
pass), and an assertion on a response status names one status, not a set
of them. No server is started."""

import ast
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def _modules():
    """Every Python test module of every folder under tests/ (the ones
    run.py runs, and any folder added later)."""
    tests = os.path.dirname(HERE)
    for folder in sorted(os.listdir(tests)):
        d = os.path.join(tests, folder)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if f.startswith("test_") and f.endswith(".py"):
                path = os.path.join(d, f)
                with open(path) as fh:
                    yield f"{folder}/{f}", ast.parse(fh.read(), path)


def _mentions_backend(node):
    return any(isinstance(n, ast.Attribute) and n.attr == "backend" for n in ast.walk(node))


def _only_returns(body):
    """A branch that does nothing but leave (a print or pass at most): the
    test's remaining assertions never run and it counts as passed. A branch
    that asserts something of its own before returning is a test of that
    backend, not a skip."""
    quiet = all(isinstance(s, (ast.Return, ast.Pass)) or
                (isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)) for s in body)
    return quiet and any(isinstance(s, ast.Return) for s in body)


def test_no_test_passes_silently_on_a_backend(ctx):
    found = []
    for name, tree in _modules():
        for fn in tree.body:
            if not (isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_")):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.If) and _mentions_backend(node.test) and _only_returns(node.body):
                    found.append(f"{name}:{node.lineno} {fn.name}")
    assert not found, "raise harness.Skip(reason) instead of returning: " + ", ".join(found)


def _is_status(node):
    return isinstance(node, ast.Attribute) and node.attr == "status"


def _several_statuses(node):
    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and \
        sum(isinstance(e, ast.Constant) and isinstance(e.value, int) for e in node.elts) > 1


def test_status_assertions_name_one_status(ctx):
    found = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assert):
                continue
            for cmp in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
                parts = [cmp.left] + cmp.comparators
                for (left, op, right) in zip(parts, cmp.ops, parts[1:]):
                    several = isinstance(op, (ast.In, ast.NotIn)) and _is_status(left) and _several_statuses(right)
                    ranged = isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) and (_is_status(left) or _is_status(right))
                    if several or ranged:
                        found.append(f"{name}:{node.lineno}")
    assert not found, "assert the one status the SPEC names: " + ", ".join(found)
