-- Reviews (SPEC §4): a verdict may ask for changes (blocks merging until the
-- same reviewer approves or withdraws) or withdraw one (dismissed), and
-- carries an optional comment; comments on a proposal, a resource or a
-- field (JSON pointer) in the order they were made; requested reviewers.
-- Compatibility policy per branch (warn, block, none; transitive).
CREATE TABLE proposal_reviews_v11 (
    proposal_id TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('approved', 'rejected', 'changes_requested', 'dismissed')),
    source_head TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    comment     TEXT,
    PRIMARY KEY (proposal_id, reviewer, source_head)
);
INSERT INTO proposal_reviews_v11 (proposal_id, reviewer, verdict, source_head, created_at)
    SELECT proposal_id, reviewer, verdict, source_head, created_at FROM proposal_reviews;
DROP TABLE proposal_reviews;
ALTER TABLE proposal_reviews_v11 RENAME TO proposal_reviews;
CREATE TABLE proposal_comments (
    proposal_id TEXT NOT NULL,
    seq         BIGINT NOT NULL,      -- 1, 2, ... per proposal: the order comments were made
    id          TEXT NOT NULL UNIQUE,
    author      TEXT NOT NULL,
    body        TEXT NOT NULL,
    resource    TEXT,                 -- KIND/API_NAME, or NULL for the proposal itself
    pointer     TEXT,                 -- JSON pointer within the resource, or NULL
    verdict     TEXT,                 -- the review verdict the comment came with, or NULL
    source_head TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (proposal_id, seq)
);
CREATE TABLE proposal_reviewers (
    proposal_id  TEXT NOT NULL,
    reviewer     TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (proposal_id, reviewer)
);
CREATE INDEX proposal_reviewers_reviewer ON proposal_reviewers (reviewer);
ALTER TABLE branches ADD COLUMN compatibility TEXT NOT NULL DEFAULT 'warn'
    CHECK (compatibility IN ('warn', 'block', 'none'));
ALTER TABLE branches ADD COLUMN transitive INTEGER NOT NULL DEFAULT 0;
