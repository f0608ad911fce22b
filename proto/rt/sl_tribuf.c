#include "sl_tribuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The bit in `mid` saying the middle element is newer than the reader's. */
#define SL_TRIBUF_FRESH 4u

sl_err sl_tribuf_init(struct sl_tribuf *t, size_t elem_bytes)
{
    memset(t, 0, sizeof *t);
    if (elem_bytes == 0 || elem_bytes > SIZE_MAX / 3u)
        return SL_ERR_RANGE;
    t->mem = calloc(3u, elem_bytes);
    if (!t->mem)
        return SL_ERR_NOMEM;
    t->elem = elem_bytes;
    t->front = 0;
    atomic_init(&t->mid, 1u);
    t->back = 2;
    return SL_OK;
}

void *sl_tribuf_back(struct sl_tribuf *t)
{
    return t->mem + (size_t)t->back * t->elem;
}

void sl_tribuf_publish(struct sl_tribuf *t)
{
    /* Release: the reader that takes this element sees every byte written
     * into it; acquire: the element we get back was released by the
     * reader's exchange. */
    unsigned old = atomic_exchange_explicit(&t->mid, t->back | SL_TRIBUF_FRESH, memory_order_acq_rel);
    t->back = old & 3u;
}

void sl_tribuf_put(struct sl_tribuf *t, const void *src)
{
    memcpy(sl_tribuf_back(t), src, t->elem);
    sl_tribuf_publish(t);
}

bool sl_tribuf_fresh(const struct sl_tribuf *t)
{
    return (atomic_load_explicit(&t->mid, memory_order_relaxed) & SL_TRIBUF_FRESH) != 0;
}

const void *sl_tribuf_read(struct sl_tribuf *t)
{
    if (atomic_load_explicit(&t->mid, memory_order_relaxed) & SL_TRIBUF_FRESH) {
        unsigned old = atomic_exchange_explicit(&t->mid, t->front, memory_order_acq_rel);
        t->front = old & 3u;
    }
    return t->mem + (size_t)t->front * t->elem;
}

void sl_tribuf_free(struct sl_tribuf *t)
{
    free(t->mem);
    t->mem = NULL;
}
