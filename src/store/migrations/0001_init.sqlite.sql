-- Foundation schema: the audit event table, written from day one.
-- Times are epoch milliseconds (BIGINT) on both backends.
CREATE TABLE audit_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL UNIQUE,
    time_ms         BIGINT NOT NULL,
    actor_sub       TEXT,
    actor_roles     TEXT,            -- JSON array
    client_addr     TEXT,
    user_agent      TEXT,
    action          TEXT NOT NULL,   -- auth.failed, authz.denied, object_type.update, ...
    outcome         TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    http_status     INTEGER,
    request_id      TEXT,
    method          TEXT,
    route           TEXT,
    resource_kind   TEXT,
    resource_branch TEXT,
    resource_id     TEXT,
    issue_keys      TEXT,            -- JSON array
    override_id     TEXT,
    commit_id       TEXT,
    before_hash     TEXT,
    after_hash      TEXT,
    changed_paths   TEXT,            -- JSON array
    detail          TEXT,            -- JSON object: reason codes, never secrets
    prev_hash       TEXT,            -- hash chain (sealing comes with the audit issue)
    hash            TEXT
);
CREATE INDEX audit_events_time ON audit_events (time_ms);
CREATE INDEX audit_events_actor ON audit_events (actor_sub, time_ms);
CREATE INDEX audit_events_action ON audit_events (action, time_ms);
-- The service never updates or deletes events.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
