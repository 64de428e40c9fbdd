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
