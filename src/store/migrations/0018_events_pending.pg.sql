-- PostgreSQL's events wait for their position in a queue of their own, so
-- that the events table is append-only (docs/events.md "Order"). Before,
-- an event was inserted without a position and the sequencer updated it:
-- every event left a dead row version and an index entry in each of the
-- table's indexes, and autovacuum scanned those indexes whole, more each
-- time as the table grew. Now a change inserts its event here, and the
-- sequencer moves what has committed into `events` with its position, in
-- one statement. The queue stays a few rows long, so its vacuum is cheap.
-- Events with an empty position in `events` (written by an instance of an
-- earlier version during an upgrade, or restored from a backup taken while
-- some waited) are still given one in place (index events_unordered).
CREATE TABLE events_pending (
    seq      BIGINT PRIMARY KEY DEFAULT nextval('events_seq_seq'::regclass),
    id       TEXT NOT NULL UNIQUE,
    type     TEXT NOT NULL,
    branch   TEXT,
    time_ms  BIGINT NOT NULL,
    body     TEXT NOT NULL
);
