/* sl_filerecv with the tree digest (FILE_END_TREE) and the running SHA-256
 * of FILE_END: chunks in any order, holes filled by a later copy, a copy
 * deduplicated, a repeat skipped however it is cut, a wrong leaf or a
 * chunk overlapping differently never published, the chunk lists bounded
 * by the file's extent, [files] verify_readback catching a file altered on disk
 * between write and publish, and older senders' files still delivered
 * without a read-back pass when their data came in order. The expected
 * digests are computed here from the definition (sl_wire.h), not by
 * sl_ftree. */
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_chanq.h"
#include "sl_filerecv.h"
#include "sl_fmsg.h"
#include "sl_test.h"
#include "sl_wire.h"

#define CHUNK 1000u
#define NCHUNK 11u
#define FSIZE (10u * CHUNK + 500u)   /* ten full chunks and a short last one */
#define SESSION 77u

struct fx {
    char dir[64];
    struct sl_filerecv *fr;
    uint8_t data[FSIZE];
};

static void sha(uint8_t out[32], const void *p, size_t n)
{
    unsigned len = 0;
    CU_ASSERT_FATAL(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32);
}

static void be(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8u * (n - 1u - i)));
}

static uint32_t chunk_len(unsigned i)
{
    return i + 1 < NCHUNK ? CHUNK : FSIZE - (NCHUNK - 1u) * CHUNK;
}

/* The tree digest of fx data cut in CHUNK pieces, from the definition. */
static void tree_of(const uint8_t *data, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    CU_ASSERT_FATAL(md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1);
    uint8_t sz[8];
    be(sz, FSIZE, 8);
    EVP_DigestUpdate(md, "SLUICE-FILE-TREE-1", 18);
    EVP_DigestUpdate(md, sz, 8);
    for (unsigned i = 0; i < NCHUNK; i++) {
        uint8_t ent[44];
        be(ent, (uint64_t)i * CHUNK, 8);
        be(ent + 8, chunk_len(i), 4);
        sha(ent + 12, data + (size_t)i * CHUNK, chunk_len(i));
        EVP_DigestUpdate(md, ent, sizeof ent);
    }
    unsigned n = 0;
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
}

static void fx_open(struct fx *x, bool verify_readback)
{
    snprintf(x->dir, sizeof x->dir, "/tmp/sl-ftree-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(x->dir) != NULL);
    struct sl_filerecv_config c = { .directory = x->dir, .slots = 4, .max_bytes = 1u << 20,
                                    .max_versions = 10, .verify_readback = verify_readback };
    CU_ASSERT_EQUAL_FATAL(sl_filerecv_create(&x->fr, &c), SL_OK);
    uint32_t v = 12345;
    for (size_t i = 0; i < FSIZE; i++) {
        v = v * 1103515245u + 12345u;
        x->data[i] = (uint8_t)(v >> 16);
    }
}

static struct sl_filerecv_stats fx_stats(struct fx *x)
{
    struct sl_filerecv_stats st;
    sl_filerecv_stats(x->fr, &st);
    return st;
}

/* True when dir/name holds exactly the fx data. */
static bool published(struct fx *x, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", x->dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    static uint8_t got[FSIZE + 1];
    size_t n = fread(got, 1, sizeof got, f);
    fclose(f);
    return n == FSIZE && memcmp(got, x->data, FSIZE) == 0;
}

static unsigned entries(struct fx *x)
{
    DIR *d = opendir(x->dir);
    unsigned n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.' || strncmp(de->d_name, ".sluice-part-", 13) == 0;
    closedir(d);
    return n;
}

static void fx_close(struct fx *x)
{
    sl_filerecv_destroy(x->fr);
    DIR *d = opendir(x->dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
    rmdir(x->dir);
}

static void begin(struct fx *x, uint32_t id)
{
    uint8_t p[512];
    size_t off = 0;
    CU_ASSERT_FATAL(sl_fmsg_put_begin(p, sizeof p, &off, id, FSIZE, "f.bin") == SL_OK);
    sl_filerecv_payload(x->fr, SESSION, p, off, 1);
}

/* Chunk i of file id as one block: split at its data (the leaf given as
 * the block check would, or a wrong one with bad_leaf) or not split. */
static void chunk(struct fx *x, uint32_t id, unsigned i, bool split, bool bad_leaf)
{
    static uint8_t p[4096];
    size_t off = 0;
    uint8_t *d;
    uint64_t at = (uint64_t)i * CHUNK;
    CU_ASSERT_FATAL(sl_fmsg_put_data(p, sizeof p, &off, &d, id, at, chunk_len(i)) == SL_OK);
    memcpy(d, x->data + at, chunk_len(i));
    uint8_t leaf[32];
    sha(leaf, d, chunk_len(i));
    if (bad_leaf)
        leaf[0] ^= 1;
    if (split)
        sl_filerecv_block(x->fr, SESSION, p, off, (size_t)(d - p), leaf, 1);
    else
        sl_filerecv_payload(x->fr, SESSION, p, off, 1);
}

static void end_tree(struct fx *x, uint32_t id)
{
    uint8_t p[512], dg[32];
    size_t off = 0;
    tree_of(x->data, dg);
    CU_ASSERT_FATAL(sl_fmsg_put_end_tree(p, sizeof p, &off, id, FSIZE, dg, "f.bin") == SL_OK);
    sl_filerecv_payload(x->fr, SESSION, p, off, 1);
}

static void end_sha(struct fx *x, uint32_t id)
{
    uint8_t p[512], dg[32];
    size_t off = 0;
    sha(dg, x->data, FSIZE);
    CU_ASSERT_FATAL(sl_fmsg_put_end(p, sizeof p, &off, id, FSIZE, dg, "f.bin") == SL_OK);
    sl_filerecv_payload(x->fr, SESSION, p, off, 1);
}

/* Writes garbage into the temporary file of (SESSION, id) behind the
 * receiver's back: a storage fault between write and publish. */
static void alter_part(struct fx *x, uint32_t id)
{
    char path[128];
    snprintf(path, sizeof path, "%s/.sluice-part-%016llx-%08x", x->dir, (unsigned long long)SESSION, id);
    int fd = open(path, O_WRONLY);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t junk[16];
    memset(junk, 0xa5, sizeof junk);
    CU_ASSERT_FATAL(pwrite(fd, junk, sizeof junk, 2 * CHUNK + 7) == (ssize_t)sizeof junk);
    close(fd);
}

SL_TEST(filetree, out_of_order_published_without_readback)
{
    struct fx x;
    fx_open(&x, false);
    begin(&x, 1);
    /* The size announced: its blocks are allocated (a full disk fails
     * here), while the size still shows the data written so far (none). */
    char path[128];
    struct stat sb;
    snprintf(path, sizeof path, "%s/.sluice-part-%016llx-%08x", x.dir, (unsigned long long)SESSION, 1u);
    CU_ASSERT_FATAL(stat(path, &sb) == 0);
    CU_ASSERT(sb.st_size == 0);
    CU_ASSERT((uint64_t)sb.st_blocks * 512u >= FSIZE);
    for (unsigned i = NCHUNK; i-- > 0;)
        chunk(&x, 1, i, true, false);
    end_tree(&x, 1);
    struct sl_filerecv_stats st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT_EQUAL(st.files_failed, 0);
    CU_ASSERT_EQUAL(st.readback_bytes, 0);
    CU_ASSERT_EQUAL(st.bytes_written, FSIZE);
    CU_ASSERT(published(&x, "f.bin"));
    fx_close(&x);
}

/* The END before the data, chunks not split (hashed by the receiver), or
 * the first ones not split and the rest split: the same digest. */
SL_TEST(filetree, unsplit_and_mixed_chunks)
{
    struct fx x;
    fx_open(&x, false);
    end_tree(&x, 2);
    for (unsigned i = 0; i < NCHUNK; i++)
        chunk(&x, 2, i, false, false);
    for (unsigned i = 0; i < NCHUNK; i++)
        chunk(&x, 3, (i * 7u) % NCHUNK, i >= 4, false);
    end_tree(&x, 3);
    struct sl_filerecv_stats st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.files_ok, 2);
    CU_ASSERT_EQUAL(st.files_failed, 0);
    CU_ASSERT(published(&x, "f.bin"));
    CU_ASSERT(published(&x, "f.bin.1"));
    fx_close(&x);
}

/* Copy one lost chunks 3 and 8; copy two fills them (nothing else is
 * written again); copy three is a duplicate, dropped without a write. */
SL_TEST(filetree, holes_filled_by_repeat_then_deduplicated)
{
    struct fx x;
    fx_open(&x, false);
    begin(&x, 4);
    for (unsigned i = 0; i < NCHUNK; i++)
        if (i != 3 && i != 8)
            chunk(&x, 4, i, true, false);
    end_tree(&x, 4);
    CU_ASSERT_EQUAL(fx_stats(&x).files_ok, 0);
    begin(&x, 4);
    for (unsigned i = 0; i < NCHUNK; i++)
        chunk(&x, 4, i, true, false);
    end_tree(&x, 4);
    struct sl_filerecv_stats st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT_EQUAL(st.files_duplicate, 1);   /* published at its last chunk; this END is the copy's */
    CU_ASSERT_EQUAL(st.bytes_written, FSIZE);
    CU_ASSERT(published(&x, "f.bin"));
    begin(&x, 4);
    for (unsigned i = 0; i < NCHUNK; i++)
        chunk(&x, 4, i, true, false);
    end_tree(&x, 4);
    st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT_EQUAL(st.files_duplicate, 2);
    CU_ASSERT_EQUAL(st.bytes_written, FSIZE);
    CU_ASSERT_EQUAL(entries(&x), 1);
    fx_close(&x);
}

/* A chunk whose leaf is not its data's (in whichever copy) never gets
 * the file published; no temporary is left. */
SL_TEST(filetree, wrong_leaf_never_published)
{
    struct fx x;
    fx_open(&x, false);
    begin(&x, 5);
    for (unsigned i = 0; i < NCHUNK; i++)
        chunk(&x, 5, i, true, i == 6);
    end_tree(&x, 5);
    struct sl_filerecv_stats st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.files_ok, 0);
    CU_ASSERT_EQUAL(st.failed_hash, 1);
    CU_ASSERT_EQUAL(entries(&x), 0);
    /* A wrong first copy of a range, then the right one: the repeat writes
     * nothing and is not recorded, so the digest at the end refuses it. */
    begin(&x, 6);
    chunk(&x, 6, 2, true, true);
    for (unsigned i = 0; i < NCHUNK; i++)
        chunk(&x, 6, i, true, false);
    end_tree(&x, 6);
    st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.files_ok, 0);
    CU_ASSERT_EQUAL(st.failed_hash, 2);
    CU_ASSERT_EQUAL(st.in_progress, 0);
    CU_ASSERT_EQUAL(entries(&x), 0);
    fx_close(&x);
}

/* A repeat whose bytes are all there already is skipped, however it is cut
 * (a copy sent with other chunk boundaries): chunks 0 and 1, then one chunk
 * over both, then the rest: published from the first copy's bytes. */
SL_TEST(filetree, repeat_cut_differently_skipped)
{
    struct fx x;
    fx_open(&x, false);
    begin(&x, 20);
    chunk(&x, 20, 0, true, false);
    chunk(&x, 20, 1, true, false);
    uint8_t p[4096], leaf[32], *d;
    size_t off = 0;
    CU_ASSERT_FATAL(sl_fmsg_put_data(p, sizeof p, &off, &d, 20, 0, 2 * CHUNK) == SL_OK);
    memcpy(d, x.data, 2 * CHUNK);
    sha(leaf, d, 2 * CHUNK);
    sl_filerecv_block(x.fr, SESSION, p, off, (size_t)(d - p), leaf, 1);
    CU_ASSERT_EQUAL(fx_stats(&x).files_failed, 0);
    for (unsigned i = 2; i < NCHUNK; i++)
        chunk(&x, 20, i, true, false);
    end_tree(&x, 20);
    struct sl_filerecv_stats st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT_EQUAL(st.files_failed, 0);
    CU_ASSERT_EQUAL(st.bytes_written, FSIZE);
    CU_ASSERT(published(&x, "f.bin"));
    fx_close(&x);
}

/* One-byte chunks at offset off .. off + n - 1 of file id, split. */
static void tiny_chunks(struct fx *x, uint32_t id, uint64_t at, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint8_t p[256], leaf[32], *d;
        size_t off = 0;
        CU_ASSERT_FATAL(sl_fmsg_put_data(p, sizeof p, &off, &d, id, at + i, 1) == SL_OK);
        d[0] = x->data[at + i];
        sha(leaf, d, 1);
        sl_filerecv_block(x->fr, SESSION, p, off, (size_t)(d - p), leaf, 1);
    }
}

/* The chunk lists are bounded by the file's own extent (one entry per 512
 * bytes + 2), not by max_bytes: FSIZE allows 22 entries, the 23rd fails
 * the file; before the size is known the extent is the highest byte
 * written (two one-byte chunks at the start, the third fails). */
SL_TEST(filetree, chunk_list_bounded_by_extent)
{
    struct fx x;
    fx_open(&x, false);
    const unsigned bound = FSIZE / 512u + 2u;
    begin(&x, 21);
    tiny_chunks(&x, 21, 0, bound);
    CU_ASSERT_EQUAL(fx_stats(&x).files_failed, 0);
    tiny_chunks(&x, 21, bound, 1);
    struct sl_filerecv_stats st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.files_failed, 1);
    CU_ASSERT_EQUAL(st.failed_invalid, 1);
    CU_ASSERT_EQUAL(st.in_progress, 0);
    tiny_chunks(&x, 22, 0, 2);
    CU_ASSERT_EQUAL(fx_stats(&x).files_failed, 1);
    tiny_chunks(&x, 22, 2, 1);
    st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.files_failed, 2);
    CU_ASSERT_EQUAL(st.failed_invalid, 2);
    CU_ASSERT_EQUAL(entries(&x), 0);
    fx_close(&x);
}

/* A size beyond INT64_MAX (no file offset reaches it) with no max_bytes:
 * refused as invalid, not passed to fallocate as a negative length. */
SL_TEST(filetree, size_beyond_off_t_invalid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/sl-ftree-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    struct sl_filerecv_config c = { .directory = dir, .slots = 4, .max_bytes = 0, .max_versions = 10 };
    struct sl_filerecv *fr;
    CU_ASSERT_EQUAL_FATAL(sl_filerecv_create(&fr, &c), SL_OK);
    uint8_t p[512];
    size_t off = 0;
    CU_ASSERT_FATAL(sl_fmsg_put_begin(p, sizeof p, &off, 1, (uint64_t)INT64_MAX + 1u, "big") == SL_OK);
    sl_filerecv_payload(fr, SESSION, p, off, 1);
    struct sl_filerecv_stats st;
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_failed, 1);
    CU_ASSERT_EQUAL(st.failed_invalid, 1);
    CU_ASSERT_EQUAL(st.failed_io, 0);
    CU_ASSERT_EQUAL(st.in_progress, 0);
    sl_filerecv_destroy(fr);
    CU_ASSERT_EQUAL(rmdir(dir), 0);
}

/* A chunk overlapping another differently (not the same range): failed. */
SL_TEST(filetree, overlap_fails)
{
    struct fx x;
    fx_open(&x, false);
    begin(&x, 7);
    chunk(&x, 7, 0, true, false);
    uint8_t p[4096], leaf[32], *d;
    size_t off = 0;
    CU_ASSERT_FATAL(sl_fmsg_put_data(p, sizeof p, &off, &d, 7, CHUNK / 2, CHUNK) == SL_OK);
    memcpy(d, x.data + CHUNK / 2, CHUNK);
    sha(leaf, d, CHUNK);
    sl_filerecv_block(x.fr, SESSION, p, off, (size_t)(d - p), leaf, 1);
    struct sl_filerecv_stats st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.failed_hash, 1);
    CU_ASSERT_EQUAL(st.in_progress, 0);
    for (unsigned i = 1; i < NCHUNK; i++)
        chunk(&x, 7, i, true, false);
    end_tree(&x, 7);
    CU_ASSERT_EQUAL(fx_stats(&x).files_ok, 0);
    CU_ASSERT_EQUAL(entries(&x), 0);
    fx_close(&x);
}

/* The file altered on disk after it was written: verify_readback = yes
 * refuses it (tree and whole-file digests); with no it is published as
 * it is on disk, which is what the option guards against. */
SL_TEST(filetree, verify_readback_catches_altered_file)
{
    for (int yes = 0; yes < 2; yes++) {
        struct fx x;
        fx_open(&x, yes);
        begin(&x, 8);
        for (unsigned i = 0; i < NCHUNK; i++)
            chunk(&x, 8, i, true, false);
        alter_part(&x, 8);
        end_tree(&x, 8);
        begin(&x, 9);
        for (unsigned i = 0; i < NCHUNK; i++)
            chunk(&x, 9, i, false, false);
        alter_part(&x, 9);
        end_sha(&x, 9);
        struct sl_filerecv_stats st = fx_stats(&x);
        if (yes) {
            CU_ASSERT_EQUAL(st.files_ok, 0);
            CU_ASSERT_EQUAL(st.failed_hash, 2);
            CU_ASSERT_EQUAL(entries(&x), 0);
            CU_ASSERT(st.readback_bytes >= FSIZE);
        } else {
            CU_ASSERT_EQUAL(st.files_ok, 2);
            CU_ASSERT_EQUAL(st.readback_bytes, 0);
        }
        fx_close(&x);
    }
    /* Unaltered, verify_readback = yes publishes both kinds. */
    struct fx x;
    fx_open(&x, true);
    begin(&x, 10);
    for (unsigned i = 0; i < NCHUNK; i++)
        chunk(&x, 10, i, true, false);
    end_tree(&x, 10);
    for (unsigned i = 0; i < NCHUNK; i++)
        chunk(&x, 11, i, false, false);
    end_sha(&x, 11);
    CU_ASSERT_EQUAL(fx_stats(&x).files_ok, 2);
    CU_ASSERT(published(&x, "f.bin"));
    CU_ASSERT(published(&x, "f.bin.1"));
    fx_close(&x);
}

/* Older senders (FILE_END, whole-file SHA-256): in order, hashed while
 * written (nothing read back); out of order, only the data that came ahead
 * of the hole is read back; a wrong SHA-256 is refused. */
SL_TEST(filetree, old_style_end_hashed_while_writing)
{
    struct fx x;
    fx_open(&x, false);
    begin(&x, 12);
    for (unsigned i = 0; i < NCHUNK; i++)
        chunk(&x, 12, i, false, false);
    end_sha(&x, 12);
    struct sl_filerecv_stats st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT_EQUAL(st.readback_bytes, 0);
    CU_ASSERT(published(&x, "f.bin"));
    /* Chunk 0 last: chunks 1..10 are read back once. */
    begin(&x, 13);
    for (unsigned i = 1; i < NCHUNK; i++)
        chunk(&x, 13, i, false, false);
    chunk(&x, 13, 0, false, false);
    end_sha(&x, 13);
    st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.files_ok, 2);
    CU_ASSERT_EQUAL(st.readback_bytes, FSIZE - CHUNK);
    CU_ASSERT(published(&x, "f.bin.1"));
    /* Hurried (the queue filling): the hash waits, the bytes it skipped are
     * read back once, and the file is still verified. */
    sl_filerecv_hurry(x.fr, true);
    begin(&x, 15);
    for (unsigned i = 0; i < 5; i++)
        chunk(&x, 15, i, false, false);
    sl_filerecv_hurry(x.fr, false);
    for (unsigned i = 5; i < NCHUNK; i++)
        chunk(&x, 15, i, false, false);
    end_sha(&x, 15);
    st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.files_ok, 3);
    CU_ASSERT_EQUAL(st.readback_bytes, FSIZE - CHUNK + 5u * CHUNK);
    CU_ASSERT(published(&x, "f.bin.2"));
    /* Other content than the digest says: refused. */
    begin(&x, 14);
    x.data[5]++;
    for (unsigned i = 0; i < NCHUNK; i++)
        chunk(&x, 14, i, false, false);
    x.data[5]--;
    end_sha(&x, 14);
    st = fx_stats(&x);
    CU_ASSERT_EQUAL(st.files_ok, 3);
    CU_ASSERT_EQUAL(st.failed_hash, 1);
    fx_close(&x);
}

/* The chunk's split and leaf ride the queue with the payload. */
SL_TEST(filetree, chanq_carries_split_and_leaf)
{
    struct sl_chanq *q;
    CU_ASSERT_EQUAL_FATAL(sl_chanq_create(&q, 4, 64, -1), SL_OK);
    uint8_t pl[40], leaf[SL_BLOCK_DIGEST_BYTES];
    memset(pl, 1, sizeof pl);
    memset(leaf, 0x5a, sizeof leaf);
    CU_ASSERT_EQUAL(sl_chanq_push_split(q, SL_CHANNEL_FILES, 3, pl, sizeof pl, 16, leaf, 9), SL_OK);
    leaf[0] = 0;   /* the queue holds its own copy */
    CU_ASSERT_EQUAL(sl_chanq_push(q, SL_CHANNEL_FILES, 3, pl, sizeof pl, 9), SL_OK);
    struct sl_chanq_item it;
    CU_ASSERT_FATAL(sl_chanq_peek(q, &it));
    CU_ASSERT_EQUAL(it.split, 16);
    CU_ASSERT_FATAL(it.leaf != NULL);
    CU_ASSERT_EQUAL(it.leaf[0], 0x5a);
    CU_ASSERT_EQUAL(it.leaf[31], 0x5a);
    sl_chanq_pop_done(q);
    CU_ASSERT_FATAL(sl_chanq_peek(q, &it));
    CU_ASSERT_EQUAL(it.split, 0);
    CU_ASSERT(it.leaf == NULL);
    sl_chanq_pop_done(q);
    sl_chanq_destroy(q);
}
