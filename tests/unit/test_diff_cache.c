/* vcs/diff_cache: a hit is an equal private copy of the text; the cache holds at most
 * its bytes (least recently used out) and 64 pairs; a diff over an eighth
 * of the bound is not kept; replacing a pair does not count it twice. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infra/config.h"
#include "t.h"
#include "util/alloc.h"
#include "vcs/diff_cache.h"

/* The compact JSON text of a diff of n changes, each with a document of
 * `width` characters. */
static char *diff_of(int n, size_t width)
{
    char *doc = oms_xmalloc(width + 1);
    memset(doc, 'd', width);
    doc[width] = '\0';
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s,s:i,s:s}", "op", "update", "i", i, "doc", doc));
    free(doc);
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

static void put(const char *from, const char *to, const char *text, bool breaking)
{
    oms_diff_cache_put(from, to, text, strlen(text), breaking);
}

/* A hit, freed; whether there was one. */
static bool hit(const char *from, const char *to)
{
    size_t len;
    bool b;
    char *got = oms_diff_cache_get(from, to, &len, &b);
    free(got);
    return got != NULL;
}

static void hit_is_an_equal_copy(void)
{
    char *d = diff_of(3, 10);
    put("a", "b", d, true);
    bool breaking = false;
    size_t len = 0;
    char *got = oms_diff_cache_get("a", "b", &len, &breaking);
    CHECK(got != NULL);
    CHECK(got != d);
    CHECK_EQ_INT(len, strlen(d));
    CHECK(strcmp(got, d) == 0);
    CHECK(breaking);
    free(got);
    CHECK(!hit("b", "a"));
    free(d);
}

static void bounded_by_bytes_lru_out(void)
{
    /* the bound is 1 MiB (main): 100 KiB diffs, at most ten fit */
    char *d = diff_of(100, 1000);
    char from[16];
    for (int i = 0; i < 30; i++) {
        snprintf(from, sizeof from, "f%d", i);
        put(from, "t", d, false);
        if (i == 20) /* keep f15 recently used */
            CHECK(hit("f15", "t"));
        CHECK(oms_diff_cache_bytes() <= (1u << 20));
    }
    CHECK(hit("f29", "t"));
    CHECK(hit("f15", "t"));
    CHECK(!hit("f0", "t"));
    free(d);
}

static void replacing_a_pair_counts_it_once(void)
{
    char *d = diff_of(10, 100);
    put("same", "pair", d, false);
    size_t once = oms_diff_cache_bytes();
    put("same", "pair", d, false);
    CHECK_EQ_INT(oms_diff_cache_bytes(), once);
    free(d);
}

static void oversize_is_not_kept(void)
{
    char *d = diff_of(200, 1000); /* ~200 KiB > 1 MiB / 8 */
    size_t before = oms_diff_cache_bytes();
    put("huge", "diff", d, false);
    CHECK(!hit("huge", "diff"));
    CHECK_EQ_INT(oms_diff_cache_bytes(), before);
    free(d);
}

static void at_most_64_pairs(void)
{
    char *d = diff_of(1, 1);
    char from[16];
    for (int i = 0; i < 200; i++) {
        snprintf(from, sizeof from, "s%d", i);
        put(from, "t", d, false);
    }
    CHECK(hit("s199", "t"));
    CHECK(!hit("s100", "t"));
    free(d);
}

static void default_bound_is_the_tables(void)
{
    bool found = false;
    for (size_t i = 0; i < oms_cfg_table_len; i++)
        if (strcmp(oms_cfg_table[i].name, "OMS_DIFF_CACHE_MB") == 0) {
            found = true;
            CHECK_EQ_INT(atoi(oms_cfg_table[i].def), OMS_DIFF_CACHE_DEFAULT_MB);
        }
    CHECK(found);
}

int main(void)
{
    oms_alloc_init();
    oms_diff_cache_set_limit_mb(1);
    static const t_case cases[] = {T(hit_is_an_equal_copy), T(bounded_by_bytes_lru_out),
                                   T(replacing_a_pair_counts_it_once), T(oversize_is_not_kept), T(at_most_64_pairs),
                                   T(default_bound_is_the_tables)};
    return T_RUN("diff_cache", cases);
}
