/* The file tree digest: known answers, the in-order accumulator and the
 * any-order chunk list agree, duplicates, overlaps, gaps, capacity, size 0.
 *
 * The expected digests were computed once, independently of this code,
 * with Python's hashlib:
 *   def tree(size, chunks):
 *       h = sha256(b"SLUICE-FILE-TREE-1" + struct.pack(">Q", size))
 *       for off, data in chunks:
 *           h.update(struct.pack(">QI", off, len(data)) + sha256(data).digest())
 *       return h.hexdigest()
 * with data = b"0123456789". */
#include <stdio.h>
#include <string.h>

#include "sl_ftree.h"
#include "sl_test.h"

static const char kat_empty[] = "9fe0c2c3a8d25d1cfc62058dd2479d92934483c26ae384f8a3c83ab86d52d971";   /* tree(0, []) */
static const char kat_4_6[] = "5cae14e09d5c140abe3e781ac4a98d3b2448b705f0118c996cb4191d4cec7e55";     /* [0,4) [4,10) */
static const char kat_one[] = "57dbd2f605200ab2b0dceec95525c542f7c7259d7500b61c4b0b18dfbf25921a";     /* [0,10) */
static const char kat_abc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";     /* SHA-256("abc") */
static const uint8_t data[] = "0123456789";

static void hex(char out[65], const uint8_t d[32])
{
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void leaf(uint8_t out[SL_FTREE_LEAF_BYTES], uint64_t off, uint32_t len)
{
    sl_ftree_leaf(out, data + off, len);
}

SL_TEST(ftree, leaf_kat)
{
    uint8_t l[SL_FTREE_LEAF_BYTES];
    char h[65];
    sl_ftree_leaf(l, (const uint8_t *)"abc", 3);
    hex(h, l);
    CU_ASSERT_STRING_EQUAL(h, kat_abc);
}

SL_TEST(ftree, acc_kat)
{
    struct sl_ftree_acc a;
    uint8_t l[SL_FTREE_LEAF_BYTES], d[32];
    char h[65];
    CU_ASSERT_EQUAL_FATAL(sl_ftree_acc_init(&a, 10), SL_OK);
    leaf(l, 0, 4);
    CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, 0, 4, l), SL_OK);
    leaf(l, 4, 6);
    CU_ASSERT_EQUAL(sl_ftree_acc_final(&a, d), SL_ERR_TRUNCATED);   /* not yet at size */
    CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, 4, 6, l), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_ftree_acc_final(&a, d), SL_OK);
    hex(h, d);
    CU_ASSERT_STRING_EQUAL(h, kat_4_6);
    sl_ftree_acc_free(&a);
    sl_ftree_acc_free(&a);   /* twice is safe */

    CU_ASSERT_EQUAL_FATAL(sl_ftree_acc_init(&a, 10), SL_OK);
    leaf(l, 0, 10);
    CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, 0, 10, l), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_ftree_acc_final(&a, d), SL_OK);
    hex(h, d);
    CU_ASSERT_STRING_EQUAL(h, kat_one);   /* the chunking is part of the digest */
    sl_ftree_acc_free(&a);

    CU_ASSERT_EQUAL_FATAL(sl_ftree_acc_init(&a, 0), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_ftree_acc_final(&a, d), SL_OK);
    hex(h, d);
    CU_ASSERT_STRING_EQUAL(h, kat_empty);
    sl_ftree_acc_free(&a);
}

SL_TEST(ftree, acc_order_and_range)
{
    struct sl_ftree_acc a;
    uint8_t l[SL_FTREE_LEAF_BYTES] = { 0 }, d[32];
    CU_ASSERT_EQUAL_FATAL(sl_ftree_acc_init(&a, 10), SL_OK);
    CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, 4, 6, l), SL_ERR_RANGE);   /* out of order */
    CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, 0, 0, l), SL_ERR_RANGE);   /* empty */
    CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, 0, 11, l), SL_ERR_RANGE);  /* beyond size */
    CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, 0, 4, l), SL_OK);
    CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, 0, 4, l), SL_ERR_RANGE);   /* again */
    CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, 2, 4, l), SL_ERR_RANGE);   /* overlap */
    CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, 5, 5, l), SL_ERR_RANGE);   /* gap */
    CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, 4, UINT32_MAX, l), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, 4, 6, l), SL_OK);
    CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, 10, 1, l), SL_ERR_RANGE);  /* past the end */
    CU_ASSERT_EQUAL(sl_ftree_acc_final(&a, d), SL_OK);
    CU_ASSERT_EQUAL(sl_ftree_acc_final(&a, d), SL_ERR_STATE);       /* once */
    sl_ftree_acc_free(&a);
}

/* The list takes chunks in any order and gives the accumulator's digest. */
SL_TEST(ftree, list_any_order_kat)
{
    struct sl_ftree t;
    uint8_t l[SL_FTREE_LEAF_BYTES], d[32];
    char h[65];
    bool dup = true;
    sl_ftree_init(&t, 10, 4);
    CU_ASSERT_FALSE(sl_ftree_complete(&t));
    CU_ASSERT_EQUAL(sl_ftree_final(&t, d), SL_ERR_TRUNCATED);
    leaf(l, 4, 6);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 4, 6, l, &dup), SL_OK);
    CU_ASSERT_FALSE(dup);
    CU_ASSERT_FALSE(sl_ftree_complete(&t));
    CU_ASSERT_EQUAL(sl_ftree_final(&t, d), SL_ERR_TRUNCATED);   /* a gap at the front */
    leaf(l, 0, 4);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 0, 4, l, &dup), SL_OK);
    CU_ASSERT_FALSE(dup);
    CU_ASSERT_TRUE(sl_ftree_complete(&t));
    CU_ASSERT_EQUAL_FATAL(sl_ftree_final(&t, d), SL_OK);
    hex(h, d);
    CU_ASSERT_STRING_EQUAL(h, kat_4_6);
    sl_ftree_free(&t);
    sl_ftree_free(&t);

    sl_ftree_init(&t, 0, 0);
    CU_ASSERT_TRUE(sl_ftree_complete(&t));
    CU_ASSERT_EQUAL_FATAL(sl_ftree_final(&t, d), SL_OK);
    hex(h, d);
    CU_ASSERT_STRING_EQUAL(h, kat_empty);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 0, 1, l, &dup), SL_ERR_RANGE);
    sl_ftree_free(&t);
}

SL_TEST(ftree, list_duplicates_overlaps_capacity)
{
    struct sl_ftree t;
    uint8_t l[SL_FTREE_LEAF_BYTES], other[SL_FTREE_LEAF_BYTES], d[32];
    bool dup = false;
    sl_ftree_init(&t, 10, 3);
    leaf(l, 3, 3);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 3, 3, l, &dup), SL_OK);   /* [3,6) */
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 3, 3, l, &dup), SL_OK);   /* the last chunk again */
    CU_ASSERT_TRUE(dup);
    CU_ASSERT_EQUAL(t.n, 1u);
    CU_ASSERT_EQUAL(t.covered, 3u);
    memcpy(other, l, sizeof other);
    other[0] ^= 1;
    /* Against the last entry, refused at once. */
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 3, 3, other, &dup), SL_ERR_MISMATCH);   /* same range, other leaf */
    CU_ASSERT_FALSE(dup);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 3, 2, l, &dup), SL_ERR_MISMATCH);       /* same start, other len */
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 2, 2, l, &dup), SL_ERR_MISMATCH);       /* overlaps the start */
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 5, 2, l, &dup), SL_ERR_MISMATCH);       /* overlaps the end */
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 0, 10, l, &dup), SL_ERR_MISMATCH);      /* covers it */
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 4, 1, l, &dup), SL_ERR_MISMATCH);       /* inside it */
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 0, 0, l, &dup), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 6, 5, l, &dup), SL_ERR_RANGE);          /* beyond size */
    CU_ASSERT_EQUAL(sl_ftree_add(&t, UINT64_MAX, 1, l, &dup), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(t.n, 1u);   /* unchanged by every refusal */
    CU_ASSERT_EQUAL(t.covered, 3u);
    leaf(l, 0, 3);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 0, 3, l, &dup), SL_OK);   /* touching is no overlap */
    leaf(l, 6, 2);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 6, 2, l, &dup), SL_OK);
    CU_ASSERT_FALSE(sl_ftree_complete(&t));
    leaf(l, 8, 2);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 8, 2, l, &dup), SL_ERR_CAPACITY);   /* max_chunks 3 */
    CU_ASSERT_EQUAL(t.n, 3u);
    leaf(l, 6, 2);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 6, 2, l, &dup), SL_OK);   /* a duplicate of the last still fits */
    CU_ASSERT_TRUE(dup);
    CU_ASSERT_EQUAL(sl_ftree_final(&t, d), SL_ERR_TRUNCATED);
    for (size_t i = 1; i < t.n; i++)
        CU_ASSERT(t.c[i - 1].offset + t.c[i - 1].len <= t.c[i].offset);
    sl_ftree_free(&t);
}

/* A chunk before the last entry is appended unchecked (O(1)); the sort at
 * complete/final drops an exact duplicate of an earlier entry without
 * counting it twice, and refuses an overlap or another leaf for a range. */
SL_TEST(ftree, list_out_of_order_checked_at_final)
{
    struct sl_ftree t;
    uint8_t l[SL_FTREE_LEAF_BYTES], d[32], d2[32];
    char h[65];
    bool dup = true;
    /* [4,10) [0,4) then [4,10) again (not the last entry: appended). */
    sl_ftree_init(&t, 10, 8);
    leaf(l, 4, 6);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 4, 6, l, &dup), SL_OK);
    leaf(l, 0, 4);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 0, 4, l, &dup), SL_OK);
    CU_ASSERT_FALSE(dup);
    leaf(l, 4, 6);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 4, 6, l, &dup), SL_OK);
    CU_ASSERT_FALSE(dup);   /* found at final, not here */
    CU_ASSERT_EQUAL(t.n, 3u);
    CU_ASSERT_TRUE(sl_ftree_complete(&t));
    CU_ASSERT_EQUAL(t.n, 2u);
    CU_ASSERT_EQUAL(t.covered, 10u);
    CU_ASSERT_EQUAL_FATAL(sl_ftree_final(&t, d), SL_OK);
    hex(h, d);
    CU_ASSERT_STRING_EQUAL(h, kat_4_6);
    CU_ASSERT_EQUAL_FATAL(sl_ftree_final(&t, d2), SL_OK);   /* sorted once; the same again */
    CU_ASSERT_EQUAL(memcmp(d, d2, sizeof d), 0);
    sl_ftree_free(&t);

    /* Duplicates of one entry fill a gap's worth of length: not complete. */
    sl_ftree_init(&t, 10, 8);
    leaf(l, 5, 5);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 5, 5, l, &dup), SL_OK);
    leaf(l, 0, 1);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 0, 1, l, &dup), SL_OK);
    leaf(l, 5, 5);
    CU_ASSERT_EQUAL(sl_ftree_add(&t, 5, 5, l, &dup), SL_OK);
    CU_ASSERT_FALSE(sl_ftree_complete(&t));   /* 1 + 5 + 5 bytes appended, 6 covered */
    CU_ASSERT_EQUAL(t.covered, 6u);
    CU_ASSERT_EQUAL(sl_ftree_final(&t, d), SL_ERR_TRUNCATED);
    sl_ftree_free(&t);

    /* An overlap with an earlier entry, and another leaf for an earlier
     * range: refused at final (and complete is false). */
    for (int k = 0; k < 2; k++) {
        sl_ftree_init(&t, 10, 8);
        leaf(l, 4, 6);
        CU_ASSERT_EQUAL(sl_ftree_add(&t, 4, 6, l, &dup), SL_OK);
        leaf(l, 0, 4);
        CU_ASSERT_EQUAL(sl_ftree_add(&t, 0, 4, l, &dup), SL_OK);
        if (k == 0) {
            leaf(l, 5, 2);
            CU_ASSERT_EQUAL(sl_ftree_add(&t, 5, 2, l, &dup), SL_OK);   /* inside [4,10) */
        } else {
            leaf(l, 4, 6);
            l[0] ^= 1;
            CU_ASSERT_EQUAL(sl_ftree_add(&t, 4, 6, l, &dup), SL_OK);
        }
        CU_ASSERT_FALSE(sl_ftree_complete(&t));
        CU_ASSERT_EQUAL(sl_ftree_final(&t, d), SL_ERR_MISMATCH);
        CU_ASSERT_EQUAL(sl_ftree_final(&t, d), SL_ERR_MISMATCH);   /* stays refused */
        sl_ftree_free(&t);
    }
}

/* Many one-byte chunks in a scrambled order (the list grows past its first
 * allocation) match the accumulator fed in order. */
SL_TEST(ftree, list_matches_acc_scrambled)
{
    enum { N = 1000 };
    static uint8_t buf[N];
    for (unsigned i = 0; i < N; i++)
        buf[i] = (uint8_t)(i * 7u);
    struct sl_ftree_acc a;
    struct sl_ftree t;
    uint8_t l[SL_FTREE_LEAF_BYTES], da[32], dt[32];
    bool dup;
    CU_ASSERT_EQUAL_FATAL(sl_ftree_acc_init(&a, N), SL_OK);
    sl_ftree_init(&t, N, N);
    for (unsigned i = 0; i < N; i++) {
        sl_ftree_leaf(l, buf + i, 1);
        CU_ASSERT_EQUAL(sl_ftree_acc_add(&a, i, 1, l), SL_OK);
        unsigned j = (i * 389u) % N;   /* 389 is prime to 1000: a permutation */
        sl_ftree_leaf(l, buf + j, 1);
        CU_ASSERT_EQUAL(sl_ftree_add(&t, j, 1, l, &dup), SL_OK);
        CU_ASSERT_FALSE(dup);
    }
    CU_ASSERT_TRUE(sl_ftree_complete(&t));
    CU_ASSERT_EQUAL_FATAL(sl_ftree_acc_final(&a, da), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_ftree_final(&t, dt), SL_OK);
    CU_ASSERT_EQUAL(memcmp(da, dt, sizeof da), 0);
    sl_ftree_acc_free(&a);
    sl_ftree_free(&t);
}
