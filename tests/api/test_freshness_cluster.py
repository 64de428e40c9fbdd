"""Freshness across instances under coalesced head reads (SPEC §11; issue
#21; src/store/freshness.h). On PostgreSQL the freshness read of a branch
(ACL version and head) is shared by the requests that arrive while another
read of the same branch is in flight: they wait for the NEXT read, never the
one in flight, so a write acknowledged (201) by one instance before a GET
arrives at another is always visible to that GET. Readers keep instance B
busy on the branch so that reads are in flight and shared the whole time;
writers create through A and read through B right after each 201."""

import threading

BACKENDS = ("pg",)
DEV = ("developer",)


def _h(srv, sub="dev"):
    h = srv.auth(sub, DEV)
    h["X-Issue-ID"] = "FRESH-21"
    return h


def _pair(ctx):
    a = ctx.new_server()
    b = ctx.new_server(start=False)
    b.env["DATABASE_URL"] = a.database_url
    b.database_url = a.database_url
    b.secret = a.secret
    b.env["JWT_SECRET"] = a.secret
    if "OMS_AUDIT_KEY" in a.env:
        b.env["OMS_AUDIT_KEY"] = a.env["OMS_AUDIT_KEY"]
    b.start()
    return a, b


def _sp(branch, name=None):
    u = f"/api/v1/schemas/{branch.replace('/', '%2F')}/shared-properties"
    return u + (f"/{name}" if name else "")


def _metric(srv, name):
    r = srv.get("/metrics", headers=srv.auth("svc", ("service_account",)))
    assert r.status == 200, r
    for line in r.body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing from /metrics")


def test_write_acknowledged_by_one_instance_is_seen_by_the_next_get_on_the_other(ctx):
    a, b = _pair(ctx)
    r = a.request("POST", "/api/v1/branches", headers=_h(a), json_body={"name": "fr/one", "from": "main"})
    assert r.status == 201, r
    r = a.request("POST", _sp("fr/one"), headers=_h(a), json_body={"api_name": "Seed", "type": "string"})
    assert r.status == 201, r
    before_reads = _metric(b, "oms_db_freshness_reads_total")
    before_requests = _metric(b, "oms_db_freshness_requests_total")

    stop = threading.Event()
    failures = []

    def reader():
        hdr = _h(b, "reader")
        while not stop.is_set():
            r = b.request("GET", _sp("fr/one", "Seed"), headers=hdr)
            if r.status != 200:
                failures.append(("reader", r.status))

    def writer(i):
        hdr_a, hdr_b = _h(a, f"w{i}"), _h(b, f"w{i}")
        for k in range(12):
            name = f"W{i}n{k}"
            r = a.request("POST", _sp("fr/one"), headers=hdr_a, json_body={"api_name": name, "type": "string"})
            if r.status != 201:
                failures.append(("write", name, r.status))
                continue
            etag = r.header("ETag")
            g = b.request("GET", _sp("fr/one", name), headers=hdr_b)
            if g.status != 200 or g.header("ETag") != etag:
                failures.append(("stale read", name, g.status, g.header("ETag"), etag))

    readers = [threading.Thread(target=reader) for _ in range(6)]
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert failures == [], failures[:5]
    reads = _metric(b, "oms_db_freshness_reads_total") - before_reads
    requests = _metric(b, "oms_db_freshness_requests_total") - before_requests
    # every GET asked; shared reads make fewer round trips than requests
    assert requests >= 48 and 0 < reads <= requests, (reads, requests)
    print(f"  freshness on B: {int(requests)} requests, {int(reads)} reads")
