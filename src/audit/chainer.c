/* Chaining after commit (docs/audit.md "Chain").
 *
 * Events are inserted without a link (append.c), each with a row in the
 * queue audit_unchained written by its own transaction. The chainer, run by
 * the sealing round under the sealer's lock (seal.c), takes the queued
 * events that have committed, in seq order, and appends them to
 * audit_chain at the next positions, each hash over the event and the
 * previous position's hash. An event whose transaction commits late (a
 * lower seq than events already chained) simply gets a later position: the
 * chain order is the order in which the chainer saw events committed, never
 * assumed to be seq order.
 *
 * Why a queue rather than an anti-join of events against the chain: the
 * queue finds the unchained events exactly and cheaply (it holds only them)
 * with no guess about how late a transaction may commit, and an event row
 * with neither a chain row nor a queue row can only have been written
 * behind the service's back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "store/audit_sql.h"

#define PAGE 2000

typedef struct {
    int64_t pos;
    const char *seq; /* borrowed from the page's result */
    char prev[65], hash[65];
} link_row;

/* One statement for the page: the rows travel as one JSON array parameter
 * (as in src/vcs/bulk.c), [[pos, seq, prev_hash, hash], ...]. Every value
 * is a decimal number or lowercase hex, so nothing needs escaping. */
static int insert_links(oms_dbconn *c, const link_row *rows, size_t n, oms_error *err)
{
    if (n == 0)
        return OMS_OK;
    size_t cap = n * 200 + 2, len = 0;
    char *json = malloc(cap);
    if (!json)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    json[len++] = '[';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(json + len, cap - len, "%s[%lld,%s,\"%s\",\"%s\"]", i ? "," : "",
                                (long long)rows[i].pos, rows[i].seq, rows[i].prev, rows[i].hash);
    snprintf(json + len, cap - len, "]");
    int rc = oms_store_audit_chain_insert(c, json, err);
    free(json);
    return rc;
}

int oms_audit_chain_queued(oms_dbconn *c, oms_audit_walk *w, int64_t max, int64_t *appended, oms_error *err)
{
    *appended = 0;
    link_row *rows = malloc(PAGE * sizeof *rows);
    if (!rows)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    int rc = OMS_OK;
    while (*appended < max) {
        int64_t want = max - *appended < PAGE ? max - *appended : PAGE;
        oms_dbparam p[] = {DBP_INT(want)};
        oms_dbres *r = NULL;
        /* Only committed events are visible; an event that commits after
         * this read is chained by a later round. The join leaves out a
         * queue row whose event is gone (evidence for verify, see
         * docs/audit.md); NOT EXISTS a stale one whose event is chained. */
        if ((rc = oms_db_exec(c,
                              "SELECT " AUDIT_EVENT_COLS " FROM audit_unchained q JOIN audit_events e ON e.seq = q.seq"
                              " WHERE NOT EXISTS (SELECT 1 FROM audit_chain x WHERE x.event_seq = q.seq)"
                              " ORDER BY q.seq LIMIT $1",
                              p, 1, &r, err)))
            break;
        size_t n = r->nrows;
        for (size_t i = 0; i < n; i++) {
            const char *f[AC__HASHED];
            for (int k = 0; k < AC_PREV_HASH; k++)
                f[k] = oms_dbres_get(r, i, (size_t)k);
            f[AC_PREV_HASH] = w->prev;
            link_row *l = &rows[i];
            l->pos = w->last_pos + 1;
            l->seq = f[AC_SEQ];
            memcpy(l->prev, w->prev, sizeof l->prev);
            oms_audit_event_hash(l->hash, f);
            memcpy(w->prev, l->hash, sizeof w->prev);
            w->last_pos = l->pos;
            w->count++;
        }
        rc = insert_links(c, rows, n, err);
        oms_dbres_free(r);
        if (rc)
            break;
        *appended += (int64_t)n;
        if ((int64_t)n < want)
            break;
    }
    free(rows);
    if (rc == OMS_OK)
        rc = oms_db_exec(c,
                         "DELETE FROM audit_unchained WHERE EXISTS (SELECT 1 FROM audit_chain x"
                         " WHERE x.event_seq = audit_unchained.seq)",
                         NULL, 0, NULL, err);
    return rc;
}
