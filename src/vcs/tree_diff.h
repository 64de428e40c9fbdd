/* The changes between two commits read from their stored tries, without
 * loading either snapshot whole (docs/storage.md "Diffs of two commits").
 * Both tries are walked from their roots together, one statement per level,
 * reading only the nodes whose hashes differ: a trie's shape is a function
 * of its (key, resource hash) pairs (util/trie.h), so equal hashes mean
 * equal subtrees. Only the documents of the resources that differ are
 * loaded. The cost follows the change, not the ontology. */
#ifndef OMS_TREE_DIFF_H
#define OMS_TREE_DIFF_H

#include <jansson.h>
#include <stdbool.h>

#include "store/db.h"
#include "util/error.h"

/* The changes from commit `a` to commit `b`, as oms_snapshot_diff gives
 * them. OMS_ENOTFOUND for an unknown commit; OMS_EINTERNAL for a node whose
 * body does not hash to its name (altered in the database). *walked is
 * false (and nothing else is set) when a commit's tree is not stored as a
 * trie: the caller compares whole snapshots instead. */
int oms_tree_diff(oms_dbconn *c, const char *a, const char *b, json_t **changes, bool *breaking, bool *walked,
                  oms_error *err);

#endif
