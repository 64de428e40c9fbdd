/* A tiny test harness: each test file defines TESTS with T(name) entries and
 * calls t_main. Output ends with the line "N passed, N failed". */
#ifndef OMS_T_H
#define OMS_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failed_current;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            t_failed_current = 1;                                                       \
        }                                                                               \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                  \
    do {                                                                                    \
        long long _a = (long long)(a), _b = (long long)(b);                                 \
        if (_a != _b) {                                                                     \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, \
                    _a, _b);                                                                \
            t_failed_current = 1;                                                           \
        }                                                                                   \
    } while (0)
#define CHECK_EQ_STR(a, b)                                                                      \
    do {                                                                                        \
        const char *_a = (a), *_b = (b);                                                        \
        if (!_a || !_b || strcmp(_a, _b) != 0) {                                                \
            fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, \
                    _a ? _a : "(null)", _b ? _b : "(null)");                                    \
            t_failed_current = 1;                                                               \
        }                                                                                       \
    } while (0)

typedef struct {
    const char *name;
    void (*fn)(void);
} t_case;

static inline int t_main(const char *suite, const t_case *cases, size_t n)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        t_failed_current = 0;
        cases[i].fn();
        if (t_failed_current) {
            failed++;
            fprintf(stderr, "FAIL %s.%s\n", suite, cases[i].name);
        } else {
            passed++;
        }
    }
    printf("%s: %d passed, %d failed\n", suite, passed, failed);
    return failed ? 1 : 0;
}

#define T(name) {#name, name}
#define T_RUN(suite, arr) t_main(suite, arr, sizeof arr / sizeof arr[0])

#endif
