/* TX [files] spool (sl_spool.h). */
#define _GNU_SOURCE
#include "sl_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_filesend.h"
#include "sl_log.h"

#define EVENT_BUF 16384u            /* one read of inotify events */
#define EVENT_READS_PER_TURN 8u     /* bounded intake work per turn */
#define SENT_SUFFIX_MAX 1000u       /* NAME.1 .. NAME.999 in sent before giving up */
#define SKIP_MAX 8192u              /* refused entries remembered (a power of two) */
#define SKIP_NONE UINT32_MAX
#define SCAN_MIN_US 100000u         /* directory scans at most this often */
#define QUIET_US 1000000u           /* a resend waits for the file to be unchanged this long */
#define FNV_START 0xcbf29ce484222325ull

struct entry {
    char name[SL_FILE_NAME_MAX + 1];
    unsigned resends;               /* times already sent again after a change */
    uint64_t not_before_us;         /* 0, or a resend waiting for the file to be quiet */
    struct timespec mtime;          /* the file as last seen by the quiet check */
    off_t size;
};

/* An entry refused (a link, not regular, unreadable, too big, not
 * movable, or changing on every send) as it was then: a scan leaves it out
 * until its inode, size, mtime or ctime (chmod) changes, so refused
 * entries never crowd the queue out or cost a log line each rescan. Keyed
 * by a hash of the name, chained in buckets, oldest replaced when full. */
struct skip {
    uint64_t hash;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    unsigned resends;               /* > 0: set aside as unstable (resend bound) */
    uint32_t next;                  /* bucket chain */
    bool used;
};

struct sl_spool {
    struct sl_spool_config cfg;
    int dirfd, sentfd, ino;
    struct entry *q;                /* ring of SL_SPOOL_QUEUE_MAX names */
    unsigned head, n;
    unsigned deferred;              /* queued entries with a not_before_us */
    bool stalled;                   /* every queued entry waits for quiet */
    bool rescan;                    /* queue or inotify overflowed: scan when drained */
    uint64_t scan_after_us;         /* the next scan not before */
    uint64_t unqueued;              /* candidates the last scan had no room for */
    bool cursor_set;                /* the last scan stopped at (cursor_mtime, cursor_name) */
    struct timespec cursor_mtime;
    char cursor_name[SL_FILE_NAME_MAX + 1];
    struct skip *skip;              /* SKIP_MAX entries */
    uint32_t *bucket;               /* SKIP_MAX chain heads */
    unsigned skip_next;             /* ring position: the next entry replaced */
    uint8_t *evbuf;                 /* EVENT_BUF, aligned for struct inotify_event */

    /* The file being sent: its descriptor at the first open, the copy in
     * progress, and the file id all copies share. */
    bool busy;
    char name[SL_FILE_NAME_MAX + 1];
    int fd;
    struct stat st0;
    unsigned copy;
    unsigned resends;               /* of the file being sent */
    struct sl_filesend fs;
    uint32_t next_id;

    uint64_t next_us;               /* rate: the next block may go then */
    uint64_t block_us;              /* wire time of one full block at the file rate */
    struct sl_spool_stats st;
};

bool sl_spool_ignored(const char *name)
{
    static const char *const tails[] = { ".tmp", "~", ".part", ".swp" };
    size_t n = strlen(name);
    if (n == 0 || name[0] == '.')
        return true;
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        size_t t = strlen(tails[i]);
        if (n >= t && strcmp(name + n - t, tails[i]) == 0)
            return true;
    }
    return false;
}

/* FNV-1a, 64 bit: the skip table's key. */
static uint64_t name_hash(const char *name)
{
    uint64_t h = FNV_START;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return h;
}

static struct skip *skip_find(const struct sl_spool *sp, uint64_t h)
{
    for (uint32_t i = sp->bucket[h & (SKIP_MAX - 1)]; i != SKIP_NONE; i = sp->skip[i].next)
        if (sp->skip[i].hash == h)
            return &sp->skip[i];
    return NULL;
}

static bool same_ts(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* True when name was refused as it is now (st from fstatat, no follow). */
static bool skipped(const struct sl_spool *sp, const char *name, const struct stat *st)
{
    const struct skip *k = skip_find(sp, name_hash(name));
    return k && k->dev == st->st_dev && k->ino == st->st_ino && k->size == st->st_size &&
           same_ts(&k->mtime, &st->st_mtim) && same_ts(&k->ctime, &st->st_ctim);
}

/* Remembers name as refused in its present state (a name gone is not
 * remembered). O(1); when full, the oldest entry is replaced. */
static void remember_skip(struct sl_spool *sp, const char *name, unsigned resends)
{
    struct stat st;
    if (fstatat(sp->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return;
    uint64_t h = name_hash(name);
    struct skip *k = skip_find(sp, h);
    if (!k) {
        uint32_t i = sp->skip_next;
        sp->skip_next = (i + 1) % SKIP_MAX;
        k = &sp->skip[i];
        if (k->used) {   /* unlink the oldest from its chain */
            uint32_t *at = &sp->bucket[k->hash & (SKIP_MAX - 1)];
            while (*at != i)
                at = &sp->skip[*at].next;
            *at = k->next;
        }
        k->hash = h;
        k->used = true;
        k->next = sp->bucket[h & (SKIP_MAX - 1)];
        sp->bucket[h & (SKIP_MAX - 1)] = i;
    }
    k->dev = st.st_dev;
    k->ino = st.st_ino;
    k->size = st.st_size;
    k->mtime = st.st_mtim;
    k->ctime = st.st_ctim;
    k->resends = resends;
}

static bool queued(const struct sl_spool *sp, const char *name)
{
    for (unsigned i = 0; i < sp->n; i++)
        if (strcmp(sp->q[(sp->head + i) % SL_SPOOL_QUEUE_MAX].name, name) == 0)
            return true;
    return false;
}

/* Appends name (or puts it first: a file replaced while sent). resends >
 * 0 makes it wait until not_before_us and then until it is quiet (a file
 * that changed while sent goes behind the others, not before them). A full
 * queue drops it and asks for a rescan once drained. O(queue). */
static void enqueue(struct sl_spool *sp, const char *name, bool front, unsigned resends, uint64_t not_before_us)
{
    if (sl_spool_ignored(name) || queued(sp, name))
        return;
    size_t len = strlen(name);
    if (len > SL_FILE_NAME_MAX) {
        sp->st.skipped_unreadable++;
        sl_log_id(SL_LOG_WARNING, "SL-TX-FILE-UNREADABLE", "spool: %.64s...: name longer than %u bytes; left",
                  name, SL_FILE_NAME_MAX);
        return;
    }
    if (sp->n == SL_SPOOL_QUEUE_MAX) {
        if (!sp->rescan)
            sl_log_id(SL_LOG_WARNING, "SL-TX-SPOOL-OVERFLOW",
                      "spool: more than %u files waiting; the directory is scanned again once these are sent",
                      SL_SPOOL_QUEUE_MAX);
        sp->rescan = true;
        return;
    }
    unsigned at;
    if (front) {
        sp->head = (sp->head + SL_SPOOL_QUEUE_MAX - 1) % SL_SPOOL_QUEUE_MAX;
        at = sp->head;
    } else {
        at = (sp->head + sp->n) % SL_SPOOL_QUEUE_MAX;
    }
    struct entry *e = &sp->q[at];
    memcpy(e->name, name, len + 1);
    e->resends = resends;
    e->not_before_us = not_before_us;
    e->mtime = (struct timespec){ 0 };
    e->size = -1;
    struct stat st;
    if (not_before_us && fstatat(sp->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        e->mtime = st.st_mtim;
        e->size = st.st_size;
    }
    sp->deferred += not_before_us ? 1u : 0u;
    sp->stalled = false;
    sp->n++;
}

struct aged {
    struct timespec mtime;
    char *name;
};

static int by_mtime(const void *a, const void *b)
{
    const struct aged *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* by_mtime's order for an entry against the scan cursor. */
static int after_cursor(const struct sl_spool *sp, const struct aged *a)
{
    if (a->mtime.tv_sec != sp->cursor_mtime.tv_sec)
        return a->mtime.tv_sec > sp->cursor_mtime.tv_sec;
    if (a->mtime.tv_nsec != sp->cursor_mtime.tv_nsec)
        return a->mtime.tv_nsec > sp->cursor_mtime.tv_nsec;
    return strcmp(a->name, sp->cursor_name) > 0;
}

/* Queues what the directory holds, oldest mtime first (at start, and after
 * an overflow once the queue drained), leaving out what is queued, being
 * sent, or was refused as it is now (the skip table). At most the queue's
 * room is taken, starting after the last entry the previous scan took
 * (then round to the start): every entry gets its turn however many lie
 * before it; the rest waits for the next scan (unqueued, in the backlog).
 * O(entries log entries), one fstatat each; allocates a list for the
 * sort: rare (a scan at most every SCAN_MIN_US). */
static void scan(struct sl_spool *sp, uint64_t now_us)
{
    sp->rescan = false;
    sp->scan_after_us = now_us + SCAN_MIN_US;
    sp->st.rescans++;
    int fd = openat(sp->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        sl_log_id(SL_LOG_ERR, "SL-TX-SPOOL-ERROR", "spool %s: cannot list: %s", sp->cfg.spool, strerror(errno));
        return;
    }
    struct aged *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (sl_spool_ignored(de->d_name) || fstatat(sp->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            S_ISDIR(st.st_mode) || (sp->busy && strcmp(de->d_name, sp->name) == 0) ||
            skipped(sp, de->d_name, &st) || queued(sp, de->d_name))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            struct aged *nv = realloc(v, nc * sizeof *v);
            if (!nv)
                break;
            v = nv;
            cap = nc;
        }
        v[n].mtime = st.st_mtim;
        v[n].name = strdup(de->d_name);
        if (v[n].name)
            n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof *v, by_mtime);
    size_t start = 0;
    if (sp->cursor_set)
        while (start < n && !after_cursor(sp, &v[start]))
            start++;
    size_t room = SL_SPOOL_QUEUE_MAX - sp->n, take = n < room ? n : room;
    for (size_t j = 0; j < take; j++) {
        size_t i = (start + j) % n;
        enqueue(sp, v[i].name, false, 0, 0);
        if (j + 1 == take && take < n) {
            sp->cursor_mtime = v[i].mtime;
            snprintf(sp->cursor_name, sizeof sp->cursor_name, "%s", v[i].name);
        }
    }
    sp->cursor_set = take < n;
    sp->unqueued = n - take;
    if (take < n && !sp->rescan) {
        sl_log_id(SL_LOG_WARNING, "SL-TX-SPOOL-OVERFLOW",
                  "spool: more than %u files waiting; the directory is scanned again once these are sent",
                  SL_SPOOL_QUEUE_MAX);
        sp->rescan = true;
    }
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* A name an event reports: queued; one set aside as unstable (resend
 * bound reached) keeps its count and waits to be quiet first, so it gets
 * one more attempt per writer's close, never a fresh series. */
static void arrived(struct sl_spool *sp, const char *name, uint64_t now_us)
{
    const struct skip *k = skip_find(sp, name_hash(name));
    if (k && k->resends)
        enqueue(sp, name, false, k->resends, now_us + QUIET_US);
    else
        enqueue(sp, name, false, 0, 0);
}

static void events(struct sl_spool *sp, uint64_t now_us)
{
    for (unsigned r = 0; r < EVENT_READS_PER_TURN; r++) {
        ssize_t len = read(sp->ino, sp->evbuf, EVENT_BUF);
        if (len <= 0)
            return;
        for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t)len;) {
            const struct inotify_event *ev = (const struct inotify_event *)(const void *)(sp->evbuf + off);
            off += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                sl_log_id(SL_LOG_WARNING, "SL-TX-SPOOL-OVERFLOW",
                          "spool: inotify queue overflowed; the directory is scanned again");
                sp->rescan = true;
            } else if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
                sl_log_id(SL_LOG_ERR, "SL-TX-SPOOL-ERROR",
                          "spool %s: the directory was removed or moved; files dropped there are no longer sent",
                          sp->cfg.spool);
            } else if (ev->len && !(ev->mask & IN_ISDIR) && !(sp->busy && strcmp(ev->name, sp->name) == 0)) {
                /* The file being sent is not queued again: a change to it
                 * is caught before its FILE_END (resent), a replacement
                 * when it is retired (queued then). */
                arrived(sp, ev->name, now_us);
            }
        }
    }
}

static void release(struct sl_spool *sp)
{
    sl_filesend_close(&sp->fs);
    if (sp->fd >= 0)
        close(sp->fd);
    sp->fd = -1;
    sp->busy = false;
}

/* A resend due: true when the file is as the last look saw it (quiet for
 * QUIET_US at least); else the look is renewed and it waits again. */
static bool quiet(struct sl_spool *sp, struct entry *e, uint64_t now_us)
{
    struct stat st;
    if (fstatat(sp->dirfd, e->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return true;   /* gone or odd: the open below says which */
    if (st.st_size == e->size && same_ts(&st.st_mtim, &e->mtime))
        return true;
    e->size = st.st_size;
    e->mtime = st.st_mtim;
    e->not_before_us = now_us + QUIET_US;
    return false;
}

/* The next queued name as the current file: opened without following a
 * link and without blocking on a FIFO, checked, its first copy started.
 * A resend not yet due or not quiet goes to the back; each entry is looked
 * at most once per call (stalled when all wait). */
static void start_next(struct sl_spool *sp, uint64_t now_us)
{
    unsigned looks = sp->n;
    while (!sp->busy && sp->n && looks--) {
        struct entry *e = &sp->q[sp->head];
        sp->head = (sp->head + 1) % SL_SPOOL_QUEUE_MAX;
        if (e->not_before_us && (now_us < e->not_before_us || !quiet(sp, e, now_us))) {
            struct entry *t = &sp->q[(sp->head + sp->n - 1) % SL_SPOOL_QUEUE_MAX];
            if (t != e)
                *t = *e;
            continue;
        }
        sp->n--;
        if (e->not_before_us)
            sp->deferred--;
        sp->resends = e->resends;
        memcpy(sp->name, e->name, sizeof sp->name);
        int fd = openat(sp->dirfd, sp->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT) {
                sp->st.vanished++;
                sl_log_id(SL_LOG_WARNING, "SL-TX-FILE-VANISHED", "spool: %s: gone before it was sent", sp->name);
            } else if (errno == ELOOP) {
                sp->st.skipped_symlink++;
                sl_log_id(SL_LOG_WARNING, "SL-TX-FILE-SYMLINK", "spool: %s: a symbolic link; refused, left",
                          sp->name);
                remember_skip(sp, sp->name, 0);
            } else {
                sp->st.skipped_unreadable++;
                sl_log_id(SL_LOG_WARNING, "SL-TX-FILE-UNREADABLE", "spool: %s: %s; left", sp->name,
                          strerror(errno));
                remember_skip(sp, sp->name, 0);
            }
            continue;
        }
        if (fstat(fd, &sp->st0) != 0 || !S_ISREG(sp->st0.st_mode)) {
            if (!S_ISDIR(sp->st0.st_mode)) {
                sp->st.skipped_unreadable++;
                sl_log_id(SL_LOG_WARNING, "SL-TX-FILE-UNREADABLE", "spool: %s: not a regular file; left",
                          sp->name);
                remember_skip(sp, sp->name, 0);
            }
            close(fd);
            continue;
        }
        if ((uint64_t)sp->st0.st_size > sp->cfg.max_bytes) {
            sp->st.skipped_too_big++;
            sl_log_id(SL_LOG_WARNING, "SL-TX-FILE-TOO-BIG",
                      "spool: %s: %llu bytes is over [files] max_bytes %llu; not sent, left in the spool",
                      sp->name, (unsigned long long)sp->st0.st_size, (unsigned long long)sp->cfg.max_bytes);
            remember_skip(sp, sp->name, 0);
            close(fd);
            continue;
        }
        sp->fd = fd;
        sp->copy = 0;
        sp->busy = true;
        sp->fs.fd = -1;
        sp->next_id++;
    }
    sp->stalled = !sp->busy && sp->n;
}

/* Opens the current copy on a duplicate of the file's descriptor: every
 * copy reads the inode first opened. false (logged, file released) on a
 * problem. */
static bool open_copy(struct sl_spool *sp)
{
    int fd = fcntl(sp->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        sl_log_id(SL_LOG_WARNING, "SL-TX-FILE-UNREADABLE", "spool: %s: %s; left", sp->name, strerror(errno));
        sp->st.skipped_unreadable++;
        release(sp);
        return false;
    }
    sl_err e = sl_filesend_open(&sp->fs, fd, sp->name, sp->next_id);
    if (e == SL_OK && sl_filesend_changed(&sp->fs, &sp->st0))
        e = SL_ERR_MISMATCH;
    if (e == SL_ERR_MISMATCH) {
        sl_filesend_close(&sp->fs);
        return false;   /* the caller resends it */
    }
    if (e != SL_OK) {
        sl_log_id(SL_LOG_WARNING, "SL-TX-FILE-UNREADABLE", "spool: %s: %s; left", sp->name, sl_strerror(e));
        sp->st.skipped_unreadable++;
        release(sp);
        return false;
    }
    return true;
}

/* After the last copy: moved to sent (a name taken there gets .1, .2 ...;
 * renameat2 RENAME_NOREPLACE never replaces one) or deleted. A file
 * replaced in the spool meanwhile stays: the new one is queued. */
static void retire(struct sl_spool *sp)
{
    struct stat now;
    sp->st.files_sent++;
    if (fstatat(sp->dirfd, sp->name, &now, AT_SYMLINK_NOFOLLOW) != 0) {
        sp->st.vanished++;
        sl_log_id(SL_LOG_WARNING, "SL-TX-FILE-VANISHED", "spool: %s: sent, but gone from the spool before it "
                  "could be %s", sp->name, sp->sentfd >= 0 ? "moved" : "deleted");
        return;
    }
    if (now.st_ino != sp->st0.st_ino || now.st_dev != sp->st0.st_dev) {
        sl_log_id(SL_LOG_NOTICE, "SL-TX-FILE-SENT", "spool: %s: sent as file %u; replaced in the spool meanwhile: "
                  "the new file is sent next", sp->name, sp->next_id);
        enqueue(sp, sp->name, true, 0, 0);
        return;
    }
    if (sp->sentfd < 0) {
        if (unlinkat(sp->dirfd, sp->name, 0) != 0) {
            sp->st.move_failed++;
            sl_log_id(SL_LOG_ERR, "SL-TX-FILE-MOVE-FAIL", "spool: %s: sent, but cannot delete it: %s", sp->name,
                      strerror(errno));
            remember_skip(sp, sp->name, 0);   /* not sent again by a rescan until it changes */
            return;
        }
        sl_log_id(SL_LOG_INFO, "SL-TX-FILE-SENT", "spool: %s: %llu bytes sent as file %u (%u cop%s), deleted",
                  sp->name, (unsigned long long)sp->st0.st_size, sp->next_id, sp->cfg.copies,
                  sp->cfg.copies == 1 ? "y" : "ies");
        return;
    }
    char to[SL_FILE_NAME_MAX + 16];
    snprintf(to, sizeof to, "%s", sp->name);
    for (unsigned i = 1;; i++) {
        if (renameat2(sp->dirfd, sp->name, sp->sentfd, to, RENAME_NOREPLACE) == 0)
            break;
        if (errno != EEXIST || i >= SENT_SUFFIX_MAX) {
            sp->st.move_failed++;
            sl_log_id(SL_LOG_ERR, "SL-TX-FILE-MOVE-FAIL", "spool: %s: sent, but cannot move it to %s: %s; left",
                      sp->name, sp->cfg.sent, strerror(errno));
            remember_skip(sp, sp->name, 0);
            return;
        }
        snprintf(to, sizeof to, "%s.%u", sp->name, i);
    }
    sl_log_id(SL_LOG_INFO, "SL-TX-FILE-SENT", "spool: %s: %llu bytes sent as file %u (%u cop%s), moved to %s/%s",
              sp->name, (unsigned long long)sp->st0.st_size, sp->next_id, sp->cfg.copies,
              sp->cfg.copies == 1 ? "y" : "ies", sp->cfg.sent, to);
}

/* Changed while sent: no FILE_END went; the whole file goes again under a
 * new id (the next open reads the file as it is now), behind the files
 * queued meanwhile and only once it has been quiet for QUIET_US, so a file
 * still being written neither holds the others up nor costs the link a
 * copy per change. After SL_SPOOL_RESENDS_MAX resends it is set aside
 * (left in the spool, skip table): an event for it later (a writer closed
 * it again) gives it one more attempt once quiet. */
static void resend(struct sl_spool *sp, uint64_t now_us)
{
    char name[SL_FILE_NAME_MAX + 1];
    memcpy(name, sp->name, sizeof name);
    unsigned n = sp->resends + 1;
    release(sp);
    if (n > SL_SPOOL_RESENDS_MAX) {
        sp->st.skipped_unstable++;
        sl_log_id(SL_LOG_WARNING, "SL-TX-FILE-UNSTABLE",
                  "spool: %s: changed while it was sent %u times; left in the spool, tried again once quiet after "
                  "its writer closes or moves it in again", name, n);
        remember_skip(sp, name, SL_SPOOL_RESENDS_MAX);
        return;
    }
    sp->st.resent_changed++;
    sl_log_id(SL_LOG_WARNING, "SL-TX-FILE-CHANGED",
              "spool: %s: changed while it was sent (size, mtime or inode); sending it again whole once unchanged "
              "for %u ms", name, QUIET_US / 1000u);
    enqueue(sp, name, false, n, now_us + QUIET_US);
}

/* One block of the current file; false when no more should go this turn. */
static bool step(struct sl_spool *sp, struct sl_sender *snd, sl_err *link, uint64_t now_us)
{
    if (sp->fs.fd < 0 && !open_copy(sp)) {
        if (sp->busy)
            resend(sp, now_us);
        return true;
    }
    uint64_t before = sp->fs.sent;
    bool done = false;
    sl_err e = sl_filesend_step(&sp->fs, snd, &done, link);
    sp->st.bytes_sent += sp->fs.sent - before;
    if (e == SL_ERR_MISMATCH) {
        resend(sp, now_us);
        return true;
    }
    if (e != SL_OK) {
        sp->st.skipped_unreadable++;
        sl_log_id(SL_LOG_WARNING, "SL-TX-FILE-UNREADABLE", "spool: %s: %s%s%s; left, not sent again until it "
                  "changes", sp->name, sl_strerror(e), e == SL_ERR_IO ? ": " : "",
                  e == SL_ERR_IO ? strerror(errno) : "");
        char name[SL_FILE_NAME_MAX + 1];
        memcpy(name, sp->name, sizeof name);
        release(sp);
        remember_skip(sp, name, 0);
        return true;
    }
    if (*link != SL_OK && before == sp->fs.sent && !done)
        return false;   /* no block to be had: the link is busy, try next turn */
    if (done) {
        sp->st.copies_sent++;
        sl_filesend_close(&sp->fs);
        if (++sp->copy >= sp->cfg.copies) {
            retire(sp);
            release(sp);
        }
    }
    return true;
}

sl_err sl_spool_run(struct sl_spool *sp, struct sl_sender *snd, uint64_t now_us)
{
    events(sp, now_us);
    sl_err link = SL_OK;
    /* At most one scan a turn and one per SCAN_MIN_US, once nothing queued
     * can go (drained, or every entry waits to be quiet). */
    if (sp->rescan && !sp->busy && (!sp->n || sp->stalled) && now_us >= sp->scan_after_us)
        scan(sp, now_us);
    for (unsigned i = 0; i < SL_SPOOL_BLOCKS_PER_TURN; i++) {
        start_next(sp, now_us);
        if (!sp->busy || now_us < sp->next_us)
            break;
        if (!step(sp, snd, &link, now_us))
            break;
        /* Charged a full block's wire time. A turn that came late may
         * catch up at most one turn's worth of blocks (a loop busy with
         * tags does not cost the file its share), never more: no credit
         * piles up while the spool was idle. */
        uint64_t burst = sp->block_us * SL_SPOOL_BLOCKS_PER_TURN;
        uint64_t floor = now_us > burst ? now_us - burst : 0;
        sp->next_us = (sp->next_us > floor ? sp->next_us : floor) + sp->block_us;
    }
    return link;
}

uint64_t sl_spool_deadline(const struct sl_spool *sp)
{
    if (sp->busy)
        return sp->next_us;
    uint64_t t = UINT64_MAX;
    if (sp->n && sp->deferred < sp->n)
        t = sp->next_us;   /* one can go now */
    else
        for (unsigned i = 0; i < sp->n; i++) {   /* only resends waiting: O(queue) */
            uint64_t nb = sp->q[(sp->head + i) % SL_SPOOL_QUEUE_MAX].not_before_us;
            t = nb < t ? nb : t;
        }
    if (sp->rescan && (!sp->n || sp->stalled) && sp->scan_after_us < t)
        t = sp->scan_after_us;
    return t == UINT64_MAX || t >= sp->next_us ? t : sp->next_us;
}

int sl_spool_fd(const struct sl_spool *sp)
{
    return sp->ino;
}

void sl_spool_stats(const struct sl_spool *sp, struct sl_spool_stats *out)
{
    *out = sp->st;
    out->backlog = sp->n + (sp->busy ? 1u : 0u) + sp->unqueued;
}

void sl_spool_log_counters(const struct sl_spool *sp)
{
    struct sl_spool_stats st;
    sl_spool_stats(sp, &st);
    sl_log(SL_LOG_INFO,
           "files: %llu sent (%llu copies, %llu bytes), %llu resent after a change, %llu vanished, skipped: "
           "%llu too big, %llu unreadable, %llu symlinks, %llu unstable; %llu not moved; backlog %llu",
           (unsigned long long)st.files_sent, (unsigned long long)st.copies_sent,
           (unsigned long long)st.bytes_sent, (unsigned long long)st.resent_changed,
           (unsigned long long)st.vanished, (unsigned long long)st.skipped_too_big,
           (unsigned long long)st.skipped_unreadable, (unsigned long long)st.skipped_symlink,
           (unsigned long long)st.skipped_unstable, (unsigned long long)st.move_failed, (unsigned long long)st.backlog);
}

void sl_spool_destroy(struct sl_spool *sp)
{
    if (!sp)
        return;
    release(sp);
    if (sp->ino >= 0)
        close(sp->ino);
    if (sp->dirfd >= 0)
        close(sp->dirfd);
    if (sp->sentfd >= 0)
        close(sp->sentfd);
    free(sp->q);
    free(sp->skip);
    free(sp->bucket);
    free(sp->evbuf);
    free(sp);
}

/* O_NOFOLLOW directory descriptor; a symbolic link is ELOOP (O_DIRECTORY
 * says ENOTDIR for one). */
static int open_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat lst;
    if (fd < 0 && errno == ENOTDIR && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
        errno = ELOOP;
    return fd;
}

sl_err sl_spool_create(struct sl_spool **out, const struct sl_spool_config *cfg)
{
    *out = NULL;
    if (!cfg->spool || cfg->copies < 1 || cfg->copies > 8 || !cfg->max_bytes || !(cfg->rate_mbps > 0))
        return SL_ERR_RANGE;
    struct sl_spool *sp = calloc(1, sizeof *sp);
    if (!sp)
        return SL_ERR_NOMEM;
    sp->cfg = *cfg;
    sp->dirfd = sp->sentfd = sp->ino = sp->fd = -1;
    sp->fs.fd = -1;
    sp->q = calloc(SL_SPOOL_QUEUE_MAX, sizeof *sp->q);
    sp->skip = calloc(SKIP_MAX, sizeof *sp->skip);
    sp->bucket = malloc(SKIP_MAX * sizeof *sp->bucket);
    sp->evbuf = aligned_alloc(__alignof__(struct inotify_event), EVENT_BUF);
    if (!sp->q || !sp->skip || !sp->bucket || !sp->evbuf) {
        sl_spool_destroy(sp);
        return SL_ERR_NOMEM;
    }
    for (unsigned i = 0; i < SKIP_MAX; i++)
        sp->bucket[i] = SKIP_NONE;
    /* bits / (Mbit/s) = us */
    sp->block_us = (uint64_t)((double)cfg->block_wire_bytes * 8.0 / cfg->rate_mbps);
    sp->dirfd = open_dir(cfg->spool);
    if (sp->dirfd >= 0 && cfg->sent && cfg->sent[0])
        sp->sentfd = open_dir(cfg->sent);
    sp->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", sp->dirfd);
    /* Watched through the descriptor itself: the directory opened, not
     * whatever the path names by now. */
    if (sp->dirfd < 0 || (cfg->sent && cfg->sent[0] && sp->sentfd < 0) || sp->ino < 0 ||
        inotify_add_watch(sp->ino, self, IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                          IN_ONLYDIR) < 0) {
        int err = errno;
        sl_spool_destroy(sp);
        errno = err;
        return SL_ERR_IO;
    }
    scan(sp, 0);
    sp->scan_after_us = 0;
    *out = sp;
    return SL_OK;
}
