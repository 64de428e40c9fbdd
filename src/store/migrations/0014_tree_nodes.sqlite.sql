-- Tree storage in proportion to the change (docs/storage.md "Tree storage",
-- issue #21): a commit's tree is a trie of small binary nodes shared by
-- every tree that has them; `trees` maps a tree id (the Merkle root over the
-- buckets' canonical JSON, which commit ids hash) to its root node. The
-- legacy JSON tree objects are converted by a data step in C
-- (src/store/tree_convert.c) before this version is recorded, so this
-- script may run more than once: IF NOT EXISTS.
CREATE TABLE IF NOT EXISTS tree_nodes (
    hash BLOB PRIMARY KEY,   -- SHA-256 of body, 32 bytes
    body BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trees (
    id   TEXT PRIMARY KEY,   -- the tree id (hex), as commits.tree names it
    root BLOB NOT NULL       -- its root node's hash
) WITHOUT ROWID;
