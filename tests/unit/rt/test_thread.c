/* sl_tribuf (latest-wins publication between two threads, never a torn
 * element) and sl_thread (names, beats, stop, the failure path). */
#define _GNU_SOURCE
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sl_test.h"
#include "sl_thread.h"
#include "sl_tribuf.h"

struct snap {
    uint64_t seq;
    uint64_t words[64];   /* every word equals seq: a torn read shows */
};

SL_TEST(tribuf, zeros_then_latest_wins)
{
    struct sl_tribuf t;
    CU_ASSERT_EQUAL_FATAL(sl_tribuf_init(&t, sizeof(struct snap)), SL_OK);
    const struct snap *r = sl_tribuf_read(&t);
    CU_ASSERT_EQUAL(r->seq, 0);
    CU_ASSERT_FALSE(sl_tribuf_fresh(&t));
    for (uint64_t i = 1; i <= 3; i++) {
        struct snap *w = sl_tribuf_back(&t);
        w->seq = i;
        sl_tribuf_publish(&t);
    }
    CU_ASSERT_TRUE(sl_tribuf_fresh(&t));
    r = sl_tribuf_read(&t);
    CU_ASSERT_EQUAL(r->seq, 3);
    CU_ASSERT_FALSE(sl_tribuf_fresh(&t));
    CU_ASSERT_EQUAL(((const struct snap *)sl_tribuf_read(&t))->seq, 3);   /* stays */
    struct snap s = { .seq = 9 };
    sl_tribuf_put(&t, &s);
    CU_ASSERT_EQUAL(((const struct snap *)sl_tribuf_read(&t))->seq, 9);
    sl_tribuf_free(&t);
    CU_ASSERT_EQUAL(sl_tribuf_init(&t, 0), SL_ERR_RANGE);
}

#define PUBLISHES 200000u

static sl_err writer(struct sl_thread *th, void *arg)
{
    struct sl_tribuf *t = arg;
    for (uint64_t i = 1; i <= PUBLISHES; i++) {
        struct snap *w = sl_tribuf_back(t);
        w->seq = i;
        for (size_t k = 0; k < 64; k++)
            w->words[k] = i;
        sl_tribuf_publish(t);
        sl_thread_beat(th);
    }
    return SL_OK;
}

/* The reader never sees a torn element nor goes back in time, and ends on
 * the last one published. */
SL_TEST(tribuf, two_threads_whole_and_monotonic)
{
    struct sl_tribuf t;
    CU_ASSERT_EQUAL_FATAL(sl_tribuf_init(&t, sizeof(struct snap)), SL_OK);
    struct sl_thread th;
    CU_ASSERT_EQUAL_FATAL(sl_thread_start(&th, "tribuf-writer", writer, &t, -1), SL_OK);
    uint64_t last = 0, torn = 0, back = 0;
    while (last < PUBLISHES) {
        const struct snap *r = sl_tribuf_read(&t);
        for (size_t k = 0; k < 64; k++)
            torn += r->words[k] != r->seq;
        back += r->seq < last;
        last = r->seq;
        if (sl_thread_done(&th) && !sl_tribuf_fresh(&t) && last < PUBLISHES)
            break;
    }
    CU_ASSERT_EQUAL(sl_thread_join(&th), SL_OK);
    CU_ASSERT_EQUAL(((const struct snap *)sl_tribuf_read(&t))->seq, PUBLISHES);
    CU_ASSERT_EQUAL(torn, 0);
    CU_ASSERT_EQUAL(back, 0);
    CU_ASSERT_EQUAL(sl_thread_beats(&th), PUBLISHES);
    sl_tribuf_free(&t);
}

static sl_err waits_for_stop(struct sl_thread *th, void *arg)
{
    (void)arg;
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    if (strcmp(name, "sl-waiter") != 0)
        return sl_thread_fail(th, SL_ERR_STATE, "named '%s'", name);
    while (!sl_thread_should_stop(th)) {
        struct pollfd p = { .fd = sl_thread_wake_fd(th), .events = POLLIN };
        if (poll(&p, 1, 5000) == 0)
            return sl_thread_fail(th, SL_ERR_AGAIN, "never woken");
        sl_thread_wake_clear(th);
        sl_thread_beat(th);
    }
    return SL_OK;
}

SL_TEST(thread, stop_wakes_and_ends_clean)
{
    int fail_fd = eventfd(0, EFD_NONBLOCK);
    struct sl_thread th;
    CU_ASSERT_EQUAL_FATAL(sl_thread_start(&th, "sl-waiter", waits_for_stop, NULL, fail_fd), SL_OK);
    CU_ASSERT_EQUAL(sl_thread_done(&th), 0);
    sl_thread_stop(&th);
    CU_ASSERT_EQUAL(sl_thread_join(&th), SL_OK);
    CU_ASSERT_EQUAL(sl_thread_done(&th), 1);
    uint64_t v = 0;
    CU_ASSERT_EQUAL(read(fail_fd, &v, sizeof v), (ssize_t)sizeof v);   /* the owner heard the end */
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT_EQUAL(sl_thread_join(&th), SL_OK);   /* twice: harmless */
    close(fail_fd);
}

static sl_err fails(struct sl_thread *th, void *arg)
{
    (void)arg;
    return sl_thread_fail(th, SL_ERR_IO, "disk on fire (%d)", 42);
}

SL_TEST(thread, failure_is_reported_to_the_owner)
{
    int fail_fd = eventfd(0, EFD_NONBLOCK);
    struct sl_thread th;
    sl_thread_set_log_id("SL-TEST-THREAD-FAIL");
    CU_ASSERT_EQUAL_FATAL(sl_thread_start(&th, "sl-failer", fails, NULL, fail_fd), SL_OK);
    struct pollfd p = { .fd = fail_fd, .events = POLLIN };
    CU_ASSERT_EQUAL(poll(&p, 1, 5000), 1);
    CU_ASSERT_EQUAL(sl_thread_done(&th), 2);
    CU_ASSERT_STRING_EQUAL(th.why, "disk on fire (42)");
    CU_ASSERT_EQUAL(sl_thread_join(&th), SL_ERR_IO);
    close(fail_fd);
}

struct nice_probe {
    int want, got;
    sl_err e;
};

static sl_err lowers_itself(struct sl_thread *th, void *arg)
{
    (void)th;
    struct nice_probe *p = arg;
    p->e = sl_thread_lower_priority(SL_THREAD_NICE_BACKGROUND);
    p->got = sl_thread_nice();
    return SL_OK;
}

/* A background thread lowers its own priority, relative to what it
 * inherited, and nobody else's: Linux keeps a nice value per thread, and
 * PRIO_PROCESS with who 0 names the caller only. The starting thread
 * keeps its value. */
SL_TEST(thread, nice_is_per_thread)
{
    int base = sl_thread_nice();
    int want = base + SL_THREAD_NICE_BACKGROUND;
    struct nice_probe p = { .want = want > 19 ? 19 : want };
    struct sl_thread th;
    CU_ASSERT_EQUAL_FATAL(sl_thread_start(&th, "sl-nicer", lowers_itself, &p, -1), SL_OK);
    CU_ASSERT_EQUAL(sl_thread_join(&th), SL_OK);
    CU_ASSERT_EQUAL(p.e, SL_OK);
    CU_ASSERT_EQUAL(p.got, p.want);
    CU_ASSERT_EQUAL(sl_thread_nice(), base);
}
