/* vcs/commit_rows: a cached row answers as the database's row would (same
 * item, same first parent), a root has none, rows that are not commit rows
 * are not kept, and the cache stays within its bound (oldest out first). */
#include <stdio.h>
#include <string.h>

#include "t.h"
#include "util/alloc.h"
#include "vcs/commit_rows.h"

static void id_of(char out[65], unsigned n)
{
    /* 64 hex digits, distinct per n */
    snprintf(out, 65, "%08x%056x", n, n * 2654435761u);
}

static oms_commit_row row_of(const char *id, const char *tree, const char *parent, const char *parents_json)
{
    oms_commit_row r = {.id = id,
                        .tree = tree,
                        .first_parent = parent,
                        .parents_json = parents_json,
                        .author = "alice",
                        .message = "Add Person \"quoted\" OMS-1",
                        .issue_keys_json = "[\"OMS-1\"]",
                        .time_ms = 1767225600123};
    return r;
}

static void cached_item_is_the_rows_item(void)
{
    oms_commit_rows_clear();
    char id[65], parent[65], tree[65], pj[200], fp[65];
    id_of(id, 1);
    id_of(parent, 2);
    id_of(tree, 3);
    snprintf(pj, sizeof pj, "[\"%s\"]", parent);
    oms_commit_row row = row_of(id, tree, parent, pj);
    CHECK(oms_commit_rows_item(id, fp) == NULL);
    oms_commit_rows_put(&row);
    json_t *got = oms_commit_rows_item(id, fp);
    json_t *want = oms_commit_row_json(&row);
    CHECK(got != NULL);
    CHECK(json_equal(got, want));
    CHECK_EQ_STR(fp, parent);
    CHECK_EQ_STR(json_string_value(json_object_get(got, "time")), "2026-01-01T00:00:00.123Z");
    json_decref(got);
    json_decref(want);
    /* a second put of the same id changes nothing */
    oms_commit_row other = row_of(id, tree, NULL, "[]");
    oms_commit_rows_put(&other);
    got = oms_commit_rows_item(id, fp);
    CHECK_EQ_STR(fp, parent);
    json_decref(got);
}

static void a_root_has_no_first_parent(void)
{
    oms_commit_rows_clear();
    char id[65], tree[65], fp[65] = "x";
    id_of(id, 10);
    id_of(tree, 11);
    oms_commit_row row = row_of(id, tree, NULL, "[]");
    oms_commit_rows_put(&row);
    json_t *got = oms_commit_rows_item(id, fp);
    CHECK(got != NULL);
    CHECK_EQ_STR(fp, "");
    CHECK_EQ_INT(json_array_size(json_object_get(got, "parents")), 0);
    json_decref(got);
}

static void only_commit_rows_are_kept(void)
{
    oms_commit_rows_clear();
    char tree[65], fp[65];
    id_of(tree, 20);
    oms_commit_row short_id = row_of("abc", tree, NULL, "[]");
    oms_commit_rows_put(&short_id);
    CHECK(oms_commit_rows_item("abc", fp) == NULL);
    char id[65];
    id_of(id, 21);
    oms_commit_row bad_parent = row_of(id, tree, "not-a-commit", "[]");
    oms_commit_rows_put(&bad_parent);
    CHECK(oms_commit_rows_item(id, fp) == NULL);
}

static void stays_within_its_bound_oldest_out(void)
{
    oms_commit_rows_clear();
    enum { N = 40000 }; /* more than the cache holds */
    char id[65], tree[65], fp[65];
    id_of(tree, 7);
    for (unsigned n = 0; n < N; n++) {
        id_of(id, 100000 + n);
        oms_commit_row row = row_of(id, tree, NULL, "[]");
        oms_commit_rows_put(&row);
    }
    unsigned kept_old = 0, kept_new = 0, kept = 0;
    for (unsigned n = 0; n < N; n++) {
        id_of(id, 100000 + n);
        json_t *item = oms_commit_rows_item(id, fp);
        if (item) {
            kept++;
            kept_old += n < 1000;
            kept_new += n >= N - 1000;
            CHECK_EQ_STR(json_string_value(json_object_get(item, "id")), id);
        }
        json_decref(item);
    }
    CHECK_EQ_INT(kept, 16384); /* every shard full: 16 x 1,024 */
    CHECK_EQ_INT(kept_old, 0);
    CHECK_EQ_INT(kept_new, 1000);
    unsigned long hits, misses;
    oms_commit_rows_counts(&hits, &misses);
    CHECK(hits >= kept);
    oms_commit_rows_clear();
    id_of(id, 100000 + N - 1);
    CHECK(oms_commit_rows_item(id, fp) == NULL);
}

int main(void)
{
    oms_alloc_init();
    static const t_case cases[] = {T(cached_item_is_the_rows_item), T(a_root_has_no_first_parent),
                                   T(only_commit_rows_are_kept), T(stays_within_its_bound_oldest_out)};
    return T_RUN("commit_rows", cases);
}
