#include "sl_replay.h"

#include <stdlib.h>
#include <string.h>

#include "sl_buf.h"
#include "sl_crc.h"

#define WORDS     (SL_REPLAY_BITMAP_BITS / 64u)
#define WORD_MASK (WORDS - 1u)

_Static_assert((WORDS & WORD_MASK) == 0, "bitmap words must be a power of two");
_Static_assert(SL_REPLAY_FILE_ENTRY_BYTES == 1056, "replay file entry layout");

void sl_replay_init(struct sl_replay *r)
{
    memset(r, 0, sizeof *r);
}

static const struct sl_replay_entry *find(const struct sl_replay *r, const uint8_t key_id[SL_KEY_ID_BYTES],
                                          uint16_t channel)
{
    for (size_t i = 0; i < r->count && i < SL_REPLAY_ENTRIES; i++) {
        const struct sl_replay_entry *e = &r->entry[i];
        if (e->channel == channel && memcmp(e->key_id, key_id, SL_KEY_ID_BYTES) == 0)
            return e;
    }
    return NULL;
}

static bool bit_test(const struct sl_replay_entry *e, uint64_t seq)
{
    return (e->bitmap[(seq >> 6) & WORD_MASK] >> (seq & 63u)) & 1u;
}

static void bit_set(struct sl_replay_entry *e, uint64_t seq)
{
    e->bitmap[(seq >> 6) & WORD_MASK] |= (uint64_t)1 << (seq & 63u);
}

/* The decision for an existing entry (NULL: a new pair), jump bounds first
 * (see sl_replay.h for the numbers and why). */
static sl_err decide(const struct sl_replay_entry *e, uint64_t epoch, uint64_t seq)
{
    if (epoch >= SL_REPLAY_EPOCH_MAX)
        return SL_ERR_RANGE;
    if (!e || epoch > e->epoch) {
        if (e && epoch - e->epoch > SL_REPLAY_EPOCH_JUMP_MAX)
            return SL_ERR_RANGE;
        return seq > SL_REPLAY_SEQ_JUMP_MAX ? SL_ERR_RANGE : SL_OK;
    }
    if (epoch < e->epoch)
        return SL_ERR_EPOCH;
    if (seq > e->highest)
        return seq - e->highest > SL_REPLAY_SEQ_JUMP_MAX ? SL_ERR_RANGE : SL_OK;
    if (e->highest - seq >= SL_REPLAY_WINDOW || bit_test(e, seq))
        return SL_ERR_REPLAY;
    return SL_OK;
}

sl_err sl_replay_check(const struct sl_replay *r, const uint8_t key_id[SL_KEY_ID_BYTES], uint16_t channel,
                       uint64_t epoch, uint64_t seq)
{
    const struct sl_replay_entry *e = find(r, key_id, channel);
    if (!e && r->count >= SL_REPLAY_ENTRIES)
        return SL_ERR_TABLE_FULL;
    return decide(e, epoch, seq);
}

/* Starts a fresh window at (epoch, seq). */
static void restart(struct sl_replay_entry *e, uint64_t epoch, uint64_t seq)
{
    memset(e->bitmap, 0, sizeof e->bitmap);
    e->epoch = epoch;
    e->highest = seq;
}

sl_err sl_replay_accept(struct sl_replay *r, const uint8_t key_id[SL_KEY_ID_BYTES], uint16_t channel,
                        uint64_t epoch, uint64_t seq)
{
    struct sl_replay_entry *e = (struct sl_replay_entry *)find(r, key_id, channel);
    sl_err err = decide(e, epoch, seq);
    if (err != SL_OK)
        return err;
    if (!e) {
        if (r->count >= SL_REPLAY_ENTRIES)
            return SL_ERR_TABLE_FULL;
        e = &r->entry[r->count++];
        memcpy(e->key_id, key_id, SL_KEY_ID_BYTES);
        e->channel = channel;
        restart(e, epoch, seq);
    } else if (epoch > e->epoch) {
        restart(e, epoch, seq);
    } else if (seq > e->highest) {
        /* Recycle the words between the old and the new highest: they hold
         * sequences that are now below the window. */
        uint64_t cur = e->highest >> 6, next = seq >> 6;
        if (next - cur >= WORDS) {
            memset(e->bitmap, 0, sizeof e->bitmap);
        } else {
            for (uint64_t w = cur + 1; w <= next; w++)
                e->bitmap[w & WORD_MASK] = 0;
        }
        e->highest = seq;
    }
    bit_set(e, seq);
    return SL_OK;
}

sl_err sl_replay_position(uint64_t *epoch, uint64_t *seq, const struct sl_replay *r,
                          const uint8_t key_id[SL_KEY_ID_BYTES], uint16_t channel)
{
    const struct sl_replay_entry *e = find(r, key_id, channel);
    *epoch = e ? e->epoch : 0;
    *seq = e ? e->highest : 0;
    return e ? SL_OK : SL_ERR_NOT_FOUND;
}

/* ---- state file -------------------------------------------------------
 *   0  4 magic "SLRP"     4 1 version     5 3 reserved (0)   8 4 count n
 *  12  n * 1056 entries:
 *        0 8 key_id   8 2 channel   10 2 flags (0)   12 4 reserved (0)
 *       16 8 epoch   24 8 highest   32 1024 bitmap (128 words, BE u64)
 *  12 + n*1056  4 crc32c over everything before it
 */

size_t sl_replay_encoded_bytes(const struct sl_replay *r)
{
    size_t n = r->count < SL_REPLAY_ENTRIES ? r->count : SL_REPLAY_ENTRIES;
    return SL_REPLAY_FILE_HDR_BYTES + n * SL_REPLAY_FILE_ENTRY_BYTES + SL_CRC_BYTES;
}

sl_err sl_replay_encode(uint8_t *out, size_t cap, size_t *len, const struct sl_replay *r)
{
    size_t n = r->count < SL_REPLAY_ENTRIES ? r->count : SL_REPLAY_ENTRIES;
    *len = 0;
    if (cap < sl_replay_encoded_bytes(r))
        return SL_ERR_OVERFLOW;
    struct sl_wbuf w = sl_wbuf_make(out, cap);
    sl_err e = sl_wbuf_put_u32be(&w, SL_REPLAY_FILE_MAGIC);
    if (e == SL_OK) e = sl_wbuf_put_u8(&w, SL_REPLAY_FILE_VERSION);
    if (e == SL_OK) e = sl_wbuf_put_zeros(&w, 3);
    if (e == SL_OK) e = sl_wbuf_put_u32be(&w, (uint32_t)n);
    for (size_t i = 0; i < n && e == SL_OK; i++) {
        const struct sl_replay_entry *en = &r->entry[i];
        e = sl_wbuf_put_bytes(&w, en->key_id, SL_KEY_ID_BYTES);
        if (e == SL_OK) e = sl_wbuf_put_u16be(&w, en->channel);
        if (e == SL_OK) e = sl_wbuf_put_zeros(&w, 2 + 4);
        if (e == SL_OK) e = sl_wbuf_put_u64be(&w, en->epoch);
        if (e == SL_OK) e = sl_wbuf_put_u64be(&w, en->highest);
        for (size_t j = 0; j < WORDS && e == SL_OK; j++)
            e = sl_wbuf_put_u64be(&w, en->bitmap[j]);
    }
    if (e == SL_OK) e = sl_wbuf_put_u32be(&w, sl_crc_compute(out, w.off));
    if (e == SL_OK)
        *len = w.off;
    return e;
}

/* Parses a whole state file image of len bytes into *out. */
static sl_err parse_state(struct sl_replay *out, const uint8_t *p, size_t len)
{
    struct sl_buf b = sl_buf_make(p, len);
    uint32_t magic, count, reserved32, crc;
    uint8_t version;
    uint8_t reserved[3];
    if (len < SL_REPLAY_FILE_HDR_BYTES + SL_CRC_BYTES)
        return SL_ERR_TRUNCATED;
    sl_err e = sl_buf_get_u32be(&b, &magic);
    if (e == SL_OK && magic != SL_REPLAY_FILE_MAGIC)
        return SL_ERR_MAGIC;
    if (e == SL_OK) e = sl_buf_get_u8(&b, &version);
    if (e == SL_OK && version != SL_REPLAY_FILE_VERSION)
        return SL_ERR_VERSION;
    if (e == SL_OK) e = sl_buf_get_bytes(&b, reserved, sizeof reserved);
    if (e == SL_OK) e = sl_buf_get_u32be(&b, &count);
    if (e != SL_OK)
        return e;
    if (count > SL_REPLAY_ENTRIES)
        return SL_ERR_TABLE_FULL;
    if (len != SL_REPLAY_FILE_HDR_BYTES + (size_t)count * SL_REPLAY_FILE_ENTRY_BYTES + SL_CRC_BYTES)
        return SL_ERR_LENGTH;
    if (sl_be32_get(p + len - SL_CRC_BYTES) != sl_crc_compute(p, len - SL_CRC_BYTES))
        return SL_ERR_CRC;
    if (reserved[0] | reserved[1] | reserved[2])
        return SL_ERR_HEADER;
    sl_replay_init(out);
    for (size_t i = 0; i < count; i++) {
        struct sl_replay_entry *en = &out->entry[i];
        uint16_t flags;
        e = sl_buf_get_bytes(&b, en->key_id, SL_KEY_ID_BYTES);
        if (e == SL_OK) e = sl_buf_get_u16be(&b, &en->channel);
        if (e == SL_OK) e = sl_buf_get_u16be(&b, &flags);
        if (e == SL_OK) e = sl_buf_get_u32be(&b, &reserved32);
        if (e == SL_OK) e = sl_buf_get_u64be(&b, &en->epoch);
        if (e == SL_OK) e = sl_buf_get_u64be(&b, &en->highest);
        for (size_t j = 0; j < WORDS && e == SL_OK; j++)
            e = sl_buf_get_u64be(&b, &en->bitmap[j]);
        if (e != SL_OK)
            return e;
        if (flags != 0 || reserved32 != 0 ||
            (en->channel >= SL_CHANNEL_COUNT && en->channel != SL_REPLAY_CHANNEL_BEACON))
            return SL_ERR_HEADER;
        if (en->epoch >= SL_REPLAY_EPOCH_MAX)
            return SL_ERR_RANGE;
        if (find(out, en->key_id, en->channel))
            return SL_ERR_DUPLICATE;
        out->count = i + 1;
    }
    e = sl_buf_get_u32be(&b, &crc);
    if (e == SL_OK) e = sl_buf_end(&b);
    return e;
}

sl_err sl_replay_load_mem(struct sl_replay *r, const uint8_t *p, size_t len)
{
    struct sl_replay *tmp = malloc(sizeof *tmp);
    if (!tmp)
        return SL_ERR_NOMEM;
    sl_err e;
    if (len > SL_REPLAY_FILE_MAX_BYTES) {
        /* Too big for any valid table: still report magic, version or
         * count problems from the header if there are any. */
        e = parse_state(tmp, p, SL_REPLAY_FILE_MAX_BYTES);
        if (e != SL_ERR_MAGIC && e != SL_ERR_VERSION && e != SL_ERR_TABLE_FULL)
            e = SL_ERR_LENGTH;
    } else {
        e = parse_state(tmp, p, len);
    }
    if (e == SL_OK)
        *r = *tmp;
    free(tmp);
    return e;
}
