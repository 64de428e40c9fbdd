#include "store/proposals_sql.h"

#include <stdio.h>

#include "store/dialect.h"

int oms_store_proposal_load(oms_dbconn *c, const char *id, bool lock, oms_dbres **out, oms_error *err)
{
    static const oms_sql plain = OMS_SQL_BOTH("SELECT " OMS_STORE_PROPOSAL_COLS " FROM proposals WHERE id = $1");
    static const oms_sql locked = {"SELECT " OMS_STORE_PROPOSAL_COLS " FROM proposals WHERE id = $1",
                                   "SELECT " OMS_STORE_PROPOSAL_COLS " FROM proposals WHERE id = $1 FOR UPDATE"};
    oms_dbparam p[] = {DBP_TEXT(id)};
    int rc = oms_db_run(c, lock ? &locked : &plain, p, 1, out, err);
    if (rc == OMS_OK && (*out)->nrows == 0) {
        oms_dbres_free(*out);
        *out = NULL;
    }
    return rc;
}

int oms_store_proposal_target(oms_dbconn *c, const char *id, char *out, size_t cap, bool *found, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT target FROM proposals WHERE id = $1");
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(id)};
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    *found = rc == OMS_OK && r->nrows > 0;
    if (*found)
        snprintf(out, cap, "%s", oms_dbres_get(r, 0, 0));
    oms_dbres_free(r);
    return rc;
}

int oms_store_proposal_page(oms_dbconn *c, const char *after, const char *state, const char *target, int64_t limit,
                            oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT id, source, target, title, state, author, created_at FROM proposals"
        " WHERE id > $1 AND (CAST($2 AS TEXT) IS NULL OR state = $2) AND (CAST($3 AS TEXT) IS NULL OR target = $3)"
        " ORDER BY id LIMIT $4");
    oms_dbparam p[] = {DBP_TEXT(after ? after : ""), DBP_TEXT(state), DBP_TEXT(target), DBP_INT(limit)};
    return oms_db_run(c, &q, p, 4, out, err);
}

int oms_store_proposal_insert(oms_dbconn *c, const char *id, const char *source, const char *target, const char *title,
                              const char *description, const char *state, const char *author, const char *issue_keys,
                              int64_t now_ms, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO proposals (id, source, target, title, description, state, author, issue_keys,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)");
    oms_dbparam p[] = {DBP_TEXT(id),    DBP_TEXT(source), DBP_TEXT(target),     DBP_TEXT(title), DBP_TEXT(description),
                       DBP_TEXT(state), DBP_TEXT(author), DBP_TEXT(issue_keys), DBP_INT(now_ms)};
    return oms_db_run(c, &q, p, 9, NULL, err);
}

int oms_store_proposal_set_state(oms_dbconn *c, const char *id, const char *state, const char *closed_reason,
                                 int64_t now_ms, oms_error *err)
{
    static const oms_sql q =
        OMS_SQL_BOTH("UPDATE proposals SET state = $1, updated_at = $2, closed_reason = $3 WHERE id = $4");
    oms_dbparam p[] = {DBP_TEXT(state), DBP_INT(now_ms), DBP_TEXT(closed_reason), DBP_TEXT(id)};
    return oms_db_run(c, &q, p, 4, NULL, err);
}

int oms_store_proposal_mark_merged(oms_dbconn *c, const char *id, const char *commit, int64_t now_ms, bool *changed,
                                   oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("UPDATE proposals SET state = 'merged', merged_commit = $1, updated_at = $2"
                                          " WHERE id = $3 AND state = 'open'");
    oms_dbparam p[] = {DBP_TEXT(commit), DBP_INT(now_ms), DBP_TEXT(id)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 3, &r, err);
    *changed = rc == OMS_OK && r->changes == 1;
    oms_dbres_free(r);
    return rc;
}

int oms_store_proposal_review(oms_dbconn *c, const char *id, const char *reviewer, const char *verdict,
                              const char *source_head, int64_t now_ms, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO proposal_reviews (proposal_id, reviewer, verdict, source_head, created_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (proposal_id, reviewer, source_head)"
        " DO UPDATE SET verdict = excluded.verdict, created_at = excluded.created_at");
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(reviewer), DBP_TEXT(verdict), DBP_TEXT(source_head), DBP_INT(now_ms)};
    return oms_db_run(c, &q, p, 5, NULL, err);
}

int oms_store_proposal_approvals(oms_dbconn *c, const char *id, const char *source_head, oms_dbres **out,
                                 oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT reviewer, created_at FROM proposal_reviews WHERE proposal_id = $1 AND source_head = $2"
        " AND verdict = 'approved' ORDER BY created_at, reviewer");
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(source_head)};
    return oms_db_run(c, &q, p, 2, out, err);
}

int oms_store_branch_rules(oms_dbconn *c, const char *branch, int64_t *required, int64_t *breaking_required,
                           oms_error *err)
{
    static const oms_sql q =
        OMS_SQL_BOTH("SELECT required_approvals, breaking_change_approvals FROM branches WHERE name = $1");
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(branch)};
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "the target branch %s no longer exists", branch);
    if (rc == OMS_OK) {
        *required = oms_dbres_int(r, 0, 0);
        *breaking_required = oms_dbres_int(r, 0, 1);
    }
    oms_dbres_free(r);
    return rc;
}
