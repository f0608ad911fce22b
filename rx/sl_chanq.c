#include "sl_chanq.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct slot {
    uint16_t channel;
    uint64_t session, now_us;
    size_t len;
    uint16_t split;
    uint8_t leaf[SL_BLOCK_DIGEST_BYTES];
};

struct sl_chanq {
    uint32_t slots;
    size_t max_bytes;
    int wake_fd;
    struct slot *meta;
    uint8_t *data;               /* slots * max_bytes */
    /* head: next slot the producer fills; tail: next the consumer takes.
     * Both only grow (modulo 2^64); head - tail entries are queued. */
    _Atomic uint64_t head, tail;
    _Atomic uint64_t pushed, dropped, popped;
    /* Per channel: the share (read-only once threads run); entries queued,
     * raised by the producer after a push, lowered by the consumer after
     * the slot is done (so the producer's view never undercounts). */
    uint32_t share[SL_CHANNEL_COUNT];
    _Atomic uint32_t queued[SL_CHANNEL_COUNT];
    _Atomic uint64_t dropped_channel[SL_CHANNEL_COUNT];
};

uint32_t sl_chanq_slots_for(size_t max_bytes)
{
    size_t n = max_bytes ? SL_CHANQ_FILES_BYTES / max_bytes : 0;
    if (n < SL_CHANQ_SLOTS_DEFAULT)
        return SL_CHANQ_SLOTS_DEFAULT;
    return n > SL_CHANQ_SLOTS_MAX ? SL_CHANQ_SLOTS_MAX : (uint32_t)n;
}

sl_err sl_chanq_create(struct sl_chanq **out, uint32_t slots, size_t max_bytes, int wake_fd)
{
    *out = NULL;
    if (slots == 0 || max_bytes == 0 || max_bytes > SIZE_MAX / slots)
        return SL_ERR_RANGE;
    struct sl_chanq *q = calloc(1, sizeof *q);
    if (!q)
        return SL_ERR_NOMEM;
    q->meta = calloc(slots, sizeof *q->meta);
    /* Pages of slots never used stay untouched (malloc, not calloc). */
    q->data = malloc((size_t)slots * max_bytes);
    if (!q->meta || !q->data) {
        sl_chanq_destroy(q);
        return SL_ERR_NOMEM;
    }
    q->slots = slots;
    q->max_bytes = max_bytes;
    q->wake_fd = wake_fd;
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    atomic_init(&q->pushed, 0);
    atomic_init(&q->dropped, 0);
    atomic_init(&q->popped, 0);
    for (size_t c = 0; c < SL_CHANNEL_COUNT; c++) {
        q->share[c] = slots;
        atomic_init(&q->queued[c], 0);
        atomic_init(&q->dropped_channel[c], 0);
    }
    *out = q;
    return SL_OK;
}

void sl_chanq_destroy(struct sl_chanq *q)
{
    if (!q)
        return;
    free(q->meta);
    free(q->data);
    free(q);
}

sl_err sl_chanq_share(struct sl_chanq *q, uint16_t channel, uint32_t max)
{
    if (channel >= SL_CHANNEL_COUNT || max == 0 || max > q->slots)
        return SL_ERR_RANGE;
    q->share[channel] = max;
    return SL_OK;
}

static sl_err drop(struct sl_chanq *q, uint16_t channel, sl_err why)
{
    atomic_fetch_add_explicit(&q->dropped, 1, memory_order_relaxed);
    if (channel < SL_CHANNEL_COUNT)
        atomic_fetch_add_explicit(&q->dropped_channel[channel], 1, memory_order_relaxed);
    return why;
}

sl_err sl_chanq_push(struct sl_chanq *q, uint16_t channel, uint64_t session, const uint8_t *payload, size_t len,
                     uint64_t now_us)
{
    return sl_chanq_push_split(q, channel, session, payload, len, 0, NULL, now_us);
}

sl_err sl_chanq_push_split(struct sl_chanq *q, uint16_t channel, uint64_t session, const uint8_t *payload,
                           size_t len, uint16_t split, const uint8_t *leaf, uint64_t now_us)
{
    if (channel >= SL_CHANNEL_COUNT)
        return drop(q, channel, SL_ERR_RANGE);
    if (len > q->max_bytes)
        return drop(q, channel, SL_ERR_LENGTH);
    uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (head - tail >= q->slots ||
        atomic_load_explicit(&q->queued[channel], memory_order_acquire) >= q->share[channel])
        return drop(q, channel, SL_ERR_CAPACITY);
    size_t i = (size_t)(head % q->slots);
    struct slot *m = &q->meta[i];
    m->channel = channel;
    m->session = session;
    m->now_us = now_us;
    m->len = len;
    m->split = leaf && split < len ? split : 0;
    if (m->split)
        memcpy(m->leaf, leaf, sizeof m->leaf);
    if (len)
        memcpy(q->data + i * q->max_bytes, payload, len);
    atomic_fetch_add_explicit(&q->queued[channel], 1, memory_order_relaxed);
    atomic_store_explicit(&q->head, head + 1, memory_order_release);
    atomic_fetch_add_explicit(&q->pushed, 1, memory_order_relaxed);
    if (q->wake_fd >= 0) {
        uint64_t one = 1;
        (void)!write(q->wake_fd, &one, sizeof one);
    }
    return SL_OK;
}

bool sl_chanq_peek(struct sl_chanq *q, struct sl_chanq_item *it)
{
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    if (head == tail)
        return false;
    size_t i = (size_t)(tail % q->slots);
    const struct slot *s = &q->meta[i];
    *it = (struct sl_chanq_item){ s->channel, s->session, s->now_us, s->len, q->data + i * q->max_bytes,
                                  s->split, s->split ? s->leaf : NULL };
    return true;
}

void sl_chanq_pop_done(struct sl_chanq *q)
{
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint16_t channel = q->meta[tail % q->slots].channel;
    /* Release: the slot is done with before the producer sees room in the share. */
    atomic_fetch_sub_explicit(&q->queued[channel], 1, memory_order_release);
    atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
    atomic_fetch_add_explicit(&q->popped, 1, memory_order_relaxed);
}

uint32_t sl_chanq_depth(const struct sl_chanq *q)
{
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    return (uint32_t)(head - tail);
}

uint32_t sl_chanq_slots(const struct sl_chanq *q)
{
    return q->slots;
}

void sl_chanq_stats(const struct sl_chanq *q, struct sl_chanq_stats *out)
{
    out->pushed = atomic_load_explicit(&q->pushed, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&q->dropped, memory_order_relaxed);
    out->popped = atomic_load_explicit(&q->popped, memory_order_relaxed);
    for (size_t c = 0; c < SL_CHANNEL_COUNT; c++)
        out->dropped_channel[c] = atomic_load_explicit(&q->dropped_channel[c], memory_order_relaxed);
}
