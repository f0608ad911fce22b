/* The TX change journal (sl_journal.h; format in docs/history.md).
 *
 * On disk: segment files <first_seq>.jnl (20 decimal digits, so names sort
 * as numbers), each a 32-byte header then blocks. A block is one unit of
 * the appender's buffer (at most BLOCK_MAX bytes): a 44-byte header with its
 * length, a CRC32C of everything after the CRC, the seq range, the source
 * time range and the record count, then the records. Records are decoded
 * from the block start (seq implicit: the previous one + 1; time a zigzag
 * delta from the previous record), so a block is readable on its own and a
 * damaged block costs at most itself and what follows it in its segment.
 * All integers little-endian (local state, never on the wire). */
#define _GNU_SOURCE
#include "sl_journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_clock.h"
#include "sl_crc.h"
#include "sl_file.h"
#include "sl_hmsg.h"

#define SEG_MAGIC 0x4E4A4C53u       /* "SLJN" little-endian */
#define SEG_VERSION 1u
#define SEG_HDR_BYTES 32u
#define SEG_OFF_MAGIC 0u
#define SEG_OFF_VERSION 4u
#define SEG_OFF_HDR_BYTES 6u
#define SEG_OFF_EPOCH 8u
#define SEG_OFF_FIRST_SEQ 16u
#define SEG_OFF_RESERVED 24u
#define SEG_OFF_CRC 28u              /* CRC32C of bytes 0..27 */
#define SEG_NAME_DIGITS 20u
#define SEG_NAME_BYTES (SEG_NAME_DIGITS + sizeof ".jnl")

#define BLOCK_MAX 65536u             /* a whole block, header included */
#define BLK_OFF_LEN 0u               /* bytes after the CRC field */
#define BLK_OFF_CRC 4u               /* CRC32C of bytes 8 .. 8 + len */
#define BLK_OFF_FIRST_SEQ 8u
#define BLK_OFF_END_SEQ 16u          /* exclusive */
#define BLK_OFF_MIN_TIME 24u
#define BLK_OFF_MAX_TIME 32u
#define BLK_OFF_COUNT 40u
#define BLK_HDR_BYTES 44u
#define BLK_CRC_FROM 8u

/* Record head byte: bits 0-3 type, bit 4 explicit quality (else Good),
 * bit 5 wide value (8 bytes whatever the type), bits 6-7 kind. */
#define REC_TYPE_MASK 0x0Fu
#define REC_QUALITY 0x10u
#define REC_WIDE 0x20u
#define REC_KIND_SHIFT 6u
#define REC_MAX (1u + 5u + SL_VARINT_MAX + 8u + 4u)   /* head, tag, time, value, quality */
#define GAP_MAX (1u + SL_VARINT_MAX)                 /* head, count */

/* Seqs on disk (blocks, names, the mark) above SEQ_MAX are damage. The
 * wire takes seqs below SL_HREC_SEQ_LIMIT (2^62) only, so a journal whose
 * next seq is past SEQ_OPEN_MAX (half of that, 2^61: 36,000 years at 2 M/s)
 * refuses to open: no run can then get from there to the wire's limit, and
 * a seq it hands out is always sendable (append refuses at the limit all
 * the same). Only a damaged or forged journal gets there. */
#define SEQ_MAX (1ull << 63)
#define SEQ_OPEN_MAX (SL_HREC_SEQ_LIMIT / 2)
#define RESERVE_MAX (1ull << 40)

#define MARK_FILE "mark"              /* the seq mark: two fixed slots, rewritten in place */
#define MARK_SLOT_BYTES 32u
#define MARK_BYTES (2u * MARK_SLOT_BYTES)
#define MARK_MAGIC 0x4B4D4C53u       /* "SLMK" little-endian */
#define MARK_OFF_COUNTER 8u
#define MARK_OFF_VALUE 16u
#define MARK_OFF_CRC 24u             /* CRC32C of bytes 0..23 */
#define MARK_OLD_FILE "next_seq"     /* the decimal text mark of earlier versions */
#define MARK_TEXT_MAX 32u
#define ID_FILE "id"
#define ID_TEXT_BYTES 17u            /* 16 hex digits and a newline */
#define SCHEMA_FILE "schema"         /* the tag map's fingerprint the records were made with */

struct seg {
    uint64_t first_seq;
    uint64_t end_seq;                /* exclusive; first_seq when empty */
    uint64_t bytes;                  /* valid part, header included */
    uint64_t min_time, max_time;     /* of its values (UINT64_MAX, 0: none) */
    int64_t clock_off;               /* wall - monotonic µs when last written (at open:
                                      * then), to see a wall-clock step since */
};

/* An append buffer: whole blocks, the last one open while the appender
 * fills it. */
struct jbuf {
    uint8_t *p;
    size_t cap, len;
    size_t blk;                      /* offset of the open block */
    bool open;
};

struct sl_journal {
    /* Fixed at open. */
    uint64_t max_bytes, window_us, segment_bytes, reserve, epoch, schema_fp;
    bool no_sync;
    int dirfd;
    uint64_t id;                     /* journal_id, non-zero */

    /* Appender state, the active buffer and the counters: under lock. */
    pthread_mutex_t lock;
    struct jbuf buf[2];
    unsigned active;                 /* buf[active] is appended to */
    bool pending;                    /* buf[!active] holds unwritten blocks */
    uint64_t next_seq;               /* the next seq handed out */
    uint64_t written_seq;            /* the seq after the last encoded record */
    uint64_t prev_time;              /* delta base of the open block */
    uint64_t blk_min, blk_max, blk_count;
    _Atomic uint64_t reserved;       /* the persisted mark */
    int mark_fd;                     /* MARK_FILE, MARK_BYTES allocated at open */
    uint64_t mark_counter;           /* the newest slot's counter */
    struct sl_journal_stats st;

    /* Flusher state (one flusher thread). */
    size_t pending_off;              /* bytes of the pending buffer written */
    int seg_fd;                      /* the segment being written, or -1 */
    uint64_t seg_off;                /* its size */

    /* The segment index, ascending by first_seq (readers copy it), and
     * its counters: under idx_lock. */
    pthread_mutex_t idx_lock;
    struct seg *segs;
    size_t nseg, segcap;
    uint64_t idx_bytes, idx_trimmed;
    uint64_t st_clock_step_us;       /* the largest forward step trim saw */
};

struct sl_journal_iter {
    struct sl_journal *j;
    uint8_t *blk;                    /* BLOCK_MAX */
    struct seg *segs;                /* the index as it was at the seek */
    size_t nseg, segcap;
    size_t pos;                      /* segments taken so far */
    bool newest_first;
    uint64_t lo_time, hi_time;       /* values outside [lo, hi) are skipped */
    uint64_t from_seq;
    int fd;                          /* current segment, or -1 */
    uint64_t seg_first, off, end;
    bool in_block;
    struct sl_buf rec;               /* the rest of the current block */
    uint64_t seq, prev_time;
    uint64_t blk_end_seq;            /* records past it mean damage */
};

/* Bytes a value of this type takes: the register image's width. */
static unsigned value_width(uint8_t type)
{
    switch (type) {
    case 1: return 1;                /* bool */
    case 2: case 3: return 2;        /* int16, uint16 */
    case 4: case 5: case 7: return 4; /* int32, uint32, float32 */
    default: return 8;
    }
}

static void seg_name(char name[SEG_NAME_BYTES], uint64_t first_seq)
{
    snprintf(name, SEG_NAME_BYTES, "%020" PRIu64 ".jnl", first_seq);
}

/* first_seq from a segment file name; false for any other name. */
static bool seg_parse(const char *name, uint64_t *first_seq)
{
    if (strlen(name) != SEG_NAME_BYTES - 1 || strcmp(name + SEG_NAME_DIGITS, ".jnl") != 0)
        return false;
    uint64_t v = 0;
    for (unsigned i = 0; i < SEG_NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        unsigned d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *first_seq = v;
    return v < SEQ_MAX;
}

static sl_err pread_all(int fd, void *p, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (uint8_t *)p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return SL_ERR_IO;
        if (r == 0)
            return SL_ERR_TRUNCATED;
        got += (size_t)r;
    }
    return SL_OK;
}

static sl_err pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
    size_t put = 0;
    while (put < n) {
        ssize_t r = pwrite(fd, (const uint8_t *)p + put, n - put, (off_t)(off + put));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = ENOSPC;
            return SL_ERR_IO;
        }
        put += (size_t)r;
    }
    return SL_OK;
}

/* A block header as read from a file: checked against the room left in the
 * segment (end - off) and for internal consistency. */
struct blk_info {
    uint32_t len;                    /* bytes after the CRC field */
    uint64_t first_seq, end_seq, min_time, max_time, count;
};

static bool blk_parse(struct blk_info *b, const uint8_t *h, uint64_t off, uint64_t end)
{
    b->len = sl_le32_get(h + BLK_OFF_LEN);
    b->first_seq = sl_le64_get(h + BLK_OFF_FIRST_SEQ);
    b->end_seq = sl_le64_get(h + BLK_OFF_END_SEQ);
    b->min_time = sl_le64_get(h + BLK_OFF_MIN_TIME);
    b->max_time = sl_le64_get(h + BLK_OFF_MAX_TIME);
    b->count = sl_le32_get(h + BLK_OFF_COUNT);
    return b->len >= BLK_HDR_BYTES - BLK_CRC_FROM && b->len <= BLOCK_MAX - BLK_CRC_FROM &&
           off <= end && b->len + (uint64_t)BLK_CRC_FROM <= end - off && b->count > 0 &&
           b->end_seq > b->first_seq && b->end_seq <= SEQ_MAX &&
           b->end_seq - b->first_seq >= b->count &&
           (b->min_time <= b->max_time || (b->min_time == UINT64_MAX && b->max_time == 0));
}

/* Reads and checks the block at off of fd (end: the segment's valid size)
 * into blk (BLOCK_MAX): false when it is short, inconsistent or fails its
 * CRC. */
static bool blk_read(int fd, uint8_t *blk, struct blk_info *b, uint64_t off, uint64_t end)
{
    if (off > end || end - off < BLK_HDR_BYTES || pread_all(fd, blk, BLK_HDR_BYTES, off) != SL_OK ||
        !blk_parse(b, blk, off, end))
        return false;
    size_t total = BLK_CRC_FROM + b->len;
    if (pread_all(fd, blk + BLK_HDR_BYTES, total - BLK_HDR_BYTES, off + BLK_HDR_BYTES) != SL_OK)
        return false;
    return sl_crc_compute(blk + BLK_CRC_FROM, b->len) == sl_le32_get(blk + BLK_OFF_CRC);
}

static bool seg_header_ok(const uint8_t h[SEG_HDR_BYTES], uint64_t first_seq)
{
    return sl_le32_get(h + SEG_OFF_MAGIC) == SEG_MAGIC &&
           (unsigned)(h[SEG_OFF_VERSION] | h[SEG_OFF_VERSION + 1] << 8) == SEG_VERSION &&
           (unsigned)(h[SEG_OFF_HDR_BYTES] | h[SEG_OFF_HDR_BYTES + 1] << 8) == SEG_HDR_BYTES &&
           sl_le64_get(h + SEG_OFF_FIRST_SEQ) == first_seq &&
           sl_crc_compute(h, SEG_OFF_CRC) == sl_le32_get(h + SEG_OFF_CRC);
}

/* ---- The segment index ---- */

static sl_err idx_push(struct sl_journal *j, const struct seg *s)
{
    if (j->nseg == j->segcap) {
        size_t cap = j->segcap ? j->segcap * 2 : 16;
        struct seg *n = realloc(j->segs, cap * sizeof *n);
        if (!n)
            return SL_ERR_NOMEM;
        j->segs = n;
        j->segcap = cap;
    }
    j->segs[j->nseg++] = *s;
    return SL_OK;
}

static void idx_totals(struct sl_journal *j)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < j->nseg; i++)
        bytes += j->segs[i].bytes;
    j->idx_bytes = bytes;
}

/* wall - monotonic now: moves only when the wall clock is stepped (or
 * slewed), so two readings tell how far it stepped between them. */
static int64_t clock_offset(void)
{
    return (int64_t)(sl_clock_wall_us() - sl_clock_mono_us());
}

/* ---- Open: scan, recover, reserve ---- */

static void destroy(struct sl_journal *j);

/* Scans one segment into *s. false: the header is unusable (the caller
 * deletes the file). The valid part ends at the first bad block. */
static bool scan_segment(struct sl_journal *j, const char *name, uint64_t first_seq,
                         struct seg *s, uint64_t *file_size, uint8_t *blk)
{
    int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    uint8_t h[SEG_HDR_BYTES];
    if (fd < 0)
        return false;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)SEG_HDR_BYTES ||
        pread_all(fd, h, sizeof h, 0) != SL_OK || !seg_header_ok(h, first_seq)) {
        close(fd);
        return false;
    }
    *file_size = (uint64_t)st.st_size;
    *s = (struct seg){ first_seq, first_seq, SEG_HDR_BYTES, UINT64_MAX, 0, clock_offset() };
    struct blk_info b;
    while (blk_read(fd, blk, &b, s->bytes, *file_size) && b.first_seq == s->end_seq) {
        s->bytes += BLK_CRC_FROM + b.len;
        s->end_seq = b.end_seq;
        if (b.count && b.min_time <= b.max_time) {
            s->min_time = b.min_time < s->min_time ? b.min_time : s->min_time;
            s->max_time = b.max_time > s->max_time ? b.max_time : s->max_time;
        }
    }
    close(fd);
    return true;
}

static int seq_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The first seqs of every segment file in the directory, sorted. */
static sl_err list_segments(struct sl_journal *j, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int fd = dup(j->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return SL_ERR_IO;
    }
    rewinddir(d);
    size_t cap = 0;
    uint64_t *v = NULL;
    struct dirent *de;
    sl_err e = SL_OK;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        if (!seg_parse(de->d_name, &first))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            uint64_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                e = SL_ERR_NOMEM;
                break;
            }
            v = nv;
        }
        v[(*n)++] = first;
    }
    closedir(d);
    if (e != SL_OK) {
        free(v);
        *n = 0;
        return e;
    }
    if (*n)
        qsort(v, *n, sizeof *v, seq_cmp);
    *out = v;
    return SL_OK;
}

/* The mark of earlier versions (the text file next_seq): SL_OK with *mark
 * (0 when the file is missing); SL_ERR_CONFIG when it exists but is not a
 * decimal number. */
static sl_err mark_read_old(struct sl_journal *j, uint64_t *mark)
{
    *mark = 0;
    int fd = openat(j->dirfd, MARK_OLD_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? SL_OK : SL_ERR_CONFIG;
    char text[MARK_TEXT_MAX + 1];
    size_t len = 0;
    sl_err e = sl_file_read_fd(text, MARK_TEXT_MAX, &len, fd);
    close(fd);
    if (e != SL_OK || len < 2 || text[len - 1] != '\n')
        return SL_ERR_CONFIG;
    uint64_t v = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return SL_ERR_CONFIG;
        unsigned d = (unsigned)(text[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return SL_ERR_CONFIG;
        v = v * 10 + d;
    }
    if (v > SEQ_MAX)
        return SL_ERR_CONFIG;
    *mark = v;
    return SL_OK;
}

/* Opens (creating it with its two slots' blocks allocated: MARK_BYTES
 * written) the mark file, and reads the valid slot with the highest
 * counter: SL_OK with *mark (0: no valid slot, e.g. a new file), else
 * SL_ERR_IO. Later updates rewrite one slot in place (pwrite within the
 * allocated bytes, fdatasync), which needs no free block: the mark moves
 * on a full disk too. */
static sl_err mark_open(struct sl_journal *j, uint64_t *mark)
{
    *mark = 0;
    j->mark_fd = openat(j->dirfd, MARK_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (j->mark_fd < 0)
        return SL_ERR_IO;
    struct stat st;
    if (fstat(j->mark_fd, &st) != 0)
        return SL_ERR_IO;
    uint8_t b[MARK_BYTES] = { 0 };
    if ((uint64_t)st.st_size < MARK_BYTES) {
        /* New (or cut short): both slots zero, allocated and synced, the
         * directory entry too. Needs disk space once, at open. */
        if (pwrite_all(j->mark_fd, b, MARK_BYTES, 0) != SL_OK || fsync(j->mark_fd) != 0 || fsync(j->dirfd) != 0)
            return SL_ERR_IO;
        return SL_OK;
    }
    if (pread_all(j->mark_fd, b, MARK_BYTES, 0) != SL_OK)
        return SL_ERR_IO;
    bool any = false;
    for (unsigned i = 0; i < 2; i++) {
        const uint8_t *p = b + i * MARK_SLOT_BYTES;
        if (sl_le32_get(p) != MARK_MAGIC || sl_crc_compute(p, MARK_OFF_CRC) != sl_le32_get(p + MARK_OFF_CRC))
            continue;   /* never written, or torn: the other slot holds */
        uint64_t c = sl_le64_get(p + MARK_OFF_COUNTER), v = sl_le64_get(p + MARK_OFF_VALUE);
        if (v > SEQ_MAX || (any && c <= j->mark_counter))
            continue;
        any = true;
        j->mark_counter = c;
        *mark = v;
    }
    return SL_OK;
}

/* name in the journal directory replaced by text[0..len) as a whole:
 * a temporary file written and fsync'd, renamed over it, the directory
 * fsync'd. Through dirfd, so it works wherever the directory was opened
 * (sluice-tx opens it before dropping privileges). errno kept. */
static sl_err write_atomic_at(struct sl_journal *j, const char *name, const char *text, size_t len)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, ".%s.tmp", name);
    int fd = openat(j->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return SL_ERR_IO;
    sl_err e = pwrite_all(fd, text, len, 0);
    if (e == SL_OK && fsync(fd) != 0)
        e = SL_ERR_IO;
    if (e != SL_OK) {
        sl_file_close_keep_errno(fd);
        int saved = errno;
        unlinkat(j->dirfd, tmp, 0);
        errno = saved;
        return e;
    }
    if (close(fd) != 0 || renameat(j->dirfd, tmp, j->dirfd, name) != 0) {
        int saved = errno;
        unlinkat(j->dirfd, tmp, 0);
        errno = saved;
        return SL_ERR_IO;
    }
    return fsync(j->dirfd) == 0 ? SL_OK : SL_ERR_IO;
}

/* Persists mark before anyone may be handed a seq at or above the old
 * one: the slot the newest one is not in, rewritten in place and synced
 * (a torn write leaves the other slot valid). errno kept. */
static sl_err mark_write(struct sl_journal *j, uint64_t mark)
{
    uint8_t p[MARK_SLOT_BYTES] = { 0 };
    uint64_t c = j->mark_counter + 1;
    sl_le32_put(p, MARK_MAGIC);
    sl_le64_put(p + MARK_OFF_COUNTER, c);
    sl_le64_put(p + MARK_OFF_VALUE, mark);
    sl_le32_put(p + MARK_OFF_CRC, sl_crc_compute(p, MARK_OFF_CRC));
    sl_err e = pwrite_all(j->mark_fd, p, MARK_SLOT_BYTES, (c % 2) * MARK_SLOT_BYTES);
    if (e == SL_OK && fdatasync(j->mark_fd) != 0)
        e = SL_ERR_IO;
    if (e == SL_OK) {
        j->mark_counter = c;
        atomic_store(&j->reserved, mark);
    }
    return e;
}

/* The journal's id from the file "id" (16 lower-case hex digits and a
 * newline, non-zero): SL_OK with *id, 0 when the file is missing;
 * SL_ERR_CONFIG when it exists but is damaged. */
static sl_err id_read_file(struct sl_journal *j, const char *name, uint64_t *id)
{
    *id = 0;
    int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? SL_OK : SL_ERR_CONFIG;
    char text[ID_TEXT_BYTES + 1];
    size_t len = 0;
    sl_err e = sl_file_read_fd(text, sizeof text, &len, fd);
    close(fd);
    if (e != SL_OK || len != ID_TEXT_BYTES || text[ID_TEXT_BYTES - 1] != '\n')
        return SL_ERR_CONFIG;
    uint64_t v = 0;
    for (size_t i = 0; i + 1 < ID_TEXT_BYTES; i++) {
        char c = text[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a') + 10u;
        else
            return SL_ERR_CONFIG;
        v = v << 4 | d;
    }
    if (v == 0)
        return SL_ERR_CONFIG;
    *id = v;
    return SL_OK;
}

static sl_err id_read(struct sl_journal *j, uint64_t *id)
{
    return id_read_file(j, ID_FILE, id);
}

/* Deletes every segment found at open: their records belong to a journal
 * this one is not (counted in open_discarded_segments). */
static void discard_segments(struct sl_journal *j)
{
    if (j->seg_fd >= 0)
        close(j->seg_fd);
    j->seg_fd = -1;
    j->seg_off = 0;
    for (size_t i = 0; i < j->nseg; i++) {
        char name[SEG_NAME_BYTES];
        seg_name(name, j->segs[i].first_seq);
        unlinkat(j->dirfd, name, 0);
        j->st.open_discarded_segments++;
    }
    j->nseg = 0;
}

/* A 64-bit value as 16 hex digits and a newline in the file name. */
static sl_err hex_write(struct sl_journal *j, const char *name, uint64_t v)
{
    char text[ID_TEXT_BYTES + 1];
    snprintf(text, sizeof text, "%016" PRIx64 "\n", v);
    return write_atomic_at(j, name, text, ID_TEXT_BYTES);
}

/* Keeps the journal's id, or makes a new random one: a new journal, or
 * one whose id file is missing or damaged while segments exist (counted in
 * open_id_renewed), or whose records were made with another tag map than
 * cfg's schema_fp (open_schema_changed). In both cases the segments are
 * deleted: re-sent under a new id, RX would store them a second time (a lost
 * id), or store them under the tags that now have their ids (a new map). The
 * mark is kept, so seqs still go on upwards. */
static sl_err id_load(struct sl_journal *j)
{
    uint64_t id = 0, fp = 0;
    bool schema_ok = true;
    if (j->schema_fp) {
        bool have = id_read_file(j, SCHEMA_FILE, &fp) == SL_OK && fp != 0;
        schema_ok = have ? fp == j->schema_fp : j->nseg == 0;
        if (!schema_ok) {
            j->st.open_schema_changed = true;
            discard_segments(j);
        }
    }
    if (schema_ok && id_read(j, &id) == SL_OK && id != 0) {
        j->id = id;
        return j->schema_fp && fp != j->schema_fp ? hex_write(j, SCHEMA_FILE, j->schema_fp) : SL_OK;
    }
    id = 0;
    if (j->nseg) {
        j->st.open_id_renewed = true;
        discard_segments(j);
    }
    while (id == 0)
        if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
            return SL_ERR_IO;
    /* The id first: a crash before the fingerprint is written makes the
     * next open renew it again, with no segment to lose. */
    sl_err e = hex_write(j, ID_FILE, id);
    if (e == SL_OK)
        j->id = id;
    if (e == SL_OK && j->schema_fp)
        e = hex_write(j, SCHEMA_FILE, j->schema_fp);
    return e;
}

static sl_err config(struct sl_journal *j, const struct sl_journal_config *cfg)
{
    j->max_bytes = cfg->max_bytes ? cfg->max_bytes : SL_JOURNAL_MAX_BYTES_DEFAULT;
    uint64_t window_s = cfg->window_s ? cfg->window_s : SL_JOURNAL_WINDOW_S_DEFAULT;
    if (j->max_bytes < 4ull * SL_JOURNAL_SEGMENT_MIN || window_s > UINT64_MAX / 1000000u)
        return SL_ERR_RANGE;
    j->window_us = window_s * 1000000u;
    uint64_t seg = cfg->segment_bytes ? cfg->segment_bytes : j->max_bytes / 16;
    if (seg > j->max_bytes / 4)
        seg = j->max_bytes / 4;
    if (seg < SL_JOURNAL_SEGMENT_MIN)
        seg = SL_JOURNAL_SEGMENT_MIN;
    if (seg > SL_JOURNAL_SEGMENT_MAX)
        seg = SL_JOURNAL_SEGMENT_MAX;
    j->segment_bytes = seg;
    j->reserve = cfg->seq_reserve ? cfg->seq_reserve : SL_JOURNAL_RESERVE_DEFAULT;
    if (j->reserve > RESERVE_MAX)
        return SL_ERR_RANGE;
    j->epoch = cfg->epoch;
    j->schema_fp = cfg->schema_fp;
    j->no_sync = cfg->no_sync;
    size_t bufb = cfg->buffer_bytes ? cfg->buffer_bytes : SL_JOURNAL_BUFFER_DEFAULT;
    if (bufb < BLOCK_MAX)
        bufb = BLOCK_MAX;
    for (unsigned i = 0; i < 2; i++) {
        j->buf[i].p = malloc(bufb);
        if (!j->buf[i].p)
            return SL_ERR_NOMEM;
        j->buf[i].cap = bufb;
    }
    return SL_OK;
}

/* Builds the index from the files, deleting segments with a bad header and
 * truncating the newest one's torn tail; opens the newest for appending
 * when it has room. */
static sl_err recover(struct sl_journal *j)
{
    uint64_t *firsts;
    size_t n;
    sl_err e = list_segments(j, &firsts, &n);
    if (e != SL_OK)
        return e;
    uint8_t *blk = malloc(BLOCK_MAX);
    if (!blk) {
        free(firsts);
        return SL_ERR_NOMEM;
    }
    uint64_t newest_size = 0;
    for (size_t i = 0; i < n && e == SL_OK; i++) {
        char name[SEG_NAME_BYTES];
        struct seg s;
        uint64_t size = 0;
        seg_name(name, firsts[i]);
        if (!scan_segment(j, name, firsts[i], &s, &size, blk)) {
            unlinkat(j->dirfd, name, 0);
            j->st.open_bad_segments++;
            continue;
        }
        if (j->nseg && j->segs[j->nseg - 1].bytes < newest_size)
            j->st.open_bad_segments++;     /* the previous one ends early */
        newest_size = size;
        e = idx_push(j, &s);
    }
    free(blk);
    free(firsts);
    if (e != SL_OK || j->nseg == 0)
        return e;
    struct seg *last = &j->segs[j->nseg - 1];
    if (last->bytes < newest_size) {
        char name[SEG_NAME_BYTES];
        seg_name(name, last->first_seq);
        int fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || ftruncate(fd, (off_t)last->bytes) != 0 || (!j->no_sync && fdatasync(fd) != 0)) {
            if (fd >= 0)
                sl_file_close_keep_errno(fd);
            return SL_ERR_IO;
        }
        j->st.open_torn_bytes = newest_size - last->bytes;
        close(fd);
    }
    if (last->bytes < j->segment_bytes) {
        char name[SEG_NAME_BYTES];
        seg_name(name, last->first_seq);
        j->seg_fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (j->seg_fd < 0)
            return SL_ERR_IO;
        j->seg_off = last->bytes;
    }
    return SL_OK;
}

sl_err sl_journal_open(struct sl_journal **out, const struct sl_journal_config *cfg)
{
    return sl_journal_open_at(out, cfg, -1);
}

sl_err sl_journal_open_at(struct sl_journal **out, const struct sl_journal_config *cfg, int dir_fd)
{
    *out = NULL;
    if (dir_fd < 0 && !cfg->dir)
        return SL_ERR_RANGE;
    struct sl_journal *j = calloc(1, sizeof *j);
    if (!j)
        return SL_ERR_NOMEM;
    j->dirfd = -1;
    j->seg_fd = -1;
    j->mark_fd = -1;
    pthread_mutex_init(&j->lock, NULL);
    pthread_mutex_init(&j->idx_lock, NULL);
    sl_err e = config(j, cfg);
    if (e == SL_OK && dir_fd >= 0) {
        j->dirfd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
        if (j->dirfd < 0)
            e = SL_ERR_IO;
    } else if (e == SL_OK) {
        if (mkdir(cfg->dir, 0700) != 0 && errno != EEXIST)
            e = SL_ERR_IO;
        if (e == SL_OK) {
            j->dirfd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
            if (j->dirfd < 0)
                e = SL_ERR_IO;
        }
    }
    if (e == SL_OK)
        e = recover(j);
    if (e == SL_OK)
        e = id_load(j);
    uint64_t mark = 0;
    if (e == SL_OK) {
        uint64_t last_end = 0;
        for (size_t i = 0; i < j->nseg; i++)
            last_end = j->segs[i].end_seq > last_end ? j->segs[i].end_seq : last_end;
        bool mark_ok = true;
        e = mark_open(j, &mark);
        if (e == SL_OK && mark == 0) {
            /* No valid slot: a journal of an earlier version has the text
             * mark (taken over, then removed below), else it is lost. */
            mark_ok = mark_read_old(j, &mark) == SL_OK && (mark != 0 || j->nseg == 0);
        }
        uint64_t next = mark > last_end ? mark : last_end;
        if (!mark_ok) {
            /* The mark was ahead of every seq handed out by at most two
             * reserves (refreshed at half of one); without it, jump that far. */
            j->st.open_mark_lost = true;
            next = last_end + 2 * j->reserve;
        }
        j->next_seq = next ? next : 1;
        if (j->next_seq > SEQ_OPEN_MAX)
            e = SL_ERR_RANGE;         /* only a damaged or forged journal gets here */
    }
    if (e == SL_OK) {
        j->written_seq = j->nseg ? j->segs[j->nseg - 1].end_seq : j->next_seq;
        e = mark_write(j, j->next_seq + j->reserve);
        if (e == SL_OK)
            unlinkat(j->dirfd, MARK_OLD_FILE, 0);   /* the mark file has it now */
    }
    if (e != SL_OK) {
        int saved = errno;
        destroy(j);                   /* nothing flushed, the mark left alone */
        errno = saved;
        return e;
    }
    idx_totals(j);
    *out = j;
    return SL_OK;
}

/* ---- Append ---- */

/* Fills in the open block's header (the CRC is the flusher's). Under lock. */
static void block_close(struct sl_journal *j, struct jbuf *b)
{
    if (!b->open)
        return;
    uint8_t *h = b->p + b->blk;
    sl_le32_put(h + BLK_OFF_LEN, (uint32_t)(b->len - b->blk - BLK_CRC_FROM));
    sl_le64_put(h + BLK_OFF_END_SEQ, j->written_seq);
    sl_le64_put(h + BLK_OFF_MIN_TIME, j->blk_min);
    sl_le64_put(h + BLK_OFF_MAX_TIME, j->blk_max);
    sl_le32_put(h + BLK_OFF_COUNT, (uint32_t)j->blk_count);
    b->open = false;
}

/* Makes room for need more record bytes in an open block: closes the open
 * one when it would pass BLOCK_MAX, starts a new one. false: the buffer is
 * full. Under lock. */
static bool block_room(struct sl_journal *j, struct jbuf *b, size_t need)
{
    if (b->open && b->len - b->blk + need <= BLOCK_MAX && b->cap - b->len >= need)
        return true;
    block_close(j, b);
    if (b->cap - b->len < BLK_HDR_BYTES + need)
        return false;
    b->blk = b->len;
    memset(b->p + b->blk, 0, BLK_HDR_BYTES);
    sl_le64_put(b->p + b->blk + BLK_OFF_FIRST_SEQ, j->written_seq);
    b->len += BLK_HDR_BYTES;
    b->open = true;
    j->prev_time = 0;
    j->blk_min = UINT64_MAX;
    j->blk_max = 0;
    j->blk_count = 0;
    return true;
}

/* One append under j->lock (held by the caller). */
static sl_err append_held(struct sl_journal *j, uint32_t tag_id, uint64_t source_time_us,
                          uint64_t raw, uint8_t type, uint32_t quality, uint64_t *seq_out)
{
    if (type > REC_TYPE_MASK)
        return SL_ERR_RANGE;
    if (j->next_seq >= SL_HREC_SEQ_LIMIT)
        return SL_ERR_RANGE;   /* not reached: open refuses long before */
    uint64_t seq = j->next_seq++;
    j->st.appended++;
    if (seq >= atomic_load_explicit(&j->reserved, memory_order_relaxed))
        j->st.unreserved++;
    struct jbuf *b = &j->buf[j->active];
    bool gap = j->written_seq < seq;
    if (!block_room(j, b, REC_MAX + (gap ? GAP_MAX : 0))) {
        j->st.lost++;                 /* written as a GAP once there is room */
        if (seq_out)
            *seq_out = seq;
        return SL_OK;
    }
    uint8_t *p = b->p + b->len;
    size_t n = 0;
    if (gap) {
        p[n++] = (uint8_t)(SL_JOURNAL_GAP << REC_KIND_SHIFT);
        n += sl_varint_put(p + n, seq - j->written_seq);
        j->blk_count++;
    }
    unsigned width = value_width(type);
    bool wide = width < 8 && (raw >> (8 * width)) != 0;
    if (wide)
        width = 8;
    p[n++] = (uint8_t)(type | (quality ? REC_QUALITY : 0) | (wide ? REC_WIDE : 0));
    n += sl_varint_put(p + n, tag_id);
    int64_t dt = (int64_t)(source_time_us - j->prev_time);
    n += sl_varint_put(p + n, ((uint64_t)dt << 1) ^ (uint64_t)(dt >> 63));
    for (unsigned i = 0; i < width; i++)
        p[n++] = (uint8_t)(raw >> (8 * i));
    if (quality) {
        sl_le32_put(p + n, quality);
        n += 4;
    }
    b->len += n;
    j->prev_time = source_time_us;
    j->blk_min = source_time_us < j->blk_min ? source_time_us : j->blk_min;
    j->blk_max = source_time_us > j->blk_max ? source_time_us : j->blk_max;
    j->blk_count++;
    j->written_seq = seq + 1;
    if (seq_out)
        *seq_out = seq;
    return SL_OK;
}

sl_err sl_journal_append(struct sl_journal *j, uint32_t tag_id, uint64_t source_time_us,
                         uint64_t raw, uint8_t type, uint32_t quality, uint64_t *seq_out)
{
    pthread_mutex_lock(&j->lock);
    sl_err e = append_held(j, tag_id, source_time_us, raw, type, quality, seq_out);
    pthread_mutex_unlock(&j->lock);
    return e;
}

void sl_journal_append_begin(struct sl_journal *j)
{
    pthread_mutex_lock(&j->lock);
}

sl_err sl_journal_append_held(struct sl_journal *j, uint32_t tag_id, uint64_t source_time_us,
                              uint64_t raw, uint8_t type, uint32_t quality, uint64_t *seq_out)
{
    return append_held(j, tag_id, source_time_us, raw, type, quality, seq_out);
}

void sl_journal_append_end(struct sl_journal *j)
{
    pthread_mutex_unlock(&j->lock);
}

/* ---- Flush ---- */

/* Starts a segment whose first block begins at first_seq: header written,
 * directory synced, index entry added. */
static sl_err segment_start(struct sl_journal *j, uint64_t first_seq)
{
    if (j->seg_fd >= 0)
        close(j->seg_fd);
    j->seg_fd = -1;
    char name[SEG_NAME_BYTES];
    seg_name(name, first_seq);
    int fd = openat(j->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return SL_ERR_IO;
    uint8_t h[SEG_HDR_BYTES] = { 0 };
    sl_le32_put(h + SEG_OFF_MAGIC, SEG_MAGIC);
    h[SEG_OFF_VERSION] = SEG_VERSION;
    h[SEG_OFF_HDR_BYTES] = SEG_HDR_BYTES;
    sl_le64_put(h + SEG_OFF_EPOCH, j->epoch);
    sl_le64_put(h + SEG_OFF_FIRST_SEQ, first_seq);
    sl_le32_put(h + SEG_OFF_CRC, sl_crc_compute(h, SEG_OFF_CRC));
    if (pwrite_all(fd, h, sizeof h, 0) != SL_OK || (!j->no_sync && fsync(j->dirfd) != 0)) {
        int saved = errno;
        close(fd);
        unlinkat(j->dirfd, name, 0);  /* an empty segment says nothing */
        errno = saved;
        return SL_ERR_IO;
    }
    struct seg s = { first_seq, first_seq, SEG_HDR_BYTES, UINT64_MAX, 0, clock_offset() };
    pthread_mutex_lock(&j->idx_lock);
    sl_err e = idx_push(j, &s);
    idx_totals(j);
    pthread_mutex_unlock(&j->idx_lock);
    if (e != SL_OK) {
        close(fd);
        unlinkat(j->dirfd, name, 0);
        return e;
    }
    j->seg_fd = fd;
    j->seg_off = SEG_HDR_BYTES;
    return SL_OK;
}

/* Writes bytes [from, to) of the pending buffer (whole blocks, CRCs set)
 * at the end of the current segment and syncs them; on failure the
 * segment is cut back so no partial block stays. */
static sl_err write_run(struct sl_journal *j, const uint8_t *p, size_t from, size_t to,
                        uint64_t end_seq, uint64_t min_t, uint64_t max_t, uint64_t records)
{
    sl_err e = pwrite_all(j->seg_fd, p + from, to - from, j->seg_off);
    if (e == SL_OK && !j->no_sync && fdatasync(j->seg_fd) != 0)
        e = SL_ERR_IO;
    if (e != SL_OK) {
        int saved = errno;
        if (ftruncate(j->seg_fd, (off_t)j->seg_off) != 0) {
            /* the next open finds the partial block and cuts it */
        }
        errno = saved;
        return e;
    }
    j->seg_off += to - from;
    pthread_mutex_lock(&j->idx_lock);
    struct seg *s = &j->segs[j->nseg - 1];
    s->bytes = j->seg_off;
    s->end_seq = end_seq;
    s->clock_off = clock_offset();
    if (min_t <= max_t) {
        s->min_time = min_t < s->min_time ? min_t : s->min_time;
        s->max_time = max_t > s->max_time ? max_t : s->max_time;
    }
    idx_totals(j);
    pthread_mutex_unlock(&j->idx_lock);
    pthread_mutex_lock(&j->lock);
    j->st.flushed += records;
    pthread_mutex_unlock(&j->lock);
    return SL_OK;
}

/* Writes the pending buffer from pending_off on, segment by segment. */
static sl_err write_pending(struct sl_journal *j, struct jbuf *b)
{
    size_t run = j->pending_off, off = run;
    uint64_t end_seq = 0, min_t = UINT64_MAX, max_t = 0, records = 0;
    while (off < b->len) {
        uint8_t *h = b->p + off;
        size_t total = BLK_CRC_FROM + sl_le32_get(h + BLK_OFF_LEN);
        if (j->seg_fd < 0 || j->seg_off + (off - run) >= j->segment_bytes) {
            if (off > run) {
                sl_err e = write_run(j, b->p, run, off, end_seq, min_t, max_t, records);
                if (e != SL_OK)
                    return e;
                j->pending_off = run = off;
                min_t = UINT64_MAX;
                max_t = records = 0;
            }
            sl_err e = segment_start(j, sl_le64_get(h + BLK_OFF_FIRST_SEQ));
            if (e != SL_OK)
                return e;
        }
        sl_le32_put(h + BLK_OFF_CRC, sl_crc_compute(h + BLK_CRC_FROM, total - BLK_CRC_FROM));
        end_seq = sl_le64_get(h + BLK_OFF_END_SEQ);
        uint64_t lo = sl_le64_get(h + BLK_OFF_MIN_TIME), hi = sl_le64_get(h + BLK_OFF_MAX_TIME);
        if (lo <= hi) {
            min_t = lo < min_t ? lo : min_t;
            max_t = hi > max_t ? hi : max_t;
        }
        records += sl_le32_get(h + BLK_OFF_COUNT);
        off += total;
    }
    if (off > run) {
        sl_err e = write_run(j, b->p, run, off, end_seq, min_t, max_t, records);
        if (e != SL_OK)
            return e;
    }
    j->pending_off = 0;
    b->len = 0;
    return SL_OK;
}

/* Deletes the oldest segment (never the newest). Flusher thread. */
static sl_err trim_oldest(struct sl_journal *j)
{
    char name[SEG_NAME_BYTES];
    pthread_mutex_lock(&j->idx_lock);
    seg_name(name, j->segs[0].first_seq);
    memmove(j->segs, j->segs + 1, (j->nseg - 1) * sizeof *j->segs);
    j->nseg--;
    idx_totals(j);
    j->idx_trimmed++;
    pthread_mutex_unlock(&j->idx_lock);
    return unlinkat(j->dirfd, name, 0) == 0 || errno == ENOENT ? SL_OK : SL_ERR_IO;
}

/* now_us 0: by bytes only. With clock_off (wall - monotonic now; steps
 * true), a segment's source times are moved by how far the wall clock
 * stepped forward since it was written, so a step forward never makes a
 * segment look older than it is (its records did not age). */
static sl_err trim(struct sl_journal *j, uint64_t now_us, int64_t clock_off, bool steps)
{
    sl_err e = SL_OK;
    for (;;) {
        pthread_mutex_lock(&j->idx_lock);
        uint64_t newest = j->nseg ? j->segs[0].max_time : 0;
        if (steps && j->nseg && clock_off > j->segs[0].clock_off) {
            uint64_t step = (uint64_t)(clock_off - j->segs[0].clock_off);
            newest = newest > UINT64_MAX - step ? UINT64_MAX : newest + step;
            if (step > j->st_clock_step_us)
                j->st_clock_step_us = step;
        }
        bool go = j->nseg > 1 &&
                  (j->idx_bytes > j->max_bytes || (now_us > j->window_us && newest < now_us - j->window_us));
        pthread_mutex_unlock(&j->idx_lock);
        if (!go)
            return e;
        if (trim_oldest(j) != SL_OK)
            e = SL_ERR_IO;
    }
}

sl_err sl_journal_flush(struct sl_journal *j)
{
    /* The mark first: it is one small file, and the appender may be
     * running towards it while the data is written. */
    pthread_mutex_lock(&j->lock);
    uint64_t next = j->next_seq;
    pthread_mutex_unlock(&j->lock);
    sl_err e = SL_OK, em = SL_OK;
    int mark_errno = 0;
    if (next + j->reserve / 2 > atomic_load(&j->reserved)) {
        em = mark_write(j, next + j->reserve);
        mark_errno = errno;
    }
    /* Two rounds: a buffer left by a failed flush goes first, then what was
     * appended meanwhile. */
    for (unsigned round = 0; round < 2 && e == SL_OK; round++) {
        pthread_mutex_lock(&j->lock);
        if (!j->pending && j->buf[j->active].len) {
            block_close(j, &j->buf[j->active]);
            j->active ^= 1u;
            j->pending = true;
            j->pending_off = 0;
        }
        pthread_mutex_unlock(&j->lock);
        if (!j->pending)
            break;
        e = write_pending(j, &j->buf[j->active ^ 1u]);
        pthread_mutex_lock(&j->lock);
        if (e == SL_OK)
            j->pending = false;
        pthread_mutex_unlock(&j->lock);
    }
    if (e == SL_OK && em != SL_OK) {
        e = em;
        errno = mark_errno;
    }
    if (e != SL_OK) {
        pthread_mutex_lock(&j->lock);
        j->st.write_errors++;
        pthread_mutex_unlock(&j->lock);
    }
    int saved = errno;
    sl_err t = trim(j, 0, 0, false);
    errno = saved;
    return e != SL_OK ? e : t;
}

sl_err sl_journal_trim(struct sl_journal *j, uint64_t now_us)
{
    return trim(j, now_us ? now_us : 1, 0, false);
}

sl_err sl_journal_trim_clocks(struct sl_journal *j, uint64_t wall_us, uint64_t mono_us)
{
    return trim(j, wall_us ? wall_us : 1, (int64_t)(wall_us - mono_us), true);
}

void sl_journal_stats(struct sl_journal *j, struct sl_journal_stats *out)
{
    pthread_mutex_lock(&j->lock);
    *out = j->st;
    out->next_seq = j->next_seq;
    out->journal_id = j->id;
    pthread_mutex_unlock(&j->lock);
    pthread_mutex_lock(&j->idx_lock);
    out->bytes = j->idx_bytes;
    out->segments = j->nseg;
    out->oldest_seq = j->nseg ? j->segs[0].first_seq : 0;
    out->oldest_time_us = 0;
    for (size_t i = 0; i < j->nseg; i++)
        if (j->segs[i].min_time != UINT64_MAX) {   /* the oldest segment holding a value */
            out->oldest_time_us = j->segs[i].min_time;
            break;
        }
    out->trimmed_segments = j->idx_trimmed;
    out->clock_step_us = j->st_clock_step_us;
    pthread_mutex_unlock(&j->idx_lock);
}

uint64_t sl_journal_id(const struct sl_journal *j)
{
    return j->id;
}

/* Frees everything; writes nothing. */
static void destroy(struct sl_journal *j)
{
    if (j->seg_fd >= 0)
        close(j->seg_fd);
    if (j->mark_fd >= 0)
        close(j->mark_fd);
    if (j->dirfd >= 0)
        close(j->dirfd);
    free(j->buf[0].p);
    free(j->buf[1].p);
    free(j->segs);
    pthread_mutex_destroy(&j->lock);
    pthread_mutex_destroy(&j->idx_lock);
    free(j);
}

void sl_journal_close(struct sl_journal *j)
{
    if (!j)
        return;
    /* Everything on disk: the mark can say exactly where the next run
     * starts, so a clean restart leaves no gap. Otherwise what could not be
     * written is lost and the mark already covers it. */
    if (sl_journal_flush(j) == SL_OK && mark_write(j, j->next_seq) != SL_OK) {
        /* the older mark, further ahead, stays */
    }
    destroy(j);
}

/* ---- Readers ---- */

sl_err sl_journal_iter_new(struct sl_journal_iter **out, struct sl_journal *j)
{
    *out = NULL;
    struct sl_journal_iter *it = calloc(1, sizeof *it);
    if (!it)
        return SL_ERR_NOMEM;
    it->blk = malloc(BLOCK_MAX);
    if (!it->blk) {
        free(it);
        return SL_ERR_NOMEM;
    }
    it->j = j;
    it->fd = -1;
    it->pos = SIZE_MAX;
    *out = it;
    return SL_OK;
}

void sl_journal_iter_free(struct sl_journal_iter *it)
{
    if (!it)
        return;
    if (it->fd >= 0)
        close(it->fd);
    free(it->blk);
    free(it->segs);
    free(it);
}

static void read_error(struct sl_journal_iter *it)
{
    pthread_mutex_lock(&it->j->lock);
    it->j->st.read_errors++;
    pthread_mutex_unlock(&it->j->lock);
}

/* Takes a copy of the index and resets the position. */
static sl_err seek(struct sl_journal_iter *it, bool newest_first, uint64_t lo, uint64_t hi,
                   uint64_t from_seq)
{
    struct sl_journal *j = it->j;
    if (it->fd >= 0)
        close(it->fd);
    it->fd = -1;
    it->in_block = false;
    pthread_mutex_lock(&j->idx_lock);
    if (j->nseg > it->segcap) {
        struct seg *n = realloc(it->segs, j->nseg * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&j->idx_lock);
            it->nseg = 0;
            return SL_ERR_NOMEM;
        }
        it->segs = n;
        it->segcap = j->nseg;
    }
    if (j->nseg)
        memcpy(it->segs, j->segs, j->nseg * sizeof *it->segs);
    it->nseg = j->nseg;
    pthread_mutex_unlock(&j->idx_lock);
    it->newest_first = newest_first;
    it->lo_time = lo;
    it->hi_time = hi;
    it->from_seq = from_seq;
    it->pos = 0;
    return SL_OK;
}

sl_err sl_journal_iter_newest(struct sl_journal_iter *it, uint64_t since_us)
{
    return seek(it, true, since_us, UINT64_MAX, 0);
}

sl_err sl_journal_iter_from_seq(struct sl_journal_iter *it, uint64_t from_seq)
{
    return seek(it, false, 0, UINT64_MAX, from_seq);
}

/* The next segment to read, in traversal order, skipping those outside the
 * filters; false at the end. */
static bool next_segment(struct sl_journal_iter *it)
{
    while (it->pos < it->nseg) {
        const struct seg *s = &it->segs[it->newest_first ? it->nseg - 1 - it->pos : it->pos];
        it->pos++;
        if (s->end_seq <= it->from_seq)
            continue;
        if (s->max_time < it->lo_time || (s->min_time != UINT64_MAX && s->min_time >= it->hi_time))
            continue;
        char name[SEG_NAME_BYTES];
        uint8_t h[SEG_HDR_BYTES];
        seg_name(name, s->first_seq);
        int fd = openat(it->j->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;                 /* trimmed since the seek */
        if (pread_all(fd, h, sizeof h, 0) != SL_OK || !seg_header_ok(h, s->first_seq)) {
            close(fd);
            read_error(it);
            continue;
        }
        it->fd = fd;
        it->seg_first = s->first_seq;
        it->off = SEG_HDR_BYTES;
        it->end = s->bytes;
        return true;
    }
    return false;
}

static void segment_done(struct sl_journal_iter *it)
{
    close(it->fd);
    it->fd = -1;
    it->in_block = false;
}

/* Decodes one record at the cursor into rec. */
static sl_err decode(struct sl_journal_iter *it, struct sl_journal_rec *rec)
{
    struct sl_buf *b = &it->rec;
    uint8_t head;
    sl_err e = sl_buf_get_u8(b, &head);
    if (e != SL_OK)
        return e;
    memset(rec, 0, sizeof *rec);
    rec->seq = it->seq;
    rec->kind = (uint8_t)(head >> REC_KIND_SHIFT);
    if (rec->kind == SL_JOURNAL_GAP) {
        if ((head & ~(3u << REC_KIND_SHIFT)) != 0 || (e = sl_buf_get_varint(b, &rec->count)) != SL_OK)
            return e != SL_OK ? e : SL_ERR_HEADER;
        if (rec->count == 0 || rec->count > it->blk_end_seq - it->seq)
            return SL_ERR_RANGE;
        it->seq += rec->count;
        return SL_OK;
    }
    if (rec->kind != SL_JOURNAL_VALUE)
        return SL_ERR_TYPE;
    if (it->seq >= it->blk_end_seq)
        return SL_ERR_RANGE;
    uint64_t tag, zz;
    if ((e = sl_buf_get_varint(b, &tag)) != SL_OK || (e = sl_buf_get_varint(b, &zz)) != SL_OK)
        return e;
    if (tag > UINT32_MAX)
        return SL_ERR_RANGE;
    rec->count = 1;
    rec->tag_id = (uint32_t)tag;
    rec->type = head & REC_TYPE_MASK;
    it->prev_time += (zz >> 1) ^ (0 - (zz & 1));
    rec->source_time_us = it->prev_time;
    unsigned width = (head & REC_WIDE) ? 8 : value_width(rec->type);
    const uint8_t *v;
    if ((e = sl_buf_get_ptr(b, &v, width)) != SL_OK)
        return e;
    for (unsigned i = 0; i < width; i++)
        rec->raw |= (uint64_t)v[i] << (8 * i);
    if (head & REC_QUALITY) {
        if ((e = sl_buf_get_ptr(b, &v, 4)) != SL_OK)
            return e;
        rec->quality = sl_le32_get(v);
    }
    it->seq++;
    return SL_OK;
}

sl_err sl_journal_iter_next(struct sl_journal_iter *it, struct sl_journal_rec *rec,
                            uint64_t *first_of_segment)
{
    if (it->pos == SIZE_MAX)
        return SL_ERR_STATE;
    for (;;) {
        if (it->fd < 0 && !next_segment(it))
            return SL_ERR_EOF;
        if (!it->in_block) {
            struct blk_info b;
            if (it->off >= it->end) {
                segment_done(it);
                continue;
            }
            if (!blk_read(it->fd, it->blk, &b, it->off, it->end)) {
                read_error(it);
                segment_done(it);
                continue;
            }
            it->off += BLK_CRC_FROM + b.len;
            if (b.end_seq <= it->from_seq ||
                (b.min_time <= b.max_time && (b.max_time < it->lo_time || b.min_time >= it->hi_time)))
                continue;
            it->rec = sl_buf_make(it->blk + BLK_HDR_BYTES, BLK_CRC_FROM + b.len - BLK_HDR_BYTES);
            it->seq = b.first_seq;
            it->blk_end_seq = b.end_seq;
            it->prev_time = 0;
            it->in_block = true;
        }
        if (sl_buf_left(&it->rec) == 0) {
            it->in_block = false;
            continue;
        }
        if (decode(it, rec) != SL_OK) {
            read_error(it);           /* CRC passed: a writer bug, not the disk */
            segment_done(it);
            continue;
        }
        if (rec->seq + rec->count <= it->from_seq)
            continue;
        if (rec->kind == SL_JOURNAL_VALUE &&
            (rec->source_time_us < it->lo_time || rec->source_time_us >= it->hi_time))
            continue;
        if (first_of_segment)
            *first_of_segment = it->seg_first;
        return SL_OK;
    }
}

static int time_cmp(const void *a, const void *b)
{
    const struct sl_journal_rec *x = a, *y = b;
    if (x->source_time_us != y->source_time_us)
        return x->source_time_us < y->source_time_us ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

sl_err sl_journal_tag_read(struct sl_journal_iter *it, uint32_t tag_id, uint64_t from_us,
                           uint64_t to_us, struct sl_journal_rec *out, size_t cap, size_t *n)
{
    *n = 0;
    sl_err e = seek(it, false, from_us, to_us, 0);
    if (e != SL_OK)
        return e;
    struct sl_journal_rec rec;
    while ((e = sl_journal_iter_next(it, &rec, NULL)) == SL_OK) {
        if (rec.kind != SL_JOURNAL_VALUE || rec.tag_id != tag_id)
            continue;
        if (*n == cap) {
            e = SL_ERR_OVERFLOW;
            break;
        }
        out[(*n)++] = rec;
    }
    if (*n)
        qsort(out, *n, sizeof *out, time_cmp);
    return e == SL_ERR_EOF ? SL_OK : e;
}
