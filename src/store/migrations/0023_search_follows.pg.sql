-- A building generation whose build is done follows the commits
-- (docs/search.md "Follow the commits"): from then on every commit
-- indexes its resources into it, as into the active one, and removes their
-- pending rows, so the backlog the builder catches up with only shrinks,
-- however fast the branch is written. Before, a branch written faster than
-- the builder re-indexed could hold its switch off until the job failed.
ALTER TABLE search_generations ADD COLUMN follows INTEGER NOT NULL DEFAULT 0;
