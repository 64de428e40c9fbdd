/* Streaming export (JSONL or CSV) in sequence order. Rows are fetched a page
 * at a time by keyset (seq > last), so memory stays flat however large the
 * log, and the stream ends at the newest event that existed when it began.
 * The same generator feeds the HTTP stream and `oms audit export`. */
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "util/alloc.h"

#define PAGE 500

struct oms_audit_exporter {
    oms_db *db;
    oms_audit_filter f;
    char *strs[8]; /* owned copies of the filter's strings */
    oms_audit_format fmt;
    oms_sbuf out;
    size_t pos; /* bytes of out already handed out */
    bool header_done, end;
    int64_t rows;
};

static const char *own(oms_audit_exporter *x, int slot, const char *s)
{
    if (!s)
        return NULL;
    x->strs[slot] = oms_xstrdup(s);
    return x->strs[slot];
}

int oms_audit_exporter_new(oms_audit_exporter **out, oms_db *db, const oms_audit_filter *f, oms_audit_format fmt,
                           oms_error *err)
{
    oms_audit_exporter *x = oms_xcalloc(1, sizeof *x);
    x->db = db;
    x->fmt = fmt;
    x->f = *f;
    x->f.actor = own(x, 0, f->actor);
    x->f.action = own(x, 1, f->action);
    x->f.resource_kind = own(x, 2, f->resource_kind);
    x->f.resource_id = own(x, 3, f->resource_id);
    x->f.branch = own(x, 4, f->branch);
    x->f.outcome = own(x, 5, f->outcome);
    x->f.request_id = own(x, 6, f->request_id);
    x->f.commit_id = own(x, 7, f->commit_id);
    x->f.asc = true;
    x->f.has_cursor = true;
    x->f.cursor_seq = 0;
    /* Bound the stream by the newest event now. */
    oms_dbconn *c;
    int rc = oms_db_conn(db, &c, err);
    if (rc == OMS_OK)
        rc = oms_store_audit_max_seq(c, &x->f.upto_seq, err);
    if (rc) {
        oms_audit_exporter_free(x);
        return rc;
    }
    if (x->f.upto_seq == 0)
        x->f.upto_seq = -1; /* an empty log: nothing to stream */
    *out = x;
    return OMS_OK;
}

void oms_audit_exporter_free(oms_audit_exporter *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < sizeof x->strs / sizeof x->strs[0]; i++)
        free(x->strs[i]);
    free(x->out.s);
    free(x);
}

int64_t oms_audit_exporter_rows(const oms_audit_exporter *x) { return x->rows; }

static void csv_row(oms_sbuf *b, const oms_dbres *r, size_t i)
{
    for (int k = 0; k < AC__COUNT; k++) {
        if (k)
            oms_sbuf_add(b, ",", 1);
        oms_sbuf_csv(b, oms_dbres_get(r, i, (size_t)k));
    }
    oms_sbuf_add(b, "\r\n", 2);
}

/* Fills x->out with the next page: 1, 0 at the end, -1 on error. */
static int next_page(oms_audit_exporter *x)
{
    if (!x->header_done) {
        x->header_done = true;
        if (x->fmt == OMS_AUDIT_CSV) {
            for (int k = 0; k < AC__COUNT; k++) {
                if (k)
                    oms_sbuf_add(&x->out, ",", 1);
                oms_sbuf_puts(&x->out, oms_audit_col_names[k]);
            }
            oms_sbuf_add(&x->out, "\r\n", 2);
            return 1;
        }
    }
    if (x->f.upto_seq < 0 || x->end)
        return 0;
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(x->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_store_audit_events_page(c, &x->f, PAGE, &r, &err);
    if (rc)
        return -1;
    for (size_t i = 0; i < r->nrows; i++) {
        if (x->fmt == OMS_AUDIT_CSV) {
            csv_row(&x->out, r, i);
        } else {
            json_t *o = oms_audit_row_json(r, i);
            char *s = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            if (s) {
                oms_sbuf_puts(&x->out, s);
                oms_sbuf_add(&x->out, "\n", 1);
                free(s);
            }
        }
        x->f.cursor_seq = oms_dbres_int(r, i, AC_SEQ);
        x->rows++;
    }
    if (r->nrows < PAGE)
        x->end = true;
    size_t n = r->nrows;
    oms_dbres_free(r);
    return n > 0 ? 1 : 0;
}

long oms_audit_exporter_read(oms_audit_exporter *x, char *buf, size_t max)
{
    while (x->pos >= x->out.len) {
        x->out.len = 0;
        x->pos = 0;
        int more = next_page(x);
        if (more < 0)
            return -1;
        if (more == 0 && x->out.len == 0)
            return 0;
    }
    size_t n = x->out.len - x->pos;
    if (n > max)
        n = max;
    memcpy(buf, x->out.s + x->pos, n);
    x->pos += n;
    return (long)n;
}
