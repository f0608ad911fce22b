/* Shared by the history tests: a database path in one scratch directory per
 * test executable, with any database, WAL and shared-memory file of that
 * name removed first. Returns a static buffer (valid until the next call). */
#ifndef HISTORY_FIXTURE_H
#define HISTORY_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

static inline const char *hist_db_path(const char *name)
{
    static char dir[64], p[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/sl_history_XXXXXX");
        CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    }
    snprintf(p, sizeof p, "%s/%s", dir, name);
    static const char *const suffix[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < 3; i++) {
        char q[300];
        snprintf(q, sizeof q, "%s%s", p, suffix[i]);
        unlink(q);
    }
    return p;
}

#endif
