/* Tiny CUnit registration layer: a test file writes
 *     SL_TEST(suite, name) { CU_ASSERT(...); }
 * and the case registers itself at load time; sl_test_main.c builds the
 * CUnit registry from the table and runs it. One executable per module. */
#ifndef SL_TEST_H
#define SL_TEST_H
#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stddef.h>

void sl_test_add(const char *suite, const char *name, void (*fn)(void));

#define SL_TEST(suite, name)                                                \
    static void sl_test_##suite##_##name(void);                             \
    __attribute__((constructor)) static void sl_reg_##suite##_##name(void)  \
    {                                                                       \
        sl_test_add(#suite, #name, sl_test_##suite##_##name);               \
    }                                                                       \
    static void sl_test_##suite##_##name(void)

/* The exit status CTest reads as "skipped" (sl_unit_test(... SKIP_RETURN_CODE
 * 77) in tests/sl_testing.cmake). */
#define SL_TEST_SKIP_RC 77

/* Marks the running case skipped: a precondition outside the code under
 * test is missing (a capability, a network namespace, a program on PATH).
 * Prints one line "SKIP suite/name: <why>"; the case returns right after.
 * An executable with a skipped case and no failure exits SL_TEST_SKIP_RC,
 * so CTest reports it as skipped, never as passed; in an executable
 * registered without SKIP_RETURN_CODE (the `unit` label) that exit is a
 * failure, because unit tests must have no missing precondition. */
void sl_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a case's body in a child process, for tests that change process
 * state (a network namespace, capabilities): setup(ctx, why, why_cap) runs
 * first in the child (NULL: none); when it fails (non-zero), the case is
 * skipped with the reason it wrote into why. Otherwise body(ctx) runs and
 * must return 0; another number names the failed check and fails the case.
 * Neither may use a CUnit assertion (a FATAL one would longjmp into the
 * child's copy of the runner); the child leaves with _exit. */
void sl_test_in_child(int (*setup)(void *ctx, char *why, size_t why_cap), int (*body)(void *ctx),
                      void *ctx);

/* True when prog (no slash) is an executable file in a PATH directory. */
bool sl_test_on_path(const char *prog);

#endif
