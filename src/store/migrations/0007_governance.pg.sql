-- Emergency overrides (SPEC §6.4) and stored security alerts (SPEC §10).
CREATE TABLE overrides (
    id                 TEXT PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ('issue_requirement', 'protected_branch', 'lock', 'breaking_change')),
    branch             TEXT NOT NULL,
    resource           TEXT,              -- KIND/API_NAME, or NULL for the whole branch
    justification      TEXT NOT NULL,
    incident           TEXT NOT NULL,
    requester          TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'cancelled', 'used', 'expired')),
    ttl_seconds        INTEGER NOT NULL,
    approvals_required INTEGER NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    decided_at         BIGINT,
    decided_by         TEXT,
    used_at            BIGINT,
    used_request_id    TEXT
);
CREATE INDEX overrides_state ON overrides (state, expires_at);
CREATE TABLE override_approvals (
    override_id TEXT NOT NULL,
    approver    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (override_id, approver)
);
CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    time_ms     BIGINT NOT NULL,
    rule        TEXT NOT NULL,
    severity    TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    subject     TEXT,
    client_addr TEXT,
    request_id  TEXT,
    detail      TEXT NOT NULL,
    delivered   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX alerts_time ON alerts (time_ms);
