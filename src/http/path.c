#include "http/path.h"

#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *oms_pct_encode_segment(oms_arena *a, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = oms_arena_alloc(a, 3 * strlen(s) + 1), *p = out;
    if (!out)
        return NULL;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
            *c == '.' || *c == '_' || *c == '~') {
            *p++ = (char)*c;
        } else {
            *p++ = '%';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 15];
        }
    }
    *p = '\0';
    return out;
}

char *oms_pct_decode(const char *s, size_t len, oms_arena *a, size_t *out_len, oms_error *err)
{
    char *d = oms_arena_alloc(a, len + 1);
    size_t o = 0;
    if (!d) {
        oms_err_set(err, OMS_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            d[o++] = s[i];
            continue;
        }
        if (i + 2 >= len) {
            oms_err_set(err, OMS_EBADPATH, "incomplete percent escape");
            return NULL;
        }
        int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
        if (h < 0 || l < 0) {
            oms_err_set(err, OMS_EBADPATH, "bad percent escape");
            return NULL;
        }
        char ch = (char)(h << 4 | l);
        if (ch == '\0') {
            oms_err_set(err, OMS_EBADPATH, "encoded NUL");
            return NULL;
        }
        d[o++] = ch;
        i += 2;
    }
    d[o] = '\0';
    if (out_len)
        *out_len = o;
    return d;
}

static bool is_dot_segment(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

/* Once decoded, a segment may hold '/' (branch names do): none of the pieces
 * between slashes may be a dot segment or empty. */
static bool decoded_is_safe(const char *d, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || d[i] == '/') {
            if (is_dot_segment(d + start, i - start))
                return false;
            if (i - start == 0 && len != 0 && memchr(d, '/', len))
                return false;
            start = i + 1;
        }
        else if (d[i] == '\\')
            return false;
    }
    return true;
}

int oms_path_parse(oms_path *out, const char *raw, size_t len, oms_arena *a, oms_error *err)
{
    out->nseg = 0;
    if (len == 0 || raw[0] != '/')
        return oms_err_set(err, OMS_EBADPATH, "path must start with /");
    if (len == 1)
        return OMS_OK;
    /* The console's directory URL is the one path with a trailing slash
     * (SPEC §5: GET /ui/...); it is the route /ui, whose handler answers
     * the bare "/ui" with a redirect, so each still has one spelling. */
    if (len == 4 && memcmp(raw, "/ui/", 4) == 0) {
        out->seg[out->nseg++] = oms_arena_strndup(a, "ui", 2);
        return OMS_OK;
    }
    size_t start = 1;
    for (size_t i = 1; i <= len; i++) {
        if (i < len && raw[i] != '/') {
            unsigned char ch = (unsigned char)raw[i];
            if (ch < 0x20 || ch == 0x7f || ch == '\\')
                return oms_err_set(err, OMS_EBADPATH, "forbidden byte in path");
            continue;
        }
        size_t slen = i - start;
        if (slen == 0)
            return oms_err_set(err, OMS_EBADPATH, "empty path segment");
        if (out->nseg == OMS_MAX_SEGMENTS)
            return oms_err_set(err, OMS_EBADPATH, "too many path segments");
        const char *s = raw + start;
        if (is_dot_segment(s, slen))
            return oms_err_set(err, OMS_EBADPATH, "dot segment in path");
        size_t dlen;
        char *d = oms_pct_decode(s, slen, a, &dlen, err);
        if (!d)
            return err->code;
        if (!decoded_is_safe(d, dlen))
            return oms_err_set(err, OMS_EBADPATH, "encoded dot segment or backslash in path");
        out->seg[out->nseg++] = oms_arena_strndup(a, s, slen);
        start = i + 1;
    }
    return OMS_OK;
}

static bool charset_ok(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr(extra, c)))
            return false;
    }
    return true;
}

bool oms_valid_opaque_id(const char *s) { return charset_ok(s, 128, "_-"); }
bool oms_valid_request_id(const char *s) { return charset_ok(s, 64, "._-"); }
