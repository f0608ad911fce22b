/* Shared main for every CUnit executable: suites are created on first use
 * from the SL_TEST() table. Exit status: 1 on any failure (or when no case
 * ran), SL_TEST_SKIP_RC when a case was skipped and none failed, else 0. */
#include "sl_test.h"

#include <CUnit/Basic.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SL_TEST_MAX 4096

struct entry {
    const char *suite;
    const char *name;
    void (*fn)(void);
};

static struct entry table[SL_TEST_MAX];
static unsigned table_len;
static unsigned skipped;

void sl_test_skip(const char *fmt, ...)
{
    const CU_pSuite s = CU_get_current_suite();
    const CU_pTest t = CU_get_current_test();
    /* Own line: CUnit's verbose runner has printed "Test: name ..." without
     * a newline. */
    fprintf(stderr, "\nSKIP %s/%s: ", s ? s->pName : "?", t ? t->pName : "?");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    skipped++;
}

void sl_test_in_child(int (*setup)(void *ctx, char *why, size_t why_cap), int (*body)(void *ctx),
                      void *ctx)
{
    int rp[2];
    CU_ASSERT_FATAL(pipe(rp) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        close(rp[0]);
        char why[256] = "";
        if (setup && setup(ctx, why, sizeof why) != 0) {
            ssize_t w = write(rp[1], why, strlen(why));
            (void)w;   /* the parent then says "unknown reason" */
            _exit(SL_TEST_SKIP_RC);
        }
        close(rp[1]);
        _exit(body(ctx));
    }
    close(rp[1]);
    char why[256];
    ssize_t n = read(rp[0], why, sizeof why - 1);
    why[n > 0 ? n : 0] = '\0';
    close(rp[0]);
    int status = 0;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_FATAL(WIFEXITED(status));
    int rc = WEXITSTATUS(status);
    if (rc == SL_TEST_SKIP_RC) {
        sl_test_skip("%s", why[0] ? why : "unknown reason");
        return;
    }
    if (rc != 0)
        fprintf(stderr, "\n  child: check %d failed\n", rc);
    CU_ASSERT_EQUAL(rc, 0);
}

bool sl_test_on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path || strchr(prog, '/'))
        return false;
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        char full[PATH_MAX];
        if (n > 0 && snprintf(full, sizeof full, "%.*s/%s", (int)n, p, prog) < (int)sizeof full &&
            access(full, X_OK) == 0)
            return true;
        p += n;
        if (*p == ':')
            p++;
    }
    return false;
}

void sl_test_add(const char *suite, const char *name, void (*fn)(void))
{
    if (table_len >= SL_TEST_MAX) {
        fprintf(stderr, "sl_test: more than %d cases\n", SL_TEST_MAX);
        return;
    }
    table[table_len++] = (struct entry){ suite, name, fn };
}

/* glibc's own switch for the name-service sources of this process
 * (nsswitch.conf(5) syntax); exported since glibc 2.0 for test harnesses. */
extern int __nss_configure_lookup(const char *dbname, const char *service_line);

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;   /* optional suite filter */
    /* Tests talk to loopback only. A configuration test that checks an
     * unresolvable name must fail in /etc/hosts, never by asking the
     * machine's DNS server. */
    if (__nss_configure_lookup("hosts", "files") != 0)
        return 2;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    for (unsigned i = 0; i < table_len; i++) {
        if (only && strcmp(only, table[i].suite) != 0)
            continue;
        CU_pSuite s = CU_get_suite(table[i].suite);
        if (!s)
            s = CU_add_suite(table[i].suite, NULL, NULL);
        if (!s || !CU_add_test(s, table[i].name, table[i].fn)) {
            CU_cleanup_registry();
            return 2;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "sl_test: no test ran\n");
        return 1;
    }
    if (fails)
        return 1;
    if (skipped) {
        fprintf(stderr, "sl_test: %u of %u cases skipped (precondition missing)\n", skipped, run);
        return SL_TEST_SKIP_RC;
    }
    return 0;
}
