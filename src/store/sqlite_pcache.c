#include "store/sqlite_pcache.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>

/* SQLite's lock byte offset (PENDING_BYTE in its os.h, 1 GiB unless a test
 * build moves it); balance_nonroot() in btree.c renumbers through
 * PENDING_BYTE / page size + 1. Were it elsewhere, that page would count
 * as any other and every truncation would be passed on, as without this. */
#define SQLITE_PENDING_BYTE 0x40000000u

typedef struct {
    sqlite3_pcache *inner;
    unsigned temp_key; /* the renumbering's temporary page number */
    unsigned at_temp;  /* pages renumbered to it and not yet away */
    /* Every page the cache holds, but those at_temp counts, has a number
     * of at most max_key: pages enter the cache only by xFetch with create
     * and by xRekey, and both raise it; only a truncation lowers it. */
    unsigned max_key;
} wrapped;

static sqlite3_pcache_methods2 g_inner;
static _Atomic uint64_t g_passed, g_skipped, g_renumbered;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_installed;

static int w_init(void *arg)
{
    (void)arg;
    return g_inner.xInit ? g_inner.xInit(g_inner.pArg) : SQLITE_OK;
}

static void w_shutdown(void *arg)
{
    (void)arg;
    if (g_inner.xShutdown)
        g_inner.xShutdown(g_inner.pArg);
}

static sqlite3_pcache *w_create(int page_size, int extra, int purgeable)
{
    wrapped *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->inner = g_inner.xCreate(page_size, extra, purgeable);
    if (!w->inner) {
        free(w);
        return NULL;
    }
    w->temp_key = page_size > 0 ? SQLITE_PENDING_BYTE / (unsigned)page_size + 1 : 0;
    return (sqlite3_pcache *)w;
}

static void w_cachesize(sqlite3_pcache *p, int n) { g_inner.xCachesize(((wrapped *)p)->inner, n); }

static int w_pagecount(sqlite3_pcache *p) { return g_inner.xPagecount(((wrapped *)p)->inner); }

static sqlite3_pcache_page *w_fetch(sqlite3_pcache *p, unsigned key, int create)
{
    wrapped *w = (wrapped *)p;
    sqlite3_pcache_page *pg = g_inner.xFetch(w->inner, key, create);
    if (pg && create && key > w->max_key)
        w->max_key = key;
    return pg;
}

static void w_unpin(sqlite3_pcache *p, sqlite3_pcache_page *pg, int discard)
{
    g_inner.xUnpin(((wrapped *)p)->inner, pg, discard);
}

/* The pager drops any page at new_key before it renumbers (sqlite3PcacheMove),
 * so at most one page is ever at the temporary number. A page that got
 * there by xFetch counts in max_key instead, and moving it away leaves
 * at_temp as it was (never below zero: at worst a truncation is passed on
 * that need not be). */
static void w_rekey(sqlite3_pcache *p, sqlite3_pcache_page *pg, unsigned old_key, unsigned new_key)
{
    wrapped *w = (wrapped *)p;
    g_inner.xRekey(w->inner, pg, old_key, new_key);
    if (old_key == w->temp_key && w->at_temp > 0)
        w->at_temp--;
    if (new_key == w->temp_key) {
        w->at_temp++;
        atomic_fetch_add_explicit(&g_renumbered, 1, memory_order_relaxed);
    } else if (new_key > w->max_key) {
        w->max_key = new_key;
    }
}

static void w_truncate(sqlite3_pcache *p, unsigned limit)
{
    wrapped *w = (wrapped *)p;
    if (w->at_temp == 0 && limit > w->max_key) { /* no page at or past limit */
        atomic_fetch_add_explicit(&g_skipped, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&g_passed, 1, memory_order_relaxed);
    g_inner.xTruncate(w->inner, limit);
    if (limit > 0 && w->max_key >= limit)
        w->max_key = limit - 1;
    if (w->temp_key >= limit)
        w->at_temp = 0;
}

static void w_destroy(sqlite3_pcache *p)
{
    wrapped *w = (wrapped *)p;
    g_inner.xDestroy(w->inner);
    free(w);
}

static void w_shrink(sqlite3_pcache *p) { g_inner.xShrink(((wrapped *)p)->inner); }

static void install(void)
{
    static sqlite3_pcache_methods2 wrapper;
    if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &g_inner) != SQLITE_OK || g_inner.iVersion < 1 || !g_inner.xCreate ||
        !g_inner.xTruncate || !g_inner.xRekey || !g_inner.xShrink)
        return;
    wrapper = (sqlite3_pcache_methods2){
        .iVersion = 1,
        .pArg = NULL,
        .xInit = w_init,
        .xShutdown = w_shutdown,
        .xCreate = w_create,
        .xCachesize = w_cachesize,
        .xPagecount = w_pagecount,
        .xFetch = w_fetch,
        .xUnpin = w_unpin,
        .xRekey = w_rekey,
        .xTruncate = w_truncate,
        .xDestroy = w_destroy,
        .xShrink = w_shrink,
    };
    g_installed = sqlite3_config(SQLITE_CONFIG_PCACHE2, &wrapper) == SQLITE_OK;
}

bool oms_sqlite_pcache_install(void)
{
    pthread_once(&g_once, install);
    return g_installed;
}

void oms_sqlite_pcache_counts(uint64_t *passed, uint64_t *skipped, uint64_t *renumbered)
{
    if (passed)
        *passed = atomic_load(&g_passed);
    if (skipped)
        *skipped = atomic_load(&g_skipped);
    if (renumbered)
        *renumbered = atomic_load(&g_renumbered);
}
