/* util/canonical: the string-map writer used to seal snapshots gives the
 * same bytes (so the same hash) as jansson's canonical dump, for random
 * maps of every size, and refuses every string jansson would escape. */
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "util/alloc.h"
#include "util/canonical.h"
#include "util/encoding.h"

static int by_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *random_plain(unsigned *seed, size_t max)
{
    size_t n = (size_t)rand_r(seed) % max;
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        char c;
        do
            c = (char)(0x20 + rand_r(seed) % 95);
        while (c == '"' || c == '\\');
        s[i] = c;
    }
    s[n] = '\0';
    return s;
}

static void random_maps_hash_as_jansson_dumps_them(void)
{
    unsigned seed = 21;
    for (int round = 0; round < 300; round++) {
        size_t n = (size_t)rand_r(&seed) % 300;
        char **keys = malloc((n + 1) * sizeof *keys);
        json_t *o = json_object();
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            char *key = random_plain(&seed, 24);
            if (json_object_get(o, key)) {
                free(key);
                continue;
            }
            json_object_set_new(o, key, json_string("")); /* value set below */
            keys[k++] = key;
        }
        qsort(keys, k, sizeof *keys, by_strcmp);
        oms_canonical_map m;
        oms_canonical_map_init(&m, 16);
        int added = 1;
        for (size_t i = 0; i < k; i++) {
            char *value = random_plain(&seed, 70);
            json_object_set_new(o, keys[i], json_string(value));
            added &= oms_canonical_map_add(&m, keys[i], value);
            free(value);
        }
        CHECK(added);
        char want[65], got[65];
        char *text = NULL;
        CHECK_EQ_INT(oms_canonical_hash(o, want, &text), 0);
        char *mine = strdup(m.text.data);
        oms_canonical_map_hash(&m, got);
        CHECK_EQ_STR(got, want);
        /* the text before closing is the dump without its final brace */
        CHECK(strlen(text) == strlen(mine) + 1 && strncmp(text, mine, strlen(mine)) == 0);
        free(mine);
        free(text);
        oms_canonical_map_free(&m);
        json_decref(o);
        for (size_t i = 0; i < k; i++)
            free(keys[i]);
        free(keys);
    }
}

static void empty_map_is_empty_object(void)
{
    oms_canonical_map m;
    oms_canonical_map_init(&m, 0);
    char got[65], want[65];
    oms_canonical_map_hash(&m, got);
    oms_sha256_hex(want, "{}", 2);
    CHECK_EQ_STR(got, want);
    /* reusable after hashing */
    CHECK(oms_canonical_map_add(&m, "a", "b"));
    oms_canonical_map_hash(&m, got);
    oms_sha256_hex(want, "{\"a\":\"b\"}", 9);
    CHECK_EQ_STR(got, want);
    oms_canonical_map_free(&m);
}

/* The unscanned member (a snapshot's root: bucket names and hashes in hex)
 * gives the bytes the checked one gives, which are jansson's. */
static void printable_members_match_checked_ones(void)
{
    static const char digits[] = "0123456789abcdef";
    oms_canonical_map checked, fast;
    oms_canonical_map_init(&checked, 0);
    oms_canonical_map_init(&fast, 0);
    json_t *o = json_object();
    for (int i = 0; i < 256; i += 7) {
        char name[3] = {digits[i >> 4], digits[i & 15], 0}, hash[65];
        oms_sha256_hex(hash, name, 2);
        CHECK(oms_canonical_map_add(&checked, name, hash));
        oms_canonical_map_add_printable(&fast, name, 2, hash, 64);
        json_object_set_new(o, name, json_string(hash));
    }
    char a[65], b[65], want[65];
    CHECK_EQ_STR(fast.text.data, checked.text.data);
    oms_canonical_map_hash(&checked, a);
    oms_canonical_map_hash(&fast, b);
    CHECK_EQ_INT(oms_canonical_hash(o, want, NULL), 0);
    CHECK_EQ_STR(a, want);
    CHECK_EQ_STR(b, want);
    oms_canonical_map_free(&checked);
    oms_canonical_map_free(&fast);
    json_decref(o);
}

static void strings_jansson_escapes_are_refused(void)
{
    const char *escaped[] = {"a\"b", "back\\slash", "tab\t", "nl\n", "\x01", "caf\xc3\xa9", "\x7f", "\xff"};
    for (size_t i = 0; i < sizeof escaped / sizeof *escaped; i++) {
        oms_canonical_map m;
        oms_canonical_map_init(&m, 0);
        CHECK(!oms_canonical_map_add(&m, escaped[i], "v"));
        CHECK(!oms_canonical_map_add(&m, "k", escaped[i]));
        CHECK(oms_canonical_map_add(&m, "k/ok", "plain / text"));
        oms_canonical_map_free(&m);
    }
}


static json_t *random_value(unsigned *seed, int depth);

static json_t *random_string(unsigned *seed)
{
    static const char *const pieces[] = {"active", "deprecated", "a\"q", "back\\", "tab\t", "caf\xc3\xa9", "status",
                                         "{", "}", "[", "]", ",", ":", "\"status\":\"active\"", ""};
    char buf[128] = "";
    int n = rand_r(seed) % 4;
    for (int i = 0; i < n; i++)
        strncat(buf, pieces[rand_r(seed) % 15], sizeof buf - strlen(buf) - 1);
    return json_string(buf);
}

static json_t *random_object(unsigned *seed, int depth)
{
    static const char *const keys[] = {"status", "api_name", "properties", "a", "z", "stat", "statuses", "st\"atus"};
    json_t *o = json_object();
    int n = rand_r(seed) % 5;
    for (int i = 0; i < n; i++)
        json_object_set_new(o, keys[rand_r(seed) % 8], random_value(seed, depth + 1));
    return o;
}

static json_t *random_value(unsigned *seed, int depth)
{
    int pick = depth > 3 ? rand_r(seed) % 3 : rand_r(seed) % 6;
    switch (pick) {
    case 0: return random_string(seed);
    case 1: return json_integer(rand_r(seed) % 100);
    case 2: return rand_r(seed) % 2 ? json_true() : json_null();
    case 3: case 4: return random_object(seed, depth);
    default: {
        json_t *a = json_array();
        int n = rand_r(seed) % 4;
        for (int i = 0; i < n; i++)
            json_array_append_new(a, random_value(seed, depth + 1));
        return a;
    }
    }
}

static void top_string_finds_what_jansson_finds(void)
{
    unsigned seed = 15;
    int found = 0;
    for (int round = 0; round < 5000; round++) {
        json_t *doc = random_object(&seed, 0);
        char *text = oms_canonical_dump(doc);
        const char *v = NULL;
        size_t n = 0;
        bool got = oms_canonical_top_string(text, strlen(text), "status", &v, &n);
        json_t *want = json_object_get(doc, "status");
        CHECK(got == json_is_string(want));
        if (got && json_is_string(want)) {
            /* the raw text between the quotes is the canonical form of the value */
            char *dumped = oms_canonical_dump(want);
            CHECK(strlen(dumped) == n + 2 && memcmp(dumped + 1, v, n) == 0);
            free(dumped);
            found++;
        }
        free(text);
        json_decref(doc);
    }
    CHECK(found > 100); /* the generator does put strings at the top (185 of 5,000) */
    const char *v;
    size_t n;
    CHECK(!oms_canonical_top_string("[\"status\"]", 10, "status", &v, &n));
    CHECK(!oms_canonical_top_string("{\"status\":1}", 12, "status", &v, &n));
    CHECK(oms_canonical_top_string("{\"status\":\"\"}", 13, "status", &v, &n) && n == 0);
}

int main(void)
{
    oms_alloc_init();
    static const t_case cases[] = {T(random_maps_hash_as_jansson_dumps_them), T(empty_map_is_empty_object),
                                   T(strings_jansson_escapes_are_refused), T(printable_members_match_checked_ones),
                                   T(top_string_finds_what_jansson_finds)};
    return T_RUN("canonical", cases);
}
