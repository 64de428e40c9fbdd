-- PostgreSQL's version 18 gives events waiting for their position a queue
-- of their own. SQLite gives the position at insert (its writers are
-- serialised), so its version 18 changes nothing: it exists so that both
-- backends reach the same schema version.
SELECT 1;
