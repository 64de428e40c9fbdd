/* The log's gathered writes (src/store/sqlite_walbuf.c): a commit's frames
 * reach the write-ahead log in one write, and nothing anyone reads differs
 * from SQLite's own VFS. Each case checks the database against a model of
 * what was committed, from a connection of this VFS and from one of the
 * default VFS (as the checkpointer's thread opens it), and SQLite's
 * integrity check: single commits, a transaction larger than the gathered
 * bound with a tiny cache (pages spilled to the log before the commit,
 * some written twice, which SQLite reads back to rewrite checksums), one
 * such transaction rolled back, a truncating checkpoint by another
 * connection between commits, a database opened without power-safe
 * overwrite (nothing gathered), and a process killed in the middle of a
 * transaction after committing others. */
#include <signal.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/sqlite_walbuf.h"
#include "t.h"
#include "t_sqlite.h"

static char g_dir[64];
static char g_file[128];
static int g_next_key = 1;  /* keys 1..g_next_key-1 are committed, each with value_of(key) */

static sqlite3 *open_db(const char *vfs)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(g_file, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    t_sqlite_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    sqlite3_wal_autocheckpoint(db, 0); /* checkpoints only where a case makes one */
    return db;
}

static void value_of(int key, char out[401])
{
    uint32_t x = (uint32_t)key * 2654435761u;
    for (int i = 0; i < 400; i++) {
        x = x * 1103515245u + 12345u;
        out[i] = (char)('a' + (x >> 16) % 26);
    }
    out[400] = 0;
}

/* Where key k is stored: scattered (every insert lands on another leaf),
 * and one to one (an odd multiplier modulo 2^32). */
static sqlite3_int64 scatter(int key) { return (sqlite3_int64)((uint32_t)key * 2654435761u); }

/* n new rows, keys from..from+n-1, in db's open transaction. */
static bool insert_rows(sqlite3 *db, int from, int n)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO t (k, v) VALUES (?, ?)", -1, &st, NULL) != SQLITE_OK)
        return false;
    bool ok = true;
    char v[401];
    for (int i = 0; i < n && ok; i++) {
        int key = from + i;
        value_of(key, v);
        sqlite3_bind_int64(st, 1, scatter(key));
        sqlite3_bind_text(st, 2, v, -1, SQLITE_TRANSIENT);
        ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return ok;
}

static bool commit_rows(sqlite3 *db, int n)
{
    bool ok = t_sqlite_exec(db, "BEGIN IMMEDIATE") == SQLITE_OK && insert_rows(db, g_next_key, n) &&
              t_sqlite_exec(db, "COMMIT") == SQLITE_OK;
    if (ok)
        g_next_key += n;
    return ok;
}

/* Every committed row, with its value, and nothing else. */
static bool matches_model(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT v FROM t WHERE k = ?", -1, &st, NULL) != SQLITE_OK)
        return false;
    bool ok = true;
    char v[401];
    for (int key = 1; key < g_next_key && ok; key++) {
        value_of(key, v);
        sqlite3_bind_int64(st, 1, scatter(key));
        ok = sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), v) == 0;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (ok && sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK) {
        ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == g_next_key - 1;
        sqlite3_finalize(st);
    }
    if (ok && sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
        ok = sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
        sqlite3_finalize(st);
    }
    if (!ok)
        fprintf(stderr, "  the database differs from what was committed (%d rows expected)\n", g_next_key - 1);
    return ok;
}

static bool setup(void)
{
    if (g_dir[0])
        return true;
    snprintf(g_dir, sizeof g_dir, "/tmp/oms-walbuf-XXXXXX");
    if (!mkdtemp(g_dir))
        return false;
    snprintf(g_file, sizeof g_file, "%s/t.db", g_dir);
    sqlite3 *db = open_db(oms_sqlite_walbuf_vfs());
    bool ok = db && t_sqlite_exec(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL); CREATE INDEX t_v ON t (v)") ==
                        SQLITE_OK;
    sqlite3_close(db);
    return ok;
}

static void a_commits_frames_reach_the_log_in_one_write(void)
{
    CHECK(oms_sqlite_walbuf_vfs() != NULL);
    CHECK(setup());
    sqlite3 *db = open_db(oms_sqlite_walbuf_vfs());
    CHECK(db != NULL);
    uint64_t asked0, written0, asked1, written1;
    oms_sqlite_walbuf_counts(&asked0, &written0);
    for (int i = 0; i < 50 && db; i++)
        CHECK(commit_rows(db, 3)); /* a table leaf, an index leaf, their parents */
    oms_sqlite_walbuf_counts(&asked1, &written1);
    /* each commit: a header and a page for every frame, then one write
     * (two when the log starts over and its own header goes first) */
    CHECK(asked1 - asked0 >= 50 * 4);
    CHECK(written1 - written0 <= 50 * 2);
    CHECK(matches_model(db));
    sqlite3 *plain = open_db(NULL);
    CHECK(plain != NULL && matches_model(plain));
    sqlite3_close(plain);
    sqlite3_close(db);
}

static void other_connections_read_every_commit_at_once(void)
{
    CHECK(setup());
    sqlite3 *db = open_db(oms_sqlite_walbuf_vfs()), *same = open_db(oms_sqlite_walbuf_vfs()), *plain = open_db(NULL);
    CHECK(db && same && plain);
    for (int i = 0; i < 20 && db && same && plain; i++) {
        CHECK(commit_rows(db, 7));
        CHECK(matches_model(same));
        CHECK(matches_model(plain));
        CHECK(commit_rows(same, 5)); /* and the other way round */
        CHECK(matches_model(db));
    }
    sqlite3_close(plain);
    sqlite3_close(same);
    sqlite3_close(db);
}

static void large_spilling_transactions_commit_and_roll_back_whole(void)
{
    CHECK(setup());
    sqlite3 *db = open_db(oms_sqlite_walbuf_vfs()), *plain = open_db(NULL);
    CHECK(db && plain);
    if (!db || !plain)
        return;
    /* 10 pages of cache: most of a 4,000-row transaction's pages are
     * spilled to the log before its commit, and written there again when
     * touched after */
    CHECK(t_sqlite_exec(db, "PRAGMA cache_size=10") == SQLITE_OK);
    CHECK(commit_rows(db, 4000)); /* about 2 MB of frames: some 16 times the gathered bound */
    CHECK(matches_model(plain));
    CHECK(t_sqlite_exec(db, "BEGIN IMMEDIATE") == SQLITE_OK);
    CHECK(insert_rows(db, g_next_key, 4000)); /* not counted: rolled back */
    CHECK(t_sqlite_exec(db, "ROLLBACK") == SQLITE_OK);
    CHECK(matches_model(plain));
    CHECK(matches_model(db));
    CHECK(t_sqlite_exec(db, "BEGIN IMMEDIATE") == SQLITE_OK);
    CHECK(insert_rows(db, g_next_key, 500));
    CHECK(t_sqlite_exec(db, "SAVEPOINT s") == SQLITE_OK);
    CHECK(insert_rows(db, g_next_key + 500, 2000)); /* rolled back to the savepoint */
    CHECK(t_sqlite_exec(db, "ROLLBACK TO s; RELEASE s; COMMIT") == SQLITE_OK);
    g_next_key += 500;
    CHECK(matches_model(plain));
    CHECK(matches_model(db));
    sqlite3_close(plain);
    sqlite3_close(db);
}

static void a_truncating_checkpoint_between_commits_loses_nothing(void)
{
    CHECK(setup());
    sqlite3 *db = open_db(oms_sqlite_walbuf_vfs()), *ckpt = open_db(NULL);
    CHECK(db && ckpt);
    for (int i = 0; i < 10 && db && ckpt; i++) {
        CHECK(commit_rows(db, 40));
        int log = -1, copied = -1;
        CHECK(sqlite3_wal_checkpoint_v2(ckpt, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &copied) == SQLITE_OK);
        CHECK(log == 0); /* the log was emptied: the next commit starts it over */
        CHECK(matches_model(ckpt));
    }
    CHECK(matches_model(db));
    sqlite3_close(ckpt);
    sqlite3_close(db);
}

static void without_power_safe_overwrite_every_write_goes_straight_to_the_file(void)
{
    CHECK(setup());
    /* psow=0: SQLite pads each commit to the sector's end and writes part
     * of the last frame after the log's sync; nothing may wait then */
    char uri[200];
    snprintf(uri, sizeof uri, "file:%s?psow=0", g_file);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open_v2(uri, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, oms_sqlite_walbuf_vfs()) == SQLITE_OK);
    if (!db)
        return;
    t_sqlite_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    sqlite3 *plain = open_db(NULL);
    uint64_t asked0, written0, asked1, written1;
    oms_sqlite_walbuf_counts(&asked0, &written0);
    for (int i = 0; i < 10 && plain; i++) {
        CHECK(commit_rows(db, 3));
        CHECK(matches_model(plain));
    }
    oms_sqlite_walbuf_counts(&asked1, &written1);
    CHECK(asked1 - asked0 >= 10 * 4);
    CHECK_EQ_INT(written1 - written0, asked1 - asked0);
    sqlite3_close(plain);
    sqlite3_close(db);
}

static void a_process_killed_mid_transaction_keeps_exactly_its_commits(void)
{
    CHECK(setup());
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t child = fork();
    if (child == 0) {
        close(fds[0]);
        sqlite3 *db = open_db(oms_sqlite_walbuf_vfs());
        if (!db)
            _exit(1);
        for (int i = 0; i < 30; i++) {
            if (!commit_rows(db, 9))
                _exit(1);
            int n = g_next_key; /* committed: the parent counts it */
            if (write(fds[1], &n, sizeof n) != (ssize_t)sizeof n)
                _exit(1);
        }
        t_sqlite_exec(db, "PRAGMA cache_size=10; BEGIN IMMEDIATE");
        insert_rows(db, g_next_key, 3000); /* spilled, never committed */
        int done = -1;
        if (write(fds[1], &done, sizeof done) != (ssize_t)sizeof done)
            _exit(1);
        pause(); /* killed here, the transaction open */
        _exit(0);
    }
    close(fds[1]);
    int n = 0, last = g_next_key;
    while (read(fds[0], &n, sizeof n) == (ssize_t)sizeof n && n >= 0)
        last = n;
    CHECK(n == -1); /* the child reached its open transaction */
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    close(fds[0]);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    g_next_key = last;
    sqlite3 *db = open_db(oms_sqlite_walbuf_vfs());
    CHECK(db && matches_model(db)); /* recovery: the 30 commits, not the open transaction */
    sqlite3_close(db);
}

int main(void)
{
    static const t_case cases[] = {
        T(a_commits_frames_reach_the_log_in_one_write),
        T(other_connections_read_every_commit_at_once),
        T(large_spilling_transactions_commit_and_roll_back_whole),
        T(a_truncating_checkpoint_between_commits_loses_nothing),
        T(without_power_safe_overwrite_every_write_goes_straight_to_the_file),
        T(a_process_killed_mid_transaction_keeps_exactly_its_commits),
    };
    int rc = T_RUN("sqlite_walbuf", cases);
    t_sqlite_remove(g_file, g_dir);
    return rc;
}
