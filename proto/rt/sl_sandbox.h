#ifndef SL_SANDBOX_H
#define SL_SANDBOX_H

/* Privileges, the same way in both daemons (docs/security.md, Privileges).
 *
 * A daemon decides once, from its configuration and how it was started,
 * what it will become (sl_sandbox_plan), opens everything that needs a
 * privilege (raw and pcap sockets, listeners on ports < 1024, the key
 * file), then applies the plan (sl_sandbox_apply) on its only thread:
 *   - started as root: `user` set -> that user; unset -> `sluice` when that
 *     account exists; else refused, unless allow_root = yes (stays uid 0,
 *     warned at every start). A `user` whose uid is 0 counts as root.
 *   - whatever the start (root, another user, a unit with
 *     AmbientCapabilities=): every capability set ends empty (effective,
 *     permitted, inheritable, ambient; the bounding set too whenever the
 *     process may still drop it) and no_new_privs is set, then checked.
 * Capabilities and no_new_privs are per thread: apply before any thread
 * starts (sl_sandbox_apply refuses when another thread exists). */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "sl_err.h"

#define SL_SANDBOX_USER_MAX   64u
#define SL_SANDBOX_WHY_MAX    320u
#define SL_SANDBOX_DEFAULT_USER "sluice"

enum sl_sandbox_action {
    SL_SANDBOX_STAY,        /* not started as root: stays this user, loses its capabilities */
    SL_SANDBOX_DROP,        /* root -> user (configured, or the default account) */
    SL_SANDBOX_KEEP_ROOT,   /* root, allow_root = yes: uid 0 without capabilities, warned */
    SL_SANDBOX_REFUSE,      /* cannot start: why says what to set */
};

struct sl_sandbox_plan {
    enum sl_sandbox_action action;
    char section[8];                   /* "tx" or "rx": for messages */
    char user[SL_SANDBOX_USER_MAX];    /* the account run as ("" for STAY/KEEP_ROOT) */
    bool user_default;                 /* user is the default account, not configured */
    uid_t uid;
    gid_t gid;
    char why[SL_SANDBOX_WHY_MAX];      /* REFUSE: the error; KEEP_ROOT: the warning */
};

/* What the process may know about one account: found, and its ids. */
struct sl_sandbox_account {
    bool exists;
    uid_t uid;
    gid_t gid;
};

/* The pure decision table (no system calls): euid is how the daemon was
 * started, `user` the configured [section] user ("" = unset) with what
 * looking it up gave, `def` the default account. Fills *p; returns SL_OK,
 * or SL_ERR_PERM with p->action REFUSE and p->why set. */
sl_err sl_sandbox_decide(struct sl_sandbox_plan *p, const char *section, uid_t euid, const char *user,
                         const struct sl_sandbox_account *configured, const struct sl_sandbox_account *def,
                         bool allow_root);

/* sl_sandbox_decide for this process: geteuid(), getpwnam(user) and
 * getpwnam("sluice"). */
sl_err sl_sandbox_plan(struct sl_sandbox_plan *p, const char *section, const char *user, bool allow_root);

/* Applies the plan, in this order: bounding set dropped (while
 * CAP_SETPCAP is still there), supplementary groups (initgroups: an RTU
 * device node is usually group dialout), gid, uid (setresgid/setresuid:
 * no way back), every capability set cleared (capset, ambient), then
 * PR_SET_NO_NEW_PRIVS; then checks that the ids, the capabilities and
 * no_new_privs stuck. SL_OK, or SL_ERR_PERM with why (one line) set: the
 * daemon must exit. Call on the process's only thread (else SL_ERR_STATE). */
__attribute__((warn_unused_result))
sl_err sl_sandbox_apply(const struct sl_sandbox_plan *p, char *why, size_t cap);

/* After sl_sandbox_apply: the KEEP_ROOT warning (every start) and
 * "running as USER (uid N, gid M)" / "running as uid N (gid M)". */
void sl_sandbox_log_applied(const struct sl_sandbox_plan *p);

/* The lines --check prints and the start-up log repeats ("sandbox: user
 * nobody (uid 65534, gid 65534), groups 65534, capabilities none after
 * start-up, no_new_privs"). Other parts add theirs (seccomp, signer) with
 * sl_sandbox_report_add; fixed room, no allocation. */
#define SL_SANDBOX_REPORT_LINES 8u
#define SL_SANDBOX_LINE_MAX     320u
struct sl_sandbox_report {
    char line[SL_SANDBOX_REPORT_LINES][SL_SANDBOX_LINE_MAX];
    size_t n;
};

/* Starts r with the plan's line. */
void sl_sandbox_describe(struct sl_sandbox_report *r, const struct sl_sandbox_plan *p);

/* One more line ("seccomp: ...", "signer: ..."); dropped when r is full. */
__attribute__((format(printf, 2, 3)))
void sl_sandbox_report_add(struct sl_sandbox_report *r, const char *fmt, ...);

/* Every line: to out as "  LINE" (--check), or as INFO log lines when out
 * is NULL (start-up). */
void sl_sandbox_report_print(const struct sl_sandbox_report *r, FILE *out);

/* After sl_sandbox_apply: can this process still write `path` (a
 * directory, or a file; a file not there yet needs its directory)? When
 * not, logs "[what] PATH is not writable by USER (uid N): chown it to that
 * user" and returns SL_ERR_PERM, so a path the operator forgot to hand
 * over stops the start with a clear line instead of a later EACCES. */
sl_err sl_sandbox_need_writable(const struct sl_sandbox_plan *p, const char *what, const char *path);

/* Can the account (name, uid, gid) read a file with this stat by its
 * permission bits alone (owner, group incl. supplementary groups, others)?
 * Root too: a daemon keeps no capability (CAP_DAC_OVERRIDE) once running.
 * For --check, which may run as another user than the daemon's. */
struct stat;
bool sl_sandbox_user_can_read(const struct stat *st, const char *name, uid_t uid, gid_t gid);

/* The same for a directory the account must create files in (write and
 * search bits). */
bool sl_sandbox_user_can_write_dir(const struct stat *st, const char *name, uid_t uid, gid_t gid);

#endif
