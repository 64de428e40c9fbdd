#include "store/dialect.h"

const char *oms_sql_for(const oms_dbconn *c, const oms_sql *q)
{
    return oms_db_backend_of_conn(c) == OMS_DB_PG ? q->pg : q->sqlite;
}

int oms_db_run(oms_dbconn *c, const oms_sql *q, const oms_dbparam *params, int nparams, oms_dbres **out,
               oms_error *err)
{
    return oms_db_exec(c, oms_sql_for(c, q), params, nparams, out, err);
}

int oms_db_run_int(oms_dbconn *c, const oms_sql *q, const oms_dbparam *params, int nparams, int64_t *out,
                   oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, q, params, nparams, &r, err);
    if (rc == OMS_OK)
        *out = r->nrows && oms_dbres_get(r, 0, 0) ? oms_dbres_int(r, 0, 0) : 0;
    oms_dbres_free(r);
    return rc;
}

int oms_db_run_later(oms_dbconn *c, const oms_sql *q, const oms_dbparam *params, int nparams, oms_error *err)
{
    return oms_db_exec_later(c, oms_sql_for(c, q), params, nparams, err);
}

int oms_db_run_content(oms_dbconn *c, const oms_sql *q, const oms_dbparam *params, int nparams, oms_error *err)
{
    return oms_db_exec_content(c, oms_sql_for(c, q), params, nparams, err);
}

int oms_db_run_content_read(oms_dbconn *c, const oms_sql *q, const oms_dbparam *params, int nparams, oms_dbres **out,
                            oms_error *err)
{
    int rc = oms_db_content_settle(c, err);
    return rc ? rc : oms_db_run(c, q, params, nparams, out, err);
}

int oms_db_run_read_later(oms_dbconn *c, const oms_sql *q, const oms_dbparam *params, int nparams, oms_dbres **out,
                          oms_error *err)
{
    return oms_db_read_later(c, oms_sql_for(c, q), params, nparams, out, err);
}

int oms_db_run_batch(oms_dbconn *c, const oms_sql_stmt *s, int n, oms_error *err)
{
    oms_db_stmt stack[16];
    if (n > 16)
        return oms_err_set(err, OMS_EINTERNAL, "a batch holds at most 16 statements");
    for (int i = 0; i < n; i++)
        stack[i] = (oms_db_stmt){oms_sql_for(c, s[i].q), s[i].params, s[i].nparams, s[i].out};
    return oms_db_batch_run(c, stack, n, err);
}

int oms_db_xact_lock(oms_dbconn *c, int64_t key, bool shared, oms_error *err)
{
    if (oms_db_backend_of_conn(c) != OMS_DB_PG)
        return OMS_OK;
    oms_dbparam p[] = {DBP_INT(key)};
    return oms_db_exec_later(c, shared ? "SELECT pg_advisory_xact_lock_shared($1)" : "SELECT pg_advisory_xact_lock($1)",
                             p, 1, err);
}

int oms_db_now_ms(oms_dbconn *c, int64_t *out, oms_error *err)
{
    static const oms_sql q = {"SELECT " OMS_DB_NOW_SQLITE, "SELECT " OMS_DB_NOW_PG};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, NULL, 0, &r, err);
    if (rc == OMS_OK)
        *out = oms_dbres_int(r, 0, 0);
    oms_dbres_free(r);
    return rc;
}

bool oms_db_row_locking(const oms_dbconn *c) { return oms_db_backend_of_conn(c) == OMS_DB_PG; }

const char *oms_sql_now(const oms_dbconn *c)
{
    return oms_db_backend_of_conn(c) == OMS_DB_PG ? OMS_DB_NOW_PG : OMS_DB_NOW_SQLITE;
}

bool oms_db_has_sequences(const oms_dbconn *c) { return oms_db_backend_of_conn(c) == OMS_DB_PG; }

bool oms_db_single_writer_conn(const oms_dbconn *c) { return oms_db_backend_of_conn(c) == OMS_DB_SQLITE; }

oms_fts_kind oms_db_fts(const oms_dbconn *c)
{
    return oms_db_backend_of_conn(c) == OMS_DB_PG ? OMS_FTS_TSVECTOR : OMS_FTS_FTS5;
}
