-- One lock pair's PostgreSQL statements as the server sends them (round 29
-- of docs/BENCHMARKS.md): acquire in two pipelines (BEGIN, write guard,
-- branch lock, guarded insert; then audit event with its chain-queue row,
-- outbox event, COMMIT), release in two (BEGIN, guard, update; then the
-- same three and COMMIT). bench/locks_bench.sh replays it with pgbench
-- against the bench's database, so the pair over HTTP is shown beside the
-- cost of its own SQL. Mirrors src/store/locks_sql.c, audit_sql.c and
-- events_sql.c: change it with them.
\set r random(1, 9000000000000000000)
\startpipeline
BEGIN;
SELECT oms_write_guard();
SELECT pg_advisory_xact_lock(-2331229108181761150);
WITH n AS MATERIALIZED (SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS t) INSERT INTO locks (id, branch, scope, resource_type, resource_id, kind, holder, reason, acquired_at, expires_at, heartbeat_seconds, last_heartbeat_at, deadline_at, fencing_token, state) SELECT 'lck_pgb' || :r, 'bench', 'resource', 'object-types', 'PGB', 'manual', 'bench', 'bench', n.t, n.t + 60000, 0, n.t, n.t + 60000, nextval('lock_fencing_seq'), 'active' FROM n WHERE EXISTS (SELECT 1 FROM branches WHERE name = 'bench') AND NOT EXISTS (SELECT 1 FROM locks o WHERE o.branch = 'bench' AND o.state = 'active' AND o.deadline_at > n.t AND (o.scope = 'branch' OR 'resource' = 'branch' OR (o.resource_type = 'object-types' AND (o.scope = 'resource_type' OR 'resource' = 'resource_type' OR o.resource_id = 'PGB')))) RETURNING acquired_at, fencing_token;
\endpipeline
\startpipeline
WITH ev AS (INSERT INTO audit_events (event_id, time_ms, actor_sub, actor_roles, client_addr, user_agent, action, outcome, http_status, request_id, method, route, resource_kind, resource_branch, resource_id, issue_keys, override_id, commit_id, before_hash, after_hash, changed_paths, detail) VALUES ('evt_pgba' || :r, COALESCE(NULL, (extract(epoch from clock_timestamp()) * 1000)::bigint), 'bench', '["developer"]', '127.0.0.1', NULL, 'lock.acquire', 'success', 201, 'req' || :r, 'POST', '/api/v1/locks', 'locks', 'bench', 'lck_pgb' || :r, NULL, NULL, NULL, NULL, NULL, NULL, '{"fencing_token":2,"heartbeat_seconds":0,"holder":"bench","kind":"manual","resource_id":"R0","resource_type":"object-types","scope":"resource","ttl_seconds":60}') RETURNING seq) INSERT INTO audit_unchained (seq) SELECT seq FROM ev;
INSERT INTO events_pending (id, type, branch, time_ms, body) VALUES ('evt_pgbb' || :r, 'lock.acquired', 'bench', 1796486049041, '{"specversion":"1.0","id":"evt_01a246e9ad11a6655b54a5d37e3797b1","source":"/oms","type":"lock.acquired","time":"2026-12-05T15:54:09.041Z","datacontenttype":"application/json","data":{"action":"lock.acquire","actor":"bench","request_id":"01a246e9ad09e32919ba62bb838228fc","branch":"bench","resource_kind":"locks","resource_id":"lck_01a246e9ad0e5a0c52bea15c726cbeca","detail":{"scope":"resource","resource_type":"object-types","resource_id":"R0","kind":"manual","holder":"bench","fencing_token":2,"ttl_seconds":60,"heartbeat_seconds":0}},"subject":"locks/lck_01a246e9ad0e5a0c52bea15c726cbeca","branch":"bench"}');
COMMIT;
\endpipeline
\startpipeline
BEGIN;
SELECT oms_write_guard();
WITH n AS MATERIALIZED (SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS t) UPDATE locks SET state = 'released', ended_at = n.t, ended_by = 'bench' FROM n WHERE id = 'lck_pgb' || :r AND holder = 'bench' AND state = 'active' AND deadline_at > n.t RETURNING ended_at, id, branch, scope, resource_type, resource_id, kind, holder, reason, acquired_at, expires_at, heartbeat_seconds, last_heartbeat_at, deadline_at, progress_percent, progress_phase, progress_message, progress_updated_at, fencing_token, state, ended_at, ended_by;
\endpipeline
\startpipeline
WITH ev AS (INSERT INTO audit_events (event_id, time_ms, actor_sub, actor_roles, client_addr, user_agent, action, outcome, http_status, request_id, method, route, resource_kind, resource_branch, resource_id, issue_keys, override_id, commit_id, before_hash, after_hash, changed_paths, detail) VALUES ('evt_pgbc' || :r, COALESCE(NULL, (extract(epoch from clock_timestamp()) * 1000)::bigint), 'bench', '["developer"]', '127.0.0.1', NULL, 'lock.release', 'success', 200, 'req2' || :r, 'DELETE', '/api/v1/locks/{id}', 'locks', 'bench', 'lck_pgb' || :r, NULL, NULL, NULL, NULL, NULL, NULL, '{"fencing_token":2,"holder":"bench","kind":"manual","resource_id":"R0","resource_type":"object-types","scope":"resource"}') RETURNING seq) INSERT INTO audit_unchained (seq) SELECT seq FROM ev;
INSERT INTO events_pending (id, type, branch, time_ms, body) VALUES ('evt_pgbd' || :r, 'lock.released', 'bench', 1796486049041, '{"specversion":"1.0","id":"evt_01a246e9ad11a6655b54a5d37e3797b1","source":"/oms","type":"lock.released","time":"2026-12-05T15:54:09.041Z","datacontenttype":"application/json","data":{"action":"lock.acquire","actor":"bench","request_id":"01a246e9ad09e32919ba62bb838228fc","branch":"bench","resource_kind":"locks","resource_id":"lck_01a246e9ad0e5a0c52bea15c726cbeca","detail":{"scope":"resource","resource_type":"object-types","resource_id":"R0","kind":"manual","holder":"bench","fencing_token":2}},"subject":"locks/lck_01a246e9ad0e5a0c52bea15c726cbeca","branch":"bench"}');
COMMIT;
\endpipeline
