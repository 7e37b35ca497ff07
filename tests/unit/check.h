/* check.h: the unit-test harness. Each test file is a program whose main()
 * calls RUN(test_fn) for each case; a case fails at its first failed CHECK.
 * Output: one "PASS name" / "FAIL name: file:line: what" line per case, which
 * tests/run.sh counts; exit status 1 if any case failed. */
#ifndef MOE_CHECK_H
#define MOE_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failed_cases;
static int check_case_failed;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            printf("FAIL %s: %s:%d: %s\n", check_current, __FILE__, __LINE__, #cond);    \
            check_case_failed = 1;                                                       \
            return;                                                                      \
        }                                                                                \
    } while (0)

#define CHECK_EQ_U(a, b)                                                                 \
    do {                                                                                 \
        unsigned long long check_a = (unsigned long long)(a), check_b = (unsigned long long)(b); \
        if (check_a != check_b) {                                                        \
            printf("FAIL %s: %s:%d: %s == %llu, expected %s == %llu\n", check_current,   \
                   __FILE__, __LINE__, #a, check_a, #b, check_b);                        \
            check_case_failed = 1;                                                       \
            return;                                                                      \
        }                                                                                \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                            \
    do {                                                                                 \
        double check_a = (a), check_b = (b);                                             \
        if (!(fabs(check_a - check_b) <= (tol))) {                                       \
            printf("FAIL %s: %s:%d: %s = %.9g, expected %.9g (tol %g)\n", check_current, \
                   __FILE__, __LINE__, #a, check_a, check_b, (double)(tol));             \
            check_case_failed = 1;                                                       \
            return;                                                                      \
        }                                                                                \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                  \
    do {                                                                                 \
        if (!strstr((hay), (needle))) {                                                  \
            printf("FAIL %s: %s:%d: '%s' does not contain '%s'\n", check_current,        \
                   __FILE__, __LINE__, (hay), (needle));                                 \
            check_case_failed = 1;                                                       \
            return;                                                                      \
        }                                                                                \
    } while (0)

static const char *check_current = "";

#define RUN(fn)                                                                          \
    do {                                                                                 \
        check_current = #fn;                                                             \
        check_case_failed = 0;                                                           \
        fn();                                                                            \
        if (check_case_failed) check_failed_cases++;                                     \
        else printf("PASS %s\n", #fn);                                                   \
    } while (0)

#define CHECK_EXIT() return check_failed_cases ? 1 : 0

/* splitmix64: the seeded generator the tests draw random traces from. */
static inline uint64_t test_splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
