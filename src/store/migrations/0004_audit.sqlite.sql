-- Audit chain and checkpoints (SPEC §9, docs/audit.md).
-- Every event row carries prev_hash and hash, computed when it is inserted,
-- inside the inserting transaction. Its seq is taken from the one-row chain
-- head, updated in the same transaction, so the chain order is the commit
-- order and stays total however many instances write.
-- Events written before this version have no hash: they are "legacy" (seq <=
-- legacy_upto); the first append after the upgrade chains them in memory and
-- the next checkpoint seals them (head.hash is NULL until then).
CREATE TABLE audit_chain_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seq         BIGINT NOT NULL,
    hash        TEXT,
    legacy_upto BIGINT NOT NULL
);
INSERT INTO audit_chain_head (id, seq, hash, legacy_upto)
SELECT 1, COALESCE(MAX(seq), 0),
       CASE WHEN COUNT(*) = 0 THEN '0000000000000000000000000000000000000000000000000000000000000000' END,
       COALESCE(MAX(seq), 0)
FROM audit_events;
-- Checkpoints: seals of the chain up to upto_seq, and archive records of a
-- range moved to a file. HMAC-SHA256 with OMS_AUDIT_KEY over the canonical
-- checkpoint; each names the previous one's hmac; ids are 1, 2, 3, ...
CREATE TABLE audit_checkpoints (
    id          BIGINT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('seal', 'archive')),
    from_seq    BIGINT NOT NULL,
    upto_seq    BIGINT NOT NULL,
    chain_hash  TEXT NOT NULL,
    event_count BIGINT NOT NULL,
    time_ms     BIGINT NOT NULL,
    sealed_by   TEXT NOT NULL,
    detail      TEXT,
    prev_hmac   TEXT NOT NULL,
    hmac        TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_kind ON audit_checkpoints (kind, upto_seq);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
-- Events may leave the table only once an archive record covers them
-- (`oms audit archive`, never the service); updates are always refused.
DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.seq > (SELECT COALESCE(MAX(upto_seq), 0) FROM audit_checkpoints WHERE kind = 'archive')
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE INDEX audit_events_request ON audit_events (request_id);
