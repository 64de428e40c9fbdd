#include "governance/issue_refs.h"

#include <ctype.h>
#include <string.h>

static void add_unique(json_t *arr, const char *key, size_t len)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *s = json_string_value(v);
        if (strlen(s) == len && strncmp(s, key, len) == 0)
            return;
    }
    json_array_append_new(arr, json_stringn(key, len));
}

/* Length of a key starting at s: PROJECT-123 (project: a capital letter, then
 * capitals, digits or '_', 1-32 long) or #123; 0 when none starts here. */
static size_t key_at(const char *s)
{
    size_t i = 0;
    if (s[0] == '#') {
        for (i = 1; isdigit((unsigned char)s[i]) && i < 20; i++)
            ;
        return i > 1 ? i : 0;
    }
    if (!(s[0] >= 'A' && s[0] <= 'Z'))
        return 0;
    for (i = 1; i < 32 && ((s[i] >= 'A' && s[i] <= 'Z') || isdigit((unsigned char)s[i]) || s[i] == '_'); i++)
        ;
    if (s[i] != '-' || !isdigit((unsigned char)s[i + 1]))
        return 0;
    size_t j = i + 1;
    while (isdigit((unsigned char)s[j]) && j - i < 18)
        j++;
    return j;
}

bool oms_issue_key_valid(const char *s)
{
    size_t n = key_at(s);
    return n > 0 && s[n] == '\0';
}

void oms_issue_keys_scan(const char *text, json_t *out)
{
    if (!text)
        return;
    for (const char *p = text; *p; p++) {
        /* a key starts at a word boundary and ends at one */
        if (p != text && (isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '-'))
            continue;
        size_t n = key_at(p);
        if (n && !(isalnum((unsigned char)p[n]) || p[n] == '_')) {
            add_unique(out, p, n);
            p += n - 1;
        }
    }
}

static void add_explicit(json_t *out, json_t *invalid, const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (!len)
        return;
    char buf[64];
    if (len < sizeof buf) {
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (oms_issue_key_valid(buf)) {
            add_unique(out, s, len);
            return;
        }
    }
    if (invalid)
        json_array_append_new(invalid, json_stringn(s, len > 64 ? 64 : len));
}

json_t *oms_issue_refs_collect(oms_request *req, const json_t *body, const char *message, json_t *invalid)
{
    json_t *out = json_array();
    const char *h = oms_req_header(req, "X-Issue-ID");
    if (h)
        add_explicit(out, invalid, h, strlen(h));
    h = oms_req_header(req, "X-Issue-IDs");
    while (h && *h) {
        const char *comma = strchr(h, ',');
        size_t len = comma ? (size_t)(comma - h) : strlen(h);
        add_explicit(out, invalid, h, len);
        h = comma ? comma + 1 : NULL;
    }
    const json_t *one = json_object_get(body, "issue_id");
    if (json_is_string(one))
        add_explicit(out, invalid, json_string_value(one), json_string_length(one));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(body, "issue_ids"), i, v) {
        if (json_is_string(v))
            add_explicit(out, invalid, json_string_value(v), json_string_length(v));
        else if (invalid)
            json_array_append_new(invalid, json_string("(not a string)"));
    }
    oms_issue_keys_scan(message, out);
    return out;
}
