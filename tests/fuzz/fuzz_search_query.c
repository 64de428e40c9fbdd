/* libFuzzer target for search terms (src/search/terms.c): any bytes as a
 * query, as text to index and as text to highlight. Every term is 1 to
 * OMS_SEARCH_TERM_MAX bytes of letters, digits and non-ASCII bytes, lower
 * case, distinct; the normalised query holds only those bytes; every word
 * span lies inside the text; highlights are built without a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "search/query.h"
#include "search/terms.h"

static void check_term(const char *t, size_t n)
{
    if (n == 0 || n > OMS_SEARCH_TERM_MAX)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80))
            abort();
    }
}

typedef struct {
    size_t len;
} span_ctx;

static void span(void *ctx, const char *text, size_t start, size_t len)
{
    (void)text;
    if (len == 0 || start + len > ((span_ctx *)ctx)->len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text); /* an embedded NUL ends the text, as in C strings */

    oms_search_query q;
    oms_search_query_parse(&q, text);
    for (size_t i = 0; i < q.nterms; i++) {
        check_term(q.terms[i], strlen(q.terms[i]));
        for (size_t j = 0; j < i; j++)
            if (strcmp(q.terms[i], q.terms[j]) == 0)
                abort();
    }
    for (const char *p = q.norm; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            abort();

    span_ctx sc = {len};
    oms_search_words(text, span, &sc);

    oms_search_buf b = {0};
    oms_search_add_text(&b, text);
    oms_search_add_ident(&b, text);
    for (char *save = NULL, *t = b.s ? strtok_r(b.s, " ", &save) : NULL; t; t = strtok_r(NULL, " ", &save))
        check_term(t, strlen(t));
    oms_search_buf_free(&b);

    if (q.nterms) {
        json_t *doc = json_pack("{s:s,s:s,s:s,s:[{s:s,s:s,s:[s]}]}", "api_name", "Placed_At", "display_name", text,
                                "description", text, "properties", "api_name", "x", "description", text, "enum",
                                text);
        if (doc) { /* NULL when the bytes are not UTF-8 */
            json_t *h = oms_search_highlights(OMS_KIND_OBJECT_TYPE, doc, &q);
            json_decref(h);
            json_decref(doc);
        }
    }
    oms_search_query_free(&q);
    free(text);
    return 0;
}
