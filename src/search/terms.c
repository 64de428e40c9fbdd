#include "search/terms.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

enum { C_SEP, C_LOWER, C_UPPER, C_DIGIT, C_OTHER };

static int cls(unsigned char c)
{
    if (c >= 'a' && c <= 'z')
        return C_LOWER;
    if (c >= 'A' && c <= 'Z')
        return C_UPPER;
    if (c >= '0' && c <= '9')
        return C_DIGIT;
    return c >= 0x80 ? C_OTHER : C_SEP; /* non-ASCII is a letter without case */
}

static bool is_lower_like(int c) { return c == C_LOWER || c == C_OTHER; }

/* Where a new sub-word starts inside a word: at i (i > 0), given the classes
 * of bytes i-1, i and i+1 (C_SEP past the end). */
static bool boundary(int prev, int cur, int next)
{
    if ((prev == C_DIGIT) != (cur == C_DIGIT))
        return true;                                  /* HTTP|2|Server */
    if (cur == C_UPPER && is_lower_like(prev))
        return true;                                  /* Placed|At */
    if (cur == C_UPPER && prev == C_UPPER && is_lower_like(next) && next != C_OTHER)
        return true;                                  /* HTTP|Server */
    return false;
}

void oms_search_words(const char *text, oms_search_word_fn fn, void *ctx)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (s[i]) {
        while (s[i] && cls(s[i]) == C_SEP)
            i++;
        if (!s[i])
            break;
        size_t start = i;
        i++;
        while (s[i] && cls(s[i]) != C_SEP) {
            int next = s[i + 1] ? cls(s[i + 1]) : C_SEP;
            if (boundary(cls(s[i - 1]), cls(s[i]), next)) {
                fn(ctx, text, start, i - start);
                start = i;
            }
            i++;
        }
        fn(ctx, text, start, i - start);
    }
}

void oms_search_buf_free(oms_search_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

static void buf_reserve(oms_search_buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap * 2 : 128;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->s = oms_xrealloc(b->s, cap);
    b->cap = cap;
}

/* Appends one lower-cased term (cut at OMS_SEARCH_TERM_MAX, never inside
 * a UTF-8 sequence). */
static void buf_term(oms_search_buf *b, const char *w, size_t len)
{
    if (len > OMS_SEARCH_TERM_MAX) {
        len = OMS_SEARCH_TERM_MAX;
        while (len && ((unsigned char)w[len] & 0xC0) == 0x80)
            len--;
    }
    if (!len)
        return;
    buf_reserve(b, len + 1);
    if (b->len)
        b->s[b->len++] = ' ';
    for (size_t i = 0; i < len; i++) {
        char c = w[i];
        b->s[b->len++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    b->s[b->len] = '\0';
}

static void add_word(void *ctx, const char *text, size_t start, size_t len) { buf_term(ctx, text + start, len); }

void oms_search_add_text(oms_search_buf *b, const char *text)
{
    if (text)
        oms_search_words(text, add_word, b);
}

typedef struct {
    size_t n;
} counter;

static void count_word(void *ctx, const char *text, size_t start, size_t len)
{
    (void)text, (void)start, (void)len;
    ((counter *)ctx)->n++;
}

void oms_search_add_ident(oms_search_buf *b, const char *ident)
{
    if (!ident)
        return;
    counter k = {0};
    oms_search_words(ident, count_word, &k);
    oms_search_add_text(b, ident);
    if (k.n < 2)
        return;
    size_t n = strlen(ident);
    char *joined = oms_xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (cls((unsigned char)ident[i]) != C_SEP)
            joined[o++] = ident[i];
    buf_term(b, joined, o);
    free(joined);
}

void oms_search_norm_name(char *out, const char *api_name)
{
    size_t o = 0;
    for (const char *p = api_name; *p; p++) {
        int c = cls((unsigned char)*p);
        if (c == C_SEP)
            continue;
        out[o++] = c == C_UPPER ? (char)(*p - 'A' + 'a') : *p;
    }
    out[o] = '\0';
}

/* ---- documents ---- */

static const char *str(const json_t *o, const char *name) { return json_string_value(json_object_get(o, name)); }

/* Properties, parameters, inputs: names, enum values, referenced types,
 * descriptions. */
static void add_items(oms_search_fields *f, const json_t *items)
{
    size_t i;
    const json_t *it;
    json_array_foreach(items, i, it) {
        oms_search_add_ident(&f->props, str(it, "api_name"));
        const char *dn = str(it, "display_name");
        if (dn && (!str(it, "api_name") || strcmp(dn, str(it, "api_name")) != 0))
            oms_search_add_text(&f->props, dn);
        size_t k;
        const json_t *v;
        json_array_foreach(json_object_get(it, "enum"), k, v) oms_search_add_ident(&f->props, json_string_value(v));
        oms_search_add_ident(&f->props, str(it, "object_type"));
        oms_search_add_ident(&f->props, str(it, "shared_property"));
        oms_search_add_text(&f->descr, str(it, "description"));
    }
}

static void add_names(oms_search_buf *b, const json_t *list)
{
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v) oms_search_add_ident(b, json_string_value(v));
}

void oms_search_fields_of(oms_search_fields *out, oms_kind kind, const char *api_name, const json_t *doc)
{
    memset(out, 0, sizeof *out);
    oms_search_add_ident(&out->api, api_name);
    const char *dn = str(doc, "display_name");
    if (dn && strcmp(dn, api_name) != 0)
        oms_search_add_text(&out->names, dn);
    oms_search_add_text(&out->descr, str(doc, "description"));
    switch (kind) {
    case OMS_KIND_OBJECT_TYPE:
    case OMS_KIND_INTERFACE:
        add_items(out, json_object_get(doc, "properties"));
        add_names(&out->props, json_object_get(doc, "implements"));
        add_names(&out->props, json_object_get(doc, "extends"));
        break;
    case OMS_KIND_LINK_TYPE:
        oms_search_add_ident(&out->props, str(doc, "from"));
        oms_search_add_ident(&out->props, str(doc, "to"));
        break;
    case OMS_KIND_ACTION_TYPE:
        add_items(out, json_object_get(doc, "parameters"));
        break;
    case OMS_KIND_FUNCTION_TYPE:
        add_items(out, json_object_get(doc, "inputs"));
        oms_search_add_ident(&out->props, str(json_object_get(doc, "output"), "object_type"));
        break;
    default:
        break;
    }
    /* the databases want text, even empty */
    oms_search_buf *all[] = {&out->api, &out->names, &out->props, &out->descr};
    for (size_t i = 0; i < 4; i++)
        if (!all[i]->s)
            buf_reserve(all[i], 0), all[i]->s[0] = '\0';
}

void oms_search_fields_free(oms_search_fields *f)
{
    oms_search_buf_free(&f->api);
    oms_search_buf_free(&f->names);
    oms_search_buf_free(&f->props);
    oms_search_buf_free(&f->descr);
}

/* ---- queries ---- */

typedef struct {
    oms_search_query *q;
} query_ctx;

static void query_word(void *ctx, const char *text, size_t start, size_t len)
{
    oms_search_query *q = ((query_ctx *)ctx)->q;
    oms_search_buf t = {0};
    buf_term(&t, text + start, len);
    if (!t.s)
        return;
    for (size_t i = 0; i < q->nterms; i++)
        if (strcmp(q->terms[i], t.s) == 0) {
            free(t.s);
            return;
        }
    if (q->nterms == OMS_SEARCH_MAX_TERMS) {
        q->truncated = true;
        free(t.s);
        return;
    }
    q->terms[q->nterms++] = t.s;
}

size_t oms_search_query_parse(oms_search_query *out, const char *q)
{
    memset(out, 0, sizeof *out);
    query_ctx c = {out};
    oms_search_words(q, query_word, &c);
    size_t n = strlen(q);
    if (n > OMS_SEARCH_MAX_QUERY)
        n = OMS_SEARCH_MAX_QUERY;
    char *tmp = oms_xstrndup(q, n);
    oms_search_norm_name(out->norm, tmp);
    free(tmp);
    return out->nterms;
}

void oms_search_query_free(oms_search_query *q)
{
    for (size_t i = 0; i < q->nterms; i++)
        free(q->terms[i]);
    q->nterms = 0;
}

bool oms_search_word_matches(const char *word, size_t len, const char *term)
{
    size_t tl = strlen(term);
    if (tl > len)
        return false;
    for (size_t i = 0; i < tl; i++) {
        char c = word[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != term[i])
            return false;
    }
    return true;
}
