/* Shared main for every CUnit executable: suites are created on first use
 * from the SL_TEST() table; exit status is non-zero on any failure. */
#include "sl_test.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#define SL_TEST_MAX 4096

struct entry {
    const char *suite;
    const char *name;
    void (*fn)(void);
};

static struct entry table[SL_TEST_MAX];
static unsigned table_len;

void sl_test_add(const char *suite, const char *name, void (*fn)(void))
{
    if (table_len >= SL_TEST_MAX) {
        fprintf(stderr, "sl_test: more than %d cases\n", SL_TEST_MAX);
        return;
    }
    table[table_len++] = (struct entry){ suite, name, fn };
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;   /* optional suite filter */
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    for (unsigned i = 0; i < table_len; i++) {
        if (only && strcmp(only, table[i].suite) != 0)
            continue;
        CU_pSuite s = CU_get_suite(table[i].suite);
        if (!s)
            s = CU_add_suite(table[i].suite, NULL, NULL);
        if (!s || !CU_add_test(s, table[i].name, table[i].fn)) {
            CU_cleanup_registry();
            return 2;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "sl_test: no test ran\n");
        return 1;
    }
    return fails ? 1 : 0;
}
