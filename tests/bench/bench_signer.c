/* sluice-bench signer: what sluice-tx's signer process costs per block,
 * beside the in-process signer, in the same run (docs/performance.md).
 *
 * A full default block (k = 64 symbols of 1424 bytes, 91 KB) is sealed
 * (sl_block_seal: SHA-256 of the payload, then the Ed25519 signature of
 * the 76 signed bytes) alternately with the key in this process
 * (sl_key_signer) and through a forked signer (sl_signer_spawn, with its
 * seccomp filter: the daemon's path), one block per round trip and, as
 * sl_sender does, SL_SIGNER_BATCH_MAX blocks prepared (sl_block_prepare)
 * and signed in one round trip; then the signature alone, one per round
 * trip. Rounds alternate the figures so drift on a shared machine hits
 * all of them; median of the rounds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <unistd.h>

#include "bench.h"
#include "sl_block.h"
#include "sl_keyfile.h"
#include "sl_signer.h"

#define ROUNDS 7
#define ROUND_NS 150000000ull   /* 0.15 s per figure per round */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* µs per call of one of the four figures. */
static double run(int which, const struct sl_signer *local, struct sl_signer_proc *proc, uint8_t *blk,
                  size_t cap, size_t plen)
{
    struct sl_block_hdr h = { .channel = 1, .session = 1, .epoch = 1, .block_seq = 1, .tx_time_us = 1 };
    uint8_t msgs[SL_SIGNER_BATCH_MAX * SL_BLOCK_SIGNED_BYTES], sigs[SL_SIGNER_BATCH_MAX * SL_SIG_BYTES];
    for (unsigned i = 0; i < SL_SIGNER_BATCH_MAX; i++)
        memcpy(msgs + i * SL_BLOCK_SIGNED_BYTES, blk, SL_BLOCK_SIGNED_BYTES);
    uint64_t t0 = bench_now_ns(), t, n = 0;
    do {
        size_t sealed = 0;
        sl_err e = SL_OK;
        switch (which) {
        case 0: e = sl_block_seal(blk, cap, &sealed, &h, blk + SL_BLOCK_HDR_BYTES, plen, local); break;
        case 1: e = sl_block_seal(blk, cap, &sealed, &h, blk + SL_BLOCK_HDR_BYTES, plen,
                                  sl_signer_proc_signer(proc)); break;
        case 2: e = sl_signer_proc_sign_batch(proc, SL_SIGNER_OP_BLOCK, sigs, msgs, SL_BLOCK_SIGNED_BYTES, 1); break;
        default:
            /* sl_sender's way: the batch's blocks prepared, one round trip. */
            for (unsigned i = 0; i < SL_SIGNER_BATCH_MAX && e == SL_OK; i++)
                e = sl_block_prepare(blk, cap, &sealed, &h, blk + SL_BLOCK_HDR_BYTES, plen,
                                     msgs + i * SL_BLOCK_SIGNED_BYTES);
            if (e == SL_OK)
                e = sl_signer_sign_batch(sl_signer_proc_signer(proc), sigs, msgs, SL_BLOCK_SIGNED_BYTES,
                                         SL_SIGNER_BATCH_MAX);
            n += SL_SIGNER_BATCH_MAX - 1;
        }
        if (e != SL_OK)
            return -1;
        n++;
        t = bench_now_ns() - t0;
    } while (t < ROUND_NS);
    return (double)t / 1e3 / (double)n;
}

int bench_signer(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: sluice-bench signer\n");
        return 2;
    }
    enum { K = 64, S = 1424, LEN = K * S };
    static uint8_t blk[LEN];
    char dir[] = "/tmp/sl-bench-signer-XXXXXX", sk[64], pk[64];
    struct sl_key_secret *key = NULL;
    struct sl_signer_proc *proc = NULL;
    if (!mkdtemp(dir) || sl_key_generate(&key) != SL_OK)
        return 1;
    snprintf(sk, sizeof sk, "%s/sluice.key", dir);
    snprintf(pk, sizeof pk, "%s/sluice.pub", dir);
    int rc = 1;
    if (sl_keyfile_save(sk, pk, key, true) != SL_OK || sl_signer_spawn(&proc, sk, NULL, NULL) != SL_OK ||
        sl_signer_proc_bind(proc, 1, 1) != SL_OK) {
        fprintf(stderr, "sluice-bench: cannot start the signer\n");
        goto out;
    }
    size_t plen = LEN - SL_BLOCK_OVERHEAD;
    randombytes_buf(blk + SL_BLOCK_HDR_BYTES, plen);
    size_t sealed;
    struct sl_block_hdr h = { .channel = 1, .session = 1, .epoch = 1, .block_seq = 1, .tx_time_us = 1 };
    if (sl_block_seal(blk, sizeof blk, &sealed, &h, blk + SL_BLOCK_HDR_BYTES, plen, sl_key_signer(key)) != SL_OK)
        goto out;
    double r[4][ROUNDS];
    for (int round = 0; round < ROUNDS; round++)
        for (int which = 0; which < 4; which++)
            if ((r[which][round] = run(which, sl_key_signer(key), proc, blk, sizeof blk, plen)) < 0) {
                fprintf(stderr, "sluice-bench: signing failed\n");
                goto out;
            }
    double local = median(r[0], ROUNDS), remote = median(r[1], ROUNDS);
    double one = median(r[2], ROUNDS), batch = median(r[3], ROUNDS);
    printf("Signer, full default block (k=64, S=1424, %d bytes), median of %d alternating rounds:\n", LEN, ROUNDS);
    printf("  seal in-process %.1f us; through the signer process, %u blocks per round trip (sl_sender) %.1f us "
           "(%+.1f us, %+.1f %%), one per round trip %.1f us (%+.1f us, %+.1f %%)\n",
           local, SL_SIGNER_BATCH_MAX, batch, batch - local, (batch - local) / local * 100, remote,
           remote - local, (remote - local) / local * 100);
    printf("  signer process, the signature of 76 bytes alone: %.1f us per round trip\n", one);
    rc = 0;
out:
    sl_signer_proc_stop(proc);
    sl_key_free(key);
    unlink(sk);
    unlink(pk);
    rmdir(dir);
    return rc;
}
