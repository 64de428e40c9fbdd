/* The justification rule of emergency overrides (src/governance/overrides.c,
 * docs/security.md "Hardening"): 50 meaningful characters. The override
 * life cycle is tested through the API (tests/api/test_governance.py,
 * tests/security/test_hardening.py). */
#include <string.h>

#include "governance/overrides.h"
#include "t.h"

static const char *problem(const char *s) { return oms_override_justification_problem(s, strlen(s)); }

#define REAL50 "Disk full on the primary: schema fix needed now..."

static void accepted(void)
{
    CHECK_EQ_INT(strlen(REAL50), 50);
    CHECK(problem(REAL50) == NULL);
    CHECK(problem("   " REAL50 "\n\t ") == NULL);
    /* accented and non-Latin letters count as letters */
    CHECK(problem("Le pipeline de facturation est arrêté : correctif urgent du schéma.") == NULL);
    CHECK(problem("Продакшен упал: биллинг не работает, нужна срочная правка схемы данных.") == NULL);
}

static void refused(void)
{
    char buf[5000];
    memset(buf, ' ', 60);
    buf[60] = '\0';
    CHECK(problem(buf) != NULL);                                    /* 60 spaces */
    CHECK(problem("Disk full on the primary:   schema fix now.") != NULL); /* 43 + padding inside */
    CHECK(problem("Disk full   \t\n on the  primary: fix needed n") != NULL);
    CHECK(problem("urgent fix\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0"
                  "\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0"
                  "\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0") != NULL);
    /* zero-width spaces between every letter add nothing */
    strcpy(buf, "");
    for (const char *p = "Disk full on the primary"; *p; p++) {
        size_t n = strlen(buf);
        buf[n] = *p;
        strcpy(buf + n + 1, "\xe2\x80\x8b\xe2\x80\x8b");
    }
    CHECK(problem(buf) != NULL);
    memset(buf, '.', 60);
    buf[60] = '\0';
    CHECK(problem(buf) != NULL); /* no letters */
    memset(buf, 'a', 60);
    CHECK(problem(buf) != NULL); /* one character */
    CHECK(problem("aAaA bBbB cCcC dDdD aAaA bBbB cCcC dDdD aAaA bBbB cCcC") != NULL); /* 4 different */
    CHECK(problem("12345678901234567890123456789012345678901234567890 ok") != NULL);  /* 2 letters */
    memset(buf, 'x', 4097);
    memcpy(buf, REAL50, 50);
    buf[4097] = '\0';
    CHECK(problem(buf) != NULL); /* too long */
    CHECK(oms_override_justification_problem(REAL50, 49) != NULL); /* embedded NUL */
    CHECK(oms_override_justification_problem(NULL, 0) != NULL);
}

int main(void)
{
    static const t_case cases[] = {T(accepted), T(refused)};
    return T_RUN("overrides", cases);
}
