"""Ambiguous HTTP framing (SPEC §5, docs/security.md "HTTP framing").

Each attack is sent with raw sockets, with a second request pipelined
behind it that would create a branch. The server must answer the attack with
the one status the SPEC names, in a problem document, close the connection
right after that answer (nothing else is ever read from the socket), never
run the follow-up request, and audit the refusal."""

import json
import secrets
import socket

import harness

ADMIN = ("admin",)


def _bearer(srv, roles=ADMIN, sub="framing-admin"):
    return "Bearer " + srv.token(sub, roles)


def _smuggled(srv, tag):
    """A request that would create the branch smuggled-TAG if it ran."""
    body = json.dumps({"name": f"smuggled-{tag}", "from": "main"})
    return (f"POST /api/v1/branches HTTP/1.1\r\nHost: x\r\nAuthorization: {_bearer(srv)}\r\n"
            f"X-Request-ID: smuggled-{tag}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


def _exchange(srv, data, timeout=5):
    """Sends raw bytes on a fresh connection. Returns the first response and
    every byte the server sent after it, read until it closed the connection
    (an assertion error if it kept it open)."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed before a response: {buf[:200]!r}")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(rest) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        body, after = rest[:n], rest[n:]
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                after += chunk
        except socket.timeout:
            raise AssertionError(f"the connection stayed open after the response; then: {after[:200]!r}")
        except ConnectionResetError:
            pass  # closed with our unread follow-up still queued: closed all the same
    finally:
        s.close()
    status = int(lines[0].split(" ", 2)[1])
    return harness.Response(status, "", headers, body.decode("utf-8", "replace")), after


def _assert_refused(srv, data, rid, tag, status=400, code="ambiguous_framing"):
    r, after = _exchange(srv, data)
    assert r.status == status, r
    assert r.header("Content-Type") == "application/problem+json", r.headers
    doc = r.json()
    assert doc["code"] == code and doc["status"] == status, doc
    assert r.header("Connection") == "close", r.headers
    assert after == b"", f"the server answered after the refusal: {after[:300]!r}"
    # the follow-up request never ran
    h = {"Authorization": _bearer(srv)}
    assert srv.get(f"/api/v1/branches/smuggled-{tag}", headers=h).status == 404
    assert srv.audit_events(f"request_id = 'smuggled-{tag}'") == []
    # and the refusal is on the record
    events = srv.audit_events(f"request_id = '{rid}'")
    assert [(e["action"], e["outcome"], str(e["http_status"])) for e in events] == \
        [("request.rejected", "denied", str(status))], events
    return doc


def _ids(name):
    tag = secrets.token_hex(4)
    return f"framing-{name}-{tag}", tag


def test_several_content_length_headers(ctx):
    srv = ctx.server
    rid, tag = _ids("cl2")
    smuggled = _smuggled(srv, tag)
    body = json.dumps({"name": f"outer-{tag}", "from": "main"}).encode()
    # the first length covers the body, the second also the smuggled request
    head = (f"POST /api/v1/branches HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n"
            f"Authorization: {_bearer(srv)}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nContent-Length: {len(body) + len(smuggled)}\r\n\r\n")
    _assert_refused(srv, head.encode() + body + smuggled, rid, tag)
    assert srv.get(f"/api/v1/branches/outer-{tag}", headers={"Authorization": _bearer(srv)}).status == 404


def test_content_length_with_transfer_encoding(ctx):
    srv = ctx.server
    rid, tag = _ids("clte")
    body = json.dumps({"name": f"outer-{tag}", "from": "main"}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    head = (f"POST /api/v1/branches HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n"
            f"Authorization: {_bearer(srv)}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(chunked)}\r\nTransfer-Encoding: chunked\r\n\r\n")
    _assert_refused(srv, head.encode() + chunked + _smuggled(srv, tag), rid, tag)
    assert srv.get(f"/api/v1/branches/outer-{tag}", headers={"Authorization": _bearer(srv)}).status == 404


def test_transfer_coding_other_than_chunked_is_501(ctx):
    srv = ctx.server
    rid, tag = _ids("xchunked")
    head = (f"POST /api/v1/branches HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n"
            f"Authorization: {_bearer(srv)}\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: xchunked\r\n\r\n")
    _assert_refused(srv, head.encode() + b"0\r\n\r\n" + _smuggled(srv, tag), rid, tag,
                    status=501, code="not_implemented")


def test_whitespace_before_a_header_colon(ctx):
    srv = ctx.server
    rid, tag = _ids("wscolon")
    # a front end that trims the name sees a chunked body holding the
    # follow-up; a server that does not sees no body and runs it
    head = (f"POST /api/v1/branches HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n"
            f"Authorization: {_bearer(srv)}\r\nTransfer-Encoding : chunked\r\n\r\n")
    _assert_refused(srv, head.encode() + _smuggled(srv, tag), rid, tag)


def test_nul_in_a_header_value(ctx):
    srv = ctx.server
    rid, tag = _ids("nulhdr")
    head = (f"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n"
            f"Authorization: {_bearer(srv)}\x00junk\r\n\r\n")
    _assert_refused(srv, head.encode() + _smuggled(srv, tag), rid, tag)


def test_bare_cr_in_a_header_value(ctx):
    srv = ctx.server
    rid, tag = _ids("crhdr")
    head = (f"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n"
            f"Authorization: {_bearer(srv)}\r\nUser-Agent: a\rX-Injected: 1\r\n\r\n")
    _assert_refused(srv, head.encode() + _smuggled(srv, tag), rid, tag)


def test_bare_lf_in_a_header_value(ctx):
    srv = ctx.server
    rid, tag = _ids("lfhdr")
    head = (f"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n"
            f"Authorization: {_bearer(srv)}\r\nUser-Agent: a\nX-Injected: 1\r\n\r\n")
    _assert_refused(srv, head.encode() + _smuggled(srv, tag), rid, tag)


def test_folded_header_line(ctx):
    srv = ctx.server
    rid, tag = _ids("fold")
    head = (f"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n"
            f"Authorization: {_bearer(srv)}\r\nUser-Agent: a\r\n folded\r\n\r\n")
    _assert_refused(srv, head.encode() + _smuggled(srv, tag), rid, tag)


def test_nul_in_the_target(ctx):
    srv = ctx.server
    rid, tag = _ids("nultarget")
    head = (f"GET /health\x00/../api/v1/audit HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n"
            f"Authorization: {_bearer(srv)}\r\n\r\n")
    _assert_refused(srv, head.encode() + _smuggled(srv, tag), rid, tag)


def test_cr_in_the_target(ctx):
    srv = ctx.server
    rid, tag = _ids("crtarget")
    head = f"GET /health?\r HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n\r\n"
    _assert_refused(srv, head.encode() + _smuggled(srv, tag), rid, tag)


def test_lf_in_the_target(ctx):
    """The HTTP library ends the request line at the LF and refuses the
    request itself (400, connection closed) before any callback of ours
    runs: there is no request to audit, and its answer is the library's own
    body, not a problem document."""
    srv = ctx.server
    _, tag = _ids("lftarget")
    r, after = _exchange(srv, b"GET /health\n/x HTTP/1.1\r\nHost: x\r\n\r\n" + _smuggled(srv, tag))
    assert r.status == 400, r
    assert after == b"", after
    assert srv.get(f"/api/v1/branches/smuggled-{tag}", headers={"Authorization": _bearer(srv)}).status == 404
    assert srv.audit_events(f"request_id = 'smuggled-{tag}'") == []


def test_http11_without_host(ctx):
    srv = ctx.server
    rid, tag = _ids("nohost")
    head = f"GET /api/v1/me HTTP/1.1\r\nX-Request-ID: {rid}\r\nAuthorization: {_bearer(srv)}\r\n\r\n"
    _assert_refused(srv, head.encode() + _smuggled(srv, tag), rid, tag)


def test_several_host_headers(ctx):
    srv = ctx.server
    rid, tag = _ids("host2")
    head = (f"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nHost: y\r\nX-Request-ID: {rid}\r\n"
            f"Authorization: {_bearer(srv)}\r\n\r\n")
    _assert_refused(srv, head.encode() + _smuggled(srv, tag), rid, tag)


def test_several_authorization_headers(ctx):
    srv = ctx.server
    rid, tag = _ids("auth2")
    head = (f"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n"
            f"Authorization: {_bearer(srv)}\r\nAuthorization: {_bearer(srv, ('viewer',), 'someone-else')}\r\n\r\n")
    _assert_refused(srv, head.encode() + _smuggled(srv, tag), rid, tag)


def test_sound_requests_keep_the_connection(ctx):
    """The checks refuse nothing a correct client sends: pipelined requests
    with a query, an empty header value, trailing whitespace, a cookie, a
    chunked body and HTTP/1.0 without Host are all answered on one
    connection."""
    srv = ctx.server
    tag = secrets.token_hex(4)
    body = json.dumps({"name": f"sound-{tag}", "from": "main"}).encode()
    data = (f"GET /api/v1/branches?limit=5 HTTP/1.1\r\nHost: x\r\nAuthorization: {_bearer(srv)}\r\n"
            f"X-Empty:\r\nUser-Agent: test\t \r\nCookie: a=b; c=d\r\n\r\n").encode()
    data += (f"POST /api/v1/branches HTTP/1.1\r\nhost: x\r\nauthorization: {_bearer(srv)}\r\n"
             f"Content-Type: application/json\r\ntransfer-encoding: Chunked\r\n\r\n").encode()
    data += b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    data += b"GET /health HTTP/1.0\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        s.sendall(data)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    statuses = []
    while got:
        status, headers, got = _read_head(None, got)
        statuses.append(int(status.split(" ")[1]))
        got = got[int(headers.get("content-length", "0")):]
    assert statuses == [200, 201, 200], statuses
    assert srv.get(f"/api/v1/branches/sound-{tag}", headers={"Authorization": _bearer(srv)}).status == 200


def _read_head(s, buf):
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {buf[:200]!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return lines[0], headers, rest


def test_head_never_carries_a_body(ctx):
    """HEAD of a streamed answer (the audit export) and of a buffered one,
    then GET on the same kept-alive connection: the GET's answer is the
    first byte that follows each HEAD's headers."""
    srv = ctx.server
    srv.get("/health")
    aud = _bearer(srv, ("auditor",), "framing-aud")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        s.sendall(f"HEAD /api/v1/audit/export HTTP/1.1\r\nHost: x\r\nAuthorization: {aud}\r\n\r\n".encode())
        status, headers, rest = _read_head(s, b"")
        assert status.startswith("HTTP/1.1 200 "), status
        assert headers.get("connection") != "close", headers
        s.sendall(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, rest = _read_head(s, rest)
        assert status.startswith("HTTP/1.1 200 "), (status, rest[:200])
        assert headers.get("content-length") == str(len('{"status":"ok"}')), headers
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    finally:
        s.close()
    status, headers, body = _read_head(None, rest) if b"\r\n\r\n" in rest else ("", {}, rest)
    assert status.startswith("HTTP/1.1 200 "), rest[:300]
    assert body == b'{"status":"ok"}', rest[:300]
