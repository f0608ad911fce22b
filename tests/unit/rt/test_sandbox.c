/* sl_sandbox: the decision table (started as root or not x user set or
 * not x the sluice account there or not x allow_root), the report lines,
 * and, in a child process, that apply leaves no capability and sets
 * no_new_privs whoever runs the test. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sl_sandbox.h"
#include "sl_test.h"

static const struct sl_sandbox_account none = { .exists = false };
static const struct sl_sandbox_account nobody = { .exists = true, .uid = 65534, .gid = 65534 };
static const struct sl_sandbox_account sluice = { .exists = true, .uid = 990, .gid = 985 };
static const struct sl_sandbox_account rootacc = { .exists = true, .uid = 0, .gid = 0 };

static struct sl_sandbox_plan p;

SL_TEST(sandbox, root_user_set_drops_to_it_whatever_else)
{
    for (int def = 0; def < 2; def++)
        for (int allow = 0; allow < 2; allow++) {
            CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "tx", 0, "nobody", &nobody, def ? &sluice : &none, allow),
                            SL_OK);
            CU_ASSERT_EQUAL(p.action, SL_SANDBOX_DROP);
            CU_ASSERT_STRING_EQUAL(p.user, "nobody");
            CU_ASSERT_EQUAL(p.uid, 65534);
            CU_ASSERT_EQUAL(p.gid, 65534);
            CU_ASSERT_FALSE(p.user_default);
        }
}

SL_TEST(sandbox, root_no_user_takes_the_sluice_account)
{
    CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "rx", 0, "", &none, &sluice, false), SL_OK);
    CU_ASSERT_EQUAL(p.action, SL_SANDBOX_DROP);
    CU_ASSERT_STRING_EQUAL(p.user, "sluice");
    CU_ASSERT_EQUAL(p.uid, 990);
    CU_ASSERT_EQUAL(p.gid, 985);
    CU_ASSERT_TRUE(p.user_default);
}

SL_TEST(sandbox, root_no_user_no_account_refuses_naming_the_keys)
{
    CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "rx", 0, "", &none, &none, false), SL_ERR_PERM);
    CU_ASSERT_EQUAL(p.action, SL_SANDBOX_REFUSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.why, "[rx] user"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p.why, "[rx] allow_root = yes"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p.why, "sluice-rx refuses to run as root"));
    CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "tx", 0, NULL, &none, &none, false), SL_ERR_PERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.why, "[tx] user"));
    /* An account named sluice with uid 0 is root, not a way out. */
    CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "tx", 0, "", &none, &rootacc, false), SL_ERR_PERM);
}

SL_TEST(sandbox, root_allow_root_keeps_uid0_with_a_warning)
{
    /* allow_root says it on purpose: the sluice account does not override it. */
    for (int def = 0; def < 2; def++) {
        CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "tx", 0, "", &none, def ? &sluice : &none, true), SL_OK);
        CU_ASSERT_EQUAL(p.action, SL_SANDBOX_KEEP_ROOT);
        CU_ASSERT_EQUAL(p.uid, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(p.why, "[tx] allow_root = yes"));
        CU_ASSERT_PTR_NOT_NULL(strstr(p.why, "effectively root"));
    }
}

SL_TEST(sandbox, user_with_uid0_is_root)
{
    CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "rx", 0, "root", &rootacc, &sluice, false), SL_ERR_PERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.why, "has uid 0"));
    CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "rx", 0, "root", &rootacc, &sluice, true), SL_OK);
    CU_ASSERT_EQUAL(p.action, SL_SANDBOX_KEEP_ROOT);
}

SL_TEST(sandbox, unknown_user_refused_root_or_not)
{
    CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "tx", 0, "no-such", &none, &sluice, true), SL_ERR_PERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.why, "[tx] user no-such: no such user"));
    CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "tx", 1000, "no-such", &none, &sluice, false), SL_ERR_PERM);
}

SL_TEST(sandbox, not_root_stays_whatever_else)
{
    for (int def = 0; def < 2; def++)
        for (int allow = 0; allow < 2; allow++) {
            CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "rx", 65534, "", &none, def ? &sluice : &none, allow), SL_OK);
            CU_ASSERT_EQUAL(p.action, SL_SANDBOX_STAY);
            CU_ASSERT_EQUAL(p.uid, 65534);
            /* Already the configured user (a unit with User=): stays. */
            CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "rx", 65534, "nobody", &nobody, def ? &sluice : &none, allow),
                            SL_OK);
            CU_ASSERT_EQUAL(p.action, SL_SANDBOX_STAY);
            CU_ASSERT_STRING_EQUAL(p.user, "nobody");
            /* Another user: cannot switch without root. */
            CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "rx", 1000, "nobody", &nobody, def ? &sluice : &none, allow),
                            SL_ERR_PERM);
            CU_ASSERT_PTR_NOT_NULL(strstr(p.why, "not root"));
        }
}

SL_TEST(sandbox, report_lines_and_appender)
{
    struct sl_sandbox_report r;
    CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "rx", 0, "nobody", &nobody, &none, false), SL_OK);
    sl_sandbox_describe(&r, &p);
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.line[0], "sandbox: user nobody (uid 65534, gid 65534), groups "));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.line[0], "capabilities none after start-up, no_new_privs"));
    sl_sandbox_report_add(&r, "seccomp: %s", "on");
    CU_ASSERT_EQUAL(r.n, 2);
    CU_ASSERT_STRING_EQUAL(r.line[1], "seccomp: on");
    for (unsigned i = 0; i < 2 * SL_SANDBOX_REPORT_LINES; i++)
        sl_sandbox_report_add(&r, "x");
    CU_ASSERT_EQUAL(r.n, SL_SANDBOX_REPORT_LINES);   /* full: dropped, not overflowed */
    CU_ASSERT_EQUAL(sl_sandbox_decide(&p, "tx", 0, "", &none, &none, false), SL_ERR_PERM);
    sl_sandbox_describe(&r, &p);
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_EQUAL(strncmp(r.line[0], "sandbox: refused: ", 18), 0);
}

/* "CapEff:\t0000000000000000" and friends from /proc/self/status. */
static unsigned long long status_hex(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long v = ~0ull;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':')
            sscanf(line + n + 1, "%llx", &v);
    if (f)
        fclose(f);
    return v;
}

/* In a child (the drop is for good): started as root, the plan keeps uid
 * 0 by allow_root; started as another user, it stays. Either way every
 * capability set ends empty and no_new_privs is on. */
SL_TEST(sandbox, apply_leaves_no_capability_and_sets_no_new_privs)
{
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct sl_sandbox_plan q;
        char why[SL_SANDBOX_WHY_MAX];
        int bad = 0;
        if (sl_sandbox_plan(&q, "tx", "", true) != SL_OK || sl_sandbox_apply(&q, why, sizeof why) != SL_OK)
            bad |= 1;
        if (status_hex("CapEff") != 0 || status_hex("CapPrm") != 0 || status_hex("CapInh") != 0 ||
            status_hex("CapAmb") != 0)
            bad |= 2;
        if (status_hex("NoNewPrivs") != 1)
            bad |= 4;
        if (geteuid() == 0 && status_hex("CapBnd") != 0)   /* root could drop it, so it must have */
            bad |= 8;
        _exit(bad);
    }
    int st = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(st));
    CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
}

/* A second thread would keep its own capabilities: refused. */
static void *idle(void *arg)
{
    pause();
    return arg;
}

SL_TEST(sandbox, apply_refuses_a_second_thread)
{
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        pthread_t t;
        struct sl_sandbox_plan q;
        char why[SL_SANDBOX_WHY_MAX] = "";
        if (pthread_create(&t, NULL, idle, NULL) != 0)
            _exit(3);
        int rc = sl_sandbox_plan(&q, "tx", "", true) == SL_OK &&
                 sl_sandbox_apply(&q, why, sizeof why) == SL_ERR_STATE && strstr(why, "before any thread") ? 0 : 1;
        _exit(rc);
    }
    int st = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(st));
    CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
}

/* Started as root (the CI runs so): the plan drops to nobody in a child;
 * ids, supplementary groups (initgroups), every capability set (bounding
 * too) and no_new_privs are checked from /proc, and root cannot come back.
 * Not root: the same child stays and must still end with no capability. */
SL_TEST(sandbox, apply_drops_root_to_nobody)
{
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct sl_sandbox_plan q;
        char why[SL_SANDBOX_WHY_MAX];
        bool root = geteuid() == 0;
        int bad = 0;
        if (sl_sandbox_plan(&q, "rx", root ? "nobody" : "", false) != SL_OK ||
            q.action != (root ? SL_SANDBOX_DROP : SL_SANDBOX_STAY) || sl_sandbox_apply(&q, why, sizeof why) != SL_OK)
            _exit(1);
        if (root && (getuid() != q.uid || geteuid() != q.uid || getgid() != q.gid || setuid(0) == 0))
            bad |= 2;
        gid_t groups[64];
        int n = getgroups(64, groups);
        for (int i = 0; root && i < n; i++)
            if (groups[i] == 0)
                bad |= 4;   /* root's group left behind */
        if (status_hex("CapEff") != 0 || status_hex("CapPrm") != 0 || status_hex("CapAmb") != 0 ||
            (root && status_hex("CapBnd") != 0) || status_hex("NoNewPrivs") != 1)
            bad |= 8;
        _exit(bad);
    }
    int st = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(st));
    CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
}
