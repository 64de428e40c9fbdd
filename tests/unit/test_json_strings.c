/* util/json_strings: the distinct strings of a set of JSON arrays, sorted
 * bytewise; NULL texts, malformed texts and values that are not strings
 * are skipped. */
#include <stdio.h>
#include <string.h>

#include "t.h"
#include "util/json_strings.h"

typedef struct {
    char out[256];
    int n;
} collected;

static void collect(void *ctx, const char *s)
{
    collected *c = ctx;
    size_t used = strlen(c->out);
    snprintf(c->out + used, sizeof c->out - used, "%s%s", c->n++ ? "," : "", s);
}

static void distinct_and_sorted(void)
{
    const char *docs[] = {"[\"OMS-2\",\"OMS-10\"]", NULL, "[\"OMS-2\",\"B-1\"]", "[]", "[\"OMS-10\"]"};
    collected c = {0};
    oms_json_distinct_strings(docs, 5, collect, &c);
    /* bytewise: "OMS-10" < "OMS-2" */
    CHECK_EQ_STR(c.out, "B-1,OMS-10,OMS-2");
    CHECK_EQ_INT(c.n, 3);
}

static void skips_what_is_not_a_string(void)
{
    const char *docs[] = {"not json", "[1, null, {\"a\":\"b\"}, \"K-1\"]", "{\"k\":\"v\"}", "[\"K-1\"]"};
    collected c = {0};
    oms_json_distinct_strings(docs, 4, collect, &c);
    CHECK_EQ_STR(c.out, "K-1");
    CHECK_EQ_INT(c.n, 1);
}

static void nothing_gives_nothing(void)
{
    collected c = {0};
    oms_json_distinct_strings(NULL, 0, collect, &c);
    CHECK_EQ_INT(c.n, 0);
    const char *docs[] = {NULL, "[]"};
    oms_json_distinct_strings(docs, 2, collect, &c);
    CHECK_EQ_INT(c.n, 0);
}

int main(void)
{
    static const t_case cases[] = {T(distinct_and_sorted), T(skips_what_is_not_a_string), T(nothing_gives_nothing)};
    return T_RUN("json_strings", cases);
}
