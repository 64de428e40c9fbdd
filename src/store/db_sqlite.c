/* SQLite backend: WAL, synchronous=FULL (a commit is on disk before it is
 * acknowledged), foreign keys on, a busy timeout for the single writer (the
 * deadline of a write: past it the write fails with OMS_ETIMEOUT).
 * Prepared statements are cached per connection, keyed by the SQL text. */
#include <errno.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/db_driver.h"
#include "store/sqlite_checkpointer.h"
#include "store/sqlite_pcache.h"
#include "store/sqlite_walbuf.h"
#include "util/alloc.h"
#include "util/hash.h"

#define STMT_CACHE 128

typedef struct {
    char *key; /* the SQL text */
    sqlite3_stmt *stmt;
} cached_stmt;

typedef struct {
    sqlite3 *db;
    oms_sqlite_ckpt *ckpt; /* its file's background checkpointer, or NULL */
    int busy_ms, configured_busy_ms;
    const volatile unsigned char *wal_index; /* for sqlite_change_token; NULL: none */
    cached_stmt cache[STMT_CACHE];
} sqlite_conn;

/* "No deadline" for the write lock (migrations waiting for another
 * process's): a minute, or the configured timeout when longer, so that a
 * start-up behind a stuck writer still ends. */
#define UNBOUNDED_BUSY_MS (60 * 1000)

static int map_error(sqlite_conn *c, int rc, oms_error *err)
{
    return oms_db_sqlite_error(rc, sqlite3_extended_errcode(c->db), sqlite3_system_errno(c->db),
                               sqlite3_errmsg(c->db), c->busy_ms, err);
}

/* mkdir -p of the directory holding the database file, private to us. */
static void make_parent_dirs(const char *path)
{
    char *p = oms_xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(p, 0700);
        *s = '/';
    }
    free(p);
}

/* oms_unhex(text): the bytes a hex text spells (SQLite 3.41's unhex(), for
 * the versions before it): binary columns (tree_nodes) travel as hex
 * through a driver that binds text. NULL stays NULL; malformed hex fails. */
static int unhex_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                            : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

static void sql_unhex(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const unsigned char *in = sqlite3_value_text(argv[0]);
    int n = sqlite3_value_bytes(argv[0]);
    if (!in || n % 2) {
        sqlite3_result_error(ctx, "oms_unhex: not a hex text", -1);
        return;
    }
    unsigned char *out = sqlite3_malloc(n / 2 + 1);
    if (!out) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    for (int i = 0; i < n / 2; i++) {
        int hi = unhex_digit(in[2 * i]), lo = unhex_digit(in[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            sqlite3_free(out);
            sqlite3_result_error(ctx, "oms_unhex: not a hex text", -1);
            return;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    sqlite3_result_blob(ctx, out, n / 2, sqlite3_free);
}

/* The first page of the WAL index (`<file>-shm`) as this connection has
 * it mapped, for sqlite_change_token: a database in WAL mode with normal
 * locking, after a read of this connection mapped it; NULL otherwise (an
 * in-memory database, another journal mode: then there is no token, and
 * callers read the database every time).
 *
 * Taken through the connection's own file (SQLITE_FCNTL_FILE_POINTER and
 * the VFS's xShmMap, which returns the mapping SQLite already holds), not
 * by opening `-shm` ourselves: closing any descriptor of a file drops every
 * POSIX lock the process holds on it, SQLite's included, after which
 * another process would think itself the file's only user and reset the
 * index under our mapping. The mapping lives as long as the connection
 * (SQLite unmaps it when the process's last connection to the file
 * closes), and while it lives the connection's lock keeps the file from
 * being replaced. */
#define WAL_INDEX_PAGE 32768

static const volatile unsigned char *map_wal_index(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    bool wal = false, normal = false, read = false;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        wal = sqlite3_column_text(st, 0) && strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA locking_mode", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        normal = sqlite3_column_text(st, 0) && strcmp((const char *)sqlite3_column_text(st, 0), "normal") == 0;
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) == SQLITE_OK)
        read = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    sqlite3_file *f = NULL;
    if (!wal || !normal || !read || sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK ||
        !f || !f->pMethods || f->pMethods->iVersion < 2 || !f->pMethods->xShmMap)
        return NULL;
    volatile void *page = NULL;
    if (f->pMethods->xShmMap(f, 0, WAL_INDEX_PAGE, 0, &page) != SQLITE_OK)
        return NULL;
    return page;
}

static int sqlite_connect(void **out, const char *dsn, const oms_db_opts *opts, oms_error *err)
{
    int busy_timeout_ms = opts->busy_timeout_ms;
    make_parent_dirs(dsn);
    /* before SQLite initialises, at the first open (sqlite_pcache.h) */
    oms_sqlite_pcache_install();
    sqlite3 *db = NULL;
    /* the log's frames in one write per commit (sqlite_walbuf.h); it
     * relies on synchronous=FULL, set below on every connection */
    int rc = sqlite3_open_v2(dsn, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             oms_sqlite_walbuf_vfs());
    if (rc != SQLITE_OK) {
        oms_err_set(err, OMS_EDB, "cannot open SQLite database %s: %s", dsn,
                    db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return OMS_EDB;
    }
    sqlite3_busy_timeout(db, busy_timeout_ms);
    char *msg = NULL;
    /* Switching a new database to WAL takes its lock without going through
     * the busy handler: when several processes open a fresh file at once
     * (concurrent `oms migrate`), retry for as long as a writer would wait. */
    for (int waited = 0;; waited += 10) {
        /* temp_store=MEMORY: a savepoint's sub-journal (group commit runs
         * each write in one) and the statement journals of a write
         * transaction stay in memory instead of spilling past 64 KiB to a
         * temporary file (232 KB of writes per commit at 10,000 types). */
        rc = sqlite3_exec(db,
                          "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                          "PRAGMA temp_store=MEMORY;",
                          NULL, NULL, &msg);
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || waited >= busy_timeout_ms)
            break;
        sqlite3_free(msg);
        msg = NULL;
        usleep(10 * 1000);
    }
    if (rc != SQLITE_OK) {
        oms_err_set(err, OMS_EDB, "cannot configure SQLite database: %s", msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(db);
        return OMS_EDB;
    }
    chmod(dsn, 0600);
    if (opts->mmap_mb > 0) {
        /* docs/storage.md "Reading the file through a memory map"; SQLite
         * caps the size at its build's limit (2 GiB less 64 KiB here) */
        sqlite3_int64 bytes = (sqlite3_int64)opts->mmap_mb << 20;
        sqlite3_file_control(db, "main", SQLITE_FCNTL_MMAP_SIZE, &bytes);
    }
    /* docs/storage.md "The WAL (SQLite)": a hot page (an index's upper
     * levels, a table's tail) written by many commits between checkpoints
     * is copied once; the copy runs on a thread of its own */
    int pages = opts->checkpoint_pages > 0 ? opts->checkpoint_pages : 1000;
    oms_sqlite_ckpt *ckpt = oms_sqlite_ckpt_attach(db, dsn, pages);
    if (!ckpt)
        sqlite3_wal_autocheckpoint(db, pages);
    sqlite3_create_function(db, "oms_unhex", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_unhex, NULL, NULL);
    sqlite_conn *c = oms_xcalloc(1, sizeof *c);
    c->db = db;
    c->ckpt = ckpt;
    c->wal_index = map_wal_index(db);
    c->busy_ms = c->configured_busy_ms = busy_timeout_ms;
    *out = c;
    return OMS_OK;
}

static void sqlite_deadline(void *p, int ms)
{
    sqlite_conn *c = p;
    c->busy_ms = ms > 0    ? ms
                 : ms == 0 ? (c->configured_busy_ms > UNBOUNDED_BUSY_MS ? c->configured_busy_ms : UNBOUNDED_BUSY_MS)
                           : c->configured_busy_ms;
    sqlite3_busy_timeout(c->db, c->busy_ms);
}

/* A transaction that wrote more pages than this (a bulk load: 500 types
 * write thousands) leaves the writer handle's cache empty: its pages are
 * of little use to the small writes that follow, and the cache would keep
 * them resident up to its bound (OMS_SQLITE_WRITER_CACHE_MB). A group of
 * sixteen one-resource commits writes a few hundred. */
#define BULK_WRITE_PAGES 2000

static void sqlite_settle(void *p)
{
    sqlite_conn *c = p;
    int written = 0, high = 0;
    sqlite3_db_status(c->db, SQLITE_DBSTATUS_CACHE_WRITE, &written, &high, 1);
    if (written > BULK_WRITE_PAGES)
        sqlite3_db_release_memory(c->db);
}

/* The WAL-index header (SQLite's "walformat" document: 48 bytes, kept
 * twice at the start of `<file>-shm`). Every commit, by any connection of
 * any process, rewrites it before the commit returns: the frame count
 * grows, or the log restarted with a new salt, and the checksums change.
 * Readers take it when both copies agree, as SQLite's own readers do (a
 * writer updates the second copy first, the reader reads the first
 * first); a torn or uninitialised header
 * gives no token, and the caller reads the database. */
static bool sqlite_change_token(void *p, unsigned char out[OMS_DB_CHANGE_TOKEN])
{
    sqlite_conn *c = p;
    unsigned char first[OMS_DB_CHANGE_TOKEN], second[OMS_DB_CHANGE_TOKEN];
    if (!c->wal_index)
        return false;
    for (int i = 0; i < OMS_DB_CHANGE_TOKEN; i++)
        first[i] = c->wal_index[i];
    atomic_thread_fence(memory_order_seq_cst); /* as SQLite's walShmBarrier */
    for (int i = 0; i < OMS_DB_CHANGE_TOKEN; i++)
        second[i] = c->wal_index[OMS_DB_CHANGE_TOKEN + i];
    if (memcmp(first, second, sizeof first) != 0 || first[12] != 1 /* isInit */)
        return false;
    memcpy(out, first, sizeof first);
    return true;
}

static int sqlite_state(void *p)
{
    (void)p;
    return 0; /* in-process: there is no connection to lose */
}

static void sqlite_disconnect(void *p)
{
    sqlite_conn *c = p;
    if (!c)
        return;
    for (int i = 0; i < STMT_CACHE; i++) {
        sqlite3_finalize(c->cache[i].stmt);
        free(c->cache[i].key);
    }
    sqlite3_close(c->db);
    oms_sqlite_ckpt_detach(c->ckpt); /* after the close: its hook is gone */
    free(c);
}

/* $1 -> ?1, outside string literals. */
static char *convert_placeholders(const char *sql)
{
    size_t n = strlen(sql);
    char *out = oms_xmalloc(n + 1);
    bool in_str = false;
    for (size_t i = 0; i <= n; i++) {
        char ch = sql[i];
        if (ch == '\'')
            in_str = !in_str;
        out[i] = (!in_str && ch == '$' && sql[i + 1] >= '0' && sql[i + 1] <= '9') ? '?' : ch;
    }
    return out;
}


/* Cached by the statement's text. *temp is set when the cache is full and
 * the statement must be finalized after use. */
static int prepare(sqlite_conn *c, const char *sql, sqlite3_stmt **out, bool *temp, oms_error *err)
{
    *temp = false;
    size_t h = (size_t)(oms_fnv1a_str(sql) % STMT_CACHE);
    cached_stmt *slot = NULL;
    for (size_t k = 0; k < STMT_CACHE; k++) {
        cached_stmt *e = &c->cache[(h + k) % STMT_CACHE];
        if (e->key && strcmp(e->key, sql) == 0) {
            *out = e->stmt;
            oms_db_count_statement(OMS_DB_STMT_HIT);
            return OMS_OK;
        }
        if (!e->key) {
            slot = e;
            break;
        }
    }
    char *conv = convert_placeholders(sql);
    int rc = sqlite3_prepare_v3(c->db, conv, -1, slot ? SQLITE_PREPARE_PERSISTENT : 0, out, NULL);
    free(conv);
    if (rc != SQLITE_OK)
        return map_error(c, rc, err);
    if (slot) {
        slot->key = oms_xstrdup(sql);
        slot->stmt = *out;
        oms_db_count_statement(OMS_DB_STMT_PREPARED);
    } else {
        *temp = true;
        oms_db_count_statement(OMS_DB_STMT_UNCACHED);
    }
    return OMS_OK;
}

static int bind_all(sqlite3_stmt *st, const oms_dbparam *p, int n)
{
    for (int i = 0; i < n; i++) {
        int rc;
        switch (p[i].type) {
        case OMS_DBP_TEXT: rc = sqlite3_bind_text(st, i + 1, p[i].s, -1, SQLITE_STATIC); break;
        case OMS_DBP_INT: rc = sqlite3_bind_int64(st, i + 1, p[i].i); break;
        default: rc = sqlite3_bind_null(st, i + 1); break;
        }
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

static void finish(sqlite3_stmt *st, bool temp)
{
    if (temp) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

typedef struct {
    char **cells;
    size_t n, cap;
} cellbuf;

static int sqlite_exec(void *p, const char *sql, const oms_dbparam *params, int n, oms_dbres **out,
                       oms_error *err)
{
    sqlite_conn *c = p;
    sqlite3_stmt *st = NULL;
    bool temp;
    int rc = prepare(c, sql, &st, &temp, err);
    if (rc)
        return rc;
    if ((rc = bind_all(st, params, n)) != SQLITE_OK) {
        rc = map_error(c, rc, err);
        finish(st, temp);
        return rc;
    }
    size_t ncols = (size_t)sqlite3_column_count(st), nrows = 0;
    cellbuf buf = {0};
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        nrows++;
        if (!out)
            continue;
        if (buf.n + ncols > buf.cap) {
            buf.cap = buf.cap ? buf.cap * 2 : 16 + ncols;
            while (buf.cap < buf.n + ncols)
                buf.cap *= 2;
            buf.cells = oms_xrealloc(buf.cells, buf.cap * sizeof *buf.cells);
        }
        for (size_t i = 0; i < ncols; i++) {
            const unsigned char *t = sqlite3_column_text(st, (int)i);
            buf.cells[buf.n++] = t ? oms_xstrdup((const char *)t) : NULL;
        }
    }
    if (rc != SQLITE_DONE) {
        int r = map_error(c, rc, err);
        finish(st, temp);
        for (size_t i = 0; i < buf.n; i++)
            free(buf.cells[i]);
        free(buf.cells);
        return r;
    }
    if (out) {
        oms_dbres *r = oms_dbres_new(0, ncols);
        r->nrows = nrows;
        r->cells = buf.cells;
        r->changes = sqlite3_changes64(c->db);
        *out = r;
    }
    finish(st, temp);
    return OMS_OK;
}

static int sqlite_exec_script(void *p, const char *sql, oms_error *err)
{
    sqlite_conn *c = p;
    char *msg = NULL;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        rc = oms_db_sqlite_error(rc, sqlite3_extended_errcode(c->db), sqlite3_system_errno(c->db), msg,
                                 c->busy_ms, err);
        sqlite3_free(msg);
        return rc;
    }
    return OMS_OK;
}

static int sqlite_begin(void *p, bool write, oms_error *err)
{
    return sqlite_exec(p, write ? "BEGIN IMMEDIATE" : "BEGIN", NULL, 0, NULL, err);
}

const oms_db_driver oms_db_sqlite_driver = {
    .name = "sqlite",
    .connect = sqlite_connect,
    .disconnect = sqlite_disconnect,
    .exec = sqlite_exec,
    .exec_script = sqlite_exec_script,
    .begin = sqlite_begin,
    .alive = NULL,
    .state = sqlite_state,
    .deadline = sqlite_deadline,
    .settle = sqlite_settle,
    .change_token = sqlite_change_token,
};
