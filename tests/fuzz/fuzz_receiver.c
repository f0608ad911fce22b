/* The whole RX wire path, sl_receiver_input, with one trusted key (the
 * protocol test key, seed 00..1f): datagram dispatch, DATA frame parse, the
 * key and beacon checks, the FEC decoder's two parts, the block checks,
 * the verification budgets and the replay window. Genuine traffic can be
 * mixed in, so the fuzzer reaches the paths behind a valid signature.
 *
 * Input: records until the input runs out:
 *   op u8     bits 0-1: 0 raw datagram, 1 genuine beacon, 2 genuine block,
 *             3 forged block (signed by another key, trusted key id)
 *             bits 2-7: time step in ms before the record
 *   raw:      len u16be, then len bytes (fewer if the input runs out)
 *   beacon:   epoch u8, seq u8
 *   block:    epoch u8, seq u8, payload length u8 (1 + 3x bytes: up to k * S - 108), drop u16be
 *             (bit i: frame i not delivered), session bit in epoch bit 7
 * Properties: no crash, over-read or leak; the decoder never holds more
 * partial blocks than its two parts; failed verifications stay within
 * what the budgets allow for the time that passed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/proto/proto_fixture.h"
#include "sl_block.h"
#include "sl_datagram.h"
#include "sl_fec.h"
#include "sl_receiver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define K 8u
#define M 2u
#define S 128u
#define RATE 20u
#define ENTRIES 4u
#define UNANNOUNCED 2u

static struct sl_key_secret *key, *evil;
static struct sl_key_set trusted;
static uint8_t kid[SL_KEY_ID_BYTES];
static struct sl_fec_encoder *enc;
static struct sl_replay *replay;

__attribute__((destructor)) static void free_all(void)
{
    sl_key_free(key);
    sl_key_free(evil);
    sl_fec_encoder_destroy(enc);
    free(replay);
    key = evil = NULL;
    enc = NULL;
    replay = NULL;
}

static void init_once(void)
{
    if (key)
        return;
    key = fx_key();
    uint8_t seed[SL_KEY_SEED_BYTES];
    memset(seed, 0x66, sizeof seed);
    replay = malloc(sizeof *replay);
    if (!key || sl_key_from_seed(&evil, seed) != SL_OK || !replay ||
        sl_fec_encoder_create(&enc, K, M, S) != SL_OK)
        __builtin_trap();
    struct sl_key_public pub;
    sl_key_public_of(&pub, key);
    memcpy(kid, pub.id, sizeof kid);
    sl_key_set_init(&trusted);
    if (sl_key_set_add(&trusted, &pub) != SL_OK)
        __builtin_trap();
}

static void beacon(struct sl_receiver *r, uint64_t epoch, uint64_t seq, uint64_t now)
{
    struct sl_beacon b = { .session = 0x5e55, .epoch = epoch, .beacon_seq = seq, .tx_time_us = now,
                           .symbol_size = S, .k = K, .m = M, .interleave = 1 };
    uint8_t dg[SL_BEACON_BYTES];
    if (sl_datagram_beacon_encode(dg, sizeof dg, &b, sl_key_signer(key)) != SL_OK)
        __builtin_trap();
    sl_receiver_input(r, dg, sizeof dg, now);
}

static void block(struct sl_receiver *r, const struct sl_key_secret *signer, uint64_t session, uint64_t epoch,
                  uint64_t seq, size_t plen, uint16_t drop, uint64_t now)
{
    static uint8_t blk[(K + M) * S];
    static uint8_t payload[K * S];
    static uint8_t dg[SL_FRAME_OVERHEAD + S];
    memset(payload, (int)seq, plen);
    struct sl_block_hdr h = { .channel = SL_CHANNEL_TAGS, .session = session, .epoch = epoch,
                              .block_seq = seq, .tx_time_us = now };
    size_t blen = 0;
    if (sl_block_seal(blk, sizeof blk, &blen, &h, payload, plen, sl_key_signer(signer)) != SL_OK)
        __builtin_trap();
    struct sl_fec_block b = { .sym = blk, .cap = sizeof blk };
    if (sl_fec_encode(enc, &b, blk, blen) != SL_OK)
        __builtin_trap();
    for (unsigned i = 0; i < (unsigned)b.k + b.m; i++) {
        if (i < 16 && ((drop >> i) & 1u))
            continue;
        struct sl_data_frame d = { .channel = SL_CHANNEL_TAGS, .symbol_size = S, .session = session,
                                   .epoch = epoch, .block_seq = seq, .k = b.k, .m = b.m,
                                   .index = (uint8_t)i, .symbol = blk + (size_t)i * S };
        memcpy(d.key_id, kid, sizeof d.key_id);
        size_t n = 0;
        if (sl_datagram_data_encode(dg, sizeof dg, &n, &d) != SL_OK)
            __builtin_trap();
        sl_receiver_input(r, dg, n, now);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    sl_replay_init(replay);
    struct sl_receiver_config rc = {
        .trusted = &trusted, .replay = replay,
        .fec = { .k_max = K, .m_max = M, .symbol_max = 256, .entries = ENTRIES,
                 .entries_unannounced = UNANNOUNCED, .done_history = 16, .cache_entries = 2,
                 .max_age_us = 50000 },
        .batch = 1, .datagram_max = SL_FRAME_MAX_BYTES,
        .fail_per_s = RATE, .fail_unannounced_per_s = RATE, .fail_beacon_per_s = RATE,
    };
    struct sl_receiver *r = NULL;
    if (sl_receiver_create(&r, &rc) != SL_OK)
        __builtin_trap();
    const uint64_t t0 = 1700000000000000ull;
    uint64_t now = t0;
    size_t off = 0;
    while (off < size) {
        uint8_t op = data[off++];
        now += (uint64_t)(op >> 2) * 1000u;
        const uint8_t *p = data + off;
        size_t left = size - off;
        switch (op & 3u) {
        case 0: {
            if (left < 2)
                goto out;
            size_t len = (size_t)p[0] << 8 | p[1];
            off += 2;
            if (len > size - off)
                len = size - off;
            sl_receiver_input(r, data + off, len, now);
            off += len;
            break;
        }
        case 1:
            if (left < 2)
                goto out;
            beacon(r, p[0], p[1], now);
            off += 2;
            break;
        default:
            if (left < 5)
                goto out;
            block(r, (op & 3u) == 2 ? key : evil, 0x5e55u + (p[0] >> 7), p[0] & 0x7fu, p[1],
                  1u + (size_t)p[2] * 3u, (uint16_t)(p[3] << 8 | p[4]), now);
            off += 5;
            break;
        }
        sl_receiver_tick(r, now);
        struct sl_receiver_stats st;
        sl_receiver_stats(r, &st);
        /* three buckets (one key, unannounced, beacons), each a second deep */
        uint64_t secs = (now - t0) / 1000000u + 1u;
        if (st.verify_failures > 3u * RATE * (secs + 1u))
            __builtin_trap();
        if (st.verifies < st.verify_failures || st.blocks > st.verifies)
            __builtin_trap();
    }
out:;
    struct sl_receiver_stats st;
    sl_receiver_stats(r, &st);
    (void)st;
    sl_receiver_destroy(r);
    return 0;
}
