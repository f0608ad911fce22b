/* Tiny CUnit registration layer: a test file writes
 *     SL_TEST(suite, name) { CU_ASSERT(...); }
 * and the case registers itself at load time; sl_test_main.c builds the
 * CUnit registry from the table and runs it. One executable per module. */
#ifndef SL_TEST_H
#define SL_TEST_H
#include <CUnit/CUnit.h>

void sl_test_add(const char *suite, const char *name, void (*fn)(void));

#define SL_TEST(suite, name)                                                \
    static void sl_test_##suite##_##name(void);                             \
    __attribute__((constructor)) static void sl_reg_##suite##_##name(void)  \
    {                                                                       \
        sl_test_add(#suite, #name, sl_test_##suite##_##name);               \
    }                                                                       \
    static void sl_test_##suite##_##name(void)

#endif
