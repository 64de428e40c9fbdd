/* Reading single entries of stored trees without loading them whole
 * (docs/storage.md "Tree storage"): the compatibility check compares a
 * change with every tag's version of the touched resources only. */
#ifndef OMS_VCS_TREE_READ_H
#define OMS_VCS_TREE_READ_H

#include <stddef.h>

#include "store/db.h"

/* The resource hash of every key in every tree: out[i * nkeys + j] gets
 * tree i's hash of key j ("KIND/API_NAME"), "" when the tree has no such
 * key. Walks the keys' paths only, one statement per trie level for all
 * trees and keys together. OMS_EINTERNAL when a tree or a node on a path
 * is not stored or malformed. */
int oms_tree_lookup(oms_dbconn *c, const char *const *trees, size_t ntrees, const char *const *keys, size_t nkeys,
                    char (*out)[65], oms_error *err);

#endif
