"""After the API run on SQLite: validates every JSON response body the suite
recorded (OMS_RECORD_RESPONSES) against the OpenAPI document a fresh server
serves, with tests/browser/check-openapi.mjs (ajv). Prints
"openapi-responses: N passed, M failed" for scripts/run-tests.sh."""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BROWSER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "browser")


def main():
    recorded = sys.argv[1]
    if not os.path.isdir(os.path.join(BROWSER, "node_modules")):
        print("SKIP openapi-responses: tests/browser/node_modules missing")
        return 0
    srv = harness.Server("sqlite")
    try:
        r = srv.get("/api/v1/openapi.json", headers=srv.auth("checker", ("viewer",)))
        assert r.status == 200, r
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write(r.body)
    finally:
        srv.stop()
        srv.destroy()
    try:
        p = subprocess.run(["node", "check-openapi.mjs", f.name, "--responses", os.path.abspath(recorded)],
                           cwd=BROWSER, capture_output=True, text=True, timeout=300)
    finally:
        os.unlink(f.name)
    out = p.stdout.replace("openapi: ", "openapi-responses: ")
    print(out + p.stderr, end="")
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
