-- Audit events chained after commit (SPEC §9, docs/audit.md "Chain"). See
-- the SQLite file for the model. Inserting an event takes no shared lock:
-- seq comes from the BIGSERIAL, and the queue row from the same statement.
CREATE TABLE audit_chain (
    pos       BIGINT PRIMARY KEY,
    event_seq BIGINT NOT NULL UNIQUE,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TABLE audit_unchained (
    seq BIGINT PRIMARY KEY
);
INSERT INTO audit_chain (pos, event_seq, prev_hash, hash)
SELECT seq, seq, prev_hash, hash FROM audit_events WHERE hash IS NOT NULL ORDER BY seq;
INSERT INTO audit_unchained (seq)
SELECT seq FROM audit_events
WHERE hash IS NULL
  AND NOT (seq <= (SELECT legacy_upto FROM audit_chain_head WHERE id = 1)
           AND (SELECT hash FROM audit_chain_head WHERE id = 1) IS NOT NULL);
UPDATE audit_chain_head SET legacy_upto = 0 WHERE hash IS NULL;
-- Versions 4-7 wrote seq explicitly and never advanced the sequence: new
-- events continue after every seq used so far (archived ones included).
SELECT setval(pg_get_serial_sequence('audit_events', 'seq'),
              GREATEST((SELECT COALESCE(MAX(seq), 0) FROM audit_events),
                       (SELECT COALESCE(MAX(upto_seq), 0) FROM audit_checkpoints)) + 1,
              false);
CREATE INDEX audit_checkpoints_upto ON audit_checkpoints (upto_seq, id);
CREATE FUNCTION oms_audit_chain_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.pos <= (SELECT COALESCE(MAX(upto_seq), 0) FROM audit_checkpoints WHERE kind = 'archive') THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit chain is append-only';
END;
$$;
CREATE TRIGGER audit_chain_no_update BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION oms_audit_chain_append_only();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION oms_audit_chain_append_only();
-- An event may leave only when an archive record covers its chain position
-- (a legacy event's position is its seq); an unchained one never.
CREATE OR REPLACE FUNCTION oms_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF COALESCE((SELECT pos FROM audit_chain WHERE event_seq = OLD.seq),
                    CASE WHEN OLD.seq <= (SELECT legacy_upto FROM audit_chain_head WHERE id = 1) THEN OLD.seq END,
                    9223372036854775807)
           <= (SELECT COALESCE(MAX(upto_seq), 0) FROM audit_checkpoints WHERE kind = 'archive') THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END;
$$;
