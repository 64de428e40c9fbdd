"""Builds large ontologies quickly for the tests that need 10,000 types
(tests/api/test_snapshot_cache.py, tests/api/test_tree_storage.py): one
batch request per 1,000 operations."""

from harness import quote


def type_doc(i, **fields):
    """Object type T00000..T99999 with two properties; `fields` added."""
    d = {"api_name": f"T{i:05d}", "properties": [{"api_name": "id", "type": "string", "required": True},
                                                   {"api_name": "name", "type": "string"}],
         "primary_key": "id"}
    d.update({k: v for k, v in fields.items() if v is not None})
    return d


def apply_batches(srv, branch, ops, headers):
    for start in range(0, len(ops), 1000):
        r = srv.request("POST", f"/api/v1/schemas/{quote(branch)}/changes", headers=headers,
                        json_body={"operations": ops[start:start + 1000]}, timeout=600)
        assert r.status == 200, r
