/* RBAC decision table driver: reads rbac_decisions.rules and compares each
 * decision with the matching line of rbac_decisions.eval. */
#include "auth/rbac.h"
#include "t.h"

static char *next_line(FILE *f, char *buf, size_t cap)
{
    while (fgets(buf, (int)cap, f)) {
        buf[strcspn(buf, "\r\n")] = '\0';
        if (buf[0] && buf[0] != '#')
            return buf;
    }
    return NULL;
}

static void decode_spaces(char *s)
{
    char *p;
    while ((p = strstr(s, "_SP_")) != NULL) {
        *p = ' ';
        memmove(p + 1, p + 4, strlen(p + 4) + 1);
    }
}

static void decision_table(void)
{
    FILE *rules = fopen("tests/unit/rbac_decisions.rules", "r");
    FILE *eval = fopen("tests/unit/rbac_decisions.eval", "r");
    CHECK(rules && eval);
    if (!rules || !eval)
        return;
    char rl[512], el[512];
    int n = 0;
    while (next_line(rules, rl, sizeof rl)) {
        CHECK(next_line(eval, el, sizeof el) != NULL);
        char roles_txt[256], perm_txt[64];
        CHECK(sscanf(rl, "%255s %63s", roles_txt, perm_txt) == 2);
        decode_spaces(roles_txt);
        const char *roles[16];
        size_t nroles = 0;
        if (strcmp(roles_txt, "-") != 0)
            for (char *save = NULL, *t = strtok_r(roles_txt, ",", &save); t && nroles < 16;
                 t = strtok_r(NULL, ",", &save))
                roles[nroles++] = t;
        oms_perm p;
        CHECK(oms_perm_parse(&p, perm_txt) == 0);
        bool allowed = oms_rbac_allows(oms_rbac_permissions(roles, nroles), p);
        bool expected = strcmp(el, "allow") == 0;
        if (allowed != expected) {
            fprintf(stderr, "  line %d: %s -> %s, expected %s\n", n + 1, rl, allowed ? "allow" : "deny", el);
            t_failed_current = 1;
        }
        n++;
    }
    CHECK(next_line(eval, el, sizeof el) == NULL); /* same length */
    CHECK(n >= 300);
    fclose(rules);
    fclose(eval);
}

static void markers_are_never_granted(void)
{
    const char *roles[] = {"admin"};
    oms_permset s = oms_rbac_permissions(roles, 1);
    CHECK(!oms_rbac_allows(s, OMS_PERM_UNSET));
    CHECK(!oms_rbac_allows(s, OMS_PERM_PUBLIC));
    CHECK(!oms_rbac_allows(s, OMS_PERM_AUTHENTICATED));
    CHECK(!oms_rbac_allows(s, OMS_PERM__COUNT));
    CHECK(oms_rbac_allows(s, OMS_PERM_METRICS_READ));
}

static void perm_names_round_trip(void)
{
    for (int p = OMS_PERM_SCHEMA_READ; p < OMS_PERM__COUNT; p++) {
        oms_perm q;
        CHECK(oms_perm_parse(&q, oms_perm_name((oms_perm)p)) == 0);
        CHECK_EQ_INT(q, p);
    }
    oms_perm q;
    CHECK(oms_perm_parse(&q, "public") != 0);
    CHECK(oms_perm_parse(&q, "Schema:Read") != 0);
}

int main(void)
{
    static const t_case cases[] = {T(decision_table), T(markers_are_never_granted), T(perm_names_round_trip)};
    return T_RUN("rbac", cases);
}
