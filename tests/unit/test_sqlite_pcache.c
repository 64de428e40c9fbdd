/* The page cache wrapper (src/store/sqlite_pcache.c): SQLite's own cache
 * with the needless end-of-transaction walk skipped. The walk exists to drop
 * pages past the database's end; skipping one that had anything to drop
 * would leave stale pages that a later transaction reads as its own. So
 * each case changes the database's size in a way that truncates the cache
 * (growth rolled back whole, rolled back to a savepoint, a VACUUM that
 * shrinks the file, another connection's commits) and then checks every
 * row against a model of what was committed, and SQLite's integrity check.
 * Random keys make B-tree pages split, which is what renumbers a page to
 * the temporary number and what the wrapper spares the walk for. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/sqlite_pcache.h"
#include "t.h"
#include "t_sqlite.h"
#include "util/hash.h"

#define MAX_ROWS 40000

typedef struct {
    char key[41];
    uint32_t seed;
    int present;
} row;

static row g_model[MAX_ROWS];
static int g_nmodel;
static char g_dir[64];
static char g_file[128];
static sqlite3 *g_db;
static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;
static int g_installed;
static sqlite3_pcache_methods2 g_methods; /* the installed cache's, taken before SQLite initialised */

static uint64_t next_rand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void value_of(uint32_t seed, unsigned char out[200])
{
    uint32_t x = seed * 2654435761u + 1;
    for (int i = 0; i < 200; i++) {
        x = x * 1103515245u + 12345u;
        out[i] = (unsigned char)(x >> 16);
    }
}

static uint64_t row_hash(const char *key, const unsigned char *v, int n)
{
    return oms_fnv1a_bytes_from(oms_fnv1a_str(key), v, (size_t)n);
}

static sqlite3 *open_db(void)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(g_file, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        return NULL;
    t_sqlite_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA cache_size=-16384;");
    return db;
}

static bool setup(void)
{
    if (g_db)
        return true;
    snprintf(g_dir, sizeof g_dir, "/tmp/oms-pcache-XXXXXX");
    if (!mkdtemp(g_dir))
        return false;
    snprintf(g_file, sizeof g_file, "%s/t.db", g_dir);
    g_db = open_db();
    return g_db && t_sqlite_exec(g_db, "CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;"
                              "CREATE INDEX t_v ON t (v)") == SQLITE_OK;
}

/* Inserts n new random rows on db; recorded in the model only if `keep`
 * (the caller commits them), else they must vanish. */
static bool insert_rows(sqlite3 *db, int n, bool keep)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO t (k, v) VALUES (?, ?)", -1, &st, NULL) != SQLITE_OK)
        return false;
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        row r = {.seed = (uint32_t)next_rand(), .present = 1};
        snprintf(r.key, sizeof r.key, "%016llx%016llx%08x", (unsigned long long)next_rand(),
                 (unsigned long long)next_rand(), r.seed);
        unsigned char v[200];
        value_of(r.seed, v);
        sqlite3_bind_text(st, 1, r.key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 2, v, sizeof v, SQLITE_TRANSIENT);
        ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_reset(st);
        if (ok && keep && g_nmodel < MAX_ROWS)
            g_model[g_nmodel++] = r;
    }
    sqlite3_finalize(st);
    return ok;
}

/* One committed transaction of n new rows. */
static bool commit_rows(sqlite3 *db, int n)
{
    return t_sqlite_exec(db, "BEGIN") == SQLITE_OK && insert_rows(db, n, true) && t_sqlite_exec(db, "COMMIT") == SQLITE_OK;
}

/* Every row as the model says, and nothing else; and SQLite's own check. */
static bool matches_model(sqlite3 *db)
{
    uint64_t want = 0, got = 0;
    long want_n = 0, got_n = 0;
    for (int i = 0; i < g_nmodel; i++)
        if (g_model[i].present) {
            unsigned char v[200];
            value_of(g_model[i].seed, v);
            want += row_hash(g_model[i].key, v, sizeof v);
            want_n++;
        }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT k, v FROM t", -1, &st, NULL) != SQLITE_OK)
        return false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        got += row_hash((const char *)sqlite3_column_text(st, 0), sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
        got_n++;
    }
    sqlite3_finalize(st);
    bool integrity = false;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        integrity = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    sqlite3_finalize(st);
    if (got_n != want_n || got != want || !integrity)
        fprintf(stderr, "  rows %ld, expected %ld; sums %s; integrity %s\n", got_n, want_n,
                got == want ? "equal" : "differ", integrity ? "ok" : "FAILED");
    return got_n == want_n && got == want && integrity;
}

/* The wrapper's bookkeeping through its own methods, pages counted by
 * SQLite's cache: a page renumbered to the temporary number is past any
 * end, and a truncation must reach it even when every other page is below
 * the limit. */
static void a_page_at_the_temporary_number_is_truncated(void)
{
    CHECK(g_installed);
    if (!g_installed)
        return;
    const unsigned temp = 0x40000000u / 4096 + 1;
    sqlite3_pcache *c = g_methods.xCreate(4096, 64, 1);
    CHECK(c != NULL);
    if (!c)
        return;
    g_methods.xCachesize(c, 100);
    sqlite3_pcache_page *pages[11] = {0};
    for (unsigned k = 1; k <= 10; k++) {
        pages[k] = g_methods.xFetch(c, k, 2);
        CHECK(pages[k] != NULL);
    }
    for (unsigned k = 1; k <= 10; k++)
        if (pages[k])
            g_methods.xUnpin(c, pages[k], 0);
    CHECK_EQ_INT(g_methods.xPagecount(c), 10);
    uint64_t passed0, skipped0, passed1, skipped1, ren0, ren1;
    oms_sqlite_pcache_counts(&passed0, &skipped0, &ren0);
    g_methods.xTruncate(c, 11); /* nothing past 10: skipped */
    oms_sqlite_pcache_counts(&passed1, &skipped1, &ren1);
    CHECK_EQ_INT(skipped1 - skipped0, 1);
    CHECK_EQ_INT(g_methods.xPagecount(c), 10);
    /* as balance_nonroot does, with the last move left out */
    sqlite3_pcache_page *p5 = g_methods.xFetch(c, 5, 0);
    CHECK(p5 != NULL);
    if (p5) {
        g_methods.xRekey(c, p5, 5, temp);
        g_methods.xUnpin(c, p5, 0);
    }
    g_methods.xTruncate(c, 11); /* page `temp` is past 11: passed on */
    CHECK_EQ_INT(g_methods.xPagecount(c), 9);
    /* and the round trip balance_nonroot makes leaves nothing past 10 */
    sqlite3_pcache_page *p4 = g_methods.xFetch(c, 4, 0);
    CHECK(p4 != NULL);
    if (p4) {
        g_methods.xRekey(c, p4, 4, temp);
        g_methods.xRekey(c, p4, temp, 5);
        g_methods.xUnpin(c, p4, 0);
    }
    oms_sqlite_pcache_counts(&passed0, &skipped0, &ren0);
    g_methods.xTruncate(c, 11);
    oms_sqlite_pcache_counts(&passed1, &skipped1, &ren1);
    CHECK_EQ_INT(skipped1 - skipped0, 1);
    CHECK_EQ_INT(g_methods.xPagecount(c), 9); /* 1-3, 5 (was 4), 6-10 */
    g_methods.xTruncate(c, 6); /* pages 6-10 go, 1-3 and 5 stay */
    CHECK_EQ_INT(g_methods.xPagecount(c), 4);
    g_methods.xDestroy(c);
}

static void the_walk_is_skipped_when_nothing_is_past_the_end(void)
{
    CHECK(setup());
    CHECK(g_installed);
    uint64_t passed0, skipped0, passed1, skipped1, ren0, ren1;
    oms_sqlite_pcache_counts(&passed0, &skipped0, &ren0);
    for (int i = 0; i < 300; i++) {
        CHECK(commit_rows(g_db, 20));
    }
    oms_sqlite_pcache_counts(&passed1, &skipped1, &ren1);
    /* every commit ended with a truncation that had nothing to drop, and
     * pages split with a renumbering through the temporary number (after
     * which SQLite's own cache would have walked) */
    CHECK(skipped1 - skipped0 >= 300);
    CHECK(ren1 - ren0 >= 50);
    CHECK_EQ_INT(passed1 - passed0, 0);
    CHECK(matches_model(g_db));
}

static void growth_rolled_back_leaves_no_page_behind(void)
{
    CHECK(setup());
    uint64_t passed0, skipped0, passed1, skipped1, ren0, ren1;
    oms_sqlite_pcache_counts(&passed0, &skipped0, &ren0);
    for (int round = 0; round < 3; round++) {
        CHECK(t_sqlite_exec(g_db, "BEGIN") == SQLITE_OK);
        CHECK(insert_rows(g_db, 3000, false)); /* hundreds of new pages, splits among them */
        CHECK(t_sqlite_exec(g_db, "ROLLBACK") == SQLITE_OK);
        CHECK(matches_model(g_db));
        /* the same page numbers again, with other contents */
        CHECK(commit_rows(g_db, 1000));
        CHECK(matches_model(g_db));
    }
    oms_sqlite_pcache_counts(&passed1, &skipped1, &ren1);
    CHECK(passed1 > passed0); /* a rollback's truncation reaches SQLite's cache */
}

static void growth_rolled_back_to_a_savepoint_leaves_no_page_behind(void)
{
    CHECK(setup());
    for (int round = 0; round < 3; round++) {
        CHECK(t_sqlite_exec(g_db, "BEGIN") == SQLITE_OK);
        CHECK(insert_rows(g_db, 200, true));
        CHECK(t_sqlite_exec(g_db, "SAVEPOINT member") == SQLITE_OK);
        CHECK(insert_rows(g_db, 3000, false));
        CHECK(t_sqlite_exec(g_db, "ROLLBACK TO member") == SQLITE_OK);
        CHECK(t_sqlite_exec(g_db, "RELEASE member") == SQLITE_OK);
        CHECK(insert_rows(g_db, 500, true));
        CHECK(t_sqlite_exec(g_db, "COMMIT") == SQLITE_OK);
        CHECK(matches_model(g_db));
    }
}

static void a_vacuum_that_shrinks_the_file_then_growth(void)
{
    CHECK(setup());
    /* delete four rows in five, then VACUUM: the file gets shorter */
    sqlite3_stmt *st = NULL;
    CHECK(t_sqlite_exec(g_db, "BEGIN") == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(g_db, "DELETE FROM t WHERE k = ?", -1, &st, NULL) == SQLITE_OK);
    for (int i = 0; i < g_nmodel; i++) {
        if (!g_model[i].present || i % 5 == 0)
            continue;
        sqlite3_bind_text(st, 1, g_model[i].key, -1, SQLITE_STATIC);
        CHECK(sqlite3_step(st) == SQLITE_DONE);
        sqlite3_reset(st);
        g_model[i].present = 0;
    }
    sqlite3_finalize(st);
    CHECK(t_sqlite_exec(g_db, "COMMIT") == SQLITE_OK);
    CHECK(t_sqlite_exec(g_db, "VACUUM") == SQLITE_OK);
    CHECK(matches_model(g_db));
    for (int i = 0; i < 20; i++) {
        CHECK(commit_rows(g_db, 100));
    }
    CHECK(matches_model(g_db));
}

static void another_connections_commits_are_read(void)
{
    CHECK(setup());
    sqlite3 *other = open_db();
    CHECK(other != NULL);
    CHECK(matches_model(g_db)); /* this connection's cache is warm */
    for (int i = 0; i < 10 && other; i++) {
        CHECK(commit_rows(other, 300));
        CHECK(matches_model(g_db));
        CHECK(commit_rows(g_db, 100));
        CHECK(matches_model(other));
    }
    sqlite3_close(other);
}

int main(void)
{
    /* before SQLite initialises: the wrapper, and its methods to call */
    g_installed = oms_sqlite_pcache_install() && sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &g_methods) == SQLITE_OK &&
                  sqlite3_initialize() == SQLITE_OK;
    static const t_case cases[] = {
        T(a_page_at_the_temporary_number_is_truncated),
        T(the_walk_is_skipped_when_nothing_is_past_the_end),
        T(growth_rolled_back_leaves_no_page_behind),
        T(growth_rolled_back_to_a_savepoint_leaves_no_page_behind),
        T(a_vacuum_that_shrinks_the_file_then_growth),
        T(another_connections_commits_are_read),
    };
    int rc = T_RUN("sqlite_pcache", cases);
    sqlite3_close(g_db);
    t_sqlite_remove(g_file, g_dir);
    return rc;
}
