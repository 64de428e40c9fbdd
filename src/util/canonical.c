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

bool oms_canonical_map_add(oms_canonical_map *m, const char *key, const char *value)
{
    size_t klen, vlen;
    if (!printed_as_is(key, &klen) || !printed_as_is(value, &vlen))
        return false;
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
    return true;
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
