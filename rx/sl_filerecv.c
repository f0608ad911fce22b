#define _GNU_SOURCE   /* fallocate, sync_file_range */
#include "sl_filerecv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_ftree.h"
#include "sl_msg.h"
#include "sl_wire.h"

#define PART_NAME_MAX 64u
#define PART_PREFIX ".sluice-part-"
#define HASH_CHUNK (256u * 1024u)
#define SCAN_STEP_ENTRIES 256u   /* directory entries read (each one fstatat) per rescan step */
#define SCAN_STEP_US 10000u      /* at most one rescan step this often */
#define QUOTA_LOG_US 1000000u    /* quota refusals logged at most this often */
#define REFUSED_MAX 64u          /* discarded (session, file id) remembered */
#define PUBLISHED_MAX 64u        /* published (session, file id, digest) remembered: later copies dropped */
#define RANGES_MAX 32u           /* disjoint byte ranges received per file */
/* A chunk is one FILE_DATA: a block's worth of file data (kilobytes), only
 * the last of a file shorter. 512 bytes on average is far below any block
 * a sender fills, so max_bytes / 512 + 1 entries (48 bytes each, grown only
 * as chunks come) never refuse a genuine file yet bound what a signed but
 * misbehaving sender can make one slot hold. */
#define CHUNK_MIN_AVG 512u
#define CHUNKS_NO_LIMIT (1u << 22)   /* max_bytes 0: 2 GiB in 512-byte chunks, 256 GiB in 64 KiB ones */
#define WRITE_BEHIND (16u << 20)     /* start writeback every 16 MiB written, so the final fsync is short */

struct slot {
    bool used;
    bool ended;                 /* FILE_END seen: size and hash known */
    bool size_known;
    uint64_t session;
    uint32_t file_id;
    uint64_t size;
    uint64_t received;          /* distinct data bytes written (the union of ranges) */
    /* What has arrived, as sorted disjoint [start, end) ranges: the copies
     * of a file (TX [files] copies) carry the same bytes again, which must
     * fill the gaps a lost block left, not count twice. */
    struct {
        uint64_t start, end;
    } range[RANGES_MAX];
    unsigned nranges;
    uint64_t last_us;           /* last progress */
    uint64_t reserved;          /* bytes counted against max_total_bytes */
    int fd;
    char part[PART_NAME_MAX];
    char name[SL_FILE_NAME_MAX + 1];
    uint8_t sha256[SL_FILE_SHA256_BYTES];
    uint8_t end_type;           /* SL_MSG_FILE_END or SL_MSG_FILE_END_TREE, once ended */
    /* Tree digest (FILE_END_TREE): each chunk's leaf, taken from the block
     * check when the block was split at the chunk's data (no hashing here),
     * else hashed here. tree_mode: a split chunk was seen, so the sender is
     * one that ends with FILE_END_TREE. Chunks written before that carried
     * no leaf: pending keeps their ranges (zero leaves) to hash from disk
     * at the end; pending_lost when one could not be recorded. */
    bool tree_mode;
    bool pending_lost;
    struct sl_ftree tree;
    struct sl_ftree pending;
    /* Whole-file SHA-256 (FILE_END, older senders): a running hash of the
     * contiguous prefix [0, hashed), fed from the messages as they are
     * written; data that came ahead of a hole is read back once the hole
     * fills (only that part). */
    EVP_MD_CTX *md;
    uint64_t hashed;
    uint64_t unsynced;          /* bytes written since the last write-behind */
};

struct sl_filerecv {
    struct sl_filerecv_config cfg;
    int dirfd;
    struct slot *slots;
    uint8_t *hashbuf;           /* HASH_CHUNK bytes, for the read-back pass */
    DIR *scan;                  /* kept open: the quota rescan resumes where it stopped */
    uint64_t scan_sum;          /* regular files' bytes seen so far in this pass */
    uint64_t scan_published;    /* bytes published since this pass started */
    uint64_t scan_us;           /* time of the last rescan step */
    bool scan_stepped;
    uint64_t quota_log_us;      /* next quota refusal that may be logged */
    uint64_t quota_unlogged;
    struct {
        uint64_t session;
        uint32_t file_id;
    } refused[REFUSED_MAX];     /* ring of discarded files: their later messages are dropped */
    unsigned refused_n, refused_next;
    struct {
        uint64_t session;
        uint32_t file_id;
        uint8_t sha256[SL_FILE_SHA256_BYTES];
        uint8_t end_type;
        char name[SL_FILE_NAME_MAX + 1];
    } published[PUBLISHED_MAX]; /* ring: later copies of these are duplicates */
    unsigned published_n, published_next;
    size_t max_chunks;          /* each chunk list's bound (max_bytes / CHUNK_MIN_AVG + 2); see chunks_max */
    bool hurry;                 /* sl_filerecv_hurry: running SHA-256 deferred */
    uint64_t tree_size;         /* chunk list bound on offsets before the size is known */
    struct sl_filerecv_stats st;
};

/* One line for the daemon's log hook; id (a stable message id, see
 * sl_log_id) goes first as "[ID] " so a SIEM can alert on refused files. */
static void say(struct sl_filerecv *fr, int ok, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say(struct sl_filerecv *fr, int ok, const char *id, const char *fmt, ...)
{
    if (!fr->cfg.log)
        return;
    char line[768];
    int n = id ? snprintf(line, sizeof line, "[%s] ", id) : 0;
    size_t off = n > 0 && (size_t)n < sizeof line ? (size_t)n : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + off, sizeof line - off, fmt, ap);
    va_end(ap);
    fr->cfg.log(fr->cfg.ctx, ok, line);
}

void sl_filerecv_sanitize(char *out, size_t cap, const char *name)
{
    if (cap == 0)
        return;
    size_t o = 0;
    if (name[0] == '.' || name[0] == '\0') {
        if (o + 1 < cap)
            out[o++] = '_';
    }
    for (size_t i = 0; name[i] && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)name[i];
        out[o++] = (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) ? '_' : (char)c;
    }
    out[o] = '\0';
}

static bool is_part(const char *name)
{
    return strncmp(name, PART_PREFIX, sizeof PART_PREFIX - 1) == 0;
}

static bool dot_or_dotdot(const char *n)
{
    return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

/* Bytes of a regular file in the directory (0 for anything else; never
 * follows a link). One fstatat, counted in st.scan_entries. */
static uint64_t entry_bytes(struct sl_filerecv *fr, const char *name)
{
    struct stat st;
    fr->st.scan_entries++;
    if (fstatat(fr->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
        return (uint64_t)st.st_size;
    return 0;
}

/* At start only: sums the regular files in the directory into st.dir_bytes
 * (temporaries are counted through the slots' reservations instead) and
 * removes temporaries a crash left behind (unlinkat never follows a link).
 * O(entries), one fstatat each: the one full pass; later passes go in
 * bounded steps (rescan_step). Leaves fr->scan rewound. */
static sl_err scan_full(struct sl_filerecv *fr)
{
    uint64_t sum = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(fr->scan)) != NULL) {
        if (dot_or_dotdot(de->d_name))
            continue;
        if (is_part(de->d_name)) {
            if (unlinkat(fr->dirfd, de->d_name, 0) == 0)
                fr->st.stale_removed++;
            continue;
        }
        sum += entry_bytes(fr, de->d_name);
        errno = 0;
    }
    if (errno)
        return SL_ERR_IO;
    rewinddir(fr->scan);
    fr->st.dir_bytes = sum;
    fr->st.scan_passes++;
    return SL_OK;
}

/* The quota's directory total is kept incrementally: RX only ever adds
 * files (finish() adds each one's size) and never deletes one; the IT
 * consumers do, and this rescan catches that. Each step reads at most
 * SCAN_STEP_ENTRIES entries of a DIR kept open between steps (one fstatat
 * each), so a call costs the same whether the directory holds ten files or
 * a million; a pass over N entries takes N / SCAN_STEP_ENTRIES steps. At
 * the end of a pass st.dir_bytes becomes what the pass saw plus what was
 * published meanwhile: a file published during the pass may count twice
 * until the next pass (too high, never too low, so the quota holds), and
 * a read error keeps the old total. */
static void rescan_step(struct sl_filerecv *fr)
{
    for (unsigned n = 0; n < SCAN_STEP_ENTRIES; n++) {
        errno = 0;
        struct dirent *de = readdir(fr->scan);
        if (!de) {
            if (errno == 0) {
                fr->st.dir_bytes = fr->scan_sum + fr->scan_published;
                fr->st.scan_passes++;
            }
            fr->scan_sum = 0;
            fr->scan_published = 0;
            rewinddir(fr->scan);
            return;
        }
        if (!dot_or_dotdot(de->d_name) && !is_part(de->d_name))
            fr->scan_sum += entry_bytes(fr, de->d_name);
    }
}

sl_err sl_filerecv_create(struct sl_filerecv **out, const struct sl_filerecv_config *cfg)
{
    *out = NULL;
    if (!cfg->directory || cfg->slots < 1 || cfg->slots > 1024 ||
        cfg->max_versions > SL_FILERECV_VERSIONS_MAX)
        return SL_ERR_RANGE;
    struct sl_filerecv *fr = calloc(1, sizeof *fr);
    if (!fr)
        return SL_ERR_NOMEM;
    fr->cfg = *cfg;
    if (!fr->cfg.max_versions)
        fr->cfg.max_versions = SL_FILERECV_VERSIONS_DEFAULT;
    fr->slots = calloc(cfg->slots, sizeof *fr->slots);
    fr->hashbuf = malloc(HASH_CHUNK);
    if (!fr->slots || !fr->hashbuf) {
        free(fr->slots);
        free(fr->hashbuf);
        free(fr);
        return SL_ERR_NOMEM;
    }
    /* Opened once: every later operation is relative to this descriptor. */
    fr->dirfd = open(cfg->directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat lst;
    if (fr->dirfd < 0 && errno == ENOTDIR && lstat(cfg->directory, &lst) == 0 && S_ISLNK(lst.st_mode))
        errno = ELOOP;   /* O_DIRECTORY | O_NOFOLLOW says ENOTDIR for a link: name it */
    /* The rescan's own descriptor (a DIR owns and moves its offset). */
    int sfd = fr->dirfd >= 0 ? openat(fr->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    fr->scan = sfd >= 0 ? fdopendir(sfd) : NULL;
    if (!fr->scan && sfd >= 0) {
        int err = errno;
        close(sfd);
        errno = err;
    }
    if (fr->dirfd < 0 || !fr->scan || scan_full(fr) != SL_OK) {
        int err = errno;
        if (fr->scan)
            closedir(fr->scan);
        if (fr->dirfd >= 0)
            close(fr->dirfd);
        free(fr->slots);
        free(fr->hashbuf);
        free(fr);
        errno = err;
        return SL_ERR_IO;
    }
    for (unsigned i = 0; i < cfg->slots; i++)
        fr->slots[i].fd = -1;
    uint64_t chunks = cfg->max_bytes ? cfg->max_bytes / CHUNK_MIN_AVG + 2 : CHUNKS_NO_LIMIT;
    fr->max_chunks = chunks < CHUNKS_NO_LIMIT ? (size_t)chunks : CHUNKS_NO_LIMIT;
    fr->tree_size = cfg->max_bytes ? cfg->max_bytes : UINT64_MAX / 2;
    if (fr->st.stale_removed)
        say(fr, 0, NULL, "removed %" PRIu64 " temporary file%s left by an earlier run", fr->st.stale_removed,
            fr->st.stale_removed == 1 ? "" : "s");
    *out = fr;
    return SL_OK;
}

static void release(struct sl_filerecv *fr, struct slot *s, bool unlink_part)
{
    if (s->fd >= 0)
        close(s->fd);
    sl_ftree_free(&s->tree);
    sl_ftree_free(&s->pending);
    EVP_MD_CTX_free(s->md);
    if (unlink_part && s->part[0])
        unlinkat(fr->dirfd, s->part, 0);
    fr->st.reserved_bytes -= s->reserved;
    memset(s, 0, sizeof *s);
    s->fd = -1;
    fr->st.in_progress--;
}

static const char *label(const struct slot *s)
{
    return s->name[0] ? s->name : "(name not yet known)";
}

/* A discarded file's later messages (it is sent once, in order) must not
 * start it again in a new slot, each time logged and counted: the last
 * REFUSED_MAX discarded ids are remembered and their messages dropped. */
static void remember_refused(struct sl_filerecv *fr, uint64_t session, uint32_t id)
{
    fr->refused[fr->refused_next].session = session;
    fr->refused[fr->refused_next].file_id = id;
    fr->refused_next = (fr->refused_next + 1) % REFUSED_MAX;
    if (fr->refused_n < REFUSED_MAX)
        fr->refused_n++;
}

static bool was_refused(const struct sl_filerecv *fr, uint64_t session, uint32_t id)
{
    for (unsigned i = 0; i < fr->refused_n; i++)
        if (fr->refused[i].session == session && fr->refused[i].file_id == id)
            return true;
    return false;
}

/* A published file's later copies (TX [files] copies: same session, same
 * file id) are recognised here and dropped without touching the disk. */
static void remember_published(struct sl_filerecv *fr, const struct slot *s)
{
    unsigned i = fr->published_next;
    fr->published[i].session = s->session;
    fr->published[i].file_id = s->file_id;
    memcpy(fr->published[i].sha256, s->sha256, sizeof s->sha256);
    fr->published[i].end_type = s->end_type;
    memcpy(fr->published[i].name, s->name, sizeof s->name);
    fr->published_next = (i + 1) % PUBLISHED_MAX;
    if (fr->published_n < PUBLISHED_MAX)
        fr->published_n++;
}

static int published_index(const struct sl_filerecv *fr, uint64_t session, uint32_t id)
{
    for (unsigned i = 0; i < fr->published_n; i++)
        if (fr->published[i].session == session && fr->published[i].file_id == id)
            return (int)i;
    return -1;
}

/* A message of a file already published: BEGIN and DATA are counted and
 * dropped; the copy's FILE_END decides. Its digest equal to the published
 * one: a duplicate copy (files_duplicate). Different: the TX sent other
 * content under a file id it had used (it never does; a changed file gets a
 * new id), which is refused and logged, never written. */
static void on_published(struct sl_filerecv *fr, int i, const struct sl_fmsg *m)
{
    fr->st.messages_duplicate++;
    if (m->type != SL_MSG_FILE_END && m->type != SL_MSG_FILE_END_TREE)
        return;
    if (m->type == fr->published[i].end_type &&
        memcmp(m->sha256, fr->published[i].sha256, SL_FILE_SHA256_BYTES) == 0) {
        fr->st.files_duplicate++;
        say(fr, 1, NULL, "file %s (id %" PRIu32 "): another copy, same SHA-256: dropped (published once)",
            fr->published[i].name, m->file_id);
    } else {
        fr->st.files_failed++;
        fr->st.failed_invalid++;
        say(fr, 0, "SL-RX-FILE-REFUSED", "file %s (id %" PRIu32 "): a copy with another SHA-256 under a file id "
            "already published; refused, nothing written", fr->published[i].name, m->file_id);
    }
}

/* Adds [start, end) to s's ranges; the bytes not already there, or
 * UINT64_MAX when the range would be a new one past RANGES_MAX (the message
 * is then dropped: a later copy fills it in next to what is there). */
static uint64_t add_range(struct slot *s, uint64_t start, uint64_t end)
{
    unsigned i = 0;
    while (i < s->nranges && s->range[i].end < start)
        i++;
    /* ranges i .. j-1 touch or overlap [start, end) */
    unsigned j = i;
    uint64_t had = 0, lo = start, hi = end;
    while (j < s->nranges && s->range[j].start <= end) {
        uint64_t a = s->range[j].start > start ? s->range[j].start : start;
        uint64_t b = s->range[j].end < end ? s->range[j].end : end;
        if (b > a)
            had += b - a;
        if (s->range[j].start < lo)
            lo = s->range[j].start;
        if (s->range[j].end > hi)
            hi = s->range[j].end;
        j++;
    }
    if (j == i) {   /* a new range at i */
        if (s->nranges == RANGES_MAX)
            return UINT64_MAX;
        memmove(&s->range[i + 1], &s->range[i], (s->nranges - i) * sizeof s->range[0]);
        s->nranges++;
    } else if (j > i + 1) {   /* merged into one at i */
        memmove(&s->range[i + 1], &s->range[j], (s->nranges - j) * sizeof s->range[0]);
        s->nranges -= j - i - 1;
    }
    s->range[i].start = lo;
    s->range[i].end = hi;
    return (end - start) - had;
}

/* Discards a file: the temporary goes, nothing appears under a real name. */
static void discard(struct sl_filerecv *fr, struct slot *s, uint64_t *reason, const char *why)
{
    say(fr, 0, "SL-RX-FILE-REFUSED", "file %s (id %" PRIu32 "): discarded: %s (%" PRIu64 " of %s bytes received)",
        label(s), s->file_id, why, s->received, s->size_known ? "known" : "unknown");
    fr->st.files_failed++;
    (*reason)++;
    if (reason != &fr->st.failed_incomplete)
        remember_refused(fr, s->session, s->file_id);
    release(fr, s, true);
}

/* True when file id a of a session began before id b: TX numbers its
 * files in order (serial arithmetic, so a wrap of the 32-bit id is fine). */
static bool older_id(uint32_t a, uint32_t b)
{
    return (int32_t)(b - a) > 0;
}

/* Gives up file s to make room (a slot or quota) for file id of the same
 * or another session: discarded, counted in files_evicted (and
 * files_failed), logged, its later messages dropped (they would only take
 * a slot back from newer files). */
static void evict_slot(struct sl_filerecv *fr, struct slot *s, uint32_t for_id, const char *why)
{
    say(fr, 0, "SL-RX-FILE-EVICTED", "file %s (id %" PRIu32 "): discarded for file id %" PRIu32 ": %s (%" PRIu64
        " of %s bytes received)", label(s), s->file_id, for_id, why, s->received,
        s->size_known ? "known" : "unknown");
    fr->st.files_failed++;
    fr->st.files_evicted++;
    remember_refused(fr, s->session, s->file_id);
    release(fr, s, true);
}

/* The unfinished file of this session with the oldest id before id, or
 * NULL (skip is never chosen). TX sends one file id at a time in order, so
 * a newer id begun means an older unfinished one was abandoned (changed
 * while sent and sent again under a new id) or lost beyond FEC. */
static struct slot *older_of_session(struct sl_filerecv *fr, uint64_t session, uint32_t id, const struct slot *skip)
{
    struct slot *v = NULL;
    for (unsigned i = 0; i < fr->cfg.slots; i++) {
        struct slot *s = &fr->slots[i];
        if (s->used && s != skip && s->session == session && older_id(s->file_id, id) &&
            (!v || older_id(s->file_id, v->file_id)))
            v = s;
    }
    return v;
}

/* Every slot is taken and file id of session wants one: rather than
 * refuse the newest file (TX would retire it: lost), the oldest unfinished
 * file of the same session before it goes, else the one idle longest
 * (another session's, or this session's newer one). Never NULL. */
static struct slot *evict(struct sl_filerecv *fr, uint64_t session, uint32_t id)
{
    struct slot *v = older_of_session(fr, session, id, NULL);
    const char *why = "all slots taken; a newer file of the same TX session began";
    if (!v) {
        why = "all slots taken; idle longest";
        for (unsigned i = 0; i < fr->cfg.slots; i++)
            if (!v || fr->slots[i].last_us < v->last_us)
                v = &fr->slots[i];
    }
    evict_slot(fr, v, id, why);
    return v;
}

static struct slot *find(struct sl_filerecv *fr, uint64_t session, uint32_t id, uint64_t now_us, bool create)
{
    struct slot *free_slot = NULL;
    for (unsigned i = 0; i < fr->cfg.slots; i++) {
        struct slot *s = &fr->slots[i];
        if (s->used && s->session == session && s->file_id == id)
            return s;
        if (!s->used && !free_slot)
            free_slot = s;
    }
    if (!create)
        return NULL;
    if (was_refused(fr, session, id)) {
        fr->st.messages_dropped++;
        return NULL;
    }
    struct slot *s = free_slot ? free_slot : evict(fr, session, id);
    snprintf(s->part, sizeof s->part, PART_PREFIX "%016" PRIx64 "-%08" PRIx32, session, id);
    /* O_EXCL | O_NOFOLLOW: never write through a name someone planted. A
     * stale entry of that name (a crash, or planted) is unlinked, which
     * removes a link itself, not its target, and creation retried once. */
    const int flags = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
    s->fd = openat(fr->dirfd, s->part, flags, 0600);
    if (s->fd < 0 && errno == EEXIST && unlinkat(fr->dirfd, s->part, 0) == 0)
        s->fd = openat(fr->dirfd, s->part, flags, 0600);
    if (s->fd < 0) {
        say(fr, 0, "SL-RX-FILE-ERROR", "file id %" PRIu32 ": cannot create %s: %s", id, s->part, strerror(errno));
        s->part[0] = '\0';
        fr->st.files_failed++;
        fr->st.failed_io++;
        return NULL;
    }
    s->used = true;
    s->session = session;
    s->file_id = id;
    s->last_us = now_us;
    sl_ftree_init(&s->tree, fr->tree_size, fr->max_chunks);
    sl_ftree_init(&s->pending, fr->tree_size, fr->max_chunks);
    fr->st.in_progress++;
    return s;
}

/* One bounded rescan step if the last one is SCAN_STEP_US old (or the
 * clock went back): what IT consumers removed is seen within a pass. */
static void maybe_rescan(struct sl_filerecv *fr, uint64_t now_us)
{
    if (!fr->scan_stepped || now_us < fr->scan_us || now_us - fr->scan_us >= SCAN_STEP_US) {
        rescan_step(fr);
        fr->scan_stepped = true;
        fr->scan_us = now_us;
    }
}

/* Raises s's reservation to want bytes if [files] max_total_bytes allows
 * (after one bounded rescan step, maybe_rescan); else discards s and
 * returns false. */
static bool reserve(struct sl_filerecv *fr, struct slot *s, uint64_t want, uint64_t now_us)
{
    if (want <= s->reserved)
        return true;
    uint64_t more = want - s->reserved;
    uint64_t cap = fr->cfg.max_total_bytes;
    if (cap) {
        maybe_rescan(fr, now_us);
        uint64_t used = fr->st.dir_bytes + fr->st.reserved_bytes;
        /* Abandoned older files of the same session give their
         * reservation back first (a large file changed while sent would
         * otherwise be refused for the room its own first attempt holds). */
        struct slot *v;
        while ((used > cap || more > cap - used) && (v = older_of_session(fr, s->session, s->file_id, s)) != NULL) {
            evict_slot(fr, v, s->file_id, "over [files] max_total_bytes; a newer file of the same TX session began");
            used = fr->st.dir_bytes + fr->st.reserved_bytes;
        }
        if (used > cap || more > cap - used) {
            if (now_us >= fr->quota_log_us || now_us + QUOTA_LOG_US < fr->quota_log_us) {
                char why[256];
                snprintf(why, sizeof why,
                         "[files] max_total_bytes %" PRIu64 " reached (%" PRIu64 " bytes in the directory, "
                         "%" PRIu64 " in progress, this file %" PRIu64 "; %" PRIu64 " more refused unlogged)",
                         cap, fr->st.dir_bytes, fr->st.reserved_bytes - s->reserved, want, fr->quota_unlogged);
                fr->quota_log_us = now_us + QUOTA_LOG_US;
                fr->quota_unlogged = 0;
                discard(fr, s, &fr->st.failed_quota, why);
            } else {
                fr->quota_unlogged++;
                fr->st.files_failed++;
                fr->st.failed_quota++;
                remember_refused(fr, s->session, s->file_id);
                release(fr, s, true);
            }
            return false;
        }
    }
    fr->st.reserved_bytes += more;
    s->reserved = want;
    return true;
}

/* Records the size (from BEGIN or END); a disagreement is fatal to the file. */
static bool set_size(struct sl_filerecv *fr, struct slot *s, uint64_t size, const char *name, uint64_t now_us)
{
    if (s->size_known && s->size != size) {
        discard(fr, s, &fr->st.failed_invalid, "FILE_BEGIN and FILE_END disagree on the size");
        return false;
    }
    if (fr->cfg.max_bytes && size > fr->cfg.max_bytes) {
        discard(fr, s, &fr->st.failed_invalid, "larger than [files] max_bytes");
        return false;
    }
    if (size > (uint64_t)INT64_MAX) {   /* no file offset (off_t) reaches it */
        discard(fr, s, &fr->st.failed_invalid, "size beyond what a file can hold");
        return false;
    }
    /* Before the size was known the reservation is the highest byte written. */
    if (s->received > size || (!s->size_known && s->reserved > size)) {
        discard(fr, s, &fr->st.failed_invalid, "more data than the announced size");
        return false;
    }
    if (!s->size_known && !reserve(fr, s, size, now_us))
        return false;
    if (!s->size_known && size) {
        /* The whole file's blocks at once: a full disk fails here, at the
         * start, not after most of the file crossed; and the writes that
         * follow allocate nothing. KEEP_SIZE: the temporary's size still
         * shows how far the data has come (progress seen from outside). A
         * filesystem without it just goes on. */
        int r;
        while ((r = fallocate(s->fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)size)) != 0 && errno == EINTR)
            ;
        if (r != 0 && errno != EOPNOTSUPP && errno != ENOSYS) {
            discard(fr, s, &fr->st.failed_io, strerror(errno));
            return false;
        }
    }
    s->size = size;
    s->size_known = true;
    s->tree.size = size;
    s->pending.size = size;
    sl_filerecv_sanitize(s->name, sizeof s->name, name);
    return true;
}

/* Reads [off, off + len) of s's temporary file into the read-back buffer,
 * piece by piece, feeding each to md: the bytes as they are on disk. */
static bool read_into(struct sl_filerecv *fr, struct slot *s, EVP_MD_CTX *md, uint64_t off, uint64_t len)
{
    while (len) {
        size_t want = len < HASH_CHUNK ? (size_t)len : HASH_CHUNK;
        ssize_t r = pread(s->fd, fr->hashbuf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        if (EVP_DigestUpdate(md, fr->hashbuf, (size_t)r) != 1)
            return false;
        fr->st.readback_bytes += (uint64_t)r;
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    return true;
}

/* SHA-256 of [off, off + len) of the temporary file as it is on disk. */
static bool hash_range(struct sl_filerecv *fr, struct slot *s, uint64_t off, uint64_t len,
                       uint8_t out[SL_FILE_SHA256_BYTES])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned n = 0;
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && read_into(fr, s, md, off, len) &&
              EVP_DigestFinal_ex(md, out, &n) == 1 && n == SL_FILE_SHA256_BYTES;
    EVP_MD_CTX_free(md);
    return ok;
}

/* Extends the running SHA-256 over the contiguous prefix received so far.
 * m (or NULL) is the message just written, whose bytes are hashed from
 * memory (no read); anything else the prefix now reaches (data that came
 * ahead of a hole) is read back, once. False on a read or hash failure. */
static bool advance_prefix(struct sl_filerecv *fr, struct slot *s, const struct sl_fmsg *m)
{
    uint64_t end = s->nranges && s->range[0].start == 0 ? s->range[0].end : 0;
    if (!s->md) {   /* made on first use (also for an empty file) */
        s->md = EVP_MD_CTX_new();
        if (!s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
            return false;
    }
    if (s->hashed >= end)
        return true;
    while (s->hashed < end) {
        if (m && s->hashed >= m->offset && s->hashed - m->offset < m->data_len) {
            uint64_t stop = m->offset + m->data_len < end ? m->offset + m->data_len : end;
            if (EVP_DigestUpdate(s->md, m->data + (s->hashed - m->offset), (size_t)(stop - s->hashed)) != 1)
                return false;
            s->hashed = stop;
            continue;
        }
        uint64_t stop = m && m->offset > s->hashed && m->offset < end ? m->offset : end;
        if (!read_into(fr, s, s->md, s->hashed, stop - s->hashed))
            return false;
        s->hashed = stop;
    }
    return true;
}

/* FILE_END_TREE: the leaves of chunks written before the sender was known
 * to split its blocks, hashed from disk into the tree (a repeat of one that
 * came split is a duplicate, a different one a mismatch); then the digest.
 * Returns the discard reason, or NULL with out filled. */
static const char *tree_digest(struct sl_filerecv *fr, struct slot *s, uint64_t **reason,
                               uint8_t out[SL_FILE_SHA256_BYTES])
{
    *reason = &fr->st.failed_invalid;
    if (s->pending_lost)
        return "chunk list incomplete (too many chunks, or chunks overlapping differently)";
    for (size_t i = 0; i < s->pending.n; i++) {
        const struct sl_ftree_chunk *c = &s->pending.c[i];
        uint8_t leaf[SL_FTREE_LEAF_BYTES];
        bool dup;
        if (!hash_range(fr, s, c->offset, c->len, leaf)) {
            *reason = &fr->st.failed_io;
            return "cannot read back the temporary file";
        }
        sl_err e = sl_ftree_add(&s->tree, c->offset, c->len, leaf, &dup);
        if (e == SL_ERR_MISMATCH) {
            *reason = &fr->st.failed_hash;
            return "chunks overlap differently or differ for the same range";
        }
        if (e != SL_OK)
            return "chunk list full";
    }
    sl_ftree_free(&s->pending);
    sl_err e = sl_ftree_final(&s->tree, out);
    if (e == SL_ERR_MISMATCH) {
        *reason = &fr->st.failed_hash;
        return "chunks overlap differently or differ for the same range";
    }
    if (e != SL_OK)
        return "chunks do not cover the file";
    return NULL;
}

/* [files] verify_readback: the digest again, from the bytes on disk after
 * fsync (tree: every recorded chunk's leaf; else the whole file). */
static bool readback_ok(struct sl_filerecv *fr, struct slot *s, bool *io_error)
{
    uint8_t got[SL_FILE_SHA256_BYTES];
    *io_error = false;
    if (s->end_type == SL_MSG_FILE_END_TREE) {
        for (size_t i = 0; i < s->tree.n; i++) {
            const struct sl_ftree_chunk *c = &s->tree.c[i];
            if (!hash_range(fr, s, c->offset, c->len, got)) {
                *io_error = true;
                return false;
            }
            if (memcmp(got, c->leaf, sizeof got) != 0)
                return false;
        }
        return true;
    }
    if (!hash_range(fr, s, 0, s->size, got)) {
        *io_error = true;
        return false;
    }
    return memcmp(got, s->sha256, sizeof got) == 0;
}

/* Publishes a complete file: fsync, verify, link under a free name. */
static void finish(struct sl_filerecv *fr, struct slot *s)
{
    uint8_t got[SL_FILE_SHA256_BYTES];
    if (fsync(s->fd) != 0) {
        discard(fr, s, &fr->st.failed_io, strerror(errno));
        return;
    }
    if (s->end_type == SL_MSG_FILE_END_TREE) {
        uint64_t *reason;
        const char *why = tree_digest(fr, s, &reason, got);
        if (why) {
            discard(fr, s, reason, why);
            return;
        }
        if (memcmp(got, s->sha256, sizeof got) != 0) {
            discard(fr, s, &fr->st.failed_hash, "tree digest mismatch");
            return;
        }
    } else {
        unsigned n = 0;
        if (!advance_prefix(fr, s, NULL) || s->hashed != s->size || !s->md ||
            EVP_DigestFinal_ex(s->md, got, &n) != 1 || n != SL_FILE_SHA256_BYTES) {
            discard(fr, s, &fr->st.failed_io, "cannot read back the temporary file");
            return;
        }
        if (memcmp(got, s->sha256, sizeof got) != 0) {
            discard(fr, s, &fr->st.failed_hash, "SHA-256 mismatch");
            return;
        }
    }
    if (fr->cfg.verify_readback) {
        /* Drop the file's clean pages (all of them: fsync wrote them) so
         * the read-back comes from the device rather than the page cache.
         * Advice only: a kernel that keeps a page still gives a check of
         * the cached copy, so its result is not an error. */
        (void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_DONTNEED);
        bool io;
        if (!readback_ok(fr, s, &io)) {
            if (io)
                discard(fr, s, &fr->st.failed_io, "cannot read back the temporary file");
            else
                discard(fr, s, &fr->st.failed_hash, "the file on disk differs from what was received "
                        "([files] verify_readback)");
            return;
        }
    }
    char final[SL_FILE_NAME_MAX + 16];
    snprintf(final, sizeof final, "%s", s->name);
    unsigned n = 0;
    /* linkat never replaces an entry (a file or a planted link alike). */
    while (linkat(fr->dirfd, s->part, fr->dirfd, final, 0) != 0) {
        if (errno != EEXIST) {
            discard(fr, s, &fr->st.failed_io, strerror(errno));
            return;
        }
        if (++n >= fr->cfg.max_versions) {
            char why[160];
            snprintf(why, sizeof why,
                     "%u files of this name exist ([files] max_versions); refused, nothing overwritten",
                     fr->cfg.max_versions);
            discard(fr, s, &fr->st.failed_versions, why);
            return;
        }
        snprintf(final, sizeof final, "%s.%u", s->name, n);
    }
    unlinkat(fr->dirfd, s->part, 0);
    s->part[0] = '\0';
    fsync(fr->dirfd);
    fr->st.dir_bytes += s->size;
    fr->scan_published += s->size;
    fr->st.files_ok++;
    remember_published(fr, s);
    const char *what = s->end_type == SL_MSG_FILE_END_TREE ? "tree digest" : "SHA-256";
    if (n) {
        fr->st.files_renamed++;
        say(fr, 1, NULL, "file %s: %" PRIu64 " bytes, %s verified, published as %s (name existed)", s->name,
            s->size, what, final);
    } else {
        say(fr, 1, NULL, "file %s: %" PRIu64 " bytes, %s verified, published", s->name, s->size, what);
    }
    release(fr, s, false);
}

static void maybe_finish(struct sl_filerecv *fr, struct slot *s)
{
    if (s->ended && s->received == s->size)
        finish(fr, s);
}

/* The parts of [start, end) no range holds yet (at most nranges + 1). */
struct gap {
    uint64_t start, end;
};
static unsigned gaps_of(const struct slot *s, uint64_t start, uint64_t end, struct gap *g)
{
    unsigned n = 0;
    uint64_t cur = start;
    for (unsigned i = 0; i < s->nranges && cur < end; i++) {
        if (s->range[i].end <= cur)
            continue;
        if (s->range[i].start >= end)
            break;
        if (s->range[i].start > cur)
            g[n++] = (struct gap){ cur, s->range[i].start };
        cur = s->range[i].end;
    }
    if (cur < end)
        g[n++] = (struct gap){ cur, end };
    return n;
}

/* The most entries a slot's two chunk lists may hold together: one per
 * CHUNK_MIN_AVG bytes of the file's own extent (its size once known, before
 * that the reservation, the highest byte written), plus 2 for the ends. The
 * extent counts against [files] max_total_bytes, so the quota bounds the
 * lists' memory too, whatever the chunk size a sender picks. */
static uint64_t chunks_max(const struct slot *s)
{
    return (s->size_known ? s->size : s->reserved) / CHUNK_MIN_AVG + 2;
}

/* Records the chunk in the slot's lists; false when the file was discarded.
 * The caller records only chunks whose bytes were all new, so the entries
 * never overlap or repeat. */
static bool record_chunk(struct sl_filerecv *fr, struct slot *s, const struct sl_fmsg *m,
                         const uint8_t *leaf)
{
    uint8_t own[SL_FTREE_LEAF_BYTES];
    bool dup;
    bool full = (uint64_t)s->tree.n + s->pending.n >= chunks_max(s);
    if (!leaf && s->tree_mode) {
        sl_ftree_leaf(own, m->data, m->data_len);   /* not split at this chunk: hashed here */
        leaf = own;
    }
    if (!leaf) {
        /* Not known yet whether a tree digest will be asked for: the range
         * is kept (hashed from disk only if it is); the running SHA-256
         * serves FILE_END. A failure matters only to FILE_END_TREE. */
        static const uint8_t zero[SL_FTREE_LEAF_BYTES];
        if (full || sl_ftree_add(&s->pending, m->offset, (uint32_t)m->data_len, zero, &dup) != SL_OK)
            s->pending_lost = true;
        return true;
    }
    if (full) {
        discard(fr, s, &fr->st.failed_invalid, "too many chunks for the file's size");
        return false;
    }
    sl_err e = sl_ftree_add(&s->tree, m->offset, (uint32_t)m->data_len, leaf, &dup);
    if (e == SL_ERR_MISMATCH) {
        discard(fr, s, &fr->st.failed_hash, "a chunk overlaps another differently or differs for the same range");
        return false;
    }
    if (e != SL_OK) {
        discard(fr, s, e == SL_ERR_NOMEM ? &fr->st.failed_io : &fr->st.failed_invalid,
                e == SL_ERR_CAPACITY ? "too many chunks for [files] max_bytes" : "chunk list");
        return false;
    }
    return true;
}

static void on_data(struct sl_filerecv *fr, const struct sl_fmsg *m, uint64_t session, uint64_t now_us,
                    const uint8_t *leaf)
{
    struct slot *s = find(fr, session, m->file_id, now_us, true);
    if (!s)
        return;
    if ((s->size_known && m->offset + m->data_len > s->size) ||
        (fr->cfg.max_bytes && m->offset + m->data_len > fr->cfg.max_bytes) || m->data_len > UINT32_MAX) {
        discard(fr, s, &fr->st.failed_invalid, "data beyond the file's size");
        return;
    }
    /* Before the size is known, the highest byte written is what the file
     * occupies (a sparse write far out still counts in full). */
    if (!reserve(fr, s, m->offset + m->data_len, now_us))
        return;
    if (leaf)
        s->tree_mode = true;
    /* Only bytes not already on disk are written: a repeat never rewrites
     * what was hashed or recorded. */
    struct gap gaps[RANGES_MAX + 1];
    unsigned ngaps = gaps_of(s, m->offset, m->offset + m->data_len, gaps);
    uint64_t fresh = add_range(s, m->offset, m->offset + m->data_len);
    if (fresh == UINT64_MAX) {
        fr->st.messages_dropped++;
        return;
    }
    /* A chunk is recorded only when all its bytes are new: a repeat
     * (fresh 0) writes nothing and needs no entry (if the first copy was
     * wrong, the digest at the end says so), and entries never overlap, so
     * the list's checks stay O(1) per chunk. A chunk that is new in part
     * cannot be recorded without an overlap: a tree file fails; before a
     * tree was known it only makes a tree impossible (pending_lost). */
    if (fresh == m->data_len) {
        if (!record_chunk(fr, s, m, leaf))
            return;
    } else if (fresh > 0) {
        if (leaf || s->tree_mode) {
            discard(fr, s, &fr->st.failed_hash, "a chunk overlaps another differently");
            return;
        }
        s->pending_lost = true;
    }
    for (unsigned g = 0; g < ngaps; g++) {
        const uint8_t *p = m->data + (gaps[g].start - m->offset);
        uint64_t off = gaps[g].start;
        size_t left = (size_t)(gaps[g].end - gaps[g].start);
        while (left) {
            ssize_t w = pwrite(s->fd, p, left, (off_t)off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                discard(fr, s, &fr->st.failed_io, w < 0 ? strerror(errno) : "short write");
                return;
            }
            p += w;
            off += (uint64_t)w;
            left -= (size_t)w;
        }
    }
    s->received += fresh;
    fr->st.bytes_written += fresh;
    s->last_us = now_us;
    if (s->size_known && s->received > s->size) {
        discard(fr, s, &fr->st.failed_invalid, "more data than the announced size");
        return;
    }
    /* Write-behind: the kernel starts writing what is dirty now (it does
     * not wait for it), so the fsync before publishing has little left. */
    s->unsynced += fresh;
    if (s->unsynced >= WRITE_BEHIND) {
        s->unsynced = 0;
        (void)sync_file_range(s->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    }
    /* Messages are hashed from memory only when all of it was just written
     * (what is on disk); a partial repeat is read back instead. */
    if (!s->tree_mode && !fr->hurry && !advance_prefix(fr, s, fresh == m->data_len ? m : NULL)) {
        discard(fr, s, &fr->st.failed_io, "cannot read back the temporary file");
        return;
    }
    maybe_finish(fr, s);
}

sl_err sl_filerecv_next(struct sl_buf *b, struct sl_fmsg *m)
{
    uint8_t type;
    const uint8_t *body;
    size_t blen;
    sl_err e = sl_msg_split(b, &type, &body, &blen);
    return e != SL_OK ? e : sl_fmsg_decode(m, type, body, blen);
}

void sl_filerecv_payload(struct sl_filerecv *fr, uint64_t session, const uint8_t *payload, size_t len,
                         uint64_t now_us)
{
    sl_filerecv_block(fr, session, payload, len, 0, NULL, now_us);
}

void sl_filerecv_block(struct sl_filerecv *fr, uint64_t session, const uint8_t *payload, size_t len, size_t split,
                       const uint8_t *leaf, uint64_t now_us)
{
    struct sl_buf b = sl_buf_make(payload, len);
    while (sl_buf_left(&b)) {
        struct sl_fmsg m;
        if (sl_filerecv_next(&b, &m) != SL_OK) {
            /* Framing is lost for the rest of this (signed) payload. */
            fr->st.messages_bad++;
            return;
        }
        struct slot *s;
        int pub = published_index(fr, session, m.file_id);
        if (pub >= 0 && (m.type == SL_MSG_FILE_BEGIN || m.type == SL_MSG_FILE_DATA || m.type == SL_MSG_FILE_END ||
                         m.type == SL_MSG_FILE_END_TREE)) {
            on_published(fr, pub, &m);
            continue;
        }
        switch (m.type) {
        case SL_MSG_FILE_BEGIN:
            s = find(fr, session, m.file_id, now_us, true);
            if (s && set_size(fr, s, m.size, m.name, now_us)) {
                s->last_us = now_us;
                maybe_finish(fr, s);
            }
            break;
        case SL_MSG_FILE_DATA:
            /* The block check hashed payload[split, len) for its signature:
             * when that is exactly this message's data, it is the chunk's
             * leaf and the data is not hashed again. */
            on_data(fr, &m, session, now_us,
                    leaf && split && split < len && m.data == payload + split && m.data_len == len - split ? leaf
                                                                                                       : NULL);
            break;
        case SL_MSG_FILE_END:
        case SL_MSG_FILE_END_TREE:
            s = find(fr, session, m.file_id, now_us, true);
            if (s && s->ended && s->end_type != m.type) {
                discard(fr, s, &fr->st.failed_invalid, "FILE_END and FILE_END_TREE for one file");
                break;
            }
            if (s && set_size(fr, s, m.size, m.name, now_us)) {
                memcpy(s->sha256, m.sha256, sizeof s->sha256);
                s->end_type = m.type;
                s->ended = true;
                s->last_us = now_us;
                maybe_finish(fr, s);
            }
            break;
        default:
            fr->st.messages_bad++;
            return;
        }
    }
}

void sl_filerecv_hurry(struct sl_filerecv *fr, bool hurry)
{
    fr->hurry = hurry;
}

void sl_filerecv_tick(struct sl_filerecv *fr, uint64_t now_us)
{
    /* Keeps the total current while no file arrives, so the first one
     * after a consumer emptied the directory is judged by a recent pass. */
    if (fr->cfg.max_total_bytes)
        maybe_rescan(fr, now_us);
    if (!fr->cfg.idle_timeout_us)
        return;
    for (unsigned i = 0; i < fr->cfg.slots; i++) {
        struct slot *s = &fr->slots[i];
        if (s->used && now_us > s->last_us && now_us - s->last_us > fr->cfg.idle_timeout_us)
            discard(fr, s, &fr->st.failed_incomplete,
                    s->ended ? "data lost (FILE_END received, blocks missing)" : "no progress (data lost)");
    }
}

void sl_filerecv_stats(const struct sl_filerecv *fr, struct sl_filerecv_stats *out)
{
    *out = fr->st;
}

void sl_filerecv_destroy(struct sl_filerecv *fr)
{
    if (!fr)
        return;
    for (unsigned i = 0; i < fr->cfg.slots; i++)
        if (fr->slots[i].used)
            discard(fr, &fr->slots[i], &fr->st.failed_incomplete, "incomplete at shutdown");
    closedir(fr->scan);
    close(fr->dirfd);
    free(fr->slots);
    free(fr->hashbuf);
    free(fr);
}
