/* vcs/write.c's memo of field-level diffs (oms_entry_diff): a second diff
 * of the same two versions is answered from memory with the same array and
 * the same breaking flag; the kind is part of the key; entries without a
 * real content hash (stand-ins) and diffs past 4 KiB are never kept. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "util/encoding.h"
#include "vcs/snapshot.h"
#include "vcs/write.h"

static oms_entry *entry(oms_kind kind, const char *name, const char *text, bool real_hash)
{
    char hash[65];
    if (real_hash)
        oms_sha256_hex(hash, text, strlen(text));
    else
        snprintf(hash, sizeof hash, "stand-in-%zu", strlen(text));
    return oms_entry_new(kind, name, hash, text, strlen(text), "", "tester", 0);
}

static unsigned long hits(void)
{
    unsigned long h, m;
    oms_entry_diff_memo_counts(&h, &m);
    return h;
}

static unsigned long misses(void)
{
    unsigned long h, m;
    oms_entry_diff_memo_counts(&h, &m);
    return m;
}

/* Diffs old -> new twice; the second must be a hit equal to the first. */
static void check_remembered(const oms_entry *o, const oms_entry *n)
{
    bool b1 = false, b2 = false;
    unsigned long h0 = hits();
    json_t *first = oms_entry_diff(o, n, &b1);
    CHECK(first != NULL);
    CHECK_EQ_INT(hits(), h0);
    b2 = !b1; /* the second call must set it */
    json_t *second = oms_entry_diff(o, n, &b2);
    CHECK_EQ_INT(hits(), h0 + 1);
    CHECK(second != NULL && json_equal(first, second));
    CHECK(second != first);
    CHECK_EQ_INT(b2, b1);
    json_decref(first);
    json_decref(second);
}

static const char *k_person = "{\"api_name\":\"Person\",\"display_name\":\"Person\",\"primary_key\":\"id\","
                              "\"properties\":[{\"api_name\":\"id\",\"type\":\"string\"}],\"status\":\"active\"}";
static const char *k_person_renamed = "{\"api_name\":\"Person\",\"display_name\":\"A person\",\"primary_key\":\"id\","
                                      "\"properties\":[{\"api_name\":\"id\",\"type\":\"string\"}],\"status\":\"active\"}";

static void a_modified_resource_is_remembered(void)
{
    oms_entry *o = entry(OMS_KIND_OBJECT_TYPE, "Person", k_person, true);
    oms_entry *n = entry(OMS_KIND_OBJECT_TYPE, "Person", k_person_renamed, true);
    check_remembered(o, n);
    oms_entry_unref(o);
    oms_entry_unref(n);
}

static void a_breaking_removal_is_remembered_as_breaking(void)
{
    oms_entry *o = entry(OMS_KIND_OBJECT_TYPE, "Gone", k_person, true);
    bool b = false;
    json_t *d = oms_entry_diff(o, NULL, &b);
    CHECK(b); /* removing a resource breaks its consumers (SPEC §3) */
    json_decref(d);
    b = false;
    unsigned long h0 = hits();
    d = oms_entry_diff(o, NULL, &b);
    CHECK_EQ_INT(hits(), h0 + 1);
    CHECK(b);
    json_decref(d);
    oms_entry_unref(o);
}

static void the_kind_is_part_of_the_key(void)
{
    oms_entry *o = entry(OMS_KIND_OBJECT_TYPE, "Person", k_person, true);
    oms_entry *n = entry(OMS_KIND_OBJECT_TYPE, "Person", k_person_renamed, true);
    oms_entry *o2 = entry(OMS_KIND_INTERFACE, "Person", k_person, true);
    oms_entry *n2 = entry(OMS_KIND_INTERFACE, "Person", k_person_renamed, true);
    bool b;
    json_decref(oms_entry_diff(o, n, &b));
    unsigned long h0 = hits(), m0 = misses();
    json_decref(oms_entry_diff(o2, n2, &b)); /* same texts and hashes, another kind */
    CHECK_EQ_INT(hits(), h0);
    CHECK_EQ_INT(misses(), m0 + 1);
    oms_entry_unref(o);
    oms_entry_unref(n);
    oms_entry_unref(o2);
    oms_entry_unref(n2);
}

static void stand_ins_are_not_remembered(void)
{
    oms_entry *o = entry(OMS_KIND_OBJECT_TYPE, "Person", k_person, false);
    oms_entry *n = entry(OMS_KIND_OBJECT_TYPE, "Person", k_person_renamed, false);
    bool b;
    unsigned long h0 = hits();
    json_decref(oms_entry_diff(o, n, &b));
    json_decref(oms_entry_diff(o, n, &b));
    CHECK_EQ_INT(hits(), h0);
    oms_entry_unref(o);
    oms_entry_unref(n);
}

static void a_large_diff_is_not_kept(void)
{
    char *text = malloc(8192);
    int len = snprintf(text, 8192, "{\"api_name\":\"Big\",\"description\":\"");
    while (len < 6000)
        text[len++] = 'x';
    strcpy(text + len, "\",\"display_name\":\"Big\",\"status\":\"active\"}");
    oms_entry *n = entry(OMS_KIND_OBJECT_TYPE, "Big", text, true);
    bool b;
    unsigned long h0 = hits();
    json_decref(oms_entry_diff(NULL, n, &b)); /* added: the diff holds the whole document */
    json_decref(oms_entry_diff(NULL, n, &b));
    CHECK_EQ_INT(hits(), h0);
    oms_entry_unref(n);
    free(text);
}

int main(void)
{
    static const t_case cases[] = {T(a_modified_resource_is_remembered), T(a_breaking_removal_is_remembered_as_breaking),
                                   T(the_kind_is_part_of_the_key), T(stand_ins_are_not_remembered),
                                   T(a_large_diff_is_not_kept)};
    return t_main("entry_diff_memo", cases, sizeof cases / sizeof cases[0]);
}
