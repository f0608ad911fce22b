/* The TX change journal on a damaged segment: the input becomes the blocks
 * of the newest segment (after a valid header), with each block's CRC and
 * first seq fixed up as far as its length field allows, so that the record
 * decoder is reached rather than stopped by the CRC. Then the journal is
 * opened, read every way, appended to, closed and opened again. Never a
 * crash or a leak, every record read is consistent, and the seq is never
 * handed out twice across the reopen. Files live in one directory on tmpfs
 * (when there is one), emptied for every input and removed at exit. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_crc.h"
#include "sl_journal.h"

#define SEG_HDR 32u
#define BLK_HDR 44u
#define INPUT_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void empty_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            unlinkat(dirfd(d), de->d_name, 0);
    if (d)
        closedir(d);
}

static void remove_dir(void)
{
    empty_dir();
    rmdir(dir);
}

/* Header for first seq 1, then the input with block CRCs and seq chain set. */
static void write_segment(const uint8_t *data, size_t size)
{
    uint8_t *f = malloc(SEG_HDR + size);
    if (!f)
        abort();
    memset(f, 0, SEG_HDR);
    memcpy(f, "SLJN", 4);
    f[4] = 1;
    f[6] = SEG_HDR;
    f[16] = 1;
    sl_le32_put(f + 28, sl_crc_compute(f, 28));
    if (size)
        memcpy(f + SEG_HDR, data, size);
    uint64_t seq = 1;
    for (size_t off = SEG_HDR; SEG_HDR + size - off >= BLK_HDR;) {
        uint8_t *b = f + off;
        uint32_t len = sl_le32_get(b);
        if (len < BLK_HDR - 8 || len > SEG_HDR + size - off - 8)
            break;
        sl_le64_put(b + 8, seq);
        seq = sl_le64_get(b + 16);
        sl_le32_put(b + 4, sl_crc_compute(b + 8, len));
        off += 8u + len;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/00000000000000000001.jnl", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, f, SEG_HDR + size) != (ssize_t)(SEG_HDR + size))
        abort();
    close(fd);
    free(f);
}

/* Reads everything both ways; aborts on an inconsistent record. */
static void read_all(struct sl_journal *j)
{
    struct sl_journal_iter *it = NULL;
    if (sl_journal_iter_new(&it, j) != SL_OK)
        abort();
    struct sl_journal_rec r;
    uint64_t next = 0;
    if (sl_journal_iter_from_seq(it, 0) != SL_OK)
        abort();
    while (sl_journal_iter_next(it, &r, NULL) == SL_OK) {
        if (r.count == 0 || r.seq < next || r.type > 15 || r.kind > SL_JOURNAL_GAP ||
            (r.kind == SL_JOURNAL_VALUE && r.count != 1))
            abort();
        next = r.seq + r.count;
    }
    if (sl_journal_iter_newest(it, 1000) != SL_OK)
        abort();
    while (sl_journal_iter_next(it, &r, NULL) == SL_OK)
        if (r.kind == SL_JOURNAL_VALUE && r.source_time_us < 1000)
            abort();
    struct sl_journal_rec out[8];
    size_t n = 0;
    sl_err e = sl_journal_tag_read(it, 0, 0, UINT64_MAX, out, 8, &n);
    if ((e != SL_OK && e != SL_ERR_OVERFLOW) || n > 8)
        abort();
    for (size_t i = 1; i < n; i++)
        if (out[i - 1].source_time_us > out[i].source_time_us)
            abort();
    sl_journal_iter_free(it);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > INPUT_MAX)
        return 0;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/sl-fuzz-journal-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(dir))
            abort();
        atexit(remove_dir);
    }
    empty_dir();
    write_segment(data, size);
    struct sl_journal_config cfg = { .dir = dir, .max_bytes = 1u << 20, .no_sync = true,
                                     .seq_reserve = 1000, .buffer_bytes = 64u << 10 };
    struct sl_journal *j = NULL;
    if (sl_journal_open(&j, &cfg) != SL_OK)
        return 0;
    read_all(j);
    uint64_t seq = 0;
    if (sl_journal_append(j, 1, 5000, 7, 5, 0, &seq) != SL_OK)
        abort();
    if (sl_journal_flush(j) != SL_OK)
        abort();                        /* tmpfs has room: a flush never fails here */
    read_all(j);
    sl_journal_close(j);
    sl_err e = sl_journal_open(&j, &cfg);
    if (e == SL_ERR_RANGE)
        return 0;                       /* the file claimed seqs near 2^62 */
    if (e != SL_OK)
        abort();
    struct sl_journal_stats st;
    sl_journal_stats(j, &st);
    if (st.next_seq <= seq)
        abort();                        /* a seq handed out twice */
    read_all(j);
    sl_journal_close(j);
    return 0;
}
