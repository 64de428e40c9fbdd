#include "governance/issue_refs.h"

#include <ctype.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
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

/* Key forms: POSIX extended regular expressions, each matching a whole
 * key. Configured once at start-up (OMS_ISSUE_KEY_PATTERNS); the default
 * covers ABC-123 (GH-123 included) and #123. */
#define MAX_PATTERNS 8
static const char k_default_patterns[] = "[A-Z][A-Z0-9_]{0,31}-[0-9]{1,18};#[0-9]{1,18}";

static struct {
    regex_t re[MAX_PATTERNS];
    int n;
    bool ready;
    pthread_mutex_t mu;
} g_pat = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int compile(const char *spec, oms_error *err)
{
    int n = 0;
    const char *p = spec;
    while (*p && n < MAX_PATTERNS) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len) {
            char buf[256];
            if (len + 3 > sizeof buf)
                return oms_err_set(err, OMS_ECONFIG, "OMS_ISSUE_KEY_PATTERNS: a pattern is too long");
            snprintf(buf, sizeof buf, "^%.*s$", (int)len, p);
            if (regcomp(&g_pat.re[n], buf, REG_EXTENDED | REG_NOSUB) != 0)
                return oms_err_set(err, OMS_ECONFIG, "OMS_ISSUE_KEY_PATTERNS: invalid pattern %.*s", (int)(len > 64 ? 64 : len), p);
            n++;
        }
        p = end ? end + 1 : p + len;
    }
    if (n == 0)
        return oms_err_set(err, OMS_ECONFIG, "OMS_ISSUE_KEY_PATTERNS has no pattern");
    g_pat.n = n;
    g_pat.ready = true;
    return OMS_OK;
}

int oms_issue_patterns_configure(const char *spec, oms_error *err)
{
    pthread_mutex_lock(&g_pat.mu);
    for (int i = 0; i < g_pat.n; i++)
        regfree(&g_pat.re[i]);
    g_pat.n = 0;
    g_pat.ready = false;
    int rc = compile(spec && *spec ? spec : k_default_patterns, err);
    pthread_mutex_unlock(&g_pat.mu);
    return rc;
}

static void ensure_patterns(void)
{
    if (g_pat.ready)
        return;
    oms_error err;
    pthread_mutex_lock(&g_pat.mu);
    if (!g_pat.ready)
        compile(k_default_patterns, &err);
    pthread_mutex_unlock(&g_pat.mu);
}

bool oms_issue_key_valid(const char *s)
{
    ensure_patterns();
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (int i = 0; i < g_pat.n; i++)
        if (regexec(&g_pat.re[i], s, 0, NULL, 0) == 0)
            return true;
    return false;
}

static bool token_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '#'; }

void oms_issue_keys_scan(const char *text, json_t *out)
{
    if (!text)
        return;
    /* Candidate keys are the words of the text (letters, digits, _ - #). */
    const char *p = text;
    while (*p) {
        while (*p && !token_char(*p))
            p++;
        const char *start = p;
        while (*p && token_char(*p))
            p++;
        size_t len = (size_t)(p - start);
        /* trailing '-' (e.g. "OMS-1-") is punctuation, not part of a key */
        while (len && start[len - 1] == '-')
            len--;
        char buf[65];
        if (len && len < sizeof buf) {
            memcpy(buf, start, len);
            buf[len] = '\0';
            if (oms_issue_key_valid(buf))
                add_unique(out, buf, len);
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

json_t *oms_issue_refs_from(const char *issue_id, const char *issue_ids, const json_t *body, const char *message,
                            json_t *invalid)
{
    json_t *out = json_array();
    const char *h = issue_id;
    if (h)
        add_explicit(out, invalid, h, strlen(h));
    h = issue_ids;
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
