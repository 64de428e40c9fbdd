"""A reference reading of the stored tree (docs/storage.md "Tree storage")
and of the legacy JSON tree objects it replaced, for tests that build
databases of schema version 13 or check what a commit stores.

Trie node bodies: 0x01 (format), then 0x00 (leaf) followed by entries
(varint key length, key, 32-byte resource hash), or 0x01 (interior)
followed by a 4-bit child bitmap and the children's 32-byte hashes. Legacy
tree objects: a bucket is the canonical JSON {"KIND/NAME": hash}, the root
{"00": bucket_hash, ...} over non-empty buckets by the first byte of
SHA-256(key); the tree id is the root's hash."""

import hashlib
import json


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text):
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


def nodes(srv):
    """{hash_hex: body_bytes} of every stored node."""
    if srv.backend == "sqlite":
        rows = srv.query("SELECT lower(hex(hash)), lower(hex(body)) FROM tree_nodes")
    else:
        rows = srv.query("SELECT encode(hash, 'hex'), encode(body, 'hex') FROM tree_nodes")
    return {h: bytes.fromhex(b) for h, b in rows}


def roots(srv):
    """{tree_id: root_hex}."""
    if srv.backend == "sqlite":
        rows = srv.query("SELECT id, lower(hex(root)) FROM trees")
    else:
        rows = srv.query("SELECT id, encode(root, 'hex') FROM trees")
    return dict(rows)


def leaf_entries(body):
    out, p = {}, 2
    while p < len(body):
        n, shift = 0, 0
        while True:
            b = body[p]
            p += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        key = body[p:p + n].decode("utf-8")
        out[key] = body[p + n:p + n + 32].hex()
        p += n + 32
    return out


def mapping(all_nodes, root_hex):
    """{key: resource_hash} of the tree whose root node is root_hex."""
    out, todo = {}, [root_hex]
    while todo:
        body = all_nodes[todo.pop()]
        assert body[0] == 1, body[:2]
        if body[1] == 0:
            out.update(leaf_entries(body))
        else:
            k = (len(body) - 3) // 32
            todo += [body[3 + 32 * i:3 + 32 * (i + 1)].hex() for i in range(k)]
    return out


def legacy_objects(m):
    """(tree_id, [(hash, 'tree', content)]) of the legacy form of mapping m."""
    buckets = {}
    for key, h in m.items():
        b = "%02x" % hashlib.sha256(key.encode("utf-8")).digest()[0]
        buckets.setdefault(b, {})[key] = h
    objs, root = [], {}
    for b, content in buckets.items():
        text = canonical(content)
        root[b] = sha256_hex(text)
        objs.append((root[b], "tree", text))
    text = canonical(root)
    objs.append((sha256_hex(text), "tree", text))
    return sha256_hex(text), objs


def all_legacy_objects(srv):
    """Every tree the server stores, in the legacy form: [(hash, 'tree', content)]."""
    all_nodes, out, seen = nodes(srv), [], set()
    for tree_id, root in roots(srv).items():
        tid, objs = legacy_objects(mapping(all_nodes, root))
        assert tid == tree_id, (tid, tree_id)
        for o in objs:
            if o[0] not in seen:
                seen.add(o[0])
                out.append(o)
    return out


def tree_bytes(srv):
    """Bytes of tree storage: node bodies and their 32-byte keys, and the
    trees rows (id text and 32-byte root)."""
    if srv.backend == "sqlite":
        n = srv.query("SELECT COALESCE(SUM(length(body)), 0) + 32 * count(*) FROM tree_nodes")[0][0]
        t = srv.query("SELECT COALESCE(SUM(length(id)), 0) + 32 * count(*) FROM trees")[0][0]
    else:
        n = srv.query("SELECT COALESCE(SUM(length(body)), 0) + 32 * count(*) FROM tree_nodes")[0][0]
        t = srv.query("SELECT COALESCE(SUM(length(id)), 0) + 32 * count(*) FROM trees")[0][0]
    return int(n) + int(t)


def database_bytes(srv):
    """The whole database's size (SQLite: pages in use, WAL included;
    PostgreSQL: pg_database_size)."""
    if srv.backend == "sqlite":
        import sqlite3
        con = sqlite3.connect(srv.db_path, timeout=10)
        try:
            return con.execute("PRAGMA page_count").fetchone()[0] * con.execute("PRAGMA page_size").fetchone()[0]
        finally:
            con.close()
    return int(srv.query("SELECT pg_database_size(current_database())")[0][0])
