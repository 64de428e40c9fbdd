-- Search (SPEC §8, docs/search.md). Each branch's index is a generation:
-- rows of search_docs under one generation id, one 'active' generation per
-- branch serving searches, at most one 'building' in the shadow (a rebuild
-- job), 'retired' ones waiting to be dropped in batches. Generation ids are
-- never reused (AUTOINCREMENT), so a dropped generation can never come back
-- under a reader that still holds its id.
CREATE TABLE search_generations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    branch      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('active', 'building', 'retired')),
    job_id      TEXT,              -- the rebuild job building it; NULL for a branch's first generation
    commit_id   TEXT NOT NULL,     -- active: the head it holds; building: the commit it is built from
    created_at  BIGINT NOT NULL,
    activated_at BIGINT,
    retired_at  BIGINT
);
CREATE UNIQUE INDEX search_generations_active ON search_generations (branch) WHERE state = 'active';
CREATE UNIQUE INDEX search_generations_building ON search_generations (branch) WHERE state = 'building';
CREATE INDEX search_generations_retired ON search_generations (retired_at) WHERE state = 'retired';

-- One row per resource and generation: what the ranking compares (kind,
-- api name, its normalised form) and the four weighted term fields, indexed
-- by FTS5 below. `gen` ('g' || generation) is the token that scopes a match
-- to one generation inside the one FTS index.
CREATE TABLE search_docs (
    id          INTEGER PRIMARY KEY,
    generation  INTEGER NOT NULL,
    resource    TEXT NOT NULL,     -- KIND/API_NAME
    kind        TEXT NOT NULL,
    api_name    TEXT NOT NULL,
    api_norm    TEXT NOT NULL,     -- lower case, letters and digits only
    hash        TEXT NOT NULL,     -- the resource's content hash (its ETag)
    gen         TEXT NOT NULL,
    api         TEXT NOT NULL,
    names       TEXT NOT NULL,
    props       TEXT NOT NULL,
    descr       TEXT NOT NULL,
    UNIQUE (generation, resource)
);
CREATE VIRTUAL TABLE search_fts USING fts5(gen, api, names, props, descr, content = 'search_docs',
    content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 0', prefix = '1 2 3');
-- search_docs rows are inserted and deleted, never updated.
CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN
    INSERT INTO search_fts (rowid, gen, api, names, props, descr)
    VALUES (new.id, new.gen, new.api, new.names, new.props, new.descr);
END;
CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
    INSERT INTO search_fts (search_fts, rowid, gen, api, names, props, descr)
    VALUES ('delete', old.id, old.gen, old.api, old.names, old.props, old.descr);
END;
CREATE TRIGGER search_docs_au BEFORE UPDATE ON search_docs BEGIN
    SELECT RAISE(ABORT, 'search_docs rows are never updated');
END;

-- Resources changed by commits while a generation is being built: the
-- builder catches up with them (the newest commit that touched each).
CREATE TABLE search_pending (
    generation  INTEGER NOT NULL,
    resource    TEXT NOT NULL,
    commit_id   TEXT NOT NULL,
    PRIMARY KEY (generation, resource)
);

-- Rebuild jobs (POST /branches/{b}/index/rebuild). A running job holds the
-- heartbeating lock lock_id; when that lock lapses the job is failed.
CREATE TABLE index_jobs (
    id                  TEXT PRIMARY KEY,      -- idx_ + 32 hex
    branch              TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    phase               TEXT NOT NULL CHECK (phase IN ('snapshot', 'build', 'catch_up', 'switch', 'done')),
    generation          BIGINT NOT NULL,
    previous_generation BIGINT,
    commit_id           TEXT NOT NULL,
    lock_id             TEXT NOT NULL,
    switch_lock_id      TEXT,
    done                BIGINT NOT NULL DEFAULT 0,
    total               BIGINT NOT NULL DEFAULT 0,
    percent             REAL NOT NULL DEFAULT 0,
    caught_up           BIGINT NOT NULL DEFAULT 0,
    requested_by        TEXT NOT NULL,
    request_id          TEXT,
    instance            TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    switch_started_at   BIGINT,
    switch_ended_at     BIGINT,
    finished_at         BIGINT,
    error               TEXT
);
CREATE UNIQUE INDEX index_jobs_one_running ON index_jobs (branch) WHERE state = 'running';
CREATE INDEX index_jobs_branch ON index_jobs (branch, created_at);
