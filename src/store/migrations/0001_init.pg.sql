-- Foundation schema: the audit event table, written from day one.
-- Times are epoch milliseconds (BIGINT) on both backends.
CREATE TABLE audit_events (
    seq             BIGSERIAL PRIMARY KEY,
    event_id        TEXT NOT NULL UNIQUE,
    time_ms         BIGINT NOT NULL,
    actor_sub       TEXT,
    actor_roles     TEXT,
    client_addr     TEXT,
    user_agent      TEXT,
    action          TEXT NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    http_status     INTEGER,
    request_id      TEXT,
    method          TEXT,
    route           TEXT,
    resource_kind   TEXT,
    resource_branch TEXT,
    resource_id     TEXT,
    issue_keys      TEXT,
    override_id     TEXT,
    commit_id       TEXT,
    before_hash     TEXT,
    after_hash      TEXT,
    changed_paths   TEXT,
    detail          TEXT,
    prev_hash       TEXT,
    hash            TEXT
);
CREATE INDEX audit_events_time ON audit_events (time_ms);
CREATE INDEX audit_events_actor ON audit_events (actor_sub, time_ms);
CREATE INDEX audit_events_action ON audit_events (action, time_ms);
-- The service never updates or deletes events; the database refuses too.
CREATE FUNCTION oms_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION oms_audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION oms_audit_append_only();
