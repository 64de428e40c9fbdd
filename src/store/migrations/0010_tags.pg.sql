-- Tags (SPEC §4): a name for one commit, forever. A tag never moves: its
-- row is inserted once and only ever deleted (branch:admin and an issue).
CREATE TABLE tags (
    name        TEXT PRIMARY KEY,
    commit_id   TEXT NOT NULL,
    message     TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE INDEX tags_commit ON tags (commit_id);

-- main was created by migration 0002 with created_at 0 (1970): it exists
-- since the schema does; give it the time this migration runs.
UPDATE branches SET created_at = (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT,
                    updated_at = CASE WHEN updated_at = 0 THEN (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT
                                      ELSE updated_at END
 WHERE name = 'main' AND created_at = 0;
