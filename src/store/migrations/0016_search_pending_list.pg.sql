-- The search index's new entries go to GIN's pending list and are merged
-- into the index in sorted batches of 64 kB, instead of each commit
-- descending the index once per lexeme of its document (the largest
-- statement of a commit, issue #21 round 16). The small limit keeps the
-- unsorted list a search must also scan to a few pages.
ALTER INDEX search_docs_tsv SET (fastupdate = on, gin_pending_list_limit = 64);
