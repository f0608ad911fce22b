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
 *  - sl_ftree (RX): chunks arrive in any order (FEC interleave, a repeated
 *    copy filling holes); each is appended in O(1), the list bounded by
 *    max_chunks, sorted once (O(n log n)) when complete or final is asked,
 *    and hashed in order. */
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
    struct sl_ftree_chunk *c;   /* in arrival order; sorted and disjoint unless unsorted */
    size_t n, cap, max_chunks;
    uint64_t size;
    uint64_t covered;           /* sum of len (exact, no duplicate counted twice, unless unsorted) */
    bool unsorted;              /* an entry came before an earlier one's offset: not checked yet */
};

/* Empty list for a file of size bytes, at most max_chunks chunks (the list
 * grows as chunks come; never beyond max_chunks). No allocation yet. */
void sl_ftree_init(struct sl_ftree *t, uint64_t size, size_t max_chunks);
void sl_ftree_free(struct sl_ftree *t);

/* Records one chunk, in O(1) (amortised): it is checked against the last
 * entry only. The same chunk as the last entry again (same offset, len and
 * leaf): SL_OK with *dup true, nothing added. A chunk that overlaps the last
 * entry other than as that duplicate: SL_ERR_MISMATCH (the caller fails the
 * file). A chunk before the last entry is appended unchecked: a duplicate of
 * any other entry (dropped) or an overlap with one (SL_ERR_MISMATCH) is
 * found later, by sl_ftree_complete or sl_ftree_final, and such a duplicate
 * takes a place against max_chunks meanwhile. len 0 or beyond size:
 * SL_ERR_RANGE. max_chunks reached: SL_ERR_CAPACITY. Memory: SL_ERR_NOMEM.
 * On any error the list is unchanged. */
__attribute__((warn_unused_result))
sl_err sl_ftree_add(struct sl_ftree *t, uint64_t offset, uint32_t len, const uint8_t leaf[SL_FTREE_LEAF_BYTES],
                    bool *dup);

/* True when the chunks cover [0, size) exactly once. Sorts the list first
 * if a chunk came out of order (once: O(n log n), then O(1) until the next
 * out-of-order add), dropping exact duplicates; false when two chunks
 * overlap (sl_ftree_final then says SL_ERR_MISMATCH). */
bool sl_ftree_complete(struct sl_ftree *t);

/* The digest over the list, after the same sort: SL_ERR_MISMATCH when two
 * chunks overlap other than as exact duplicates (or share an offset with
 * another len or leaf), SL_ERR_TRUNCATED unless complete. */
__attribute__((warn_unused_result))
sl_err sl_ftree_final(struct sl_ftree *t, uint8_t out[SL_FILE_SHA256_BYTES]);

#endif
