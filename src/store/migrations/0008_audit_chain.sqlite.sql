-- Audit events chained after commit (SPEC §9, docs/audit.md "Chain").
-- Events are inserted with their own seq (AUTOINCREMENT) and no link; the
-- inserting transaction also queues the seq in audit_unchained. The sealing
-- round appends queued, committed events to audit_chain at positions 1, 2,
-- 3, ... (the chain order, which need not be seq order) and seals the new
-- tip with a checkpoint; checkpoints' from_seq/upto_seq are positions.
-- The service never updates or deletes events or chain rows.
CREATE TABLE audit_chain (
    pos       INTEGER PRIMARY KEY,          -- 1, 2, 3, ...: the order the chainer appended events
    event_seq BIGINT NOT NULL UNIQUE,       -- audit_events.seq
    prev_hash TEXT NOT NULL,                -- hash at pos - 1 (64 zeros at the genesis)
    hash      TEXT NOT NULL                 -- SHA-256 over the event's columns and prev_hash
);
CREATE TABLE audit_unchained (
    seq INTEGER PRIMARY KEY                 -- an event committed and not chained yet
);
-- Upgrade: events chained inline by versions 4-7 keep their links, at
-- positions equal to their seq (that chain had no gaps).
INSERT INTO audit_chain (pos, event_seq, prev_hash, hash)
SELECT seq, seq, prev_hash, hash FROM audit_events WHERE hash IS NOT NULL ORDER BY seq;
-- Events without a hash that the inline chain had adopted in memory (seq <=
-- legacy_upto once the head has a hash) stay legacy positions; any other
-- event without a hash (never chained) is queued like a new one.
INSERT INTO audit_unchained (seq)
SELECT seq FROM audit_events
WHERE hash IS NULL
  AND NOT (seq <= (SELECT legacy_upto FROM audit_chain_head WHERE id = 1)
           AND (SELECT hash FROM audit_chain_head WHERE id = 1) IS NOT NULL);
UPDATE audit_chain_head SET legacy_upto = 0 WHERE hash IS NULL;
-- The head row is no longer written; only legacy_upto is read.
CREATE INDEX audit_checkpoints_upto ON audit_checkpoints (upto_seq, id);
CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'the audit chain is append-only'); END;
-- Chain rows, like events, leave only under an archive record.
CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
WHEN OLD.pos > (SELECT COALESCE(MAX(upto_seq), 0) FROM audit_checkpoints WHERE kind = 'archive')
BEGIN SELECT RAISE(ABORT, 'the audit chain is append-only'); END;
-- An event may leave only when an archive record covers its chain position
-- (a legacy event's position is its seq); an unchained one never.
DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN COALESCE((SELECT pos FROM audit_chain WHERE event_seq = OLD.seq),
              CASE WHEN OLD.seq <= (SELECT legacy_upto FROM audit_chain_head WHERE id = 1) THEN OLD.seq END,
              9223372036854775807)
     > (SELECT COALESCE(MAX(upto_seq), 0) FROM audit_checkpoints WHERE kind = 'archive')
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
