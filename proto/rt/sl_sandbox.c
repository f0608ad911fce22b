#define _GNU_SOURCE  /* setresuid, getresuid, initgroups, getgrouplist */
#include "sl_sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sl_log.h"

#define CAP_MAX_SCAN 64u   /* capability numbers tried when cap_last_cap is unreadable */
#define GROUPS_SHOWN 16

/* ---- the decision --------------------------------------------------------------- */

static sl_err refuse(struct sl_sandbox_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static sl_err refuse(struct sl_sandbox_plan *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
    p->action = SL_SANDBOX_REFUSE;
    return SL_ERR_PERM;
}

sl_err sl_sandbox_decide(struct sl_sandbox_plan *p, const char *section, uid_t euid, const char *user,
                         const struct sl_sandbox_account *configured, const struct sl_sandbox_account *def,
                         bool allow_root)
{
    memset(p, 0, sizeof *p);
    snprintf(p->section, sizeof p->section, "%s", section);
    p->uid = euid;
    p->gid = getegid();
    const char *s = p->section;
    bool set = user && user[0];
    if (set && !configured->exists)
        return refuse(p, "[%s] user %s: no such user", s, user);
    if (euid != 0) {
        if (set && configured->uid != euid)
            return refuse(p, "[%s] user %s: started as uid %u, not root: cannot switch to uid %u", s, user,
                          (unsigned)euid, (unsigned)configured->uid);
        if (set)
            snprintf(p->user, sizeof p->user, "%s", user);
        p->action = SL_SANDBOX_STAY;
        return SL_OK;
    }
    if (set && configured->uid != 0) {
        snprintf(p->user, sizeof p->user, "%s", user);
        p->uid = configured->uid;
        p->gid = configured->gid;
        p->action = SL_SANDBOX_DROP;
        return SL_OK;
    }
    if (allow_root) {
        /* Said on purpose: kept, without a single capability. */
        p->action = SL_SANDBOX_KEEP_ROOT;
        snprintf(p->why, sizeof p->why,
                 "[%s] allow_root = yes: sluice-%s keeps running as root (uid 0, no capabilities); "
                 "uid 0 still owns root's files (/etc/shadow, /etc/sluice, the units), so for files it "
                 "is effectively root; set [%s] user = an unprivileged account instead", s, s, s);
        return SL_OK;
    }
    if (set)
        return refuse(p, "[%s] user %s has uid 0: sluice-%s refuses to run as root; set [%s] user = an "
                      "unprivileged account, or [%s] allow_root = yes to accept this", s, user, s, s, s);
    if (def->exists && def->uid != 0) {
        snprintf(p->user, sizeof p->user, "%s", SL_SANDBOX_DEFAULT_USER);
        p->user_default = true;
        p->uid = def->uid;
        p->gid = def->gid;
        p->action = SL_SANDBOX_DROP;
        return SL_OK;
    }
    return refuse(p, "started as root with no [%s] user and no '%s' account: sluice-%s refuses to run as "
                  "root; set [%s] user = an unprivileged account (e.g. nobody), or [%s] allow_root = yes to "
                  "accept this", s, SL_SANDBOX_DEFAULT_USER, s, s, s);
}

static void lookup(struct sl_sandbox_account *a, const char *user)
{
    memset(a, 0, sizeof *a);
    if (!user || !user[0])
        return;
    const struct passwd *pw = getpwnam(user);
    if (!pw)
        return;
    a->exists = true;
    a->uid = pw->pw_uid;
    a->gid = pw->pw_gid;
}

sl_err sl_sandbox_plan(struct sl_sandbox_plan *p, const char *section, const char *user, bool allow_root)
{
    struct sl_sandbox_account configured, def;
    lookup(&configured, user);
    lookup(&def, SL_SANDBOX_DEFAULT_USER);
    return sl_sandbox_decide(p, section, geteuid(), user, &configured, &def, allow_root);
}

/* ---- capabilities ------------------------------------------------------------------- */

/* The capset/capget pair, version 3 (two 32-bit words per set). */
struct caps {
    struct __user_cap_header_struct h;
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
};

static int caps_get(struct caps *c)
{
    memset(c, 0, sizeof *c);
    c->h.version = _LINUX_CAPABILITY_VERSION_3;
    return (int)syscall(SYS_capget, &c->h, c->d);
}

static int caps_clear(void)
{
    struct caps c;
    memset(&c, 0, sizeof c);
    c.h.version = _LINUX_CAPABILITY_VERSION_3;
    return (int)syscall(SYS_capset, &c.h, c.d);
}

static bool caps_empty(const struct caps *c)
{
    for (unsigned i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
        if (c->d[i].effective || c->d[i].permitted || c->d[i].inheritable)
            return false;
    return true;
}

/* The highest capability number this kernel knows. */
static unsigned cap_last(void)
{
    unsigned last = 0;
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    if (f) {
        if (fscanf(f, "%u", &last) != 1 || last >= CAP_MAX_SCAN)
            last = 0;
        fclose(f);
    }
    if (last)
        return last;
    while (last + 1 < CAP_MAX_SCAN && prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0) >= 0)
        last++;
    return last;
}

/* The other threads: capabilities and no_new_privs are per thread, so a
 * thread started before the drop would keep what this one gives up.
 * 1 when /proc is not mounted (nothing to tell). */
static unsigned thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 1;
    unsigned n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n ? n : 1;
}

static sl_err fail(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static sl_err fail(char *why, size_t cap, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    errno = saved;
    return SL_ERR_PERM;
}

/* ThreadSanitizer's runtime runs a background thread of its own from
 * start-up (test builds only): it is not one of ours. */
#if defined(__SANITIZE_THREAD__)
#define OWN_THREADS_AT_START 2u
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define OWN_THREADS_AT_START 2u
#endif
#endif
#ifndef OWN_THREADS_AT_START
#define OWN_THREADS_AT_START 1u
#endif

sl_err sl_sandbox_apply(const struct sl_sandbox_plan *p, char *why, size_t cap)
{
    if (p->action == SL_SANDBOX_REFUSE)
        return fail(why, cap, "%s", p->why);
    if (thread_count() > OWN_THREADS_AT_START) {
        snprintf(why, cap, "privileges must be dropped before any thread starts (%u threads)", thread_count());
        return SL_ERR_STATE;
    }
    unsigned last = cap_last();
    struct caps c;
    if (caps_get(&c) != 0)
        return fail(why, cap, "capget: %s", strerror(errno));
    /* The bounding set needs CAP_SETPCAP to shrink: root has it, a user
     * started with ambient capabilities usually not (systemd's
     * CapabilityBoundingSet= then bounds it, and no_new_privs below keeps
     * execve from ever using it). */
    bool bset = (c.d[CAP_TO_INDEX(CAP_SETPCAP)].effective & CAP_TO_MASK(CAP_SETPCAP)) != 0;
    for (unsigned i = 0; bset && i <= last; i++)
        if (prctl(PR_CAPBSET_DROP, i, 0, 0, 0) != 0 && errno != EINVAL)
            return fail(why, cap, "cannot drop capability %u from the bounding set: %s", i, strerror(errno));
    if (p->action == SL_SANDBOX_DROP) {
        /* The OpenBSD order: groups, gid, then uid (after setresuid there
         * is no way back); initgroups, not setgroups(1): an RTU device
         * node is usually group dialout. */
        if (initgroups(p->user, p->gid) != 0 || setresgid(p->gid, p->gid, p->gid) != 0 ||
            setresuid(p->uid, p->uid, p->uid) != 0)
            return fail(why, cap, "cannot drop privileges to %s: %s", p->user, strerror(errno));
    }
    if (caps_clear() != 0)
        return fail(why, cap, "capset: %s", strerror(errno));
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        return fail(why, cap, "cannot clear the ambient capabilities: %s", strerror(errno));
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return fail(why, cap, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));

    /* Did it stick? */
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
        return fail(why, cap, "getresuid: %s", strerror(errno));
    if (p->action == SL_SANDBOX_DROP &&
        (ru != p->uid || eu != p->uid || su != p->uid || rg != p->gid || eg != p->gid || sg != p->gid ||
         setuid(0) != -1))
        return fail(why, cap, "privilege drop to %s did not stick", p->user);
    if (caps_get(&c) != 0 || !caps_empty(&c))
        return fail(why, cap, "capabilities still held after the drop");
    for (unsigned i = 0; i <= last; i++) {
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, i, 0, 0) > 0)
            return fail(why, cap, "ambient capability %u still set after the drop", i);
        if (bset && prctl(PR_CAPBSET_READ, i, 0, 0, 0) > 0)
            return fail(why, cap, "capability %u still in the bounding set after the drop", i);
    }
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
        return fail(why, cap, "no_new_privs did not stick");
    return SL_OK;
}

void sl_sandbox_log_applied(const struct sl_sandbox_plan *p)
{
    if (p->action == SL_SANDBOX_KEEP_ROOT)
        sl_log(SL_LOG_WARNING, "%s", p->why);
    if (p->user[0])
        sl_log(SL_LOG_INFO, "running as %s (uid %u, gid %u)", p->user, (unsigned)getuid(), (unsigned)getgid());
    else
        sl_log(SL_LOG_INFO, "running as uid %u (gid %u)", (unsigned)getuid(), (unsigned)getgid());
}

/* ---- the report ------------------------------------------------------------------- */

void sl_sandbox_report_add(struct sl_sandbox_report *r, const char *fmt, ...)
{
    if (r->n >= SL_SANDBOX_REPORT_LINES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->line[r->n++], SL_SANDBOX_LINE_MAX, fmt, ap);
    va_end(ap);
}

/* "groups 65534, 20" of user (getgrouplist: what initgroups will set). */
static void groups_text(char *out, size_t cap, const char *user, gid_t gid)
{
    gid_t g[GROUPS_SHOWN];
    int n = GROUPS_SHOWN;
    int total = getgrouplist(user, gid, g, &n);
    size_t len = (size_t)snprintf(out, cap, "groups");
    int shown = total < 0 ? GROUPS_SHOWN : n;
    for (int i = 0; i < shown && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%u", i ? ", " : " ", (unsigned)g[i]);
    if (total < 0 && len < cap)
        snprintf(out + len, cap - len, ", ...");
}

void sl_sandbox_describe(struct sl_sandbox_report *r, const struct sl_sandbox_plan *p)
{
    r->n = 0;
    char groups[160] = "groups as started";
    const char *tail = "capabilities none after start-up, no_new_privs";
    switch (p->action) {
    case SL_SANDBOX_DROP:
        groups_text(groups, sizeof groups, p->user, p->gid);
        sl_sandbox_report_add(r, "sandbox: user %s%s (uid %u, gid %u), %s, %s", p->user,
                              p->user_default ? " (the default account)" : "", (unsigned)p->uid,
                              (unsigned)p->gid, groups, tail);
        break;
    case SL_SANDBOX_STAY:
        sl_sandbox_report_add(r, "sandbox: stays uid %u (gid %u) as started (not root), %s, %s",
                              (unsigned)p->uid, (unsigned)p->gid, groups, tail);
        break;
    case SL_SANDBOX_KEEP_ROOT:
        sl_sandbox_report_add(r, "sandbox: root (uid 0) kept by [%s] allow_root = yes, %s", p->section, tail);
        break;
    default:
        sl_sandbox_report_add(r, "sandbox: refused: %s", p->why);
        break;
    }
}

void sl_sandbox_report_print(const struct sl_sandbox_report *r, FILE *out)
{
    for (size_t i = 0; i < r->n; i++) {
        if (out)
            fprintf(out, "  %s\n", r->line[i]);
        else
            sl_log(SL_LOG_INFO, "%s", r->line[i]);
    }
}

sl_err sl_sandbox_need_writable(const struct sl_sandbox_plan *p, const char *what, const char *path)
{
    char dir[4096];
    if (!path || !path[0] || access(path, W_OK) == 0)
        return SL_OK;
    if (errno == ENOENT) {
        /* Not there yet: the daemon creates it in its directory. */
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash == dir)
            slash[1] = '\0';
        else if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
        if (access(dir, W_OK | X_OK) == 0)
            return SL_OK;
        path = dir;
    }
    if (p->action == SL_SANDBOX_DROP)
        sl_log(SL_LOG_ERR, "%s %s is not writable by user %s (uid %u): chown it to that user", what, path,
               p->user, (unsigned)p->uid);
    else
        sl_log(SL_LOG_ERR, "%s %s is not writable by uid %u: %s", what, path, (unsigned)geteuid(),
               strerror(errno));
    return SL_ERR_PERM;
}

/* want: permission bits in the "others" position (S_IROTH...), shifted
 * for the owner and the group. */
static bool user_has(const struct stat *st, const char *name, uid_t uid, gid_t gid, mode_t want)
{
    if (st->st_uid == uid)
        return (st->st_mode & (want << 6)) == want << 6;
    gid_t groups[64];
    int n = (int)(sizeof groups / sizeof groups[0]);
    if (!name || !name[0] || getgrouplist(name, gid, groups, &n) < 0) {
        groups[0] = gid;
        n = 1;
    }
    for (int i = 0; i < n; i++)
        if (st->st_gid == groups[i])
            return (st->st_mode & (want << 3)) == want << 3;
    return (st->st_mode & want) == want;
}

bool sl_sandbox_user_can_read(const struct stat *st, const char *name, uid_t uid, gid_t gid)
{
    return user_has(st, name, uid, gid, S_IROTH);
}

bool sl_sandbox_user_can_write_dir(const struct stat *st, const char *name, uid_t uid, gid_t gid)
{
    return S_ISDIR(st->st_mode) && user_has(st, name, uid, gid, S_IWOTH | S_IXOTH);
}
