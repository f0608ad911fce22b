#include "sl_log.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sl_clock.h"

/* Call sites tracked for the rate limit. A program has a few hundred log
 * calls at most and only a handful repeat; when the table is full the
 * oldest window is taken over (it can only make a limit restart early). */
#define SITES 64u

struct site {
    const char *fmt;
    const char *id;       /* message id of the site's lines, or NULL */
    uint64_t text_hash;   /* for a pass-through "%s" site: which text */
    uint64_t window_ms;
    unsigned lines;
    unsigned long long suppressed;
};

static struct {
    pthread_mutex_t mu;
    char prog[64];
    bool journal;
    enum sl_log_level level;
    struct site site[SITES];
    unsigned long long suppressed_total;
} L = { .mu = PTHREAD_MUTEX_INITIALIZER, .prog = "sluice", .level = SL_LOG_INFO };

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
    L.journal = stderr_is_journal();
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
    pthread_mutex_lock(&L.mu);
    L.level = l;
    pthread_mutex_unlock(&L.mu);
}

bool sl_log_enabled(enum sl_log_level l)
{
    pthread_mutex_lock(&L.mu);
    bool on = l <= L.level;
    pthread_mutex_unlock(&L.mu);
    return on;
}

/* Called with the mutex held. id: "[ID] " goes first in the text, after
 * any prefix, so the same grep finds it on a terminal and in the journal. */
static void emit(enum sl_log_level l, const char *id, const char *text)
{
    const char *open = id ? "[" : "", *close = id ? "] " : "";
    if (!id)
        id = "";
    if (L.journal)
        fprintf(stderr, "<%d>%s%s%s%s\n", (int)l, open, id, close, text);
    else if (l == SL_LOG_INFO || l == SL_LOG_NOTICE)
        fprintf(stderr, "%s: %s%s%s%s\n", L.prog, open, id, close, text);
    else
        fprintf(stderr, "%s: %s: %s%s%s%s\n", L.prog, sl_log_level_name(l), open, id, close, text);
}

/* Called with the mutex held. True when this line may be written; flushes
 * the suppressed count of a window that has ended. */
static bool admit(enum sl_log_level l, const char *id, const char *fmt, uint64_t text_hash, uint64_t now)
{
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
    if (now - s->window_ms >= SL_LOG_WINDOW_MS) {
        if (s->suppressed) {
            char note[SL_LOG_LINE_MAX];
            snprintf(note, sizeof note, "%llu similar lines suppressed in %u s (\"%.80s\")", s->suppressed,
                     SL_LOG_WINDOW_MS / 1000u, fmt);
            emit(l, s->id, note);
        }
        s->window_ms = now;
        s->lines = 0;
        s->suppressed = 0;
    }
    if (s->lines >= SL_LOG_BURST) {
        s->suppressed++;
        L.suppressed_total++;
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

/* One line: format, rate limit by call site, write. */
static void logv(enum sl_log_level l, const char *id, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void logv(enum sl_log_level l, const char *id, const char *fmt, va_list ap)
{
    /* A line below the level costs one lock, not a format and a clock read
     * (debug lines sit on the per-block path). */
    if (!sl_log_enabled(l))
        return;
    char text[SL_LOG_LINE_MAX];
    uint64_t now = sl_clock_mono_ms();
    vsnprintf(text, sizeof text, fmt, ap);
    uint64_t h = site_hash(fmt, text);
    pthread_mutex_lock(&L.mu);
    if (l <= L.level && admit(l, id, fmt, h, now))
        emit(l, id, text);
    pthread_mutex_unlock(&L.mu);
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
        pthread_mutex_lock(&L.mu);
        char *save = NULL;   /* strtok_r: TX logs from its poller threads too */
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (L.journal)
                fprintf(stderr, "<%d>%s\n", (int)SL_LOG_ERR, line);
            else
                fputs(line, stderr), fputc('\n', stderr);
        }
        pthread_mutex_unlock(&L.mu);
    } else if (sl_diag_total(d)) {
        sl_log(SL_LOG_ERR, "%zu configuration problems (out of memory rendering them)", sl_diag_total(d));
    }
    free(text);
}

unsigned long long sl_log_suppressed(void)
{
    pthread_mutex_lock(&L.mu);
    unsigned long long n = L.suppressed_total;
    pthread_mutex_unlock(&L.mu);
    return n;
}
