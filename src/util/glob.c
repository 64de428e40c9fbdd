#include "util/glob.h"

#include <string.h>

/* Backtracking matcher; patterns are short (branch names <= 100 bytes), and
 * each '*' or '**' tries every split point at most once per position. */
static bool match(const char *p, const char *n)
{
    for (;;) {
        if (*p == '\0')
            return *n == '\0';
        if (p[0] == '*' && p[1] == '*') {
            const char *rest = p + 2;
            for (const char *s = n;; s++) {
                if (match(rest, s))
                    return true;
                if (*s == '\0')
                    return false;
            }
        }
        if (*p == '*') {
            for (const char *s = n;; s++) {
                if (match(p + 1, s))
                    return true;
                if (*s == '\0' || *s == '/')
                    return false;
            }
        }
        if (*p != *n)
            return false;
        p++, n++;
    }
}

bool oms_glob_match(const char *pattern, const char *name)
{
    return pattern && name && match(pattern, name);
}

bool oms_glob_list_match(const char *globs, const char *name)
{
    if (!globs || !name)
        return false;
    const char *p = globs;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        size_t len = (size_t)(end - p);
        while (len && p[len - 1] == ' ')
            len--;
        char one[256];
        if (len && len < sizeof one) {
            memcpy(one, p, len);
            one[len] = '\0';
            if (match(one, name))
                return true;
        }
        p = end;
    }
    return false;
}
