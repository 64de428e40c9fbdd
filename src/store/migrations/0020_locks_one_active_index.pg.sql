-- Live locks keep one partial index, by branch (docs/locks.md "Expiry").
-- The reaper's probe and turn read every active lock once a second; they
-- read them through locks_active_branch, which holds only the active locks,
-- so a second partial index by deadline bought nothing but a B-tree write
-- on every acquisition and (SQLite) every release: 2 of the 34 pages a
-- lock pair wrote to SQLite's log (docs/BENCHMARKS.md, round 42).
DROP INDEX locks_active_deadline;
