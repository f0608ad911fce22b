/* A lock-free triple buffer: one writer thread publishes a whole snapshot
 * (a struct of counters, a replay window) and one reader thread takes the
 * latest one, neither ever waiting for the other.
 *
 * Three equal elements: the writer fills "back", publish swaps it with the
 * "middle" in one atomic exchange; the reader swaps "middle" into "front"
 * when something new was published since its last read. So the reader
 * always holds a whole element the writer no longer touches, and the
 * writer always has an element of its own to fill. A snapshot published
 * twice before a read replaces the first (latest wins: counters need
 * nothing older). One reader per tribuf; publish to several when several
 * threads read the same figures. Allocation only at init. */
#ifndef SL_TRIBUF_H
#define SL_TRIBUF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "sl_err.h"

struct sl_tribuf {
    unsigned char *mem;        /* 3 * elem bytes, zeroed at init */
    size_t elem;
    _Atomic unsigned mid;      /* index of the middle element | SL_TRIBUF_FRESH */
    unsigned back;             /* writer's element */
    unsigned front;            /* reader's element */
};

/* Allocates 3 zeroed elements of elem_bytes (> 0). Before the first
 * publish the reader sees zeros. SL_ERR_NOMEM / SL_ERR_RANGE. */
__attribute__((warn_unused_result))
sl_err sl_tribuf_init(struct sl_tribuf *t, size_t elem_bytes);

/* Writer: the element to fill. It holds an older snapshot (two publishes
 * ago, or zeros): fill it whole. */
void *sl_tribuf_back(struct sl_tribuf *t);

/* Writer: makes the back element the latest; one atomic exchange. */
void sl_tribuf_publish(struct sl_tribuf *t);

/* Writer: copies elem bytes from src into the back element and publishes. */
void sl_tribuf_put(struct sl_tribuf *t, const void *src);

/* Reader: the latest published element (valid until this reader's next
 * read). One atomic load, plus one exchange when something new came. */
const void *sl_tribuf_read(struct sl_tribuf *t);

/* Reader: true when a snapshot was published since the last read. */
bool sl_tribuf_fresh(const struct sl_tribuf *t);

/* Frees the elements (t may be zeroed, never initialised). */
void sl_tribuf_free(struct sl_tribuf *t);

#endif
