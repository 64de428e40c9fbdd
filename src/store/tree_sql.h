/* Storage of commit trees (docs/storage.md "Tree storage"): the trie nodes
 * (tree_nodes: hash -> body, both binary) and each tree id's root node
 * (trees). Hashes and bodies travel as hex text: the driver speaks text,
 * the columns hold bytes (SQLite oms_unhex()/hex(), PostgreSQL
 * decode()/encode()). Every operation runs in the caller's transaction. */
#ifndef OMS_STORE_TREE_SQL_H
#define OMS_STORE_TREE_SQL_H

#include <jansson.h>
#include <stdbool.h>

#include "store/db.h"

/* Stores nodes unless present: `rows` is a JSON array of [hash_hex,
 * body_hex]. Held back with the transaction's next statement (PostgreSQL). */
int oms_store_tree_nodes_put(oms_dbconn *c, const json_t *rows, oms_error *err);
/* Appends one node to such `rows` (an oms_trie emit callback: `ctx` is
 * the JSON array). */
int oms_store_tree_node_collect(void *rows, const unsigned char hash[32], const unsigned char *body, size_t len);
/* Loads the objects named in `hashes` (a JSON array of hex strings) into
 * `out`, hash -> parsed JSON when `parse` (legacy tree nodes), else the
 * text as a JSON string (resources); an absent hash is left out. One
 * statement per 1,000 hashes. */
int oms_store_objects_load(oms_dbconn *c, const json_t *hashes, bool parse, json_t *out, oms_error *err);
/* Records the root node of tree `id` unless recorded (held back too). */
int oms_store_tree_put(oms_dbconn *c, const char *id, const char *root_hex, oms_error *err);
/* Every node of tree `id`, from its root down, in one statement (a
 * recursive query): rows hash_hex, body_hex, depth (0: the root). No row
 * when the tree is not recorded. */
int oms_store_tree_nodes_all(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err);
/* id, root_hex of the trees named in `ids_json` (a JSON array). */
int oms_store_tree_roots(oms_dbconn *c, const char *ids_json, oms_dbres **out, oms_error *err);
/* hash_hex, body_hex of the nodes named in `hashes_json` (hex strings). */
int oms_store_tree_nodes_in(oms_dbconn *c, const char *hashes_json, oms_dbres **out, oms_error *err);

/* ---- the conversion of legacy trees (migration 0014, restore) ---- */

/* Up to `limit` tree ids of commits that have no trees row yet. */
int oms_store_trees_unconverted(oms_dbconn *c, int64_t limit, oms_dbres **out, oms_error *err);
/* Deletes the legacy JSON tree objects (once every tree is converted). */
int oms_store_legacy_trees_delete(oms_dbconn *c, oms_error *err);

#endif
