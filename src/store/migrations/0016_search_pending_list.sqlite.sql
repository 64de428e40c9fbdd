-- PostgreSQL's version 16 turns on the search index's pending list. SQLite's
-- search index (FTS5) has none, so its version 16 changes nothing: it exists
-- so that both backends reach the same schema version, which a backup
-- carries from one to the other.
SELECT 1;
