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
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "store/audit_sql.h"
#include "util/alloc.h"

#define PAGE 2000

int oms_audit_chain_queued(oms_dbconn *c, oms_audit_walk *w, int64_t max, int64_t *appended, oms_error *err)
{
    *appended = 0;
    oms_store_audit_link *rows = oms_xmalloc(PAGE * sizeof *rows);
    int rc = OMS_OK;
    while (*appended < max) {
        int64_t want = max - *appended < PAGE ? max - *appended : PAGE;
        oms_dbres *r = NULL;
        /* Only committed events are visible: one that commits after this
         * read is chained by a later round. */
        if ((rc = oms_store_audit_unchained_page(c, want, &r, err)))
            break;
        size_t n = r->nrows;
        /* Each row's hashes, kept until the page is inserted. */
        char(*hex)[2][65] = oms_xmalloc((n ? n : 1) * sizeof *hex);
        for (size_t i = 0; i < n; i++) {
            const char *f[AC__HASHED];
            for (int k = 0; k < AC_PREV_HASH; k++)
                f[k] = oms_dbres_get(r, i, (size_t)k);
            f[AC_PREV_HASH] = w->prev;
            oms_store_audit_link *l = &rows[i];
            l->pos = w->last_pos + 1;
            l->event_seq = strtoll(f[AC_SEQ], NULL, 10);
            memcpy(hex[i][0], w->prev, sizeof hex[i][0]);
            oms_audit_event_hash(hex[i][1], f);
            l->prev_hash = hex[i][0];
            l->hash = hex[i][1];
            memcpy(w->prev, hex[i][1], sizeof w->prev);
            w->last_pos = l->pos;
            w->count++;
        }
        rc = oms_store_audit_chain_insert(c, rows, n, err);
        free(hex);
        oms_dbres_free(r);
        if (rc)
            break;
        *appended += (int64_t)n;
        if ((int64_t)n < want)
            break;
    }
    free(rows);
    if (rc == OMS_OK)
        rc = oms_store_audit_unchained_prune(c, err);
    return rc;
}
