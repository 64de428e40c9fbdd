/* vcs/diff_cache: a hit is an equal private copy; the cache holds at most
 * its bytes (least recently used out) and 64 pairs; a diff over an eighth
 * of the bound is not kept; replacing a pair does not count it twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infra/config.h"
#include "t.h"
#include "util/alloc.h"
#include "vcs/diff_cache.h"

/* A diff of n changes, each with a document of `width` characters. */
static json_t *diff_of(int n, size_t width)
{
    char *text = oms_xmalloc(width + 1);
    memset(text, 'd', width);
    text[width] = '\0';
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s,s:i,s:s}", "op", "update", "i", i, "doc", text));
    free(text);
    return a;
}

static void hit_is_an_equal_copy(void)
{
    json_t *d = diff_of(3, 10);
    oms_diff_cache_put("a", "b", d, true);
    bool breaking = false;
    json_t *got = oms_diff_cache_get("a", "b", &breaking);
    CHECK(got != NULL);
    CHECK(got != d);
    CHECK(json_equal(got, d));
    CHECK(breaking);
    json_decref(got);
    CHECK(oms_diff_cache_get("b", "a", &breaking) == NULL);
    json_decref(d);
}

static void bounded_by_bytes_lru_out(void)
{
    /* the bound is 1 MiB (main): 100 KiB diffs, at most ten fit */
    json_t *d = diff_of(100, 1000);
    char from[16];
    for (int i = 0; i < 30; i++) {
        snprintf(from, sizeof from, "f%d", i);
        oms_diff_cache_put(from, "t", d, false);
        if (i == 20) { /* keep f15 recently used */
            bool b;
            json_decref(oms_diff_cache_get("f15", "t", &b));
        }
        CHECK(oms_diff_cache_bytes() <= (1u << 20));
    }
    bool b;
    json_t *x;
    CHECK((x = oms_diff_cache_get("f29", "t", &b)) != NULL);
    json_decref(x);
    CHECK(oms_diff_cache_get("f0", "t", &b) == NULL);
    json_decref(d);
}

static void replacing_a_pair_counts_it_once(void)
{
    json_t *d = diff_of(10, 100);
    oms_diff_cache_put("same", "pair", d, false);
    size_t once = oms_diff_cache_bytes();
    oms_diff_cache_put("same", "pair", d, false);
    CHECK_EQ_INT(oms_diff_cache_bytes(), once);
    json_decref(d);
}

static void oversize_is_not_kept(void)
{
    json_t *d = diff_of(200, 1000); /* ~200 KiB > 1 MiB / 8 */
    size_t before = oms_diff_cache_bytes();
    oms_diff_cache_put("huge", "diff", d, false);
    bool b;
    CHECK(oms_diff_cache_get("huge", "diff", &b) == NULL);
    CHECK_EQ_INT(oms_diff_cache_bytes(), before);
    json_decref(d);
}

static void at_most_64_pairs(void)
{
    json_t *d = diff_of(1, 1);
    char from[16];
    for (int i = 0; i < 200; i++) {
        snprintf(from, sizeof from, "s%d", i);
        oms_diff_cache_put(from, "t", d, false);
    }
    bool b;
    json_t *x;
    CHECK((x = oms_diff_cache_get("s199", "t", &b)) != NULL);
    json_decref(x);
    CHECK(oms_diff_cache_get("s100", "t", &b) == NULL);
    json_decref(d);
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
