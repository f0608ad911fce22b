/* The file tree digest of FILE_END_TREE (layout: sl_wire.h, SL_FTREE_*).
 *
 *   digest = SHA-256("SLUICE-FILE-TREE-1" || u64be size ||
 *                    for each chunk in ascending offset:
 *                    u64be offset || u32be len || leaf)
 *   leaf   = SHA-256(the chunk's data)
 *
 * A chunk is the data of one FILE_DATA. TX hashes each chunk once, when it
 * reads it into the block, and that one hash serves both the block's
 * signature (SL_BLOCK_FLAG_SPLIT) and the file digest, so every file byte
 * is hashed once on each side; RX takes the leaf its block check computed.
 *
 * Two users, one definition:
 *  - sl_ftree_acc (TX): chunks arrive in order and contiguous; constant
 *    memory whatever the file size.
 *  - sl_ftree (RX): chunks arrive in any order and may repeat (FEC
 *    interleave, a repeated copy filling holes); the list is kept sorted,
 *    bounded by max_chunks, and hashed in order at the end. */
#ifndef SL_FTREE_H
#define SL_FTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_wire.h"

#define SL_FTREE_LEAF_BYTES 32u

/* SHA-256 of len bytes: a chunk's leaf. */
void sl_ftree_leaf(uint8_t out[SL_FTREE_LEAF_BYTES], const uint8_t *data, size_t len);

/* ---- In-order accumulator (TX) ---- */
struct sl_ftree_acc {
    void *md;              /* the running SHA-256 (opaque) */
    uint64_t size;         /* declared file size */
    uint64_t next;         /* offset the next chunk must start at */
};

/* SL_ERR_NOMEM if the hash context cannot be made. */
__attribute__((warn_unused_result))
sl_err sl_ftree_acc_init(struct sl_ftree_acc *a, uint64_t size);
/* Adds the chunk [offset, offset + len) with its leaf. SL_ERR_RANGE unless
 * offset == a->next, len >= 1 and offset + len <= size. */
__attribute__((warn_unused_result))
sl_err sl_ftree_acc_add(struct sl_ftree_acc *a, uint64_t offset, uint32_t len,
                        const uint8_t leaf[SL_FTREE_LEAF_BYTES]);
/* The digest; SL_ERR_TRUNCATED unless the chunks reached size. May be
 * called once. */
__attribute__((warn_unused_result))
sl_err sl_ftree_acc_final(struct sl_ftree_acc *a, uint8_t out[SL_FILE_SHA256_BYTES]);
void sl_ftree_acc_free(struct sl_ftree_acc *a);

/* ---- Any-order chunk list (RX) ---- */
struct sl_ftree_chunk {
    uint64_t offset;
    uint32_t len;
    uint8_t leaf[SL_FTREE_LEAF_BYTES];
};

struct sl_ftree {
    struct sl_ftree_chunk *c;   /* sorted by offset, no overlaps */
    size_t n, cap, max_chunks;
    uint64_t size;
    uint64_t covered;           /* sum of len */
};

/* Empty list for a file of size bytes, at most max_chunks chunks (the list
 * grows as chunks come; never beyond max_chunks). No allocation yet. */
void sl_ftree_init(struct sl_ftree *t, uint64_t size, size_t max_chunks);
void sl_ftree_free(struct sl_ftree *t);

/* Records one chunk. The same chunk again (same offset, len and leaf):
 * SL_OK with *dup true. A chunk that overlaps another or has the same range
 * with another leaf: SL_ERR_MISMATCH (the caller fails the file). len 0 or
 * beyond size: SL_ERR_RANGE. max_chunks reached: SL_ERR_CAPACITY. Memory:
 * SL_ERR_NOMEM. On any error the list is unchanged. */
__attribute__((warn_unused_result))
sl_err sl_ftree_add(struct sl_ftree *t, uint64_t offset, uint32_t len, const uint8_t leaf[SL_FTREE_LEAF_BYTES],
                    bool *dup);

/* True when the chunks cover [0, size). */
bool sl_ftree_complete(const struct sl_ftree *t);

/* The digest over the list; SL_ERR_TRUNCATED unless complete. */
__attribute__((warn_unused_result))
sl_err sl_ftree_final(const struct sl_ftree *t, uint8_t out[SL_FILE_SHA256_BYTES]);

#endif
