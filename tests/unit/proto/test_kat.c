/* Known-answer vectors: a DATA frame, a BEACON and a sealed BLOCK built from
 * the fixed test key (proto_fixture.h) must match the .hex files in
 * tests/unit/proto/data/ byte for byte, and docs/protocol.md must show the
 * same hex dumps.
 *
 * Regenerating (after a deliberate wire change only):
 *     SL_REGEN=1 build/tests/unit/proto/test_proto kat
 * rewrites the .hex files and the seed corpora of the proto fuzz targets
 * (tests/fuzz/corpus/{frame,beacon,block}/) and prints the dumps to paste
 * into docs/protocol.md. Ed25519 signing is deterministic, so the vectors
 * are stable. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto_fixture.h"
#include "sl_block.h"
#include "sl_buf.h"
#include "sl_crc.h"
#include "sl_datagram.h"
#include "sl_test.h"

#define DUMP_MAX 4096

/* "0000: xx xx ... xx\n", 16 bytes per line, lower case. */
static void hexdump(char *out, size_t cap, const uint8_t *p, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && o < cap; i++) {
        int w;
        if (i % 16 == 0)
            w = snprintf(out + o, cap - o, "%04zx:", i);
        else
            w = 0;
        if (w < 0 || (size_t)w >= cap - o)
            return;
        o += (size_t)w;
        w = snprintf(out + o, cap - o, " %02x%s", p[i], (i % 16 == 15 || i + 1 == n) ? "\n" : "");
        if (w < 0 || (size_t)w >= cap - o)
            return;
        o += (size_t)w;
    }
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20;
    char *buf = malloc(cap + 1);
    size_t n = buf ? fread(buf, 1, cap, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(p, 1, n, f), n);
    CU_ASSERT_EQUAL(fclose(f), 0);
}

struct vectors {
    uint8_t block[FX_K * FX_SYMBOL_SIZE];   /* sealed + padded */
    size_t block_len;                        /* sealed, before padding */
    uint8_t frame[SL_FRAME_OVERHEAD + FX_SYMBOL_SIZE];
    uint8_t beacon[SL_BEACON_BYTES];
};

static void build(struct vectors *v, const struct sl_key_secret *k)
{
    struct sl_block_hdr h;
    uint8_t payload[FX_PAYLOAD_LEN];
    fx_block_hdr(&h);
    fx_payload(payload);
    size_t padded = 0, len = 0;
    CU_ASSERT_EQUAL_FATAL(sl_block_seal(v->block, sizeof v->block, &v->block_len, &h, payload,
                                        sizeof payload, sl_key_signer(k)), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_block_pad(&padded, v->block, sizeof v->block, v->block_len, FX_SYMBOL_SIZE),
                          SL_OK);
    CU_ASSERT_EQUAL_FATAL(padded, sizeof v->block);

    struct sl_key_public pub;
    sl_key_public_of(&pub, k);
    struct sl_data_frame f;
    memset(&f, 0, sizeof f);
    f.channel = SL_CHANNEL_TAGS;
    f.symbol_size = FX_SYMBOL_SIZE;
    f.session = FX_SESSION;
    f.epoch = FX_EPOCH;
    f.block_seq = FX_BLOCK_SEQ;
    memcpy(f.key_id, pub.id, SL_KEY_ID_BYTES);
    f.k = FX_K;
    f.m = FX_M;
    f.index = 0;
    f.symbol = v->block;   /* data symbol 0 = the first S bytes of the block */
    CU_ASSERT_EQUAL_FATAL(sl_datagram_data_encode(v->frame, sizeof v->frame, &len, &f), SL_OK);
    CU_ASSERT_EQUAL_FATAL(len, sizeof v->frame);

    struct sl_beacon b;
    fx_beacon(&b);
    CU_ASSERT_EQUAL_FATAL(sl_datagram_beacon_encode(v->beacon, sizeof v->beacon, &b, sl_key_signer(k)), SL_OK);
}

static void corpus_file(const char *target, const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/%s", SL_SOURCE_DIR, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        CU_FAIL_FATAL("mkdir corpus");
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/%s/%s", SL_SOURCE_DIR, target, name);
    write_file(path, p, n);
}

/* Seed corpora: a few valid and near-valid inputs per target. */
static void regen_corpora(const struct vectors *v, const struct sl_key_secret *k)
{
    uint8_t t[2048];
    size_t len;
    corpus_file("frame", "data_valid", v->frame, sizeof v->frame);
    corpus_file("frame", "beacon", v->beacon, sizeof v->beacon);
    corpus_file("frame", "data_short", v->frame, 60);
    memcpy(t, v->frame, sizeof v->frame);
    t[sizeof v->frame - 1] ^= 1;
    corpus_file("frame", "data_bad_crc", t, sizeof v->frame);
    memcpy(t, v->frame, sizeof v->frame);
    t[42] = FX_K + FX_M;
    sl_be32_put(t + sizeof v->frame - 4, sl_crc_compute(t, sizeof v->frame - 4));
    corpus_file("frame", "data_bad_index", t, sizeof v->frame);
    struct sl_data_frame f;
    CU_ASSERT_EQUAL_FATAL(sl_datagram_data_parse(&f, v->frame, sizeof v->frame), SL_OK);
    static uint8_t sym[1424];
    memset(sym, 0xA5, sizeof sym);
    f.symbol = sym;
    f.symbol_size = sizeof sym;
    f.k = 64;
    f.m = 8;
    f.index = 70;
    CU_ASSERT_EQUAL_FATAL(sl_datagram_data_encode(t, sizeof t, &len, &f), SL_OK);
    corpus_file("frame", "data_mtu1500_repair", t, len);

    corpus_file("beacon", "valid", v->beacon, sizeof v->beacon);
    memcpy(t, v->beacon, sizeof v->beacon);
    t[40] ^= 1;
    sl_be32_put(t + SL_BEACON_BYTES - 4, sl_crc_compute(t, SL_BEACON_BYTES - 4));
    corpus_file("beacon", "bad_signature", t, sizeof v->beacon);
    memcpy(t, v->beacon, sizeof v->beacon);
    t[61] = 1;
    sl_be32_put(t + SL_BEACON_BYTES - 4, sl_crc_compute(t, SL_BEACON_BYTES - 4));
    corpus_file("beacon", "bad_flags", t, sizeof v->beacon);
    corpus_file("beacon", "short", v->beacon, 132);
    corpus_file("beacon", "data_frame", v->frame, sizeof v->frame);

    corpus_file("block", "valid_sealed", v->block, v->block_len);
    corpus_file("block", "valid_padded", v->block, sizeof v->block);
    memcpy(t, v->block, sizeof v->block);
    t[sizeof v->block - 1] = 1;
    corpus_file("block", "nonzero_padding", t, sizeof v->block);
    memcpy(t, v->block, sizeof v->block);
    t[43] = 0xFF;
    corpus_file("block", "payload_len_large", t, sizeof v->block);
    struct sl_block_hdr h;
    fx_block_hdr(&h);
    CU_ASSERT_EQUAL_FATAL(sl_block_seal(t, sizeof t, &len, &h, NULL, 0, sl_key_signer(k)), SL_OK);
    corpus_file("block", "empty_payload", t, len);
    corpus_file("block", "header_only", v->block, SL_BLOCK_HDR_BYTES);
}

/* Compares the dump of p with the committed file and finds it in the doc. */
static void check_vector(const char *name, const uint8_t *p, size_t n, const char *doc, int regen)
{
    char dump[DUMP_MAX], path[512];
    hexdump(dump, sizeof dump, p, n);
    snprintf(path, sizeof path, "%s/%s.hex", SL_TEST_DATA_DIR, name);
    if (regen) {
        write_file(path, dump, strlen(dump));
        printf("\n---- %s.hex (%zu bytes) ----\n%s", name, n, dump);
    }
    char *want = read_text(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    if (strcmp(want, dump) != 0)
        fprintf(stderr, "%s: generated vector differs from %s:\n%s", name, path, dump);
    CU_ASSERT_STRING_EQUAL(want, dump);
    if (!doc || !strstr(doc, dump))
        fprintf(stderr, "%s: docs/protocol.md does not contain this dump:\n%s", name, dump);
    CU_ASSERT_PTR_NOT_NULL(doc ? strstr(doc, dump) : NULL);
    free(want);
}

SL_TEST(kat, vectors_match_files_and_doc)
{
    struct sl_key_secret *k = fx_key();
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    struct vectors *v = calloc(1, sizeof *v);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    build(v, k);
    const char *env = getenv("SL_REGEN");
    int regen = env && strcmp(env, "1") == 0;
    if (regen)
        regen_corpora(v, k);
    char *doc = read_text(SL_SOURCE_DIR "/docs/protocol.md");
    CU_ASSERT_PTR_NOT_NULL(doc);
    check_vector("frame_data", v->frame, sizeof v->frame, doc, regen);
    check_vector("beacon", v->beacon, sizeof v->beacon, doc, regen);
    check_vector("block_sealed", v->block, v->block_len, doc, regen);

    /* The doc also quotes the test key's public key and key id. */
    struct sl_key_public pub;
    sl_key_public_of(&pub, k);
    char id[SL_KEY_ID_HEX_BYTES], line[128];
    sl_key_id_format(id, pub.id);
    snprintf(line, sizeof line, "key id      %s", id);
    if (regen)
        printf("\n%s\n", line);
    CU_ASSERT_PTR_NOT_NULL(doc ? strstr(doc, line) : NULL);

    /* And the vectors are what they claim to be. */
    struct sl_key_set trusted;
    sl_key_set_init(&trusted);
    CU_ASSERT_EQUAL(sl_key_set_add(&trusted, &pub), SL_OK);
    struct sl_beacon b;
    CU_ASSERT_EQUAL(sl_datagram_beacon_open(&b, v->beacon, sizeof v->beacon, &trusted), SL_OK);
    struct sl_data_frame f;
    CU_ASSERT_EQUAL(sl_datagram_data_parse(&f, v->frame, sizeof v->frame), SL_OK);
    struct sl_block_expect x;
    fx_block_expect(&x, k, FX_K);
    const uint8_t *p;
    size_t plen;
    struct sl_block_hdr h;
    CU_ASSERT_EQUAL(sl_block_open(&p, &plen, &h, v->block, sizeof v->block, &x, &trusted), SL_OK);
    free(doc);
    free(v);
    sl_key_free(k);
}
