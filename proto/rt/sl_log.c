#include "sl_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_clock.h"

/* Call sites tracked for the rate limit. A program has a few hundred log
 * calls at most and only a handful repeat; when the table is full the
 * oldest window is taken over (it can only make a limit restart early). */
#define SITES 64u

/* A rendered line: the text plus the longest prefix ("<N>", or the
 * program name, the level word and "[ID] ") and the newline. */
#define OUT_MAX (SL_LOG_LINE_MAX + 160u)

struct site {
    const char *fmt;
    const char *id;       /* message id of the site's lines, or NULL */
    uint64_t text_hash;   /* for a pass-through "%s" site: which text */
    uint64_t window_ms;
    unsigned lines;
    unsigned long long suppressed;
};

/* mu guards the site table only; nothing is written while it is held.
 * prog and journal are set by sl_log_init, before any thread logs. */
static struct {
    pthread_mutex_t mu;
    char prog[64];
    atomic_bool journal;
    atomic_int level;
    struct site site[SITES];
    atomic_ullong suppressed_total;
    atomic_ullong lost_total;
} L = { .mu = PTHREAD_MUTEX_INITIALIZER, .prog = "sluice", .level = SL_LOG_INFO };

/* One deferred thread's ring: a single producer (the thread), a single
 * consumer at a time (whoever holds flush_mu). Records are variable length
 * and never split: one that does not fit before the end of the buffer is
 * preceded by a pad to the end. head and tail count bytes since the start;
 * the producer publishes a record with a release store of head, the
 * consumer frees its space with a release store of tail. */
enum { RING_FREE, RING_OWNED, RING_ENDED };

struct rec {
    uint32_t size;        /* bytes of the whole record, aligned; 0: pad to the end */
    uint16_t len;         /* bytes of text (no NUL) */
    uint8_t level;
    uint8_t limited;      /* 0: never rate limited (configuration problems) */
    const char *fmt;
    const char *id;
    uint64_t hash;
    uint64_t mono_ms;
};

struct ring {
    _Alignas(64) atomic_ullong head;
    _Alignas(64) atomic_ullong tail;
    atomic_ullong lost;          /* producer: lines dropped on a full ring */
    unsigned long long lost_told; /* consumer: how many of them were reported */
    atomic_int state;
    _Alignas(8) unsigned char buf[SL_LOG_DEFER_BYTES];
};

static struct ring rings[SL_LOG_DEFER_THREADS];
static pthread_mutex_t flush_mu = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local struct ring *my_ring;

static const char *const names[8] = {
    [SL_LOG_ERR] = "error", [SL_LOG_WARNING] = "warning", [SL_LOG_NOTICE] = "notice",
    [SL_LOG_INFO] = "info", [SL_LOG_DEBUG] = "debug",
};

/* JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected; it only
 * counts when stderr is still that stream (not redirected by a script). */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void sl_log_init(const char *prog)
{
    pthread_mutex_lock(&L.mu);
    snprintf(L.prog, sizeof L.prog, "%s", prog ? prog : "sluice");
    atomic_store_explicit(&L.journal, stderr_is_journal(), memory_order_relaxed);
    pthread_mutex_unlock(&L.mu);
}

sl_err sl_log_level_parse(enum sl_log_level *out, const char *name)
{
    for (int l = SL_LOG_ERR; l <= SL_LOG_DEBUG; l++) {
        if (name && strcmp(name, names[l]) == 0) {
            *out = (enum sl_log_level)l;
            return SL_OK;
        }
    }
    return SL_ERR_RANGE;
}

const char *sl_log_level_name(enum sl_log_level l)
{
    return l >= SL_LOG_ERR && l <= SL_LOG_DEBUG ? names[l] : "?";
}

void sl_log_set_level(enum sl_log_level l)
{
    atomic_store_explicit(&L.level, (int)l, memory_order_relaxed);
}

/* One relaxed load: debug lines sit on the per-block path of rx-intake,
 * which must not wait on a lock a writing thread holds. */
bool sl_log_enabled(enum sl_log_level l)
{
    return (int)l <= atomic_load_explicit(&L.level, memory_order_relaxed);
}

/* Renders one output line into out[OUT_MAX]; returns its length. id:
 * "[ID] " goes first in the text, after any prefix, so the same grep finds
 * it on a terminal and in the journal. */
static size_t render(char *out, enum sl_log_level l, const char *id, const char *text, size_t len)
{
    const char *open = id ? "[" : "", *close = id ? "] " : "";
    if (!id)
        id = "";
    int n;
    if (atomic_load_explicit(&L.journal, memory_order_relaxed))
        n = snprintf(out, OUT_MAX, "<%d>%s%s%s%.*s\n", (int)l, open, id, close, (int)len, text);
    else if (l == SL_LOG_INFO || l == SL_LOG_NOTICE)
        n = snprintf(out, OUT_MAX, "%s: %s%s%s%.*s\n", L.prog, open, id, close, (int)len, text);
    else
        n = snprintf(out, OUT_MAX, "%s: %s: %s%s%s%.*s\n", L.prog, sl_log_level_name(l), open, id, close,
                     (int)len, text);
    if (n < 0)
        return 0;
    if ((size_t)n >= OUT_MAX) {   /* cut: still one line */
        out[OUT_MAX - 2] = '\n';
        return OUT_MAX - 1;
    }
    return (size_t)n;
}

/* One write(2) of a whole line, outside every lock: lines of different
 * threads never interleave inside a line (a pipe or the journal's stream
 * socket takes up to PIPE_BUF bytes at once). A short write is finished;
 * an error drops the rest (there is nowhere to report it). */
static void put(const char *line, size_t len)
{
    while (len > 0) {
        ssize_t n = write(2, line, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        line += n;
        len -= (size_t)n;
    }
}

/* Called with the mutex held. True when this line may be written. When a
 * window of this site with suppressed lines has ended, its "suppressed"
 * note is rendered into note (*note_len > 0) for the caller to write
 * first, outside the lock. */
static bool admit(enum sl_log_level l, const char *id, const char *fmt, uint64_t text_hash, uint64_t now,
                  char *note, size_t *note_len)
{
    *note_len = 0;
    struct site *s = NULL, *oldest = &L.site[0];
    for (unsigned i = 0; i < SITES; i++) {
        if (L.site[i].fmt == fmt && L.site[i].text_hash == text_hash) {
            s = &L.site[i];
            break;
        }
        if (L.site[i].window_ms < oldest->window_ms)
            oldest = &L.site[i];
    }
    if (!s) {
        s = oldest;
        *s = (struct site){ .fmt = fmt, .id = id, .text_hash = text_hash, .window_ms = now };
    }
    /* Lines reach the table out of time order (the clock is read before
     * the lock; deferred lines arrive up to a flush period late). */
    if (now < s->window_ms)
        now = s->window_ms;
    if (now - s->window_ms >= SL_LOG_WINDOW_MS) {
        if (s->suppressed) {
            char text[SL_LOG_LINE_MAX];
            int n = snprintf(text, sizeof text, "%llu similar lines suppressed in %u s (\"%.80s\")",
                             s->suppressed, SL_LOG_WINDOW_MS / 1000u, fmt);
            size_t tl = n < 0 ? 0 : (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
            *note_len = render(note, l, s->id, text, tl);
        }
        s->window_ms = now;
        s->lines = 0;
        s->suppressed = 0;
    }
    if (s->lines >= SL_LOG_BURST) {
        s->suppressed++;
        atomic_fetch_add_explicit(&L.suppressed_total, 1, memory_order_relaxed);
        return false;
    }
    s->lines++;
    return true;
}

/* FNV-1a of a line. A call site is its format string, except for the
 * pass-through format "%s" (one literal, merged by the compiler, used by
 * callers that build a line elsewhere): there the line itself is the site,
 * so one repeated line is limited without silencing every other "%s" line. */
static uint64_t site_hash(const char *fmt, const char *text)
{
    if (strcmp(fmt, "%s") != 0)
        return 0;
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

/* Rate limit (fmt NULL: none), then the note and the line, each one write. */
static void admit_and_put(enum sl_log_level l, const char *id, const char *fmt, uint64_t hash, uint64_t now,
                          const char *text, size_t len)
{
    char note[OUT_MAX], line[OUT_MAX];
    size_t note_len = 0;
    bool ok = true;
    if (fmt) {
        pthread_mutex_lock(&L.mu);
        ok = admit(l, id, fmt, hash, now, note, &note_len);
        pthread_mutex_unlock(&L.mu);
    }
    if (note_len)
        put(note, note_len);
    if (ok)
        put(line, render(line, l, id, text, len));
}

/* The producer side of a deferred thread: copies one line into its ring,
 * or counts it lost when the ring has no room. Wait-free. */
static void defer_push(struct ring *r, enum sl_log_level l, const char *id, const char *fmt, uint64_t hash,
                       uint64_t now, const char *text, size_t len)
{
    size_t need = (sizeof(struct rec) + len + 7u) & ~(size_t)7u;
    unsigned long long head = atomic_load_explicit(&r->head, memory_order_relaxed);
    unsigned long long tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t off = (size_t)(head % SL_LOG_DEFER_BYTES), to_end = SL_LOG_DEFER_BYTES - off;
    size_t skip = to_end < need ? to_end : 0;
    if (SL_LOG_DEFER_BYTES - (head - tail) < skip + need) {
        atomic_fetch_add_explicit(&r->lost, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&L.lost_total, 1, memory_order_relaxed);
        return;
    }
    if (skip) {
        if (skip >= sizeof(struct rec))
            memcpy(r->buf + off, &(struct rec){ .size = 0 }, sizeof(struct rec));
        head += skip;
        off = 0;
    }
    struct rec h = { .size = (uint32_t)need, .len = (uint16_t)len, .level = (uint8_t)l,
                     .limited = fmt != NULL, .fmt = fmt, .id = id, .hash = hash, .mono_ms = now };
    memcpy(r->buf + off, &h, sizeof h);
    memcpy(r->buf + off + sizeof h, text, len);
    atomic_store_explicit(&r->head, head + need, memory_order_release);
}

/* Takes every record of one ring; called with flush_mu held. */
static size_t defer_drain(struct ring *r)
{
    size_t taken = 0;
    unsigned long long tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    unsigned long long head = atomic_load_explicit(&r->head, memory_order_acquire);
    char text[SL_LOG_LINE_MAX];
    while (tail != head) {
        size_t off = (size_t)(tail % SL_LOG_DEFER_BYTES), to_end = SL_LOG_DEFER_BYTES - off;
        struct rec h;
        if (to_end < sizeof h) {
            tail += to_end;
            continue;
        }
        memcpy(&h, r->buf + off, sizeof h);
        if (h.size == 0) {
            tail += to_end;
            continue;
        }
        memcpy(text, r->buf + off + sizeof h, h.len);
        tail += h.size;
        /* The space is free before the write, which may wait. */
        atomic_store_explicit(&r->tail, tail, memory_order_release);
        admit_and_put((enum sl_log_level)h.level, h.id, h.limited ? h.fmt : NULL, h.hash, h.mono_ms, text, h.len);
        taken++;
    }
    atomic_store_explicit(&r->tail, tail, memory_order_release);
    unsigned long long lost = atomic_load_explicit(&r->lost, memory_order_relaxed);
    if (lost != r->lost_told) {
        char note[64];
        int n = snprintf(note, sizeof note, "%llu log lines lost: queue full", lost - r->lost_told);
        r->lost_told = lost;
        admit_and_put(SL_LOG_WARNING, NULL, NULL, 0, 0, note, n > 0 ? (size_t)n : 0);
    }
    return taken;
}

sl_err sl_log_defer_thread(void)
{
    if (my_ring)
        return SL_OK;
    for (unsigned i = 0; i < SL_LOG_DEFER_THREADS; i++) {
        int free_state = RING_FREE;
        if (atomic_compare_exchange_strong_explicit(&rings[i].state, &free_state, RING_OWNED, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            my_ring = &rings[i];
            return SL_OK;
        }
    }
    return SL_ERR_TABLE_FULL;
}

void sl_log_defer_end(void)
{
    if (!my_ring)
        return;
    atomic_store_explicit(&my_ring->state, RING_ENDED, memory_order_release);
    my_ring = NULL;
}

size_t sl_log_flush_deferred(void)
{
    if (my_ring)
        return 0;
    size_t taken = 0;
    int saved = errno;
    pthread_mutex_lock(&flush_mu);
    for (unsigned i = 0; i < SL_LOG_DEFER_THREADS; i++) {
        struct ring *r = &rings[i];
        int st = atomic_load_explicit(&r->state, memory_order_acquire);
        if (st == RING_FREE)
            continue;
        taken += defer_drain(r);
        if (st == RING_ENDED) {
            /* Its thread wrote its last line before ending it: empty now.
             * Counters start again for the next owner. */
            atomic_store_explicit(&r->lost, 0, memory_order_relaxed);
            r->lost_told = 0;
            atomic_store_explicit(&r->state, RING_FREE, memory_order_release);
        }
    }
    pthread_mutex_unlock(&flush_mu);
    errno = saved;
    return taken;
}

unsigned long long sl_log_deferred_lost(void)
{
    return atomic_load_explicit(&L.lost_total, memory_order_relaxed);
}

/* One line: level, format (no lock), then to the ring (deferred thread) or
 * rate limit and write. errno is kept: callers log and then return it. */
static void logv(enum sl_log_level l, const char *id, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void logv(enum sl_log_level l, const char *id, const char *fmt, va_list ap)
{
    if (!sl_log_enabled(l))
        return;
    int saved = errno;
    char text[SL_LOG_LINE_MAX];
    uint64_t now = sl_clock_mono_ms();
    int n = vsnprintf(text, sizeof text, fmt, ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
    uint64_t h = site_hash(fmt, text);
    if (my_ring)
        defer_push(my_ring, l, id, fmt, h, now, text, len);
    else
        admit_and_put(l, id, fmt, h, now, text, len);
    errno = saved;
}

void sl_logv(enum sl_log_level l, const char *fmt, va_list ap)
{
    logv(l, NULL, fmt, ap);
}

void sl_log_id(enum sl_log_level l, const char *id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    logv(l, id, fmt, ap);
    va_end(ap);
}

void sl_log(enum sl_log_level l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_logv(l, fmt, ap);
    va_end(ap);
}

void sl_log_diag(const struct sl_diag *d)
{
    size_t need = 0;
    char *text = NULL;
    if (sl_diag_render(NULL, 0, &need, d) == SL_ERR_OVERFLOW && (text = malloc(need + 1)) &&
        sl_diag_render(text, need + 1, &need, d) == SL_OK) {
        bool journal = atomic_load_explicit(&L.journal, memory_order_relaxed);
        char *save = NULL;   /* strtok_r: TX logs from its poller threads too */
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            size_t len = strnlen(line, SL_LOG_LINE_MAX - 1);
            if (my_ring) {
                defer_push(my_ring, SL_LOG_ERR, NULL, NULL, 0, 0, line, len);
            } else {
                /* As written before: a bare "file:line: message" on a terminal. */
                char out[OUT_MAX];
                int n = journal ? snprintf(out, sizeof out, "<%d>%.*s\n", (int)SL_LOG_ERR, (int)len, line)
                                : snprintf(out, sizeof out, "%.*s\n", (int)len, line);
                if (n > 0)
                    put(out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1);
            }
        }
    } else if (sl_diag_total(d)) {
        sl_log(SL_LOG_ERR, "%zu configuration problems (out of memory rendering them)", sl_diag_total(d));
    }
    free(text);
}

unsigned long long sl_log_suppressed(void)
{
    return atomic_load_explicit(&L.suppressed_total, memory_order_relaxed);
}
