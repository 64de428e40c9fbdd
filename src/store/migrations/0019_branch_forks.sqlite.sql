-- Copy-on-write branches (docs/storage.md "Forks share their base's rows").
-- A branch made from a branch records its base here instead of copying the
-- base's branch_resources rows. Its own rows are the resources it changed
-- since, a row with an empty hash marking one it does not have (a
-- tombstone); every other resource is the base's row. The base keeps that
-- view fixed: before it changes or removes a resource a fork has no row
-- for, it gives the fork its old row (or a tombstone). A base is never a
-- fork itself (a branch made from a fork takes the fork's base and a copy
-- of its rows), and a base deleted while it has forks gives them all its
-- rows first. Existing branches, all with their own rows, are bases.
CREATE TABLE branch_forks (
    branch TEXT PRIMARY KEY,
    base   TEXT NOT NULL
);
CREATE INDEX branch_forks_base ON branch_forks (base);
