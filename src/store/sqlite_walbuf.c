#include "store/sqlite_walbuf.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A log's gathered writes are at most this many bytes (31 frames of 4 KiB
 * pages); a larger transaction writes its frames in runs of this size.
 * The unix VFS passes at most 17 bits of a write's length to pwrite (it
 * masks the count, made for page-sized writes): a longer write would be
 * cut short and fail as a full disk (tests/unit/test_sqlite_walbuf.c). */
#define GATHER_MAX 0x1ffff

typedef struct {
    sqlite3_file base;  /* pMethods = &g_log_methods */
    sqlite3_file *real; /* the unix VFS's file, in the same allocation */
    bool gather;        /* false: every write goes straight to the file */
    unsigned char *buf; /* allocated at the first write, kept until close */
    size_t len;
    sqlite3_int64 at; /* the file offset of buf[0] */
} log_file;

/* the real file follows the wrapper, aligned as SQLite aligns its own */
#define REAL_OFFSET ((sizeof(log_file) + 15) & ~(size_t)15)

static sqlite3_vfs *g_real;
static sqlite3_vfs g_vfs;
static sqlite3_io_methods g_log_methods;
static const char *g_name;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t g_asked, g_written;

static int flush(log_file *f)
{
    if (f->len == 0)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->at);
    atomic_fetch_add_explicit(&g_written, 1, memory_order_relaxed);
    f->len = 0;
    return rc;
}

static int log_write(sqlite3_file *p, const void *data, int n, sqlite3_int64 off)
{
    log_file *f = (log_file *)p;
    atomic_fetch_add_explicit(&g_asked, 1, memory_order_relaxed);
    if (!f->gather) {
        atomic_fetch_add_explicit(&g_written, 1, memory_order_relaxed);
        return f->real->pMethods->xWrite(f->real, data, n, off);
    }
    bool continues = f->len > 0 && off == f->at + (sqlite3_int64)f->len;
    if (!(continues && f->len + (size_t)n <= GATHER_MAX)) {
        /* anything else first reaches the file in the order it was asked */
        int rc = flush(f);
        if (rc != SQLITE_OK)
            return rc;
        if ((size_t)n > GATHER_MAX || (!f->buf && !(f->buf = malloc(GATHER_MAX)))) {
            atomic_fetch_add_explicit(&g_written, 1, memory_order_relaxed);
            return f->real->pMethods->xWrite(f->real, data, n, off);
        }
        f->at = off;
    }
    memcpy(f->buf + f->len, data, (size_t)n);
    f->len += (size_t)n;
    return SQLITE_OK;
}

static int log_close(sqlite3_file *p)
{
    log_file *f = (log_file *)p;
    int rc = flush(f);
    int rc2 = f->real->pMethods->xClose(f->real);
    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int log_read(sqlite3_file *p, void *out, int n, sqlite3_int64 off)
{
    log_file *f = (log_file *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, n, off);
}

static int log_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    log_file *f = (log_file *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int log_sync(sqlite3_file *p, int flags)
{
    log_file *f = (log_file *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int log_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
    log_file *f = (log_file *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int log_lock(sqlite3_file *p, int level)
{
    log_file *f = (log_file *)p;
    return f->real->pMethods->xLock(f->real, level);
}

static int log_unlock(sqlite3_file *p, int level)
{
    log_file *f = (log_file *)p;
    return f->real->pMethods->xUnlock(f->real, level);
}

static int log_check_reserved(sqlite3_file *p, int *out)
{
    log_file *f = (log_file *)p;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int log_file_control(sqlite3_file *p, int op, void *arg)
{
    log_file *f = (log_file *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int log_sector_size(sqlite3_file *p)
{
    log_file *f = (log_file *)p;
    return f->real->pMethods->xSectorSize(f->real);
}

static int log_device_characteristics(sqlite3_file *p)
{
    log_file *f = (log_file *)p;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int log_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *p, int flags, int *out_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL) || !name)
        return g_real->xOpen(g_real, name, p, flags, out_flags); /* the unix VFS's file, as it is */
    log_file *f = (log_file *)p;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)((char *)p + REAL_OFFSET);
    int rc = g_real->xOpen(g_real, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        /* SQLite closes a file whose xOpen failed only if it has methods */
        if (f->real->pMethods)
            f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL;
        return rc;
    }
    /* Without power-safe overwrite SQLite pads a commit to the sector's
     * end and writes the rest of the frame that crosses it after the
     * log's sync, before publishing the frame: a write that must not
     * wait. SQLite asks the database's file; the log's own file does not
     * see the database URI's psow=0, which the log's name still carries. */
    f->gather = (f->real->pMethods->xDeviceCharacteristics(f->real) & SQLITE_IOCAP_POWERSAFE_OVERWRITE) != 0 &&
                sqlite3_uri_boolean(name, "psow", 1);
    f->base.pMethods = &g_log_methods;
    return SQLITE_OK;
}

static void setup(void)
{
    sqlite3_vfs *real = sqlite3_vfs_find("unix");
    if (!real || real->iVersion < 1)
        return;
    g_real = real;
    /* Only methods a log uses at version 1; the log has no shared memory
     * and no memory map, which SQLite asks of a file only through a higher
     * version. */
    g_log_methods = (sqlite3_io_methods){
        .iVersion = 1,
        .xClose = log_close,
        .xRead = log_read,
        .xWrite = log_write,
        .xTruncate = log_truncate,
        .xSync = log_sync,
        .xFileSize = log_file_size,
        .xLock = log_lock,
        .xUnlock = log_unlock,
        .xCheckReservedLock = log_check_reserved,
        .xFileControl = log_file_control,
        .xSectorSize = log_sector_size,
        .xDeviceCharacteristics = log_device_characteristics,
    };
    g_vfs = *real; /* every other call is the unix VFS's, with its own data */
    g_vfs.pNext = NULL;
    g_vfs.zName = "oms-walbuf";
    g_vfs.szOsFile = (int)REAL_OFFSET + real->szOsFile;
    g_vfs.xOpen = log_open;
    if (sqlite3_vfs_register(&g_vfs, 0) == SQLITE_OK)
        g_name = g_vfs.zName;
}

const char *oms_sqlite_walbuf_vfs(void)
{
    pthread_once(&g_once, setup);
    return g_name;
}

void oms_sqlite_walbuf_counts(uint64_t *asked, uint64_t *written)
{
    if (asked)
        *asked = atomic_load(&g_asked);
    if (written)
        *written = atomic_load(&g_written);
}
