-- The audit log's query indexes move off the write path (docs/audit.md
-- "Queries"). Every audited change wrote one page of each of the five
-- indexes below in its own transaction (5 of the 18 pages a SQLite lock
-- change wrote to the log, 19 % of the 20-minute soak's log frames:
-- docs/BENCHMARKS.md, round 43). Now the chainer, which already rewrites
-- each event into audit_chain in batches, copies the queried columns of
-- every event it chains into audit_facets, indexed as the events were; a
-- filtered read takes what is chained from there and what is still queued
-- (audit_unchained, a few hundred rows at most) from the queue. The chain
-- and the facets of an event commit in one transaction, with the removal
-- of its queue row, so a read finds every event in exactly one of the two.
-- The facets are derived: they are not in backups, and a restore rebuilds
-- them. Events before the chain (seq <= legacy_upto) and chained events
-- get theirs here; an event with neither a chain row nor a queue row was
-- written behind the service's back, is reported by verify, and is not
-- listed by filtered reads.
CREATE TABLE audit_facets (
    seq             BIGINT PRIMARY KEY,
    time_ms         BIGINT NOT NULL,
    actor_sub       TEXT,
    action          TEXT NOT NULL,
    resource_branch TEXT,
    request_id      TEXT
);
INSERT INTO audit_facets (seq, time_ms, actor_sub, action, resource_branch, request_id)
SELECT e.seq, e.time_ms, e.actor_sub, e.action, e.resource_branch, e.request_id FROM audit_events e
 WHERE e.seq <= COALESCE((SELECT legacy_upto FROM audit_chain_head WHERE id = 1), 0)
    OR EXISTS (SELECT 1 FROM audit_chain x WHERE x.event_seq = e.seq);
DROP INDEX audit_events_time;
DROP INDEX audit_events_request;
DROP INDEX audit_events_actor_seq;
DROP INDEX audit_events_action_seq;
DROP INDEX audit_events_branch_seq;
CREATE INDEX audit_facets_time ON audit_facets (time_ms);
CREATE INDEX audit_facets_request ON audit_facets (request_id);
CREATE INDEX audit_facets_actor ON audit_facets (actor_sub, seq);
CREATE INDEX audit_facets_action ON audit_facets (action, seq);
CREATE INDEX audit_facets_branch ON audit_facets (resource_branch, seq);
