#include "store/vcs_sql.h"

#include <stdio.h>

#include "store/dialect.h"

#define Q_FOR_WRITE(NOW) "SELECT head, protected, " NOW ", compatibility, transitive FROM branches WHERE name = $1"

int oms_store_branch_for_write_later(oms_dbconn *c, const char *branch, oms_dbres **rows, oms_dbres **forks,
                                     oms_error *err)
{
    static const oms_sql q = {Q_FOR_WRITE(OMS_DB_NOW_SQLITE), Q_FOR_WRITE(OMS_DB_NOW_PG) " FOR UPDATE"};
    /* A statement of its own, run after the row lock is granted: on
     * PostgreSQL a subquery of the locking statement would read the
     * snapshot taken before it waited, and miss a fork made meanwhile. A
     * fork made later waits for this transaction (it share-locks its base). */
    static const oms_sql f = OMS_SQL_BOTH("SELECT count(*) FROM (SELECT 1 FROM branch_forks WHERE base = $1 LIMIT 1) x");
    oms_dbparam p[] = {DBP_TEXT(branch)};
    int rc = oms_db_run_read_later(c, &q, p, 1, rows, err);
    return rc ? rc : oms_db_run_read_later(c, &f, p, 1, forks, err);
}

int oms_store_branch_for_write_row(const oms_dbres *r, const oms_dbres *forks, const char *branch,
                                   oms_store_write_branch *out, oms_error *err)
{
    if (!r || r->nrows == 0)
        return oms_err_set(err, OMS_ENOTFOUND, "no branch named %s", branch);
    out->has_forks = forks && forks->nrows > 0 && oms_dbres_int(forks, 0, 0) != 0;
    snprintf(out->head, sizeof out->head, "%s", oms_dbres_get(r, 0, 0));
    out->protect = oms_dbres_int(r, 0, 1) != 0;
    out->now_ms = oms_dbres_int(r, 0, 2);
    const char *policy = oms_dbres_get(r, 0, 3);
    snprintf(out->compat, sizeof out->compat, "%s", policy ? policy : "warn");
    out->transitive = oms_dbres_int(r, 0, 4) != 0;
    return OMS_OK;
}

int oms_store_branch_head(oms_dbconn *c, const char *branch, bool lock, char head[65], bool *protect,
                          oms_error *err)
{
    static const oms_sql plain = OMS_SQL_BOTH("SELECT head, protected FROM branches WHERE name = $1");
    static const oms_sql locked = {"SELECT head, protected FROM branches WHERE name = $1",
                                   "SELECT head, protected FROM branches WHERE name = $1 FOR UPDATE"};
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(branch)};
    int rc = oms_db_run(c, lock ? &locked : &plain, p, 1, &r, err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no branch named %s", branch);
    if (rc == OMS_OK) {
        snprintf(head, 65, "%s", oms_dbres_get(r, 0, 0));
        if (protect)
            *protect = oms_dbres_int(r, 0, 1) != 0;
    }
    oms_dbres_free(r);
    return rc;
}

int oms_store_branch_move_head(oms_dbconn *c, const char *branch, const char *from, const char *to, int64_t now_ms,
                               bool *moved, oms_error *err)
{
    static const oms_sql q =
        OMS_SQL_BOTH("UPDATE branches SET head = $1, updated_at = $2 WHERE name = $3 AND head = $4");
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(to), DBP_INT(now_ms), DBP_TEXT(branch), DBP_TEXT(from)};
    int rc = oms_db_run(c, &q, p, 4, &r, err);
    *moved = rc == OMS_OK && r->changes == 1;
    oms_dbres_free(r);
    return rc;
}

/* PostgreSQL: the compare-and-swap as a statement that fails (division by
 * zero) when it moved no row, so that it can travel unread with the next
 * statement and still fail the transaction. */
int oms_store_branch_move_head_later(oms_dbconn *c, const char *branch, const char *from, const char *to,
                                     int64_t now_ms, oms_error *err)
{
    static const char *const moved_msg = "the branch head moved during the write";
    oms_dbparam p[] = {DBP_TEXT(to), DBP_INT(now_ms), DBP_TEXT(branch), DBP_TEXT(from)};
    if (oms_db_backend_of_conn(c) == OMS_DB_PG)
        return oms_db_exec_later_as(c,
                                    "WITH u AS (UPDATE branches SET head = $1, updated_at = $2 WHERE name = $3"
                                    " AND head = $4 RETURNING 1) SELECT 1 / (SELECT count(*) FROM u)::int",
                                    p, 4, OMS_EPRECOND, moved_msg, err);
    bool moved = false;
    int rc = oms_store_branch_move_head(c, branch, from, to, now_ms, &moved, err);
    return rc == OMS_OK && !moved ? oms_err_set(err, OMS_EPRECOND, "%s", moved_msg) : rc;
}

int oms_store_branch_load(oms_dbconn *c, const char *name, bool lock, oms_dbres **out, oms_error *err)
{
    static const oms_sql plain = OMS_SQL_BOTH("SELECT " OMS_STORE_BRANCH_COLS " FROM branches WHERE name = $1");
    static const oms_sql locked = {"SELECT " OMS_STORE_BRANCH_COLS " FROM branches WHERE name = $1",
                                   "SELECT " OMS_STORE_BRANCH_COLS " FROM branches WHERE name = $1 FOR UPDATE"};
    oms_dbparam p[] = {DBP_TEXT(name)};
    int rc = oms_db_run(c, lock ? &locked : &plain, p, 1, out, err);
    if (rc == OMS_OK && (*out)->nrows == 0) {
        oms_dbres_free(*out);
        *out = NULL;
        rc = oms_err_set(err, OMS_ENOTFOUND, "no branch named %s", name);
    }
    return rc;
}

int oms_store_branch_page(oms_dbconn *c, const char *after, int64_t limit, oms_dbres **out, oms_error *err)
{
    static const oms_sql q =
        OMS_SQL_BOTH("SELECT " OMS_STORE_BRANCH_COLS " FROM branches WHERE name > $1 ORDER BY name LIMIT $2");
    oms_dbparam p[] = {DBP_TEXT(after ? after : ""), DBP_INT(limit)};
    return oms_db_run(c, &q, p, 2, out, err);
}

int oms_store_branch_head_shared(oms_dbconn *c, const char *name, char head[65], oms_error *err)
{
    static const oms_sql q = {"SELECT head FROM branches WHERE name = $1",
                              "SELECT head FROM branches WHERE name = $1 FOR SHARE"};
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(name)};
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "no branch or commit %.100s", name);
    if (rc == OMS_OK)
        snprintf(head, 65, "%s", oms_dbres_get(r, 0, 0));
    oms_dbres_free(r);
    return rc;
}

int oms_store_branch_insert(oms_dbconn *c, const char *name, const char *head, int64_t now_ms, const char *by,
                            oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("INSERT INTO branches (name, head, protected, created_at, created_by, updated_at)"
                                          " VALUES ($1, $2, 0, $3, $4, $3)");
    oms_dbparam p[] = {DBP_TEXT(name), DBP_TEXT(head), DBP_INT(now_ms), DBP_TEXT(by)};
    return oms_db_run(c, &q, p, 4, NULL, err);
}

int oms_store_branch_base_of(oms_dbconn *c, const char *name, char base[256], bool *fork, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT base FROM branch_forks WHERE branch = $1");
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(name)};
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    *fork = rc == OMS_OK && r->nrows > 0;
    snprintf(base, 256, "%s", *fork ? oms_dbres_get(r, 0, 0) : "");
    oms_dbres_free(r);
    return rc;
}

int oms_store_branch_has_forks(oms_dbconn *c, const char *branch, bool *out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT count(*) FROM (SELECT 1 FROM branch_forks WHERE base = $1 LIMIT 1) x");
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(branch)};
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    *out = rc == OMS_OK && r->nrows > 0 && oms_dbres_int(r, 0, 0) != 0;
    oms_dbres_free(r);
    return rc;
}

int oms_store_branch_fork(oms_dbconn *c, const char *name, const char *base, const char *copy_from, oms_error *err)
{
    static const oms_sql fork = OMS_SQL_BOTH("INSERT INTO branch_forks (branch, base) VALUES ($1, $2)");
    static const oms_sql copy = OMS_SQL_BOTH(
        "INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
        " SELECT $1, resource, hash, commit_id, author, time_ms FROM branch_resources WHERE branch = $2");
    oms_dbparam p[] = {DBP_TEXT(name), DBP_TEXT(base)};
    int rc = oms_db_run(c, &fork, p, 2, NULL, err);
    if (rc == OMS_OK && copy_from) {
        oms_dbparam q[] = {DBP_TEXT(name), DBP_TEXT(copy_from)};
        rc = oms_db_run(c, &copy, q, 2, NULL, err);
    }
    return rc;
}

int oms_store_branch_delete_rows(oms_dbconn *c, const char *name, oms_error *err)
{
    /* Its forks first become bases: each is locked (a write of it in flight
     * ends first, the next waits), gets every row of this branch it does not
     * have its own of, and drops its tombstones. */
    static const oms_sql lock_forks = {
        "SELECT b.name FROM branches b JOIN branch_forks f ON f.branch = b.name WHERE f.base = $1",
        "SELECT b.name FROM branches b JOIN branch_forks f ON f.branch = b.name WHERE f.base = $1"
        " ORDER BY b.name FOR UPDATE OF b"};
    static const oms_sql give = {
        "INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
        " SELECT f.branch, r.resource, r.hash, r.commit_id, r.author, r.time_ms FROM branch_forks f"
        " JOIN branch_resources r ON r.branch = f.base WHERE f.base = $1 AND r.hash <> ''"
        " ON CONFLICT (branch, resource) DO NOTHING",
        "INSERT INTO branch_resources (branch, resource, hash, commit_id, author, time_ms)"
        " SELECT f.branch, r.resource, r.hash, r.commit_id, r.author, r.time_ms FROM branch_forks f"
        " JOIN branch_resources r ON r.branch = f.base WHERE f.base = $1 AND r.hash <> ''"
        " ORDER BY 1, 2 ON CONFLICT (branch, resource) DO NOTHING"};
    static const oms_sql untomb = OMS_SQL_BOTH(
        "DELETE FROM branch_resources WHERE hash = '' AND branch IN (SELECT branch FROM branch_forks WHERE base = $1)");
    static const oms_sql unfork = OMS_SQL_BOTH("DELETE FROM branch_forks WHERE base = $1 OR branch = $1");
    static const oms_sql rows = OMS_SQL_BOTH("DELETE FROM branch_resources WHERE branch = $1");
    oms_dbparam p[] = {DBP_TEXT(name)};
    int rc = oms_db_run(c, &lock_forks, p, 1, NULL, err);
    if (rc == OMS_OK)
        rc = oms_db_run(c, &give, p, 1, NULL, err);
    if (rc == OMS_OK)
        rc = oms_db_run(c, &untomb, p, 1, NULL, err);
    if (rc == OMS_OK)
        rc = oms_db_run(c, &unfork, p, 1, NULL, err);
    return rc ? rc : oms_db_run(c, &rows, p, 1, NULL, err);
}

int oms_store_branch_delete(oms_dbconn *c, const char *name, int64_t *deleted, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("DELETE FROM branches WHERE name = $1");
    oms_dbparam p[] = {DBP_TEXT(name)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    *deleted = rc == OMS_OK ? r->changes : 0;
    oms_dbres_free(r);
    return rc;
}

#define Q_SETTINGS                                                                                            \
    "SELECT protected, required_approvals, breaking_change_approvals, issue_required FROM branches WHERE name = $1"

int oms_store_branch_settings_for_update(oms_dbconn *c, const char *name, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = {Q_SETTINGS, Q_SETTINGS " FOR UPDATE"};
    oms_dbparam p[] = {DBP_TEXT(name)};
    int rc = oms_db_run(c, &q, p, 1, out, err);
    if (rc == OMS_OK && (*out)->nrows == 0) {
        oms_dbres_free(*out);
        *out = NULL;
        rc = oms_err_set(err, OMS_ENOTFOUND, "no branch named %s", name);
    }
    return rc;
}

int oms_store_branch_compat(oms_dbconn *c, const char *name, char policy[16], bool *transitive, bool *found,
                            oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT compatibility, transitive FROM branches WHERE name = $1");
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(name)};
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    *found = rc == OMS_OK && r->nrows > 0;
    snprintf(policy, 16, "%s", *found ? oms_dbres_get(r, 0, 0) : "warn");
    *transitive = *found && oms_dbres_int(r, 0, 1) != 0;
    oms_dbres_free(r);
    return rc;
}

int oms_store_branch_compat_update(oms_dbconn *c, const char *name, const char *policy, int64_t transitive,
                                   oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("UPDATE branches SET compatibility = $1, transitive = $2 WHERE name = $3");
    oms_dbparam p[] = {DBP_TEXT(policy), DBP_INT(transitive), DBP_TEXT(name)};
    return oms_db_run(c, &q, p, 3, NULL, err);
}

int oms_store_branch_settings_update(oms_dbconn *c, const char *name, int64_t protect, int64_t required,
                                     int64_t breaking_required, const int64_t *issue_required, int64_t now_ms,
                                     oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "UPDATE branches SET protected = $1, required_approvals = $2, breaking_change_approvals = $3,"
        " issue_required = $4, updated_at = $5 WHERE name = $6");
    oms_dbparam p[] = {DBP_INT(protect), DBP_INT(required), DBP_INT(breaking_required),
                       issue_required ? DBP_INT(*issue_required) : DBP_NULL,
                       DBP_INT(now_ms), DBP_TEXT(name)};
    return oms_db_run(c, &q, p, 6, NULL, err);
}

int oms_store_object_content(oms_dbconn *c, const char *hash, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT content FROM objects WHERE hash = $1");
    oms_dbparam p[] = {DBP_TEXT(hash)};
    int rc = oms_db_run_content_read(c, &q, p, 1, out, err);
    if (rc == OMS_OK && (*out)->nrows == 0) {
        oms_dbres_free(*out);
        *out = NULL;
    }
    return rc;
}

int oms_store_commit_changes(oms_dbconn *c, const char *commit, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT resource, change, old_hash, new_hash FROM commit_changes"
                                          " WHERE commit_id = $1 ORDER BY resource");
    oms_dbparam p[] = {DBP_TEXT(commit)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_commit_history(oms_dbconn *c, const char *start, int64_t limit, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "WITH RECURSIVE chain(id, n) AS ("
        " SELECT $1, 0"
        " UNION ALL SELECT c.first_parent, chain.n + 1 FROM commits c JOIN chain ON c.id = chain.id"
        " WHERE c.first_parent IS NOT NULL AND chain.n < $2)"
        " SELECT c.id, c.tree, c.parents, c.author, c.time_ms, c.issue_keys, c.message, c.first_parent"
        " FROM chain JOIN commits c ON c.id = chain.id ORDER BY chain.n");
    oms_dbparam p[] = {DBP_TEXT(start), DBP_INT(limit)};
    return oms_db_run(c, &q, p, 2, out, err);
}

int oms_store_commit_history_filtered(oms_dbconn *c, const char *start, const char *resource, const char *author,
                                      int64_t since_ms, int64_t until_ms, int64_t limit, oms_dbres **out,
                                      oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "WITH RECURSIVE chain(id, n) AS ("
        " SELECT $1, 0"
        " UNION ALL SELECT c.first_parent, chain.n + 1 FROM commits c JOIN chain ON c.id = chain.id"
        " WHERE c.first_parent IS NOT NULL)"
        " SELECT c.id, c.tree, c.parents, c.author, c.time_ms, c.issue_keys, c.message"
        " FROM chain JOIN commits c ON c.id = chain.id"
        " WHERE (CAST($2 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM commit_changes x WHERE x.commit_id = c.id"
        " AND x.resource = CAST($2 AS TEXT)))"
        " AND (CAST($3 AS TEXT) IS NULL OR c.author = CAST($3 AS TEXT))"
        " AND c.time_ms >= $4 AND c.time_ms <= $5"
        " ORDER BY chain.n LIMIT $6");
    oms_dbparam p[] = {DBP_TEXT(start), DBP_TEXT(resource), DBP_TEXT(author), DBP_INT(since_ms),
                       DBP_INT(until_ms), DBP_INT(limit)};
    return oms_db_run(c, &q, p, 6, out, err);
}

int oms_store_issue_commits(oms_dbconn *c, const char *key, const char *after, int64_t limit, oms_dbres **out,
                            oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT c.id, c.tree, c.parents, c.author, c.time_ms, c.issue_keys, c.message"
                                          " FROM commit_issues i JOIN commits c ON c.id = i.commit_id"
                                          " WHERE i.issue_key = $1 AND c.id > $2 ORDER BY c.id LIMIT $3");
    oms_dbparam p[] = {DBP_TEXT(key), DBP_TEXT(after ? after : ""), DBP_INT(limit)};
    return oms_db_run(c, &q, p, 3, out, err);
}

int oms_store_commit_generation(oms_dbconn *c, const char *commit, int64_t *generation, bool *found, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT generation FROM commits WHERE id = $1");
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(commit)};
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    *found = rc == OMS_OK && r->nrows > 0;
    if (*found)
        *generation = oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    return rc;
}

int oms_store_branch_heads(oms_dbconn *c, oms_dbres **out, oms_error *err)
{
    static const oms_sql q =
        OMS_SQL_BOTH("SELECT name, head FROM branches ORDER BY CASE WHEN name = 'main' THEN 0 ELSE 1 END, name");
    return oms_db_run(c, &q, NULL, 0, out, err);
}

int oms_store_commit_reachable(oms_dbconn *c, const char *head, const char *commit, int64_t generation, bool *out,
                               oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("WITH RECURSIVE anc(id) AS (SELECT CAST($1 AS TEXT) UNION SELECT p.parent_id"
                                          " FROM commit_parents p JOIN anc ON p.commit_id = anc.id"
                                          " JOIN commits k ON k.id = p.parent_id WHERE k.generation >= $3)"
                                          " SELECT 1 FROM anc WHERE id = $2 LIMIT 1");
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(head), DBP_TEXT(commit), DBP_INT(generation)};
    int rc = oms_db_run(c, &q, p, 3, &r, err);
    if (rc == OMS_OK)
        *out = r->nrows > 0;
    oms_dbres_free(r);
    return rc;
}

static int one_text(oms_dbconn *c, const oms_sql *q, const char *arg, char out[65], bool *found, oms_error *err)
{
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(arg)};
    int rc = oms_db_run(c, q, p, 1, &r, err);
    *found = rc == OMS_OK && r->nrows > 0;
    if (*found && out)
        snprintf(out, 65, "%s", oms_dbres_get(r, 0, 0));
    oms_dbres_free(r);
    return rc;
}

int oms_store_branch_head_of(oms_dbconn *c, const char *name, char out[65], bool *found, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT head FROM branches WHERE name = $1");
    return one_text(c, &q, name, out, found, err);
}

int oms_store_commit_exists(oms_dbconn *c, const char *id, bool *found, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT id FROM commits WHERE id = $1");
    return one_text(c, &q, id, NULL, found, err);
}

/* ---- commits and objects ---- */

/* A fork's rows are its own (tombstones drop out) and its base's it has no
 * own row for; a base's, its own. */
#define BRANCH_VIEW(NAME)                                                                                      \
    "SELECT resource, hash, commit_id, author, time_ms FROM branch_resources WHERE branch = " NAME            \
    " UNION ALL SELECT r.resource, r.hash, r.commit_id, r.author, r.time_ms FROM branch_forks f"             \
    " JOIN branch_resources r ON r.branch = f.base WHERE f.branch = " NAME " AND NOT EXISTS"                  \
    " (SELECT 1 FROM branch_resources m WHERE m.branch = " NAME " AND m.resource = r.resource)"

int oms_store_branch_rows(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT b.head, v.resource, v.hash, v.commit_id, v.author, v.time_ms, o.content"
                                          " FROM branches b LEFT JOIN (" BRANCH_VIEW("$1") ") v ON v.hash <> ''"
                                          " LEFT JOIN objects o ON o.hash = v.hash WHERE b.name = $1");
    oms_dbparam p[] = {DBP_TEXT(branch)};
    return oms_db_run_content_read(c, &q, p, 1, out, err);
}

int oms_store_objects_in(oms_dbconn *c, const char *hashes_json, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = {"SELECT hash, content FROM objects WHERE hash IN (SELECT value FROM json_each($1))",
                              "SELECT hash, content FROM objects WHERE hash IN"
                              " (SELECT json_array_elements_text($1::json))"};
    oms_dbparam p[] = {DBP_TEXT(hashes_json)};
    return oms_db_run_content_read(c, &q, p, 1, out, err);
}

int oms_store_commit_tree(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT tree, author, time_ms FROM commits WHERE id = $1");
    oms_dbparam p[] = {DBP_TEXT(id)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_commit_load(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT id, tree, parents, author, message, time_ms, issue_keys, override_id, generation"
        " FROM commits WHERE id = $1");
    oms_dbparam p[] = {DBP_TEXT(id)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_commit_insert(oms_dbconn *c, const char *id, const char *tree, const char *first, const char *second,
                            const char *parents_json, const char *author, const char *message, int64_t time_ms,
                            const char *issue_keys_json, const char *override_id, oms_error *err)
{
    /* generation = 1 + the highest of the parents', computed by the insert
     * itself (one round trip, whatever the number of parents) */
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO commits (id, tree, first_parent, parents, author, message, time_ms,"
        " issue_keys, override_id, generation) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9,"
        " 1 + COALESCE((SELECT max(generation) FROM commits WHERE id = $3 OR id = $10), 0)"
        " WHERE true ON CONFLICT (id) DO NOTHING");
    oms_dbparam p[] = {DBP_TEXT(id),      DBP_TEXT(tree),    DBP_TEXT(first),           DBP_TEXT(parents_json),
                       DBP_TEXT(author),  DBP_TEXT(message), DBP_INT(time_ms),          DBP_TEXT(issue_keys_json),
                       DBP_TEXT(override_id), DBP_TEXT(second)};
    return oms_db_run_later(c, &q, p, 10, err); /* with the next statement */
}

int oms_store_commit_parent_insert(oms_dbconn *c, const char *id, int64_t idx, const char *parent, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO commit_parents (commit_id, idx, parent_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING");
    oms_dbparam p[] = {DBP_TEXT(id), DBP_INT(idx), DBP_TEXT(parent)};
    return oms_db_run_later(c, &q, p, 3, err); /* with the next statement */
}

int oms_store_commit_issue_insert(oms_dbconn *c, const char *issue_key, const char *id, oms_error *err)
{
    static const oms_sql q =
        OMS_SQL_BOTH("INSERT INTO commit_issues (issue_key, commit_id) VALUES ($1, $2) ON CONFLICT DO NOTHING");
    oms_dbparam p[] = {DBP_TEXT(issue_key), DBP_TEXT(id)};
    return oms_db_run_later(c, &q, p, 2, err); /* with the next statement */
}

int oms_store_merge_base(oms_dbconn *c, const char *a, const char *b, char out[65], bool *found, oms_error *err)
{
    /* Ancestors (inclusive) of both commits, intersected; the deepest by
     * generation is a lowest common ancestor: none of its descendants can be
     * common, or it would have a higher generation. The walks are bounded
     * by a generation floor: a generation is 1 + its parents' highest, so
     * every ancestor at or above the floor is reached through commits at or
     * above it, and a common ancestor found there is the deepest of all.
     * The floor starts a little below the lower of the two commits and
     * drops fourfold until one is found (or the floor passes the root):
     * the cost follows how far the two lines diverged, not the length of
     * the history (walking every ancestor took 357 ms at 1,725 of them). */
    static const oms_sql q = OMS_SQL_BOTH(
        "WITH RECURSIVE"
        " lim(g) AS (SELECT MIN(generation) - $3 FROM commits WHERE id IN ($1, $2)),"
        " anc_a(id) AS (SELECT CAST($1 AS TEXT) UNION SELECT p.parent_id FROM commit_parents p"
        "  JOIN anc_a ON p.commit_id = anc_a.id JOIN commits k ON k.id = p.parent_id"
        "  WHERE k.generation >= (SELECT g FROM lim)),"
        " anc_b(id) AS (SELECT CAST($2 AS TEXT) UNION SELECT p.parent_id FROM commit_parents p"
        "  JOIN anc_b ON p.commit_id = anc_b.id JOIN commits k ON k.id = p.parent_id"
        "  WHERE k.generation >= (SELECT g FROM lim))"
        " SELECT (SELECT g FROM lim),"
        "  (SELECT c.id FROM commits c JOIN anc_a ON anc_a.id = c.id JOIN anc_b ON anc_b.id = c.id"
        "   ORDER BY c.generation DESC, c.id ASC LIMIT 1)");
    *found = false;
    for (int64_t window = 64;; window *= 4) {
        oms_dbres *r = NULL;
        oms_dbparam p[] = {DBP_TEXT(a), DBP_TEXT(b), DBP_INT(window)};
        int rc = oms_db_run(c, &q, p, 3, &r, err);
        if (rc)
            return rc;
        const char *floor = r->nrows ? oms_dbres_get(r, 0, 0) : NULL, *base = r->nrows ? oms_dbres_get(r, 0, 1) : NULL;
        bool whole = !floor || oms_dbres_int(r, 0, 0) <= 1; /* the walk reached the root (generation 1): nothing more to find */
        if (base) {
            *found = true;
            snprintf(out, 65, "%s", base);
        }
        oms_dbres_free(r);
        if (*found || whole)
            return OMS_OK;
    }
}

int oms_store_commit_graph_window(oms_dbconn *c, const char *id, int64_t window, oms_dbres **out, oms_error *err)
{
    /* the merge base's walk, from one commit, bounded by a generation floor */
    static const oms_sql q = OMS_SQL_BOTH(
        "WITH RECURSIVE"
        " lim(g) AS (SELECT generation - $2 FROM commits WHERE id = $1),"
        " anc(id) AS (SELECT CAST($1 AS TEXT) UNION SELECT p.parent_id FROM commit_parents p"
        "  JOIN anc ON p.commit_id = anc.id JOIN commits k ON k.id = p.parent_id"
        "  WHERE k.generation >= (SELECT g FROM lim))"
        " SELECT c.id, c.generation, c.parents, c.issue_keys FROM anc JOIN commits c ON c.id = anc.id");
    oms_dbparam p[] = {DBP_TEXT(id), DBP_INT(window)};
    return oms_db_run(c, &q, p, 2, out, err);
}
