"""A webhook receiver for the events and webhook tests: a real HTTP server
(http.server in a thread) that records every POST, answers as told (ok,
500, hang, redirect) and can be taken down and brought back on its port.
Signatures are checked with the test's own HMAC code (Standard Webhooks)."""

import base64
import hashlib
import hmac
import http.server
import json
import socket
import threading
import time


def verify(secret, headers, body):
    """The Standard Webhooks check: v1,<base64 HMAC-SHA256(id.ts.body)>,
    key = the base64 after whsec_ (any other secret: its bytes)."""
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    msg = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    want = "v1," + base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
    got = headers.get("webhook-signature", "").split(" ")
    return any(hmac.compare_digest(want, g) for g in got)


class Receiver:
    def __init__(self, mode="ok", port=None):
        self.mode = mode          # "ok", "500", "hang", or "redirect:<url>"
        self.hang_seconds = 30
        self.lock = threading.Lock()
        self.calls = []           # every request: (headers, body, answered status)
        self.port = port or self._free_port()
        self.httpd = None
        self.start()

    @staticmethod
    def _free_port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        return p

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self):
        rcv = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                mode = rcv.mode
                status = 200
                if mode == "hang":
                    time.sleep(rcv.hang_seconds)
                    status = 200
                elif mode == "500":
                    status = 500
                elif mode.startswith("redirect:"):
                    status = 307
                with rcv.lock:
                    rcv.calls.append((hdrs, body, status))
                try:
                    self.send_response(status)
                    if mode.startswith("redirect:"):
                        self.send_header("Location", mode[len("redirect:"):])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass

        class S(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.httpd = S(("127.0.0.1", self.port), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def delivered(self):
        """Events answered 2xx, in arrival order: (headers, parsed body)."""
        with self.lock:
            return [(h, json.loads(b)) for h, b, st in self.calls if 200 <= st < 300]

    def all_calls(self):
        with self.lock:
            return list(self.calls)

    def wait_for(self, pred, timeout=20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred(self):
                return True
            time.sleep(0.05)
        return pred(self)
