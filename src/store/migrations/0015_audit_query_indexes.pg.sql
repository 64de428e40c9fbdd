-- Audit queries filter by actor, action or branch and read the newest
-- events first (ORDER BY seq DESC LIMIT n, src/store/audit_sql.c): indexes
-- in that order answer them by reading n entries. The (actor, time) and
-- (action, time) indexes they replace made every such query sort all the
-- matching events, and a branch filter had no index at all: in the
-- 20-minute SQLite soak the audit class's p99 grew 12x with the table
-- (docs/BENCHMARKS.md, issue #21 round 5). Time ranges use audit_events_time.
DROP INDEX audit_events_actor;
DROP INDEX audit_events_action;
CREATE INDEX audit_events_actor_seq ON audit_events (actor_sub, seq);
CREATE INDEX audit_events_action_seq ON audit_events (action, seq);
CREATE INDEX audit_events_branch_seq ON audit_events (resource_branch, seq);
