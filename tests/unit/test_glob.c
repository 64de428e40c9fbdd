/* Branch globs: the plain matcher (util/glob.c, exempt branches, report)
 * and the ACL's compiled matcher agree on every case. */
#include <stdlib.h>

#include "auth/acl.h"
#include "http/path.h"
#include "t.h"
#include "util/glob.h"

static void table(void)
{
    static const struct {
        const char *glob, *name;
        bool match;
    } cases[] = {
        {"main", "main", true},          {"main", "mainx", false},        {"team-a/**", "team-a/x", true},
        {"team-a/**", "team-a/x/y", true}, {"team-a/**", "team-b/x", false}, {"feature/*", "feature/x", true},
        {"feature/*", "feature/x/y", false}, {"**", "anything/at/all", true}, {"*", "a/b", false},
        {"sandbox/**", "sandbox/try", true}, {"personal/**", "personal/dev/x", true}, {"a*c", "abbbc", true},
        {"a*c", "ab/c", false},          {"a/**/z", "a/b/c/z", true},      {"a/**/z", "a/z", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = oms_glob_match(cases[i].glob, cases[i].name);
        if (got != cases[i].match) {
            fprintf(stderr, "  %s ~ %s: %d\n", cases[i].glob, cases[i].name, got);
            t_failed_current = 1;
        }
        CHECK_EQ_INT(oms_acl_glob_match(cases[i].glob, cases[i].name), cases[i].match);
    }
    CHECK(oms_glob_list_match("sandbox/**, personal/**", "personal/me/x"));
    CHECK(!oms_glob_list_match("sandbox/**,personal/**", "feature/x"));
}

static void agree_on_random_cases(void)
{
    static const char alphabet[] = "ab/*";
    srand(7);
    for (int n = 0; n < 20000; n++) {
        char glob[12], name[12];
        int gl = 1 + rand() % 8, nl = 1 + rand() % 8;
        for (int i = 0; i < gl; i++)
            glob[i] = alphabet[rand() % 4];
        glob[gl] = '\0';
        for (int i = 0; i < nl; i++)
            name[i] = alphabet[rand() % 3];
        name[nl] = '\0';
        if (!oms_acl_glob_valid(glob) || !oms_valid_branch_name(name))
            continue;
        if (oms_glob_match(glob, name) != oms_acl_glob_match(glob, name)) {
            fprintf(stderr, "  disagree: %s ~ %s\n", glob, name);
            t_failed_current = 1;
            return;
        }
    }
}

int main(void)
{
    static const t_case cases[] = {T(table), T(agree_on_random_cases)};
    return T_RUN("glob", cases);
}
