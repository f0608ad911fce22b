/* sluice-tx's journal directory, opening and flusher thread (sl_journald.h). */
#define _GNU_SOURCE
#include "sl_journald.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_log.h"

struct sl_journald {
    int state_fd;                    /* state_dir, held until the journal dir is open */
    int dir_fd;                      /* state_dir/journal, or -1 until made */
    char state_dir[4096];
    struct sl_journal *j;

    pthread_t thread;
    bool running;
    pthread_mutex_t lock;            /* stop, failing, last_errno */
    pthread_cond_t wake;
    bool stop;
    bool failing;
    int last_errno;
};

/* Hands every entry of dir_fd that is not uid's to uid:gid (the journal's
 * files from a run that kept root). */
static sl_err chown_entries(int dir_fd, uid_t uid, gid_t gid)
{
    int fd = dup(dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return SL_ERR_IO;
    }
    sl_err e = SL_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        /* The journal's own files are regular with one link: a hard link
         * the run user made to someone else's file is left alone (root
         * would otherwise hand that file over). */
        if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
            continue;
        if ((st.st_uid != uid || st.st_gid != gid) &&
            fchownat(dir_fd, de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
            e = SL_ERR_IO;
    }
    closedir(d);
    return e;
}

/* The journal directory in state_fd, made and opened. */
static int open_dir(int state_fd, bool *made)
{
    *made = mkdirat(state_fd, SL_JOURNAL_DIR_NAME, 0700) == 0;
    if (!*made && errno != EEXIST)
        return -1;
    return openat(state_fd, SL_JOURNAL_DIR_NAME, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

sl_err sl_journald_prepare(struct sl_journald **out, const char *state_dir, bool drop, uid_t uid,
                           gid_t gid)
{
    *out = NULL;
    struct sl_journald *jd = calloc(1, sizeof *jd);
    if (!jd)
        return SL_ERR_NOMEM;
    jd->dir_fd = -1;
    jd->state_fd = -1;
    snprintf(jd->state_dir, sizeof jd->state_dir, "%s", state_dir);
    pthread_mutex_init(&jd->lock, NULL);
    pthread_condattr_t ca;   /* the flusher's timed wait runs on the monotonic clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&jd->wake, &ca);
    pthread_condattr_destroy(&ca);
    jd->state_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (jd->state_fd < 0 || fstat(jd->state_fd, &st) != 0) {
        sl_log_id(SL_LOG_ERR, "SL-TX-JOURNAL-OPEN", "journal: cannot open state_dir %s: %s", state_dir,
                  strerror(errno));
        sl_journald_destroy(jd);
        return SL_ERR_IO;
    }
    /* state_dir the user's own (the systemd unit's /var/lib/sluice): the
     * user makes the directory after the drop, owned right from the start. */
    if (drop && st.st_uid == uid) {
        int fd = openat(jd->state_fd, SL_JOURNAL_DIR_NAME, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        struct stat js;
        if (fd >= 0 && (fstat(fd, &js) != 0 || js.st_uid != uid)) {
            close(fd);
            fd = -1;   /* someone else's: below, as for a foreign state_dir */
        } else {
            jd->dir_fd = fd;   /* may be -1: made after the drop */
            *out = jd;
            return SL_OK;
        }
    }
    bool made = false;
    jd->dir_fd = open_dir(jd->state_fd, &made);
    if (jd->dir_fd < 0) {
        sl_log_id(SL_LOG_ERR, "SL-TX-JOURNAL-OPEN", "journal: cannot make %s/" SL_JOURNAL_DIR_NAME ": %s",
                  state_dir, strerror(errno));
        sl_journald_destroy(jd);
        return SL_ERR_IO;
    }
    struct stat js;
    if (drop && fstat(jd->dir_fd, &js) == 0 && (js.st_uid != uid || js.st_gid != gid || made)) {
        if (fchown(jd->dir_fd, uid, gid) != 0 || chown_entries(jd->dir_fd, uid, gid) != SL_OK) {
            sl_log_id(SL_LOG_ERR, "SL-TX-JOURNAL-OPEN",
                      "journal: cannot hand %s/" SL_JOURNAL_DIR_NAME " to uid %u: %s; chown it (and what "
                      "is in it) to the [tx] user", state_dir, (unsigned)uid, strerror(errno));
            if (made)
                unlinkat(jd->state_fd, SL_JOURNAL_DIR_NAME, AT_REMOVEDIR);
            sl_journald_destroy(jd);
            return SL_ERR_IO;
        }
    }
    *out = jd;
    return SL_OK;
}

/* ---- the flusher --------------------------------------------------------- */

/* A flush's outcome: logged only when the state changes (failing or
 * working again), so a full disk writes one line, not ten a second. */
static void flush_result(struct sl_journald *jd, sl_err e, int err)
{
    pthread_mutex_lock(&jd->lock);
    bool was = jd->failing;
    jd->failing = e != SL_OK;
    if (e != SL_OK)
        jd->last_errno = err;
    pthread_mutex_unlock(&jd->lock);
    if (e != SL_OK && !was) {
        sl_log_id(SL_LOG_ERR, "SL-TX-JOURNAL-WRITE",
                  "journal: writing %s/" SL_JOURNAL_DIR_NAME " failed: %s; changes stay in memory (then are "
                  "counted lost), live values go on", jd->state_dir, e == SL_ERR_IO ? strerror(err) : sl_strerror(e));
    } else if (e == SL_OK && was) {
        struct sl_journal_stats st;
        sl_journal_stats(jd->j, &st);
        sl_log_id(SL_LOG_NOTICE, "SL-TX-JOURNAL-WRITE",
                  "journal: writes work again (%llu failed flushes, %llu changes lost so far)",
                  (unsigned long long)st.write_errors, (unsigned long long)st.lost);
    }
}

static void *flusher(void *arg)
{
    struct sl_journald *jd = arg;
    uint64_t next_trim = sl_clock_mono_us() + SL_JOURNALD_TRIM_MS * 1000ull;
    pthread_mutex_lock(&jd->lock);
    while (!jd->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)SL_JOURNALD_FLUSH_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&jd->wake, &jd->lock, &ts);
        if (jd->stop)
            break;
        pthread_mutex_unlock(&jd->lock);
        sl_err e = sl_journal_flush(jd->j);
        flush_result(jd, e, errno);
        uint64_t now = sl_clock_mono_us();
        if (now >= next_trim) {
            next_trim = now + SL_JOURNALD_TRIM_MS * 1000ull;
            if (sl_journal_trim_clocks(jd->j, sl_clock_wall_us(), sl_clock_mono_us()) != SL_OK)
                sl_log_id(SL_LOG_WARNING, "SL-TX-JOURNAL-WRITE", "journal: deleting an old segment failed: %s",
                          strerror(errno));
        }
        pthread_mutex_lock(&jd->lock);
    }
    pthread_mutex_unlock(&jd->lock);
    return NULL;
}

/* What the opening scan found, said once. */
static void log_open(const struct sl_journald *jd, const struct sl_journal_stats *st)
{
    if (st->open_torn_bytes || st->open_bad_segments)
        sl_log_id(SL_LOG_WARNING, "SL-TX-JOURNAL-DAMAGE",
                  "journal: %llu torn bytes cut from the newest segment, %llu damaged segment(s) (shortened or "
                  "deleted): the seqs they held are gone",
                  (unsigned long long)st->open_torn_bytes, (unsigned long long)st->open_bad_segments);
    if (st->open_mark_lost)
        sl_log_id(SL_LOG_WARNING, "SL-TX-JOURNAL-DAMAGE",
                  "journal: the seq mark (mark) was missing or damaged: seqs continue at %llu, above "
                  "anything handed out before", (unsigned long long)st->next_seq);
    if (st->open_id_renewed)
        sl_log_id(SL_LOG_WARNING, "SL-TX-JOURNAL-DAMAGE",
                  "journal: its id file was missing or damaged: new journal id %016llx (RX starts a new "
                  "sequence for it); the %llu segment(s) of the unknown journal deleted, not re-sent",
                  (unsigned long long)st->journal_id, (unsigned long long)st->open_discarded_segments);
    if (st->open_schema_changed)
        sl_log_id(SL_LOG_NOTICE, "SL-TX-JOURNAL-OPEN",
                  "journal: the tag maps changed since its records were made: new journal id %016llx, %llu "
                  "segment(s) of the old one deleted (their tag ids now name other tags; RX counts what it "
                  "had not received of them as lost)",
                  (unsigned long long)st->journal_id, (unsigned long long)st->open_discarded_segments);
    sl_log(SL_LOG_INFO, "journal: %s/" SL_JOURNAL_DIR_NAME ", id %016llx, next seq %llu, %llu segment(s), "
           "%llu bytes, oldest seq %llu", jd->state_dir, (unsigned long long)st->journal_id,
           (unsigned long long)st->next_seq, (unsigned long long)st->segments, (unsigned long long)st->bytes,
           (unsigned long long)st->oldest_seq);
}

sl_err sl_journald_start(struct sl_journald *jd, const struct sl_journal_config *cfg)
{
    if (jd->dir_fd < 0) {
        bool made;
        jd->dir_fd = open_dir(jd->state_fd, &made);
        if (jd->dir_fd < 0) {
            sl_log_id(SL_LOG_ERR, "SL-TX-JOURNAL-OPEN", "journal: cannot make %s/" SL_JOURNAL_DIR_NAME ": %s",
                      jd->state_dir, strerror(errno));
            return SL_ERR_IO;
        }
    }
    close(jd->state_fd);
    jd->state_fd = -1;
    sl_err e = sl_journal_open_at(&jd->j, cfg, jd->dir_fd);
    if (e != SL_OK) {
        sl_log_id(SL_LOG_ERR, "SL-TX-JOURNAL-OPEN", "journal: cannot open %s/" SL_JOURNAL_DIR_NAME ": %s%s%s",
                  jd->state_dir, sl_strerror(e), e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "");
        return e;
    }
    struct sl_journal_stats st;
    sl_journal_stats(jd->j, &st);
    log_open(jd, &st);
    int rc = pthread_create(&jd->thread, NULL, flusher, jd);
    if (rc != 0) {
        errno = rc;
        sl_log(SL_LOG_ERR, "journal: cannot start the flusher thread: %s", strerror(rc));
        return SL_ERR_IO;
    }
    (void)pthread_setname_np(jd->thread, "tx-journal");   /* ps -L, top -H */
    jd->running = true;
    return SL_OK;
}

struct sl_journal *sl_journald_journal(struct sl_journald *jd)
{
    return jd ? jd->j : NULL;
}

void sl_journald_stats(struct sl_journald *jd, struct sl_journald_stats *out)
{
    memset(out, 0, sizeof *out);
    if (jd->j)
        sl_journal_stats(jd->j, &out->j);
    pthread_mutex_lock(&jd->lock);
    out->failing = jd->failing;
    out->last_errno = jd->last_errno;
    pthread_mutex_unlock(&jd->lock);
}

void sl_journald_destroy(struct sl_journald *jd)
{
    if (!jd)
        return;
    if (jd->running) {
        pthread_mutex_lock(&jd->lock);
        jd->stop = true;
        pthread_cond_signal(&jd->wake);
        pthread_mutex_unlock(&jd->lock);
        pthread_join(jd->thread, NULL);
    }
    if (jd->j) {
        struct sl_journal_stats st;
        sl_journal_stats(jd->j, &st);
        sl_journal_close(jd->j);   /* the last flush and the exact mark */
        sl_log(SL_LOG_INFO, "journal: closed at seq %llu: %llu change(s) appended this run, %llu lost, %llu "
               "failed flush(es)", (unsigned long long)st.next_seq, (unsigned long long)st.appended,
               (unsigned long long)st.lost, (unsigned long long)st.write_errors);
    }
    if (jd->dir_fd >= 0)
        close(jd->dir_fd);
    if (jd->state_fd >= 0)
        close(jd->state_fd);
    pthread_cond_destroy(&jd->wake);
    pthread_mutex_destroy(&jd->lock);
    free(jd);
}
