/* tsan_selftest: a deliberate data race, built only in the ThreadSanitizer
 * build (SL_TSAN). CTest expects it to FAIL (WILL_FAIL): if it ever passes,
 * TSan is not instrumenting the build or TSAN_OPTIONS no longer turns a
 * report into a failure, and every other test of that build proves nothing.
 * Run twice: directly (as a unit test: halt_on_error, exit 66) and through
 * tests/tsan_run.sh with exitcode=0 (as an integration test's daemon: the
 * report file alone must fail the run, the program itself exits 0). */
#include <pthread.h>
#include <stdio.h>

static int shared_counter;   /* written by two threads with no ordering: the race */

static void *bump(void *arg)
{
    (void)arg;
    shared_counter++;
    return NULL;
}

int main(void)
{
    /* Raced many times over: one pair of accesses was once missed by the
     * detector (its shadow keeps a bounded history), 64 pairs never are. */
    for (int i = 0; i < 64; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, bump, NULL) != 0)
            return 2;
        shared_counter++;            /* races with bump() */
        pthread_join(t, NULL);
    }
    printf("counter %d\n", shared_counter);
    return 0;
}
