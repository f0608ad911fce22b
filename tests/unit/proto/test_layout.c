/* The offset tables of sl_wire.h against what the codecs write: every field
 * of a DATA frame, a BEACON, a BLOCK header and each message body is read
 * back at its SL_*_OFF_* offset from an encoded example with distinct
 * values. A codec and the header (and so docs/protocol*.md, which mirror
 * it) cannot drift apart without this failing. */
#include <string.h>

#include "proto_fixture.h"
#include "sl_buf.h"
#include "sl_crc.h"
#include "sl_fmsg.h"
#include "sl_msg.h"
#include "sl_test.h"

SL_TEST(layout, data_frame)
{
    struct sl_key_secret *k = fx_key();
    struct sl_key_public pub;
    sl_key_public_of(&pub, k);
    uint8_t sym[FX_SYMBOL_SIZE] = { 0 };
    struct sl_data_frame f = {
        .channel = SL_CHANNEL_FILES, .symbol_size = FX_SYMBOL_SIZE, .session = FX_SESSION,
        .epoch = FX_EPOCH, .block_seq = FX_BLOCK_SEQ, .k = 5, .m = 2, .index = 6, .symbol = sym,
    };
    memcpy(f.key_id, pub.id, SL_KEY_ID_BYTES);
    uint8_t dg[SL_FRAME_OVERHEAD + FX_SYMBOL_SIZE];
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(sl_datagram_data_encode(dg, sizeof dg, &len, &f), SL_OK);
    CU_ASSERT_EQUAL(sl_be16_get(dg + SL_FRAME_OFF_MAGIC), SL_WIRE_MAGIC);
    CU_ASSERT_EQUAL(dg[SL_FRAME_OFF_VERSION], SL_WIRE_VERSION);
    CU_ASSERT_EQUAL(dg[SL_FRAME_OFF_TYPE], SL_FRAME_DATA);
    CU_ASSERT_EQUAL(sl_be16_get(dg + SL_FRAME_OFF_CHANNEL), SL_CHANNEL_FILES);
    CU_ASSERT_EQUAL(sl_be16_get(dg + SL_FRAME_OFF_SYMBOL_SIZE), FX_SYMBOL_SIZE);
    CU_ASSERT_EQUAL(sl_be64_get(dg + SL_FRAME_OFF_SESSION), FX_SESSION);
    CU_ASSERT_EQUAL(sl_be64_get(dg + SL_FRAME_OFF_EPOCH), FX_EPOCH);
    CU_ASSERT_EQUAL(sl_be64_get(dg + SL_FRAME_OFF_BLOCK_SEQ), FX_BLOCK_SEQ);
    CU_ASSERT_EQUAL(memcmp(dg + SL_FRAME_OFF_KEY_ID, pub.id, SL_KEY_ID_BYTES), 0);
    CU_ASSERT_EQUAL(dg[SL_FRAME_OFF_K], 5);
    CU_ASSERT_EQUAL(dg[SL_FRAME_OFF_M], 2);
    CU_ASSERT_EQUAL(dg[SL_FRAME_OFF_INDEX], 6);
    CU_ASSERT_EQUAL(dg[SL_FRAME_OFF_FLAGS], 0);
    sl_key_free(k);
}

SL_TEST(layout, beacon)
{
    struct sl_key_secret *k = fx_key();
    struct sl_key_public pub;
    sl_key_public_of(&pub, k);
    struct sl_beacon b;
    memset(&b, 0, sizeof b);
    b.session = 0x1111111111111111ull;
    b.epoch = 0x2222;
    b.beacon_seq = 0x3333;
    b.tx_time_us = 0x4444;
    b.highest_block = 0x5555;
    b.symbol_size = 1424;
    b.k = 32;
    b.m = 8;
    b.interleave = 4;
    b.rate_kbps = 0x66666;
    memset(b.config_fp, 0xC1, SL_FP_BYTES);
    memset(b.schema_fp, 0x5C, SL_FP_BYTES);
    b.poll_errors = 0x7777;
    b.queue_drops = 0x8888;
    b.blocks_sent = 0x9999;
    b.frames_sent = 0xAAAA;
    uint8_t dg[SL_BEACON_BYTES];
    CU_ASSERT_EQUAL_FATAL(sl_datagram_beacon_encode(dg, sizeof dg, &b, sl_key_signer(k)), SL_OK);
    CU_ASSERT_EQUAL(sl_be16_get(dg + SL_FRAME_OFF_MAGIC), SL_WIRE_MAGIC);
    CU_ASSERT_EQUAL(dg[SL_FRAME_OFF_TYPE], SL_FRAME_BEACON);
    CU_ASSERT_EQUAL(sl_be16_get(dg + SL_BEACON_OFF_CHANNEL), 0);
    CU_ASSERT_EQUAL(sl_be16_get(dg + SL_BEACON_OFF_RESERVED1), 0);
    CU_ASSERT_EQUAL(sl_be64_get(dg + SL_BEACON_OFF_SESSION), b.session);
    CU_ASSERT_EQUAL(sl_be64_get(dg + SL_BEACON_OFF_EPOCH), b.epoch);
    CU_ASSERT_EQUAL(memcmp(dg + SL_BEACON_OFF_KEY_ID, pub.id, SL_KEY_ID_BYTES), 0);
    CU_ASSERT_EQUAL(sl_be64_get(dg + SL_BEACON_OFF_SEQ), b.beacon_seq);
    CU_ASSERT_EQUAL(sl_be64_get(dg + SL_BEACON_OFF_TX_TIME), b.tx_time_us);
    CU_ASSERT_EQUAL(sl_be64_get(dg + SL_BEACON_OFF_HIGHEST_BLOCK), b.highest_block);
    CU_ASSERT_EQUAL(sl_be16_get(dg + SL_BEACON_OFF_SYMBOL_SIZE), b.symbol_size);
    CU_ASSERT_EQUAL(dg[SL_BEACON_OFF_K], b.k);
    CU_ASSERT_EQUAL(dg[SL_BEACON_OFF_M], b.m);
    CU_ASSERT_EQUAL(dg[SL_BEACON_OFF_INTERLEAVE], b.interleave);
    CU_ASSERT_EQUAL(dg[SL_BEACON_OFF_FLAGS], 0);
    CU_ASSERT_EQUAL(sl_be16_get(dg + SL_BEACON_OFF_RESERVED2), 0);
    CU_ASSERT_EQUAL(sl_be32_get(dg + SL_BEACON_OFF_RATE_KBPS), b.rate_kbps);
    CU_ASSERT_EQUAL(memcmp(dg + SL_BEACON_OFF_CONFIG_FP, b.config_fp, SL_FP_BYTES), 0);
    CU_ASSERT_EQUAL(memcmp(dg + SL_BEACON_OFF_SCHEMA_FP, b.schema_fp, SL_FP_BYTES), 0);
    CU_ASSERT_EQUAL(sl_be64_get(dg + SL_BEACON_OFF_POLL_ERRORS), b.poll_errors);
    CU_ASSERT_EQUAL(sl_be64_get(dg + SL_BEACON_OFF_QUEUE_DROPS), b.queue_drops);
    CU_ASSERT_EQUAL(sl_be64_get(dg + SL_BEACON_OFF_BLOCKS_SENT), b.blocks_sent);
    CU_ASSERT_EQUAL(sl_be64_get(dg + SL_BEACON_OFF_FRAMES_SENT), b.frames_sent);
    CU_ASSERT_EQUAL(sl_key_verify(&pub, dg + SL_BEACON_OFF_SIGNATURE, dg, SL_BEACON_SIGNED_BYTES), SL_OK);
    CU_ASSERT_EQUAL(sl_be32_get(dg + SL_BEACON_OFF_CRC), sl_crc_compute(dg, SL_BEACON_OFF_CRC));
    sl_key_free(k);
}

SL_TEST(layout, block_header)
{
    struct sl_key_secret *k = fx_key();
    struct sl_block_hdr h;
    fx_block_hdr(&h);
    h.channel = SL_CHANNEL_FILES;
    uint8_t payload[FX_PAYLOAD_LEN];
    fx_payload(payload);
    uint8_t blk[FX_K * FX_SYMBOL_SIZE];
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(sl_block_seal(blk, sizeof blk, &len, &h, payload, sizeof payload, sl_key_signer(k)), SL_OK);
    CU_ASSERT_EQUAL(sl_be16_get(blk + SL_BLOCK_OFF_MAGIC), SL_BLOCK_MAGIC);
    CU_ASSERT_EQUAL(blk[SL_BLOCK_OFF_VERSION], SL_BLOCK_VERSION);
    CU_ASSERT_EQUAL(blk[SL_BLOCK_OFF_FLAGS], 0);
    CU_ASSERT_EQUAL(sl_be16_get(blk + SL_BLOCK_OFF_CHANNEL), SL_CHANNEL_FILES);
    CU_ASSERT_EQUAL(sl_be16_get(blk + SL_BLOCK_OFF_RESERVED), 0);
    CU_ASSERT_EQUAL(sl_be64_get(blk + SL_BLOCK_OFF_SESSION), FX_SESSION);
    CU_ASSERT_EQUAL(sl_be64_get(blk + SL_BLOCK_OFF_EPOCH), FX_EPOCH);
    CU_ASSERT_EQUAL(sl_be64_get(blk + SL_BLOCK_OFF_BLOCK_SEQ), FX_BLOCK_SEQ);
    CU_ASSERT_EQUAL(sl_be64_get(blk + SL_BLOCK_OFF_TX_TIME), FX_TX_TIME_US);
    CU_ASSERT_EQUAL(sl_be32_get(blk + SL_BLOCK_OFF_PAYLOAD_LEN), FX_PAYLOAD_LEN);
    CU_ASSERT_EQUAL(memcmp(blk + SL_BLOCK_HDR_BYTES, payload, sizeof payload), 0);
    sl_key_free(k);
}

SL_TEST(layout, tag_messages)
{
    uint8_t buf[1024];
    struct sl_msg_writer w;
    sl_msg_writer_init(&w, buf, sizeof buf);
    struct sl_value v = { .tag_id = 0x01020304u, .type = SL_TYPE_UINT32, .raw = 0xA0B0C0D0u,
                          .quality = SL_Q_BAD_COMM_ERROR, .source_time_us = 0x1122334455667788ull };
    size_t taken = 0;
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta(&w, &taken, &v, 1), SL_OK);
    const uint8_t *p = buf;
    CU_ASSERT_EQUAL(p[SL_MSG_OFF_TYPE], SL_MSG_DELTA);
    CU_ASSERT_EQUAL(p[SL_MSG_OFF_FLAGS], 0);
    CU_ASSERT_EQUAL(sl_be16_get(p + SL_MSG_OFF_LEN), SL_DELTA_HDR_BYTES + SL_VALUE_BYTES);
    p += SL_MSG_HDR_BYTES;
    CU_ASSERT_EQUAL(sl_be16_get(p + SL_DELTA_OFF_COUNT), 1);
    const uint8_t *e = p + SL_DELTA_HDR_BYTES;
    CU_ASSERT_EQUAL(sl_be32_get(e + SL_VALUE_OFF_TAG), v.tag_id);
    CU_ASSERT_EQUAL(e[SL_VALUE_OFF_TYPE], v.type);
    CU_ASSERT_EQUAL(sl_be64_get(e + SL_VALUE_OFF_RAW), v.raw);
    CU_ASSERT_EQUAL(sl_be32_get(e + SL_VALUE_OFF_QUALITY), v.quality);
    CU_ASSERT_EQUAL(sl_be64_get(e + SL_VALUE_OFF_TIME), v.source_time_us);

    sl_msg_writer_init(&w, buf, sizeof buf);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_keyframe(&w, &taken, 0xBEEF0001u, 2, 3, 0x00010203u, &v, 1), SL_OK);
    p = buf + SL_MSG_HDR_BYTES;
    CU_ASSERT_EQUAL(buf[SL_MSG_OFF_TYPE], SL_MSG_KEYFRAME);
    CU_ASSERT_EQUAL(sl_be32_get(p + SL_CHUNK_OFF_ID), 0xBEEF0001u);
    CU_ASSERT_EQUAL(sl_be16_get(p + SL_CHUNK_OFF_CHUNK), 2);
    CU_ASSERT_EQUAL(sl_be16_get(p + SL_CHUNK_OFF_CHUNKS), 3);
    CU_ASSERT_EQUAL(sl_be32_get(p + SL_CHUNK_OFF_TOTAL), 0x00010203u);
    CU_ASSERT_EQUAL(sl_be16_get(p + SL_CHUNK_OFF_COUNT), 1);
    CU_ASSERT_EQUAL(sl_be32_get(p + SL_KEYFRAME_HDR_BYTES + SL_VALUE_OFF_TAG), v.tag_id);

    struct sl_schema_tag t;
    memset(&t, 0, sizeof t);
    t.tag_id = 0x0A0B0C0Du;
    t.type = SL_TYPE_FLOAT32;
    t.reg = SL_REG_HOLDING;
    t.word_order = SL_WORD_CDAB;
    t.mirror_unit = 9;
    t.address = 0x1234;
    t.scale = 0.5;
    t.offset = -2.0;
    strcpy(t.name, "flow");
    strcpy(t.path, "a/b/c/d");
    strcpy(t.units, "m3/h");
    sl_msg_writer_init(&w, buf, sizeof buf);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_schema(&w, &taken, 0x5C5C5C5Cu, 0, 1, 1, &t, 1), SL_OK);
    CU_ASSERT_EQUAL(buf[SL_MSG_OFF_TYPE], SL_MSG_SCHEMA);
    CU_ASSERT_EQUAL(sl_be16_get(buf + SL_MSG_OFF_LEN), SL_SCHEMA_HDR_BYTES + sl_msg_tag_bytes(&t));
    CU_ASSERT_EQUAL(sl_msg_tag_bytes(&t), SL_SCHEMA_TAG_FIXED + 4 + 7 + 4);
    p = buf + SL_MSG_HDR_BYTES + SL_SCHEMA_HDR_BYTES;
    uint64_t bits;
    CU_ASSERT_EQUAL(sl_be32_get(p + SL_TAG_OFF_ID), t.tag_id);
    CU_ASSERT_EQUAL(p[SL_TAG_OFF_TYPE], t.type);
    CU_ASSERT_EQUAL(p[SL_TAG_OFF_REG], t.reg);
    CU_ASSERT_EQUAL(p[SL_TAG_OFF_WORD_ORDER], t.word_order);
    CU_ASSERT_EQUAL(p[SL_TAG_OFF_MIRROR_UNIT], t.mirror_unit);
    CU_ASSERT_EQUAL(sl_be16_get(p + SL_TAG_OFF_ADDRESS), t.address);
    memcpy(&bits, &t.scale, sizeof bits);
    CU_ASSERT_EQUAL(sl_be64_get(p + SL_TAG_OFF_SCALE), bits);
    memcpy(&bits, &t.offset, sizeof bits);
    CU_ASSERT_EQUAL(sl_be64_get(p + SL_TAG_OFF_OFFSET), bits);
    CU_ASSERT_EQUAL(p[SL_SCHEMA_TAG_HEAD], 4);   /* name_len, then the name */
    CU_ASSERT_EQUAL(memcmp(p + SL_SCHEMA_TAG_HEAD + 1, "flow", 4), 0);

    sl_msg_writer_init(&w, buf, sizeof buf);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_event(&w, SL_EVENT_DEVICE_UP, 7, 0x0102030405060708ull, "up", 2), SL_OK);
    p = buf + SL_MSG_HDR_BYTES;
    CU_ASSERT_EQUAL(buf[SL_MSG_OFF_TYPE], SL_MSG_EVENT);
    CU_ASSERT_EQUAL(p[SL_EVENT_OFF_KIND], SL_EVENT_DEVICE_UP);
    CU_ASSERT_EQUAL(p[SL_EVENT_OFF_UNIT], 7);
    CU_ASSERT_EQUAL(sl_be64_get(p + SL_EVENT_OFF_TIME), 0x0102030405060708ull);
    CU_ASSERT_EQUAL(sl_be16_get(p + SL_EVENT_OFF_TEXT_LEN), 2);
    CU_ASSERT_EQUAL(memcmp(p + SL_EVENT_HDR_BYTES, "up", 2), 0);
}

SL_TEST(layout, file_messages)
{
    uint8_t buf[512], sha[SL_FILE_SHA256_BYTES];
    for (unsigned i = 0; i < sizeof sha; i++)
        sha[i] = (uint8_t)(0xA0 + i);
    size_t off = 0;
    CU_ASSERT_EQUAL_FATAL(sl_fmsg_put_begin(buf, sizeof buf, &off, 0x11223344u, 0x55667788990011ull, "a.bin"),
                          SL_OK);
    const uint8_t *p = buf + SL_MSG_HDR_BYTES;
    CU_ASSERT_EQUAL(buf[SL_MSG_OFF_TYPE], SL_MSG_FILE_BEGIN);
    CU_ASSERT_EQUAL(sl_be16_get(buf + SL_MSG_OFF_LEN), SL_FILE_BEGIN_FIXED + 5);
    CU_ASSERT_EQUAL(sl_be32_get(p + SL_FILE_OFF_ID), 0x11223344u);
    CU_ASSERT_EQUAL(sl_be64_get(p + SL_FILE_OFF_SIZE), 0x55667788990011ull);
    CU_ASSERT_EQUAL(p[SL_FILE_BEGIN_OFF_NAME_LEN], 5);
    CU_ASSERT_EQUAL(memcmp(p + SL_FILE_BEGIN_FIXED, "a.bin", 5), 0);

    off = 0;
    CU_ASSERT_EQUAL_FATAL(sl_fmsg_put_end(buf, sizeof buf, &off, 0x11223344u, 99, sha, "a.bin"), SL_OK);
    CU_ASSERT_EQUAL(buf[SL_MSG_OFF_TYPE], SL_MSG_FILE_END);
    CU_ASSERT_EQUAL(sl_be16_get(buf + SL_MSG_OFF_LEN), SL_FILE_END_FIXED + 5);
    CU_ASSERT_EQUAL(sl_be64_get(p + SL_FILE_OFF_SIZE), 99);
    CU_ASSERT_EQUAL(memcmp(p + SL_FILE_END_OFF_SHA256, sha, sizeof sha), 0);
    CU_ASSERT_EQUAL(p[SL_FILE_END_OFF_NAME_LEN], 5);
    CU_ASSERT_EQUAL(memcmp(p + SL_FILE_END_FIXED, "a.bin", 5), 0);

    /* FILE_END_TREE: the FILE_END body under its own type; decodes back
     * with the type kept, and a body a byte short or long is refused. */
    off = 0;
    CU_ASSERT_EQUAL_FATAL(sl_fmsg_put_end_tree(buf, sizeof buf, &off, 0x11223344u, 99, sha, "a.bin"), SL_OK);
    CU_ASSERT_EQUAL(off, SL_MSG_HDR_BYTES + SL_FILE_END_FIXED + 5);
    CU_ASSERT_EQUAL(buf[SL_MSG_OFF_TYPE], SL_MSG_FILE_END_TREE);
    CU_ASSERT_EQUAL(sl_be16_get(buf + SL_MSG_OFF_LEN), SL_FILE_END_FIXED + 5);
    CU_ASSERT_EQUAL(sl_be32_get(p + SL_FILE_OFF_ID), 0x11223344u);
    CU_ASSERT_EQUAL(sl_be64_get(p + SL_FILE_OFF_SIZE), 99);
    CU_ASSERT_EQUAL(memcmp(p + SL_FILE_END_OFF_SHA256, sha, sizeof sha), 0);
    CU_ASSERT_EQUAL(p[SL_FILE_END_OFF_NAME_LEN], 5);
    CU_ASSERT_EQUAL(memcmp(p + SL_FILE_END_FIXED, "a.bin", 5), 0);
    struct sl_fmsg fm;
    CU_ASSERT_EQUAL_FATAL(sl_fmsg_decode(&fm, SL_MSG_FILE_END_TREE, p, SL_FILE_END_FIXED + 5), SL_OK);
    CU_ASSERT_EQUAL(fm.type, SL_MSG_FILE_END_TREE);
    CU_ASSERT_EQUAL(fm.file_id, 0x11223344u);
    CU_ASSERT_EQUAL(fm.size, 99u);
    CU_ASSERT_EQUAL(memcmp(fm.sha256, sha, sizeof sha), 0);
    CU_ASSERT_STRING_EQUAL(fm.name, "a.bin");
    CU_ASSERT_EQUAL(sl_fmsg_decode(&fm, SL_MSG_FILE_END_TREE, p, SL_FILE_END_FIXED + 4), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(fm.type, 0);
    CU_ASSERT_EQUAL(sl_fmsg_decode(&fm, SL_MSG_FILE_END_TREE, p, SL_FILE_END_FIXED + 6), SL_ERR_TRAILING);
    CU_ASSERT_EQUAL(sl_fmsg_decode(&fm, SL_MSG_FILE_END_TREE + 1, p, SL_FILE_END_FIXED + 5), SL_ERR_TYPE);
    size_t small = 0;
    CU_ASSERT_EQUAL(sl_fmsg_put_end_tree(buf, SL_MSG_HDR_BYTES + SL_FILE_END_FIXED + 4, &small, 1, 99, sha, "a.bin"),
                    SL_ERR_CAPACITY);
    CU_ASSERT_EQUAL(small, 0u);
    CU_ASSERT_EQUAL(sl_fmsg_put_end_tree(buf, sizeof buf, &small, 1, 99, sha, ""), SL_ERR_RANGE);

    off = 0;
    uint8_t *data = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_fmsg_put_data(buf, sizeof buf, &off, &data, 0x11223344u, 0x0807060504030201ull, 3),
                          SL_OK);
    CU_ASSERT_EQUAL(buf[SL_MSG_OFF_TYPE], SL_MSG_FILE_DATA);
    CU_ASSERT_EQUAL(sl_be32_get(p + SL_FILE_OFF_ID), 0x11223344u);
    CU_ASSERT_EQUAL(sl_be64_get(p + SL_FILE_OFF_OFFSET), 0x0807060504030201ull);
    CU_ASSERT_PTR_EQUAL(data, p + SL_FILE_DATA_HDR);
}
