/* Branch globs of ACL policies: grammar, compilation, matching. */
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "auth/acl_internal.h"

static bool glob_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '/' || c == '-' ||
           c == '*';
}

/* The grammar keeps out globs that could never match a branch name (upper
 * case, a leading '/', '.' or '-', empty segments, "..") so that a typo is
 * a 400 rather than a policy that silently applies nowhere. */
bool oms_acl_glob_valid(const char *g)
{
    if (!g)
        return false;
    size_t n = strlen(g);
    if (n == 0 || n > OMS_ACL_MAX_GLOB)
        return false;
    if (!((g[0] >= 'a' && g[0] <= 'z') || (g[0] >= '0' && g[0] <= '9') || g[0] == '*'))
        return false;
    if (g[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!glob_char(g[i]))
            return false;
        if (g[i] == '*' && i >= 2 && g[i - 1] == '*' && g[i - 2] == '*')
            return false;
        if (i > 0 && ((g[i] == '/' && g[i - 1] == '/') || (g[i] == '.' && g[i - 1] == '.')))
            return false;
    }
    return true;
}

int oms_acl_glob_compile(oms_acl_glob *out, const char *g)
{
    size_t n = strlen(g);
    const char *star = strchr(g, '*');
    out->text = malloc(n + 1);
    if (!out->text)
        return OMS_ENOMEM;
    if (!star) {
        out->kind = OMS_GLOB_EXACT;
        out->len = n;
        memcpy(out->text, g, n + 1);
        return OMS_OK;
    }
    size_t lit = (size_t)(star - g);
    if (strcmp(star, "**") == 0 || strcmp(star, "*") == 0) {
        out->kind = star[1] ? OMS_GLOB_PREFIX_ANY : OMS_GLOB_PREFIX_SEG;
        out->len = lit;
        memcpy(out->text, g, lit);
        out->text[lit] = '\0';
        return OMS_OK;
    }
    out->kind = OMS_GLOB_GENERAL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (g[i] == '*' && g[i + 1] == '*') {
            out->text[k++] = OMS_GLOB_TOK_STARSTAR;
            i++;
        } else {
            out->text[k++] = g[i] == '*' ? OMS_GLOB_TOK_STAR : g[i];
        }
    }
    out->text[k] = '\0';
    out->len = k;
    return OMS_OK;
}

void oms_acl_glob_free(oms_acl_glob *g)
{
    if (!g)
        return;
    free(g->text);
    g->text = NULL;
}

/* After a state is reached, the stars that follow it may match nothing. */
static void close_stars(const char *tok, size_t n, unsigned char *st)
{
    for (size_t i = 0; i < n; i++)
        if (st[i] && (tok[i] == OMS_GLOB_TOK_STAR || tok[i] == OMS_GLOB_TOK_STARSTAR))
            st[i + 1] = 1;
}

/* A set-of-states simulation: O(tokens * length) in the worst case, never
 * exponential like naive backtracking over several stars. */
static bool general_match(const char *tok, size_t n, const char *s, size_t len)
{
    unsigned char a[OMS_ACL_MAX_GLOB + 1], b[OMS_ACL_MAX_GLOB + 1];
    unsigned char *cur = a, *nxt = b;
    memset(cur, 0, n + 1);
    cur[0] = 1;
    close_stars(tok, n, cur);
    for (size_t k = 0; k < len; k++) {
        char c = s[k];
        bool any = false;
        memset(nxt, 0, n + 1);
        for (size_t i = 0; i < n; i++) {
            if (!cur[i])
                continue;
            char t = tok[i];
            if (t == OMS_GLOB_TOK_STARSTAR || (t == OMS_GLOB_TOK_STAR && c != '/'))
                nxt[i] = 1, any = true;
            else if (t == c)
                nxt[i + 1] = 1, any = true;
        }
        if (!any)
            return false;
        close_stars(tok, n, nxt);
        unsigned char *t = cur;
        cur = nxt;
        nxt = t;
    }
    return cur[n] != 0;
}

bool oms_acl_glob_matches(const oms_acl_glob *g, const char *s, size_t len)
{
    switch (g->kind) {
    case OMS_GLOB_EXACT:
        return len == g->len && memcmp(s, g->text, len) == 0;
    case OMS_GLOB_PREFIX_ANY:
        return len >= g->len && memcmp(s, g->text, g->len) == 0;
    case OMS_GLOB_PREFIX_SEG:
        return len >= g->len && memcmp(s, g->text, g->len) == 0 && !memchr(s + g->len, '/', len - g->len);
    case OMS_GLOB_GENERAL:
        return general_match(g->text, g->len, s, len);
    }
    return false;
}

bool oms_acl_glob_match(const char *glob, const char *branch)
{
    if (!oms_acl_glob_valid(glob) || !branch)
        return false;
    oms_acl_glob g;
    if (oms_acl_glob_compile(&g, glob) != OMS_OK)
        return false;
    bool m = oms_acl_glob_matches(&g, branch, strlen(branch));
    oms_acl_glob_free(&g);
    return m;
}
