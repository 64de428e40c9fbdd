/* The conversion of legacy JSON trees to the stored trie (migration 0014,
 * docs/storage.md "Tree storage"; restore of a format-1 backup). For each
 * tree id a commit names without a `trees` row: the root and bucket JSON
 * objects are read, re-hashed from their mapping (the recomputed tree id
 * must be the commit's tree: no commit id changes), and the trie's nodes
 * and the `trees` row are written. Idempotent: a batch that did not
 * commit is simply done again. */
#ifndef OMS_STORE_TREE_CONVERT_H
#define OMS_STORE_TREE_CONVERT_H

#include <stdint.h>

#include "store/db.h"

typedef struct oms_tree_conv oms_tree_conv;

/* Conversion state kept between batches (the subtrees of buckets already
 * converted and stored). */
oms_tree_conv *oms_tree_conv_new(void);
void oms_tree_conv_free(oms_tree_conv *cv);
/* Converts up to `limit` trees in the caller's write transaction; *n gets
 * how many (0: none was left). */
int oms_tree_conv_batch(oms_tree_conv *cv, oms_dbconn *c, int64_t limit, int64_t *n, oms_error *err);
/* Every tree in the caller's transaction, then the legacy tree objects
 * go (restore; a migration inside one transaction). */
int oms_tree_conv_all(oms_dbconn *c, oms_error *err);

#endif
