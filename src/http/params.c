#include "http/params.h"

#include <stdlib.h>
#include <string.h>

#include "util/encoding.h"

const char *oms_req_etag(oms_request *r, const char *header)
{
    const char *h = oms_req_header(r, header);
    if (!h)
        return NULL;
    while (*h == ' ')
        h++;
    if (strncmp(h, "W/", 2) == 0)
        h += 2;
    size_t n = strlen(h);
    while (n && h[n - 1] == ' ')
        n--;
    if (n >= 2 && h[0] == '"' && h[n - 1] == '"')
        return oms_arena_strndup(r->arena, h + 1, n - 2);
    return oms_arena_strndup(r->arena, h, n);
}

void oms_resp_etag(oms_request *r, const char *tag)
{
    char *q = oms_arena_printf(r->arena, "\"%s\"", tag);
    oms_resp_header(r, "ETag", q);
}

bool oms_not_modified(oms_request *r, const char *tag)
{
    const char *inm = oms_req_etag(r, "If-None-Match");
    if (!inm || (strcmp(inm, tag) != 0 && strcmp(inm, "*") != 0))
        return false;
    oms_resp_text(r, 304, "application/json", "", 0);
    oms_resp_etag(r, tag);
    return true;
}

bool oms_paging(oms_request *r, size_t *limit, const char **cursor)
{
    *limit = 100;
    *cursor = NULL;
    const char *l = oms_req_query(r, "limit");
    if (l) {
        char *end;
        long v = strtol(l, &end, 10);
        if (*l == '\0' || *end || v < 1 || v > 1000) {
            oms_resp_problem(r, OMS_EINVAL, "limit must be an integer from 1 to 1000", NULL);
            return false;
        }
        *limit = (size_t)v;
    }
    const char *c = oms_req_query(r, "cursor");
    if (c && *c) {
        size_t n = strlen(c);
        unsigned char *buf = oms_arena_alloc(r->arena, n + 1);
        long len = oms_b64url_decode(buf, c, n);
        if (len < 0 || memchr(buf, 0, (size_t)len) || !oms_utf8_valid((char *)buf, (size_t)len)) {
            oms_resp_problem(r, OMS_EINVAL, "cursor is not valid", NULL);
            return false;
        }
        buf[len] = '\0';
        *cursor = (const char *)buf;
    }
    return true;
}

char *oms_cursor_encode(oms_request *r, const char *position)
{
    size_t n = strlen(position);
    char *out = oms_arena_alloc(r->arena, (n + 2) / 3 * 4 + 1);
    oms_b64url_encode(out, (const unsigned char *)position, n);
    return out;
}

bool oms_body_fields_ok(oms_request *r, const json_t *body, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v) {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known) {
            oms_resp_problem(r, OMS_EINVAL, oms_arena_printf(r->arena, "unknown field %.64s", key), NULL);
            return false;
        }
    }
    return true;
}

int oms_resp_page(oms_request *r, const oms_dbres *res, size_t limit, size_t cursor_col, oms_row_fn row, void *ctx,
                  json_t *extra)
{
    json_t *items = json_array();
    size_t n = res->nrows < limit ? res->nrows : limit;
    for (size_t i = 0; i < n; i++) { /* a row callback answers NULL for a row the caller may not see */
        json_t *item = row(res, i, ctx);
        if (item)
            json_array_append_new(items, item);
    }
    json_t *next = res->nrows > limit ? json_string(oms_cursor_encode(r, oms_dbres_get(res, limit - 1, cursor_col)))
                                      : json_null();
    json_t *page = json_pack("{s:o,s:o}", "items", items, "next_cursor", next);
    if (extra) {
        json_object_update(page, extra);
        json_decref(extra);
    }
    return oms_resp_json(r, 200, page);
}
