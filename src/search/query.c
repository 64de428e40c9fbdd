#include "search/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/search_sql.h"
#include "util/alloc.h"

const char *const oms_search_tiers[6] = {"exact_api_name", "api_name_prefix", "api_name_terms",
                                         "name_terms",     "property_terms",  "description"};

/* ---- match expressions ---- */

static void append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        char *p = oms_xrealloc(*buf, *cap);
        *buf = p;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

/* FTS5: `gen : "g42" AND {cols} : ("t1"* AND "t2"*)` (gen 0: without the
 * scope token). Terms hold letters, digits and non-ASCII bytes only, never
 * a double quote. */
static char *fts_expr(int64_t gen, const char *cols, const oms_search_query *q)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char head[96];
    if (gen)
        snprintf(head, sizeof head, "gen : \"g%lld\" AND {%s} : (", (long long)gen, cols);
    else
        snprintf(head, sizeof head, "{%s} : (", cols);
    append(&buf, &len, &cap, head);
    for (size_t i = 0; i < q->nterms; i++) {
        append(&buf, &len, &cap, i ? " AND \"" : "\"");
        append(&buf, &len, &cap, q->terms[i]);
        append(&buf, &len, &cap, "\"*");
    }
    append(&buf, &len, &cap, ")");
    return buf;
}

/* PostgreSQL: `'t1':*AB & 't2':*AB` for to_tsquery('simple', ...). */
static char *ts_expr(const char *weights, const oms_search_query *q)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    append(&buf, &len, &cap, "");
    for (size_t i = 0; i < q->nterms; i++) {
        append(&buf, &len, &cap, i ? " & '" : "'");
        append(&buf, &len, &cap, q->terms[i]);
        append(&buf, &len, &cap, "':*");
        append(&buf, &len, &cap, weights);
    }
    return buf;
}


void oms_search_result_clear(oms_search_result *r)
{
    json_decref(r->items);
    free(r->next_cursor);
    memset(r, 0, sizeof *r);
}

static json_t *item_of(const oms_dbres *r, size_t i, const oms_search_query *q)
{
    const char *kind_seg = oms_dbres_get(r, i, 1), *api = oms_dbres_get(r, i, 2), *content = oms_dbres_get(r, i, 7);
    int tier = (int)oms_dbres_int(r, i, 4);
    json_t *doc = content ? json_loads(content, 0, NULL) : NULL;
    oms_kind kind = OMS_KIND_OBJECT_TYPE;
    oms_kind_parse(&kind, kind_seg);
    const char *dn = json_string_value(json_object_get(doc, "display_name"));
    const char *desc = json_string_value(json_object_get(doc, "description"));
    const char *status = json_string_value(json_object_get(doc, "status"));
    json_t *item = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i}", "resource", oms_dbres_get(r, i, 0), "kind",
                             kind_seg, "api_name", api, "display_name", dn ? dn : api, "description",
                             desc ? desc : "", "status", status ? status : "experimental", "etag",
                             oms_dbres_get(r, i, 3), "match", oms_search_tiers[tier < 0 || tier > 5 ? 5 : tier],
                             "tier", tier);
    json_object_set_new(item, "highlights", doc ? oms_search_highlights(kind, doc, q) : json_array());
    json_decref(doc);
    return item;
}

int oms_search_run(oms_dbconn *c, int64_t gen, const oms_search_request *rq, oms_search_result *out, oms_error *err)
{
    memset(out, 0, sizeof *out);
    bool pg = oms_store_search_tsquery(c);
    char *e[4];
    if (pg) {
        e[0] = ts_expr("", rq->q);
        e[1] = ts_expr("A", rq->q);
        e[2] = ts_expr("AB", rq->q);
        e[3] = ts_expr("ABC", rq->q);
    } else {
        e[0] = fts_expr(gen, "api names props descr", rq->q);
        e[1] = fts_expr(0, "api", rq->q);
        e[2] = fts_expr(0, "api names", rq->q);
        e[3] = fts_expr(0, "api names props", rq->q);
    }
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(e[0]),       DBP_TEXT(e[1]),       DBP_TEXT(e[2]),
                       DBP_TEXT(e[3]),       DBP_INT(gen),         DBP_TEXT(rq->q->norm),
                       DBP_TEXT(rq->kinds),  DBP_TEXT(rq->after ? rq->after : ""), DBP_INT((int64_t)rq->limit + 1)};
    int rc = oms_store_search_query(c, p, &r, err);
    for (int i = 0; i < 4; i++)
        free(e[i]);
    if (rc)
        return rc;
    out->items = json_array();
    size_t n = r->nrows < rq->limit ? r->nrows : rq->limit;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out->items, item_of(r, i, rq->q));
    if (r->nrows > rq->limit)
        out->next_cursor = oms_xstrdup(oms_dbres_get(r, rq->limit - 1, 5));
    out->total = r->nrows ? oms_dbres_int(r, 0, 6) : rq->after ? -1 : 0;
    oms_dbres_free(r);
    return OMS_OK;
}

/* ---- highlights ---- */

#define WINDOW 160 /* code points of a long text shown around its first match */

typedef struct {
    const oms_search_query *q;
    size_t (*ranges)[2]; /* byte ranges */
    size_t n, cap;
} hl_ctx;

static void add_range(hl_ctx *h, size_t start, size_t end)
{
    if (h->n && h->ranges[h->n - 1][1] >= start) { /* adjacent or overlapping: merge */
        if (end > h->ranges[h->n - 1][1])
            h->ranges[h->n - 1][1] = end;
        return;
    }
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 8;
        h->ranges = oms_xrealloc(h->ranges, h->cap * sizeof *h->ranges);
    }
    h->ranges[h->n][0] = start;
    h->ranges[h->n][1] = end;
    h->n++;
}

static void hl_word(void *ctx, const char *text, size_t start, size_t len)
{
    hl_ctx *h = ctx;
    size_t best = 0;
    for (size_t i = 0; i < h->q->nterms; i++)
        if (oms_search_word_matches(text + start, len, h->q->terms[i]) && strlen(h->q->terms[i]) > best)
            best = strlen(h->q->terms[i]);
    if (best)
        add_range(h, start, start + best);
}

/* An identifier run together (placedat for placed_at): the span of `text`
 * whose letters and digits spell `term` from the start. */
static bool ident_span(const char *text, const char *term, size_t *end)
{
    size_t i = 0, t = 0;
    while (text[i] && term[t]) {
        char c = text[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (unsigned char)c >= 0x80;
        if (!alnum) {
            if (t == 0)
                return false;
            i++;
            continue;
        }
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != term[t])
            return false;
        i++, t++;
    }
    if (term[t])
        return false;
    *end = i;
    return true;
}

static size_t cp_count(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

/* Byte offset of code point `cp` in s (or its end). */
static size_t cp_offset(const char *s, size_t cp)
{
    size_t i = 0, n = 0;
    for (; s[i]; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (n == cp)
                return i;
            n++;
        }
    return i;
}

static void html_escaped(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char one[2] = {s[i], 0};
        const char *rep = s[i] == '<' ? "&lt;" : s[i] == '>' ? "&gt;" : s[i] == '&' ? "&amp;"
                          : s[i] == '"' ? "&quot;" : s[i] == '\'' ? "&#39;" : one;
        append(buf, len, cap, rep);
    }
}

/* One field's highlight, or NULL when no term matches in it. */
static json_t *highlight(const char *field, const char *text, bool ident, const oms_search_query *q)
{
    if (!text || !*text)
        return NULL;
    hl_ctx h = {.q = q};
    oms_search_words(text, hl_word, &h);
    if (ident) {
        for (size_t i = 0; i < q->nterms; i++) {
            size_t end;
            if (ident_span(text, q->terms[i], &end)) {
                /* the run-together span covers the sub-word matches it starts with */
                if (h.n && h.ranges[0][0] == 0)
                    h.ranges[0][1] = end > h.ranges[0][1] ? end : h.ranges[0][1];
                else {
                    h.ranges = oms_xrealloc(h.ranges, (h.n + 1) * sizeof *h.ranges);
                    memmove(h.ranges + 1, h.ranges, h.n * sizeof *h.ranges);
                    h.ranges[0][0] = 0;
                    h.ranges[0][1] = end;
                    h.n++;
                }
                /* merge what the longer span now overlaps */
                size_t k = 1;
                while (k < h.n && h.ranges[k][0] <= h.ranges[0][1]) {
                    if (h.ranges[k][1] > h.ranges[0][1])
                        h.ranges[0][1] = h.ranges[k][1];
                    k++;
                }
                memmove(h.ranges + 1, h.ranges + k, (h.n - k) * sizeof *h.ranges);
                h.n -= k - 1;
            }
        }
    }
    if (h.n == 0) {
        free(h.ranges);
        return NULL;
    }
    /* a window around the first match of a long text */
    size_t total = cp_count(text, strlen(text)), from = 0, to = strlen(text);
    bool cut_left = false, cut_right = false;
    if (total > WINDOW) {
        size_t first = cp_count(text, h.ranges[0][0]);
        size_t lo = first > WINDOW / 4 ? first - WINDOW / 4 : 0;
        from = cp_offset(text, lo);
        to = cp_offset(text, lo + WINDOW);
        cut_left = from > 0;
        cut_right = to < strlen(text);
    }
    json_t *ranges = json_array();
    char *frag = NULL;
    size_t flen = 0, fcap = 0, pos = from;
    append(&frag, &flen, &fcap, cut_left ? "\xe2\x80\xa6" : "");
    for (size_t i = 0; i < h.n; i++) {
        size_t s = h.ranges[i][0], e = h.ranges[i][1];
        if (e <= from || s >= to)
            continue;
        if (s < from)
            s = from;
        if (e > to)
            e = to;
        size_t base = cut_left ? 1 : 0; /* the ellipsis is one code point of `text` */
        json_array_append_new(ranges, json_pack("[I,I]", (json_int_t)(base + cp_count(text + from, s - from)),
                                                (json_int_t)(base + cp_count(text + from, e - from))));
        html_escaped(&frag, &flen, &fcap, text + pos, s - pos);
        append(&frag, &flen, &fcap, "<mark>");
        html_escaped(&frag, &flen, &fcap, text + s, e - s);
        append(&frag, &flen, &fcap, "</mark>");
        pos = e;
    }
    html_escaped(&frag, &flen, &fcap, text + pos, to - pos);
    if (cut_right)
        append(&frag, &flen, &fcap, "\xe2\x80\xa6");
    char *shown = oms_xmalloc((to - from) + 7);
    snprintf(shown, (to - from) + 7, "%s%.*s%s", cut_left ? "\xe2\x80\xa6" : "", (int)(to - from), text + from,
             cut_right ? "\xe2\x80\xa6" : "");
    json_t *o = json_pack("{s:s,s:s,s:o,s:s}", "field", field, "text", shown, "ranges", ranges, "fragment", frag);
    free(shown);
    free(frag);
    free(h.ranges);
    return o;
}

/* JSON pointer token escaping (RFC 6901) is not needed: api names are
 * letters, digits and '_'. */
static void add_hl(json_t *out, const char *field, const char *text, bool ident, const oms_search_query *q)
{
    json_t *h = highlight(field, text, ident, q);
    if (h)
        json_array_append_new(out, h);
}

static const char *str(const json_t *o, const char *name) { return json_string_value(json_object_get(o, name)); }

static void items(json_t *out, const char *list, const json_t *doc, const oms_search_query *q)
{
    size_t i;
    const json_t *it;
    char path[320];
    json_array_foreach(json_object_get(doc, list), i, it) {
        const char *name = str(it, "api_name");
        if (!name)
            continue;
        snprintf(path, sizeof path, "/%s/%s/api_name", list, name);
        add_hl(out, path, name, true, q);
        if (str(it, "display_name") && strcmp(str(it, "display_name"), name) != 0) {
            snprintf(path, sizeof path, "/%s/%s/display_name", list, name);
            add_hl(out, path, str(it, "display_name"), false, q);
        }
        snprintf(path, sizeof path, "/%s/%s/description", list, name);
        add_hl(out, path, str(it, "description"), false, q);
        size_t k;
        const json_t *v;
        json_array_foreach(json_object_get(it, "enum"), k, v) {
            snprintf(path, sizeof path, "/%s/%s/enum/%zu", list, name, k);
            add_hl(out, path, json_string_value(v), true, q);
        }
        const char *refs[] = {"object_type", "shared_property"};
        for (size_t r = 0; r < 2; r++) {
            snprintf(path, sizeof path, "/%s/%s/%s", list, name, refs[r]);
            add_hl(out, path, str(it, refs[r]), true, q);
        }
    }
}

static void names(json_t *out, const char *list, const json_t *doc, const oms_search_query *q)
{
    size_t i;
    const json_t *v;
    char path[64];
    json_array_foreach(json_object_get(doc, list), i, v) {
        snprintf(path, sizeof path, "/%s/%zu", list, i);
        add_hl(out, path, json_string_value(v), true, q);
    }
}

json_t *oms_search_highlights(oms_kind kind, const json_t *doc, const oms_search_query *q)
{
    json_t *out = json_array();
    const char *api = str(doc, "api_name");
    add_hl(out, "/api_name", api, true, q);
    if (str(doc, "display_name") && (!api || strcmp(str(doc, "display_name"), api) != 0))
        add_hl(out, "/display_name", str(doc, "display_name"), false, q);
    add_hl(out, "/description", str(doc, "description"), false, q);
    switch (kind) {
    case OMS_KIND_OBJECT_TYPE:
    case OMS_KIND_INTERFACE:
        items(out, "properties", doc, q);
        names(out, "implements", doc, q);
        names(out, "extends", doc, q);
        break;
    case OMS_KIND_LINK_TYPE:
        add_hl(out, "/from", str(doc, "from"), true, q);
        add_hl(out, "/to", str(doc, "to"), true, q);
        break;
    case OMS_KIND_ACTION_TYPE:
        items(out, "parameters", doc, q);
        break;
    case OMS_KIND_FUNCTION_TYPE:
        items(out, "inputs", doc, q);
        add_hl(out, "/output/object_type", str(json_object_get(doc, "output"), "object_type"), true, q);
        break;
    default:
        break;
    }
    return out;
}
