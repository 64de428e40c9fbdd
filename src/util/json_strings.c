#include "util/json_strings.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

void oms_json_distinct_strings(const char *const *docs, size_t ndocs, void (*each)(void *ctx, const char *s),
                               void *ctx)
{
    json_t **parsed = oms_xcalloc(ndocs ? ndocs : 1, sizeof *parsed);
    size_t n = 0, cap = 16;
    const char **all = oms_xmalloc(cap * sizeof *all);
    for (size_t i = 0; i < ndocs; i++) {
        parsed[i] = docs[i] ? json_loads(docs[i], 0, NULL) : NULL;
        size_t j;
        json_t *v;
        json_array_foreach(parsed[i], j, v) {
            if (!json_is_string(v))
                continue;
            if (n == cap) {
                cap *= 2;
                all = oms_xrealloc(all, cap * sizeof *all);
            }
            all[n++] = json_string_value(v);
        }
    }
    if (n)
        qsort(all, n, sizeof *all, cmp_str);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(all[i], all[i - 1]) != 0)
            each(ctx, all[i]);
    for (size_t i = 0; i < ndocs; i++)
        json_decref(parsed[i]);
    free(parsed);
    free(all);
}
