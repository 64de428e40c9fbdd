/* vcs/snapshot_cache and vcs/snapshot_refs: pending states are seen only by
 * the branch-head lookup and go away on rollback; the cache stays within its
 * byte bound; the reverse-reference index follows a fork's puts and
 * removes without changing its parent's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infra/config.h"
#include "t.h"
#include "util/alloc.h"
#include "vcs/snapshot.h"
#include "vcs/snapshot_cache.h"

static oms_entry *link_to(const char *name, const char *to)
{
    char text[256];
    snprintf(text, sizeof text,
             "{\"api_name\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"cardinality\":\"many_to_one\"}", name, to, to);
    return oms_entry_new(OMS_KIND_LINK_TYPE, name, "h", text, strlen(text), "", "", 0);
}

static oms_entry *type_named(const char *name)
{
    char text[128];
    snprintf(text, sizeof text, "{\"api_name\":\"%s\",\"properties\":[],\"primary_key\":\"id\"}", name);
    return oms_entry_new(OMS_KIND_OBJECT_TYPE, name, "h", text, strlen(text), "", "", 0);
}

static oms_snapshot *sealed(oms_snapshot *s, const char *commit)
{
    oms_snapshot_seal(s, NULL, NULL);
    snprintf(s->commit, sizeof s->commit, "%s", commit);
    return s;
}

static void pending_is_for_heads_only_and_dropped_on_rollback(void)
{
    oms_snapshot *s = sealed(oms_snapshot_new_empty(), "c1");
    oms_snapshot_cache_put_pending(s);
    oms_snapshot *got = oms_snapshot_cache_get("c1");
    CHECK(got == s);
    oms_snapshot_unref(got);
    CHECK(oms_snapshot_cache_get_any("c1") == NULL); /* a named commit: not before it commits */
    oms_snapshot_cache_drop_pending(s);
    CHECK(oms_snapshot_cache_get("c1") == NULL);
    /* confirmed: everyone sees it */
    oms_snapshot_cache_put_pending(s);
    oms_snapshot_cache_put(s);
    got = oms_snapshot_cache_get_any("c1");
    CHECK(got == s);
    oms_snapshot_unref(got);
    oms_snapshot_unref(s);
    oms_snapshot_cache_clear();
}

static void stays_within_its_bytes(void)
{
    /* the bound is set to 1 MiB in main */
    char big[20000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 200; i++) {
        oms_snapshot *s = oms_snapshot_new_empty();
        char name[32], commit[32];
        snprintf(name, sizeof name, "T%d", i);
        snprintf(commit, sizeof commit, "c%d", i);
        oms_snapshot_put(s, oms_entry_new(OMS_KIND_OBJECT_TYPE, name, "h", big, strlen(big), "", "", 0));
        oms_snapshot_cache_put(sealed(s, commit));
        oms_snapshot_unref(s);
    }
    size_t bytes, limit, count;
    oms_snapshot_cache_stats(&bytes, &limit, &count);
    CHECK_EQ_INT(limit, 1 << 20);
    CHECK(bytes <= limit);
    CHECK(count > 10 && count < 200);
    oms_snapshot *newest = oms_snapshot_cache_get("c199"), *oldest = oms_snapshot_cache_get("c0");
    CHECK(newest != NULL);
    CHECK(oldest == NULL);
    oms_snapshot_unref(newest);
    oms_snapshot_cache_clear();
    oms_snapshot_cache_stats(&bytes, &limit, &count);
    CHECK_EQ_INT(count, 0);
}

typedef struct {
    char keys[8][64];
    int n;
} seen;

static void note(void *ctx, const oms_entry *e)
{
    seen *s = ctx;
    if (s->n < 8)
        snprintf(s->keys[s->n++], 64, "%s", e->key);
}

static int referrers(const oms_snapshot *s, const char *target, seen *out)
{
    memset(out, 0, sizeof *out);
    CHECK(oms_snapshot_referrers(s, target, note, out));
    return out->n;
}

static void reverse_index_follows_forks(void)
{
    oms_snapshot *base = oms_snapshot_new_empty();
    oms_snapshot_put(base, type_named("A"));
    oms_snapshot_put(base, type_named("B"));
    oms_snapshot_put(base, link_to("L1", "A"));
    sealed(base, "b");
    seen r;
    CHECK(!oms_snapshot_referrers(base, "object-types/A", note, &r)); /* not built yet */
    oms_snapshot_revidx_ensure(base);
    CHECK_EQ_INT(referrers(base, "object-types/A", &r), 1);
    CHECK_EQ_STR(r.keys[0], "link-types/L1");

    oms_snapshot *fork = oms_snapshot_fork(base);
    oms_snapshot_put(fork, link_to("L2", "A"));
    oms_snapshot_put(fork, link_to("L1", "B")); /* L1 now points elsewhere */
    CHECK_EQ_INT(referrers(fork, "object-types/A", &r), 1);
    CHECK_EQ_STR(r.keys[0], "link-types/L2");
    CHECK_EQ_INT(referrers(fork, "object-types/B", &r), 1);
    CHECK(oms_snapshot_remove(fork, "link-types/L2"));
    CHECK_EQ_INT(referrers(fork, "object-types/A", &r), 0);
    /* the parent is untouched */
    CHECK_EQ_INT(referrers(base, "object-types/A", &r), 1);
    CHECK_EQ_STR(r.keys[0], "link-types/L1");
    CHECK_EQ_INT(referrers(base, "object-types/B", &r), 0);
    oms_snapshot_unref(fork);
    oms_snapshot_unref(base);
}

/* The reverse-reference index is charged to the cache, each of its buckets
 * once however many cached forks share it, and charged when it is built
 * after the snapshot was cached; all of it is returned on removal. */
static void reverse_index_is_charged_once(void)
{
    oms_snapshot_cache_clear();
    oms_snapshot *base = oms_snapshot_new_empty();
    for (int i = 0; i < 2000; i++) {
        char name[32];
        snprintf(name, sizeof name, "L%d", i);
        oms_snapshot_put(base, link_to(name, "Target")); /* 2000 pairs under one target */
    }
    sealed(base, "rev-base");
    oms_snapshot_cache_put(base);
    size_t without, limit, count;
    oms_snapshot_cache_stats(&without, &limit, &count);
    oms_snapshot_revidx_ensure(base); /* built after caching */
    oms_snapshot *hit = oms_snapshot_cache_get("rev-base");
    size_t with;
    oms_snapshot_cache_stats(&with, &limit, &count);
    CHECK(with >= without + 2000 * sizeof(oms_revref)); /* charged at its next use */
    /* a fork shares every index bucket but the one its change touches */
    oms_snapshot *fork = oms_snapshot_fork(base);
    oms_snapshot_put(fork, type_named("Other"));
    sealed(fork, "rev-fork");
    oms_snapshot_cache_put(fork);
    size_t both;
    oms_snapshot_cache_stats(&both, &limit, &count);
    CHECK(both - with < 2000 * sizeof(oms_revref)); /* the shared 2000-pair bucket not charged twice */
    oms_snapshot_unref(hit);
    oms_snapshot_unref(fork);
    oms_snapshot_unref(base);
    oms_snapshot_cache_clear();
    oms_snapshot_cache_stats(&both, &limit, &count);
    CHECK_EQ_INT(both, 0);
}

/* The cache's own default is the configuration table's. */
static void default_bound_is_the_tables(void)
{
    bool found = false;
    for (size_t i = 0; i < oms_cfg_table_len; i++)
        if (strcmp(oms_cfg_table[i].name, "OMS_SNAPSHOT_CACHE_MB") == 0) {
            found = true;
            CHECK_EQ_INT(atoi(oms_cfg_table[i].def), OMS_SNAPSHOT_CACHE_DEFAULT_MB);
        }
    CHECK(found);
}

/* An entry's status is its document's top-level member, read once: a
 * nested "status" or one inside a string does not count. */
static void entry_status_is_the_top_level_member(void)
{
    static const struct {
        const char *text;
        int status;
    } cases[] = {
        {"{\"api_name\":\"A\",\"status\":\"experimental\"}", 0},
        {"{\"api_name\":\"A\",\"properties\":[{\"status\":\"deprecated\"}],\"status\":\"active\"}", 1},
        {"{\"api_name\":\"A\",\"description\":\"\\\"status\\\":\\\"active\\\"\",\"status\":\"deprecated\"}", 2},
        {"{\"api_name\":\"A\",\"properties\":[{\"status\":\"active\"}]}", -1},
        {"{\"api_name\":\"A\",\"status\":\"retired\"}", -1},
        {"{\"api_name\":\"A\",\"status\":1}", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        oms_entry *e = oms_entry_new(OMS_KIND_OBJECT_TYPE, "A", "h", cases[i].text, strlen(cases[i].text), "", "", 0);
        CHECK_EQ_INT(e->status, cases[i].status);
        oms_entry_unref(e);
    }
}

int main(void)
{
    oms_alloc_init();
    oms_snapshot_cache_set_limit_mb(1);
    static const t_case cases[] = {T(pending_is_for_heads_only_and_dropped_on_rollback), T(stays_within_its_bytes),
                                   T(reverse_index_follows_forks), T(reverse_index_is_charged_once),
                                   T(default_bound_is_the_tables), T(entry_status_is_the_top_level_member)};
    return T_RUN("snapshot_cache", cases);
}
