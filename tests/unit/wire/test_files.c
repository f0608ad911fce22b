/* The file channel end to end through a pcap file: sl_filesend -> sl_sender
 * -> capture -> sl_receiver -> sl_filerecv. A file appears whole and
 * verified or not at all; names are sanitised; an existing name is never
 * overwritten; damaged or inconsistent files are discarded and counted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_filerecv.h"
#include "sl_filesend.h"
#include "sl_fmsg.h"
#include "sl_hw.h"
#include "sl_msg.h"
#include "sl_receiver.h"
#include "sl_sender.h"
#include "sl_spool.h"
#include "sl_test.h"
#include "sl_wire.h"

#define K 16u
#define M 4u
#define S 512u

static struct sl_key_secret *key_of(uint8_t fill)
{
    uint8_t seed[SL_KEY_SEED_BYTES];
    memset(seed, fill, sizeof seed);
    struct sl_key_secret *k = NULL;
    CU_ASSERT_FATAL(sl_key_from_seed(&k, seed) == SL_OK);
    return k;
}

static void write_file(const char *path, size_t len, unsigned seed)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    unsigned x = seed;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        fputc((int)(x >> 16) & 0xff, f);
    }
    fclose(f);
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb)
            same = 0;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

static unsigned count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    unsigned n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* Sends files[] into a capture at cap_path. */
static void send_files(const char *cap_path, const struct sl_key_secret *key, const char *const *files, size_t n)
{
    struct sl_hw_config hc;
    sl_hw_config_init(&hc);
    hc.transport = SL_HW_PCAPFILE;
    hc.dir = SL_HW_TX;
    hc.datagram_bytes = SL_FRAME_OVERHEAD + S;
    hc.file = cap_path;
    struct sl_hw *hw = NULL;
    char why[256] = "";
    CU_ASSERT_FATAL(sl_hw_open(&hw, why, sizeof why, &hc) == SL_OK);
    struct sl_sender_config sc = { .k = K, .m = M, .interleave = 4, .symbol_size = S, .max_delay_us = 1000,
                                   .session = 99, .epoch = 1, .signer = sl_key_signer(key), .hw = hw };
    struct sl_sender *snd = NULL;
    CU_ASSERT_FATAL(sl_sender_create(&snd, &sc) == SL_OK);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_FATAL(sl_filesend_file(snd, files[i], (uint32_t)(i + 1), NULL, NULL) == SL_OK);
    CU_ASSERT_FATAL(sl_sender_flush(snd) == SL_OK);
    sl_sender_destroy(snd);
    sl_hw_close(hw);
}

struct ctx {
    struct sl_filerecv *fr;
    unsigned logs_ok, logs_bad;
};

static void on_payload(void *c, const struct sl_block_hdr *h, const uint8_t *key_id, const uint8_t *payload,
                       size_t len, uint64_t now_us)
{
    (void)key_id;
    struct ctx *x = c;
    if (h->channel == SL_CHANNEL_FILES)
        sl_filerecv_payload(x->fr, h->session, payload, len, now_us);
}

static void on_log(void *c, int ok, const char *line)
{
    struct ctx *x = c;
    (void)line;
    if (ok)
        x->logs_ok++;
    else
        x->logs_bad++;
}

/* Replays cap_path into dir; drop_every > 0 deletes every drop_every-th
 * data frame of the capture first (by rewriting it). */
static void receive(const char *cap_path, const char *dir, const struct sl_key_secret *key, struct ctx *x,
                    struct sl_filerecv_stats *st)
{
    struct sl_key_set trusted;
    sl_key_set_init(&trusted);
    struct sl_key_public pub;
    sl_key_public_of(&pub, key);
    CU_ASSERT_FATAL(sl_key_set_add(&trusted, &pub) == SL_OK);
    static struct sl_replay rp;
    sl_replay_init(&rp);

    struct sl_filerecv_config fc = { .directory = dir, .slots = 4, .max_bytes = 0,
                                     .idle_timeout_us = 1000000, .log = on_log, .ctx = x };
    CU_ASSERT_FATAL(sl_filerecv_create(&x->fr, &fc) == SL_OK);

    struct sl_hw_config hc;
    sl_hw_config_init(&hc);
    hc.transport = SL_HW_PCAPFILE;
    hc.dir = SL_HW_RX;
    hc.datagram_bytes = SL_FRAME_OVERHEAD + S;
    hc.file = cap_path;
    hc.port = 0;
    struct sl_hw *hw = NULL;
    char why[256] = "";
    CU_ASSERT_FATAL(sl_hw_open(&hw, why, sizeof why, &hc) == SL_OK);
    struct sl_receiver_config rc = {
        .hw = hw, .trusted = &trusted, .replay = &rp,
        .fec = { .k_max = K, .m_max = M, .symbol_max = S, .entries = 16, .done_history = 256,
                 .cache_entries = 16, .max_age_us = 5000000 },
        .batch = 32, .datagram_max = SL_FRAME_OVERHEAD + S, .on_payload = on_payload, .ctx = x,
    };
    struct sl_receiver *r = NULL;
    CU_ASSERT_FATAL(sl_receiver_create(&r, &rc) == SL_OK);
    sl_err e;
    unsigned polls = 0;
    while ((e = sl_receiver_poll(r, 10, 1000)) == SL_OK || e == SL_ERR_AGAIN)
        CU_ASSERT_FATAL(++polls < 1000000);
    CU_ASSERT_EQUAL(e, SL_ERR_EOF);
    sl_filerecv_tick(x->fr, 10000000);      /* idle files expire */
    sl_filerecv_stats(x->fr, st);
    sl_filerecv_destroy(x->fr);
    sl_receiver_destroy(r);
    sl_hw_close(hw);
}

static void drop_frames(const char *cap_path, unsigned from, unsigned count)
{
    /* Deletes `count` consecutive records starting at record `from`. */
    FILE *f = fopen(cap_path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    CU_ASSERT_FATAL(buf && fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    f = fopen(cap_path, "wb");
    fwrite(buf, 1, 24, f);
    unsigned rec = 0;
    for (size_t off = 24; off + 16 <= (size_t)n; rec++) {
        uint32_t incl = (uint32_t)buf[off + 8] | (uint32_t)buf[off + 9] << 8 | (uint32_t)buf[off + 10] << 16 |
                        (uint32_t)buf[off + 11] << 24;
        if (rec < from || rec >= from + count)
            fwrite(buf + off, 1, 16 + incl, f);
        off += 16 + incl;
    }
    fclose(f);
    free(buf);
}

SL_TEST(files, whole_verified_sanitised_never_overwritten)
{
    char tmp[] = "/tmp/sl_files_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(tmp) != NULL);
    char src_dir[300], dst_dir[300], cap[300], a[320], b[320], empty[320], out[400];
    snprintf(src_dir, sizeof src_dir, "%s/src", tmp);
    snprintf(dst_dir, sizeof dst_dir, "%s/dst", tmp);
    snprintf(cap, sizeof cap, "%s/cap.pcap", tmp);
    mkdir(src_dir, 0700);
    mkdir(dst_dir, 0700);
    snprintf(a, sizeof a, "%s/data.bin", src_dir);
    snprintf(b, sizeof b, "%s/..hidden", src_dir);
    snprintf(empty, sizeof empty, "%s/empty", src_dir);
    write_file(a, 300000, 1);     /* many blocks, out-of-order completion */
    write_file(b, 1000, 2);
    write_file(empty, 0, 3);
    struct sl_key_secret *key = key_of(7);
    const char *files[] = { a, b, empty };
    send_files(cap, key, files, 3);

    struct ctx x = { 0 };
    struct sl_filerecv_stats st;
    receive(cap, dst_dir, key, &x, &st);
    CU_ASSERT_EQUAL(st.files_ok, 3);
    CU_ASSERT_EQUAL(st.files_failed, 0);
    CU_ASSERT_EQUAL(st.in_progress, 0);
    snprintf(out, sizeof out, "%s/data.bin", dst_dir);
    CU_ASSERT(same_file(a, out));
    snprintf(out, sizeof out, "%s/_..hidden", dst_dir);   /* leading dot neutralised */
    CU_ASSERT(same_file(b, out));
    snprintf(out, sizeof out, "%s/empty", dst_dir);
    CU_ASSERT(same_file(empty, out));
    CU_ASSERT_EQUAL(count_entries(dst_dir), 3);

    /* Same files again (new receiver state): published as name.1, never over. */
    struct ctx y = { 0 };
    receive(cap, dst_dir, key, &y, &st);
    CU_ASSERT_EQUAL(st.files_ok, 3);
    CU_ASSERT_EQUAL(st.files_renamed, 3);
    snprintf(out, sizeof out, "%s/data.bin.1", dst_dir);
    CU_ASSERT(same_file(a, out));
    CU_ASSERT_EQUAL(count_entries(dst_dir), 6);

    /* Lose 40 consecutive frames (beyond m for some block, no interleave
     * covers that): the file is refused, nothing partial is visible. */
    char dst2[300];
    snprintf(dst2, sizeof dst2, "%s/dst2", tmp);
    mkdir(dst2, 0700);
    drop_frames(cap, 100, 40);
    struct ctx z = { 0 };
    receive(cap, dst2, key, &z, &st);
    CU_ASSERT_EQUAL(st.files_failed, 1);
    CU_ASSERT_EQUAL(st.failed_incomplete, 1);
    CU_ASSERT_EQUAL(st.files_ok, 2);               /* the two small files still arrive */
    CU_ASSERT(z.logs_bad >= 1);
    snprintf(out, sizeof out, "%s/data.bin", dst2);
    CU_ASSERT_EQUAL(access(out, F_OK), -1);
    CU_ASSERT_EQUAL(count_entries(dst2), 2);       /* no temporary left behind */

    sl_key_free(key);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static void log_sink(void *c, int ok, const char *line)
{
    (void)c;
    (void)ok;
    (void)line;
}

SL_TEST(files, bad_hash_and_inconsistent_sizes_discarded)
{
    char tmp[] = "/tmp/sl_files_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(tmp) != NULL);
    struct sl_filerecv *fr = NULL;
    struct sl_filerecv_config fc = { .directory = tmp, .slots = 2, .max_bytes = 100, .idle_timeout_us = 10,
                                     .log = log_sink };
    CU_ASSERT_FATAL(sl_filerecv_create(&fr, &fc) == SL_OK);
    uint8_t p[512];
    size_t off = 0;
    uint8_t *d;
    uint8_t zero_hash[SL_FILE_SHA256_BYTES] = { 0 };
    /* Wrong hash. */
    CU_ASSERT(sl_fmsg_put_begin(p, sizeof p, &off, 1, 4, "x") == SL_OK);
    CU_ASSERT(sl_fmsg_put_data(p, sizeof p, &off, &d, 1, 0, 4) == SL_OK);
    memcpy(d, "abcd", 4);
    CU_ASSERT(sl_fmsg_put_end(p, sizeof p, &off, 1, 4, zero_hash, "x") == SL_OK);
    sl_filerecv_payload(fr, 5, p, off, 1);
    /* Sizes disagree. */
    off = 0;
    CU_ASSERT(sl_fmsg_put_begin(p, sizeof p, &off, 2, 4, "y") == SL_OK);
    CU_ASSERT(sl_fmsg_put_end(p, sizeof p, &off, 2, 5, zero_hash, "y") == SL_OK);
    sl_filerecv_payload(fr, 5, p, off, 1);
    /* Too big for max_bytes. */
    off = 0;
    CU_ASSERT(sl_fmsg_put_begin(p, sizeof p, &off, 3, 101, "z") == SL_OK);
    sl_filerecv_payload(fr, 5, p, off, 1);
    /* Data beyond the size. */
    off = 0;
    CU_ASSERT(sl_fmsg_put_begin(p, sizeof p, &off, 4, 2, "w") == SL_OK);
    CU_ASSERT(sl_fmsg_put_data(p, sizeof p, &off, &d, 4, 1, 4) == SL_OK);
    memset(d, 1, 4);
    sl_filerecv_payload(fr, 5, p, off, 1);
    /* Garbage framing. */
    uint8_t junk[7] = { 17, 0, 0, 200, 1, 2, 3 };
    sl_filerecv_payload(fr, 5, junk, sizeof junk, 1);
    /* Begun, never finished: idle timeout. */
    off = 0;
    CU_ASSERT(sl_fmsg_put_begin(p, sizeof p, &off, 6, 10, "v") == SL_OK);
    sl_filerecv_payload(fr, 5, p, off, 1);
    sl_filerecv_tick(fr, 1000);

    struct sl_filerecv_stats st;
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 0);
    CU_ASSERT_EQUAL(st.failed_hash, 1);
    CU_ASSERT_EQUAL(st.failed_invalid, 3);
    CU_ASSERT_EQUAL(st.failed_incomplete, 1);
    CU_ASSERT_EQUAL(st.messages_bad, 1);
    CU_ASSERT_EQUAL(st.in_progress, 0);
    CU_ASSERT_EQUAL(count_entries(tmp), 0);
    sl_filerecv_destroy(fr);
    rmdir(tmp);
}

SL_TEST(files, sanitize)
{
    char out[SL_FILE_NAME_MAX + 2];
    sl_filerecv_sanitize(out, sizeof out, "../../etc/passwd");
    CU_ASSERT_STRING_EQUAL(out, "_.._.._etc_passwd");
    sl_filerecv_sanitize(out, sizeof out, "..");
    CU_ASSERT_STRING_EQUAL(out, "_..");
    sl_filerecv_sanitize(out, sizeof out, "a\x01\x7f\\b");
    CU_ASSERT_STRING_EQUAL(out, "a___b");
    sl_filerecv_sanitize(out, sizeof out, "report.csv");
    CU_ASSERT_STRING_EQUAL(out, "report.csv");
}

SL_TEST(fmsg, roundtrip_and_rejections)
{
    uint8_t p[600];
    size_t off = 0;
    uint8_t h[SL_FILE_SHA256_BYTES];
    memset(h, 0xab, sizeof h);
    CU_ASSERT(sl_fmsg_put_begin(p, sizeof p, &off, 9, 12345, "n.txt") == SL_OK);
    CU_ASSERT(sl_fmsg_put_end(p, sizeof p, &off, 9, 12345, h, "n.txt") == SL_OK);
    uint8_t *d;
    CU_ASSERT(sl_fmsg_put_data(p, sizeof p, &off, &d, 9, 77, 3) == SL_OK);
    memcpy(d, "xyz", 3);
    CU_ASSERT_EQUAL(off, 4 + 13 + 5 + 4 + 45 + 5 + 4 + 12 + 3);

    struct sl_buf b = sl_buf_make(p, off);
    uint8_t type;
    const uint8_t *body;
    size_t blen;
    struct sl_fmsg m;
    CU_ASSERT(sl_msg_split(&b, &type, &body, &blen) == SL_OK);
    CU_ASSERT(sl_fmsg_decode(&m, type, body, blen) == SL_OK);
    CU_ASSERT_EQUAL(m.type, SL_MSG_FILE_BEGIN);
    CU_ASSERT_EQUAL(m.size, 12345);
    CU_ASSERT_STRING_EQUAL(m.name, "n.txt");
    /* every truncation of the BEGIN body fails */
    for (size_t n = 0; n < blen; n++)
        CU_ASSERT(sl_fmsg_decode(&m, type, body, n) != SL_OK);
    CU_ASSERT(sl_msg_split(&b, &type, &body, &blen) == SL_OK);
    CU_ASSERT(sl_fmsg_decode(&m, type, body, blen) == SL_OK);
    CU_ASSERT_EQUAL(memcmp(m.sha256, h, sizeof h), 0);
    for (size_t n = 0; n < blen; n++)
        CU_ASSERT(sl_fmsg_decode(&m, type, body, n) != SL_OK);
    CU_ASSERT(sl_msg_split(&b, &type, &body, &blen) == SL_OK);
    CU_ASSERT(sl_fmsg_decode(&m, type, body, blen) == SL_OK);
    CU_ASSERT_EQUAL(m.offset, 77);
    CU_ASSERT_EQUAL(m.data_len, 3);
    CU_ASSERT_EQUAL(memcmp(m.data, "xyz", 3), 0);
    CU_ASSERT_EQUAL(sl_fmsg_decode(&m, type, body, 12), SL_ERR_LENGTH);   /* no data */
    CU_ASSERT_EQUAL(sl_buf_end(&b), SL_OK);
    CU_ASSERT_EQUAL(sl_fmsg_decode(&m, 99, body, blen), SL_ERR_TYPE);

    /* capacity: nothing written when it does not fit */
    off = 0;
    CU_ASSERT_EQUAL(sl_fmsg_put_begin(p, 10, &off, 1, 1, "abc"), SL_ERR_CAPACITY);
    CU_ASSERT_EQUAL(off, 0);
    CU_ASSERT_EQUAL(sl_fmsg_put_begin(p, sizeof p, &off, 1, 1, ""), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_fmsg_put_data(p, 20, &off, &d, 1, 0, 5), SL_ERR_CAPACITY);
    CU_ASSERT_EQUAL(sl_fmsg_put_data(p, 21, &off, &d, 1, 0, 5), SL_OK);
    CU_ASSERT_EQUAL(sl_fmsg_data_room(16), 0);
    CU_ASSERT_EQUAL(sl_fmsg_data_room(100000), 65535 - 12);
    /* a name with NUL inside is refused by the decoder */
    uint8_t bad[4 + 8 + 1 + 2] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 'a', 0 };
    CU_ASSERT_EQUAL(sl_fmsg_decode(&m, SL_MSG_FILE_BEGIN, bad, sizeof bad), SL_ERR_RANGE);
}

/* ---- links, quota and versions ----------------------------------- */

/* One whole file as one payload: BEGIN, DATA, END with the right SHA-256. */
static size_t whole_file(uint8_t *p, size_t cap, uint32_t id, const char *name, const uint8_t *data, size_t len)
{
    size_t off = 0;
    uint8_t *d;
    uint8_t h[SL_FILE_SHA256_BYTES];
    unsigned hl = 0;
    CU_ASSERT_FATAL(EVP_Digest(data, len, h, &hl, EVP_sha256(), NULL) == 1);
    CU_ASSERT_FATAL(sl_fmsg_put_begin(p, cap, &off, id, len, name) == SL_OK);
    if (len) {
        CU_ASSERT_FATAL(sl_fmsg_put_data(p, cap, &off, &d, id, 0, len) == SL_OK);
        memcpy(d, data, len);
    }
    CU_ASSERT_FATAL(sl_fmsg_put_end(p, cap, &off, id, len, h, name) == SL_OK);
    return off;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 ? st.st_size : -1;
}

struct logs {
    int bad;
    char last[512];
};

static void log_keep(void *c, int ok, const char *line)
{
    struct logs *l = c;
    if (!ok)
        l->bad++;
    snprintf(l->last, sizeof l->last, "%s", line);
}

SL_TEST(files, temp_never_written_through_a_planted_link)
{
    char tmp[] = "/tmp/sl_files_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(tmp) != NULL);
    char dir[300], victim[300], part[400], out[400];
    snprintf(dir, sizeof dir, "%s/in", tmp);
    snprintf(victim, sizeof victim, "%s/victim", tmp);
    mkdir(dir, 0700);
    write_file(victim, 10, 9);
    struct sl_filerecv *fr = NULL;
    struct logs lg = { 0 };
    struct sl_filerecv_config fc = { .directory = dir, .slots = 2, .log = log_keep, .ctx = &lg };
    CU_ASSERT_FATAL(sl_filerecv_create(&fr, &fc) == SL_OK);
    /* Plant the temporary name the next file (session 5, id 1) will use as
     * a link to a file outside the directory: O_EXCL | O_NOFOLLOW must not
     * write through it (the old O_TRUNC open truncated the victim). */
    snprintf(part, sizeof part, "%s/.sluice-part-%016x-%08x", dir, 5u, 1u);
    CU_ASSERT_FATAL(symlink(victim, part) == 0);
    uint8_t p[512], data[100];
    memset(data, 0xab, sizeof data);
    sl_filerecv_payload(fr, 5, p, whole_file(p, sizeof p, 1, "f", data, sizeof data), 1);
    struct sl_filerecv_stats st;
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT_EQUAL(file_size(victim), 10);       /* untouched */
    snprintf(out, sizeof out, "%s/f", dir);
    CU_ASSERT_EQUAL(file_size(out), 100);
    CU_ASSERT_EQUAL(count_entries(dir), 1);       /* the planted link is gone, not followed */

    /* A hard link to a file elsewhere planted under the next temporary
     * name: O_EXCL refuses to reuse it (the old O_TRUNC open truncated the
     * victim and wrote the received bytes into it). */
    snprintf(part, sizeof part, "%s/.sluice-part-%016x-%08x", dir, 5u, 2u);
    CU_ASSERT_FATAL(link(victim, part) == 0);
    sl_filerecv_payload(fr, 5, p, whole_file(p, sizeof p, 2, "h", data, 30), 1);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 2);
    CU_ASSERT_EQUAL(file_size(victim), 10);
    FILE *vf = fopen(victim, "rb");
    CU_ASSERT_FATAL(vf != NULL);
    CU_ASSERT_NOT_EQUAL(fgetc(vf), 0xab);
    fclose(vf);
    snprintf(out, sizeof out, "%s/h", dir);
    unlink(out);
    sl_filerecv_destroy(fr);

    /* Stale temporaries (a crash) are swept when the receiver starts. */
    snprintf(part, sizeof part, "%s/.sluice-part-0000000000000009-00000009", dir);
    write_file(part, 50, 1);
    CU_ASSERT_FATAL(sl_filerecv_create(&fr, &fc) == SL_OK);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.stale_removed, 1);
    CU_ASSERT_EQUAL(st.dir_bytes, 100);
    CU_ASSERT_EQUAL(access(part, F_OK), -1);

    /* The directory is used through the descriptor opened at start: moving
     * it away and planting a link in its place redirects nothing. */
    char moved[300], elsewhere[300];
    snprintf(moved, sizeof moved, "%s/moved", tmp);
    snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere", tmp);
    mkdir(elsewhere, 0700);
    CU_ASSERT_FATAL(rename(dir, moved) == 0);
    CU_ASSERT_FATAL(symlink(elsewhere, dir) == 0);
    sl_filerecv_payload(fr, 6, p, whole_file(p, sizeof p, 1, "g", data, 20), 2);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT_EQUAL(count_entries(elsewhere), 0);
    snprintf(out, sizeof out, "%s/g", moved);
    CU_ASSERT_EQUAL(file_size(out), 20);
    sl_filerecv_destroy(fr);

    /* A directory that is a symbolic link is refused at start. */
    struct sl_filerecv *fr2 = NULL;
    sl_err e = sl_filerecv_create(&fr2, &fc);
    int err = errno;
    CU_ASSERT_EQUAL(e, SL_ERR_IO);
    CU_ASSERT_EQUAL(err, ELOOP);
    CU_ASSERT_PTR_NULL(fr2);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

SL_TEST(files, quota_counts_directory_and_files_in_progress)
{
    char tmp[] = "/tmp/sl_files_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(tmp) != NULL);
    char old[300];
    snprintf(old, sizeof old, "%s/already-there", tmp);
    write_file(old, 400, 3);                        /* counts against the quota */
    struct sl_filerecv *fr = NULL;
    struct logs lg = { 0 };
    struct sl_filerecv_config fc = { .directory = tmp, .slots = 4, .max_total_bytes = 1000,
                                     .log = log_keep, .ctx = &lg };
    CU_ASSERT_FATAL(sl_filerecv_create(&fr, &fc) == SL_OK);
    uint8_t p[2048], data[700];
    memset(data, 0x5a, sizeof data);
    size_t off = 0;
    /* File 1 begins (500 bytes reserved: 400 + 500 <= 1000) and stays in progress. */
    CU_ASSERT(sl_fmsg_put_begin(p, sizeof p, &off, 1, 500, "a") == SL_OK);
    sl_filerecv_payload(fr, 5, p, off, 1);
    struct sl_filerecv_stats st;
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.in_progress, 1);
    CU_ASSERT_EQUAL(st.reserved_bytes, 500);
    /* File 2 (200 bytes, another TX session: file 1 is not an older
     * attempt of its own to give way) would make 1100: refused, logged, no
     * trace left. */
    sl_filerecv_payload(fr, 6, p, whole_file(p, sizeof p, 2, "b", data, 200), 2);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.failed_quota, 1);
    CU_ASSERT_EQUAL(st.files_ok, 0);
    CU_ASSERT(strstr(lg.last, "max_total_bytes") != NULL);
    /* Its later messages are dropped quietly, not refused (and logged) again. */
    int bad_before = lg.bad;
    uint64_t dropped_before = st.messages_dropped;
    off = 0;
    uint8_t *d;
    CU_ASSERT(sl_fmsg_put_data(p, sizeof p, &off, &d, 2, 0, 10) == SL_OK);
    memset(d, 0, 10);
    sl_filerecv_payload(fr, 6, p, off, 3);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.failed_quota, 1);
    CU_ASSERT_EQUAL(st.messages_dropped, dropped_before + 1);
    CU_ASSERT_EQUAL(lg.bad, bad_before);
    /* Data ahead of its BEGIN reserves up to the highest byte written: a
     * sparse write far out is refused before it touches the disk. */
    off = 0;
    CU_ASSERT(sl_fmsg_put_data(p, sizeof p, &off, &d, 3, 5000, 10) == SL_OK);
    memset(d, 0, 10);
    sl_filerecv_payload(fr, 6, p, off, 4);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.failed_quota, 2);
    /* The consumer takes the old file away: after the rescan period the
     * same 200 bytes fit (400 freed). */
    unlink(old);
    sl_filerecv_payload(fr, 6, p, whole_file(p, sizeof p, 4, "b", data, 200), 4000000);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT_EQUAL(st.dir_bytes, 200);
    CU_ASSERT_EQUAL(st.reserved_bytes, 500);
    CU_ASSERT_EQUAL(count_entries(tmp), 2);        /* b and file 1's temporary */
    sl_filerecv_destroy(fr);

    /* No limit: 0. */
    fc.max_total_bytes = 0;
    CU_ASSERT_FATAL(sl_filerecv_create(&fr, &fc) == SL_OK);
    sl_filerecv_payload(fr, 7, p, whole_file(p, sizeof p, 1, "c", data, 700), 1);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    sl_filerecv_destroy(fr);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

SL_TEST(files, versions_capped_never_overwritten)
{
    char tmp[] = "/tmp/sl_files_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(tmp) != NULL);
    struct sl_filerecv *fr = NULL;
    struct logs lg = { 0 };
    struct sl_filerecv_config fc = { .directory = tmp, .slots = 2, .max_versions = 3,
                                     .log = log_keep, .ctx = &lg };
    CU_ASSERT_FATAL(sl_filerecv_create(&fr, &fc) == SL_OK);
    uint8_t p[512], data[16];
    for (uint32_t i = 1; i <= 5; i++) {
        memset(data, (int)i, sizeof data);
        sl_filerecv_payload(fr, 5, p, whole_file(p, sizeof p, i, "r.csv", data, sizeof data), i);
    }
    struct sl_filerecv_stats st;
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 3);               /* r.csv, r.csv.1, r.csv.2 */
    CU_ASSERT_EQUAL(st.files_renamed, 2);
    CU_ASSERT_EQUAL(st.failed_versions, 2);
    CU_ASSERT(strstr(lg.last, "max_versions") != NULL);
    CU_ASSERT_EQUAL(count_entries(tmp), 3);
    /* The first copy still holds the first file's bytes. */
    char out[400];
    snprintf(out, sizeof out, "%s/r.csv", tmp);
    FILE *f = fopen(out, "rb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(fgetc(f), 1);
    fclose(f);
    snprintf(out, sizeof out, "%s/r.csv.3", tmp);
    CU_ASSERT_EQUAL(access(out, F_OK), -1);
    sl_filerecv_destroy(fr);
    /* Out of range. */
    fc.max_versions = SL_FILERECV_VERSIONS_MAX + 1;
    CU_ASSERT_EQUAL(sl_filerecv_create(&fr, &fc), SL_ERR_RANGE);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* A review finding: the quota must not stat the whole directory
 * on the intake thread. 20,000 one-byte files left by IT consumers: after
 * the one full pass at create, each sl_filerecv_payload / _tick call
 * stats at most 256 entries (the old code stat'ed all 20,000 once a
 * second from inside a payload call), the quota still holds, and files the
 * consumer removed are seen once a pass completes in bounded steps. */
#define MANY_FILES 20000u
#define STEP_BOUND 256u
SL_TEST(files, quota_rescan_bounded_per_call)
{
    char tmp[] = "/tmp/sl_files_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(tmp) != NULL);
    char path[300];
    for (unsigned i = 0; i < MANY_FILES; i++) {
        snprintf(path, sizeof path, "%s/left-%05u", tmp, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        CU_ASSERT_FATAL(fd >= 0);
        CU_ASSERT_FATAL(write(fd, "x", 1) == 1);
        close(fd);
    }
    struct sl_filerecv *fr = NULL;
    struct logs lg = { 0 };
    struct sl_filerecv_config fc = { .directory = tmp, .slots = 4, .max_total_bytes = MANY_FILES + 500,
                                     .log = log_keep, .ctx = &lg };
    CU_ASSERT_FATAL(sl_filerecv_create(&fr, &fc) == SL_OK);
    struct sl_filerecv_stats st;
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.dir_bytes, MANY_FILES);
    CU_ASSERT_EQUAL(st.scan_passes, 1);
    uint64_t seen = st.scan_entries, now = 1000000;
    uint8_t p[2048], data[400];
    memset(data, 0x33, sizeof data);

    /* 400 bytes fit (20,400 <= 20,500) and are added to the total without
     * a scan; the next 400 would pass the quota: refused. Every call, with
     * time moving 1 s between them, stats at most one step. */
    sl_filerecv_payload(fr, 9, p, whole_file(p, sizeof p, 1, "fits", data, sizeof data), now);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT(st.scan_entries - seen <= STEP_BOUND);
    seen = st.scan_entries;
    now += 1000000;
    sl_filerecv_payload(fr, 9, p, whole_file(p, sizeof p, 2, "too-much", data, sizeof data), now);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.failed_quota, 1);
    CU_ASSERT(st.scan_entries - seen <= STEP_BOUND);
    seen = st.scan_entries;

    /* The consumer takes 10,000 files away. Until a pass ends they still
     * count (refused); tick calls 10 ms apart finish a pass in about
     * 20,000 / 256 steps, each within the bound. */
    for (unsigned i = 0; i < MANY_FILES / 2; i++) {
        snprintf(path, sizeof path, "%s/left-%05u", tmp, i);
        CU_ASSERT_FATAL(unlink(path) == 0);
    }
    uint64_t passes = st.scan_passes;
    unsigned calls = 0, over = 0;
    while (st.scan_passes < passes + 2 && calls < 1000) {
        now += 10000;
        sl_filerecv_tick(fr, now);
        calls++;
        sl_filerecv_stats(fr, &st);
        over += st.scan_entries - seen > STEP_BOUND;
        seen = st.scan_entries;
    }
    CU_ASSERT_EQUAL(over, 0);
    CU_ASSERT(calls >= (MANY_FILES / 2) / STEP_BOUND);   /* bounded steps, not one sweep */
    CU_ASSERT(calls < 1000);
    CU_ASSERT_EQUAL(st.dir_bytes, MANY_FILES / 2 + sizeof data);
    /* Now the same 400 bytes fit. */
    now += 10000;
    sl_filerecv_payload(fr, 9, p, whole_file(p, sizeof p, 3, "now-fits", data, sizeof data), now);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 2);
    CU_ASSERT(st.scan_entries - seen <= STEP_BOUND);
    CU_ASSERT_EQUAL(st.dir_bytes, MANY_FILES / 2 + 2 * sizeof data);
    sl_filerecv_destroy(fr);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* ---- copies: one file id sent several times ([files] copies on TX) ------- */

static void sha256_of(const uint8_t *p, size_t n, uint8_t out[SL_FILE_SHA256_BYTES])
{
    unsigned len = 0;
    CU_ASSERT_FATAL(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1);
}

/* One copy of content[0..n) as file id under name, as BEGIN, three DATA
 * thirds and END, each its own payload; skip (0..2) leaves a third out
 * (a block lost beyond FEC), -1 none. */
static void copy_of(struct sl_filerecv *fr, uint32_t id, const char *name, const uint8_t *content, size_t n,
                    int skip)
{
    uint8_t p[2048], h[SL_FILE_SHA256_BYTES], *d;
    size_t off = 0;
    sha256_of(content, n, h);
    CU_ASSERT_FATAL(sl_fmsg_put_begin(p, sizeof p, &off, id, n, name) == SL_OK);
    sl_filerecv_payload(fr, 5, p, off, 1);
    for (int i = 0; i < 3; i++) {
        size_t a = n * (size_t)i / 3, b = n * (size_t)(i + 1) / 3;
        if (i == skip)
            continue;
        off = 0;
        CU_ASSERT_FATAL(sl_fmsg_put_data(p, sizeof p, &off, &d, id, a, b - a) == SL_OK);
        memcpy(d, content + a, b - a);
        sl_filerecv_payload(fr, 5, p, off, 1);
    }
    off = 0;
    CU_ASSERT_FATAL(sl_fmsg_put_end(p, sizeof p, &off, id, n, h, name) == SL_OK);
    sl_filerecv_payload(fr, 5, p, off, 1);
}

/* A first copy missing a third, then complete copies: the second fills the
 * gap (bytes counted once, not "more data than the size"), the file is
 * published once, and the later copies are dropped and counted as
 * duplicates, never written as name.1. A changed file (new id) still
 * becomes name.1; other content under a published id is refused. */
SL_TEST(files, copies_published_once_duplicates_dropped)
{
    char tmp[] = "/tmp/sl_files_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(tmp) != NULL);
    struct sl_filerecv *fr = NULL;
    struct ctx x = { 0 };
    struct sl_filerecv_config fc = { .directory = tmp, .slots = 4, .idle_timeout_us = 1000000, .log = on_log,
                                     .ctx = &x };
    CU_ASSERT_FATAL(sl_filerecv_create(&fr, &fc) == SL_OK);
    uint8_t a[3000], b[3000];
    for (size_t i = 0; i < sizeof a; i++) {
        a[i] = (uint8_t)(i * 7);
        b[i] = (uint8_t)(i * 13 + 1);
    }
    copy_of(fr, 1, "r.csv", a, sizeof a, 1);      /* the middle third lost */
    struct sl_filerecv_stats st;
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 0);
    CU_ASSERT_EQUAL(st.in_progress, 1);
    copy_of(fr, 1, "r.csv", a, sizeof a, -1);     /* completes the first */
    copy_of(fr, 1, "r.csv", a, sizeof a, -1);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT_EQUAL(st.files_failed, 0);
    CU_ASSERT_EQUAL(st.files_renamed, 0);
    CU_ASSERT_EQUAL(st.files_duplicate, 2);       /* the rest of copy 2, all of copy 3 */
    CU_ASSERT_EQUAL(st.in_progress, 0);
    CU_ASSERT_EQUAL(count_entries(tmp), 1);
    char out[300];
    snprintf(out, sizeof out, "%s/r.csv", tmp);
    FILE *f = fopen(out, "rb");
    uint8_t got[sizeof a + 1];
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(fread(got, 1, sizeof got, f), sizeof a);
    fclose(f);
    CU_ASSERT_EQUAL(memcmp(got, a, sizeof a), 0);

    copy_of(fr, 2, "r.csv", b, sizeof b, -1);     /* changed on TX: a new id, a new version */
    copy_of(fr, 1, "r.csv", b, sizeof b, -1);     /* other content under a published id */
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 2);
    CU_ASSERT_EQUAL(st.files_renamed, 1);
    CU_ASSERT_EQUAL(st.files_duplicate, 2);
    CU_ASSERT_EQUAL(st.failed_invalid, 1);
    CU_ASSERT_EQUAL(count_entries(tmp), 2);       /* r.csv, r.csv.1 */
    sl_filerecv_destroy(fr);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* ---- slots and quota: abandoned attempts never cost a newer file ---------- */

/* File id of session: BEGIN (size n) and its first 100 bytes, at now_us;
 * no FILE_END (an attempt TX abandoned). */
static void partial(struct sl_filerecv *fr, uint64_t session, uint32_t id, size_t n, uint64_t now_us)
{
    uint8_t p[512], *d;
    size_t off = 0;
    CU_ASSERT_FATAL(sl_fmsg_put_begin(p, sizeof p, &off, id, n, "live.log") == SL_OK);
    sl_filerecv_payload(fr, session, p, off, now_us);
    off = 0;
    CU_ASSERT_FATAL(sl_fmsg_put_data(p, sizeof p, &off, &d, id, 0, 100) == SL_OK);
    memset(d, 0x5a, 100);
    sl_filerecv_payload(fr, session, p, off, now_us);
}

/* Every slot held by attempts TX abandoned (a file changed while sent goes
 * again under a new id and the old id never ends): a new file id evicts
 * the oldest of its own session rather than being refused (TX would retire
 * it: lost), and that id's late messages are dropped. A file of another
 * session evicts the slot idle longest. */
SL_TEST(files, full_slots_evict_the_oldest_abandoned_attempt)
{
    char tmp[] = "/tmp/sl_files_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(tmp) != NULL);
    struct sl_filerecv *fr = NULL;
    struct logs lg = { 0 };
    struct sl_filerecv_config fc = { .directory = tmp, .slots = 4, .idle_timeout_us = 60000000, .log = log_keep,
                                     .ctx = &lg };
    CU_ASSERT_FATAL(sl_filerecv_create(&fr, &fc) == SL_OK);
    for (uint32_t id = 1; id <= 4; id++)
        partial(fr, 5, id, 3000, 10 + id);
    uint8_t a[3000];
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = (uint8_t)(i * 3);
    copy_of(fr, 5, "other.bin", a, sizeof a, -1);   /* session 5, id 5 */
    struct sl_filerecv_stats st;
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT_EQUAL(st.files_evicted, 1);
    CU_ASSERT_EQUAL(st.in_progress, 3);             /* ids 2, 3, 4 */
    uint64_t dropped = st.messages_dropped;
    partial(fr, 5, 1, 3000, 20);                    /* id 1 evicted: its late messages go */
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.messages_dropped, dropped + 2);
    CU_ASSERT_EQUAL(st.in_progress, 3);
    /* other TX sessions (restarts): the first file takes the free slot,
     * the next evicts the slot idle longest, session 5's id 2 (time 12) */
    partial(fr, 6, 1, 3000, 30);
    partial(fr, 7, 1, 3000, 31);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_evicted, 2);
    CU_ASSERT_EQUAL(st.in_progress, 4);
    CU_ASSERT(strstr(lg.last, "[SL-RX-FILE-EVICTED]") == lg.last && strstr(lg.last, "idle longest") != NULL);
    partial(fr, 5, 2, 3000, 32);                    /* the evicted one */
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.messages_dropped, dropped + 4);
    sl_filerecv_destroy(fr);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* A large file changed while sent: its first attempt reserved its size
 * against max_total_bytes; the attempt under the new id gets that room
 * back instead of being refused by the quota. */
SL_TEST(files, quota_taken_back_from_an_abandoned_attempt)
{
    char tmp[] = "/tmp/sl_files_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(tmp) != NULL);
    struct sl_filerecv *fr = NULL;
    struct sl_filerecv_config fc = { .directory = tmp, .slots = 4, .idle_timeout_us = 60000000,
                                     .max_total_bytes = 5000, .log = log_sink };
    CU_ASSERT_FATAL(sl_filerecv_create(&fr, &fc) == SL_OK);
    partial(fr, 5, 1, 3000, 10);
    uint8_t a[3000];
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = (uint8_t)(i * 5);
    copy_of(fr, 2, "big.bin", a, sizeof a, -1);
    struct sl_filerecv_stats st;
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT_EQUAL(st.failed_quota, 0);
    CU_ASSERT_EQUAL(st.files_evicted, 1);
    CU_ASSERT_EQUAL(st.in_progress, 0);
    sl_filerecv_destroy(fr);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* ---- the TX spool ([files] spool) end to end through a capture ----------- */

struct spool_rig {
    char tmp[32], spool[64], sent[64], dst[64], cap[64];
    struct sl_key_secret *key;
    struct sl_hw *hw;
    struct sl_sender *snd;
    struct sl_spool *sp;
    uint64_t now;
};

static void rig_path(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Directories and a sender writing a capture; the spool comes later
 * (rig_spool), so a test can put files there first. */
static void rig_open(struct spool_rig *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->tmp, sizeof r->tmp, "/tmp/sl_spool_XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(r->tmp) != NULL);
    rig_path(r->spool, sizeof r->spool, r->tmp, "spool");
    rig_path(r->sent, sizeof r->sent, r->tmp, "sent");
    rig_path(r->dst, sizeof r->dst, r->tmp, "dst");
    rig_path(r->cap, sizeof r->cap, r->tmp, "cap.pcap");
    mkdir(r->spool, 0700);
    mkdir(r->sent, 0700);
    mkdir(r->dst, 0700);
    r->key = key_of(9);
    struct sl_hw_config hc;
    sl_hw_config_init(&hc);
    hc.transport = SL_HW_PCAPFILE;
    hc.dir = SL_HW_TX;
    hc.datagram_bytes = SL_FRAME_OVERHEAD + S;
    hc.file = r->cap;
    char why[256] = "";
    CU_ASSERT_FATAL(sl_hw_open(&r->hw, why, sizeof why, &hc) == SL_OK);
    struct sl_sender_config sc = { .k = K, .m = M, .interleave = 4, .symbol_size = S, .max_delay_us = 1000,
                                   .session = 77, .epoch = 1, .signer = sl_key_signer(r->key), .hw = r->hw };
    CU_ASSERT_FATAL(sl_sender_create(&r->snd, &sc) == SL_OK);
    r->now = 1000000;
}

static void rig_spool(struct spool_rig *r, unsigned copies, uint64_t max_bytes)
{
    struct sl_spool_config c = { .spool = r->spool, .sent = r->sent, .copies = copies, .max_bytes = max_bytes,
                                 .rate_mbps = 100, .block_wire_bytes = 20000 };
    CU_ASSERT_FATAL(sl_spool_create(&r->sp, &c) == SL_OK);
}

/* Runs the spool (1 s of clock a turn: the rate never holds it back here)
 * until nothing is waiting; the turns it took. */
static unsigned rig_drain(struct spool_rig *r)
{
    struct sl_spool_stats st;
    unsigned turns = 0;
    do {
        CU_ASSERT_FATAL(++turns < 100000);
        CU_ASSERT(sl_spool_run(r->sp, r->snd, r->now) == SL_OK);
        r->now += 1000000;
        sl_spool_stats(r->sp, &st);
    } while (st.backlog);
    return turns;
}

static void rig_close(struct spool_rig *r, struct sl_filerecv_stats *st)
{
    CU_ASSERT(sl_sender_flush(r->snd) == SL_OK);
    sl_spool_destroy(r->sp);
    sl_sender_destroy(r->snd);
    sl_hw_close(r->hw);
    struct ctx x = { 0 };
    receive(r->cap, r->dst, r->key, &x, st);
    sl_key_free(r->key);
}

static void rig_remove(struct spool_rig *r)
{
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", r->tmp);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* Files present at start and one moved in later arrive once each (copies =
 * 2: RX counts the second copies as duplicates) and move to sent; hidden
 * and temporary names, a symbolic link and a file over max_bytes stay. At
 * most SL_SPOOL_BLOCKS_PER_TURN blocks go per turn. */
SL_TEST(spool, sends_copies_moves_to_sent_skips_the_rest)
{
    struct spool_rig r;
    rig_open(&r);
    char p[128], q[128], out[128];
    const char *names[] = { "old.bin", "new.bin" };
    rig_path(p, sizeof p, r.spool, "old.bin");
    write_file(p, 40000, 11);
    rig_path(p, sizeof p, r.spool, ".hidden");
    write_file(p, 10, 12);
    rig_path(p, sizeof p, r.spool, "w.tmp");
    write_file(p, 10, 13);
    rig_path(p, sizeof p, r.spool, "x.part");
    write_file(p, 10, 13);
    rig_path(p, sizeof p, r.spool, "big.bin");
    write_file(p, 50001, 14);
    rig_path(p, sizeof p, r.spool, "link");
    CU_ASSERT_FATAL(symlink("old.bin", p) == 0);
    rig_spool(&r, 2, 50000);
    unsigned turns = rig_drain(&r);
    /* 40000 bytes are 6 blocks of ~7.7 kB, twice, plus the ends */
    CU_ASSERT(turns >= 14 / SL_SPOOL_BLOCKS_PER_TURN);
    /* written elsewhere, then moved in (IN_MOVED_TO) */
    rig_path(q, sizeof q, r.tmp, "new.bin");
    write_file(q, 20000, 15);
    rig_path(p, sizeof p, r.spool, "new.bin");
    CU_ASSERT_FATAL(rename(q, p) == 0);
    rig_drain(&r);
    struct sl_spool_stats ss;
    sl_spool_stats(r.sp, &ss);
    CU_ASSERT_EQUAL(ss.files_sent, 2);
    CU_ASSERT_EQUAL(ss.copies_sent, 4);
    CU_ASSERT_EQUAL(ss.bytes_sent, 2 * (40000 + 20000));
    CU_ASSERT_EQUAL(ss.skipped_too_big, 1);
    CU_ASSERT_EQUAL(ss.skipped_symlink, 1);
    CU_ASSERT_EQUAL(ss.resent_changed, 0);
    CU_ASSERT_EQUAL(count_entries(r.spool), 5);   /* .hidden w.tmp x.part big.bin link */
    CU_ASSERT_EQUAL(count_entries(r.sent), 2);
    struct sl_filerecv_stats st;
    rig_close(&r, &st);
    CU_ASSERT_EQUAL(st.files_ok, 2);
    CU_ASSERT_EQUAL(st.files_duplicate, 2);
    CU_ASSERT_EQUAL(st.files_failed, 0);
    CU_ASSERT_EQUAL(count_entries(r.dst), 2);
    for (int i = 0; i < 2; i++) {
        rig_path(p, sizeof p, r.sent, names[i]);
        rig_path(out, sizeof out, r.dst, names[i]);
        CU_ASSERT(same_file(p, out));
    }
    rig_remove(&r);
}

/* A file that grows while it is sent gets no FILE_END: it is sent again
 * whole under a new id and RX publishes only the final content (the first
 * attempt expires as incomplete). */
SL_TEST(spool, changed_while_sent_is_resent_whole)
{
    struct spool_rig r;
    rig_open(&r);
    char p[128], out[128];
    rig_path(p, sizeof p, r.spool, "grow.log");
    write_file(p, 60000, 21);
    rig_spool(&r, 1, 1u << 20);
    CU_ASSERT(sl_spool_run(r.sp, r.snd, r.now) == SL_OK);   /* the first blocks */
    r.now += 1000000;
    FILE *f = fopen(p, "ab");
    CU_ASSERT_FATAL(f != NULL);
    fputs("one more line\n", f);
    fclose(f);
    rig_drain(&r);
    struct sl_spool_stats ss;
    sl_spool_stats(r.sp, &ss);
    CU_ASSERT_EQUAL(ss.resent_changed, 1);
    CU_ASSERT_EQUAL(ss.files_sent, 1);
    CU_ASSERT_EQUAL(ss.copies_sent, 1);
    struct sl_filerecv_stats st;
    rig_close(&r, &st);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT_EQUAL(st.failed_incomplete, 1);
    rig_path(p, sizeof p, r.sent, "grow.log");
    rig_path(out, sizeof out, r.dst, "grow.log");
    CU_ASSERT(same_file(p, out));
    CU_ASSERT_EQUAL(count_entries(r.dst), 1);
    rig_remove(&r);
}

/* More refused entries than the queue holds (symbolic links, older than
 * the one regular file): each is refused and logged once, remembered, and
 * left out of later scans, so the regular file is sent and the spool goes
 * idle instead of queueing the same refused names again on every scan. */
SL_TEST(spool, refused_entries_never_starve_a_file)
{
    struct spool_rig r;
    rig_open(&r);
    char p[128], out[128];
    enum { LINKS = SL_SPOOL_QUEUE_MAX + 76 };
    for (unsigned i = 0; i < LINKS; i++) {
        char n[32];
        snprintf(n, sizeof n, "l%u", i);
        rig_path(p, sizeof p, r.spool, n);
        CU_ASSERT_FATAL(symlink("/etc/hostname", p) == 0);
    }
    rig_path(p, sizeof p, r.spool, "data.bin");
    write_file(p, 5000, 41);
    struct timespec later[2] = { { .tv_sec = time(NULL) + 60 }, { .tv_sec = time(NULL) + 60 } };
    CU_ASSERT_FATAL(utimensat(AT_FDCWD, p, later, 0) == 0);   /* the newest: scanned last */
    rig_spool(&r, 1, 1u << 20);
    struct sl_spool_stats ss;
    sl_spool_stats(r.sp, &ss);
    CU_ASSERT_EQUAL(ss.backlog, LINKS + 1);                   /* what the scan had no room for too */
    unsigned turns = 0;
    do {
        CU_ASSERT(sl_spool_run(r.sp, r.snd, r.now) == SL_OK);
        r.now += 200000;
        sl_spool_stats(r.sp, &ss);
    } while (ss.backlog && ++turns < 50);
    CU_ASSERT_EQUAL(ss.backlog, 0);
    CU_ASSERT_EQUAL(ss.files_sent, 1);
    CU_ASSERT_EQUAL(ss.skipped_symlink, LINKS);               /* each once */
    CU_ASSERT(ss.rescans <= 3);
    uint64_t rescans = ss.rescans;
    for (int i = 0; i < 20; i++) {                            /* idle: no more scans, nothing queued */
        CU_ASSERT(sl_spool_run(r.sp, r.snd, r.now) == SL_OK);
        r.now += 200000;
    }
    sl_spool_stats(r.sp, &ss);
    CU_ASSERT_EQUAL(ss.rescans, rescans);
    CU_ASSERT_EQUAL(ss.skipped_symlink, LINKS);
    CU_ASSERT_EQUAL(sl_spool_deadline(r.sp), UINT64_MAX);
    struct sl_filerecv_stats st;
    rig_close(&r, &st);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    rig_path(p, sizeof p, r.sent, "data.bin");
    rig_path(out, sizeof out, r.dst, "data.bin");
    CU_ASSERT(same_file(p, out));
    rig_remove(&r);
}

static void append_line(const char *path)
{
    FILE *f = fopen(path, "ab");
    CU_ASSERT_FATAL(f != NULL);
    fputs("one more line\n", f);
    fclose(f);
}

/* A file appended to in place all the time: its resend waits at the back
 * until it is quiet, so a file moved in behind it goes first; once the
 * writer stops it is sent whole once. */
SL_TEST(spool, a_changing_file_waits_behind_the_others)
{
    struct spool_rig r;
    rig_open(&r);
    char p[128], q[128];
    rig_path(p, sizeof p, r.spool, "live.log");
    write_file(p, 60000, 51);
    rig_spool(&r, 1, 1u << 20);
    CU_ASSERT(sl_spool_run(r.sp, r.snd, r.now) == SL_OK);     /* the first blocks */
    rig_path(q, sizeof q, r.tmp, "other.bin");
    write_file(q, 3000, 52);
    char q2[128];
    rig_path(q2, sizeof q2, r.spool, "other.bin");
    CU_ASSERT_FATAL(rename(q, q2) == 0);
    struct sl_spool_stats ss;
    for (int i = 0; i < 40; i++) {                            /* 100 ms turns, a line each */
        append_line(p);
        r.now += 100000;
        CU_ASSERT(sl_spool_run(r.sp, r.snd, r.now) == SL_OK);
    }
    sl_spool_stats(r.sp, &ss);
    CU_ASSERT_EQUAL(ss.files_sent, 1);                        /* other.bin, while live.log changed */
    CU_ASSERT_EQUAL(ss.resent_changed, 1);                    /* one resend, still waiting */
    rig_path(q, sizeof q, r.sent, "other.bin");
    CU_ASSERT(access(q, F_OK) == 0);
    rig_drain(&r);                                            /* the writer stopped */
    sl_spool_stats(r.sp, &ss);
    CU_ASSERT_EQUAL(ss.files_sent, 2);
    CU_ASSERT_EQUAL(ss.resent_changed, 1);
    struct sl_filerecv_stats st;
    rig_close(&r, &st);
    CU_ASSERT_EQUAL(st.files_ok, 2);
    rig_path(q, sizeof q, r.sent, "live.log");
    rig_path(q2, sizeof q2, r.dst, "live.log");
    CU_ASSERT(same_file(q, q2));
    rig_remove(&r);
}

/* A file that changes during every attempt (and is quiet in between) is
 * sent again at most SL_SPOOL_RESENDS_MAX times, then set aside in the
 * spool: the link is not spent on it forever. */
SL_TEST(spool, resends_bounded)
{
    struct spool_rig r;
    rig_open(&r);
    char p[128];
    rig_path(p, sizeof p, r.spool, "flaky.bin");
    write_file(p, 60000, 61);
    rig_spool(&r, 1, 1u << 20);
    struct sl_spool_stats ss;
    uint64_t bytes = 0;
    for (int i = 0; i < 400; i++) {
        CU_ASSERT(sl_spool_run(r.sp, r.snd, r.now) == SL_OK);
        r.now += 300000;
        sl_spool_stats(r.sp, &ss);
        if (ss.bytes_sent != bytes)                           /* changed while it is sent */
            append_line(p);
        bytes = ss.bytes_sent;
        if (!ss.backlog)
            break;
    }
    CU_ASSERT_EQUAL(ss.backlog, 0);
    CU_ASSERT_EQUAL(ss.resent_changed, SL_SPOOL_RESENDS_MAX);
    CU_ASSERT_EQUAL(ss.skipped_unstable, 1);
    CU_ASSERT_EQUAL(ss.files_sent, 0);
    CU_ASSERT_EQUAL(count_entries(r.spool), 1);               /* left there */
    struct sl_filerecv_stats st;
    rig_close(&r, &st);
    CU_ASSERT_EQUAL(st.files_ok, 0);
    rig_remove(&r);
}

/* A small file crosses in one block: FILE_BEGIN, its data and FILE_END
 * together (FILE_END goes in the last data block when it fits). */
SL_TEST(spool, small_file_one_block)
{
    struct spool_rig r;
    rig_open(&r);
    char p[128];
    rig_path(p, sizeof p, r.spool, "small.csv");
    write_file(p, 1000, 71);
    rig_spool(&r, 1, 1u << 20);
    struct sl_sender_stats a, b;
    sl_sender_stats(r.snd, &a);
    rig_drain(&r);
    sl_sender_stats(r.snd, &b);
    CU_ASSERT_EQUAL(b.blocks_sent[SL_CHANNEL_FILES] - a.blocks_sent[SL_CHANNEL_FILES], 1);
    struct sl_filerecv_stats st;
    rig_close(&r, &st);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    rig_remove(&r);
}

SL_TEST(spool, ignored_names)
{
    CU_ASSERT_TRUE(sl_spool_ignored(".x"));
    CU_ASSERT_TRUE(sl_spool_ignored("a.tmp"));
    CU_ASSERT_TRUE(sl_spool_ignored("a~"));
    CU_ASSERT_TRUE(sl_spool_ignored("a.part"));
    CU_ASSERT_TRUE(sl_spool_ignored("a.swp"));
    CU_ASSERT_TRUE(sl_spool_ignored(""));
    CU_ASSERT_FALSE(sl_spool_ignored("a.csv"));
    CU_ASSERT_FALSE(sl_spool_ignored("tmp"));
    CU_ASSERT_FALSE(sl_spool_ignored("a.tmp.csv"));
}

/* More disjoint pieces than a slot keeps ranges for: the pieces past the
 * limit are dropped (counted), never miscounted, and a later copy that
 * fills the gaps merges the ranges and completes the file. */
SL_TEST(files, gaps_beyond_the_range_table_filled_by_a_later_copy)
{
    char tmp[] = "/tmp/sl_files_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(tmp) != NULL);
    struct sl_filerecv *fr = NULL;
    struct sl_filerecv_config fc = { .directory = tmp, .slots = 2, .idle_timeout_us = 1000000, .log = log_sink };
    CU_ASSERT_FATAL(sl_filerecv_create(&fr, &fc) == SL_OK);
    enum { PIECES = 80, PIECE = 10 };
    uint8_t content[PIECES * PIECE], p[256], h[SL_FILE_SHA256_BYTES], *d;
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = (uint8_t)(i * 31 + 7);
    sha256_of(content, sizeof content, h);
    size_t off = 0;
    CU_ASSERT_FATAL(sl_fmsg_put_begin(p, sizeof p, &off, 3, sizeof content, "g.bin") == SL_OK);
    sl_filerecv_payload(fr, 5, p, off, 1);
    for (int pass = 0; pass < 2; pass++)   /* even pieces, then every piece */
        for (unsigned i = 0; i < PIECES; i += pass ? 1 : 2) {
            off = 0;
            CU_ASSERT_FATAL(sl_fmsg_put_data(p, sizeof p, &off, &d, 3, (uint64_t)i * PIECE, PIECE) == SL_OK);
            memcpy(d, content + i * PIECE, PIECE);
            sl_filerecv_payload(fr, 5, p, off, 1);
        }
    struct sl_filerecv_stats st;
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.messages_dropped, PIECES / 2 - 32);   /* 32 ranges kept of the first pass */
    CU_ASSERT_EQUAL(st.files_ok, 0);                         /* no FILE_END yet */
    off = 0;
    CU_ASSERT_FATAL(sl_fmsg_put_end(p, sizeof p, &off, 3, sizeof content, h, "g.bin") == SL_OK);
    sl_filerecv_payload(fr, 5, p, off, 1);
    sl_filerecv_stats(fr, &st);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    CU_ASSERT_EQUAL(st.files_failed, 0);
    sl_filerecv_destroy(fr);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* The file channel keeps to its rate: a turn before the deadline sends
 * nothing, and a turn sends at most SL_SPOOL_BLOCKS_PER_TURN blocks. */
SL_TEST(spool, paced_to_its_rate)
{
    struct spool_rig r;
    rig_open(&r);
    char p[128];
    rig_path(p, sizeof p, r.spool, "f.bin");
    write_file(p, 200000, 31);   /* ~26 blocks of 7.7 kB */
    rig_spool(&r, 1, 1u << 20);
    struct sl_sender_stats a, b;
    sl_sender_stats(r.snd, &a);
    CU_ASSERT(sl_spool_run(r.sp, r.snd, r.now) == SL_OK);
    sl_sender_stats(r.snd, &b);
    uint64_t blocks = b.blocks_sent[SL_CHANNEL_FILES] - a.blocks_sent[SL_CHANNEL_FILES];
    CU_ASSERT(blocks >= 1 && blocks <= SL_SPOOL_BLOCKS_PER_TURN);
    /* on time: one block, then the next is due one block's wire time
     * later (20000 bytes at 100 Mbit/s: 1600 us) */
    uint64_t due = sl_spool_deadline(r.sp);
    CU_ASSERT(sl_spool_run(r.sp, r.snd, due) == SL_OK);
    sl_sender_stats(r.snd, &a);
    CU_ASSERT_EQUAL(a.blocks_sent[SL_CHANNEL_FILES], b.blocks_sent[SL_CHANNEL_FILES] + 1);
    CU_ASSERT_EQUAL(sl_spool_deadline(r.sp), due + 1600);
    CU_ASSERT(sl_spool_run(r.sp, r.snd, due + 1599) == SL_OK);   /* not yet */
    sl_sender_stats(r.snd, &b);
    CU_ASSERT_EQUAL(b.blocks_sent[SL_CHANNEL_FILES], a.blocks_sent[SL_CHANNEL_FILES]);
    /* late by 10 blocks: catches up at most one turn's worth */
    CU_ASSERT(sl_spool_run(r.sp, r.snd, due + 1600 * 11) == SL_OK);
    sl_sender_stats(r.snd, &a);
    CU_ASSERT_EQUAL(a.blocks_sent[SL_CHANNEL_FILES], b.blocks_sent[SL_CHANNEL_FILES] + SL_SPOOL_BLOCKS_PER_TURN);
    r.now = due + 1600 * 11;
    rig_drain(&r);
    struct sl_filerecv_stats st;
    rig_close(&r, &st);
    CU_ASSERT_EQUAL(st.files_ok, 1);
    rig_remove(&r);
}
