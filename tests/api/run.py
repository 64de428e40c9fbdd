"""Runs the API suite against one backend: every `test_*` function of every
tests/api/test_*.py module, each given a context with a shared server (or
starting its own). A test that does not apply here raises harness.Skip (or
its module names the backends it is for in BACKENDS) and is counted as
skipped, never as passed. Ends with "api[BACKEND]: N passed, N failed" and,
when some were skipped, ", K skipped" (scripts/run-tests.sh sums the first two)."""

import importlib.util
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402


class Context:
    def __init__(self, backend):
        self.backend = backend
        self._server = None
        self.owned = []

    @property
    def server(self):
        """A server shared by the tests that do not need their own."""
        if self._server is None or self._server.proc is None or self._server.proc.poll() is not None:
            self._server = harness.Server(self.backend)
            self.owned.append(self._server)
        return self._server

    def new_server(self, **kw):
        s = harness.Server(self.backend, **kw)
        self.owned.append(s)
        return s

    def close(self, keep_shared=False):
        """Tears every server down (all but the shared one when keep_shared);
        returns the sanitizer reports found."""
        reports = []
        done = [s for s in self.owned if not (keep_shared and s is self._server)]
        self.owned = [s for s in self.owned if s not in done]
        for s in done:
            try:
                s.stop()
                rep = s.sanitizer_report()
                if rep:
                    reports.append(rep)
                s.destroy()
            except Exception as e:  # keep tearing down the rest
                print(f"  teardown: {e}", file=sys.stderr)
        return reports


def main():
    backend = sys.argv[1]
    only = sys.argv[2] if len(sys.argv) > 2 else None
    here = os.path.dirname(os.path.abspath(__file__))
    tests = os.path.dirname(here)
    # The API suite, the attacks of tests/security and the short fault runs
    # of tests/faults, backup and restore (tests/backup), the client of
    # tests/cli: all speak HTTP to a real server through harness.py.
    modules = []
    for folder in ("api", "security", "faults", "backup", "cli"):
        d = os.path.join(tests, folder)
        if os.path.isdir(d):
            modules += sorted(os.path.join(d, f) for f in os.listdir(d) if f.startswith("test_") and f.endswith(".py"))
    ctx = Context(backend)
    passed = failed = skipped = 0
    try:
        for path in modules:
            fname = os.path.basename(path)
            spec = importlib.util.spec_from_file_location(fname[:-3], path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            # a module for some backends only: each of its tests is a SKIP here
            only_for = getattr(mod, "BACKENDS", None)
            for name in sorted(n for n in dir(mod) if n.startswith("test_")):
                full = f"{fname[:-3]}.{name}"
                if only and only not in full:
                    continue
                if only_for and backend not in only_for:
                    skipped += 1
                    print(f"SKIP {full}: only for {', '.join(only_for)}")
                    continue
                t0 = time.time()
                try:
                    getattr(mod, name)(ctx)
                    passed += 1
                    print(f"ok   {full} ({time.time() - t0:.2f}s)")
                except harness.Skip as e:
                    skipped += 1
                    print(f"SKIP {full}: {e}")
                except Exception:
                    failed += 1
                    print(f"FAIL {full}")
                    traceback.print_exc()
                    # the test's own servers first: the shared one's log
                    # rarely says why a test's own server misbehaved
                    for s in ctx.owned:
                        if s is not ctx._server and os.path.exists(s.log_path):
                            print(f"---- log tail of the test's own server (port {s.port}) ----\n"
                                  + s.read_log()[-3000:])
                    if ctx._server is not None:
                        print("---- shared server log tail ----\n" + ctx._server.read_log()[-1500:])
                # a test's own servers end with it: their database
                # connections would otherwise pile up until the run ends
                for rep in ctx.close(keep_shared=True):
                    failed += 1
                    print(f"FAIL {full}: sanitizer report in a server log:\n" + rep)
    finally:
        for rep in ctx.close():
            failed += 1
            print("FAIL sanitizer report in a server log:\n" + rep)
    print(f"api[{backend}]: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
