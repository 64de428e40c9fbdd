#include "ontology/names.h"

#include <string.h>

bool oms_valid_branch_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 100)
        return false;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '/' ||
              c == '-'))
            return false;
    }
    if (strstr(s, "..") || strstr(s, "//") || s[n - 1] == '/')
        return false;
    if (n >= 5 && strcmp(s + n - 5, ".lock") == 0)
        return false;
    /* No piece between slashes may start with '.', so no "x/.hidden" or "x/./y". */
    for (size_t i = 1; i < n; i++)
        if (s[i - 1] == '/' && s[i] == '.')
            return false;
    return true;
}

bool oms_valid_api_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 100)
        return false;
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}
