-- PostgreSQL's version 17 adds the sole-writer lease (its table and its
-- write guard). SQLite has one writer per file by construction (the file's
-- lock, and the process's writer turn), so its version 17 changes nothing:
-- it exists so that both backends reach the same schema version.
SELECT 1;
