-- Two indexes that no statement reads, each written on a hot path
-- (docs/storage.md "Schema version 22"). No plan of any statement uses
-- them (scripts/sql-plan-audit.py over every statement in src/store), and
-- every condition on their columns comes with the table's key (a commit's
-- parents are walked from the commit, never from a parent; a lock's holder
-- is checked beside its id, and the list's holder filter is an OR of a
-- parameter that no index serves):
-- - commit_parents_parent, by parent: written by every commit, at a random
--   leaf (a commit id is a hash);
-- - locks_holder, by holder and time: written by every lock acquisition,
--   and on PostgreSQL by every release too (a release changes `state`,
--   which the partial index locks_active_branch reads, so its update is
--   never HOT and puts an entry in every index of the table).
DROP INDEX IF EXISTS commit_parents_parent;
DROP INDEX IF EXISTS locks_holder;
