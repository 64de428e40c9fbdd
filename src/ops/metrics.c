#include "ops/metrics.h"

#include "store/freshness.h"
#include "store/ops_sql.h"
#include "store/sole_writer.h"
#include "store/sqlite_pcache.h"
#include "store/sqlite_walbuf.h"
#include "store/store.h"

void oms_ops_metrics_live_locks(oms_ctx *ctx, oms_mtext *b)
{
    oms_mtext_family(b, "oms_locks_active", "gauge", "Live locks by kind (all instances).");
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    if (oms_db_conn(ctx->store->db, &c, &err) == OMS_OK && oms_store_live_locks_by_kind(c, &r, &err) == OMS_OK)
        for (size_t i = 0; i < r->nrows; i++) {
            oms_mtext_emit(b, "oms_locks_active{kind=\"");
            oms_mtext_value(b, oms_dbres_get(r, i, 0) ? oms_dbres_get(r, i, 0) : "");
            oms_mtext_emit(b, "\"} %lld\n", (long long)oms_dbres_int(r, i, 1));
        }
    oms_dbres_free(r);
}

void oms_ops_metrics_index_jobs(oms_ctx *ctx, oms_mtext *b)
{
    oms_mtext_family(b, "oms_index_rebuild_progress_percent", "gauge",
                     "Progress of each running search index rebuild, by branch, job and phase (all instances).");
    oms_error err;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    if (oms_db_conn(ctx->store->db, &c, &err) != OMS_OK || oms_store_running_index_jobs(c, &r, &err) != OMS_OK) {
        oms_dbres_free(r);
        return;
    }
    for (size_t i = 0; i < r->nrows; i++) {
        oms_mtext_emit(b, "oms_index_rebuild_progress_percent{branch=\"");
        oms_mtext_value(b, oms_dbres_get(r, i, 0));
        oms_mtext_emit(b, "\",job=\"%s\",phase=\"%s\"} %s\n", oms_dbres_get(r, i, 1), oms_dbres_get(r, i, 2),
                       oms_dbres_get(r, i, 3));
    }
    oms_mtext_family(b, "oms_index_rebuild_resources", "gauge",
                     "Resources a running rebuild has indexed (state=done) of those it knows of (state=total).");
    for (size_t i = 0; i < r->nrows; i++)
        for (int k = 0; k < 2; k++) {
            oms_mtext_emit(b, "oms_index_rebuild_resources{branch=\"");
            oms_mtext_value(b, oms_dbres_get(r, i, 0));
            oms_mtext_emit(b, "\",job=\"%s\",state=\"%s\"} %s\n", oms_dbres_get(r, i, 1), k ? "total" : "done",
                           oms_dbres_get(r, i, 4 + k));
        }
    oms_dbres_free(r);
}

void oms_ops_metrics_db(oms_mtext *b)
{
    oms_mtext_family(b, "oms_db_roundtrips_total", "counter",
                     "Round trips to the database (one per statement, or per pipeline of statements), by request workers and other threads.");
    oms_mtext_emit(b, "oms_db_roundtrips_total{source=\"requests\"} %llu\n", (unsigned long long)oms_db_roundtrips(false));
    oms_mtext_emit(b, "oms_db_roundtrips_total{source=\"background\"} %llu\n", (unsigned long long)oms_db_roundtrips(true));
    oms_mtext_family(b, "oms_db_statement_cache_total", "counter",
                     "Statements with parameters run through their connection's cache of prepared statements: "
                     "found there (hit), prepared and kept (prepared), or prepared for one use because the "
                     "connection's cache was full (uncached).");
    static const char *const outcome[] = {"hit", "prepared", "uncached"};
    for (int o = 0; o < 3; o++)
        oms_mtext_emit(b, "oms_db_statement_cache_total{outcome=\"%s\"} %llu\n", outcome[o],
                       (unsigned long long)oms_db_statements((oms_db_stmt_outcome)o));
    uint64_t reads, requests;
    oms_store_fresh_counts(&reads, &requests);
    oms_mtext_family(b, "oms_db_freshness_requests_total", "counter",
                     "Requests that needed a branch's head and the ACL version from the database.");
    oms_mtext_emit(b, "oms_db_freshness_requests_total %llu\n", (unsigned long long)requests);
    oms_mtext_family(b, "oms_db_freshness_reads_total", "counter",
                     "Reads made for them (PostgreSQL: one read serves the requests that arrived while the one before was in flight).");
    oms_mtext_emit(b, "oms_db_freshness_reads_total %llu\n", (unsigned long long)reads);
    oms_mtext_family(b, "oms_db_freshness_flights_recycled_total", "counter",
                     "PostgreSQL: branches that took over the freshness flight of a branch not served lately, "
                     "the process having served more branches than it keeps flights for (src/store/freshness.c).");
    oms_mtext_emit(b, "oms_db_freshness_flights_recycled_total %llu\n",
                   (unsigned long long)oms_store_fresh_recycled());
    oms_mtext_family(b, "oms_db_sole_writer", "gauge",
                     "PostgreSQL: 1 while this instance holds the sole-writer lease and answers repeat reads from "
                     "memory (docs/storage.md \"The sole-writer lease\").");
    oms_mtext_emit(b, "oms_db_sole_writer %d\n", oms_sole_writer_held() ? 1 : 0);
    oms_mtext_family(b, "oms_db_sole_writer_yields_total", "counter",
                     "PostgreSQL: times this instance gave the sole-writer lease back because another writer waited or another session connected.");
    oms_mtext_emit(b, "oms_db_sole_writer_yields_total %llu\n", (unsigned long long)oms_sole_writer_yields());
    uint64_t passed, skipped;
    oms_sqlite_pcache_counts(&passed, &skipped, NULL);
    oms_mtext_family(b, "oms_sqlite_cache_truncations_total", "counter",
                     "SQLite: page cache truncations at the end of write transactions, passed to SQLite's cache, or "
                     "skipped because no page was at or past the limit (docs/storage.md \"SQLite's page cache\").");
    oms_mtext_emit(b, "oms_sqlite_cache_truncations_total{outcome=\"passed\"} %llu\n", (unsigned long long)passed);
    oms_mtext_emit(b, "oms_sqlite_cache_truncations_total{outcome=\"skipped\"} %llu\n", (unsigned long long)skipped);
    uint64_t asked, written;
    oms_sqlite_walbuf_counts(&asked, &written);
    oms_mtext_family(b, "oms_sqlite_wal_writes_total", "counter",
                     "SQLite: writes to the write-ahead log, as SQLite asked for them (a frame's header, a page), "
                     "and as made to the file, gathered (docs/storage.md \"The log's writes\").");
    oms_mtext_emit(b, "oms_sqlite_wal_writes_total{by=\"sqlite\"} %llu\n", (unsigned long long)asked);
    oms_mtext_emit(b, "oms_sqlite_wal_writes_total{by=\"file\"} %llu\n", (unsigned long long)written);
}
