/* Commits: immutable and content-addressed. The id is the hex SHA-256 of the
 * canonical JSON {"author","issue_keys","message","override_id","parents",
 * "time","tree"} (time in RFC 3339 UTC with milliseconds). */
#ifndef OMS_COMMIT_H
#define OMS_COMMIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/db.h"

#define OMS_ROOT_COMMIT "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"

typedef struct {
    const char *tree;
    const char *parents[2];
    size_t nparents;
    const char *author;
    const char *message;
    int64_t time_ms;
    const json_t *issue_keys; /* array of strings; NULL for [] */
    const char *override_id;  /* NULL for none */
} oms_commit_info;

/* The commit's canonical JSON (malloc'd) and id. */
int oms_commit_id(const oms_commit_info *ci, char out[65], char **canonical);
/* Inserts the commit, its parent edges and issue links (inside the caller's
 * transaction). */
int oms_commit_store(oms_dbconn *c, const oms_commit_info *ci, const char *id, oms_error *err);

/* A commit as JSON for the API: {id, tree, parents, author, message, time,
 * issue_keys, override_id}. NULL when absent. */
int oms_commit_load_json(oms_dbconn *c, const char *id, json_t **out, oms_error *err);
/* Is `s` a full commit id (64 lowercase hex)? */
int oms_is_commit_id(const char *s);

#endif
