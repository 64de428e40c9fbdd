-- Events (SPEC §13): the transactional outbox. Each change writes its
-- CloudEvents envelope here in its own transaction. `pos` is the order in
-- which events are delivered and pulled: on SQLite, whose writers are
-- serialised, it is assigned at insert; on PostgreSQL a sequencer assigns
-- it after commit (docs/events.md "Order").
CREATE TABLE events (
    seq      BIGSERIAL PRIMARY KEY,
    pos      BIGINT,
    id       TEXT NOT NULL UNIQUE,
    type     TEXT NOT NULL,
    branch   TEXT,
    time_ms  BIGINT NOT NULL,
    body     TEXT NOT NULL
);
CREATE UNIQUE INDEX events_pos ON events (pos);
CREATE INDEX events_unordered ON events (seq) WHERE pos IS NULL;
