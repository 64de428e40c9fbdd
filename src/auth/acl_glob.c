/* Branch globs of ACL policies: grammar, compilation, matching. */
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "auth/acl_internal.h"
#include "util/alloc.h"

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

static int char_class(unsigned char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= '0' && c <= '9')
        return 26 + (c - '0');
    switch (c) {
    case '.': return 36;
    case '_': return 37;
    case '/': return 38;
    case '-': return 39;
    default: return 40;
    }
}

static bool is_star(char t) { return t == OMS_GLOB_TOK_STAR || t == OMS_GLOB_TOK_STARSTAR; }

/* Tokens, the rejection figures and, up to 63 tokens, the Shift-And masks:
 * bit i of lit[class] is set when token i is that literal character; the
 * accepting state is bit `len`. */
static int compile_general(oms_acl_glob *out, const char *g, size_t n)
{
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
    out->len = (uint8_t)k;
    while (out->prefix < k && !is_star(out->text[out->prefix]))
        out->prefix++;
    while (out->suffix < k && !is_star(out->text[k - 1 - out->suffix]))
        out->suffix++;
    out->head = out->suffix ? out->text[k - 1] : 0;
    for (size_t i = 0; i < k; i++) {
        char t = out->text[i];
        out->min_len += !is_star(t);
        out->slashes += t == '/';
        out->crosses = out->crosses || t == OMS_GLOB_TOK_STARSTAR;
    }
    if (k > 63)
        return OMS_OK;
    out->lit = oms_xcalloc(OMS_GLOB_CLASSES, sizeof *out->lit);
    for (size_t i = 0; i < k; i++) {
        char t = out->text[i];
        if (t == OMS_GLOB_TOK_STAR)
            out->stars |= (uint64_t)1 << i;
        else if (t == OMS_GLOB_TOK_STARSTAR)
            out->stars |= (uint64_t)1 << i, out->starstars |= (uint64_t)1 << i;
        else
            out->lit[char_class((unsigned char)t)] |= (uint64_t)1 << i;
    }
    return OMS_OK;
}

int oms_acl_glob_compile(oms_acl_glob *out, const char *g)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(g);
    const char *star = strchr(g, '*');
    out->text = oms_xmalloc(n + 1);
    if (!star) {
        out->kind = OMS_GLOB_EXACT;
        out->len = (uint8_t)n;
        memcpy(out->text, g, n + 1);
        out->head = g[0];
        return OMS_OK;
    }
    size_t lit = (size_t)(star - g);
    if (strcmp(star, "**") == 0 || strcmp(star, "*") == 0) {
        out->kind = star[1] ? OMS_GLOB_PREFIX_ANY : OMS_GLOB_PREFIX_SEG;
        out->len = (uint8_t)lit;
        memcpy(out->text, g, lit);
        out->text[lit] = '\0';
        out->head = g[0] == '*' ? 0 : g[0];
        return OMS_OK;
    }
    out->kind = OMS_GLOB_GENERAL;
    return compile_general(out, g, n);
}

void oms_acl_glob_free(oms_acl_glob *g)
{
    if (!g)
        return;
    free(g->text);
    free(g->lit);
    g->text = NULL;
    g->lit = NULL;
}

/* After a state is reached, the star that follows it may match nothing.
 * (Star tokens are never adjacent: "***" is not a valid glob.) */
static void close_stars(const char *tok, size_t n, unsigned char *st)
{
    for (size_t i = 0; i < n; i++)
        if (st[i] && is_star(tok[i]))
            st[i + 1] = 1;
}

/* A set-of-states simulation, one byte per state, for long globs: O(tokens
 * * length) in the worst case, never exponential like naive backtracking. */
static bool bytes_match(const char *tok, size_t n, const char *s, size_t len)
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

/* The same automaton with the states as bits of one word: a literal moves
 * its state on (shift), a star keeps its state (any character but '/'; a
 * two-star any character), and every reached star also reaches the next
 * state (empty match). A few operations per character of the name. */
static bool bits_match(const oms_acl_glob *g, const char *s, size_t len)
{
    uint64_t d = 1;
    d |= (d & g->stars) << 1;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        uint64_t keep = c == '/' ? g->starstars : g->stars;
        d = ((d & g->lit[char_class(c)]) << 1) | (d & keep);
        d |= (d & g->stars) << 1;
        if (!d)
            return false;
    }
    return (d >> g->len) & 1;
}

static bool general_match(const oms_acl_glob *g, const char *s, size_t len)
{
    /* the last byte inline first: it rejects most names before any call */
    if (len < g->min_len || (g->head && s[len - 1] != g->head) || memcmp(s, g->text, g->prefix) != 0 ||
        memcmp(s + len - g->suffix, g->text + g->len - g->suffix, g->suffix) != 0)
        return false;
    size_t slashes = 0;
    for (size_t i = 0; i < len; i++)
        slashes += s[i] == '/';
    /* One-star tokens never match '/': without a two-star, every '/' of the
     * name is one of the glob's. */
    if (g->crosses ? slashes < g->slashes : slashes != g->slashes)
        return false;
    return g->lit ? bits_match(g, s, len) : bytes_match(g->text, g->len, s, len);
}

bool oms_acl_glob_matches(const oms_acl_glob *g, const char *s, size_t len)
{
    /* the first byte inline first: it rejects most names before any call */
    if (g->kind != OMS_GLOB_GENERAL && g->head && (len == 0 || s[0] != g->head))
        return false;
    switch (g->kind) {
    case OMS_GLOB_EXACT:
        return len == g->len && memcmp(s, g->text, len) == 0;
    case OMS_GLOB_PREFIX_ANY:
        return len >= g->len && memcmp(s, g->text, g->len) == 0;
    case OMS_GLOB_PREFIX_SEG:
        return len >= g->len && memcmp(s, g->text, g->len) == 0 && !memchr(s + g->len, '/', len - g->len);
    case OMS_GLOB_GENERAL:
        return general_match(g, s, len);
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
