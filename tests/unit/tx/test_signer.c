/* sl_signer: the signer process signs only block and beacon shapes of the
 * session and epoch it was bound to, its signatures verify, and a dead
 * signer makes sealing fail (nothing unsigned comes out). The serve loop
 * runs on a thread over a socketpair for the protocol cases; the process
 * cases fork the real signer from a key file. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sl_block.h"
#include "sl_buf.h"
#include "sl_datagram.h"
#include "sl_keyfile.h"
#include "sl_log.h"
#include "sl_signer.h"
#include "sl_test.h"

#define SESSION 0x1122334455667788ull
#define EPOCH   9u

static struct sl_key_secret *test_key(void)
{
    uint8_t seed[SL_KEY_SEED_BYTES];
    for (unsigned i = 0; i < sizeof seed; i++)
        seed[i] = (uint8_t)(0xA0 + i);
    struct sl_key_secret *k = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_key_from_seed(&k, seed), SL_OK);
    return k;
}

struct served {
    int fd;
    const struct sl_key_secret *key;
    sl_err result;
};

static void *serve_thread(void *arg)
{
    struct served *s = arg;
    s->result = sl_signer_serve(s->fd, s->key);
    return NULL;
}

/* One raw request, its reply status and signatures. */
static uint8_t ask(int fd, const uint8_t *req, size_t len, uint8_t *sigs, size_t *nsig)
{
    uint8_t rep[SL_SIGNER_REPLY_MAX];
    CU_ASSERT_EQUAL_FATAL(send(fd, req, len, 0), (ssize_t)len);
    ssize_t n = recv(fd, rep, sizeof rep, 0);
    CU_ASSERT_FATAL(n >= (ssize_t)SL_SIGNER_HDR_BYTES);
    *nsig = rep[1];
    CU_ASSERT_EQUAL(n, (ssize_t)(SL_SIGNER_HDR_BYTES + *nsig * SL_SIG_BYTES));
    if (sigs)
        memcpy(sigs, rep + SL_SIGNER_HDR_BYTES, *nsig * SL_SIG_BYTES);
    return rep[0];
}

/* The 76 bytes sl_block_seal has signed for a block of this session. */
static void block_bytes(uint8_t out[SL_BLOCK_SIGNED_BYTES], uint64_t session, uint64_t seq)
{
    static uint8_t blk[SL_BLOCK_OVERHEAD + 16];
    struct sl_block_hdr h = { .channel = SL_CHANNEL_TAGS, .session = session, .epoch = EPOCH,
                              .block_seq = seq, .tx_time_us = 5 };
    struct sl_key_secret *k = test_key();
    size_t len = 0;
    memset(blk + SL_BLOCK_HDR_BYTES, 0x5A, 16);
    CU_ASSERT_EQUAL_FATAL(sl_block_seal(blk, sizeof blk, &len, &h, blk + SL_BLOCK_HDR_BYTES, 16,
                                        sl_key_signer(k)), SL_OK);
    sl_key_free(k);
    memcpy(out, blk, SL_BLOCK_HDR_BYTES);
    /* The digest part is opaque to the signer: any 32 bytes. */
    memset(out + SL_BLOCK_HDR_BYTES, 0x33, SL_BLOCK_DIGEST_BYTES);
}

static void beacon_bytes(uint8_t out[SL_BEACON_SIGNED_BYTES], const struct sl_key_secret *k)
{
    uint8_t dg[SL_BEACON_BYTES];
    struct sl_beacon b = { .session = SESSION, .epoch = EPOCH, .beacon_seq = 3, .symbol_size = 1424,
                           .k = 64, .m = 16, .interleave = 16 };
    CU_ASSERT_EQUAL_FATAL(sl_datagram_beacon_encode(dg, sizeof dg, &b, sl_key_signer(k)), SL_OK);
    memcpy(out, dg, SL_BEACON_SIGNED_BYTES);
}

static size_t req_of(uint8_t *req, uint8_t op, uint8_t count, const uint8_t *body, size_t len)
{
    req[0] = op;
    req[1] = count;
    req[2] = req[3] = 0;
    if (len)
        memcpy(req + SL_SIGNER_HDR_BYTES, body, len);
    return SL_SIGNER_HDR_BYTES + len;
}

SL_TEST(signer, refuses_what_is_not_a_block_or_beacon_of_its_session)
{
    struct sl_key_secret *k = test_key();
    struct sl_key_public pub;
    sl_key_public_of(&pub, k);
    int sv[2];
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    struct served s = { .fd = sv[1], .key = k, .result = SL_ERR_STATE };
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, serve_thread, &s), 0);

    static uint8_t req[SL_SIGNER_REQ_MAX + 64];
    uint8_t blk[SL_BLOCK_SIGNED_BYTES], bcn[SL_BEACON_SIGNED_BYTES], sigs[SL_SIGNER_BATCH_MAX * SL_SIG_BYTES];
    size_t n;
    block_bytes(blk, SESSION, 1);
    beacon_bytes(bcn, k);

    /* Nothing before the binding. */
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 1, blk, sizeof blk), sigs, &n), SL_ERR_STATE);
    CU_ASSERT_EQUAL(n, 0);
    uint8_t bind[16];
    uint64_t session = SESSION, epoch = EPOCH;
    memcpy(bind, &session, 8);
    memcpy(bind + 8, &epoch, 8);
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BIND, 0, bind, 16), NULL, &n), SL_OK);
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BIND, 0, bind, 16), NULL, &n), SL_ERR_STATE);

    /* A good block and a good beacon: verifiable signatures. */
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 1, blk, sizeof blk), sigs, &n), SL_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(sl_key_verify(&pub, sigs, blk, sizeof blk), SL_OK);
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BEACON, 1, bcn, sizeof bcn), sigs, &n), SL_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(sl_key_verify(&pub, sigs, bcn, sizeof bcn), SL_OK);

    /* Wrong lengths: one byte short, one byte long, a beacon sent as a
     * block, an empty batch, an oversized datagram. */
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 1, blk, sizeof blk - 1), sigs, &n), SL_ERR_LENGTH);
    uint8_t longer[SL_BLOCK_SIGNED_BYTES + 1] = { 0 };
    memcpy(longer, blk, sizeof blk);
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 1, longer, sizeof longer), sigs, &n), SL_ERR_LENGTH);
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 1, bcn, sizeof bcn), sigs, &n), SL_ERR_LENGTH);
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 0, NULL, 0), sigs, &n), SL_ERR_LENGTH);
    memset(req, 0, sizeof req);
    req[0] = SL_SIGNER_OP_BEACON;
    req[1] = SL_SIGNER_BATCH_MAX;
    CU_ASSERT_EQUAL(ask(sv[0], req, sizeof req, sigs, &n), SL_ERR_LENGTH);
    CU_ASSERT_EQUAL(ask(sv[0], req, 2, sigs, &n), SL_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, 9, 1, blk, sizeof blk), sigs, &n), SL_ERR_TYPE);

    /* Wrong shapes: magic, version, flags, channel, session, epoch, key id,
     * and a beacon's bytes presented with a block's length. */
    uint8_t bad[SL_BEACON_SIGNED_BYTES];
    memcpy(bad, blk, sizeof blk);
    bad[SL_BLOCK_OFF_MAGIC] ^= 0xFF;
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 1, bad, sizeof blk), sigs, &n), SL_ERR_MAGIC);
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 1, bcn, sizeof blk), sigs, &n), SL_ERR_MAGIC);
    memcpy(bad, blk, sizeof blk);
    bad[SL_BLOCK_OFF_VERSION] = 1;
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 1, bad, sizeof blk), sigs, &n), SL_ERR_VERSION);
    memcpy(bad, blk, sizeof blk);
    bad[SL_BLOCK_OFF_FLAGS] = 1;
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 1, bad, sizeof blk), sigs, &n), SL_ERR_HEADER);
    /* The split field: with its flag and 1 <= split < L (16) it signs; out
     * of that range, or without the flag, it is refused as RX refuses it. */
    static const struct { uint8_t flags; uint16_t split; uint8_t want; } splits[] = {
        { SL_BLOCK_FLAG_SPLIT, 5, SL_OK },          { SL_BLOCK_FLAG_SPLIT, 15, SL_OK },
        { SL_BLOCK_FLAG_SPLIT, 16, SL_ERR_HEADER }, { SL_BLOCK_FLAG_SPLIT, 0xFFFF, SL_ERR_HEADER },
        { 0, 5, SL_ERR_HEADER },                    { SL_BLOCK_FLAG_SPLIT | 2, 5, SL_ERR_HEADER },
    };
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
        memcpy(bad, blk, sizeof blk);
        bad[SL_BLOCK_OFF_FLAGS] = splits[i].flags;
        sl_be16_put(bad + SL_BLOCK_OFF_SPLIT, splits[i].split);
        CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 1, bad, sizeof blk), sigs, &n), splits[i].want);
        CU_ASSERT_EQUAL(n, splits[i].want == SL_OK ? 1u : 0u);
    }
    memcpy(bad, blk, sizeof blk);
    bad[SL_BLOCK_OFF_CHANNEL + 1] = SL_CHANNEL_COUNT;
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 1, bad, sizeof blk), sigs, &n), SL_ERR_HEADER);
    block_bytes(bad, SESSION + 1, 1);
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 1, bad, sizeof blk), sigs, &n), SL_ERR_MISMATCH);
    memcpy(bad, blk, sizeof blk);
    bad[SL_BLOCK_OFF_EPOCH + 7] ^= 1;
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 1, bad, sizeof blk), sigs, &n), SL_ERR_MISMATCH);
    memcpy(bad, bcn, sizeof bcn);
    bad[0] ^= 0xFF;
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BEACON, 1, bad, sizeof bcn), sigs, &n), SL_ERR_MAGIC);
    memcpy(bad, bcn, sizeof bcn);
    bad[SL_BEACON_OFF_KEY_ID] ^= 1;
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BEACON, 1, bad, sizeof bcn), sigs, &n), SL_ERR_MISMATCH);
    memcpy(bad, bcn, sizeof bcn);
    bad[SL_BEACON_OFF_FLAGS] = 1;
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BEACON, 1, bad, sizeof bcn), sigs, &n), SL_ERR_HEADER);
    CU_ASSERT_EQUAL(n, 0);

    /* A batch: every item signed, or none if one is bad. */
    uint8_t three[3 * SL_BLOCK_SIGNED_BYTES];
    for (unsigned i = 0; i < 3; i++)
        block_bytes(three + i * SL_BLOCK_SIGNED_BYTES, SESSION, i);
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 3, three, sizeof three), sigs, &n), SL_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    for (unsigned i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(sl_key_verify(&pub, sigs + i * SL_SIG_BYTES, three + i * SL_BLOCK_SIGNED_BYTES,
                                      SL_BLOCK_SIGNED_BYTES), SL_OK);
    three[2 * SL_BLOCK_SIGNED_BYTES] ^= 0xFF;
    CU_ASSERT_EQUAL(ask(sv[0], req, req_of(req, SL_SIGNER_OP_BLOCK, 3, three, sizeof three), sigs, &n), SL_ERR_MAGIC);
    CU_ASSERT_EQUAL(n, 0);

    close(sv[0]);   /* EOF: the loop ends cleanly */
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(s.result, SL_OK);
    close(sv[1]);
    sl_key_free(k);
}

static char dir[64];

static void key_files(char *sk, char *pk, size_t cap, const struct sl_key_secret *k)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/sl-signer-XXXXXX");
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    }
    snprintf(sk, cap, "%s/sluice.key", dir);
    snprintf(pk, cap, "%s/sluice.pub", dir);
    CU_ASSERT_EQUAL_FATAL(sl_keyfile_save(sk, pk, k, true), SL_OK);
}

static bool comm_is(pid_t pid, const char *want)
{
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(comm, sizeof comm, f) && strncmp(comm, want, strlen(want)) == 0;
    fclose(f);
    return ok;
}

SL_TEST(signer, process_signs_blocks_and_beacons_then_dies_loudly)
{
    struct sl_key_secret *k = test_key();
    struct sl_key_public pub;
    sl_key_public_of(&pub, k);
    char sk[128], pk[128];
    key_files(sk, pk, sizeof sk, k);
    struct sl_signer_proc *p = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_signer_spawn(&p, sk, NULL, NULL), SL_OK);
    const struct sl_signer *s = sl_signer_proc_signer(p);
    CU_ASSERT_EQUAL(memcmp(s->pub.pk, pub.pk, SL_PK_BYTES), 0);
    CU_ASSERT_EQUAL(memcmp(s->pub.id, pub.id, SL_KEY_ID_BYTES), 0);
    CU_ASSERT(comm_is(sl_signer_proc_pid(p), SL_SIGNER_NAME));
    CU_ASSERT_EQUAL(sl_signer_proc_bind(p, SESSION, EPOCH), SL_OK);

    /* A block sealed through the process opens with the public key. */
    enum { S = 256 };
    static uint8_t blk[4 * S];
    struct sl_block_hdr h = { .channel = SL_CHANNEL_FILES, .session = SESSION, .epoch = EPOCH,
                              .block_seq = 4, .tx_time_us = 77 };
    size_t len = 0, padded = 0;
    memset(blk + SL_BLOCK_HDR_BYTES, 0xC3, 500);
    CU_ASSERT_EQUAL_FATAL(sl_block_seal(blk, sizeof blk, &len, &h, blk + SL_BLOCK_HDR_BYTES, 500, s), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_block_pad(&padded, blk, sizeof blk, len, S), SL_OK);
    struct sl_key_set trusted;
    sl_key_set_init(&trusted);
    CU_ASSERT_EQUAL_FATAL(sl_key_set_add(&trusted, &pub), SL_OK);
    struct sl_block_expect x = { .channel = SL_CHANNEL_FILES, .symbol_size = S, .session = SESSION,
                                 .epoch = EPOCH, .block_seq = 4, .k = (uint8_t)(padded / S) };
    memcpy(x.key_id, pub.id, SL_KEY_ID_BYTES);
    const uint8_t *payload;
    size_t plen;
    struct sl_block_hdr got;
    CU_ASSERT_EQUAL(sl_block_open(&payload, &plen, &got, blk, padded, &x, &trusted), SL_OK);
    CU_ASSERT_EQUAL(plen, 500);

    /* A beacon too. */
    uint8_t dg[SL_BEACON_BYTES];
    struct sl_beacon b = { .session = SESSION, .epoch = EPOCH, .beacon_seq = 1, .symbol_size = S, .k = 4,
                           .m = 2, .interleave = 1 }, back;
    CU_ASSERT_EQUAL(sl_datagram_beacon_encode(dg, sizeof dg, &b, s), SL_OK);
    CU_ASSERT_EQUAL(sl_datagram_beacon_open(&back, dg, sizeof dg, &trusted), SL_OK);
    /* Another session's block is refused: nothing signed. */
    h.session = SESSION + 1;
    CU_ASSERT_EQUAL(sl_block_seal(blk, sizeof blk, &len, &h, blk + SL_BLOCK_HDR_BYTES, 500, s), SL_ERR_MISMATCH);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_FALSE(sl_signer_proc_dead(p));

    /* kill -9: the next signature fails, and every one after it. */
    CU_ASSERT_EQUAL(kill(sl_signer_proc_pid(p), SIGKILL), 0);
    h.session = SESSION;
    CU_ASSERT_EQUAL(sl_block_seal(blk, sizeof blk, &len, &h, blk + SL_BLOCK_HDR_BYTES, 500, s), SL_ERR_IO);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT(sl_signer_proc_dead(p));
    CU_ASSERT_EQUAL(sl_datagram_beacon_encode(dg, sizeof dg, &b, s), SL_ERR_IO);
    sl_signer_proc_stop(p);
    sl_key_free(k);
}

SL_TEST(signer, hang_up_seen_without_a_request)
{
    struct sl_key_secret *k = test_key();
    char sk[128], pk[128];
    key_files(sk, pk, sizeof sk, k);
    struct sl_signer_proc *p = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_signer_spawn(&p, sk, NULL, NULL), SL_OK);
    sl_signer_proc_check(p);
    CU_ASSERT_FALSE(sl_signer_proc_dead(p));
    CU_ASSERT_EQUAL(kill(sl_signer_proc_pid(p), SIGKILL), 0);
    for (int i = 0; i < 200 && !sl_signer_proc_dead(p); i++) {
        usleep(5000);
        sl_signer_proc_check(p);
    }
    CU_ASSERT(sl_signer_proc_dead(p));
    sl_signer_proc_stop(p);
    sl_key_free(k);
}

SL_TEST(signer, key_problems_come_back_from_the_child)
{
    struct sl_key_secret *k = test_key();
    char sk[128], pk[128];
    key_files(sk, pk, sizeof sk, k);
    chmod(sk, 0640);
    struct sl_signer_proc *p = (struct sl_signer_proc *)1;
    CU_ASSERT_EQUAL(sl_signer_spawn(&p, sk, NULL, NULL), SL_ERR_PERM);
    CU_ASSERT_PTR_NULL(p);
    unlink(sk);
    CU_ASSERT_EQUAL(sl_signer_spawn(&p, sk, NULL, NULL), SL_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(p);
    unlink(pk);
    rmdir(dir);
    sl_key_free(k);
}
