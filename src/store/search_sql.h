/* The SQL of search (src/search): the documents of a generation, the
 * generations of a branch, the query. Both dialects side by side; where the
 * two text searches differ (FTS5 fed by triggers, tsvector with GIN) each
 * backend has its own statement or operation (docs/storage.md "Dialect"). */
#ifndef OMS_STORE_SEARCH_SQL_H
#define OMS_STORE_SEARCH_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"
#include "util/error.h"

/* Upserts documents into generation `gen`: `rows` is a JSON array text of
 * [resource, kind, api_name, api_norm, hash, api, names, props, descr].
 * oms_store_search_upsert_replaces says whether an existing document is
 * replaced by it; else (FTS5, whose triggers keep the index) the caller
 * removes the documents first. */
int oms_store_search_put_docs(oms_dbconn *c, int64_t gen, const char *rows, oms_error *err);
bool oms_store_search_upsert_replaces(const oms_dbconn *c);
/* Removes the documents of `resources` (JSON array text of KIND/NAME). */
int oms_store_search_remove_docs(oms_dbconn *c, int64_t gen, const char *resources, oms_error *err);

/* The commit hook in one round trip, when the backend can
 * (oms_store_search_commit_hook_one_trip): the removed documents deleted
 * and the upserted ones written in the active generation (its commit
 * moved) and in a building one that follows the commits; for a building
 * one that does not yet, pending rows. JSON array texts. */
bool oms_store_search_commit_hook_one_trip(const oms_dbconn *c);
int oms_store_search_commit_hook(oms_dbconn *c, const char *branch, const char *removed, const char *upserted,
                                 const char *commit, const char *keys, oms_error *err);

/* The live generations of a branch: rows (id, state, follows), active or
 * building (follows: 1 once a building one follows the commits). */
int oms_store_search_live_generations(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err);
/* Moves a generation's commit. */
int oms_store_search_generation_commit(oms_dbconn *c, int64_t gen, const char *commit, oms_error *err);
/* A new active generation at `commit`: rows (id). */
int oms_store_search_new_active(oms_dbconn *c, const char *branch, const char *commit, oms_dbres **out,
                                oms_error *err);
/* The active generation of a branch: rows (id, commit_id). */
int oms_store_search_active_of(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err);
/* Copies the documents of generation `src` into `gen`. */
int oms_store_search_copy_docs(oms_dbconn *c, int64_t gen, int64_t src, oms_error *err);
/* Retires every generation of a branch. */
int oms_store_search_retire_branch(oms_dbconn *c, const char *branch, oms_error *err);
/* The branch head with its active generation: rows (head, id or NULL,
 * commit_id or NULL); no row when the branch does not exist. */
int oms_store_search_head_and_active(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err);
/* The branch row locked as its writers lock it (inside a write
 * transaction): rows (head, active generation id or NULL). */
int oms_store_search_branch_for_update(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err);
/* The oldest generation retired more than grace_ms ago: rows (id). */
int oms_store_search_retired_generation(oms_dbconn *c, int64_t grace_ms, oms_dbres **out, oms_error *err);
/* Deletes up to `batch` documents of a generation; *deleted says how many. */
int oms_store_search_drop_docs(oms_dbconn *c, int64_t gen, int batch, int64_t *deleted, oms_error *err);
/* Deletes a retired generation's pending rows and the generation row. */
int oms_store_search_drop_generation(oms_dbconn *c, int64_t gen, oms_error *err);

/* The query (src/search/query.c): $1..$4 the match expressions (every
 * term; api; api and names; api, names and properties), $5 the generation,
 * $6 the normalised query, $7 the kinds, $8 the cursor, $9 the page size
 * + 1. The expressions are tsquery text when oms_store_search_tsquery, else
 * FTS5 MATCH text. Rows: resource, kind, api_name, hash, tier, sort key,
 * total, content. */
bool oms_store_search_tsquery(const oms_dbconn *c);
int oms_store_search_query(oms_dbconn *c, const oms_dbparam params[9], oms_dbres **out, oms_error *err);

#endif
