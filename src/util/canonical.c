#include "util/canonical.h"

#include <stdlib.h>
#include <string.h>

#include "util/encoding.h"

char *oms_canonical_dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

int oms_canonical_hash(const json_t *v, char out_hash[65], char **text)
{
    char *s = oms_canonical_dump(v);
    if (!s)
        return -1;
    oms_sha256_hex(out_hash, s, strlen(s));
    if (text)
        *text = s;
    else
        free(s);
    return 0;
}

static bool printed_as_is(const char *s, size_t *len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (; *p; p++)
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
            return false;
    *len = (size_t)(p - (const unsigned char *)s);
    return true;
}

void oms_canonical_map_init(oms_canonical_map *m, size_t expect_bytes)
{
    m->text = (oms_buf)OMS_BUF_INIT;
    m->n = 0;
    oms_buf_reserve(&m->text, expect_bytes + 2);
    oms_buf_putc(&m->text, '{');
}

static void put_member(oms_canonical_map *m, const char *key, size_t klen, const char *value, size_t vlen)
{
    oms_buf_reserve(&m->text, klen + vlen + 6);
    char *w = m->text.data + m->text.len;
    if (m->n++)
        *w++ = ',';
    *w++ = '"';
    memcpy(w, key, klen);
    w += klen;
    memcpy(w, "\":\"", 3);
    w += 3;
    memcpy(w, value, vlen);
    w += vlen;
    *w++ = '"';
    *w = '\0';
    m->text.len = (size_t)(w - m->text.data);
}

bool oms_canonical_map_add(oms_canonical_map *m, const char *key, const char *value)
{
    size_t klen, vlen;
    if (!printed_as_is(key, &klen) || !printed_as_is(value, &vlen))
        return false;
    put_member(m, key, klen, value, vlen);
    return true;
}

void oms_canonical_map_add_printable(oms_canonical_map *m, const char *key, size_t klen, const char *value,
                                     size_t vlen)
{
    put_member(m, key, klen, value, vlen);
}

void oms_canonical_map_hash(oms_canonical_map *m, char out_hash[65])
{
    oms_buf_putc(&m->text, '}');
    oms_sha256_hex(out_hash, m->text.data, m->text.len);
    oms_buf_reset(&m->text);
    oms_buf_putc(&m->text, '{');
    m->n = 0;
}

void oms_canonical_map_free(oms_canonical_map *m)
{
    oms_buf_free(&m->text);
}

/* Past the string whose opening quote is at text[i]: the index after its
 * closing quote, or len when it does not end. */
static size_t string_end(const char *text, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (text[i] == '\\')
            i++;
        else if (text[i] == '"')
            return i + 1;
    }
    return len;
}

bool oms_canonical_top_string(const char *text, size_t len, const char *key, const char **value, size_t *vlen)
{
    if (len == 0 || text[0] != '{')
        return false;
    size_t klen = strlen(key);
    int depth = 0;
    bool at_key = false; /* the next string at depth 1 is a member name */
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == '"') {
            size_t end = string_end(text, len, i);
            if (depth == 1 && at_key) {
                at_key = false;
                bool match = end - i - 2 == klen && memcmp(text + i + 1, key, klen) == 0;
                if (match && end < len && text[end] == ':') {
                    size_t v = end + 1;
                    if (v >= len || text[v] != '"')
                        return false; /* the member is not a string */
                    size_t vend = string_end(text, len, v);
                    if (vend == len && text[len - 1] != '"')
                        return false;
                    *value = text + v + 1;
                    *vlen = vend - v - 2;
                    return true;
                }
            }
            i = end - 1;
        } else if (ch == '{' || ch == '[') {
            depth++;
            at_key = depth == 1 && ch == '{';
        } else if (ch == '}' || ch == ']') {
            depth--;
        } else if (ch == ',' && depth == 1) {
            at_key = true;
        }
    }
    return false;
}
