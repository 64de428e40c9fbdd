-- ACL policies (SPEC §6.2, docs/security.md "ACL policies"). Permissions and
-- branch globs are JSON array text, validated by the service on every write
-- and again when the policies are compiled. `etag` is the SHA-256 of the
-- canonical policy with its revision; PUT and DELETE compare-and-swap on it.
CREATE TABLE acl_policies (
    id          TEXT PRIMARY KEY,          -- opaque: acl_ + 32 hex
    subject     TEXT NOT NULL,             -- user:NAME | role:NAME
    effect      TEXT NOT NULL CHECK (effect IN ('allow', 'deny')),
    permissions TEXT NOT NULL,             -- JSON array of permission names
    branches    TEXT NOT NULL,             -- JSON array of globs; [] = everywhere
    description TEXT NOT NULL,
    revision    BIGINT NOT NULL,
    etag        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL
);
CREATE INDEX acl_policies_created ON acl_policies (created_at, id);
-- One row: bumped in the transaction of every ACL change, read once per
-- authorization by every instance to know when to recompile its policies.
CREATE TABLE acl_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO acl_version (id, version) VALUES (1, 0);
