/* Shared by the configuration tests (tests/unit/rx/test_rxconf.c,
 * tests/unit/tx/test_txconf.c, tests/unit/rt/test_conf.c): a scratch
 * directory, files written into it, and the checks on collected
 * `file:line: message` problems. The including file defines
 * `static sl_err parse_flags(const char *text, unsigned flags)`, which
 * parses text into its configuration and fills diag. */
#ifndef CONF_FIXTURE_H
#define CONF_FIXTURE_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_diag.h"
#include "sl_test.h"

static char dir[64];          /* the scratch directory, made by the test's setup() */
static struct sl_diag diag;   /* problems of the last parse */

static sl_err parse_flags(const char *text, unsigned flags);

/* text parsed with host checks on. */
static sl_err parse(const char *text)
{
    return parse_flags(text, 0);
}

/* Makes the scratch directory /tmp/PREFIX-XXXXXX on first use; false when
 * it was made already (the caller's files are then in place). */
static bool scratch_make(const char *prefix)
{
    if (dir[0])
        return false;
    snprintf(dir, sizeof dir, "/tmp/%s-XXXXXX", prefix);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    return true;
}

/* At exit: the scratch directory and whatever the tests left in it (files,
 * links, empty subdirectories). */
__attribute__((destructor)) static void scratch_remove(void)
{
    char path[sizeof dir + 300];
    DIR *d = dir[0] ? opendir(dir) : NULL;
    if (!d)
        return;
    for (const struct dirent *e = readdir(d); e; e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Writes text to dir/name with the given mode. */
static void write_file(const char *name, const char *text, mode_t mode)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* Prints every collected problem (a test that expected none shows why). */
__attribute__((unused)) static void show_diag(void)
{
    for (size_t i = 0; i < diag.count; i++)
        fprintf(stderr, "\n  %s", diag.msg[i]);
}

/* True when some message equals want, where "DIR" in want stands for the
 * scratch directory; prints what there was otherwise. */
static int has(const char *want)
{
    char w[600];
    size_t o = 0;
    for (const char *q = want; *q && o < sizeof w - sizeof dir; q++) {
        if (strncmp(q, "DIR", 3) == 0) {
            o += (size_t)snprintf(w + o, sizeof w - o, "%s", dir);
            q += 2;
        } else {
            w[o++] = *q;
        }
    }
    w[o] = '\0';
    for (size_t i = 0; i < diag.count; i++)
        if (strcmp(diag.msg[i], w) == 0)
            return 1;
    fprintf(stderr, "\nwanted: %s\n", w);
    for (size_t i = 0; i < diag.count; i++)
        fprintf(stderr, "   got: %s\n", diag.msg[i]);
    return 0;
}

/* text must fail with exactly one message, want. */
static void one(const char *text, const char *want)
{
    CU_ASSERT_EQUAL(parse(text), SL_ERR_CONFIG);
    if (diag.count != 1)
        for (size_t i = 0; i < diag.count; i++)
            fprintf(stderr, "\n  extra: %s", diag.msg[i]);
    CU_ASSERT_EQUAL(diag.count, 1);
    CU_ASSERT_TRUE(has(want));
}

#endif
