/* oms restore: nothing is visible before everything is verified.
 *
 * Pass 1 reads the file alone (no database touched): structure, every
 * section's and the whole file's SHA-256, every object and commit hash, the
 * audit chain and its signed checkpoints with the configured key. Pass 2
 * reads it again inside one write transaction on the target: the schema is
 * rebuilt, the rows go in, the file must hash to what pass 1 saw, the
 * references between rows are checked and the audit log is verified by
 * `oms audit verify`'s own code against the rows just written; only then
 * does the transaction commit. Any failure rolls it back: all or nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "backup/backup.h"
#include "backup/check.h"
#include "backup/format.h"
#include "backup/progress.h"
#include "backup/restore.h"
#include "store/backup_sql.h"

/* Rows per insert statement, and the text they may hold: one statement per
 * batch, bounded in memory whatever the documents' sizes. */
#define BATCH 500
#define BATCH_BYTES (4u << 20)
#define MAX_COLS 32

typedef struct {
    oms_dbconn *c;
    oms_bk_progress *p;
    json_t *rows[BATCH];
    const char *cells[BATCH * MAX_COLS];
    size_t n, ncols, bytes;
} loader;

static int flush(loader *l, const oms_backup_section *s, oms_error *err)
{
    int rc = l->n ? oms_backup_sql_insert(l->c, s, l->cells, l->n, err) : OMS_OK;
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->rows[i]);
    if (rc == OMS_OK)
        oms_bk_progress_add(l->p, (int64_t)l->n);
    l->n = 0;
    l->bytes = 0;
    return rc;
}

static int load_section(void *ctx, const oms_backup_section *s, oms_error *err)
{
    loader *l = ctx;
    l->ncols = oms_backup_section_ncols(s);
    if (l->ncols > MAX_COLS)
        return oms_err_set(err, OMS_EINTERNAL, "section %s has too many columns", s->name);
    oms_bk_progress_section(l->p, s->name);
    return OMS_OK;
}

static int load_row(void *ctx, const oms_backup_section *s, const char *const *cells, json_t *row, oms_error *err)
{
    loader *l = ctx;
    l->rows[l->n] = json_incref(row); /* keeps the cells' strings alive */
    memcpy(&l->cells[l->n * l->ncols], cells, l->ncols * sizeof *cells);
    for (size_t i = 0; i < l->ncols; i++)
        l->bytes += cells[i] ? strlen(cells[i]) : 0;
    l->n++;
    return l->n == BATCH || l->bytes >= BATCH_BYTES ? flush(l, s, err) : OMS_OK;
}

static int load_section_end(void *ctx, const oms_backup_section *s, int64_t rows, oms_error *err)
{
    loader *l = ctx;
    (void)rows;
    int rc = flush(l, s, err);
    if (rc == OMS_OK)
        oms_bk_progress_section_end(l->p);
    return rc;
}

static void loader_drop(loader *l)
{
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->rows[i]);
    l->n = 0;
}

int oms_restore_verify_file(const char *path, bool have_key, bool quiet, oms_bk_summary *sum,
                            oms_bk_check_counts *counts, oms_error *err)
{
    oms_bk_check *chk = oms_bk_check_new(have_key);
    if (!chk)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    (void)quiet;
    int rc = oms_bk_read(path, &oms_bk_check_sink, chk, sum, err);
    if (rc == OMS_OK && counts)
        oms_bk_check_counts_get(chk, counts);
    oms_bk_check_free(chk);
    return rc;
}

/* Inside the restore transaction, after the rows: what the database itself
 * must agree with. */
static int verify_loaded(oms_store *s, oms_dbconn *c, oms_error *err)
{
    char what[256];
    bool ok = true;
    int rc = oms_backup_sql_finish(c, err);
    if (rc == OMS_OK)
        rc = oms_backup_sql_check_refs(c, &ok, what, sizeof what, err);
    if (rc)
        return rc;
    if (!ok)
        return oms_err_set(err, OMS_EINVAL, "%s", what);
    oms_audit_verify_result v;
    if ((rc = oms_audit_verify(s, &v, err)))
        return rc;
    if (!v.ok)
        return oms_err_set(err, OMS_EINVAL, "audit log: %s", v.reason);
    return OMS_OK;
}

static int record_restore(oms_dbconn *c, const oms_bk_summary *sum, oms_error *err)
{
    char detail[512];
    snprintf(detail, sizeof detail,
             "{\"file_sha256\":\"%s\",\"rows\":%lld,\"source_backend\":\"%s\",\"created_at\":\"%s\"}", sum->sha256,
             (long long)sum->rows, sum->source_backend, sum->created_at);
    /* the two strings come from a verified file but are still checked */
    if (strchr(sum->source_backend, '"') || strchr(sum->created_at, '"') || strchr(sum->source_backend, '\\') ||
        strchr(sum->created_at, '\\'))
        snprintf(detail, sizeof detail, "{\"file_sha256\":\"%s\",\"rows\":%lld}", sum->sha256, (long long)sum->rows);
    oms_audit_event ev = {.actor_sub = "oms", .action = "backup.restore", .outcome = "success", .detail = detail};
    return oms_audit_append(c, &ev, err);
}

/* The oldest schema version whose tables are those of the latest. */
#define OMS_BACKUP_SAME_TABLES_SINCE 14

int oms_restore_run(oms_store *s, const char *path, bool force, bool quiet, const oms_bk_summary *verified,
                    oms_error *err)
{
    oms_dbconn *c = NULL;
    int rc = oms_db_conn(s->db, &c, err);
    if (rc)
        return rc;
    /* Schema 14 changed only how trees are stored: a file of version 13
     * restores with its trees converted as migration 0014 converts them.
     * Versions since 14 changed indexes only (15: the audit query
     * indexes; 16: the search index's pending list; 22: two indexes no
     * statement read) or added tables whose
     * absence is a valid state (19: branch_forks; without it every branch
     * holds its own rows) or a column of a table backups do not hold (23:
     * search_generations.follows; search is rebuilt on restore): their
     * files restore as they are. */
    int latest = oms_store_latest_version(s);
    bool legacy_trees = verified->schema_version == 13 && latest >= 14;
    bool same_tables = verified->schema_version >= OMS_BACKUP_SAME_TABLES_SINCE && verified->schema_version <= latest;
    if (verified->schema_version != latest && !legacy_trees && !same_tables)
        return oms_err_set(err, OMS_ECONFIG,
                           "the backup is at schema version %d, this oms restores version %d: restore it with the"
                           " oms that wrote it, then upgrade",
                           verified->schema_version, oms_store_latest_version(s));
    int version = 0;
    if ((rc = oms_store_schema_version(s, &version, err)))
        return rc;
    if ((rc = oms_backup_sql_begin_restore(c, err)))
        return rc;
    int64_t rows = 0;
    char what[200];
    if ((rc = oms_backup_sql_target_content(c, version, &rows, what, sizeof what, err)))
        goto fail;
    if (rows > 0 && !force) {
        rc = oms_err_set(err, OMS_ECONFLICT,
                         "the target database is not empty (%s); restore into an empty database, or add --force to"
                         " replace its contents (still in one transaction)",
                         what);
        goto fail;
    }
    if ((rc = oms_backup_sql_reset(s, c, version, err)))
        goto fail;
    oms_bk_progress p;
    oms_bk_progress_init(&p, "restore", verified->rows, quiet);
    loader l = {.c = c, .p = &p};
    static const oms_bk_sink sink = {.section = load_section, .row = load_row, .section_end = load_section_end};
    oms_bk_summary again;
    rc = oms_bk_read(path, &sink, &l, &again, err);
    loader_drop(&l);
    if (rc)
        goto fail;
    if (strcmp(again.sha256, verified->sha256) != 0) {
        rc = oms_err_set(err, OMS_EINVAL, "the file changed while it was being restored");
        goto fail;
    }
    if (legacy_trees && (rc = oms_backup_sql_convert_trees(c, err)))
        goto fail;
    if ((rc = verify_loaded(s, c, err)))
        goto fail;
    if ((rc = record_restore(c, verified, err)))
        goto fail;
    if ((rc = oms_db_commit(c, err)))
        goto out;
    oms_bk_progress_done(&p);
    goto out;
fail:
    oms_db_rollback(c);
out:
    oms_db_deadline(c, -1);
    return rc;
}
