-- Locks (SPEC §7, docs/locks.md). Lock rows are the lock: every instance
-- reads and writes them, so a lock outlives the instance that granted it.
-- A lock is live while state = 'active' and the database clock is before
-- deadline_at, which is kept equal to
--   min(expires_at, last_heartbeat_at + 3 * heartbeat_seconds * 1000)
-- (the heartbeat term only when heartbeat_seconds > 0) by every statement
-- that changes those fields. Times are epoch milliseconds.
-- The fencing counter: one row, bumped in every acquiring transaction
-- (SQLite has no sequences; the write lock of BEGIN IMMEDIATE orders them).
CREATE TABLE lock_fencing (id INTEGER PRIMARY KEY CHECK (id = 1), value BIGINT NOT NULL);
INSERT INTO lock_fencing (id, value) VALUES (1, 0);
CREATE TABLE locks (
    id                  TEXT PRIMARY KEY,          -- opaque: lck_ + 32 hex
    branch              TEXT NOT NULL,
    scope               TEXT NOT NULL CHECK (scope IN ('resource', 'resource_type', 'branch')),
    resource_type       TEXT,                      -- kind segment; NULL for branch scope
    resource_id         TEXT,                      -- api name; only for resource scope
    kind                TEXT NOT NULL CHECK (kind IN ('indexing', 'migration', 'backup', 'maintenance', 'manual')),
    holder              TEXT NOT NULL,             -- the acquiring principal's sub
    reason              TEXT NOT NULL,
    acquired_at         BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    heartbeat_seconds   INTEGER NOT NULL DEFAULT 0,
    last_heartbeat_at   BIGINT NOT NULL,
    deadline_at         BIGINT NOT NULL,
    progress_percent    REAL,
    progress_phase      TEXT,
    progress_message    TEXT,
    progress_updated_at BIGINT,
    fencing_token       BIGINT NOT NULL UNIQUE,
    state               TEXT NOT NULL DEFAULT 'active'
                        CHECK (state IN ('active', 'released', 'force_released', 'expired')),
    ended_at            BIGINT,
    ended_by            TEXT,
    CHECK ((scope = 'branch' AND resource_type IS NULL AND resource_id IS NULL)
        OR (scope = 'resource_type' AND resource_type IS NOT NULL AND resource_id IS NULL)
        OR (scope = 'resource' AND resource_type IS NOT NULL AND resource_id IS NOT NULL))
);
CREATE INDEX locks_active_branch ON locks (branch, deadline_at) WHERE state = 'active';
CREATE INDEX locks_active_deadline ON locks (deadline_at) WHERE state = 'active';
CREATE INDEX locks_holder ON locks (holder, acquired_at);
