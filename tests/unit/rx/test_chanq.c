/* sl_chanq: the bounded intake -> channel worker queue: order, copies,
 * overflow dropped and counted (never blocking), the wake eventfd, and one
 * producer and one consumer on two threads. */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sl_chanq.h"
#include "sl_test.h"

SL_TEST(chanq, order_copy_overflow_counted)
{
    int efd = eventfd(0, EFD_NONBLOCK);
    struct sl_chanq *q;
    CU_ASSERT_EQUAL_FATAL(sl_chanq_create(&q, 4, 16, efd), SL_OK);
    uint8_t buf[17];
    for (uint8_t i = 0; i < 4; i++) {
        memset(buf, i, sizeof buf);
        CU_ASSERT_EQUAL(sl_chanq_push(q, 2, 100u + i, buf, 1u + i, 7), SL_OK);
    }
    memset(buf, 0xEE, sizeof buf);   /* the queue holds copies */
    CU_ASSERT_EQUAL(sl_chanq_push(q, 2, 9, buf, 1, 7), SL_ERR_CAPACITY);
    CU_ASSERT_EQUAL(sl_chanq_push(q, 2, 9, buf, 17, 7), SL_ERR_LENGTH);
    struct pollfd p = { .fd = efd, .events = POLLIN };
    CU_ASSERT_EQUAL(poll(&p, 1, 0), 1);
    struct sl_chanq_item it;
    for (uint8_t i = 0; i < 4; i++) {
        CU_ASSERT_TRUE_FATAL(sl_chanq_peek(q, &it));
        CU_ASSERT_EQUAL(it.channel, 2);
        CU_ASSERT_EQUAL(it.session, 100u + i);
        CU_ASSERT_EQUAL(it.len, 1u + i);
        CU_ASSERT_EQUAL(it.payload[0], i);
        sl_chanq_pop_done(q);
    }
    CU_ASSERT_FALSE(sl_chanq_peek(q, &it));
    CU_ASSERT_EQUAL(sl_chanq_push(q, 2, 9, buf, 16, 7), SL_OK);   /* room again, wraps */
    CU_ASSERT_TRUE(sl_chanq_peek(q, &it));
    CU_ASSERT_EQUAL(it.payload[15], 0xEE);
    struct sl_chanq_stats st;
    sl_chanq_stats(q, &st);
    CU_ASSERT_EQUAL(st.pushed, 5);
    CU_ASSERT_EQUAL(st.dropped, 2);
    CU_ASSERT_EQUAL(st.popped, 4);
    sl_chanq_destroy(q);
    close(efd);
    CU_ASSERT_EQUAL(sl_chanq_create(&q, 0, 16, -1), SL_ERR_RANGE);
}

/* A burst on a channel with a share (syslog) stops at its share and never
 * takes the other channel's slots; drops are counted per channel, and the
 * share frees as the worker takes entries. */
/* The file/syslog ring's size: 48 MiB of slots, 64..4096. */
SL_TEST(chanq, slots_for_payload_size)
{
    CU_ASSERT_EQUAL(sl_chanq_slots_for(128u * 1424u), 276u);         /* the defaults: max_k 128, mtu 1500 */
    CU_ASSERT_EQUAL(sl_chanq_slots_for(254u * 8900u), SL_CHANQ_SLOTS_DEFAULT);   /* the limits */
    CU_ASSERT_EQUAL(sl_chanq_slots_for(500u), SL_CHANQ_SLOTS_MAX);
    CU_ASSERT_EQUAL(sl_chanq_slots_for(0), SL_CHANQ_SLOTS_DEFAULT);
    CU_ASSERT_TRUE(sl_chanq_slots_for(128u * 1424u) > SL_CHANQ_SYSLOG_SHARE);
}

SL_TEST(chanq, shares_per_channel)
{
    struct sl_chanq *q;
    CU_ASSERT_EQUAL_FATAL(sl_chanq_create(&q, 8, 4, -1), SL_OK);
    CU_ASSERT_EQUAL(sl_chanq_share(q, SL_CHANNEL_SYSLOG, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_chanq_share(q, SL_CHANNEL_SYSLOG, 9), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_chanq_share(q, SL_CHANNEL_COUNT, 2), SL_ERR_RANGE);
    CU_ASSERT_EQUAL_FATAL(sl_chanq_share(q, SL_CHANNEL_SYSLOG, 2), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_chanq_share(q, SL_CHANNEL_FILES, 6), SL_OK);
    uint8_t b[4] = { 1, 2, 3, 4 };
    unsigned ok = 0;
    for (int i = 0; i < 100; i++)   /* the burst */
        ok += sl_chanq_push(q, SL_CHANNEL_SYSLOG, 1, b, sizeof b, 0) == SL_OK;
    CU_ASSERT_EQUAL(ok, 2);
    for (int i = 0; i < 6; i++)      /* every file block still gets in */
        CU_ASSERT_EQUAL(sl_chanq_push(q, SL_CHANNEL_FILES, 2, b, sizeof b, 0), SL_OK);
    CU_ASSERT_EQUAL(sl_chanq_push(q, SL_CHANNEL_FILES, 2, b, sizeof b, 0), SL_ERR_CAPACITY);
    CU_ASSERT_EQUAL(sl_chanq_push(q, SL_CHANNEL_COUNT, 2, b, sizeof b, 0), SL_ERR_RANGE);
    struct sl_chanq_stats st;
    sl_chanq_stats(q, &st);
    CU_ASSERT_EQUAL(st.dropped, 98 + 1 + 1);
    CU_ASSERT_EQUAL(st.dropped_channel[SL_CHANNEL_SYSLOG], 98);
    CU_ASSERT_EQUAL(st.dropped_channel[SL_CHANNEL_FILES], 1);
    CU_ASSERT_EQUAL(st.dropped_channel[SL_CHANNEL_TAGS], 0);
    /* The worker takes the first (a syslog entry): one syslog push fits again, a second does not. */
    struct sl_chanq_item it;
    CU_ASSERT_TRUE_FATAL(sl_chanq_peek(q, &it));
    CU_ASSERT_EQUAL(it.channel, SL_CHANNEL_SYSLOG);
    sl_chanq_pop_done(q);
    CU_ASSERT_EQUAL(sl_chanq_push(q, SL_CHANNEL_SYSLOG, 1, b, sizeof b, 0), SL_OK);
    CU_ASSERT_EQUAL(sl_chanq_push(q, SL_CHANNEL_SYSLOG, 1, b, sizeof b, 0), SL_ERR_CAPACITY);
    unsigned files = 0, logs = 0;
    while (sl_chanq_peek(q, &it)) {
        files += it.channel == SL_CHANNEL_FILES;
        logs += it.channel == SL_CHANNEL_SYSLOG;
        sl_chanq_pop_done(q);
    }
    CU_ASSERT_EQUAL(files, 6);
    CU_ASSERT_EQUAL(logs, 2);
    /* Empty again: the whole share is back. */
    CU_ASSERT_EQUAL(sl_chanq_push(q, SL_CHANNEL_SYSLOG, 1, b, sizeof b, 0), SL_OK);
    CU_ASSERT_EQUAL(sl_chanq_push(q, SL_CHANNEL_SYSLOG, 1, b, sizeof b, 0), SL_OK);
    sl_chanq_destroy(q);
}

#define ITEMS 100000u

static void *producer(void *arg)
{
    struct sl_chanq *q = arg;
    for (uint32_t i = 0; i < ITEMS;) {
        uint8_t b[8];
        memcpy(b, &i, sizeof i);
        memcpy(b + 4, &i, sizeof i);
        if (sl_chanq_push(q, 1, i, b, sizeof b, 0) == SL_OK)
            i++;
    }
    return NULL;
}

/* Everything that got in comes out whole and in order. */
SL_TEST(chanq, two_threads_in_order)
{
    struct sl_chanq *q;
    CU_ASSERT_EQUAL_FATAL(sl_chanq_create(&q, 8, 8, -1), SL_OK);
    pthread_t t;
    pthread_create(&t, NULL, producer, q);
    uint32_t want = 0, bad = 0;
    while (want < ITEMS) {
        struct sl_chanq_item it;
        if (!sl_chanq_peek(q, &it))
            continue;
        uint32_t a, b;
        memcpy(&a, it.payload, 4);
        memcpy(&b, it.payload + 4, 4);
        bad += a != want || b != want || it.session != want;
        sl_chanq_pop_done(q);
        want++;
    }
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(bad, 0);
    sl_chanq_destroy(q);
}
