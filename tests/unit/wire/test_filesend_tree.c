/* What sl_filesend puts on the wire, read back through a capture and
 * sl_receiver (so every block is FEC-decoded and signature-checked):
 *  - every FILE_DATA is the last message of its block and the block is
 *    sealed with the split rule at the data's first byte, the leaf being
 *    SHA-256 of the data;
 *  - FILE_END_TREE (never FILE_END) carries the tree digest, computed here
 *    independently with OpenSSL from the chunks seen, and shares the last
 *    data block only before the data;
 *  - the chunks rebuild the file; a file changed while sent gets no end. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_filesend.h"
#include "sl_fmsg.h"
#include "sl_ftree.h"
#include "sl_hw.h"
#include "sl_msg.h"
#include "sl_receiver.h"
#include "sl_sender.h"
#include "sl_test.h"
#include "sl_wire.h"

#define TK 16u
#define TM 4u
#define TS 512u
#define MAXF 8u
#define MAXBYTES (64u * 1024u)

struct seen_file {
    uint32_t id;
    uint64_t size;
    uint8_t *data;
    uint64_t chunk_off[64];
    uint32_t chunk_len[64];
    size_t nchunks;
    unsigned ends, end_trees, blocks;
    uint8_t digest[32];
};

struct seen {
    struct seen_file f[MAXF];
    unsigned bad_order, bad_split, bad_leaf, plain_with_data, end_after_data;
};

static struct seen_file *file_of(struct seen *s, uint32_t id)
{
    CU_ASSERT_FATAL(id >= 1 && id <= MAXF);
    struct seen_file *f = &s->f[id - 1];
    f->id = id;
    if (!f->data)
        f->data = calloc(1, MAXBYTES);
    return f;
}

static void on_payload(void *c, const struct sl_block_hdr *h, const uint8_t *key_id, const uint8_t *payload,
                       size_t len, uint64_t now_us)
{
    (void)key_id;
    (void)now_us;
    struct seen *s = c;
    if (h->channel != SL_CHANNEL_FILES)
        return;
    struct sl_buf b = sl_buf_make(payload, len);
    bool data_seen = false;
    uint8_t type;
    const uint8_t *body;
    size_t blen;
    struct seen_file *last = NULL;
    while (sl_buf_left(&b) > 0) {
        CU_ASSERT_FATAL(sl_msg_split(&b, &type, &body, &blen) == SL_OK);
        struct sl_fmsg m;
        CU_ASSERT_FATAL(sl_fmsg_decode(&m, type, body, blen) == SL_OK);
        if (data_seen)
            s->bad_order++;   /* anything after the data */
        struct seen_file *f = file_of(s, m.file_id);
        last = f;
        switch (type) {
        case SL_MSG_FILE_BEGIN:
            f->size = m.size;
            break;
        case SL_MSG_FILE_DATA: {
            data_seen = true;
            size_t at = (size_t)(m.data - payload);
            if (h->split != at)
                s->bad_split++;
            uint8_t l[32];
            SHA256(m.data, m.data_len, l);
            if (h->split == 0)
                s->plain_with_data++;
            else if (memcmp(l, h->leaf, 32) != 0)
                s->bad_leaf++;
            CU_ASSERT_FATAL(m.offset + m.data_len <= MAXBYTES && f->nchunks < 64);
            memcpy(f->data + m.offset, m.data, m.data_len);
            f->chunk_off[f->nchunks] = m.offset;
            f->chunk_len[f->nchunks++] = (uint32_t)m.data_len;
            break;
        }
        case SL_MSG_FILE_END:
            f->ends++;
            break;
        case SL_MSG_FILE_END_TREE:
            f->end_trees++;
            if (data_seen)
                s->end_after_data++;
            memcpy(f->digest, m.sha256, 32);
            CU_ASSERT_EQUAL(m.size, f->size);
            break;
        }
    }
    if (!data_seen)
        CU_ASSERT_EQUAL(h->split, 0);
    if (last)
        last->blocks++;
}

/* The tree digest by its definition (sl_wire.h), written apart from
 * sl_ftree.c: chunks as seen, in ascending offset (they arrive in order). */
static void tree_of(uint8_t out[32], const struct seen_file *f)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    CU_ASSERT_FATAL(md != NULL);
    uint8_t u[12];
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, "SLUICE-FILE-TREE-1", 18);
    sl_be64_put(u, f->size);
    EVP_DigestUpdate(md, u, 8);
    uint64_t next = 0;
    for (size_t i = 0; i < f->nchunks; i++) {
        CU_ASSERT_EQUAL(f->chunk_off[i], next);
        next = f->chunk_off[i] + f->chunk_len[i];
        sl_be64_put(u, f->chunk_off[i]);
        sl_be32_put(u + 8, f->chunk_len[i]);
        uint8_t l[32];
        SHA256(f->data + f->chunk_off[i], f->chunk_len[i], l);
        EVP_DigestUpdate(md, u, 12);
        EVP_DigestUpdate(md, l, 32);
    }
    CU_ASSERT_EQUAL(next, f->size);
    unsigned n = 0;
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
}

static struct sl_sender *open_sender(struct sl_hw **hw, const char *cap_path, const struct sl_key_secret *key)
{
    struct sl_hw_config hc;
    sl_hw_config_init(&hc);
    hc.transport = SL_HW_PCAPFILE;
    hc.dir = SL_HW_TX;
    hc.datagram_bytes = SL_FRAME_OVERHEAD + TS;
    hc.file = cap_path;
    char why[256] = "";
    CU_ASSERT_FATAL(sl_hw_open(hw, why, sizeof why, &hc) == SL_OK);
    struct sl_sender_config sc = { .k = TK, .m = TM, .interleave = 4, .symbol_size = TS, .max_delay_us = 1000,
                                   .session = 77, .epoch = 1, .signer = sl_key_signer(key), .hw = *hw };
    struct sl_sender *snd = NULL;
    CU_ASSERT_FATAL(sl_sender_create(&snd, &sc) == SL_OK);
    return snd;
}

static void read_back(const char *cap_path, const struct sl_key_secret *key, struct seen *s)
{
    struct sl_key_set trusted;
    sl_key_set_init(&trusted);
    struct sl_key_public pub;
    sl_key_public_of(&pub, key);
    CU_ASSERT_FATAL(sl_key_set_add(&trusted, &pub) == SL_OK);
    static struct sl_replay rp;
    sl_replay_init(&rp);
    struct sl_hw_config hc;
    sl_hw_config_init(&hc);
    hc.transport = SL_HW_PCAPFILE;
    hc.dir = SL_HW_RX;
    hc.datagram_bytes = SL_FRAME_OVERHEAD + TS;
    hc.file = cap_path;
    struct sl_hw *hw = NULL;
    char why[256] = "";
    CU_ASSERT_FATAL(sl_hw_open(&hw, why, sizeof why, &hc) == SL_OK);
    struct sl_receiver_config rc = {
        .hw = hw, .trusted = &trusted, .replay = &rp,
        .fec = { .k_max = TK, .m_max = TM, .symbol_max = TS, .entries = 16, .done_history = 256,
                 .cache_entries = 16, .max_age_us = 5000000 },
        .batch = 32, .datagram_max = SL_FRAME_OVERHEAD + TS, .on_payload = on_payload, .ctx = s,
    };
    struct sl_receiver *r = NULL;
    CU_ASSERT_FATAL(sl_receiver_create(&r, &rc) == SL_OK);
    sl_err e;
    unsigned polls = 0;
    while ((e = sl_receiver_poll(r, 10, 1000)) == SL_OK || e == SL_ERR_AGAIN)
        CU_ASSERT_FATAL(++polls < 1000000);
    CU_ASSERT_EQUAL(e, SL_ERR_EOF);
    struct sl_receiver_stats rs;
    sl_receiver_stats(r, &rs);
    for (unsigned i = 0; i < SL_ERR__COUNT; i++)
        CU_ASSERT_EQUAL(rs.drops[SL_RX_BLOCK][i], 0);   /* every block opened */
    sl_receiver_destroy(r);
    sl_hw_close(hw);
}

static void write_bytes(const char *path, size_t len, unsigned seed)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    unsigned x = seed;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        fputc((int)(x >> 16) & 0xff, f);
    }
    fclose(f);
}

SL_TEST(filesend_tree, one_hash_per_chunk_split_blocks_tree_digest)
{
    char dir[] = "/tmp/sl_fst_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    uint8_t seed[SL_KEY_SEED_BYTES];
    memset(seed, 0x5A, sizeof seed);
    struct sl_key_secret *key = NULL;
    CU_ASSERT_FATAL(sl_key_from_seed(&key, seed) == SL_OK);
    /* Payload cap 16 * 512 - 108 = 8084. Sizes: empty, one byte, a small
     * file (one block with its end), one that fills its first block
     * exactly (end in a block of its own), several blocks with a small
     * tail, several blocks whose last one is full. */
    const size_t cap = TK * TS - SL_BLOCK_OVERHEAD;
    const size_t first = cap - (SL_MSG_HDR_BYTES + SL_FILE_BEGIN_FIXED + 5) - (SL_MSG_HDR_BYTES + SL_FILE_DATA_HDR);
    const size_t later = cap - (SL_MSG_HDR_BYTES + SL_FILE_DATA_HDR);
    const size_t sizes[] = { 0, 1, 1000, first, first + 2 * later + 17, first + 3 * later };
    enum { NF = sizeof sizes / sizeof sizes[0] };
    char paths[NF][64];
    char cap_path[64];
    snprintf(cap_path, sizeof cap_path, "%s/cap.pcap", dir);
    struct sl_hw *hw = NULL;
    struct sl_sender *snd = open_sender(&hw, cap_path, key);
    for (size_t i = 0; i < NF; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/f%zu.bn", dir, i);   /* base names of 5 bytes */
        write_bytes(paths[i], sizes[i], (unsigned)i + 3);
        CU_ASSERT_FATAL(sl_filesend_file(snd, paths[i], (uint32_t)i + 1, NULL, NULL) == SL_OK);
    }
    CU_ASSERT_FATAL(sl_sender_flush(snd) == SL_OK);
    sl_sender_destroy(snd);
    sl_hw_close(hw);

    static struct seen s;
    memset(&s, 0, sizeof s);
    read_back(cap_path, key, &s);
    CU_ASSERT_EQUAL(s.bad_order, 0);
    CU_ASSERT_EQUAL(s.bad_split, 0);
    CU_ASSERT_EQUAL(s.bad_leaf, 0);
    CU_ASSERT_EQUAL(s.plain_with_data, 0);
    CU_ASSERT_EQUAL(s.end_after_data, 0);
    const unsigned want_blocks[NF] = { 1, 1, 1, 2, 4, 5 };
    for (size_t i = 0; i < NF; i++) {
        struct seen_file *f = &s.f[i];
        CU_ASSERT_EQUAL(f->size, sizes[i]);
        CU_ASSERT_EQUAL(f->ends, 0);
        CU_ASSERT_EQUAL(f->end_trees, 1);
        CU_ASSERT_EQUAL(f->blocks, want_blocks[i]);
        uint8_t want[32];
        tree_of(want, f);
        CU_ASSERT_EQUAL(memcmp(want, f->digest, 32), 0);
        /* The chunks rebuild the file. */
        FILE *fp = fopen(paths[i], "rb");
        CU_ASSERT_FATAL(fp != NULL);
        uint8_t *orig = malloc(sizes[i] + 1);
        CU_ASSERT_EQUAL(fread(orig, 1, sizes[i], fp), sizes[i]);
        fclose(fp);
        CU_ASSERT_EQUAL(memcmp(orig, f->data, sizes[i]), 0);
        free(orig);
        free(f->data);
        unlink(paths[i]);
    }
    unlink(cap_path);
    rmdir(dir);
    sl_key_free(key);
}

/* A file that grows between two steps: the job stops with SL_ERR_MISMATCH
 * and no FILE_END_TREE ever goes (RX never completes that copy). */
SL_TEST(filesend_tree, changed_while_sent_never_ends)
{
    char dir[] = "/tmp/sl_fst_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    uint8_t seed[SL_KEY_SEED_BYTES];
    memset(seed, 0x6B, sizeof seed);
    struct sl_key_secret *key = NULL;
    CU_ASSERT_FATAL(sl_key_from_seed(&key, seed) == SL_OK);
    char path[64], cap_path[64];
    snprintf(path, sizeof path, "%s/g.bn", dir);
    snprintf(cap_path, sizeof cap_path, "%s/cap.pcap", dir);
    write_bytes(path, 12000, 9);   /* two blocks */
    struct sl_hw *hw = NULL;
    struct sl_sender *snd = open_sender(&hw, cap_path, key);
    struct sl_filesend fs;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(sl_filesend_open(&fs, fd, "g.bn", 1) == SL_OK);
    bool done = false;
    sl_err link = SL_OK;
    CU_ASSERT_EQUAL(sl_filesend_step(&fs, snd, &done, &link), SL_OK);
    CU_ASSERT_FALSE(done);
    FILE *f = fopen(path, "ab");
    CU_ASSERT_FATAL(f != NULL);
    fputc('x', f);
    fclose(f);
    CU_ASSERT_EQUAL(sl_filesend_step(&fs, snd, &done, &link), SL_ERR_MISMATCH);
    CU_ASSERT_FALSE(done);
    sl_filesend_close(&fs);
    sl_filesend_close(&fs);
    CU_ASSERT_FATAL(sl_sender_flush(snd) == SL_OK);
    sl_sender_destroy(snd);
    sl_hw_close(hw);

    static struct seen s;
    memset(&s, 0, sizeof s);
    read_back(cap_path, key, &s);
    CU_ASSERT_EQUAL(s.f[0].end_trees, 0);
    CU_ASSERT_EQUAL(s.f[0].ends, 0);
    CU_ASSERT_EQUAL(s.f[0].nchunks, 1);   /* the second block was never sent */
    CU_ASSERT_EQUAL(s.bad_split + s.bad_leaf + s.plain_with_data, 0);
    free(s.f[0].data);
    unlink(path);
    unlink(cap_path);
    rmdir(dir);
    sl_key_free(key);
}

/* sl_sender_commit_split refuses a split that leaves no prefix or no tail,
 * or no leaf, and abandons the block (the next one can be had). */
SL_TEST(filesend_tree, commit_split_limits)
{
    char dir[] = "/tmp/sl_fst_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    uint8_t seed[SL_KEY_SEED_BYTES];
    memset(seed, 0x7C, sizeof seed);
    struct sl_key_secret *key = NULL;
    CU_ASSERT_FATAL(sl_key_from_seed(&key, seed) == SL_OK);
    char cap_path[64];
    snprintf(cap_path, sizeof cap_path, "%s/cap.pcap", dir);
    struct sl_hw *hw = NULL;
    struct sl_sender *snd = open_sender(&hw, cap_path, key);
    uint8_t leaf[SL_BLOCK_DIGEST_BYTES] = { 0 };
    static const struct { size_t len, split; bool leaf; sl_err want; } cases[] = {
        { 100, 0, true, SL_ERR_RANGE },   { 100, 100, true, SL_ERR_RANGE }, { 100, 101, true, SL_ERR_RANGE },
        { 100, 50, false, SL_ERR_RANGE }, { 70000, 65536, true, SL_ERR_RANGE },
        { 100, 99, true, SL_OK },         { 100, 1, true, SL_OK },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *p;
        size_t cap;
        CU_ASSERT_FATAL(sl_sender_block(snd, &p, &cap, SL_CHANNEL_FILES) == SL_OK);
        if (cases[i].len > cap) {
            CU_ASSERT_EQUAL(sl_sender_commit(snd, 0, 1, 1), SL_OK);
            continue;   /* this geometry cannot hold it */
        }
        memset(p, 0x11, cases[i].len);
        sl_ftree_leaf(leaf, p + cases[i].split % cases[i].len, cases[i].len - cases[i].split % cases[i].len);
        CU_ASSERT_EQUAL(sl_sender_commit_split(snd, cases[i].len, cases[i].split, cases[i].leaf ? leaf : NULL, 1, 1),
                        cases[i].want);
    }
    struct sl_sender_stats st;
    CU_ASSERT_FATAL(sl_sender_flush(snd) == SL_OK);
    sl_sender_stats(snd, &st);
    CU_ASSERT_EQUAL(st.blocks_sent[SL_CHANNEL_FILES], 2);   /* only the two good ones */
    sl_sender_destroy(snd);
    sl_hw_close(hw);
    unlink(cap_path);
    rmdir(dir);
    sl_key_free(key);
}
