/* oms backup: one read transaction (one snapshot: PostgreSQL REPEATABLE
 * READ, a SQLite WAL read transaction) paged section by section into the
 * record format, so memory holds one page whatever the database's size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/backup.h"
#include "backup/format.h"
#include "backup/progress.h"
#include "store/backup_sql.h"
#include "util/alloc.h"
#include "util/time.h"

/* Rows per page: documents may be large, events and edges are small. */
static int page_size(const oms_backup_section *s)
{
    return strcmp(s->name, "objects") == 0 ? 100 : 500;
}

static int dump_section(oms_dbconn *c, oms_bk_writer *w, const oms_backup_section *s, oms_bk_progress *p,
                        oms_error *err)
{
    int rc = oms_bk_writer_section(w, s, err);
    if (rc)
        return rc;
    oms_bk_progress_section(p, s->name);
    size_t ncols = oms_backup_section_ncols(s);
    oms_dbres *page = NULL, *prev = NULL;
    const char *after[8];
    bool have_after = false;
    const char **cells = oms_xcalloc(ncols, sizeof *cells);
    for (;;) {
        if ((rc = oms_backup_sql_page(c, s, have_after ? after : NULL, page_size(s), &page, err)))
            break;
        for (size_t r = 0; r < page->nrows && rc == OMS_OK; r++) {
            for (size_t k = 0; k < ncols; k++)
                cells[k] = oms_dbres_get(page, r, k);
            rc = oms_bk_writer_row(w, cells, err);
        }
        if (rc)
            break;
        oms_bk_progress_add(p, (int64_t)page->nrows);
        if (page->nrows < (size_t)page_size(s))
            break;
        /* the next page starts after this one's last key */
        for (int k = 0; k < s->nkeys; k++)
            after[k] = oms_dbres_get(page, page->nrows - 1, (size_t)k);
        have_after = true;
        oms_dbres_free(prev);
        prev = page; /* `after` points into it */
        page = NULL;
    }
    oms_dbres_free(page);
    oms_dbres_free(prev);
    free(cells);
    if (rc == OMS_OK)
        rc = oms_bk_writer_end_section(w, err);
    if (rc == OMS_OK)
        oms_bk_progress_section_end(p);
    return rc;
}

int oms_backup_write(oms_store *s, const char *path, int level, bool quiet, oms_backup_result *res, oms_error *err)
{
    memset(res, 0, sizeof *res);
    oms_dbconn *c = NULL;
    oms_bk_out *o = NULL;
    oms_bk_writer *w = NULL;
    json_t *header = NULL;
    bool in_tx = false;
    int rc = oms_db_conn(s->db, &c, err);
    if (rc)
        return rc;
    if ((rc = oms_backup_sql_begin_snapshot(c, err)))
        goto cleanup;
    in_tx = true;
    int version = 0;
    if ((rc = oms_store_schema_version(s, &version, err)))
        goto cleanup;
    if (version != oms_store_latest_version(s)) {
        rc = oms_err_set(err, OMS_ECONFIG,
                         "the database is at schema version %d, this oms writes version %d: run oms migrate first",
                         version, oms_store_latest_version(s));
        goto cleanup;
    }
    int64_t total = 0;
    for (const oms_backup_section *sec = oms_backup_sections; sec->name; sec++) {
        int64_t n = 0;
        if ((rc = oms_backup_sql_count(c, sec, &n, err)))
            goto cleanup;
        total += n;
    }
    char created[40];
    oms_time_rfc3339_ms(created, sizeof created, oms_now_ms());
    header = json_pack("{s:i,s:s,s:s}", "schema_version", version, "created_at", created, "source_backend",
                       oms_db_backend_name(s->db));
    if (!header) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = oms_bk_out_open(&o, path, level, err)))
        goto cleanup;
    if ((rc = oms_bk_writer_new(&w, o, header, err)))
        goto cleanup;
    oms_bk_progress p;
    oms_bk_progress_init(&p, "backup", total, quiet);
    for (const oms_backup_section *sec = oms_backup_sections; sec->name && rc == OMS_OK; sec++)
        rc = dump_section(c, w, sec, &p, err);
    if (rc == OMS_OK)
        rc = oms_bk_writer_finish(w, res->sha256, err);
    if (rc)
        goto cleanup;
    oms_bk_progress_done(&p);
    res->rows = oms_bk_writer_rows(w);
    oms_db_rollback(c); /* read only: nothing to commit */
    in_tx = false;
    res->bytes = oms_bk_out_bytes(o);
    rc = oms_bk_out_close(o, true, err);
    o = NULL;
cleanup:
    if (in_tx)
        oms_db_rollback(c);
    oms_bk_writer_free(w);
    oms_bk_out_close(o, false, NULL);
    json_decref(header);
    oms_db_deadline(c, -1);
    return rc;
}
