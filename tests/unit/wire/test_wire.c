/* The whole wire path, TX to RX, through a pcap file: sl_sender writes the
 * frames it would put on the link, the test deletes chosen frames from the
 * capture, and sl_receiver replays it. Which blocks come out must be exactly
 * what the FEC arithmetic predicts (a block survives iff it lost at most m'
 * of its k' + m' symbols), byte for byte; replaying the capture again yields
 * nothing new and moves the replay counters; tampering is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_fec.h"
#include "sl_hw.h"
#include "sl_keyfile.h"
#include "sl_receiver.h"
#include "sl_sender.h"
#include "sl_signer.h"
#include "sl_test.h"

#define K 8u
#define M 2u
#define D 4u
#define S 256u
#define NBLOCKS 40u
#define PCAP_HDR 24u
#define REC_HDR 16u
#define ETH_IP_UDP 42u

struct got {
    unsigned n;
    int seen[NBLOCKS];
    uint8_t payload[NBLOCKS][K * S];
    size_t len[NBLOCKS];
    unsigned beacons;
};

static struct sl_key_secret *test_key(uint8_t fill)
{
    uint8_t seed[SL_KEY_SEED_BYTES];
    memset(seed, fill, sizeof seed);
    struct sl_key_secret *k = NULL;
    CU_ASSERT_FATAL(sl_key_from_seed(&k, seed) == SL_OK);
    return k;
}

/* Payload of block i: a length that varies (so k' varies: early-closed
 * blocks) and bytes derived from i. */
static size_t make_payload(uint8_t *p, size_t cap, unsigned i)
{
    size_t len = 1 + (i * 397u) % cap;
    for (size_t j = 0; j < len; j++)
        p[j] = (uint8_t)(i * 31u + j * 7u);
    return len;
}

static void write_capture(const char *path, const struct sl_signer *signer)
{
    struct sl_hw_config hc;
    sl_hw_config_init(&hc);
    hc.transport = SL_HW_PCAPFILE;
    hc.dir = SL_HW_TX;
    hc.datagram_bytes = SL_FRAME_OVERHEAD + S;
    hc.file = path;
    struct sl_hw *hw = NULL;
    char why[256] = "";
    CU_ASSERT_FATAL(sl_hw_open(&hw, why, sizeof why, &hc) == SL_OK);

    struct sl_sender_config sc = {
        .k = K, .m = M, .interleave = D, .symbol_size = S, .rate_mbps = 0,
        .max_delay_us = 1000, .session = 0x1122334455667788ull, .epoch = 7, .signer = signer, .hw = hw,
    };
    struct sl_sender *snd = NULL;
    CU_ASSERT_FATAL(sl_sender_create(&snd, &sc) == SL_OK);
    for (unsigned i = 0; i < NBLOCKS; i++) {
        uint8_t *p;
        size_t cap;
        CU_ASSERT_FATAL(sl_sender_block(snd, &p, &cap, SL_CHANNEL_TAGS) == SL_OK);
        CU_ASSERT_EQUAL(cap, K * S - SL_BLOCK_OVERHEAD);
        size_t len = make_payload(p, cap, i);
        CU_ASSERT_FATAL(sl_sender_commit(snd, len, 1000000u + i, 1000u * i) == SL_OK);
    }
    CU_ASSERT_FATAL(sl_sender_flush(snd) == SL_OK);
    struct sl_beacon b = { .beacon_seq = 1, .tx_time_us = 42 };
    CU_ASSERT_FATAL(sl_sender_beacon(snd, &b) == SL_OK);
    struct sl_sender_stats st;
    sl_sender_stats(snd, &st);
    CU_ASSERT_EQUAL(st.blocks_sent[SL_CHANNEL_TAGS], NBLOCKS);
    CU_ASSERT_EQUAL(st.beacons_sent, 1);
    CU_ASSERT_EQUAL(st.frames_unsent, 0);
    sl_sender_destroy(snd);
    sl_hw_close(hw);
}

static void on_payload(void *ctx, const struct sl_block_hdr *h, const uint8_t *key_id, const uint8_t *payload,
                       size_t len, uint64_t now_us)
{
    (void)key_id;
    (void)now_us;
    struct got *g = ctx;
    CU_ASSERT_EQUAL(h->epoch, 7);
    CU_ASSERT_FATAL(h->block_seq < NBLOCKS);
    CU_ASSERT_EQUAL(h->tx_time_us, 1000000u + h->block_seq);
    g->seen[h->block_seq]++;
    memcpy(g->payload[h->block_seq], payload, len);
    g->len[h->block_seq] = len;
    g->n++;
}

static void on_beacon(void *ctx, const struct sl_beacon *b, uint64_t now_us)
{
    (void)now_us;
    struct got *g = ctx;
    CU_ASSERT_EQUAL(b->epoch, 7);
    CU_ASSERT_EQUAL(b->highest_block, NBLOCKS);
    g->beacons++;
}

/* Replays path into a receiver sharing replay table rp; fills g. */
static void replay_capture(const char *path, const struct sl_key_set *trusted, struct sl_replay *rp,
                           struct got *g, struct sl_receiver_stats *st)
{
    struct sl_hw_config hc;
    sl_hw_config_init(&hc);
    hc.transport = SL_HW_PCAPFILE;
    hc.dir = SL_HW_RX;
    hc.datagram_bytes = SL_FRAME_OVERHEAD + S;
    hc.file = path;
    hc.port = 0;
    struct sl_hw *hw = NULL;
    char why[256] = "";
    CU_ASSERT_FATAL(sl_hw_open(&hw, why, sizeof why, &hc) == SL_OK);
    struct sl_receiver_config rc = {
        .hw = hw, .trusted = trusted, .replay = rp,
        .fec = { .k_max = K, .m_max = M, .symbol_max = S, .entries = 16, .done_history = 256,
                 .cache_entries = 16, .max_age_us = 10000000 },
        .batch = 32, .datagram_max = SL_FRAME_OVERHEAD + S,
        .on_payload = on_payload, .on_beacon = on_beacon, .ctx = g,
    };
    struct sl_receiver *r = NULL;
    CU_ASSERT_FATAL(sl_receiver_create(&r, &rc) == SL_OK);
    sl_err e;
    unsigned polls = 0;
    while ((e = sl_receiver_poll(r, 10, 5000000)) == SL_OK || e == SL_ERR_AGAIN)
        CU_ASSERT_FATAL(++polls < 100000);
    CU_ASSERT_EQUAL(e, SL_ERR_EOF);
    sl_receiver_tick(r, 60000000);   /* age out whatever stayed partial */
    sl_receiver_stats(r, st);
    sl_receiver_destroy(r);
    sl_hw_close(hw);
}

struct rec {
    size_t off, len;        /* record (header + frame) in the file */
    uint64_t seq;
    unsigned index, k, m;
};

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    CU_ASSERT_FATAL(buf && fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Splits the capture into records; data frames get their block fields. */
static size_t index_capture(struct rec *recs, size_t max, const uint8_t *buf, size_t len)
{
    size_t n = 0;
    for (size_t off = PCAP_HDR; off + REC_HDR <= len && n < max;) {
        uint32_t incl = (uint32_t)buf[off + 8] | (uint32_t)buf[off + 9] << 8 | (uint32_t)buf[off + 10] << 16 |
                        (uint32_t)buf[off + 11] << 24;
        struct rec *r = &recs[n++];
        r->off = off;
        r->len = REC_HDR + incl;
        r->k = 0;
        struct sl_data_frame f;
        if (sl_datagram_data_parse(&f, buf + off + REC_HDR + ETH_IP_UDP, incl - ETH_IP_UDP) == SL_OK) {
            r->seq = f.block_seq;
            r->index = f.index;
            r->k = f.k;
            r->m = f.m;
        }
        off += r->len;
    }
    return n;
}

SL_TEST(wire, clean_roundtrip_and_replay_refused)
{
    char path[] = "/tmp/sl_wire_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    struct sl_key_secret *key = test_key(0x42);
    write_capture(path, sl_key_signer(key));

    struct sl_key_set trusted;
    sl_key_set_init(&trusted);
    struct sl_key_public pub;
    sl_key_public_of(&pub, key);
    CU_ASSERT_FATAL(sl_key_set_add(&trusted, &pub) == SL_OK);
    struct sl_replay *rp = calloc(1, sizeof *rp);
    sl_replay_init(rp);

    struct got *g = calloc(1, sizeof *g);
    struct sl_receiver_stats st;
    replay_capture(path, &trusted, rp, g, &st);
    CU_ASSERT_EQUAL(g->n, NBLOCKS);
    CU_ASSERT_EQUAL(g->beacons, 1);
    uint8_t want[K * S];
    for (unsigned i = 0; i < NBLOCKS; i++) {
        CU_ASSERT_EQUAL(g->seen[i], 1);
        size_t len = make_payload(want, sizeof want - SL_BLOCK_OVERHEAD, i);
        CU_ASSERT_EQUAL(g->len[i], len);
        CU_ASSERT_EQUAL(memcmp(g->payload[i], want, len), 0);
    }
    CU_ASSERT_EQUAL(st.blocks_recovered, 0);

    /* The same capture again: every frame is refused before decoding. */
    struct got *g2 = calloc(1, sizeof *g2);
    replay_capture(path, &trusted, rp, g2, &st);
    CU_ASSERT_EQUAL(g2->n, 0);
    CU_ASSERT_EQUAL(g2->beacons, 0);
    CU_ASSERT(st.drops[SL_RX_REPLAY][SL_ERR_REPLAY] > 0);
    CU_ASSERT_EQUAL(st.drops[SL_RX_BEACON][SL_ERR_REPLAY], 1);
    CU_ASSERT_EQUAL(st.blocks, 0);

    /* A receiver that trusts another key accepts nothing. */
    struct sl_key_secret *other = test_key(0x43);
    struct sl_key_set wrong;
    sl_key_set_init(&wrong);
    sl_key_public_of(&pub, other);
    CU_ASSERT_FATAL(sl_key_set_add(&wrong, &pub) == SL_OK);
    sl_replay_init(rp);
    struct got *g3 = calloc(1, sizeof *g3);
    replay_capture(path, &wrong, rp, g3, &st);
    CU_ASSERT_EQUAL(g3->n, 0);
    /* Frames of an untrusted key are dropped before the decoder. */
    CU_ASSERT_EQUAL(st.drops[SL_RX_FRAME][SL_ERR_UNKNOWN_KEY], st.frames);
    CU_ASSERT(st.frames > 0);
    CU_ASSERT_EQUAL(st.drops[SL_RX_BLOCK][SL_ERR_UNKNOWN_KEY], 0);
    CU_ASSERT_EQUAL(st.drops[SL_RX_BEACON][SL_ERR_UNKNOWN_KEY], 1);

    sl_key_free(other);
    sl_key_free(key);
    free(g);
    free(g2);
    free(g3);
    free(rp);
    unlink(path);
}

SL_TEST(wire, deleted_frames_match_fec_prediction)
{
    char path[] = "/tmp/sl_wire_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    struct sl_key_secret *key = test_key(0x42);
    write_capture(path, sl_key_signer(key));

    size_t len;
    uint8_t *buf = slurp(path, &len);
    static struct rec recs[4096];
    size_t n = index_capture(recs, 4096, buf, len);
    CU_ASSERT_FATAL(n > NBLOCKS);

    /* Deletion pattern: block i loses (i % (M + 2)) symbols — 0, 1, 2 (= m
     * for full blocks, recoverable) or 3 (> m, lost) — chosen from different
     * positions (data and repair) by a fixed rule. */
    unsigned lost[NBLOCKS] = { 0 };
    unsigned mprime[NBLOCKS] = { 0 };
    unsigned total_of[NBLOCKS] = { 0 };
    uint8_t *keep = calloc(n, 1);
    FILE *out = fopen(path, "wb");
    CU_ASSERT_FATAL(out != NULL);
    fwrite(buf, 1, PCAP_HDR, out);
    for (size_t i = 0; i < n; i++) {
        struct rec *r = &recs[i];
        int drop_it = 0;
        if (r->k) {
            unsigned want = (unsigned)(r->seq % (M + 2));
            unsigned total = r->k + r->m;
            mprime[r->seq] = r->m;
            total_of[r->seq] = total;
            /* drop indexes (seq*3 + j*5) % total for j < want */
            for (unsigned j = 0; j < want && j < total; j++)
                if ((r->seq * 3 + j * 5) % total == r->index)
                    drop_it = 1;
            if (drop_it)
                lost[r->seq]++;
        }
        if (!drop_it)
            fwrite(buf + r->off, 1, r->len, out);
    }
    fclose(out);

    struct sl_key_set trusted;
    sl_key_set_init(&trusted);
    struct sl_key_public pub;
    sl_key_public_of(&pub, key);
    CU_ASSERT_FATAL(sl_key_set_add(&trusted, &pub) == SL_OK);
    struct sl_replay *rp = calloc(1, sizeof *rp);
    sl_replay_init(rp);
    struct got *g = calloc(1, sizeof *g);
    struct sl_receiver_stats st;
    replay_capture(path, &trusted, rp, g, &st);

    unsigned expect_ok = 0, expect_recovered = 0, expect_lost = 0, expect_partial = 0;
    uint8_t want[K * S];
    for (unsigned i = 0; i < NBLOCKS; i++) {
        int survives = lost[i] <= mprime[i];
        expect_ok += (unsigned)survives;
        expect_recovered += (unsigned)(survives && lost[i] > 0);
        expect_lost += (unsigned)!survives;
        /* A lost block the decoder saw part of expires as unrecoverable; one
         * that lost every symbol (k' = m' = 1 here) never reached it. */
        expect_partial += (unsigned)(!survives && lost[i] < total_of[i]);
        CU_ASSERT_EQUAL(g->seen[i], survives);
        if (survives) {
            size_t plen = make_payload(want, sizeof want - SL_BLOCK_OVERHEAD, i);
            CU_ASSERT_EQUAL(memcmp(g->payload[i], want, plen), 0);
        }
    }
    CU_ASSERT(expect_lost > 0);
    CU_ASSERT(expect_recovered > 0);
    CU_ASSERT_EQUAL(g->n, expect_ok);
    CU_ASSERT_EQUAL(st.blocks, expect_ok);
    /* Recovered counts blocks that needed repair symbols: a block that lost
     * only repair symbols decodes directly, so the count is at most this. */
    CU_ASSERT(st.blocks_recovered <= expect_recovered);
    CU_ASSERT(st.blocks_recovered > 0);
    CU_ASSERT_EQUAL(st.fec.unrecoverable + st.fec.evicted, expect_partial);

    free(keep);
    free(buf);
    free(g);
    free(rp);
    sl_key_free(key);
    unlink(path);
}

/* Through sluice-tx's signer process, which takes D = 4 blocks per round
 * trip: the sender gathers blocks, signs them together and encodes them
 * in order, and every block arrives whole, once, under the process's key. */
SL_TEST(wire, signer_process_roundtrip)
{
    char dir[] = "/tmp/sl_wire_signer_XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char sk[64], pk[64], path[64];
    snprintf(sk, sizeof sk, "%s/sluice.key", dir);
    snprintf(pk, sizeof pk, "%s/sluice.pub", dir);
    snprintf(path, sizeof path, "%s/cap.pcap", dir);
    struct sl_key_secret *key = test_key(0x44);
    CU_ASSERT_FATAL(sl_keyfile_save(sk, pk, key, true) == SL_OK);
    struct sl_signer_proc *proc = NULL;
    CU_ASSERT_FATAL(sl_signer_spawn(&proc, sk, NULL, NULL) == SL_OK);
    CU_ASSERT_FATAL(sl_signer_proc_bind(proc, 0x1122334455667788ull, 7) == SL_OK);
    CU_ASSERT_EQUAL(sl_signer_proc_signer(proc)->batch_max, SL_SIGN_BATCH_MAX);
    write_capture(path, sl_signer_proc_signer(proc));
    sl_signer_proc_stop(proc);

    struct sl_key_set trusted;
    sl_key_set_init(&trusted);
    struct sl_key_public pub;
    sl_key_public_of(&pub, key);
    CU_ASSERT_FATAL(sl_key_set_add(&trusted, &pub) == SL_OK);
    struct sl_replay *rp = calloc(1, sizeof *rp);
    sl_replay_init(rp);
    struct got *g = calloc(1, sizeof *g);
    struct sl_receiver_stats st;
    replay_capture(path, &trusted, rp, g, &st);
    CU_ASSERT_EQUAL(g->n, NBLOCKS);
    CU_ASSERT_EQUAL(g->beacons, 1);
    uint8_t want[K * S];
    for (unsigned i = 0; i < NBLOCKS; i++) {
        CU_ASSERT_EQUAL(g->seen[i], 1);
        size_t len = make_payload(want, sizeof want - SL_BLOCK_OVERHEAD, i);
        CU_ASSERT_EQUAL(g->len[i], len);
        CU_ASSERT_EQUAL(memcmp(g->payload[i], want, len), 0);
    }
    free(g);
    free(rp);
    sl_key_free(key);
    unlink(path);
    unlink(sk);
    unlink(pk);
    rmdir(dir);
}
