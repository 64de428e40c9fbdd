/* The freshness read on SQLite (src/store/freshness.c): a thread's repeat
 * read of a branch is answered from its memo only while the database's
 * change token (the WAL-index header) is unchanged. A commit by another
 * process, by another connection of this process, and a commit after the
 * log restarted (a checkpoint that truncated it) must each be seen by the
 * next read of the same thread; a repeat read with no commit between reads
 * nothing. */
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/freshness.h"
#include "store/store.h"
#include "t.h"
#include "t_store.h"

static char g_dir[64];
static char g_file[96];
static oms_store *g_store;
static oms_dbconn *g_c;

static bool exec_on(oms_dbconn *c, const char *q)
{
    oms_error err;
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c, q, NULL, 0, &r, &err);
    oms_dbres_free(r);
    if (rc)
        fprintf(stderr, "  %s: %s\n", q, err.msg);
    return rc == OMS_OK;
}

static bool setup(void)
{
    if (g_store)
        return true;
    if (!t_store_open("freshness", g_dir, &g_store, &g_c))
        return false;
    snprintf(g_file, sizeof g_file, "%s/oms.db", g_dir);
    static const char *rows[] = {
        "INSERT INTO commits (id, tree, first_parent, parents, author, message, time_ms, issue_keys, generation)"
        " VALUES ('c1', 't', NULL, '[]', 'a', 'm', 0, '[]', 1), ('c2', 't', 'c1', '[\"c1\"]', 'a', 'm', 0, '[]', 2),"
        " ('c3', 't', 'c2', '[\"c2\"]', 'a', 'm', 0, '[]', 3), ('c4', 't', 'c3', '[\"c3\"]', 'a', 'm', 0, '[]', 4)",
        "UPDATE branches SET head = 'c1' WHERE name = 'main'", /* the migrations made it */
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        if (!exec_on(g_c, rows[i]))
            return false;
    return true;
}

static void teardown(void) { t_store_remove(g_dir, g_store); }

/* One freshness read of "main" on this thread; *reads: database reads it
 * made (0: answered from the memo). */
static void fresh(char head[65], int64_t *version, uint64_t *reads)
{
    uint64_t before = 0, after = 0, requests = 0;
    oms_store_fresh_counts(&before, &requests);
    oms_error err;
    int setting = 0;
    head[0] = 0;
    *version = -1;
    CHECK_EQ_INT(oms_store_fresh_version_and_head(g_c, "main", version, head, &setting, &err), OMS_OK);
    oms_store_fresh_counts(&after, &requests);
    *reads = after - before;
}

/* Runs `sql` in a child process, on a connection of its own. */
static bool commit_in_another_process(const char *sql)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        sqlite3 *db = NULL;
        int ok = sqlite3_open_v2(g_file, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
                 sqlite3_busy_timeout(db, 5000) == SQLITE_OK && sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
        sqlite3_close(db);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void a_repeat_read_with_no_commit_reads_nothing(void)
{
    CHECK(setup());
    char head[65];
    int64_t v;
    uint64_t reads;
    fresh(head, &v, &reads);
    CHECK_EQ_STR(head, "c1");
    fresh(head, &v, &reads);
    CHECK_EQ_STR(head, "c1");
    CHECK_EQ_INT(reads, 0);
}

static void a_commit_by_another_process_is_seen_by_the_next_read(void)
{
    CHECK(setup());
    char head[65];
    int64_t v0, v;
    uint64_t reads;
    fresh(head, &v0, &reads);
    CHECK(commit_in_another_process("UPDATE branches SET head = 'c2' WHERE name = 'main'"));
    fresh(head, &v, &reads);
    CHECK_EQ_STR(head, "c2");
    CHECK_EQ_INT(reads, 1);
    CHECK(commit_in_another_process("UPDATE acl_version SET version = version + 1 WHERE id = 1"));
    fresh(head, &v, &reads);
    CHECK_EQ_INT(v, v0 + 1);
    fresh(head, &v, &reads);
    CHECK_EQ_INT(reads, 0);
}

/* A thread's own connection (oms_db_conn) is another connection. */
static void *commit_on_this_threads_connection(void *arg)
{
    oms_error err;
    oms_dbconn *c = NULL;
    *(bool *)arg = oms_db_conn(g_store->db, &c, &err) == OMS_OK &&
                   exec_on(c, "UPDATE branches SET head = 'c3' WHERE name = 'main'");
    return NULL;
}

static void a_commit_on_another_connection_is_seen_by_the_next_read(void)
{
    CHECK(setup());
    char head[65];
    int64_t v;
    uint64_t reads;
    fresh(head, &v, &reads);
    pthread_t t;
    bool ok = false;
    CHECK(pthread_create(&t, NULL, commit_on_this_threads_connection, &ok) == 0);
    pthread_join(t, NULL);
    CHECK(ok);
    fresh(head, &v, &reads);
    CHECK_EQ_STR(head, "c3");
}

/* A checkpoint that truncates the log, then a commit that restarts it: the
 * header's frame count starts again from the beginning, its salt changes. */
static void a_commit_after_the_log_restarted_is_seen(void)
{
    CHECK(setup());
    char head[65];
    int64_t v;
    uint64_t reads;
    fresh(head, &v, &reads);
    CHECK(commit_in_another_process("PRAGMA wal_checkpoint(TRUNCATE)"));
    fresh(head, &v, &reads);
    CHECK_EQ_STR(head, "c3");
    CHECK(commit_in_another_process("UPDATE branches SET head = 'c4' WHERE name = 'main'"));
    fresh(head, &v, &reads);
    CHECK_EQ_STR(head, "c4");
}

static void *read_on_a_thread_that_ends(void *arg)
{
    char head[65];
    int64_t v;
    uint64_t reads;
    fresh(head, &v, &reads);
    *(bool *)arg = strcmp(head, "c4") == 0;
    return NULL; /* its connection closes with it */
}

/* SQLite's unix VFS: while a process has the WAL index open it holds a
 * read lock on this byte of `-shm` ("DMS"); a process that finds it
 * unlocked takes itself for the index's only user and resets it (it
 * truncates the file) under every other process's mapping. */
#define SHM_DMS_BYTE 128

/* Whether another process, asking, finds the DMS byte locked by us. */
static bool another_process_sees_our_lock(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        char path[128];
        snprintf(path, sizeof path, "%s-shm", g_file);
        int fd = open(path, O_RDWR);
        struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = SHM_DMS_BYTE, .l_len = 1};
        bool locked = fd >= 0 && fcntl(fd, F_GETLK, &l) == 0 && l.l_type != F_UNLCK;
        _exit(locked ? 0 : 1);
    }
    int status = 0;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A connection of this process closes while others stay open: the process
 * must keep its hold on the WAL index (a descriptor of `-shm` closed here
 * drops every lock the process has on it, SQLite's included). */
static void a_closed_connection_leaves_the_index_to_the_others(void)
{
    CHECK(setup());
    CHECK(another_process_sees_our_lock());
    pthread_t t;
    bool ok = false;
    CHECK(pthread_create(&t, NULL, read_on_a_thread_that_ends, &ok) == 0);
    pthread_join(t, NULL);
    CHECK(ok);
    CHECK(another_process_sees_our_lock());
    CHECK(exec_on(g_c, "UPDATE branches SET head = 'c1' WHERE name = 'main'"));
    char head[65];
    int64_t v;
    uint64_t reads;
    fresh(head, &v, &reads);
    CHECK_EQ_STR(head, "c1");
}

/* The version alone (routes without {branch}) from the same memo. */
static void the_version_alone_is_remembered_and_refreshed(void)
{
    CHECK(setup());
    oms_error err;
    int64_t v0 = -1, v = -1;
    uint64_t r0, r1, r2, q;
    CHECK_EQ_INT(oms_store_fresh_acl_version(g_c, &v0, &err), OMS_OK);
    oms_store_fresh_counts(&r0, &q);
    CHECK_EQ_INT(oms_store_fresh_acl_version(g_c, &v, &err), OMS_OK);
    oms_store_fresh_counts(&r1, &q);
    CHECK_EQ_INT(v, v0);
    CHECK_EQ_INT(r1, r0); /* from the memo */
    CHECK(commit_in_another_process("UPDATE acl_version SET version = version + 1 WHERE id = 1"));
    CHECK_EQ_INT(oms_store_fresh_acl_version(g_c, &v, &err), OMS_OK);
    oms_store_fresh_counts(&r2, &q);
    CHECK_EQ_INT(v, v0 + 1);
    CHECK_EQ_INT(r2, r1 + 1);
    /* a branch's read beside it keeps its own answer */
    char head[65];
    uint64_t reads;
    int64_t bv;
    fresh(head, &bv, &reads);
    CHECK_EQ_INT(bv, v0 + 1);
}

int main(void)
{
    static const t_case cases[] = {
        T(a_repeat_read_with_no_commit_reads_nothing),
        T(a_commit_by_another_process_is_seen_by_the_next_read),
        T(a_commit_on_another_connection_is_seen_by_the_next_read),
        T(a_commit_after_the_log_restarted_is_seen),
        T(a_closed_connection_leaves_the_index_to_the_others),
        T(the_version_alone_is_remembered_and_refreshed),
    };
    int rc = T_RUN("freshness", cases);
    teardown();
    return rc;
}
