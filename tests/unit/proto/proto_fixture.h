/* Fixed inputs for the protocol known-answer vectors (docs/protocol.md,
 * tests/unit/proto/data/) and the proto fuzz targets' seed corpora. Change
 * nothing here without regenerating both (SL_REGEN=1 test_proto kat). */
#ifndef PROTO_FIXTURE_H
#define PROTO_FIXTURE_H

#include <stdint.h>
#include <string.h>

#include "sl_block.h"
#include "sl_datagram.h"
#include "sl_key.h"
#include "sl_wire.h"

#define FX_SESSION      0x0123456789ABCDEFull
#define FX_EPOCH        7u
#define FX_BLOCK_SEQ    42u
#define FX_TX_TIME_US   1700000000000000ull      /* 2023-11-14T22:13:20Z */
#define FX_SYMBOL_SIZE  64u
#define FX_PAYLOAD_LEN  31u                      /* one DELTA with one value */
#define FX_BLOCK_LEN    (SL_BLOCK_OVERHEAD + FX_PAYLOAD_LEN)   /* 139 */
#define FX_K            3u                       /* ceil(139 / 64) */
#define FX_M            1u

/* The test key: crypto_sign_seed_keypair of the bytes 00 01 02 ... 1f. */
static inline void fx_seed(uint8_t seed[SL_KEY_SEED_BYTES])
{
    for (unsigned i = 0; i < SL_KEY_SEED_BYTES; i++)
        seed[i] = (uint8_t)i;
}

static inline struct sl_key_secret *fx_key(void)
{
    uint8_t seed[SL_KEY_SEED_BYTES];
    struct sl_key_secret *k = NULL;
    fx_seed(seed);
    if (sl_key_from_seed(&k, seed) != SL_OK)
        return NULL;
    return k;
}

static inline void fx_block_hdr(struct sl_block_hdr *h)
{
    memset(h, 0, sizeof *h);
    h->channel = SL_CHANNEL_TAGS;
    h->session = FX_SESSION;
    h->epoch = FX_EPOCH;
    h->block_seq = FX_BLOCK_SEQ;
    h->tx_time_us = FX_TX_TIME_US;
}

/* DELTA message, hand-built from sl_wire.h: "tag 17 = 42.5 (float32),
 * Good, at FX_TX_TIME_US - 10 ms". */
static inline void fx_payload(uint8_t p[FX_PAYLOAD_LEN])
{
    static const uint8_t msg[FX_PAYLOAD_LEN] = {
        SL_MSG_DELTA, 0x00, 0x00, 0x1B,                 /* type, flags, body_len 27 */
        0x00, 0x01,                                     /* count 1 */
        0x00, 0x00, 0x00, 0x11,                         /* tag_id 17 */
        SL_TYPE_FLOAT32,                                /* type */
        0x00, 0x00, 0x00, 0x00, 0x42, 0x2A, 0x00, 0x00, /* raw: 42.5f */
        0x00, 0x00, 0x00, 0x00,                         /* quality Good */
        0x00, 0x06, 0x0A, 0x24, 0x18, 0x1E, 0x18, 0xF0, /* source time 1699999999990000 */
    };
    memcpy(p, msg, sizeof msg);
}

static inline void fx_block_expect(struct sl_block_expect *x, const struct sl_key_secret *key, uint8_t k)
{
    struct sl_key_public pub;
    memset(x, 0, sizeof *x);
    sl_key_public_of(&pub, key);
    x->channel = SL_CHANNEL_TAGS;
    x->symbol_size = FX_SYMBOL_SIZE;
    x->session = FX_SESSION;
    x->epoch = FX_EPOCH;
    x->block_seq = FX_BLOCK_SEQ;
    memcpy(x->key_id, pub.id, SL_KEY_ID_BYTES);
    x->k = k;
}

static inline void fx_beacon(struct sl_beacon *b)
{
    memset(b, 0, sizeof *b);
    b->session = FX_SESSION;
    b->epoch = FX_EPOCH;
    b->beacon_seq = 5;
    b->tx_time_us = FX_TX_TIME_US + 100000u;
    b->highest_block = FX_BLOCK_SEQ + 1u;
    b->symbol_size = 1424;
    b->k = 64;
    b->m = 8;
    b->interleave = 4;
    b->rate_kbps = 100000;
    for (unsigned i = 0; i < SL_FP_BYTES; i++) {
        b->config_fp[i] = (uint8_t)(0x10u + i);
        b->schema_fp[i] = (uint8_t)(0x20u + i);
    }
    b->poll_errors = 1;
    b->queue_drops = 2;
    b->blocks_sent = 43;
    b->frames_sent = 3096;
}

#endif
