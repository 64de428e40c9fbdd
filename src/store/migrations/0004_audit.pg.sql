-- Audit chain and checkpoints (SPEC §9, docs/audit.md). See the SQLite file
-- for the model; the chain head row is read FOR UPDATE by every appender.
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
CREATE FUNCTION oms_audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit checkpoints are append-only';
END;
$$;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION oms_audit_checkpoints_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION oms_audit_checkpoints_append_only();
-- Events may leave the table only once an archive record covers them
-- (`oms audit archive`, never the service); UPDATE and TRUNCATE are always
-- refused. The archive record itself must carry a valid HMAC, which verify
-- checks, so forging one to make room for a deletion is detected.
CREATE OR REPLACE FUNCTION oms_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.seq <= (SELECT COALESCE(MAX(upto_seq), 0) FROM audit_checkpoints WHERE kind = 'archive') THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END;
$$;
CREATE INDEX audit_events_request ON audit_events (request_id);
