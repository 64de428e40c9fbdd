-- Content-addressed versioning (docs/storage.md): objects (resource
-- documents and tree nodes, stored once by hash), commits, branches, and the
-- materialised state of each branch head.
CREATE TABLE objects (
    hash    TEXT PRIMARY KEY,          -- hex SHA-256 of content
    type    TEXT NOT NULL CHECK (type IN ('resource', 'tree')),
    content TEXT NOT NULL              -- canonical JSON
);
CREATE TABLE commits (
    id           TEXT PRIMARY KEY,     -- hex SHA-256 of the canonical commit
    tree         TEXT NOT NULL,
    first_parent TEXT,
    parents      TEXT NOT NULL,        -- JSON array, in order
    author       TEXT NOT NULL,
    message      TEXT NOT NULL,
    time_ms      BIGINT NOT NULL,
    issue_keys   TEXT NOT NULL,        -- JSON array
    override_id  TEXT,
    generation   BIGINT NOT NULL       -- 1 + max(parent generation): bounds graph walks
);
CREATE TABLE commit_parents (
    commit_id TEXT NOT NULL,
    idx       INTEGER NOT NULL,
    parent_id TEXT NOT NULL,
    PRIMARY KEY (commit_id, idx)
);
CREATE INDEX commit_parents_parent ON commit_parents (parent_id);
CREATE TABLE commit_changes (
    commit_id TEXT NOT NULL,
    resource  TEXT NOT NULL,           -- KIND/API_NAME
    change    TEXT NOT NULL CHECK (change IN ('added', 'modified', 'removed')),
    old_hash  TEXT,
    new_hash  TEXT,
    PRIMARY KEY (commit_id, resource)
);
CREATE TABLE commit_issues (
    issue_key TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    PRIMARY KEY (issue_key, commit_id)
);
CREATE TABLE branches (
    name                      TEXT PRIMARY KEY,
    head                      TEXT NOT NULL REFERENCES commits (id),
    protected                 INTEGER NOT NULL DEFAULT 0,
    required_approvals        INTEGER NOT NULL DEFAULT 1,
    breaking_change_approvals INTEGER NOT NULL DEFAULT 2,
    issue_required            INTEGER,  -- NULL: the configured rule decides
    created_at                BIGINT NOT NULL,
    created_by                TEXT NOT NULL,
    updated_at                BIGINT NOT NULL
);
-- The head of each branch, materialised: one row per resource, with the last
-- commit on the head's first-parent line that changed it.
CREATE TABLE branch_resources (
    branch    TEXT NOT NULL,
    resource  TEXT NOT NULL,
    hash      TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    author    TEXT NOT NULL,
    time_ms   BIGINT NOT NULL,
    PRIMARY KEY (branch, resource)
);
-- The root commit is the same everywhere: empty tree, no parent, epoch time.
INSERT INTO objects (hash, type, content) VALUES
    ('44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', 'tree', '{}');
INSERT INTO commits (id, tree, first_parent, parents, author, message, time_ms, issue_keys, override_id, generation)
VALUES ('f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d',
        '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', NULL, '[]', 'oms',
        'Initialize the ontology', 0, '[]', NULL, 1);
INSERT INTO branches (name, head, protected, created_at, created_by, updated_at)
VALUES ('main', 'f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d', 1, 0, 'oms', 0);
