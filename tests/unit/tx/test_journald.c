/* sluice-tx's journal flusher (tx/sl_journald.c) without privileges: the
 * directory made under state_dir, the flusher committing appends on its
 * own within a few flush intervals, trimming nothing young, a clean close
 * leaving the exact seq mark; a missing state_dir refused. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_journald.h"
#include "sl_test.h"
#include "sl_wire.h"

static char dir[128];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(path);
}

SL_TEST(journald, flusher_commits_and_close_keeps_the_mark)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/sl-journald-XXXXXX", base);
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    struct sl_journald *jd = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_journald_prepare(&jd, dir, false, getuid(), getgid()), SL_OK);
    CU_ASSERT_PTR_NULL(sl_journald_journal(jd));
    struct sl_journal_config c = { .max_bytes = 1u << 20, .no_sync = true, .buffer_bytes = 1u << 16 };
    CU_ASSERT_EQUAL_FATAL(sl_journald_start(jd, &c), SL_OK);
    struct sl_journal *j = sl_journald_journal(jd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    char path[256];
    snprintf(path, sizeof path, "%s/" SL_JOURNAL_DIR_NAME "/id", dir);
    CU_ASSERT_EQUAL(access(path, R_OK), 0);

    uint64_t now = sl_clock_wall_us();
    for (uint32_t i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL(sl_journal_append(j, i % 10, now + i, i, SL_TYPE_UINT16, SL_Q_GOOD, NULL), SL_OK);
    /* Nobody but the flusher calls flush: it must commit within a few 100 ms. */
    struct sl_journald_stats st;
    for (int waited = 0; waited < 300; waited++) {
        sl_journald_stats(jd, &st);
        if (st.j.flushed >= 1000)
            break;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    CU_ASSERT_EQUAL(st.j.flushed, 1000);
    CU_ASSERT_FALSE(st.failing);
    CU_ASSERT_EQUAL(st.j.segments, 1);
    CU_ASSERT_EQUAL(st.j.oldest_seq, 1);
    CU_ASSERT_EQUAL(st.j.oldest_time_us, now);
    CU_ASSERT_EQUAL(st.j.next_seq, 1001);
    uint64_t id = st.j.journal_id;
    CU_ASSERT_NOT_EQUAL(id, 0);
    sl_journald_destroy(jd);

    /* Reopened: the same id and exactly the next seq (a clean close). */
    CU_ASSERT_EQUAL_FATAL(sl_journald_prepare(&jd, dir, false, getuid(), getgid()), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_journald_start(jd, &c), SL_OK);
    sl_journald_stats(jd, &st);
    CU_ASSERT_EQUAL(st.j.journal_id, id);
    CU_ASSERT_EQUAL(st.j.next_seq, 1001);
    sl_journald_destroy(jd);
    sl_journald_destroy(NULL);
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);

    CU_ASSERT_EQUAL(sl_journald_prepare(&jd, "/nonexistent/state", false, getuid(), getgid()), SL_ERR_IO);
    CU_ASSERT_PTR_NULL(jd);
}
