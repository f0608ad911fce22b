/* The one logger: format on a terminal and under journald, level filter,
 * the per-call-site rate limit, configuration problems rendered whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    unsigned lines = 0;
    for (const char *p = o; (p = strchr(p, '\n')); p++)
        lines++;
    CU_ASSERT_EQUAL(lines, SL_LOG_BURST + 1);
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
