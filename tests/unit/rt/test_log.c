/* The one logger: format on a terminal and under journald, level filter,
 * the per-call-site rate limit, configuration problems rendered whole. */
#define _GNU_SOURCE   /* F_SETPIPE_SZ */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_diag.h"
#include "sl_log.h"
#include "sl_test.h"

/* Runs fn with stderr sent to a temporary file and returns what it wrote
 * (static buffer). With journal, JOURNAL_STREAM names that file, as systemd
 * does for a unit's stderr. */
static const char *capture(void (*fn)(void), int journal)
{
    static char out[8192];
    char path[] = "/tmp/sl_test_log_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    if (journal) {
        struct stat st;
        fstat(fd, &st);
        char js[64];
        snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
        setenv("JOURNAL_STREAM", js, 1);
    } else {
        unsetenv("JOURNAL_STREAM");
    }
    sl_log_init("sluice-test");
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    unsetenv("JOURNAL_STREAM");
    sl_log_init("sluice-test");
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

static unsigned count_lines(const char *o)
{
    unsigned lines = 0;
    for (const char *p = o; (p = strchr(p, '\n')); p++)
        lines++;
    return lines;
}

static void three_levels(void)
{
    sl_log_set_level(SL_LOG_INFO);
    sl_log(SL_LOG_INFO, "link up on %s", "eth1");
    sl_log(SL_LOG_WARNING, "disk %d%% full", 91);
    sl_log(SL_LOG_ERR, "cannot open %s", "x.db");
    sl_log(SL_LOG_DEBUG, "not shown at info");
}

SL_TEST(log, terminal_format)
{
    const char *o = capture(three_levels, 0);
    CU_ASSERT_STRING_EQUAL(o, "sluice-test: link up on eth1\n"
                              "sluice-test: warning: disk 91% full\n"
                              "sluice-test: error: cannot open x.db\n");
}

SL_TEST(log, journald_priorities_without_program_name)
{
    const char *o = capture(three_levels, 1);
    CU_ASSERT_STRING_EQUAL(o, "<6>link up on eth1\n<4>disk 91% full\n<3>cannot open x.db\n");
}

static void warning_level(void)
{
    sl_log_set_level(SL_LOG_WARNING);
    sl_log(SL_LOG_INFO, "hidden");
    sl_log(SL_LOG_NOTICE, "hidden too");
    sl_log(SL_LOG_WARNING, "shown");
    CU_ASSERT_FALSE(sl_log_enabled(SL_LOG_INFO));
    CU_ASSERT_TRUE(sl_log_enabled(SL_LOG_ERR));
    sl_log_set_level(SL_LOG_INFO);
}

SL_TEST(log, level_filter)
{
    CU_ASSERT_STRING_EQUAL(capture(warning_level, 0), "sluice-test: warning: shown\n");
}

SL_TEST(log, level_names)
{
    enum sl_log_level l = SL_LOG_INFO;
    CU_ASSERT_EQUAL(sl_log_level_parse(&l, "debug"), SL_OK);
    CU_ASSERT_EQUAL(l, SL_LOG_DEBUG);
    CU_ASSERT_EQUAL(sl_log_level_parse(&l, "error"), SL_OK);
    CU_ASSERT_EQUAL(l, SL_LOG_ERR);
    CU_ASSERT_EQUAL(sl_log_level_parse(&l, "warn"), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(sl_log_level_parse(&l, NULL), SL_ERR_RANGE);
    CU_ASSERT_EQUAL(l, SL_LOG_ERR);
    CU_ASSERT_STRING_EQUAL(sl_log_level_name(SL_LOG_NOTICE), "notice");
}

static void flood(void)
{
    for (int i = 0; i < 200; i++)
        sl_log(SL_LOG_WARNING, "forged frame %d dropped", i);
    sl_log(SL_LOG_WARNING, "another site still logs");
}

SL_TEST(log, flood_from_one_site_is_rate_limited)
{
    unsigned long long before = sl_log_suppressed();
    const char *o = capture(flood, 0);
    CU_ASSERT_EQUAL(count_lines(o), SL_LOG_BURST + 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "forged frame 19 dropped\n"));
    CU_ASSERT_PTR_NULL(strstr(o, "forged frame 20 dropped"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "another site still logs"));
    CU_ASSERT_EQUAL(sl_log_suppressed() - before, 200u - SL_LOG_BURST);
}

static void passthrough(void)
{
    char line[64];
    for (int i = 0; i < 30; i++) {
        snprintf(line, sizeof line, "file report-%d.csv received", i);
        sl_log(SL_LOG_INFO, "%s", line);
    }
    for (int i = 0; i < 30; i++)
        sl_log(SL_LOG_INFO, "%s", "the same line again");
}

SL_TEST(log, passthrough_lines_are_their_own_sites)
{
    const char *o = capture(passthrough, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "file report-29.csv received\n"));
    unsigned same = 0;
    for (const char *p = o; (p = strstr(p, "the same line again")); p++)
        same++;
    CU_ASSERT_EQUAL(same, SL_LOG_BURST);
}

static void id_lines(void)
{
    sl_log_set_level(SL_LOG_NOTICE);
    sl_log_id(SL_LOG_WARNING, "SL-RX-SIG-DROP", "%u blocks with a bad signature", 3u);
    sl_log_id(SL_LOG_NOTICE, "SL-TX-DEVICE-UP", "device %s: every read answered again", "plc1");
    sl_log_id(SL_LOG_ERR, "SL-RX-LIMITS", "too big");
    sl_log_id(SL_LOG_INFO, "SL-RX-HIDDEN", "below the level: not written");
    sl_log_set_level(SL_LOG_INFO);
}

SL_TEST(log, id_terminal_format)
{
    CU_ASSERT_STRING_EQUAL(capture(id_lines, 0), "sluice-test: warning: [SL-RX-SIG-DROP] 3 blocks with a bad signature\n"
                                                 "sluice-test: [SL-TX-DEVICE-UP] device plc1: every read answered again\n"
                                                 "sluice-test: error: [SL-RX-LIMITS] too big\n");
}

SL_TEST(log, id_journald_after_priority)
{
    CU_ASSERT_STRING_EQUAL(capture(id_lines, 1), "<4>[SL-RX-SIG-DROP] 3 blocks with a bad signature\n"
                                                 "<5>[SL-TX-DEVICE-UP] device plc1: every read answered again\n"
                                                 "<3>[SL-RX-LIMITS] too big\n");
}

static void id_flood(void)
{
    for (int i = 0; i < 50; i++)
        sl_log_id(SL_LOG_WARNING, "SL-RX-MODBUS-WRITE", "refused write %d", i);
}

SL_TEST(log, id_lines_are_rate_limited_per_site)
{
    const char *o = capture(id_flood, 0);
    unsigned lines = 0;
    for (const char *p = o; (p = strstr(p, "warning: [SL-RX-MODBUS-WRITE] refused write ")); p++)
        lines++;
    CU_ASSERT_EQUAL(lines, SL_LOG_BURST);
}

static void diag_lines(void)
{
    struct sl_diag d;
    sl_diag_init(&d);
    sl_diag_add(&d, "rx.conf", 3, "bad port '%s'", "99999");
    sl_diag_add(&d, "rx.conf", 7, "unknown key '%s'", "colour");
    sl_log_diag(&d);
    sl_diag_free(&d);
}

SL_TEST(log, diag_rendered_whole)
{
    const char *o = capture(diag_lines, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "rx.conf:3: bad port '99999'\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "rx.conf:7: unknown key 'colour'\n"));
}

/* A deferred thread writes nothing itself; the flush writes its lines in
 * order through the same per-call-site rate limit. */
static void deferred_flood(void)
{
    CU_ASSERT_EQUAL_FATAL(sl_log_defer_thread(), SL_OK);
    for (int i = 0; i < 50; i++)
        sl_log(SL_LOG_WARNING, "deferred flood %d", i);
    sl_log(SL_LOG_DEBUG, "below the level: not queued");
    sl_log_id(SL_LOG_ERR, "SL-RX-LIMITS", "after the flood");
    sl_log_defer_end();
    struct stat st;
    CU_ASSERT_EQUAL(fstat(2, &st), 0);
    CU_ASSERT_EQUAL(st.st_size, 0);   /* nothing written by the deferred calls */
    CU_ASSERT_EQUAL(sl_log_flush_deferred(), 51u);
    CU_ASSERT_EQUAL(sl_log_flush_deferred(), 0u);
}

SL_TEST(log, deferred_lines_written_by_the_flush_in_order_and_rate_limited)
{
    unsigned long long before = sl_log_suppressed();
    const char *o = capture(deferred_flood, 0);
    CU_ASSERT_EQUAL(count_lines(o), SL_LOG_BURST + 1);
    const char *first = strstr(o, "sluice-test: warning: deferred flood 0\n");
    const char *last = strstr(o, "deferred flood 19\n");
    const char *after = strstr(o, "sluice-test: error: [SL-RX-LIMITS] after the flood\n");
    CU_ASSERT(first && last && after && first < last && last < after);
    CU_ASSERT_EQUAL(sl_log_suppressed() - before, 50u - SL_LOG_BURST);
}

/* The reviewer's case: stderr is a pipe nobody reads (a backed-up
 * journald); one thread logs until it is stuck in write(2). A deferred
 * thread (rx-intake) must still get through its log calls, lines beyond
 * its ring are counted lost, and once the pipe drains the flush writes
 * the kept ones in order and one "lost" line. Run in a child process: its
 * stderr is the pipe, and a call that hangs ends in SIGALRM. */
#define DEFERRED_LINES 3000
static atomic_bool spam_stop;
static atomic_ulong spam_lines;
static atomic_bool deferred_done;
static int child_out = -1;

static void *spam(void *arg)
{
    (void)arg;
    char b[64];
    for (unsigned i = 0; i < 1000000u && !atomic_load(&spam_stop); i++) {
        snprintf(b, sizeof b, "file f%u.csv received (1234 bytes)", i);
        sl_log(SL_LOG_INFO, "%s", b);   /* every text its own site: never limited */
        atomic_fetch_add(&spam_lines, 1);
    }
    return NULL;
}

static void *deferred_writer(void *arg)
{
    (void)arg;
    if (sl_log_defer_thread() != SL_OK)
        return NULL;
    sl_log(SL_LOG_DEBUG, "beacon %d", 1);   /* below the level: no lock, no queue */
    char b[256];
    for (int i = 0; i < DEFERRED_LINES; i++) {
        snprintf(b, sizeof b, "deferred line %05d %0150d", i, 0);
        sl_log(SL_LOG_WARNING, "%s", b);
    }
    atomic_store(&deferred_done, true);
    sl_log_defer_end();
    return NULL;
}

struct drain {
    int fd;
    char *buf;
    size_t len, cap;
};

static void *drain_pipe(void *arg)
{
    struct drain *d = arg;
    char tmp[4096];
    for (;;) {
        ssize_t n = read(d->fd, tmp, sizeof tmp);
        if (n <= 0)
            return NULL;
        size_t k = (size_t)n < d->cap - d->len ? (size_t)n : d->cap - d->len;
        memcpy(d->buf + d->len, tmp, k);
        d->len += k;
    }
}

static bool wait_until(atomic_bool *flag, unsigned ms)
{
    for (unsigned t = 0; t < ms && !atomic_load(flag); t += 10)
        usleep(10000);
    return atomic_load(flag);
}

static int child_fail(int code, const char *why)
{
    dprintf(child_out, "log blocked-stderr child: %s\n", why);
    return code;
}

static int blocked_child(void)
{
    int p[2];
    if (pipe(p) != 0)
        return child_fail(2, "pipe");
    (void)fcntl(p[1], F_SETPIPE_SZ, 4096);   /* fills sooner */
    child_out = dup(2);
    dup2(p[1], 2);
    close(p[1]);
    unsetenv("JOURNAL_STREAM");
    sl_log_init("sluice-test");
    sl_log_set_level(SL_LOG_INFO);
    alarm(20);
    pthread_t ts, td, tr;
    pthread_create(&ts, NULL, spam, NULL);
    /* Stuck: no line got through for 200 ms (at most 5 s). */
    unsigned long prev = ~0ul, still_ms = 0;
    for (unsigned t = 0; t < 5000 && still_ms < 200; t += 20) {
        usleep(20000);
        unsigned long now = atomic_load(&spam_lines);
        still_ms = now == prev ? still_ms + 20 : 0;
        prev = now;
    }
    if (still_ms < 200)
        return child_fail(3, "the writer never blocked");
    sl_log(SL_LOG_DEBUG, "beacon %d", 2);   /* any thread: below the level costs no lock */
    (void)sl_log_suppressed();
    pthread_create(&td, NULL, deferred_writer, NULL);
    if (!wait_until(&deferred_done, 5000))
        return child_fail(4, "a deferred thread waited on the blocked writer");
    pthread_join(td, NULL);
    unsigned long long lost = sl_log_deferred_lost();
    if (lost == 0 || lost >= DEFERRED_LINES)
        return child_fail(5, "the full ring did not drop and count lines");
    /* The reader comes back: everything drains. */
    struct drain dr = { .fd = p[0], .cap = 8u << 20 };
    dr.buf = malloc(dr.cap + 1);
    if (!dr.buf)
        return child_fail(2, "malloc");
    atomic_store(&spam_stop, true);
    pthread_create(&tr, NULL, drain_pipe, &dr);
    pthread_join(ts, NULL);
    size_t taken = sl_log_flush_deferred();
    if (taken + lost != DEFERRED_LINES)
        return child_fail(6, "kept + lost is not every line");
    dup2(child_out, 2);   /* the pipe's last writer closes: the reader sees EOF */
    pthread_join(tr, NULL);
    dr.buf[dr.len] = '\0';
    /* The kept lines are the first ones, whole and in order, then the note. */
    const char *at = dr.buf;
    char want[256];
    for (size_t i = 0; i < taken; i++) {
        snprintf(want, sizeof want, "sluice-test: warning: deferred line %05zu %0150d\n", i, 0);
        const char *q = strstr(at, want);
        if (!q)
            return child_fail(7, "a kept line is missing, cut or out of order");
        at = q + strlen(want);
    }
    snprintf(want, sizeof want, "sluice-test: warning: %llu log lines lost: queue full\n", lost);
    if (!strstr(at, want))
        return child_fail(8, "no \"lost\" line after the kept ones");
    snprintf(want, sizeof want, "deferred line %05zu ", taken);
    if (strstr(dr.buf, want))
        return child_fail(9, "a line counted lost was written");
    free(dr.buf);
    return 0;
}

SL_TEST(log, deferred_thread_never_waits_on_a_blocked_stderr)
{
    fflush(stderr);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(blocked_child());
    int status = 0;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(status));   /* SIGALRM: a log call hung */
    CU_ASSERT_EQUAL(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
}

SL_TEST(clock, monotonic_and_units)
{
    uint64_t a = sl_clock_mono_ns(), b = sl_clock_mono_ns();
    CU_ASSERT(b >= a);
    uint64_t ms = sl_clock_mono_ms(), us = sl_clock_mono_us();
    CU_ASSERT(us / 1000u >= ms && us / 1000u - ms < 1000u);
    uint64_t wall = sl_clock_wall_ms();
    CU_ASSERT(wall > 1600000000000ull);   /* after 2020 */
    CU_ASSERT(sl_clock_wall_us() / 1000u >= wall);
}
