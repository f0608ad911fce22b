/* sluice-bench fec: encode and decode throughput of sl_fec for the
 * configurations in docs/performance.md, each beside memcpy of the same
 * bytes measured in the same run, Ed25519 sign/verify rates, and the cost
 * of signing and verifying a full default block (sl_block_seal /
 * sl_block_open: header || SHA-256(payload)) beside pure Ed25519 over the
 * same bytes (the block version 1 rule), so the two are compared in one run.
 *
 * MB/s counts the k * S data bytes of a block (10^6 bytes per MB).
 * encode: block assembled in place (sl_fec_encode with data == blk->sym),
 *         so the figure is the Reed-Solomon pass alone.
 * decode: m data symbols lost; the k - m others and m repair symbols are
 *         fed through sl_fec_decode (copy in, recover, hand out). warm: the
 *         same loss pattern every block (cache hits); cold: two patterns
 *         alternating through a one-entry cache, so every block inverts. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "sl_block.h"
#include "sl_crc.h"
#include "sl_fec.h"
#include "sl_key.h"

#define MIN_NS 300000000ull   /* each figure runs at least 0.3 s */

struct fec_case {
    unsigned k, m, s;
};

static double mbps(uint64_t bytes, uint64_t ns) { return (double)bytes * 1e3 / (double)ns; }

static double run_memcpy(uint8_t *dst, const uint8_t *src, size_t n)
{
    uint64_t t0 = bench_now_ns(), t, iters = 0;
    do {
        for (int i = 0; i < 16; i++) {
            memcpy(dst, src, n);
            /* keep the copy observable so it is not optimised out */
            __asm__ volatile("" : : "r"(dst) : "memory");
        }
        iters += 16;
        t = bench_now_ns() - t0;
    } while (t < MIN_NS);
    return mbps(iters * n, t);
}

static double run_encode(const struct sl_fec_encoder *enc, struct sl_fec_block *blk, size_t len)
{
    uint64_t t0 = bench_now_ns(), t, iters = 0;
    do {
        for (int i = 0; i < 16; i++)
            if (sl_fec_encode(enc, blk, blk->sym, len) != SL_OK)
                return -1;
        iters += 16;
        t = bench_now_ns() - t0;
    } while (t < MIN_NS);
    return mbps(iters * len, t);
}

/* Feeds one block with data symbols [lost0, lost0 + m) missing. */
static int decode_one(struct sl_fec_decoder *dec, const struct sl_fec_block *blk, uint64_t seq,
                      unsigned lost0)
{
    struct sl_fec_decoded out;
    unsigned k = blk->k, m = blk->m;
    for (unsigned i = 0; i < k + m; i++) {
        if (i >= lost0 && i < lost0 + m)
            continue;
        struct sl_fec_symbol sym = { .session = 1, .block_seq = seq, .k = blk->k, .m = blk->m,
                                     .index = (uint8_t)i, .symbol_size = blk->symbol_size,
                                     .data = blk->sym + (size_t)i * blk->symbol_size };
        sl_err e = sl_fec_decode(dec, &out, &sym, 0);
        if (e == SL_OK)
            return out.recovered ? 0 : -1;
        if (e != SL_ERR_AGAIN)
            return -1;
    }
    return -1;
}

static double run_decode(const struct fec_case *c, const struct sl_fec_block *blk, bool cold,
                         uint64_t *misses)
{
    struct sl_fec_decoder_config cfg = { .k_max = c->k, .m_max = c->m, .symbol_max = c->s,
                                         .entries = 2, .done_history = 8,
                                         .cache_entries = cold ? 1 : 8, .max_age_us = 1000000 };
    struct sl_fec_decoder *dec = NULL;
    if (sl_fec_decoder_create(&dec, &cfg) != SL_OK)
        return -1;
    uint64_t t0 = bench_now_ns(), t, seq = 0;
    do {
        for (int i = 0; i < 4; i++, seq++)
            if (decode_one(dec, blk, seq, cold ? (unsigned)(seq & 1) : 0) != 0) {
                sl_fec_decoder_destroy(dec);
                return -1;
            }
        t = bench_now_ns() - t0;
    } while (t < MIN_NS);
    struct sl_fec_counters ctr;
    sl_fec_decoder_counters(dec, &ctr);
    *misses = ctr.cache_misses;
    sl_fec_decoder_destroy(dec);
    return mbps(seq * c->k * c->s, t);
}

/* CRC32C over one 1468-byte datagram (mtu 1500): every frame pays it on
 * both sides. */
static void bench_crc(void)
{
    static uint8_t frame[1468];
    memset(frame, 0x5a, sizeof frame);
    uint64_t t0 = bench_now_ns(), t, n = 0;
    uint32_t acc = 0;
    do {
        for (int i = 0; i < 64; i++)
            acc ^= sl_crc_compute(frame, sizeof frame);
        n += 64;
        t = bench_now_ns() - t0;
    } while (t < MIN_NS);
    printf("CRC32C (1468-byte datagram): %.0f MB/s, %.1f M datagrams/s (%08x)\n",
           mbps(n * sizeof frame, t), (double)n * 1e3 / (double)t, acc);
}

static int bench_ed25519(void)
{
    if (sodium_init() < 0)
        return -1;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char msg[1400], sig[crypto_sign_BYTES];
    crypto_sign_keypair(pk, sk);
    randombytes_buf(msg, sizeof msg);
    uint64_t t0 = bench_now_ns(), t, n = 0;
    do {
        crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
        n++;
        t = bench_now_ns() - t0;
    } while (t < 2 * MIN_NS);
    double sign = (double)n * 1e9 / (double)t;
    t0 = bench_now_ns();
    n = 0;
    do {
        if (crypto_sign_verify_detached(sig, msg, sizeof msg, pk) != 0)
            return -1;
        n++;
        t = bench_now_ns() - t0;
    } while (t < 2 * MIN_NS);
    double verify = (double)n * 1e9 / (double)t;
    sodium_memzero(sk, sizeof sk);
    printf("\nEd25519 (libsodium %s), 1400-byte message: sign %.0f/s, verify %.0f/s\n",
           sodium_version_string(), sign, verify);
    return 0;
}

/* One full default block: k = 64 symbols of 1424 bytes (mtu 1500), 91 KB.
 * MB/s of block bytes for sealing (sign) and opening (verify), version 2
 * (sl_block_*) against pure Ed25519 over header and payload (version 1). */
static int bench_block_sign(void)
{
    enum { K = 64, S = 1424, LEN = K * S };
    static uint8_t blk[LEN];
    struct sl_key_secret *key = NULL;
    if (sl_key_generate(&key) != SL_OK)
        return -1;
    struct sl_key_public pub;
    sl_key_public_of(&pub, key);
    struct sl_key_set trusted;
    sl_key_set_init(&trusted);
    if (sl_key_set_add(&trusted, &pub) != SL_OK) {
        sl_key_free(key);
        return -1;
    }
    size_t plen = LEN - SL_BLOCK_OVERHEAD, sealed = 0;
    randombytes_buf(blk + SL_BLOCK_HDR_BYTES, plen);
    struct sl_block_hdr h = { .channel = 0, .session = 1, .epoch = 1, .block_seq = 1, .tx_time_us = 1 };
    struct sl_block_expect x = { .channel = 0, .symbol_size = S, .session = 1, .epoch = 1, .block_seq = 1,
                                 .k = K };
    memcpy(x.key_id, pub.id, sizeof x.key_id);
    /* seal v2, open v2 (of the block just sealed), sign v1 in place, verify
     * v1 (of that signature); MB/s of block bytes. */
    double r[4];
    for (int which = 0; which < 4; which++) {
        uint64_t t0 = bench_now_ns(), t, n = 0;
        do {
            const uint8_t *p;
            size_t pl;
            struct sl_block_hdr got;
            sl_err e = SL_OK;
            if (which == 0)
                e = sl_block_seal(blk, sizeof blk, &sealed, &h, blk + SL_BLOCK_HDR_BYTES, plen, sl_key_signer(key));
            else if (which == 1)
                e = sl_block_open(&p, &pl, &got, blk, sizeof blk, &x, &trusted);
            else if (which == 2)
                sl_key_sign(blk + LEN - SL_SIG_BYTES, blk, LEN - SL_SIG_BYTES, key);
            else
                e = sl_key_verify(&pub, blk + LEN - SL_SIG_BYTES, blk, LEN - SL_SIG_BYTES);
            if (e != SL_OK || (which == 0 && sealed != LEN)) {
                sl_key_free(key);
                return -1;
            }
            n++;
            t = bench_now_ns() - t0;
        } while (t < MIN_NS);
        r[which] = mbps(n * LEN, t);
    }
    sl_key_free(key);
    printf("Signed block (k=64, S=1424, %d bytes): seal %.0f MB/s (%.0f us), open %.0f MB/s (%.0f us); "
           "pure Ed25519 over the same bytes (block v1): sign %.0f MB/s, verify %.0f MB/s\n",
           LEN, r[0], LEN / r[0], r[1], LEN / r[1], r[2], r[3]);
    return 0;
}

int bench_fec(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: sluice-bench fec\n");
        return 2;
    }
    static const struct fec_case cases[] = {
        { 32, 4, 1400 }, { 32, 4, 8900 }, { 64, 8, 1400 }, { 64, 8, 8900 },
        { 128, 32, 1400 }, { 128, 32, 8900 },
        { 64, 16, 1424 },   /* the daemons' defaults (k = 64, m = 16, mtu 1500) */
    };
    printf("sl_fec throughput, MB/s of block data (x = ratio to memcpy of the same bytes)\n");
    printf("%4s %3s %5s %9s %17s %17s %17s\n", "k", "m", "S", "memcpy", "encode", "decode warm",
           "decode cold");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct fec_case *c = &cases[i];
        struct sl_fec_encoder *enc = NULL;
        size_t len = (size_t)c->k * c->s;
        struct sl_fec_block blk = { 0 };
        blk.cap = (size_t)(c->k + c->m) * c->s;
        blk.sym = malloc(blk.cap);
        uint8_t *copy = malloc(len);
        if (!blk.sym || !copy || sl_fec_encoder_create(&enc, c->k, c->m, c->s) != SL_OK) {
            fprintf(stderr, "sluice-bench: setup failed for k=%u m=%u S=%u\n", c->k, c->m, c->s);
            return 1;
        }
        randombytes_buf(blk.sym, len);
        double cpy = run_memcpy(copy, blk.sym, len);
        double encr = run_encode(enc, &blk, len);
        uint64_t mw = 0, mc = 0;
        double warm = run_decode(c, &blk, false, &mw);
        double cold = run_decode(c, &blk, true, &mc);
        if (encr < 0 || warm < 0 || cold < 0) {
            fprintf(stderr, "sluice-bench: run failed for k=%u m=%u S=%u\n", c->k, c->m, c->s);
            return 1;
        }
        printf("%4u %3u %5u %9.0f %9.0f (%5.3fx) %9.0f (%5.3fx) %9.0f (%5.3fx)\n", c->k, c->m, c->s, cpy,
               encr, encr / cpy, warm, warm / cpy, cold, cold / cpy);
        fflush(stdout);
        sl_fec_encoder_destroy(enc);
        free(blk.sym);
        free(copy);
    }
    /* Context: a copy too big for any cache runs at memory speed. */
    size_t big = (size_t)64 << 20;
    uint8_t *a = malloc(big), *b = malloc(big);
    if (!a || !b) {
        free(a);
        free(b);
        return 1;
    }
    memset(a, 1, big);
    memset(b, 2, big);
    printf("memcpy of 64 MiB (beyond the caches): %.0f MB/s\n", run_memcpy(b, a, big));
    free(a);
    free(b);
    bench_crc();
    if (bench_ed25519() != 0)
        return 1;
    return bench_block_sign() == 0 ? 0 : 1;
}
