/* Commit rows in memory (see commit_rows.h). */
#include "vcs/commit_rows.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/hash.h"
#include "util/time.h"

#define SHARDS 16
#define PER_SHARD 1024 /* 16,384 commits in all: a few MB with their messages */
#define BUCKETS 2048   /* per shard: chains of about one */

typedef struct {
    char id[65], tree[65], first_parent[65]; /* first_parent "" at a root */
    char *parents_json, *author, *message, *issue_keys_json;
    int64_t time_ms;
    int next; /* the bucket's chain: slot + 1, 0 at its end */
    int bucket;
    bool used;
} slot;

typedef struct {
    pthread_mutex_t mu;
    int head[BUCKETS]; /* slot + 1, 0: empty */
    slot s[PER_SHARD];
    int hand; /* the slot the next row takes: the oldest */
} shard;

static shard g_shards[SHARDS];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static atomic_ulong g_hits, g_misses;

static void init_shards(void)
{
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&g_shards[i].mu, NULL);
}

static uint64_t hash_of(const char *id) { return oms_fnv1a_str(id); }

static shard *shard_of(uint64_t h) { return &g_shards[h % SHARDS]; }
static int bucket_of(uint64_t h) { return (int)((h / SHARDS) % BUCKETS); }

static slot *find(shard *sh, int bucket, const char *id)
{
    for (int k = sh->head[bucket]; k; k = sh->s[k - 1].next)
        if (strcmp(sh->s[k - 1].id, id) == 0)
            return &sh->s[k - 1];
    return NULL;
}

json_t *oms_commit_row_json(const oms_commit_row *row)
{
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, row->time_ms);
    json_t *parents = row->parents_json ? json_loads(row->parents_json, 0, NULL) : NULL;
    json_t *keys = row->issue_keys_json ? json_loads(row->issue_keys_json, 0, NULL) : NULL;
    return json_pack("{s:s,s:s,s:o,s:s,s:s,s:s,s:o}", "id", row->id, "tree", row->tree, "parents",
                     parents ? parents : json_array(), "author", row->author, "time", t, "message", row->message,
                     "issue_keys", keys ? keys : json_array());
}

json_t *oms_commit_rows_item(const char *id, char first_parent[65])
{
    pthread_once(&g_once, init_shards);
    uint64_t h = hash_of(id);
    shard *sh = shard_of(h);
    json_t *item = NULL;
    pthread_mutex_lock(&sh->mu);
    slot *e = find(sh, bucket_of(h), id);
    if (e) {
        oms_commit_row row = {e->id,      e->tree,    e->first_parent, e->parents_json,
                              e->author,  e->message, e->issue_keys_json, e->time_ms};
        item = oms_commit_row_json(&row);
        memcpy(first_parent, e->first_parent, 65);
    }
    pthread_mutex_unlock(&sh->mu);
    atomic_fetch_add_explicit(item ? &g_hits : &g_misses, 1, memory_order_relaxed);
    return item;
}

static void unlink_slot(shard *sh, slot *e)
{
    int self = (int)(e - sh->s) + 1;
    for (int *p = &sh->head[e->bucket]; *p; p = &sh->s[*p - 1].next)
        if (*p == self) {
            *p = e->next;
            break;
        }
    free(e->parents_json);
    free(e->author);
    free(e->message);
    free(e->issue_keys_json);
    memset(e, 0, sizeof *e);
}

void oms_commit_rows_put(const oms_commit_row *row)
{
    /* ids and trees are 64 hex digits; anything else is not cached */
    if (!row->id || !row->tree || strlen(row->id) != 64 || strlen(row->tree) > 64 ||
        (row->first_parent && strlen(row->first_parent) != 64))
        return;
    pthread_once(&g_once, init_shards);
    uint64_t h = hash_of(row->id);
    shard *sh = shard_of(h);
    int bucket = bucket_of(h);
    pthread_mutex_lock(&sh->mu);
    if (!find(sh, bucket, row->id)) {
        slot *e = &sh->s[sh->hand];
        sh->hand = (sh->hand + 1) % PER_SHARD;
        if (e->used)
            unlink_slot(sh, e);
        snprintf(e->id, sizeof e->id, "%s", row->id);
        snprintf(e->tree, sizeof e->tree, "%s", row->tree);
        snprintf(e->first_parent, sizeof e->first_parent, "%s", row->first_parent ? row->first_parent : "");
        e->parents_json = row->parents_json ? oms_xstrdup(row->parents_json) : NULL;
        e->author = oms_xstrdup(row->author ? row->author : "");
        e->message = oms_xstrdup(row->message ? row->message : "");
        e->issue_keys_json = row->issue_keys_json ? oms_xstrdup(row->issue_keys_json) : NULL;
        e->time_ms = row->time_ms;
        e->bucket = bucket;
        e->next = sh->head[bucket];
        sh->head[bucket] = (int)(e - sh->s) + 1;
        e->used = true;
    }
    pthread_mutex_unlock(&sh->mu);
}

void oms_commit_rows_counts(unsigned long *hits, unsigned long *misses)
{
    *hits = atomic_load_explicit(&g_hits, memory_order_relaxed);
    *misses = atomic_load_explicit(&g_misses, memory_order_relaxed);
}

void oms_commit_rows_clear(void)
{
    pthread_once(&g_once, init_shards);
    for (int i = 0; i < SHARDS; i++) {
        shard *sh = &g_shards[i];
        pthread_mutex_lock(&sh->mu);
        for (int k = 0; k < PER_SHARD; k++)
            if (sh->s[k].used)
                unlink_slot(sh, &sh->s[k]);
        sh->hand = 0;
        pthread_mutex_unlock(&sh->mu);
    }
}
