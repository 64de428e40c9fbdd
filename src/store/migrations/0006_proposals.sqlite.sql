-- Proposals (pull requests for the ontology) and their reviews. The state
-- stored is draft, open, merged or closed; "approved" is computed on read
-- from the reviews that approve the source's current head.
CREATE TABLE proposals (
    id            TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    target        TEXT NOT NULL,
    title         TEXT NOT NULL,
    description   TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('draft', 'open', 'merged', 'closed')),
    author        TEXT NOT NULL,
    issue_keys    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    merged_commit TEXT,
    closed_reason TEXT
);
CREATE INDEX proposals_state ON proposals (state, created_at);
CREATE TABLE proposal_reviews (
    proposal_id TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('approved', 'rejected')),
    source_head TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (proposal_id, reviewer, source_head)
);
