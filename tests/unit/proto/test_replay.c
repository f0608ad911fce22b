/* Replay window: order, duplicates, age, epochs, independence of
 * (key, channel) pairs, the bounded table, the state file, and the jump
 * bounds against a compromised TX. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_crc.h"
#include "sl_replay.h"
#include "sl_replayfile.h"
#include "sl_test.h"

static const uint8_t key_a[SL_KEY_ID_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t key_b[SL_KEY_ID_BYTES] = { 8, 7, 6, 5, 4, 3, 2, 1 };

static struct sl_replay *new_table(void)
{
    struct sl_replay *r = malloc(sizeof *r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    sl_replay_init(r);
    return r;
}

/* check and accept must agree; returns accept's answer. */
static sl_err accept_both(struct sl_replay *r, const uint8_t *key, uint16_t ch, uint64_t epoch, uint64_t seq)
{
    sl_err c = sl_replay_check(r, key, ch, epoch, seq);
    sl_err a = sl_replay_accept(r, key, ch, epoch, seq);
    CU_ASSERT_EQUAL(c, a);
    return a;
}

SL_TEST(replay, in_order_and_duplicates)
{
    struct sl_replay *r = new_table();
    for (uint64_t s = 0; s < 20000; s++) {
        CU_ASSERT_EQUAL_FATAL(accept_both(r, key_a, 0, 1, s), SL_OK);
        CU_ASSERT_EQUAL_FATAL(sl_replay_check(r, key_a, 0, 1, s), SL_ERR_REPLAY);
        if (s > 0)
            CU_ASSERT_EQUAL_FATAL(sl_replay_check(r, key_a, 0, 1, s - 1), SL_ERR_REPLAY);
    }
    uint64_t e, q;
    CU_ASSERT_EQUAL(sl_replay_position(&e, &q, r, key_a, 0), SL_OK);
    CU_ASSERT_EQUAL(e, 1u);
    CU_ASSERT_EQUAL(q, 19999u);
    CU_ASSERT_EQUAL(sl_replay_position(&e, &q, r, key_b, 0), SL_ERR_NOT_FOUND);
    free(r);
}

SL_TEST(replay, out_of_order_within_window)
{
    struct sl_replay *r = new_table();
    /* First accepted sequence need not be 0; earlier ones still fit. */
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 1, 100), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 1, 50), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 1, 50), SL_ERR_REPLAY);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 1, 0), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 1, 100), SL_ERR_REPLAY);
    /* Reverse order over a span smaller than the window. */
    for (uint64_t s = 5000; s > 200; s--)
        CU_ASSERT_EQUAL_FATAL(accept_both(r, key_a, 0, 1, s), SL_OK);
    for (uint64_t s = 201; s <= 5000; s++)
        CU_ASSERT_EQUAL_FATAL(accept_both(r, key_a, 0, 1, s), SL_ERR_REPLAY);
    /* Interleaved: evens then odds. */
    for (uint64_t s = 6000; s < 9000; s += 2)
        CU_ASSERT_EQUAL_FATAL(accept_both(r, key_a, 0, 1, s), SL_OK);
    for (uint64_t s = 6001; s < 9000; s += 2)
        CU_ASSERT_EQUAL_FATAL(accept_both(r, key_a, 0, 1, s), SL_OK);
    for (uint64_t s = 6000; s < 9000; s++)
        CU_ASSERT_EQUAL_FATAL(sl_replay_check(r, key_a, 0, 1, s), SL_ERR_REPLAY);
    free(r);
}

SL_TEST(replay, too_old_and_window_edges)
{
    struct sl_replay *r = new_table();
    const uint64_t top = 100000;
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 1, top), SL_OK);
    /* The last sequence inside the window is fresh; one further is old. */
    CU_ASSERT_EQUAL(sl_replay_check(r, key_a, 0, 1, top - (SL_REPLAY_WINDOW - 1)), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 1, top - SL_REPLAY_WINDOW), SL_ERR_REPLAY);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 1, 0), SL_ERR_REPLAY);
    /* Everything in the window, accepted once, is then refused: no stale
     * bits from before the window, no lost bits after advancing. */
    for (uint64_t s = top - (SL_REPLAY_WINDOW - 1); s < top; s++)
        CU_ASSERT_EQUAL_FATAL(accept_both(r, key_a, 0, 1, s), SL_OK);
    for (uint64_t s = top - (SL_REPLAY_WINDOW - 1); s <= top; s++)
        CU_ASSERT_EQUAL_FATAL(sl_replay_check(r, key_a, 0, 1, s), SL_ERR_REPLAY);
    /* Jumps of every size: big jumps clear the whole ring. */
    uint64_t s = top;
    for (uint64_t jump = 1; jump < 3 * SL_REPLAY_BITMAP_BITS; jump = jump * 3 + 1) {
        s += jump;
        CU_ASSERT_EQUAL_FATAL(accept_both(r, key_a, 0, 1, s), SL_OK);
        CU_ASSERT_EQUAL_FATAL(sl_replay_check(r, key_a, 0, 1, s), SL_ERR_REPLAY);
        /* A sequence just below the new top that was never accepted. */
        if (jump > 1)
            CU_ASSERT_EQUAL_FATAL(sl_replay_check(r, key_a, 0, 1, s - 1), SL_OK);
    }
    /* The largest jump allowed, twice, and the edges there. */
    s += SL_REPLAY_SEQ_JUMP_MAX;
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 1, s), SL_OK);
    s += SL_REPLAY_SEQ_JUMP_MAX;
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 1, s), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 1, s), SL_ERR_REPLAY);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 1, s - 1), SL_OK);
    free(r);
}

SL_TEST(replay, epochs)
{
    struct sl_replay *r = new_table();
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 5, 10), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 4, 11), SL_ERR_EPOCH);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 0, 0), SL_ERR_EPOCH);
    /* Newer epoch: window restarts, low sequences are fresh again. */
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 6, 0), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 6, 10), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 6, 10), SL_ERR_REPLAY);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 5, 11), SL_ERR_EPOCH);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 6 + SL_REPLAY_EPOCH_JUMP_MAX, 3), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 6, 11), SL_ERR_EPOCH);
    /* Pairs are independent: other key, other channel, beacons. */
    CU_ASSERT_EQUAL(accept_both(r, key_b, 0, 1, 10), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 1, 1, 10), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, SL_REPLAY_CHANNEL_BEACON, 1, 10), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, SL_REPLAY_CHANNEL_BEACON, 1, 10), SL_ERR_REPLAY);
    free(r);
}

SL_TEST(replay, table_full)
{
    struct sl_replay *r = new_table();
    uint8_t id[SL_KEY_ID_BYTES] = { 0 };
    for (unsigned i = 0; i < SL_REPLAY_ENTRIES; i++) {
        id[0] = (uint8_t)i;
        CU_ASSERT_EQUAL_FATAL(accept_both(r, id, 0, 1, 1), SL_OK);
    }
    id[0] = 0xFF;
    CU_ASSERT_EQUAL(sl_replay_check(r, id, 0, 1, 1), SL_ERR_TABLE_FULL);
    CU_ASSERT_EQUAL(sl_replay_accept(r, id, 0, 1, 1), SL_ERR_TABLE_FULL);
    id[0] = 3;   /* existing pairs keep working */
    CU_ASSERT_EQUAL(accept_both(r, id, 0, 1, 2), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, id, 0, 1, 2), SL_ERR_REPLAY);
    free(r);
}

static char statedir[64];

static void state_path(char *p, size_t cap)
{
    strcpy(statedir, "/tmp/sl_test_replay.XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(statedir));
    snprintf(p, cap, "%s/replay.state", statedir);
}

/* unlink first: rewriting a truncated file makes ext4 flush it on close
 * (auto_da_alloc), which would make the bit-flip loop take seconds. */
static void write_bytes(const char *path, const uint8_t *p, size_t n)
{
    unlink(path);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(p, 1, n, f), n);
    fclose(f);
}

static size_t read_bytes(const char *path, uint8_t *p, size_t cap)
{
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t n = fread(p, 1, cap, f);
    fclose(f);
    return n;
}

SL_TEST(replay, save_load_roundtrip)
{
    char path[128];
    state_path(path, sizeof path);
    struct sl_replay *r = new_table(), *s = new_table();
    CU_ASSERT_EQUAL(sl_replayfile_load(s, path), SL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sl_replayfile_save(r, path), SL_OK);   /* empty table */
    CU_ASSERT_EQUAL(sl_replayfile_load(s, path), SL_OK);
    CU_ASSERT_EQUAL(s->count, 0u);
    for (uint64_t q = 0; q < 3000; q += 3)
        CU_ASSERT_EQUAL_FATAL(sl_replay_accept(r, key_a, 0, 9, q), SL_OK);
    CU_ASSERT_EQUAL(sl_replay_accept(r, key_b, 1, 2, 77), SL_OK);
    CU_ASSERT_EQUAL(sl_replay_accept(r, key_b, SL_REPLAY_CHANNEL_BEACON, 2, 5), SL_OK);
    CU_ASSERT_EQUAL(sl_replayfile_save(r, path), SL_OK);
    struct stat st;
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
    CU_ASSERT_EQUAL((size_t)st.st_size, SL_REPLAY_FILE_HDR_BYTES + 3 * SL_REPLAY_FILE_ENTRY_BYTES + 4);
    CU_ASSERT_EQUAL(sl_replayfile_load(s, path), SL_OK);
    CU_ASSERT_EQUAL(s->count, 3u);
    /* Same decisions after the reload. */
    for (uint64_t q = 0; q < 3000; q++)
        CU_ASSERT_EQUAL_FATAL(sl_replay_check(s, key_a, 0, 9, q), q % 3 == 0 ? SL_ERR_REPLAY : SL_OK);
    CU_ASSERT_EQUAL(sl_replay_check(s, key_a, 0, 8, 5000), SL_ERR_EPOCH);
    CU_ASSERT_EQUAL(sl_replay_check(s, key_b, 1, 2, 77), SL_ERR_REPLAY);
    CU_ASSERT_EQUAL(sl_replay_check(s, key_b, SL_REPLAY_CHANNEL_BEACON, 2, 5), SL_ERR_REPLAY);
    CU_ASSERT_EQUAL(sl_replay_check(s, key_b, SL_REPLAY_CHANNEL_BEACON, 2, 6), SL_OK);
    CU_ASSERT_EQUAL_FATAL(s->count, r->count);
    for (size_t i = 0; i < r->count; i++) {
        CU_ASSERT_EQUAL(memcmp(s->entry[i].key_id, r->entry[i].key_id, SL_KEY_ID_BYTES), 0);
        CU_ASSERT_EQUAL(s->entry[i].channel, r->entry[i].channel);
        CU_ASSERT_EQUAL(s->entry[i].epoch, r->entry[i].epoch);
        CU_ASSERT_EQUAL(s->entry[i].highest, r->entry[i].highest);
        CU_ASSERT_EQUAL(memcmp(s->entry[i].bitmap, r->entry[i].bitmap, sizeof r->entry[i].bitmap), 0);
    }
    unlink(path);
    rmdir(statedir);
    free(r);
    free(s);
}

SL_TEST(replay, corrupt_state_rejected)
{
    char path[128];
    state_path(path, sizeof path);
    struct sl_replay *r = new_table(), *s = new_table();
    CU_ASSERT_EQUAL(sl_replay_accept(r, key_a, 0, 9, 1), SL_OK);
    CU_ASSERT_EQUAL(sl_replay_accept(r, key_b, 0, 9, 1), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_replayfile_save(r, path), SL_OK);
    static uint8_t good[SL_REPLAY_FILE_MAX_BYTES + 16], bad[SL_REPLAY_FILE_MAX_BYTES + 16];
    size_t n = read_bytes(path, good, sizeof good);
    CU_ASSERT_EQUAL_FATAL(n, SL_REPLAY_FILE_HDR_BYTES + 2 * SL_REPLAY_FILE_ENTRY_BYTES + 4);

    /* A marker entry in s shows that failed loads leave it untouched. */
    CU_ASSERT_EQUAL(sl_replay_accept(s, key_b, 1, 1, 1), SL_OK);
    struct { const char *what; size_t off; uint8_t xor_; int fix; size_t len; sl_err want; } c[] = {
        { "magic", 0, 0x01, 1, 0, SL_ERR_MAGIC },
        { "version", 4, 0x03, 1, 0, SL_ERR_VERSION },
        { "reserved", 5, 0x01, 1, 0, SL_ERR_HEADER },
        { "count up", 11, 0x01, 1, 0, SL_ERR_LENGTH },
        { "count huge", 8, 0x01, 1, 0, SL_ERR_TABLE_FULL },
        { "bitmap bit", 12 + 40, 0x10, 0, 0, SL_ERR_CRC },
        { "epoch bit", 12 + 16, 0x01, 0, 0, SL_ERR_CRC },
        { "crc", 0, 0, 0, 1, SL_ERR_CRC },   /* last byte flipped, below */
        { "entry flags", 12 + 10, 0x01, 1, 0, SL_ERR_HEADER },
        { "entry channel", 12 + 8, 0x01, 1, 0, SL_ERR_HEADER },
        { "duplicate", 12 + SL_REPLAY_FILE_ENTRY_BYTES, 0, 2, 0, SL_ERR_DUPLICATE },
        { "truncated", 0, 0, 0, 3, SL_ERR_TRUNCATED },
        { "short", 0, 0, 0, 2, SL_ERR_LENGTH },
        { "long", 0, 0, 0, 4, SL_ERR_LENGTH },
        { "too big", 0, 0, 0, 5, SL_ERR_LENGTH },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        size_t len = n;
        memcpy(bad, good, n);
        bad[c[i].off] ^= c[i].xor_;
        if (c[i].fix == 2)   /* second entry's key id := first's */
            memcpy(bad + c[i].off, good + 12, SL_KEY_ID_BYTES);
        switch (c[i].len) {
        case 1: bad[n - 1] ^= 0x80; break;
        case 2: len = n - 1; break;
        case 3: len = 10; break;
        case 4: len = n + 1; bad[n] = 0; break;
        case 5: len = sizeof bad; memset(bad + n, 0, sizeof bad - n); break;
        default: break;
        }
        if (c[i].fix && len >= 4)
            sl_be32_put(bad + len - 4, sl_crc_compute(bad, len - 4));
        write_bytes(path, bad, len);
        sl_err e = sl_replayfile_load(s, path);
        if (e != c[i].want)
            fprintf(stderr, "case %s: got %s\n", c[i].what, sl_err_name(e));
        CU_ASSERT_EQUAL(e, c[i].want);
        CU_ASSERT_EQUAL(s->count, 1u);
        CU_ASSERT_EQUAL(sl_replay_check(s, key_b, 1, 1, 1), SL_ERR_REPLAY);
    }
    /* Every single bit flip of the whole file is refused. */
    for (size_t bit = 0; bit < n * 8; bit += 7) {
        memcpy(bad, good, n);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        write_bytes(path, bad, n);
        CU_ASSERT_NOT_EQUAL_FATAL(sl_replayfile_load(s, path), SL_OK);
    }
    write_bytes(path, good, n);
    CU_ASSERT_EQUAL(sl_replayfile_load(s, path), SL_OK);
    CU_ASSERT_EQUAL(s->count, 2u);
    unlink(path);
    rmdir(statedir);
    free(r);
    free(s);
}

/* A compromised (or buggy) TX signing an epoch or a sequence near
 * UINT64_MAX would lock the genuine sender out for good. Jumps beyond the
 * bounds are refused with SL_ERR_RANGE by check and accept alike, change
 * nothing, and so are never persisted. */
SL_TEST(replay, jumps_beyond_bounds_refused_and_not_recorded)
{
    char path[128];
    state_path(path, sizeof path);
    struct sl_replay *r = new_table(), *s = new_table();
    /* A key's first epoch: bounded absolutely. */
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, UINT64_MAX, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, SL_REPLAY_EPOCH_MAX, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(accept_both(r, key_a, SL_REPLAY_CHANNEL_BEACON, UINT64_MAX - 1, 1), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(r->count, 0u);
    /* A first sequence: TX numbers every epoch from 0. */
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 7, UINT64_MAX), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 7, SL_REPLAY_SEQ_JUMP_MAX + 1), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(r->count, 0u);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 7, 100), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, SL_REPLAY_CHANNEL_BEACON, 7, 5), SL_OK);
    /* Epoch jumps relative to the held one. */
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 7 + SL_REPLAY_EPOCH_JUMP_MAX + 1, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, UINT64_MAX, 0), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, SL_REPLAY_EPOCH_MAX - 1, 0), SL_ERR_RANGE);
    /* Sequence jumps: blocks and beacons alike; a new epoch's first one. */
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 7, 100 + SL_REPLAY_SEQ_JUMP_MAX + 1), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 7, UINT64_MAX), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(accept_both(r, key_a, SL_REPLAY_CHANNEL_BEACON, 7, UINT64_MAX), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(accept_both(r, key_a, SL_REPLAY_CHANNEL_BEACON, 8, UINT64_MAX), SL_ERR_RANGE);
    /* Nothing moved: position and the genuine sender's next values. */
    uint64_t e, q;
    CU_ASSERT_EQUAL(sl_replay_position(&e, &q, r, key_a, 0), SL_OK);
    CU_ASSERT_EQUAL(e, 7u);
    CU_ASSERT_EQUAL(q, 100u);
    CU_ASSERT_EQUAL(sl_replay_position(&e, &q, r, key_a, SL_REPLAY_CHANNEL_BEACON), SL_OK);
    CU_ASSERT_EQUAL(e, 7u);
    CU_ASSERT_EQUAL(q, 5u);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 7, 101), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, SL_REPLAY_CHANNEL_BEACON, 7, 6), SL_OK);
    /* ...and what is persisted is what was accepted. */
    CU_ASSERT_EQUAL_FATAL(sl_replayfile_save(r, path), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_replayfile_load(s, path), SL_OK);
    CU_ASSERT_EQUAL(sl_replay_position(&e, &q, s, key_a, 0), SL_OK);
    CU_ASSERT_EQUAL(e, 7u);
    CU_ASSERT_EQUAL(q, 101u);
    /* The largest allowed steps are accepted (a TX restart loop unseen by
     * RX, a long outage at bulk rates). */
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 7 + SL_REPLAY_EPOCH_JUMP_MAX, SL_REPLAY_SEQ_JUMP_MAX), SL_OK);
    CU_ASSERT_EQUAL(accept_both(r, key_a, 0, 7 + SL_REPLAY_EPOCH_JUMP_MAX, 2 * SL_REPLAY_SEQ_JUMP_MAX), SL_OK);
    unlink(path);
    rmdir(statedir);
    free(r);
    free(s);
}

/* A state file holding an epoch beyond the bound (written before the bound
 * existed: a bricked key) is refused loudly rather than loaded; the
 * in-memory loader gives the same answers as the file loader. */
SL_TEST(replay, load_mem_and_bricked_epoch_refused)
{
    struct sl_replay *r = new_table(), *s = new_table();
    CU_ASSERT_EQUAL(sl_replay_accept(r, key_a, 0, 9, 1), SL_OK);
    static uint8_t img[SL_REPLAY_FILE_MAX_BYTES];
    char path[128];
    state_path(path, sizeof path);
    CU_ASSERT_EQUAL_FATAL(sl_replayfile_save(r, path), SL_OK);
    size_t n = read_bytes(path, img, sizeof img);
    CU_ASSERT_EQUAL_FATAL(n, SL_REPLAY_FILE_HDR_BYTES + SL_REPLAY_FILE_ENTRY_BYTES + 4);
    CU_ASSERT_EQUAL(sl_replay_load_mem(s, img, n), SL_OK);
    CU_ASSERT_EQUAL(s->count, 1u);
    CU_ASSERT_EQUAL(sl_replay_load_mem(s, img, n - 1), SL_ERR_LENGTH);
    CU_ASSERT_EQUAL(sl_replay_load_mem(s, img, 3), SL_ERR_TRUNCATED);
    /* epoch := 2^48 (entry offset 16), CRC fixed */
    sl_be64_put(img + 12 + 16, SL_REPLAY_EPOCH_MAX);
    sl_be32_put(img + n - 4, sl_crc_compute(img, n - 4));
    CU_ASSERT_EQUAL(sl_replay_load_mem(s, img, n), SL_ERR_RANGE);
    write_bytes(path, img, n);
    CU_ASSERT_EQUAL(sl_replayfile_load(s, path), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(s->count, 1u);   /* untouched by the failed loads */
    CU_ASSERT_EQUAL(s->entry[0].epoch, 9u);
    unlink(path);
    rmdir(statedir);
    free(r);
    free(s);
}

/* The in-memory image (sl_replay_encode) is exactly what sl_replayfile_save
 * writes; a buffer one byte short is refused with nothing claimed. */
SL_TEST(replay, encode_is_the_file_image)
{
    struct sl_replay *r = new_table(), *s = new_table();
    CU_ASSERT_EQUAL(sl_replay_accept(r, key_a, 0, 9, 1), SL_OK);
    CU_ASSERT_EQUAL(sl_replay_accept(r, key_b, SL_REPLAY_CHANNEL_BEACON, 3, 77), SL_OK);
    static uint8_t img[SL_REPLAY_FILE_MAX_BYTES], file[SL_REPLAY_FILE_MAX_BYTES];
    size_t n = 0;
    CU_ASSERT_EQUAL(sl_replay_encoded_bytes(r), SL_REPLAY_FILE_HDR_BYTES + 2 * SL_REPLAY_FILE_ENTRY_BYTES + 4);
    CU_ASSERT_EQUAL_FATAL(sl_replay_encode(img, sizeof img, &n, r), SL_OK);
    CU_ASSERT_EQUAL(n, sl_replay_encoded_bytes(r));
    char path[128];
    state_path(path, sizeof path);
    CU_ASSERT_EQUAL_FATAL(sl_replayfile_save(r, path), SL_OK);
    CU_ASSERT_EQUAL(read_bytes(path, file, sizeof file), n);
    CU_ASSERT_EQUAL(memcmp(img, file, n), 0);
    CU_ASSERT_EQUAL(sl_replay_load_mem(s, img, n), SL_OK);
    CU_ASSERT_EQUAL(s->count, 2u);
    size_t m = 99;
    CU_ASSERT_EQUAL(sl_replay_encode(img, n - 1, &m, r), SL_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(m, 0u);
    unlink(path);
    rmdir(statedir);
    free(r);
    free(s);
}
