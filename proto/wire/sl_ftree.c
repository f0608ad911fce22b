#include "sl_ftree.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "sl_buf.h"

_Static_assert(SL_FTREE_LEAF_BYTES == SHA256_DIGEST_LENGTH && SL_FILE_SHA256_BYTES == SHA256_DIGEST_LENGTH,
               "tree leaves and digest are SHA-256");
_Static_assert(sizeof SL_FTREE_DOMAIN - 1u == SL_FTREE_DOMAIN_BYTES, "tree domain string");

void sl_ftree_leaf(uint8_t out[SL_FTREE_LEAF_BYTES], const uint8_t *data, size_t len)
{
    SHA256(data, len, out);
}

/* Starts the digest: domain string then the size (u64be). */
static EVP_MD_CTX *digest_begin(uint64_t size)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return NULL;
    uint8_t sz[8];
    sl_be64_put(sz, size);
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, SL_FTREE_DOMAIN, SL_FTREE_DOMAIN_BYTES) != 1 ||
        EVP_DigestUpdate(md, sz, sizeof sz) != 1) {
        EVP_MD_CTX_free(md);
        return NULL;
    }
    return md;
}

/* One entry: u64be offset || u32be len || leaf (SL_FTREE_ENTRY_BYTES). */
static int digest_entry(EVP_MD_CTX *md, uint64_t offset, uint32_t len, const uint8_t leaf[SL_FTREE_LEAF_BYTES])
{
    uint8_t ent[SL_FTREE_ENTRY_BYTES];
    sl_be64_put(ent, offset);
    sl_be32_put(ent + 8, len);
    memcpy(ent + 12, leaf, SL_FTREE_LEAF_BYTES);
    return EVP_DigestUpdate(md, ent, sizeof ent);
}

sl_err sl_ftree_acc_init(struct sl_ftree_acc *a, uint64_t size)
{
    memset(a, 0, sizeof *a);
    a->size = size;
    a->md = digest_begin(size);
    return a->md ? SL_OK : SL_ERR_NOMEM;
}

sl_err sl_ftree_acc_add(struct sl_ftree_acc *a, uint64_t offset, uint32_t len,
                        const uint8_t leaf[SL_FTREE_LEAF_BYTES])
{
    if (!a->md)
        return SL_ERR_STATE;
    if (offset != a->next || len == 0 || len > a->size - offset)
        return SL_ERR_RANGE;   /* offset == next <= size, so size - offset cannot wrap */
    if (digest_entry(a->md, offset, len, leaf) != 1)
        return SL_ERR_NOMEM;
    a->next = offset + len;
    return SL_OK;
}

sl_err sl_ftree_acc_final(struct sl_ftree_acc *a, uint8_t out[SL_FILE_SHA256_BYTES])
{
    if (!a->md)
        return SL_ERR_STATE;
    if (a->next != a->size)
        return SL_ERR_TRUNCATED;
    unsigned dlen = 0;
    int ok = EVP_DigestFinal_ex(a->md, out, &dlen);
    EVP_MD_CTX_free(a->md);
    a->md = NULL;
    return ok == 1 && dlen == SL_FILE_SHA256_BYTES ? SL_OK : SL_ERR_NOMEM;
}

void sl_ftree_acc_free(struct sl_ftree_acc *a)
{
    EVP_MD_CTX_free(a->md);
    a->md = NULL;
}

void sl_ftree_init(struct sl_ftree *t, uint64_t size, size_t max_chunks)
{
    memset(t, 0, sizeof *t);
    t->size = size;
    t->max_chunks = max_chunks;
}

void sl_ftree_free(struct sl_ftree *t)
{
    free(t->c);
    t->c = NULL;
    t->n = t->cap = 0;
    t->covered = 0;
    t->unsorted = false;
}

sl_err sl_ftree_add(struct sl_ftree *t, uint64_t offset, uint32_t len, const uint8_t leaf[SL_FTREE_LEAF_BYTES],
                    bool *dup)
{
    *dup = false;
    if (len == 0 || offset > t->size || len > t->size - offset)
        return SL_ERR_RANGE;
    uint64_t end = offset + len;   /* <= size: no wrap */
    /* Only the last entry is checked here (O(1)): chunks mostly come in
     * order, and an insert into the middle of a sorted array would move its
     * tail every time (a late hole in a large file: gigabytes moved). The
     * rest is checked once, by settle. */
    if (t->n > 0) {
        const struct sl_ftree_chunk *c = &t->c[t->n - 1];
        if (c->offset == offset) {
            if (c->len != len || memcmp(c->leaf, leaf, SL_FTREE_LEAF_BYTES) != 0)
                return SL_ERR_MISMATCH;
            *dup = true;
            return SL_OK;
        }
        if (offset < c->offset + c->len && end > c->offset)
            return SL_ERR_MISMATCH;
    }
    if (t->n >= t->max_chunks)
        return SL_ERR_CAPACITY;
    if (t->n == t->cap) {
        /* Doubling, capped at max_chunks: amortised O(1) per chunk. */
        size_t ncap = t->cap ? t->cap * 2 : 16;
        if (ncap > t->max_chunks || ncap < t->cap)
            ncap = t->max_chunks;
        if (ncap > SIZE_MAX / sizeof *t->c)
            return SL_ERR_NOMEM;
        struct sl_ftree_chunk *nc = realloc(t->c, ncap * sizeof *nc);
        if (!nc)
            return SL_ERR_NOMEM;
        t->c = nc;
        t->cap = ncap;
    }
    if (t->n > 0 && offset < t->c[t->n - 1].offset)
        t->unsorted = true;
    t->c[t->n].offset = offset;
    t->c[t->n].len = len;
    memcpy(t->c[t->n].leaf, leaf, SL_FTREE_LEAF_BYTES);
    t->n++;
    t->covered += len;
    return SL_OK;
}

/* Offset, then len, then leaf: exact duplicates end up next to each other. */
static int chunk_cmp(const void *pa, const void *pb)
{
    const struct sl_ftree_chunk *a = pa, *b = pb;
    if (a->offset != b->offset)
        return a->offset < b->offset ? -1 : 1;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return memcmp(a->leaf, b->leaf, SL_FTREE_LEAF_BYTES);
}

/* Makes an unsorted list sorted and disjoint: one sort (O(n log n)), exact
 * duplicates dropped, covered recounted. SL_ERR_MISMATCH when two entries
 * overlap other than as exact duplicates: the list is then left sorted,
 * unsettled (every later call fails the same way), covered unchanged. */
static sl_err settle(struct sl_ftree *t)
{
    if (!t->unsorted)
        return SL_OK;
    qsort(t->c, t->n, sizeof *t->c, chunk_cmp);
    for (size_t i = 1; i < t->n; i++) {
        const struct sl_ftree_chunk *p = &t->c[i - 1], *c = &t->c[i];
        if (chunk_cmp(p, c) == 0)
            continue;
        if (p->offset + p->len > c->offset)   /* sorted: also catches a same offset with another len or leaf */
            return SL_ERR_MISMATCH;
    }
    size_t w = 0;
    uint64_t covered = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (w > 0 && chunk_cmp(&t->c[w - 1], &t->c[i]) == 0)
            continue;
        t->c[w++] = t->c[i];
        covered += t->c[i].len;
    }
    t->n = w;
    t->covered = covered;
    t->unsorted = false;
    return SL_OK;
}

bool sl_ftree_complete(struct sl_ftree *t)
{
    /* Disjoint chunks inside [0, size) whose lengths sum to size tile it. */
    return settle(t) == SL_OK && t->covered == t->size;
}

sl_err sl_ftree_final(struct sl_ftree *t, uint8_t out[SL_FILE_SHA256_BYTES])
{
    sl_err e = settle(t);
    if (e != SL_OK)
        return e;
    if (t->covered != t->size)
        return SL_ERR_TRUNCATED;
    EVP_MD_CTX *md = digest_begin(t->size);
    if (!md)
        return SL_ERR_NOMEM;
    int ok = 1;
    for (size_t i = 0; i < t->n && ok == 1; i++)
        ok = digest_entry(md, t->c[i].offset, t->c[i].len, t->c[i].leaf);
    unsigned dlen = 0;
    if (ok == 1)
        ok = EVP_DigestFinal_ex(md, out, &dlen);
    EVP_MD_CTX_free(md);
    return ok == 1 && dlen == SL_FILE_SHA256_BYTES ? SL_OK : SL_ERR_NOMEM;
}
